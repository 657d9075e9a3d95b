"""The request path's transactions (and the poller's record of each poll), run on the database driver itself:
Core statements compiled once, bound by SQLAlchemy's own type processors, executed with none of its execution
machinery.

Why: on every image request the gateway charges, claims a storage key and ends the job, three short transactions of
seven statements. Through an ORM session each statement cost about 0.5 ms of CPU in SQLAlchemy (session and
connection state, events, the compiled cache, result building) and, on SQLite, several hops to aiosqlite's thread;
the statements themselves take a few microseconds. A `DirectTx` keeps what SQLAlchemy is for here (the statements
written against the models, their SQL per dialect, the conversion of values both ways) and drops the rest.

`Tx` is what the request path's queries take: an `AsyncSession` (every other caller, inside its own transaction) or a
`DirectTx`. Both answer `execute` and `scalar` with results read the same way (`one_or_none`, `scalar_one_or_none`,
rows with `_mapping` and attributes), and both carry `info` for `engine.changed`.

- **SQLite**: one plain `sqlite3` connection of the process's own, used on the event loop's thread. A statement on a
  WAL database without a checkpoint is a few page writes to the OS cache, cheaper than any hop to a thread. Writers
  of this process take the `Database`'s writer slot first (as every writer does), so `BEGIN IMMEDIATE` waits only
  for another process: it is tried without SQLite's busy handler and retried with asyncio sleeps, so the loop never
  waits on a lock, and the slot is let go while it sleeps (under load a 1 ms sleep ends only after a pass of the
  event loop, tens of milliseconds in which this process's other writers would have queued behind a transaction
  that had not begun; with two processes that was most of the time an image spent in the gateway). The connection
  does not checkpoint (`wal_autocheckpoint=0`): every `CHECKPOINT_EVERY` commits, a passive checkpoint runs on one
  of the pool's connections, in its thread, as SQLite's own would every 1,000 pages.
- **PostgreSQL**: asyncpg connections taken from the engine's pool once (set up as its own are, JSON codecs and
  all) and kept for direct transactions (`_KeptConnections`): a checkout's pre-ping costs three round trips, more
  than the charge itself. asyncpg prepares each statement once per connection.

A driver's error is raised as SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), which is what callers catch.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from grokgate.db.prepared import Prepared, Result, Row, prepare
from grokgate.db.slots import Slots

log = structlog.get_logger(__name__)

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
Cache = dict[tuple[int, frozenset[str]], tuple[Any, Prepared]]
"""Prepared statements by (statement's id, parameter names), with the statement kept so that its id stays its own."""


def _nothing() -> None:
    pass


@dataclass
class Hooks:
    """What the process's metrics hear of direct transactions, as they hear of the pool's (`metrics.watch`)."""

    checkout: Callable[[], None] = _nothing
    checkin: Callable[[], None] = _nothing
    statement: Callable[[], None] = _nothing


class DirectTx:
    """A transaction on the driver's connection. Statements are compiled once per statement object and set of
    parameter names: pass the prebuilt statements of the request path, not statements built per call."""

    def __init__(self, engine: AsyncEngine, cache: Cache, hooks: Hooks) -> None:
        self.engine = engine
        self.hooks = hooks
        self.dialect = engine.dialect
        self.info: dict[str, Any] = {}
        self._cache = cache

    def get_bind(self) -> Engine:
        """The engine, as a session answers (queries that build dialect-specific statements ask it)."""
        return self.engine.sync_engine

    def prepared(self, statement: Any, params: Mapping[str, Any]) -> Prepared:
        key = (id(statement), frozenset(params))
        found = self._cache.get(key)
        if found is None or found[0] is not statement:
            if len(self._cache) > 512:  # statements built per call would otherwise pile up
                self._cache.clear()
            found = (statement, prepare(statement, self.dialect, params))
            self._cache[key] = found
        return found[1]

    async def execute(self, statement: Any, params: Params = None) -> Result:
        self.hooks.statement()
        if params is None or isinstance(params, Mapping):
            prepared = self.prepared(statement, params or {})
            return Result(await self._run(prepared, prepared.bind(params or {})))
        if not params:
            return Result([])
        prepared = self.prepared(statement, params[0])
        await self._run_many(prepared, [prepared.bind(one) for one in params])
        return Result([])

    async def scalar(self, statement: Any, params: Params = None) -> Any:
        return (await self.execute(statement, params)).scalar()

    async def _run(self, prepared: Prepared, values: tuple[Any, ...]) -> list[Row]:
        raise NotImplementedError

    async def _run_many(self, prepared: Prepared, values: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError


Tx = AsyncSession | DirectTx
"""What the request path's queries run in: a session's transaction or a direct one."""


def _translated(error: Exception, sql: str) -> exc.DBAPIError:
    """A driver's error as SQLAlchemy's class of it: a broken connection or a locked database is operational."""
    kind: type[exc.DBAPIError]
    if isinstance(error, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError):
        kind = exc.IntegrityError
    elif isinstance(error, sqlite3.OperationalError | OSError | asyncpg.PostgresConnectionError):
        kind = exc.OperationalError
    elif isinstance(error, asyncpg.InterfaceError):
        kind = exc.InterfaceError
    else:
        kind = exc.DBAPIError
    return kind(sql, None, error)


def connection_lost(error: exc.DBAPIError) -> bool:
    """Whether a PostgreSQL statement failed because its connection was gone (cut by the server while kept idle,
    or broken on the way), as opposed to the server refusing the statement. asyncpg reports such a connection in
    several ways, one of them an `InternalClientError` when the server's goodbye arrived before the statement."""
    orig = error.orig
    if isinstance(orig, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(orig, OSError):
        return True
    return str(getattr(orig, "sqlstate", "") or "").startswith(("08", "57P"))


class SQLiteTx(DirectTx):
    def __init__(self, connection: sqlite3.Connection, engine: AsyncEngine, cache: Cache, hooks: Hooks) -> None:
        super().__init__(engine, cache, hooks)
        self.connection = connection

    async def _run(self, prepared: Prepared, values: tuple[Any, ...]) -> list[Row]:
        try:
            cursor = self.connection.execute(prepared.sql, values)
            rows = cursor.fetchall() if prepared.keys else []
        except sqlite3.Error as error:
            raise _translated(error, prepared.sql) from error
        return [prepared.row(raw) for raw in rows]

    async def _run_many(self, prepared: Prepared, values: list[tuple[Any, ...]]) -> None:
        try:
            self.connection.executemany(prepared.sql, values)
        except sqlite3.Error as error:
            raise _translated(error, prepared.sql) from error


class PostgresTx(DirectTx):
    def __init__(self, connection: Any, engine: AsyncEngine, cache: Cache, hooks: Hooks) -> None:
        super().__init__(engine, cache, hooks)
        self.connection = connection

    async def _run(self, prepared: Prepared, values: tuple[Any, ...]) -> list[Row]:
        try:
            if prepared.keys:
                return [prepared.row(raw) for raw in await self.connection.fetch(prepared.sql, *values)]
            await self.connection.execute(prepared.sql, *values)
            return []
        except Exception as error:
            raise _translated(error, prepared.sql) from error

    async def _run_many(self, prepared: Prepared, values: list[tuple[Any, ...]]) -> None:
        try:
            await self.connection.executemany(prepared.sql, values)
        except Exception as error:
            raise _translated(error, prepared.sql) from error


SQLITE_PRAGMAS = ("synchronous=NORMAL", "foreign_keys=ON", f"mmap_size={256 * 1024**2}")
"""Set on every SQLite connection, direct or pooled. The file is read through a memory map (up to 256 MiB), not
with a `pread` per page missing from the connection's own small cache: at 10,000 videos in flight that was 34 reads
a delivered video (`strace -c` on the serving process), 5 with the map. The mapped pages are the kernel's page
cache, shared by every connection, so a larger per-connection cache (which would grow with each pooled connection)
is not needed."""


class Direct:
    """Opens direct transactions for a `Database` (see the module's docstring)."""

    CHECKPOINT_EVERY = 200
    """Direct commits on SQLite between two checkpoints (a request's transactions write a few pages each)."""
    BUSY_WAIT = 30.0
    """How long `BEGIN IMMEDIATE` is retried while another process writes (SQLite's busy timeout elsewhere)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.writers = Slots(1)
        """SQLite: this process's one writer at a time, shared with the ORM's writing transactions."""
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._cache: Cache = {}
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_readers: list[sqlite3.Connection] = []
        """SQLite: idle connections of direct reads (one, unless a read's block awaits something real)."""
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self.hooks = Hooks()
        self._postgres = None if self.is_sqlite else _KeptConnections(engine, self._cache, self.hooks)

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = self._sqlite_open("wal_autocheckpoint=0")
        return self._sqlite

    def _sqlite_open(self, *pragmas: str) -> sqlite3.Connection:
        # No busy handler (`timeout=0`), from the first statement on: it would wait on the event loop's thread.
        connection = sqlite3.connect(self.engine.url.database or "", isolation_level=None, timeout=0)
        try:
            for pragma in (*SQLITE_PRAGMAS, *pragmas):
                connection.execute(f"PRAGMA {pragma}")
        except BaseException:
            connection.close()
            raise
        return connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DirectTx]:
        """Committed when the block ends, rolled back if it raises. On SQLite the caller holds the write lock."""
        if self.is_sqlite:
            async with self._sqlite_transaction() as tx:
                yield tx
            return
        assert self._postgres is not None
        async with self._postgres.transaction() as tx:
            yield tx

    @asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[DirectTx]:
        connection = self._sqlite_connection()
        await self._begin_immediate(connection)
        self.hooks.checkout()
        self.hooks.statement()  # the BEGIN, counted as the pool's connections count theirs
        try:
            try:
                yield SQLiteTx(connection, self.engine, self._cache, self.hooks)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise _translated(error, "COMMIT") from error
        finally:
            self.hooks.checkin()
            self.writers.release()
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0 and (self._checkpoint is None or self._checkpoint.done()):
            self._checkpoint = asyncio.create_task(self._fold_wal())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[DirectTx]:
        """SQLite only: a read transaction (one snapshot) on a connection of its own, on the event loop's thread.

        Why: a read through the pool's session costs about a dozen hops to aiosqlite's thread, and a job's poll on
        SQLite took 2.2 ms of the gateway's CPU against 0.7 ms on PostgreSQL (`GET /api/v1/jobs/{jobId}`, 16
        connections); the statement itself is a B-tree lookup in the memory map. A reader of a WAL database waits for
        no writer, so it needs neither the writer slot nor a thread. The connection is `query_only`: a write
        slipped into a read fails instead of bypassing the slot. Only another process that holds the file whole
        (recovering the WAL, or in exclusive locking mode) makes a reader wait (`SQLITE_BUSY`): the snapshot is
        retried with asyncio sleeps, as `BEGIN IMMEDIATE` is."""
        connection = await self._reader()
        self.hooks.checkout()
        self.hooks.statement()
        try:
            try:
                yield SQLiteTx(connection, self.engine, self._cache, self.hooks)
            finally:  # nothing to keep; ending the snapshot lets checkpoints go past it
                with contextlib.suppress(sqlite3.Error):  # a connection left in its transaction is closed below
                    connection.execute("ROLLBACK")
        finally:
            self.hooks.checkin()
            if connection.in_transaction:
                connection.close()
            else:
                self._sqlite_readers.append(connection)

    async def _reader(self) -> sqlite3.Connection:
        """A read connection (an idle one, or a new one) in a read transaction whose snapshot is taken: a deferred
        `BEGIN` takes it at the first read, so one is made here, where `SQLITE_BUSY` can still be retried."""
        gave_up = time.monotonic() + self.BUSY_WAIT
        pause = 0.001
        while True:
            connection: sqlite3.Connection | None = None
            try:
                connection = self._sqlite_readers.pop() if self._sqlite_readers else self._sqlite_open("query_only=ON")
                connection.execute("BEGIN")
                connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                return connection
            except sqlite3.OperationalError as error:
                if connection is not None:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    self._sqlite_readers.append(connection)
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > gave_up:
                    raise _translated(error, "BEGIN") from error
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @asynccontextmanager
    async def autocommit(self, *, fresh: bool = False) -> AsyncIterator[DirectTx]:
        """PostgreSQL only: statements that each commit by themselves (a single statement or function call that
        must be atomic is, without a transaction around it), on a kept connection (`fresh`: a new one)."""
        assert self._postgres is not None, "SQLite's direct connection runs transactions only"
        async with self._postgres.autocommit(fresh=fresh) as tx:
            yield tx

    async def _fold_wal(self) -> None:
        """A passive checkpoint (it never waits for readers or writers), off the event loop."""
        try:
            async with self.engine.connect() as pooled:  # outside a transaction, where a checkpoint can run
                aiosqlite_connection = (await pooled.get_raw_connection()).driver_connection
                assert aiosqlite_connection is not None
                await aiosqlite_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one will try again; the WAL only grows meanwhile
            log.warning("db.checkpoint_failed", exc_info=True)

    async def _begin_immediate(self, connection: sqlite3.Connection) -> None:
        """Take the writer slot and SQLite's write lock; returns holding both. Another process's writer is waited
        for with asyncio sleeps, without the slot."""
        gave_up = time.monotonic() + self.BUSY_WAIT
        pause = 0.001
        while True:
            await self.writers.acquire()
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                self.writers.release()
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > gave_up:
                    raise _translated(error, "BEGIN IMMEDIATE") from error
            except BaseException:
                self.writers.release()
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def close(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.cancel()
            self._checkpoint = None
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        readers, self._sqlite_readers = self._sqlite_readers, []
        for reader in readers:
            reader.close()
        if self._postgres is not None:
            await self._postgres.close()


class _KeptConnections:
    """PostgreSQL connections of direct transactions: taken from the engine's pool once (so they are set up as
    its own are), then kept out of it and reused without its pre-ping, which costs three round trips a checkout.
    A kept connection that broke while idle fails its `BEGIN`, before anything was done: the transaction starts
    again on a new one. At most `SIZE` are open, as many as the pool keeps."""

    SIZE = 10

    def __init__(self, engine: AsyncEngine, cache: Cache, hooks: Hooks) -> None:
        self.engine = engine
        self._cache = cache
        self.hooks = hooks
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(self.SIZE)

    async def _new(self) -> Any:
        pooled = await self.engine.raw_connection()
        driver = pooled.driver_connection
        pooled.detach()  # ours now: the pool opens another in its place when it needs one
        return driver

    async def _begun(self) -> tuple[Any, Any]:
        """A connection in a started transaction: an idle one if its `BEGIN` goes through, else a new one."""
        while self._idle:
            driver = self._idle.pop()
            try:
                began = driver.transaction()
                await began.start()
                return driver, began
            except Exception:  # closed, or cut by the server while kept (asyncpg may not have read why yet)
                driver.terminate()  # nothing was done on it: the transaction goes to the next one
        driver = await self._new()
        try:
            began = driver.transaction()
            await began.start()
        except Exception as error:
            driver.terminate()
            raise _translated(error, "BEGIN") from error
        return driver, began

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DirectTx]:
        async with self._slots:
            driver, began = await self._begun()
            self.hooks.checkout()
            try:
                try:
                    yield PostgresTx(driver, self.engine, self._cache, self.hooks)
                except BaseException:
                    try:
                        await began.rollback()
                    except Exception:  # the connection broke, and the server rolled the transaction back with it
                        driver.terminate()
                    raise
                try:
                    await began.commit()
                except Exception as error:
                    driver.terminate()  # whether it committed is unknown: the connection is not used again
                    raise _translated(error, "COMMIT") from error
            finally:
                self.hooks.checkin()
                if driver.is_closed() or driver.is_in_transaction():  # a query cut off by a cancellation
                    driver.terminate()
                else:
                    self._idle.append(driver)

    @asynccontextmanager
    async def autocommit(self, *, fresh: bool = False) -> AsyncIterator[DirectTx]:
        """A kept connection (`fresh`: a new one) outside any transaction: each statement commits by itself. One
        found closed is replaced before anything is sent; one that fails a statement is kept only if still sound."""
        async with self._slots:
            driver = self._idle.pop() if self._idle and not fresh else await self._new()
            if driver.is_closed():
                driver = await self._new()
            self.hooks.checkout()
            sound = False
            try:
                yield PostgresTx(driver, self.engine, self._cache, self.hooks)
                sound = True
            except Exception as error:  # a statement the server refused leaves the connection usable
                sound = not (isinstance(error, exc.DBAPIError) and connection_lost(error))
                raise
            finally:  # a cancellation may have cut a statement off: that connection is not used again
                self.hooks.checkin()
                if sound and not driver.is_closed() and not driver.is_in_transaction():
                    self._idle.append(driver)
                else:
                    driver.terminate()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for driver in idle:
            await driver.close()
