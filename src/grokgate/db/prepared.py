"""A Core statement made ready to run on a driver: its SQL for one dialect, the order its parameters bind in, and
SQLAlchemy's own converters for the values both ways; and the rows and results read back, shaped as SQLAlchemy's
are (by position, attribute or `_mapping`; `one_or_none`, `scalar_one_or_none`, ...). Plain functions over a
statement and a dialect: no connection, no I/O. `db/direct.py` runs them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import sqltypes

from grokgate.db.base import UTCDateTime, utc_from_sqlite, utc_to_sqlite


@dataclass(frozen=True)
class Prepared:
    """One statement's SQL for one dialect, the order its parameters bind in, and how values are converted."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    binders: tuple[Any, ...]
    keys: tuple[str, ...]
    readers: tuple[Any, ...]
    fillers: Mapping[str, Callable[[], Any]]
    """Columns not given that SQLAlchemy would fill in (an INSERT's Python-side default, an UPDATE's `onupdate`),
    and how to make each value."""

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, binder in zip(self.names, self.binders, strict=True):
            if name in params:
                value = params[name]
            elif name in self.fillers:
                value = self.fillers[name]()
            else:
                value = self.defaults[name]  # a constant of the statement; KeyError for a parameter not given
            values.append(value if binder is None else binder(value))
        return tuple(values)

    def row(self, raw: Sequence[Any]) -> Row:
        return Row(self.keys, [v if r is None else r(v) for v, r in zip(raw, self.readers, strict=True)])


def prepare(statement: Any, dialect: Dialect, keys: Iterable[str]) -> Prepared:
    """Compile `statement` for `dialect` as SQLAlchemy would execute it with parameters named `keys` (an INSERT's
    columns are the keys given), with `IN` lists written out."""
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    required = {name for name, bind in compiled.binds.items() if bind.required}
    # The SQL as it runs (`IN` lists written out), the parameters' order and their converters; any value does
    # for the parameters given at execution, which `bind` takes from the call instead.
    state = compiled.construct_expanded_state({name: None for name in required}, escape_names=False)
    names = tuple(state.positiontup or ())
    types = {name: bind.type for name, bind in compiled.binds.items()}
    for listed, expanded in state.parameter_expansion.items():
        types.update((name, types[listed]) for name in expanded)
    binders = tuple(_binder(types[name], dialect) for name in names)
    # Columns left out whose Python-side default (INSERT) or `onupdate` (UPDATE) SQLAlchemy would fill in.
    fillers = {column.key: _filler(column.default) for column in compiled.insert_prefetch if column.key not in keys}
    fillers |= {column.key: _filler(column.onupdate) for column in compiled.update_prefetch if column.key not in keys}
    columns = list(statement.exported_columns)  # a SELECT's columns, or what an INSERT/UPDATE returns
    readers = tuple(_reader(column.type, dialect) for column in columns)
    return Prepared(
        sql=state.statement,
        names=names,
        defaults={name: value for name, value in state.parameters.items() if name not in required},
        binders=binders,
        keys=tuple(column.key for column in columns),
        readers=readers,
        fillers=fillers,
    )


def _binder(kind: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """A parameter's converter: SQLAlchemy's, but for a UTC time on SQLite, the same text made in one step."""
    if isinstance(kind, UTCDateTime) and dialect.name == "sqlite":
        return utc_to_sqlite
    binder: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    return binder


def _reader(kind: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """A column's result converter: SQLAlchemy's, but for a UTC time on SQLite, the same time read in one step. A
    numeric one depends on the type code the driver reports with the rows (asyncpg's float8 needs none, its
    numeric one), which the column's own type tells here: PostgreSQL's `FLOAT` is float8 (OID 701), `NUMERIC` is
    1700."""
    if isinstance(kind, UTCDateTime) and dialect.name == "sqlite":
        return utc_from_sqlite
    code = 701 if isinstance(kind, sqltypes.Float) else 1700 if isinstance(kind, sqltypes.Numeric) else None
    reader: Callable[[Any], Any] | None = kind.dialect_impl(dialect).result_processor(dialect, code)
    return reader


def _filler(default: Any) -> Callable[[], Any]:
    """A column default as SQLAlchemy would make it (its callables take an execution context, unused here)."""
    if default.is_callable:
        return lambda: default.arg(None)
    return lambda: default.arg


class Row(tuple[Any, ...]):
    """A result row read like SQLAlchemy's: by position, by attribute, or as `_mapping`."""

    _keys: tuple[str, ...]

    def __new__(cls, keys: tuple[str, ...], values: Iterable[Any]) -> Row:
        row = super().__new__(cls, values)
        row._keys = keys
        return row

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._keys, self, strict=True))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._keys.index(name)]
        except ValueError:
            raise AttributeError(name) from None


class Result:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def all(self) -> list[Row]:
        return self.rows

    def one_or_none(self) -> Row | None:
        if len(self.rows) > 1:
            raise exc.MultipleResultsFound("more than one row where at most one was expected")
        return self.rows[0] if self.rows else None

    def one(self) -> Row:
        found = self.one_or_none()
        if found is None:
            raise exc.NoResultFound("no row where one was expected")
        return found

    def scalar_one_or_none(self) -> Any:
        found = self.one_or_none()
        return None if found is None else found[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None
