"""The operator console (`/admin`): organisations, credits, jobs, webhook deliveries, money and the upstream key
pool, for the people who run the business. Server-rendered like the customer console (its templates, static files
and CSS), signed in with operator accounts of its own; every page calls the services the admin HTTP API calls."""
