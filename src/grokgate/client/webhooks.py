"""Checking a webhook delivery in a customer's receiver: its Standard Webhooks signature (HMAC-SHA256 over id,
timestamp and body, with the organisation's `whsec_...` secret) and its age (at most five minutes either way,
so a recorded delivery cannot be replayed later)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from standardwebhooks import Webhook

from grokgate.client.models import Job


class WebhookVerificationError(ValueError):
    """The delivery is not from the gateway, was altered, is too old or too new: answer it with a 4xx."""


class WebhookEvent(BaseModel):
    """A verified delivery: `type` is `job.completed`, `job.failed` or `job.cancelled`; `data` is the job."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

    id: str = ""
    """The `webhook-id`: the same on every retry of one delivery, to deduplicate on."""
    type: str
    timestamp: datetime | None = None
    data: Job = Field(description="The job as GET /api/v1/jobs/{id} shows it")


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """Check a delivery (the raw body as received, its headers, the organisation's webhook secret) and return its
    event; `WebhookVerificationError` when the signature does not match or the timestamp is out of bounds."""
    plain = {key.lower(): value for key, value in headers.items()}
    try:
        payload: Any = Webhook(secret).verify(body, plain)
    except Exception as exc:  # the library also lets malformed headers escape as ValueError and friends
        raise WebhookVerificationError(f"webhook rejected: {exc}") from None
    try:
        return WebhookEvent.model_validate({**payload, "id": plain["webhook-id"]})
    except (ValidationError, TypeError) as exc:
        raise WebhookVerificationError(f"webhook body is not a grokgate event: {exc}") from None
