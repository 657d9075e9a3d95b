"""Deliveries that keep failing, for the operator: the list, and a retry now.

`failed` deliveries ran out of the retry schedule; `retrying` ones are still pending but their last attempt
failed. A retry makes the delivery due at once; it keeps its `webhook-id` and its count of attempts, so a retry
that fails again ends it `failed` (the schedule has nothing left), and one that succeeds marks it `delivered`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.db.base import utcnow
from grokgate.errors import ApiError
from grokgate.webhooks.models import WebhookDelivery

FAILING = ("failed", "retrying")


def _failing(state: str | None) -> list[ColumnElement[bool]]:
    failed = WebhookDelivery.status == "failed"
    retrying = (WebhookDelivery.status == "pending") & (WebhookDelivery.attempts > 0)
    if state == "failed":
        return [failed]
    if state == "retrying":
        return [retrying]
    return [failed | retrying]


async def failing(
    session: AsyncSession, *, state: str | None, org_id: str | None, limit: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    conditions = _failing(state)
    if org_id is not None:
        conditions.append(WebhookDelivery.org_id == org_id)
    total = await session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions))
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total or 0)


async def retry_now(session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    """Make a failed or retrying delivery due now; 409 `DELIVERY_DELIVERED` once it was delivered."""
    row = await session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"Webhook delivery {delivery_id} not found", {"deliveryId": delivery_id})
    if row.status == "delivered":
        raise ApiError(
            409, "DELIVERY_DELIVERED", f"Webhook delivery {delivery_id} was delivered", {"deliveryId": delivery_id}
        )
    now = utcnow()
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != "delivered")
        .values(status="pending", next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(row)
    return row
