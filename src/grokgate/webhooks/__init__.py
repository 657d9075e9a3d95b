"""Webhooks: a database outbox of job events, signed with Standard Webhooks, delivered at least once."""
