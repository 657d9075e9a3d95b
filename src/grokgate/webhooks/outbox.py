"""Putting a job event in the outbox, inside the transaction that changed the job."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import iso, new_id, utcnow
from grokgate.webhooks.models import WebhookDelivery


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def enqueue(session: AsyncSession, *, org_id: str, job_id: str, url: str, event: str, data: dict[str, Any]) -> str:
    now = utcnow()
    delivery_id = new_id("msg")
    session.add(
        WebhookDelivery(
            id=delivery_id,
            org_id=org_id,
            job_id=job_id,
            event=event,
            url=url,
            payload={"type": event, "timestamp": iso(now), "data": data},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return delivery_id
