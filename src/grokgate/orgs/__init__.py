"""Organisations (the paying customers) and the API keys they authenticate with."""
