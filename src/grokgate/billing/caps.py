"""Per-key spend caps: at most so many credits a UTC day and/or month, counted in the charge's own transaction.

The spend of a capped key is a row per window (`key_spend`: the day `2026-11-26`, the month `2026-11`). A charge
adds its price with one conditional UPDATE (`spent + price <= cap`) in the same transaction as the ledger's
charge, so concurrent requests cannot pass a cap together on either database: on PostgreSQL the UPDATE takes the
row's lock and re-checks the condition against the committed value, on SQLite writers are serialised. The charge
takes the organisation's row first and the spend rows second, as a refund does, so the two never deadlock.
A refund takes its amount off the windows its charge was counted in (the job's creation time says which), in the
refund's transaction: a failed job gives the cap back, a job refunded after its window ended does not lend the
next window anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from grokgate.billing.amounts import MAX_CREDITS
from grokgate.billing.models import KeySpend
from grokgate.db.base import table_of
from grokgate.db.direct import Tx
from grokgate.errors import ApiError


@dataclass(frozen=True)
class Caps:
    daily: int | None = None
    monthly: int | None = None

    def __bool__(self) -> bool:
        return self.daily is not None or self.monthly is not None


NO_CAPS = Caps()


@dataclass(frozen=True)
class Window:
    span: str
    """`day` or `month`."""
    period: str
    """The row's name for it: `2026-11-26` or `2026-11`."""
    resets_at: datetime


def window(span: str, at: datetime) -> Window:
    """The UTC day or month `at` falls in, and when the next one starts."""
    at = at.astimezone(UTC)
    if span == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window("day", start.strftime("%Y-%m-%d"), start + timedelta(days=1))
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return Window("month", start.strftime("%Y-%m"), following)


def check_cap(value: int | None, field: str) -> int | None:
    """A cap is a whole number of credits from 1 to `MAX_CREDITS`, or none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CREDITS:
        raise ApiError(
            400, "INVALID_INPUT", f"{field}: must be a whole number from 1 to {MAX_CREDITS}", {"field": field}
        )
    return value


def cap_reached(cap: int, spent: int, at: Window) -> ApiError:
    return ApiError(
        402,
        "KEY_SPEND_CAP_REACHED",
        f"This API key may spend {cap} credits per {at.span}; {spent} are spent until {at.resets_at.isoformat()}",
        {"cap": cap, "spent": spent, "window": at.span, "resetsAt": at.resets_at.isoformat().replace("+00:00", "Z")},
    )


_SPEND = table_of(KeySpend)
_ENSURE = {
    dialect: insert(_SPEND)
    .values(key_id=bindparam("capped_key"), period=bindparam("window_period"), spent=0)
    .on_conflict_do_nothing()
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
"""A window's row, made if missing. The charge path's statements are built once (see `ledger._move_statement`);
their parameters are not named as columns, which an INSERT or UPDATE reserves for itself."""
_COUNT = (
    update(_SPEND)
    .where(
        _SPEND.c.key_id == bindparam("capped_key"),
        _SPEND.c.period == bindparam("window_period"),
        _SPEND.c.spent + bindparam("amount", type_=Integer) <= bindparam("cap", type_=Integer),
    )
    .values(spent=_SPEND.c.spent + bindparam("amount", type_=Integer))
    .returning(_SPEND.c.spent)
)
_SPENT = select(_SPEND.c.spent).where(
    _SPEND.c.key_id == bindparam("capped_key"), _SPEND.c.period == bindparam("window_period")
)
_GIVE_BACK = (
    update(_SPEND)
    .where(
        _SPEND.c.key_id == bindparam("capped_key"),
        _SPEND.c.period.in_([bindparam("day"), bindparam("month")]),
        _SPEND.c.spent >= bindparam("amount", type_=Integer),
    )
    .values(spent=_SPEND.c.spent - bindparam("amount", type_=Integer))
)


async def spend(session: Tx, key_id: str, caps: Caps, amount: int, at: datetime) -> None:
    """Count `amount` against every cap of the key, or raise 402 `KEY_SPEND_CAP_REACHED` (the caller's transaction,
    which holds the charge, is then rolled back whole)."""
    for span, cap in (("day", caps.daily), ("month", caps.monthly)):
        if cap is None:
            continue
        current = window(span, at)
        params = {"capped_key": key_id, "window_period": current.period, "amount": amount, "cap": cap}
        await session.execute(_ENSURE[session.get_bind().dialect.name], params)
        counted = await session.execute(_COUNT, params)
        if counted.scalar_one_or_none() is None:
            spent = await session.scalar(_SPENT, params)
            raise cap_reached(cap, int(spent or 0), current)


async def give_back(session: Tx, key_id: str, amount: int, charged_at: datetime) -> None:
    """Take a refunded charge off the windows it was counted in. A key without caps has no rows: nothing happens."""
    day, month = (window(span, charged_at).period for span in ("day", "month"))
    await session.execute(_GIVE_BACK, {"capped_key": key_id, "amount": amount, "day": day, "month": month})


async def spent_now(session: AsyncSession, key_id: str, at: datetime) -> dict[str, int]:
    """What the key spent in the current day and month (0 where nothing is counted)."""
    periods = {span: window(span, at).period for span in ("day", "month")}
    rows = dict(
        (
            await session.execute(
                select(KeySpend.period, KeySpend.spent).where(
                    KeySpend.key_id == key_id, KeySpend.period.in_(periods.values())
                )
            )
        ).all()
    )
    return {span: int(rows.get(period, 0)) for span, period in periods.items()}
