"""The request path's writes in one round trip each on PostgreSQL, where every round trip costs the gateway about
70 microseconds of CPU: opening a job, and a completed ending with its stored media.

Opening: the charge, its ledger row, the check of the organisation's jobs in flight against the plan and the job's
row, by the function `grokgate_open_job` (migrations 0012 and 0015).

The statements and their order are those of the transaction in `JobService._open`, which SQLite (and any opening
with spend caps or stored input images) still runs: the conditional UPDATE that takes the organisation's row lock
and refuses a balance that cannot cover the price or a suspended organisation, then the check of the number of
jobs in flight it read (`organizations.active_jobs`, kept by triggers on `jobs`), then the rows. A
refusal changes nothing: a refused charge is reported as NULL, a full plan raises inside the call, so the charge is
undone with it.

Ending: `repository.finish_in`'s UPDATE of the job and the INSERT of its media rows as one statement (a
data-modifying CTE), which inserts no media when the UPDATE matched no job. When nothing else is written with it (no
refund, no webhook) the request path sends it outside any transaction: a single statement is atomic by itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, JSON, Integer, String, bindparam, exc, func, insert, select, union_all

from grokgate.billing import ledger
from grokgate.billing.amounts import MAX_PRICE, checked
from grokgate.db.base import UTCDateTime, table_of
from grokgate.db.direct import DirectTx
from grokgate.db.engine import Database
from grokgate.errors import ApiError, limit_exceeded
from grokgate.jobs import states
from grokgate.storage.models import Media

FULL = "GG429"
"""The SQLSTATE the function raises when the plan's concurrent jobs are all taken; its message is the count."""

_OPEN = select(
    func.grokgate_open_job(
        bindparam("org_id", type_=String),
        bindparam("price", type_=Integer),
        bindparam("now", type_=UTCDateTime),
        bindparam("most", type_=Integer),
        bindparam("active", type_=ARRAY(String)),
        bindparam("job", type_=JSON),
    )
)


def _as_json(row: dict[str, Any]) -> dict[str, Any]:
    """The job's row as `json_populate_record` reads it: times as ISO 8601 with their UTC offset."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def concurrent_limit(limit: int, used: int) -> ApiError:
    return limit_exceeded("concurrent", limit, used, f"Too many jobs in flight: {limit} at once on this plan")


async def open_in_one_call(db: Database, row: dict[str, Any], *, price: int, most: int) -> None:
    """Charge `row`'s organisation `price` and insert the job `row` unless it already has `most` jobs active;
    raises 402, 403 or 429 (`ApiError`) with nothing changed."""
    checked(price, most=MAX_PRICE)
    params = {
        "org_id": row["org_id"],
        "price": price,
        "now": row["created_at"],
        "most": most,
        "active": list(states.ACTIVE),
        "job": _as_json(row),
    }

    async def call(tx: DirectTx) -> Any:
        return (await tx.execute(_OPEN, params)).one()

    try:
        # Sent again on a new connection if the kept one was cut: the call never ran then. (Were it cut after the
        # call committed, the second would fail on the job's id and movement key: nothing is charged twice.)
        found = await db.single(call)
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == FULL:
            raise concurrent_limit(most, int(str(getattr(error.orig, "message", "0")))) from None
        raise
    if found[0] is None:
        async with db.reader() as session:
            raise await ledger.refusal(session, row["org_id"], price)


_MEDIA = table_of(Media)
_GIVEN = [column.key for column in _MEDIA.c if column.key != "org_id"]
"""A media row's columns as bound (`m<i>_<column>`); its `org_id` is the ended job's."""
_WITH_MEDIA: dict[tuple[int, int], tuple[Any, Any]] = {}


def ending_with_media(ending: Any, count: int) -> Any:
    """`ending` (a job's UPDATE ... RETURNING) and the INSERT of `count` media rows, as one statement; built once
    for each ending and count."""
    found = _WITH_MEDIA.get((id(ending), count))
    if found is not None and found[0] is ending:
        return found[1]
    ended = ending.cte("ended")
    rows = [
        select(*[bindparam(f"m{i}_{key}", type_=_MEDIA.c[key].type) for key in _GIVEN], ended.c.org_id)
        for i in range(count)
    ]
    added = insert(_MEDIA).from_select([*_GIVEN, "org_id"], union_all(*rows) if count > 1 else rows[0])
    statement = select(*ended.c).add_cte(added.cte("added"))
    _WITH_MEDIA[id(ending), count] = (ending, statement)
    return statement


def media_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"m{i}_{key}": row[key] for i, row in enumerate(rows) for key in _GIVEN}
