"""grokgate's benchmark: what the gateway costs per request, how many slow upstream calls it holds, how many
videos it tracks, side by side with baselines, on SQLite and PostgreSQL. Run it with `scripts/bench [--quick]`.

Every server is a real process on loopback; the load comes from `hey` (a Go load generator) in its own process.
Results print as a table and are written to `bench/results/<timestamp>.json`, ending with a `summary` object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("GROKGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IMAGE_BODY = json.dumps({"prompt": "benchmark image", "model": "text-to-image"})
VIDEO_BODY = json.dumps({"prompt": "benchmark video", "duration": 1})
BIG_PLAN = json.dumps({"default": {"rpm": 10**9, "rph": 10**9, "rpd": 10**9, "concurrent": 10**9}})


@dataclass
class Sizes:
    name: str
    requests: int
    slow_clients: int
    slow_requests: int
    ledger_charges: int
    videos_small: int
    videos_large: int
    video_delay: tuple[float, float]
    poll_interval: float


SIZES = {
    "full": Sizes("full", 3000, 1000, 5000, 5000, 100, 10_000, (20.0, 40.0), 5.0),
    "quick": Sizes("quick", 256, 200, 400, 600, 64, 512, (3.0, 6.0), 2.0),
    "tiny": Sizes("tiny", 30, 10, 20, 50, 5, 10, (0.2, 0.4), 0.2),
}
HELD = {"full": (10_000, 90.0), "quick": (300, 40.0), "tiny": (20, 8.0)}
"""Clients held at once in the held-clients scenario, and seconds from its start to the moment every video ends."""
SCENARIOS = ("image_path", "slow_upstream", "ledger", "videos", "held_clients")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    peak_rss: int = 0

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        """This process's CPU and its live children's (`serve --workers N` answers from its children)."""
        total = 0.0
        for proc in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def sample_rss(self) -> int:
        rss = int(self.ps.memory_info().rss)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(
    name: str, args: list[str], env: dict[str, str], port: int, workdir: Path, ready: str = "/healthz"
) -> Process:
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + ready, timeout=1).status_code < 500:
                return Process(name, proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")


@dataclass
class Load:
    requests: int
    concurrency: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)


def hey(
    url: str,
    *,
    n: int,
    c: int,
    method: str = "GET",
    body: str | None = None,
    key: str | None = None,
    during: Any = None,
) -> Load:
    """Run `hey`; `during()` is called every 100 ms while it runs (to sample the server)."""
    c = min(c, n)  # hey needs at least one request per client
    args = ["hey", "-n", str(n), "-c", str(c), "-m", method, "-t", "120", "-o", "csv"]
    if key:
        args += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        args += ["-T", "application/json", "-d", body]
    started = time.perf_counter()
    with subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        if during is not None:
            while proc.poll() is None:
                during()
                time.sleep(0.1)
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"hey failed: {err}")
    seconds = time.perf_counter() - started
    rows = list(csv.DictReader(io.StringIO(out)))
    n = len(rows) if rows else n  # hey sends n // c per client: count what was really sent
    latencies = sorted(float(row["response-time"]) * 1000 for row in rows)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status-code"]] = statuses.get(row["status-code"], 0) + 1
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else float("nan")

    return Load(n, c, round(seconds, 3), round(ok / seconds, 1), pct(0.5), pct(0.99), n - ok, statuses)


METRICS_TOKEN = secrets.token_hex(8)
"""The gateways' GROKGATE_METRICS_TOKEN: /metrics on the API port answers only with it."""


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if ("{" in name and line.startswith(name)) or line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Bench:
    def __init__(self, sizes: Sizes, workdir: Path, *, workers: int = 1, same_image: bool = False) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.workers = workers
        """`grokgate serve --workers N` for the gateway (1: one process)."""
        self.same_image = same_image
        """The sandbox hands out one cached PNG (one stored object) instead of distinct images."""
        self.results: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {**self.sizes.__dict__, "workers": self.workers, "distinct_images": not self.same_image}

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GROKGATE_", "XAI_"))}
        env.update(
            {
                "GROKGATE_LOG_LEVEL": "warning",
                "GROKGATE_PLANS": BIG_PLAN,
                "GROKGATE_METRICS_TOKEN": METRICS_TOKEN,
                # The benchmark's sandbox has no rate limits: what is measured is the gateway, not xAI's pace.
                "GROKGATE_XAI_IMAGE_RPS": "0",
                "GROKGATE_XAI_VIDEO_RPS": "0",
                # Images asked inline (`b64_json`), as a deployment that wants the cheaper path would.
                "GROKGATE_XAI_IMAGE_FORMAT": "b64_json",
                **extra,
            }
        )
        return env

    def sandbox(self, image_delay: float = 0.0, video_delay: tuple[float, float] = (1.0, 1.0)) -> Process:
        port = free_port()
        args = [
            str(BIN / "grokgate"),
            "sandbox",
            "--bench",
            "--inspect",
            "--port",
            str(port),
            "--api-key",
            "bench-key",
            "--image-delay",
            str(image_delay),
            "--video-delay-min",
            str(video_delay[0]),
            "--video-delay-max",
            str(video_delay[1]),
            *(["--same-image"] if self.same_image else []),
        ]
        return start("sandbox", args, self.env(), port, self.workdir, ready="/_sandbox/videos")

    @contextmanager
    def database(self, backend: str) -> Any:
        if backend == "sqlite":
            path = self.workdir / f"bench-{secrets.token_hex(3)}.db"
            yield f"sqlite:///{path}"
            return
        import asyncpg

        name = f"grokgate_bench_{secrets.token_hex(3)}"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(PG_URL)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        try:
            yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def gateway(self, db_url: str, sandbox: Process, **settings: str) -> tuple[Process, str]:
        env = self.env(
            GROKGATE_DATABASE_URL=db_url,
            XAI_API_KEY="bench-key",
            XAI_BASE_URL=f"{sandbox.url}/v1",
            GROKGATE_DATA_DIR=str(self.workdir / f"data-{secrets.token_hex(3)}"),
            **{f"GROKGATE_{k.upper()}": v for k, v in settings.items()},
        )
        cli = [str(BIN / "grokgate")]
        org = json.loads(
            subprocess.run(
                [*cli, "admin", "create-org", "--name", "bench", "--credits", str(10**9), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        key = json.loads(
            subprocess.run(
                [*cli, "admin", "create-key", "--org", org["id"], "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["key"]
        port = free_port()
        env["GROKGATE_PORT"] = str(port)
        serve = [*cli, "serve", *(["--workers", str(self.workers)] if self.workers > 1 else [])]
        return start("gateway", serve, env, port, self.workdir), key

    @contextmanager
    def served(
        self, backend: str, *, image_delay: float = 0.0, video_delay: tuple[float, float] = (1.0, 1.0), **settings: str
    ) -> Any:
        """A sandbox, a fresh database and a gateway on them; yields (gateway, key, database URL, sandbox)."""
        sandbox = self.sandbox(image_delay=image_delay, video_delay=video_delay)
        try:
            with self.database(backend) as url:
                gateway, key = self.gateway(url, sandbox, **settings)
                try:
                    yield gateway, key, url, sandbox
                finally:
                    gateway.stop()
        finally:
            sandbox.stop()

    def floor(self) -> dict[str, Any]:
        port = free_port()
        args = [
            str(BIN / "uvicorn"),
            "bench.floor:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        env = self.env(PYTHONPATH=str(ROOT))
        proc = start("floor", args, env, port, self.workdir, ready="/")
        try:
            return {f"c{c}": hey(proc.url + "/", n=self.sizes.requests, c=c).__dict__ for c in (1, 16, 64)}
        finally:
            proc.stop()

    def upstream_alone(self) -> dict[str, Any]:
        sandbox = self.sandbox()
        try:
            load = hey(
                f"{sandbox.url}/v1/images/generations",
                n=self.sizes.requests,
                c=16,
                method="POST",
                body=json.dumps({"prompt": "b", "model": "grok-imagine-image"}),
                key="bench-key",
            )
            return load.__dict__
        finally:
            sandbox.stop()

    def image_path(self, backend: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self.served(backend) as (gateway, key, _, _):
            url = gateway.url + "/api/v1/models/grok-imagine"
            hey(url, n=20, c=4, method="POST", body=IMAGE_BODY, key=key)  # warm-up
            for c in (1, 16, 64):
                before = gateway.cpu_seconds()
                load = hey(url, n=self.sizes.requests, c=c, method="POST", body=IMAGE_BODY, key=key)
                cpu = gateway.cpu_seconds() - before
                out[f"c{c}"] = {**load.__dict__, "gateway_cpu_ms_per_request": round(1000 * cpu / load.requests, 2)}
        return out

    def slow_upstream(self, backend: str) -> dict[str, Any]:
        delay = 2.0
        with self.served(backend, image_delay=delay) as (gateway, key, _, _):
            c = self.sizes.slow_clients
            in_use: list[float] = []

            def sample() -> None:
                in_use.append(metric(gateway.url, "grokgate_db_connections_in_use"))

            load = hey(
                gateway.url + "/api/v1/models/grok-imagine",
                n=self.sizes.slow_requests,
                c=c,
                method="POST",
                body=IMAGE_BODY,
                key=key,
                during=sample,
            )
            bound = c / delay
            return {
                **load.__dict__,
                "littles_law_bound_rps": bound,
                "bound_fraction": round(load.rps / bound, 3),
                "max_db_connections_in_use": metric(gateway.url, "grokgate_db_connections_max"),
                "db_connections_in_use_sampled_max": max(in_use, default=0.0),
                "db_connections_in_use_sampled_mean": round(statistics.mean(in_use), 2) if in_use else 0.0,
            }

    def ledger(self, backend: str) -> dict[str, Any]:
        from grokgate.billing import ledger
        from grokgate.db.engine import Database
        from grokgate.db.migrate import upgrade
        from grokgate.errors import ApiError
        from grokgate.orgs import service as orgs

        n = self.sizes.ledger_charges

        async def run(url: str) -> dict[str, Any]:
            await upgrade(url)
            db = Database(url)
            try:
                async with db.transaction() as session:
                    org_id = (await orgs.create_org(session, "contended", n * 3 // 4)).id
                slots = asyncio.Semaphore(64)
                refused = 0

                async def charge(i: int) -> None:
                    nonlocal refused
                    async with slots:
                        try:
                            async with db.transaction() as session:
                                await ledger.charge(session, org_id, f"bench_{i}", 1)
                        except ApiError:
                            refused += 1

                started = time.perf_counter()
                await asyncio.gather(*(charge(i) for i in range(n)))
                seconds = time.perf_counter() - started
                async with db.reader() as session:
                    balance = await ledger.balance_of(session, org_id)
                assert balance is not None
                return {
                    "attempts": n,
                    "concurrency": 64,
                    "charged": n - refused,
                    "refused_402": refused,
                    "seconds": round(seconds, 3),
                    "attempts_per_second": round(n / seconds, 1),
                    "credits_remaining": balance.credits_remaining,
                    "ledger_sum": balance.ledger_sum,
                    "balance_equals_ledger_sum": balance.credits_remaining == balance.ledger_sum,
                    "exactly_the_grant_was_spent": balance.credits_remaining == 0 and n - refused == n * 3 // 4,
                }
            finally:
                await db.dispose()

        with self.database(backend) as url:
            return asyncio.run(run(url))

    def videos(self, backend: str, count: int) -> dict[str, Any]:
        sizes = self.sizes
        settings = {"poll_interval": str(sizes.poll_interval), "poller_batch": "500", "poller_concurrency": "128"}
        polls_metric = 'grokgate_upstream_calls_total{endpoint="poll"'
        with self.served(backend, video_delay=sizes.video_delay, **settings) as (gateway, key, url, sandbox):
            started = time.time()
            concurrency = min(64, count)
            count -= count % concurrency  # hey sends n // c requests per client
            submit = hey(
                gateway.url + "/api/v1/models/grok-imagine",
                n=count,
                c=concurrency,
                method="POST",
                body=VIDEO_BODY,
                key=key,
            )
            cpu0, polls0 = gateway.cpu_seconds(), metric(gateway.url, polls_metric)
            statements0 = metric(gateway.url, "grokgate_db_statements_total")
            done_at = self._wait_all_done(gateway, url, count)
            cpu = gateway.cpu_seconds() - cpu0
            polls = metric(gateway.url, polls_metric) - polls0
            statements = metric(gateway.url, "grokgate_db_statements_total") - statements0
            lags = self._lags(url, sandbox)
            return {
                "videos": count,
                "completed": self._count_completed(url),
                "submit": submit.__dict__,
                "poll_interval_s": sizes.poll_interval,
                "upstream_delay_s": list(sizes.video_delay),
                "seconds_until_all_completed": round(done_at - started, 2),
                "polls": int(polls),
                "cpu_ms_per_poll": round(1000 * cpu / max(polls, 1), 3),
                "cpu_ms_per_job": round(1000 * cpu / count, 3),
                "db_statements_per_poll": round(statements / max(polls, 1), 2),
                "peak_rss_mib": round(gateway.peak_rss / 2**20, 1),
                "notification_lag_p50_s": round(statistics.median(lags), 3) if lags else None,
                "notification_lag_p99_s": round(sorted(lags)[int(0.99 * (len(lags) - 1))], 3) if lags else None,
            }

    def _count(self, url: str, statuses: tuple[str, ...]) -> int:
        from sqlalchemy import func, select

        from grokgate.db.engine import Database
        from grokgate.jobs.models import Job

        async def count() -> int:
            db = Database(url)
            try:
                async with db.reader() as session:
                    return int(await session.scalar(select(func.count()).where(Job.status.in_(statuses))) or 0)
            finally:
                await db.dispose()

        return asyncio.run(count())

    def _count_done(self, url: str) -> int:
        return self._count(url, ("completed", "failed", "cancelled"))

    def _count_completed(self, url: str) -> int:
        return self._count(url, ("completed",))

    def _wait_all_done(self, gateway: Process, url: str, count: int) -> float:
        deadline = time.time() + 60 + 20 * self.sizes.video_delay[1] + count / 20
        while time.time() < deadline:
            gateway.sample_rss()
            if self._count_done(url) >= count:
                return time.time()
            time.sleep(0.25)
        raise RuntimeError(f"videos did not all finish in time ({self._count_done(url)} of {count})")

    def _lags(self, url: str, sandbox: Process) -> list[float]:
        from sqlalchemy import select

        from grokgate.db.engine import Database
        from grokgate.jobs.models import Job

        ready = httpx.get(sandbox.url + "/_sandbox/videos", timeout=30).json()["ready"]

        async def rows() -> list[tuple[str | None, Any]]:
            db = Database(url)
            try:
                async with db.reader() as session:
                    return [
                        tuple(row)
                        for row in (await session.execute(select(Job.external_job_id, Job.finished_at))).all()
                    ]  # type: ignore[misc]
            finally:
                await db.dispose()

        return [finished.timestamp() - ready[ext] for ext, finished in asyncio.run(rows()) if ext in ready and finished]

    def held_clients(self, backend: str) -> dict[str, Any]:
        """Many clients held on videos at once (a tenth `Prefer: wait`, the rest on `/events`, nine streams to a
        video), every video ending at one moment: SQL statements per second while they are all held, and the delay
        from each job's end (its `finished_at`) to the client's answer."""
        total, budget = HELD[self.sizes.name]
        waits = max(1, total // 10)
        streams = total - waits
        plans = json.dumps({"default": {**json.loads(BIG_PLAN)["default"], "waiters": 10**9}})
        settings = {
            "poll_interval": str(self.sizes.poll_interval),
            "poller_batch": "500",
            "poller_concurrency": "128",
            "max_waiters": str(2 * total),
            "plans": plans,
        }
        statements_metric, polls_metric = (
            "grokgate_db_statements_total",
            'grokgate_upstream_calls_total{endpoint="poll"',
        )
        with self.served(backend, **settings) as (gateway, key, url, _):
            scrape = metric(gateway.url, statements_metric)
            scrape = metric(gateway.url, statements_metric) - scrape  # what one scrape itself costs
            status = self.workdir / f"held-{secrets.token_hex(3)}.json"
            end_at = time.time() + budget
            args = [sys.executable, str(ROOT / "bench" / "waiters.py"), "--url", gateway.url, "--key", key]
            args += ["--waits", str(waits), "--streams", str(streams), "--end-at", str(end_at)]
            args += ["--status", str(status)]
            samples: list[tuple[float, int, int, float, float]] = []
            with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
                while proc.poll() is None:
                    time.sleep(0.5)
                    with contextlib.suppress(ValueError, OSError):
                        progress = json.loads(status.read_text())
                        samples.append(
                            (
                                time.time(),
                                progress["held"],
                                progress["answered"],
                                metric(gateway.url, statements_metric),
                                metric(gateway.url, polls_metric),
                            )
                        )
                    gateway.sample_rss()
                out, err = proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"waiters failed: {err[-3000:]}")
            report = json.loads(out)
            held = [s for s in samples if s[1] >= 0.95 * total and s[2] == 0]
            window = held[-1][0] - held[0][0] if len(held) >= 2 else 0.0
            per_s: dict[str, float | None] = {"statements": None, "polls": None}
            if window > 0:
                spent = held[-1][3] - held[0][3] - scrape * (len(held) - 1)
                per_s = {"statements": round(spent / window, 1), "polls": round((held[-1][4] - held[0][4]) / window, 1)}
            ended = self._finished_at(url, [answer["job"] for answer in report["answers"]])
            delays = sorted(
                (answer["at"] - ended[answer["job"]]) * 1000
                for answer in report["answers"]
                if answer["status"] in ("completed", "failed", "cancelled") and answer["job"] in ended
            )

            def pct(q: float) -> float | None:
                return round(delays[min(len(delays) - 1, int(q * len(delays)))], 1) if delays else None

            return {
                "clients": total,
                "prefer_wait": waits,
                "events": streams,
                "held_peak": report["held_peak"],
                "all_held": report["all_held_at"] is not None,
                "held_window_s": round(window, 1),
                "db_statements_per_s_held": per_s["statements"],
                "polls_per_s_held": per_s["polls"],
                "db_statements_per_s_per_client": (
                    round(per_s["statements"] / total, 4) if per_s["statements"] is not None else None
                ),
                "answered": len(delays),
                "ran_out": sum(1 for answer in report["answers"] if answer["status"] not in ("completed", "failed")),
                "errors": report["error_count"],
                "error_samples": report["errors"][:5],
                "answer_delay_p50_ms": pct(0.5),
                "answer_delay_p99_ms": pct(0.99),
                "answer_delay_max_ms": round(delays[-1], 1) if delays else None,
                "peak_rss_mib": round(gateway.peak_rss / 2**20, 1),
            }

    def _finished_at(self, url: str, job_ids: list[str]) -> dict[str, float]:
        from sqlalchemy import select

        from grokgate.db.engine import Database
        from grokgate.jobs.models import Job

        async def rows() -> dict[str, float]:
            db = Database(url)
            found: dict[str, float] = {}
            try:
                async with db.reader() as session:
                    ids = sorted(set(job_ids))
                    for start in range(0, len(ids), 1000):
                        query = select(Job.id, Job.finished_at).where(Job.id.in_(ids[start : start + 1000]))
                        for job_id, finished in (await session.execute(query)).all():
                            if finished is not None:
                                found[job_id] = finished.timestamp()
            finally:
                await db.dispose()
            return found

        return asyncio.run(rows())


def machine() -> dict[str, Any]:
    import grokgate

    versions = {}
    for package in ("fastapi", "uvicorn", "sqlalchemy", "httpx", "pydantic", "asyncpg", "aiosqlite"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = None
    hey_version = "hey (Debian package)"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "grokgate": grokgate.__version__,
        "packages": versions,
        "load_generator": hey_version,
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"{'scenario':<44} {'rps':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}  extra"]
    for backend, scenarios in results["backends"].items():
        for label, load in [("floor " + k, v) for k, v in results["floor"].items()] if backend == "sqlite" else []:
            lines.append(f"{label:<44} {load['rps']:>9} {load['p50_ms']:>9} {load['p99_ms']:>9} {load['errors']:>7}")
        if backend == "sqlite":
            up = results["upstream_alone"]
            lines.append(
                f"{'upstream alone c16':<44} {up['rps']:>9} {up['p50_ms']:>9} {up['p99_ms']:>9} {up['errors']:>7}"
            )
        for c, load in scenarios["image_path"].items():
            lines.append(
                f"{backend + ' image path ' + c:<44} {load['rps']:>9} {load['p50_ms']:>9} {load['p99_ms']:>9} "
                f"{load['errors']:>7}  cpu {load['gateway_cpu_ms_per_request']} ms/req"
            )
        slow = scenarios["slow_upstream"]
        lines.append(
            f"{backend + ' slow upstream c' + str(slow['concurrency']):<44} {slow['rps']:>9} {slow['p50_ms']:>9} "
            f"{slow['p99_ms']:>9} {slow['errors']:>7}  {slow['bound_fraction']:.0%} of bound, "
            f"db conns in use: max sampled {slow['db_connections_in_use_sampled_max']:.0f}, "
            f"mean {slow['db_connections_in_use_sampled_mean']}"
        )
        led = scenarios["ledger"]
        lines.append(
            f"{backend + ' ledger contention':<44} {led['attempts_per_second']:>9} {'':>9} {'':>9} {'':>7}  "
            f"balance==sum {led['balance_equals_ledger_sum']}"
        )
        for key, video in scenarios["videos"].items():
            lines.append(
                f"{backend + ' videos ' + key:<44} {'':>9} {'':>9} {'':>9} {'':>7}  "
                f"all done {video['seconds_until_all_completed']} s, {video['cpu_ms_per_poll']} cpu ms/poll, "
                f"{video['db_statements_per_poll']} stmts/poll, lag p50 {video['notification_lag_p50_s']} s, "
                f"rss {video['peak_rss_mib']} MiB"
            )
        if "held_clients" in scenarios:
            held = scenarios["held_clients"]
            lines.append(
                f"{backend + ' held clients ' + str(held['clients']):<44} {'':>9} "
                f"{held['answer_delay_p50_ms']!s:>9} {held['answer_delay_p99_ms']!s:>9} {held['errors']:>7}  "
                f"peak held {held['held_peak']}, {held['db_statements_per_s_held']} stmts/s held "
                f"({held['polls_per_s_held']} polls/s), end-to-answer ms p50/p99 as shown"
            )
    return "\n".join(lines)


def held_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The held-clients figures of each database, for the summary."""
    summary: dict[str, Any] = {}
    for backend, scenarios in results["backends"].items():
        held = scenarios.get("held_clients")
        if held is None:
            continue
        summary[f"held_clients_{backend}"] = held["clients"]
        summary[f"held_clients_peak_{backend}"] = held["held_peak"]
        summary[f"held_db_statements_per_s_{backend}"] = held["db_statements_per_s_held"]
        summary[f"held_answer_delay_p50_ms_{backend}"] = held["answer_delay_p50_ms"]
        summary[f"held_answer_delay_p99_ms_{backend}"] = held["answer_delay_p99_ms"]
    return summary


def image_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The image path's figures of each database that ran it, for the summary: the CPU per image at c16 and the
    fraction of the Little's-law bound held on the slow upstream."""
    summary: dict[str, Any] = {}
    for backend, scenarios in results["backends"].items():
        if "image_path" in scenarios:
            summary[f"gateway_cpu_ms_per_image_{backend}"] = scenarios["image_path"]["c16"][
                "gateway_cpu_ms_per_request"
            ]
            summary[f"image_rps_c16_{backend}"] = scenarios["image_path"]["c16"]["rps"]
        if "slow_upstream" in scenarios:
            summary[f"slow_upstream_bound_fraction_{backend}"] = scenarios["slow_upstream"]["bound_fraction"]
            summary[f"slow_upstream_errors_{backend}"] = scenarios["slow_upstream"]["errors"]
    return summary


def alone(bench: Bench, backends: list[str], scenarios: list[str], out: Path) -> None:
    """Some scenarios on each database, written like a full run with the summary of what they measured."""
    sizes = bench.sizes
    results: dict[str, Any] = {"size": sizes.name, "machine": machine(), "settings": bench.settings()}
    results["only"] = scenarios
    results["backends"] = {}
    for backend in backends:
        results["backends"][backend] = {}
        for scenario in scenarios:
            if scenario == "videos":
                measured: Any = {f"{n}_in_flight": bench.videos(backend, n) for n in (sizes.videos_small,)}
            else:
                measured = getattr(bench, scenario)(backend)
            results["backends"][backend][scenario] = measured
    results["summary"] = {"size": sizes.name, "scaled_down": sizes.name != "full", "only": scenarios}
    results["summary"] |= image_summary(results) | held_summary(results)
    scenario = "+".join(scenarios)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{scenario}.json"
    path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["backends"], indent=2))
    print(json.dumps(results["summary"], indent=2))
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario at a small size (under 3 minutes)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test size (seconds)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument(
        "--only", help=f"run these scenarios alone, comma-separated ({', '.join(SCENARIOS)}): no floor, no full summary"
    )
    parser.add_argument("--workers", type=int, default=1, help="run the gateway as `grokgate serve --workers N`")
    parser.add_argument(
        "--same-image", action="store_true", help="the sandbox hands out one cached PNG, not distinct images"
    )
    args = parser.parse_args()
    only = [name for name in (args.only or "").split(",") if name]
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"--only: no scenario {', '.join(sorted(unknown))} (there are {', '.join(SCENARIOS)})")
    if shutil.which("hey") is None and not set(only) <= {"held_clients", "ledger"}:  # these two need no hey
        sys.exit("bench: the load generator `hey` is missing (apt-get install hey)")
    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    backends = [b for b in args.backends.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="grokgate-bench-") as folder:
        bench = Bench(sizes, Path(folder), workers=args.workers, same_image=args.same_image)
        if only:
            alone(bench, backends, only, Path(args.out))
            return
        results: dict[str, Any] = {"size": sizes.name, "machine": machine(), "settings": bench.settings()}
        results["floor"] = bench.floor()
        results["upstream_alone"] = bench.upstream_alone()
        results["backends"] = {}
        for backend in backends:
            results["backends"][backend] = {
                "image_path": bench.image_path(backend),
                "slow_upstream": bench.slow_upstream(backend),
                "ledger": bench.ledger(backend),
                "videos": {
                    f"{n}_in_flight": bench.videos(backend, n) for n in (sizes.videos_small, sizes.videos_large)
                },
                "held_clients": bench.held_clients(backend),
            }
    first = results["backends"].get("sqlite") or next(iter(results["backends"].values()))
    small, large = (first["videos"][f"{n}_in_flight"] for n in (sizes.videos_small, sizes.videos_large))
    results["summary"] = {
        "size": sizes.name,
        "scaled_down": sizes.name != "full",
        "videos_small_is": sizes.videos_small,
        "videos_large_is": sizes.videos_large,
        "image_rps_vs_floor_c16_sqlite": round(first["image_path"]["c16"]["rps"] / results["floor"]["c16"]["rps"], 3),
        "gateway_cpu_ms_per_image_sqlite": first["image_path"]["c16"]["gateway_cpu_ms_per_request"],
        "image_added_p50_ms_c16_sqlite": round(
            first["image_path"]["c16"]["p50_ms"] - results["upstream_alone"]["p50_ms"], 2
        ),
        "image_added_p99_ms_c16_sqlite": round(
            first["image_path"]["c16"]["p99_ms"] - results["upstream_alone"]["p99_ms"], 2
        ),
        "slow_upstream_bound_fraction_sqlite": first["slow_upstream"]["bound_fraction"],
        **image_summary(results),
        "ledger_balance_equals_sum": all(
            b["ledger"]["balance_equals_ledger_sum"] for b in results["backends"].values()
        ),
        "poll_cpu_ms_per_job_100": small["cpu_ms_per_job"],
        "poll_cpu_ms_per_job_10000": large["cpu_ms_per_job"],
        "notification_lag_p50_s": large["notification_lag_p50_s"],
        **held_summary(results),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(json.dumps(results["summary"], indent=2))
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
