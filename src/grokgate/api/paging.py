"""The page parameters of every list: the same names, defaults and bounds on jobs and the ledger.

The offset has a ceiling because an unbounded integer reaches the database as a bind value: past 2^63 SQLite and
PostgreSQL refuse it, and the caller would get a 500 instead of a 400 naming the field."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 10_000_000

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
