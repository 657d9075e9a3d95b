"""The customer console at `/`: server-rendered pages over the same services the API uses, and page scripts
that call the API's own routes with the member's session."""
