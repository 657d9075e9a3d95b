"""The scenarios: each starts what it needs, loads it and returns its figures beside their baselines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from bench import instructions
from bench.procs import BIN, ROOT, Process, free_port, hey, metric, start
from bench.servers import BIG_PLAN, HELD, IMAGE_BODY, INSTRUCTION_REQUESTS, VIDEO_BODY, Servers

POLLS = 'grokgate_upstream_calls_total{endpoint="poll"'
"""The gateway's metric of its polls of xAI."""


def _lag_figures(lags: list[float]) -> dict[str, float | None]:
    """From xAI's `done` to the job's `completed`, p50 and p99, in seconds."""
    return {
        "notification_lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "notification_lag_p99_s": round(sorted(lags)[int(0.99 * (len(lags) - 1))], 3) if lags else None,
    }


_ENDED = ("completed", "failed", "cancelled")


async def _jobs_in(db: Any, statuses: tuple[str, ...]) -> int:
    """How many jobs have one of `statuses`."""
    from sqlalchemy import func, select

    from grokgate.jobs.models import Job

    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).where(Job.status.in_(statuses))) or 0)


class Bench(Servers):
    """One method a scenario; `main` calls them per database and keeps what they return."""

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

    def reads(self, backend: str) -> dict[str, Any]:
        """What a customer reads most, at 16 connections: a job's poll (`GET /api/v1/jobs/{jobId}`), its stored
        image (the signed `/media` link) and the balance (`GET /api/v1/organization`); the gateway's CPU for each."""
        out: dict[str, Any] = {}
        with self.served(backend) as (gateway, key, _, _):
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            made = httpx.post(gateway.url + "/api/v1/models/grok-imagine", content=IMAGE_BODY, headers=headers)
            made.raise_for_status()
            paths = {
                "poll": (gateway.url + f"/api/v1/jobs/{made.json()['jobId']}", key),
                "download": (made.json()["imageUrl"], None),
                "balance": (gateway.url + "/api/v1/organization", key),
            }
            for name, (url, auth) in paths.items():
                hey(url, n=50, c=4, key=auth)  # warm-up
                before = gateway.cpu_seconds()
                load = hey(url, n=self.sizes.requests, c=16, key=auth)
                cpu = gateway.cpu_seconds() - before
                out[name] = {**load.__dict__, "gateway_cpu_ms_per_request": round(1000 * cpu / load.requests, 3)}
        return out

    def instructions(self, backend: str) -> dict[str, Any]:
        """Instructions per image request under callgrind (`bench/instructions.py`): the figure that does not move
        with the host's load, for comparing two commits."""
        return instructions.count(self, backend, INSTRUCTION_REQUESTS[self.sizes.name])

    def slow_upstream(self, backend: str) -> dict[str, Any]:
        delay = 2.0
        with self.served(backend, image_delay=delay) as (gateway, key, _, _):
            c = self.sizes.slow_clients
            in_use: list[float] = []

            def sample() -> None:
                in_use.append(metric(gateway.url, "grokgate_db_connections_in_use"))

            route = '{route="/api/v1/models/grok-imagine"'
            cpu = gateway.cpu_seconds()
            load = hey(
                gateway.url + "/api/v1/models/grok-imagine",
                n=self.sizes.slow_requests,
                c=c,
                method="POST",
                body=IMAGE_BODY,
                key=key,
                during=sample,
            )
            cpu = gateway.cpu_seconds() - cpu
            bound = c / delay
            inside = metric(gateway.url, "grokgate_http_request_seconds_sum" + route)
            answered = metric(gateway.url, "grokgate_http_request_seconds_count" + route)
            return {
                **load.__dict__,
                "littles_law_bound_rps": bound,
                "bound_fraction": round(load.rps / bound, 3),
                "gateway_cpu_ms_per_request": round(1000 * cpu / load.requests, 2),
                # A request's time from the gateway's first look at it to its answer, beside the client's (Little's
                # law: clients / requests per second). Above the upstream's delay, it is time the gateway added.
                "gateway_mean_s": round(inside / answered, 3) if answered else None,
                "client_mean_s": round(c / load.rps, 3) if load.rps else None,
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
        with self._video_gateway(backend) as (gateway, key, url, sandbox):
            started = time.time()
            submit, count = self._submit_videos(gateway, key, count, clients=64)
            cpu0, polls0 = gateway.cpu_seconds(), metric(gateway.url, POLLS)
            statements0 = metric(gateway.url, "grokgate_db_statements_total")
            done_at = self._wait_all_done(gateway, url, count)
            cpu = gateway.cpu_seconds() - cpu0
            polls = metric(gateway.url, POLLS) - polls0
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
                **_lag_figures(lags),
            }

    def _video_gateway(self, backend: str) -> Any:
        sizes = self.sizes
        settings = {"poll_interval": str(sizes.poll_interval), "poller_batch": "500", "poller_concurrency": "128"}
        return self.served(backend, video_delay=sizes.video_delay, **settings)

    def _submit_videos(
        self, gateway: Process, key: str, count: int, *, clients: int, rate: float | None = None
    ) -> tuple[Any, int]:
        """`count` video submissions from `clients` at once (at `rate` a second in all, or as fast as answered);
        returns hey's figures and how many were sent (hey sends n // c per client)."""
        clients = min(clients, count)
        count -= count % clients
        submit = hey(
            gateway.url + "/api/v1/models/grok-imagine",
            n=count,
            c=clients,
            method="POST",
            body=VIDEO_BODY,
            key=key,
            rate=rate,
        )
        return submit, count

    def _count(self, url: str, statuses: tuple[str, ...]) -> int:
        from grokgate.db.engine import Database

        async def count() -> int:
            db = Database(url)
            try:
                return await _jobs_in(db, statuses)
            finally:
                await db.dispose()

        return asyncio.run(count())

    def _count_done(self, url: str) -> int:
        return self._count(url, _ENDED)

    def _count_completed(self, url: str) -> int:
        return self._count(url, ("completed",))

    def _wait_all_done(self, gateway: Process, url: str, count: int) -> float:
        """When all `count` jobs have ended, asked 4 times a second on one connection (an engine made per question
        cost 10 ms of CPU each, taken from the cores the gateway is measured on)."""
        from grokgate.db.engine import Database

        deadline = time.time() + 60 + 20 * self.sizes.video_delay[1] + count / 20

        async def wait() -> float:
            db = Database(url)
            try:
                while time.time() < deadline:
                    gateway.sample_rss()
                    if await _jobs_in(db, _ENDED) >= count:
                        return time.time()
                    await asyncio.sleep(0.25)
                raise RuntimeError(f"videos did not all finish in time ({await _jobs_in(db, _ENDED)} of {count})")
            finally:
                await db.dispose()

        return asyncio.run(wait())

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

    def steady_videos(self, backend: str) -> dict[str, Any]:
        """Videos arriving at a steady pace, as a product's users send them (not in one burst): the polls each
        video cost beside what asking every interval costs (`ceil(render time / interval)` polls, averaged over the
        sandbox's render times), and the notification lag."""
        sizes = self.sizes
        with self._video_gateway(backend) as (gateway, key, url, sandbox):
            polls0, cpu0 = metric(gateway.url, POLLS), gateway.cpu_seconds()
            submit, count = self._submit_videos(gateway, key, sizes.steady_videos, clients=4, rate=sizes.steady_rate)
            self._wait_all_done(gateway, url, count)
            polls = metric(gateway.url, POLLS) - polls0
            cpu = gateway.cpu_seconds() - cpu0
            lags = self._lags(url, sandbox)
            low, high = sizes.video_delay
            steps = 10_000
            every_interval = statistics.fmean(
                math.ceil((low + (high - low) * (k + 0.5) / steps) / sizes.poll_interval) for k in range(steps)
            )
            return {
                "videos": count,
                "completed": self._count_completed(url),
                "submitted_per_s": round(submit.rps, 1),
                "poll_interval_s": sizes.poll_interval,
                "upstream_delay_s": list(sizes.video_delay),
                "polls_per_video": round(polls / count, 2),
                "polls_per_video_every_interval": round(every_interval, 2),
                "cpu_ms_per_video": round(1000 * cpu / count, 3),
                **_lag_figures(lags),
            }

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
        statements_metric, polls_metric = "grokgate_db_statements_total", POLLS
        with self.served(backend, **settings) as (gateway, key, url, _):
            scrape = metric(gateway.url, statements_metric)
            scrape = metric(gateway.url, statements_metric) - scrape  # what one scrape itself costs
            status = self.workdir / f"held-{secrets.token_hex(3)}.json"
            end_at = time.time() + budget
            args = [sys.executable, str(ROOT / "bench" / "waiters.py"), "--url", gateway.url, "--key", key]
            args += ["--waits", str(waits), "--streams", str(streams), "--end-at", str(end_at)]
            report_file = status.with_suffix(".report.json")
            args += ["--status", str(status), "--report", str(report_file)]
            samples: list[tuple[float, int, int, float, float]] = []
            errors = status.with_suffix(".stderr")
            with errors.open("w") as stderr, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr) as proc:
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
            if proc.returncode:
                raise RuntimeError(f"waiters failed: {errors.read_text()[-3000:]}")
            report = json.loads(report_file.read_text())
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
