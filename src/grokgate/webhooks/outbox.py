"""Putting a job event in the outbox, inside the transaction that changed the job."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import insert

from grokgate.db.base import iso, new_id, table_of, utcnow
from grokgate.db.direct import Tx
from grokgate.webhooks.models import WebhookDelivery

_DELIVERY = insert(table_of(WebhookDelivery))


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def enqueue(session: Tx, *, org_id: str, job_id: str, url: str, event: str, data: dict[str, Any]) -> str:
    now = utcnow()
    delivery_id = new_id("msg")
    row = {
        "id": delivery_id,
        "org_id": org_id,
        "job_id": job_id,
        "event": event,
        "url": url,
        "payload": {"type": event, "timestamp": iso(now), "data": data},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    await session.execute(_DELIVERY, row)
    return delivery_id
