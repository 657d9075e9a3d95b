"""Running as several processes: API-only servers plus a separate worker, several workers on one port, graceful
shutdown, readiness, request ids, and the database going away under traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import SANDBOX_KEY, Gateway, Sandbox
from tests.e2e.process import GROKGATE, GatewayProcess, gateway_env, run_cli
from tests.support import BACKEND, LiveServer, make_tenant, wait_for, wait_job

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(db_url: str, sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return gateway_env(
        db_url,
        sandbox.url,
        GROKGATE_POLL_INTERVAL="0.1",
        GROKGATE_JOB_LEASE="2",
        GROKGATE_UPSTREAM_BACKOFF="0.01",
        GROKGATE_DATA_DIR=str(tmp_path / "data"),
    )


@pytest.fixture
async def processes() -> AsyncIterator[list[Any]]:
    started: list[Any] = []
    yield started
    for item in started:
        if isinstance(item, GatewayProcess):
            item.stop()
        elif item.poll() is None:
            item.send_signal(signal.SIGTERM)
            item.wait(timeout=20)


async def video_done(sandbox: Sandbox, request_id: str) -> bool:
    """Whether the sandbox (as xAI would, to whoever polls it) says the video is finished."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {SANDBOX_KEY}"}) as client:
        answer = await client.get(f"{sandbox.url}/v1/videos/{request_id}")
    return answer.status_code == 200 and answer.json().get("status") == "done"


async def test_api_only_server_and_a_separate_worker(
    db_url: str, env: dict[str, str], tmp_path: Path, processes: list[Any], sandbox: Sandbox
) -> None:
    import subprocess

    tenant = await make_tenant(db_url)
    api = await GatewayProcess({**env, "GROKGATE_RUN_POLLER": "false"}, tmp_path / "api.log").start()
    processes.append(api)
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        submitted = (
            await client.post(
                "/api/v1/models/grok-imagine", json={"prompt": "split", "duration": 1}, headers=tenant.headers
            )
        ).json()
        job_id = submitted["jobId"]
        await wait_for(lambda: video_done(sandbox, submitted["externalJobId"]), what="the sandbox to finish the video")
        # The video is ready upstream, but no process polls yet.
        assert (await client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).json()["status"] == "pending"
        log = (tmp_path / "worker.log").open("ab")
        worker = subprocess.Popen([GROKGATE, "worker"], env=env, stdout=log, stderr=log)
        processes.append(worker)
        try:
            job = await wait_job(client, tenant, job_id)
        except AssertionError:
            raise AssertionError((tmp_path / "worker.log").read_text()[-3000:]) from None
        assert job["status"] == "completed"
        # The worker stops cleanly on SIGTERM.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0


def _worker_answering(parent: int, server_port: int, client_port: int) -> int | None:
    """The child of `parent` holding the server end of the connection from `client_port`: who answered it."""
    import psutil

    for child in psutil.Process(parent).children(recursive=True):
        try:
            held = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        for conn in held:
            if conn.laddr and conn.laddr.port == server_port and conn.raddr and conn.raddr.port == client_port:
                return child.pid
    return None


async def _on_new_connection(
    parent: int, port: int, method: str, path: str, **kwargs: Any
) -> tuple[int | None, httpx.Response]:
    """One request on a connection of its own, and the worker process that answered it (read from the kernel's
    table of open connections while the connection is still kept alive)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        response = await client.request(method, path, **kwargs)
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        return await asyncio.to_thread(_worker_answering, parent, port, client_port), response


async def _until_each_worker_answers(
    proc: Any, port: int, workers: int, method: str, path: str, log: Path, *, at_least: int = 1, **kwargs: Any
) -> dict[int, list[httpx.Response]]:
    """Keep opening new connections (a few at once, so that the kernel hands them to every process) until
    `workers` different processes have each answered `at_least` requests; bounded, so a worker that never serves
    fails the test with the server's log."""
    answers: dict[int, list[httpx.Response]] = {}
    deadline = time.monotonic() + 90
    while len(answers) < workers or any(len(got) < at_least for got in answers.values()):
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not every worker answered {path}: {sorted(answers)}\n{log.read_text()[-3000:]}")
        try:
            batch = await asyncio.gather(
                *(_on_new_connection(proc.pid, port, method, path, **kwargs) for _ in range(4))
            )
        except httpx.TransportError:  # not listening yet
            await asyncio.sleep(0.1)
            continue
        for pid, response in batch:
            if pid is not None:
                answers.setdefault(pid, []).append(response)
    return answers


