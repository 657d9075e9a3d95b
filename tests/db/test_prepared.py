"""The direct path's converters (`db/prepared.py`) give what SQLAlchemy's own would, value for value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from grokgate.db.base import UTCDateTime, utc_from_sqlite, utc_to_sqlite
from grokgate.db.prepared import prepare
from grokgate.jobs.models import Job
from grokgate.storage.service import _FIND

TIMES = [
    datetime(2026, 12, 8, 3, 13, 45, 315873, tzinfo=UTC),
    datetime(2026, 12, 8, 3, 13, 45, tzinfo=UTC),  # no microseconds: still written out, as SQLAlchemy does
    datetime(2026, 12, 8, 5, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),  # another offset: stored as UTC
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year below 1000 keeps its four digits
]


def test_a_utc_time_binds_and_reads_on_sqlite_as_sqlalchemy_does() -> None:
    dialect = sqlite.dialect()
    impl = UTCDateTime().dialect_impl(dialect)
    binds, reads = impl.bind_processor(dialect), impl.result_processor(dialect, None)
    assert binds is not None
    assert reads is not None
    for value in [*TIMES, None]:
        text = binds(value)
        assert utc_to_sqlite(value) == text, value
        assert utc_from_sqlite(text) == reads(text), value
        if value is not None:
            assert utc_from_sqlite(text) == value
            assert utc_from_sqlite(text).tzinfo == UTC  # type: ignore[union-attr]
    assert utc_from_sqlite("2026-12-08 03:13:45") == datetime(2026, 12, 8, 3, 13, 45, tzinfo=UTC)  # SQL's own
    with pytest.raises(ValueError, match="naive"):
        utc_to_sqlite(datetime(2026, 12, 8))
    with pytest.raises(ValueError, match="naive"):
        binds(datetime(2026, 12, 8))


def test_prepared_statements_take_the_one_step_converters_on_sqlite_only() -> None:
    select_on = {
        name: prepare(_FIND, dialect, ["media_id"])
        for name, dialect in [("sqlite", sqlite.dialect()), ("postgresql", postgresql.asyncpg.dialect())]
    }
    created = select_on["sqlite"].keys.index("created_at")
    assert select_on["sqlite"].readers[created] is utc_from_sqlite
    assert select_on["postgresql"].readers[created] is not utc_from_sqlite
    update = Job.__table__.update().values(updated_at=None)
    binders = prepare(update, sqlite.dialect(), ["updated_at"]).binders
    assert utc_to_sqlite in binders
