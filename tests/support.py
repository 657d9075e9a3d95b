"""Helpers the tests share: live servers on loopback, database set-up, and the money invariants."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import func, select, text

from grokgate.billing.models import LedgerEntry
from grokgate.db.engine import Database
from grokgate.jobs import states
from grokgate.jobs.models import Job
from grokgate.orgs import service as orgs
from grokgate.orgs.models import Organization

PG_URL = os.environ.get("GROKGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKEND = os.environ.get("GROKGATE_TEST_DB", "sqlite")
TABLES = (
    "auth_sessions",
    "invitations",
    "memberships",
    "members",
    "webhook_attempts",
    "webhook_deliveries",
    "idempotency_keys",
    "ledger_entries",
    "key_spend",
    "admin_writes",
    "operator_tokens",
    "operators",
    "jobs",
    "api_keys",
    "organizations",
    "upstream_keys",
)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


_PORTS = {"sqlite": range(12000, 21000), "postgresql": range(21000, 30000)}
"""Ports handed to server processes, one block per database pass. The two passes run side by side, and a port
the kernel chose (then let go) could be chosen again for the other pass before our process binds it: the test
would then talk to the other pass's server. These blocks sit below the kernel's ephemeral range, so only this
function hands them out, each pass from its own."""


_CHOOSER = random.Random()  # its own generator: tests that seed the global one must not make it repeat itself


def free_port() -> int:
    """A port no other test process is given and nothing listens on now, for a server process to bind."""
    block = _PORTS.get(BACKEND, _PORTS["sqlite"])
    for _ in range(200):
        port = _CHOOSER.choice(block)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this pass's block")


class _PromptServer(uvicorn.Server):
    """uvicorn as it is, but told to stop it stops at once instead of at its next 0.1 s tick: two servers stop at
    the end of nearly every test."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.1)


class LiveServer:
    """An ASGI app served by a real uvicorn on a loopback port, inside the test's event loop."""

    def __init__(self, app: Any = None, *, make_app: Callable[[str], Any] | None = None) -> None:
        """Serve `app`, or the app `make_app(url)` builds once the port (and so the URL) is known."""
        self._sock = free_socket()
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = make_app(self.url) if make_app is not None else app
        self._server = _PromptServer(uvicorn.Config(self.app, lifespan="on", log_level="warning", access_log=False))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._server.stopping.set()
        if self._task is not None:
            await self._task
        self._sock.close()


class TcpProxy:
    """A TCP forwarder on a loopback port, to take a dependency away and bring it back: `down()` stops listening
    and cuts every open connection (as a database restart or a network partition would), `up()` listens again on
    the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._open |= {client_writer, upstream_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        self._open -= {client_writer, upstream_writer}


@dataclass
class Tenant:
    org_id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_tenant(db_url: str, credits: int = 1000, name: str = "acme") -> Tenant:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            org = await orgs.create_org(session, name, credits)
            row, secret = await orgs.create_key(session, org.id)
        return Tenant(org_id=org.id, key=secret, key_id=row.id)
    finally:
        await db.dispose()


async def make_images(client: httpx.AsyncClient, tenant: Tenant, count: int, label: str = "img") -> list[int]:
    """`count` text-to-image requests at once through `client`; their status codes, in order."""
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/models/grok-imagine",
                json={"prompt": f"{label} {i}", "model": "text-to-image"},
                headers=tenant.headers,
            )
            for i in range(count)
        )
    )
    return [response.status_code for response in responses]


async def counts(db_url: str) -> dict[str, int]:
    """Rows in every table: 'changes nothing' is checked by comparing these before and after."""
    db = Database(db_url)
    try:
        async with db.reader() as session:
            return {
                table: int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in TABLES
            }
    finally:
        await db.dispose()


async def jobs_in_flight(session: Any, org_id: str) -> tuple[int, int]:
    """(the organisation's number of jobs in flight as its row keeps it, a count of its active jobs)."""
    kept = await session.scalar(select(Organization.active_jobs).where(Organization.id == org_id))
    counted = await session.scalar(select(func.count()).where(Job.org_id == org_id, Job.status.in_(states.ACTIVE)))
    return int(kept or 0), int(counted or 0)


async def assert_money_exact(db_url: str) -> None:
    """The invariants of the ledger, over everything a test did.

    - every organisation's cached balance equals the sum of its ledger rows, and is never negative;
    - every organisation's kept number of jobs in flight (`active_jobs`) equals a count of them;
    - every job was charged exactly once, its price;
    - a failed or cancelled job was refunded exactly once, its whole charge; a completed one at most once, what
      it recorded as refunded (images withheld), less than its charge; an active one never.
    """
    db = Database(db_url)
    try:
        async with db.reader() as session:
            for org in (await session.scalars(select(Organization))).all():
                total = await session.scalar(
                    select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.org_id == org.id)
                )
                assert org.credits_remaining == total, f"{org.id}: balance {org.credits_remaining} != ledger {total}"
                assert org.credits_remaining >= 0
                kept, counted = await jobs_in_flight(session, org.id)
                assert kept == counted, f"{org.id}: {kept} jobs in flight kept, {counted} counted"
            rows = (await session.execute(select(LedgerEntry.job_id, LedgerEntry.kind, LedgerEntry.amount))).all()
            movements: dict[tuple[str, str], list[int]] = {}
            for job_id, kind, amount in rows:
                if job_id is not None:
                    movements.setdefault((job_id, kind), []).append(amount)
            for job in (await session.scalars(select(Job))).all():
                assert movements.get((job.id, "charge")) == [-job.credits_charged], job.id
                refunds = movements.get((job.id, "refund"), [])
                if job.status in ("failed", "cancelled"):
                    assert refunds == [job.credits_charged], f"{job.id} {job.status}, refunds {refunds}"
                    assert job.credits_refunded == job.credits_charged
                elif job.status == "completed" and job.credits_refunded:
                    assert refunds == [job.credits_refunded], f"{job.id} completed, refunds {refunds}"
                    assert 0 < job.credits_refunded < job.credits_charged
                else:
                    assert refunds == [], f"{job.id} is {job.status} but was refunded {refunds}"
    finally:
        await db.dispose()


async def wait_for(
    check: Callable[[], Awaitable[Any] | Any], *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; the bound is a safety net, not a measurement."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def wait_job(client: httpx.AsyncClient, tenant: Tenant, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = await wait_for(finished, timeout=timeout, what=f"job {job_id} to finish")
    return result


@contextlib.asynccontextmanager
async def client_for(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


async def kill_connections(db_url: str) -> int:
    """End every other connection to the test's PostgreSQL database, as a restart or an administrator would;
    how many were ended."""
    admin = await asyncpg.connect(db_url)
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return killed


@contextlib.asynccontextmanager
async def loop_ticks(every: float = 0.01) -> AsyncIterator[Callable[[], int]]:
    """Counts the event loop's turns of `every` seconds while the block runs (the block reads the count from the
    function it is given): a call that blocks the loop shows as turns that did not happen."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(every)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        yield lambda: ticks
    finally:
        ticker.cancel()