async def test_several_workers_share_one_port_and_one_metrics_view(
    env: dict[str, str], tmp_path: Path, db_url: str
) -> None:
    """Two API processes on one port; whichever answers a scrape reports what both did (multiprocess mode)."""
    import subprocess

    import psutil
    from prometheus_client.parser import text_string_to_metric_families

    from tests.support import free_port

    tenant = await make_tenant(db_url)
    port = free_port()
    shared = tmp_path / "metrics"
    (shared / "stale").mkdir(parents=True)
    (shared / "counter_99999.db").write_bytes(b"left by an earlier run")  # must be cleared, not added in
    log_path = tmp_path / "workers.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [GROKGATE, "serve", "--workers", "2", "--port", str(port)],
        env={**env, "PROMETHEUS_MULTIPROC_DIR": str(shared), "GROKGATE_METRICS_TOKEN": "scrape"},
        stdout=log,
        stderr=log,
    )
    workers: set[int] = set()
    try:
        ready = await _until_each_worker_answers(proc, port, 2, "GET", "/readyz", log_path)
        assert {response.status_code for got in ready.values() for response in got} == {200}
        workers = set(ready)
        # Images served by each of the two processes, then a scrape answered by each of them.
        images = await _until_each_worker_answers(
            proc,
            port,
            2,
            "POST",
            "/api/v1/models/grok-imagine",
            log_path,
            at_least=2,
            json={"prompt": "shared view", "model": "text-to-image"},
            headers=tenant.headers,
        )
        assert set(images) == workers
        statuses = [response.status_code for got in images.values() for response in got]
        assert statuses == [200] * len(statuses)
        route = {"route": "/api/v1/models/grok-imagine", "status": "200"}
        scrapes = await _until_each_worker_answers(
            proc, port, 2, "GET", "/metrics", log_path, headers={"Authorization": "Bearer scrape"}
        )
        assert set(scrapes) == workers
        for pid, answered in scrapes.items():
            for scrape in answered:
                counted = [
                    sample.value
                    for family in text_string_to_metric_families(scrape.text)
                    for sample in family.samples
                    if sample.name == "grokgate_http_requests_total" and sample.labels == route
                ]
                assert counted == [len(statuses)], f"process {pid} reports {counted}, both served {len(statuses)}"
        writers = {path.name.rsplit("_", 1)[1].removesuffix(".db") for path in shared.glob("counter_*.db")}
        assert writers == {str(pid) for pid in workers}, "each worker writes its own counters; stale ones are gone"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # SIGTERM stops the whole group: the manager exits cleanly and takes its workers with it.
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)


