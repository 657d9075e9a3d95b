"""The `Database`: one async engine, and the two ways domains open a transaction on it.

SQLite needs care to be safe under concurrency. A deferred SQLite transaction that reads and then writes can fail
with SQLITE_BUSY when another writer got there first, so every writing transaction starts with `BEGIN IMMEDIATE`
(it waits on the busy timeout instead), while read-only ones use a plain `BEGIN` and run beside the writer in WAL
mode. PostgreSQL needs none of this: row locks and conditional updates do the work.

A writing transaction may also say what it changed (`changed(session, topic, key)`); once it has committed, and
only then, the `Database` tells whoever listens (`on_commit`), which is how held clients learn that a job moved
without reading it again and again (`jobs/notifications.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from grokgate.config import async_database_url
from grokgate.db.direct import SQLITE_PRAGMAS, Direct, DirectTx, Hooks, connection_lost

log = structlog.get_logger(__name__)

_READ_ONLY = "grokgate_read_only"
T = TypeVar("T")
_CHANGED = "grokgate_changed"

Changes = Mapping[str, frozenset[str]]
"""What one committed transaction changed: keys by topic (`{"jobs": {job ids}}`)."""


States = Mapping[tuple[str, str], Any]
"""What one committed transaction left some of its keys as, by (topic, key): a job it ended, as it ended."""
_STATES = "grokgate_states"


def changed(session: AsyncSession | DirectTx, topic: str, key: str, state: Any = None) -> None:
    """Note that this transaction changes `key` of `topic`: announced to `Database.on_commit` listeners once it
    commits, never if it rolls back. `state`, the thing as the transaction leaves it, goes to them too: a job's
    ending hands the ended job to the clients held on it in this process, who then need not read it."""
    session.info.setdefault(_CHANGED, {}).setdefault(topic, set()).add(key)
    if state is not None:
        session.info.setdefault(_STATES, {})[topic, key] = state


def _taken(info: dict[str, Any]) -> dict[str, Any]:
    return {name: info.pop(name) for name in (_CHANGED, _STATES) if name in info}


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that `_on_begin` decides how each one starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", *SQLITE_PRAGMAS, "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        url = async_database_url(url)
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            kwargs["pool_size"] = 8
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self.session_class: type[Session] = type("DatabaseSession", (Session,), {})
        """This database's own session class: ORM events listened on it (`orgs/authcache.py`) see only its
        sessions, however many databases one process holds."""
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False, sync_session_class=self.session_class)
        self._reader = async_sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}),
            expire_on_commit=False,
            sync_session_class=self.session_class,
        )
        self._listeners: list[Callable[[Changes, States], None]] = []
        self._direct = Direct(self.engine)
        self._write_lock = self._direct.writers if self.is_sqlite else None
        """SQLite: this process's writers, one at a time (ORM and direct transactions alike)."""

    @property
    def direct_hooks(self) -> Hooks:
        """Where metrics listen to direct transactions (their connections and statements)."""
        return self._direct.hooks

    def on_commit(self, listener: Callable[[Changes, States], None]) -> Callable[[], None]:
        """Call `listener` (synchronously, so it must not block) after each writing transaction that noted changes
        commits. Returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _announce(self, noted: dict[str, Any]) -> None:
        """`noted`: what the committed transaction noted (`changed`), taken from its `info`."""
        states: States = noted.get(_STATES) or {}
        if not noted.get(_CHANGED):
            return
        changes = {topic: frozenset(keys) for topic, keys in noted[_CHANGED].items()}
        for listener in list(self._listeners):
            try:
                listener(changes, states)
            except Exception:  # a listener's fault must not turn a committed transaction into an error
                log.exception("db.commit_listener_failed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A writing transaction: committed when the block ends, rolled back if it raises.

        On SQLite only one writer can hold the database; writers of this process queue for one slot (`db/slots.py`)
        instead of in SQLite's busy handler, which sleeps in growing steps and would cut throughput by an order of
        magnitude under contention. Other processes still wait on the busy timeout."""
        if self._write_lock is None:
            async with self._writer() as session:
                async with session.begin():
                    yield session
                noted = _taken(session.info)
        else:
            async with self._write_lock, self._writer() as session:
                async with session.begin():
                    yield session
                noted = _taken(session.info)
        self._announce(noted)

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[DirectTx]:
        """A writing transaction on the driver itself, for the request path's prebuilt statements
        (`db/direct.py`): what `transaction` does, at a fraction of the CPU, with no ORM."""
        async with self._direct.transaction() as tx:  # on SQLite it takes the writer slot itself
            yield tx
        self._announce(_taken(tx.info))

    async def single(self, work: Callable[[DirectTx], Awaitable[T]]) -> T:
        """Run `work`: one statement (or several, each) that may be applied twice with no harm, as a conditioned
        UPDATE that sets the same values again or an upsert, or whose second application the database refuses
        (a unique key, as the one-call opening's job id and movement key). On PostgreSQL outside any transaction,
        one round trip instead of three; if the kept connection turns out cut by the server, `work` runs again on a
        new one (no `BEGIN` went first to find that out harmlessly). On SQLite a direct transaction."""
        if self.is_sqlite:
            async with self.direct() as tx:
                return await work(tx)
        return await self._outside_transactions(work)

    async def quick_read(self, work: Callable[[DirectTx], Awaitable[T]]) -> T:
        """Run `work`: a read of a prebuilt statement on the direct path (a job polled by its client or woken for a
        held one, a download's media row, the balance), where a pooled session cost a checkout (with its pre-ping
        on PostgreSQL) and on SQLite a dozen hops to aiosqlite's thread. On PostgreSQL outside any transaction, one
        round trip instead of three, run again on a new connection if the kept one turns out cut (a read does no
        harm twice); each statement reads its own snapshot there. On SQLite a read transaction on a connection of
        its own (`Direct.read`): the writers' one must not be shared, and a read must never queue behind them."""
        if self.is_sqlite:
            async with self._direct.read() as tx:
                return await work(tx)
        return await self._outside_transactions(work)

    async def _outside_transactions(self, work: Callable[[DirectTx], Awaitable[T]]) -> T:
        """PostgreSQL: `work` on a kept connection with each statement committing by itself; again on a new
        connection if the kept one turns out cut by the server."""
        for fresh in (False, True):
            try:
                async with self.autocommit(fresh=fresh) as tx:
                    return await work(tx)
            except exc.DBAPIError as error:
                if fresh or not connection_lost(error):
                    raise
        raise AssertionError("unreachable")

    async def upsert(self, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Prebuilt upserts, each committed on its own (see `single`)."""

        async def each(tx: DirectTx) -> None:
            for row in rows:
                await tx.execute(statement, row)

        await self.single(each)

    @asynccontextmanager
    async def autocommit(self, *, fresh: bool = False) -> AsyncIterator[DirectTx]:
        """PostgreSQL only: a kept connection (`fresh`: a new one) outside any transaction, for a single statement
        or function call that is atomic by itself (one round trip instead of three)."""
        async with self._direct.autocommit(fresh=fresh) as tx:
            yield tx
        self._announce(_taken(tx.info))

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction; on SQLite it does not queue behind writers."""
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self._direct.close()
        await self.engine.dispose()
