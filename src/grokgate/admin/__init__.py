"""The admin HTTP API (`/admin/api/v1`): what `grokgate admin` does, over HTTP, for operator tokens."""