def _listening(pid: int, port: int) -> set[int]:
    """The inodes of the sockets process `pid` listens with on `port` (from /proc: psutil does not show them)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    listening.add(int(fields[9]))
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    return held & listening


async def test_each_worker_listens_on_a_socket_of_its_own_and_a_dead_one_is_replaced_on_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`serve --workers 2`: one SO_REUSEPORT socket per worker, so the kernel spreads connections over them
    instead of the first worker awake taking every waiting one; a worker killed with SIGKILL comes back on the
    same socket and serves again."""
    import subprocess

    import psutil

    from tests.support import free_port

    port = free_port()
    log_path = tmp_path / "workers.log"
    proc = subprocess.Popen(
        [GROKGATE, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        workers = set(await _until_each_worker_answers(proc, port, 2, "GET", "/healthz", log_path))
        sockets = {pid: _listening(pid, port) for pid in workers}
        assert all(len(held) == 1 for held in sockets.values()), sockets
        assert len(set.union(*sockets.values())) == 2, f"the workers share a listening socket: {sockets}"
        # A second server on the same port is refused, not let in beside the first by SO_REUSEPORT.
        second = subprocess.run(
            [GROKGATE, "serve", "--workers", "2", "--port", str(port)], env=env, capture_output=True, timeout=60
        )
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr.decode(), second.stderr.decode()[-2000:]
        # Connections opened at once land on both (a shared socket gave a burst to whichever worker woke first).
        landed = await asyncio.gather(*(_on_new_connection(proc.pid, port, "GET", "/healthz") for _ in range(32)))
        assert {pid for pid, _ in landed} == workers
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)

        def replaced() -> dict[int, set[int]]:
            """New processes that listen on the port (not multiprocessing's helpers)."""
            children = {child.pid for child in psutil.Process(proc.pid).children()} - workers
            return {pid: held for pid in children if (held := _listening(pid, port))}

        found = await wait_for(
            lambda: asyncio.to_thread(replaced), what="a worker in the killed one's place", timeout=60
        )
        ((new, held),) = found.items()
        assert held == sockets[killed]
        again = await _until_each_worker_answers(proc, port, 2, "GET", "/healthz", log_path)
        assert set(again) == workers - {killed} | {new}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log_path.read_text()[-3000:]


async def test_sigterm_finishes_in_flight_requests_then_exits(
    db_url: str, env: dict[str, str], tmp_path: Path, sandbox: Sandbox
) -> None:
    tenant = await make_tenant(db_url)
    server = await GatewayProcess({**env, "GROKGATE_SHUTDOWN_GRACE": "10"}, tmp_path / "g.log").start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        pending = asyncio.create_task(
            client.post(
                "/api/v1/models/grok-imagine",
                json={"prompt": "slow [sandbox:hang=1]", "model": "text-to-image"},
                headers=tenant.headers,
            )
        )
        # In flight: the gateway has asked the sandbox, which holds its answer for a second.
        await wait_for(lambda: sandbox.requests("/v1/images"), what="the request to reach the sandbox")
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        response = await pending
        assert response.status_code == 200
        # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is a clean exit here.
        assert await asyncio.to_thread(server.proc.wait, 15) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10


async def test_a_stopping_worker_cuts_a_hung_delivery_short_and_another_sends_it(
    db_url: str, env: dict[str, str], tmp_path: Path, processes: list[Any]
) -> None:
    """SIGTERM ends a worker within GROKGATE_SHUTDOWN_GRACE even while a webhook receiver hangs (its delivery
    timeout is far longer), and the cut-short delivery is handed back, so the next worker sends it at once."""
    import subprocess

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    arrived: list[float] = []
    release = asyncio.Event()

    async def hook(request: Request) -> Response:
        arrived.append(time.monotonic())
        if len(arrived) == 1:
            # The first receipt hangs far past the worker's grace (until the test is done with it).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 60)
        return Response(status_code=204)

    settings = {
        **env,
        "GROKGATE_WEBHOOK_ALLOW_PRIVATE": "1",
        "GROKGATE_WEBHOOK_TIMEOUT": "60",
        "GROKGATE_SHUTDOWN_GRACE": "1",
    }
    tenant = await make_tenant(db_url)
    async with LiveServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        api = await GatewayProcess({**settings, "GROKGATE_RUN_POLLER": "false"}, tmp_path / "api.log").start()
        processes.append(api)

        def start_worker(name: str) -> subprocess.Popen[bytes]:
            log = (tmp_path / f"{name}.log").open("ab")
            worker = subprocess.Popen([GROKGATE, "worker"], env=settings, stdout=log, stderr=log)
            processes.append(worker)
            return worker

        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            answer = await client.post(
                "/api/v1/models/grok-imagine",
                json={"prompt": "hooked", "model": "text-to-image", "webhookUrl": f"{receiver.url}/hook"},
                headers=tenant.headers,
            )
            assert answer.status_code == 200, answer.text
        first = start_worker("worker1")
        await wait_for(lambda: arrived, timeout=60, what="the delivery to reach the receiver")
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.wait, 20) == 0, (tmp_path / "worker1.log").read_text()[-3000:]
        assert time.monotonic() - started < 10  # the grace (1 s) plus the stop, not the 60 s delivery timeout
        assert "runtime.rounds_cut_short" in (tmp_path / "worker1.log").read_text()
        start_worker("worker2")
        # Handed back: the next worker sends it as soon as it runs, not when a lease would have run out.
        await wait_for(lambda: len(arrived) >= 2, timeout=60, what="the second worker to deliver")
        release.set()


async def test_readyz_and_request_ids(gateway: Gateway) -> None:
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    response = await gateway.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await gateway.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"].startswith("req_")


async def test_readyz_reports_redis_down(gateway_factory: Callable[..., Any]) -> None:
    from tests.support import free_port

    async with gateway_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0") as gw:
        response = await gw.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": "ok", "redis": "unavailable", "upstream": "ok"}


