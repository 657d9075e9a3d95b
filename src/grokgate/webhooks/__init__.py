"""Webhooks: a database outbox of job events, signed with Standard Webhooks, delivered at least once.

`grokgate.webhooks.verify(body, headers, secret)` is for the receiving side (a customer's server): it lives in the
SDK (`grokgate.client.webhooks`), so importing it loads none of the server's modules.
"""

from grokgate.client.webhooks import WebhookEvent, WebhookVerificationError, verify

__all__ = ["WebhookEvent", "WebhookVerificationError", "verify"]