@pytest.mark.skipif(BACKEND != "postgresql", reason="kills PostgreSQL backends")
async def test_killed_database_connections_are_survived(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=10_000)
    database = gateway.db_url.rsplit("/", 1)[1]
    admin_dsn = gateway.db_url.rsplit("/", 1)[0] + "/test"
    statuses: list[int] = []

    async def traffic(i: int) -> None:
        response = await gateway.generate(tenant, {"prompt": f"t{i}", "model": "text-to-image"})
        statuses.append(response.status_code)

    for round_ in range(3):
        await asyncio.gather(*(traffic(round_ * 10 + i) for i in range(10)))
        conn = await asyncpg.connect(admin_dsn)
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await conn.close()
        assert killed >= 1
    await asyncio.gather(*(traffic(100 + i) for i in range(10)))
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-10:] == [200] * 10  # recovered by itself
    # Money stays exact: checked for every job by the db_url fixture.


async def test_admin_report(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=100)
    assert (await gateway.generate(tenant, {"prompt": "sold", "model": "text-to-image"})).status_code == 200
    assert (
        await gateway.generate(tenant, {"prompt": "x [sandbox:reject]", "model": "text-to-image"})
    ).status_code == 400
    env = gateway_env(gateway.db_url, "http://unused", GROKGATE_CREDIT_USD="0.01")
    result = await asyncio.to_thread(
        run_cli, "admin", "report", "--org", tenant.org_id, "--since", "1d", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["jobs"] == {"total": 2, "completed": 1, "failed": 1}
    assert report["credits"] == {"charged": 16, "refunded": 8, "net": 8, "granted": 100}
    assert report["upstreamCostUsd"] == 0.02
    assert report["revenueUsd"] == 0.08
    assert report["marginUsd"] == 0.06
    assert report["bySubModel"] == {
        "text-to-image": {"jobs": 2, "creditsNet": 8, "revenueUsd": 0.08, "upstreamCostUsd": 0.02, "marginUsd": 0.06}
    }


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite is a file in the process: it cannot go away")
async def test_database_gone_then_back(db_url: str, gateway_factory: Callable[..., Any]) -> None:
    """The database stops answering (every connection cut, new ones refused) in the middle of traffic, then comes
    back on the same address: meanwhile every request gets 503 SERVICE_UNAVAILABLE with Retry-After at once
    (no hang), liveness stays up and readiness says why; afterwards service resumes by itself and the videos
    submitted before the outage are polled to the end. Money stays exact (the db_url fixture checks)."""
    from sqlalchemy.engine import make_url

    from tests.support import TcpProxy

    real = make_url(db_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.up()
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    tenant = await make_tenant(db_url, credits=10_000)
    async with gateway_factory(database_url=through_proxy, poll_interval=0.2) as gw:
        videos = [
            (await gw.generate(tenant, {"prompt": f"before {i}", "duration": 1})).json()["jobId"] for i in range(4)
        ]
        assert (await gw.generate(tenant, {"prompt": "img", "model": "text-to-image"})).status_code == 200

        await proxy.down()
        during = await asyncio.gather(
            *(gw.generate(tenant, {"prompt": f"during {i}", "model": "text-to-image"}) for i in range(5)),
            gw.client.get(f"/api/v1/jobs/{videos[0]}", headers=tenant.headers),
        )
        assert [r.status_code for r in during] == [503] * 6
        assert {r.json()["code"] for r in during} == {"SERVICE_UNAVAILABLE"}
        assert all(r.headers.get("retry-after") for r in during)
        assert (await gw.client.get("/healthz")).status_code == 200
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unavailable")

        await proxy.up()

        async def serving() -> bool:
            response = await gw.generate(tenant, {"prompt": "after", "model": "text-to-image"})
            assert response.status_code in (200, 503), response.text
            return response.status_code == 200

        await wait_for(serving, timeout=30, interval=0.2, what="service to resume by itself")
        after = await asyncio.gather(
            *(gw.generate(tenant, {"prompt": f"after {i}", "model": "text-to-image"}) for i in range(5))
        )
        assert [r.status_code for r in after] == [200] * 5
        for job_id in videos:
            assert (await wait_job(gw.client, tenant, job_id))["status"] == "completed"
    await proxy.down()
