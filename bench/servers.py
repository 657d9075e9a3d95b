"""Sizes of a run and the servers every scenario stands on: the sandbox in benchmark mode, a fresh database, a
gateway with an organisation and a key."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import BIN, METRICS_TOKEN, Process, free_port, start

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
    steady_videos: int
    steady_rate: float
    """Videos submitted at this many a second in the steady-videos scenario."""


SIZES = {
    "full": Sizes("full", 3000, 1000, 5000, 5000, 100, 10_000, (20.0, 40.0), 5.0, 2000, 20.0),
    "quick": Sizes("quick", 256, 200, 400, 600, 64, 512, (3.0, 6.0), 2.0, 240, 16.0),
    "tiny": Sizes("tiny", 30, 10, 20, 50, 5, 10, (0.2, 0.4), 0.2, 8, 8.0),
}
HELD = {"full": (10_000, 150.0), "quick": (300, 40.0), "tiny": (20, 8.0)}
"""Clients held at once in the held-clients scenario, and seconds from its start to the moment every video ends."""
SCENARIOS = (
    "image_path",
    "reads",
    "slow_upstream",
    "ledger",
    "videos",
    "steady_videos",
    "held_clients",
    "instructions",
)
"""`instructions` runs only when asked for (`--only`): under valgrind it takes minutes and needs valgrind."""
INSTRUCTION_REQUESTS = {"full": 100, "quick": 30, "tiny": 3}
"""Images counted under callgrind (each takes about half a second there)."""


class Servers:
    """What the scenarios start, with the run's sizes and choices (`--workers`, `--same-image`)."""

    def __init__(self, sizes: Sizes, workdir: Path, *, workers: int = 1, same_image: bool = False) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.workers = workers
        """`grokgate serve --workers N` for the gateway (1: one process)."""
        self.same_image = same_image
        """The sandbox hands out one cached PNG (one stored object) instead of distinct images."""
        self.results: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {
            **self.sizes.__dict__,
            "workers": self.workers,
            "distinct_images": not self.same_image,
            "distinct_videos": not self.same_image,
        }

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

    def gateway(
        self,
        db_url: str,
        sandbox: Process,
        *,
        under: Sequence[str] = (),
        serve_args: Sequence[str] = (),
        wait: float = 20.0,
        **settings: str,
    ) -> tuple[Process, str]:
        """A gateway on `db_url` and `sandbox`, with a tenant; returns it and the tenant's key. `under`: a command
        that runs it (valgrind), given `wait` seconds to answer; `serve_args`: more arguments of `serve`."""
        env = self.env(
            GROKGATE_DATABASE_URL=db_url,
            XAI_API_KEY="bench-key",
            XAI_BASE_URL=f"{sandbox.url}/v1",
            GROKGATE_DATA_DIR=str(self.workdir / f"data-{secrets.token_hex(3)}"),
            **{f"GROKGATE_{k.upper()}": v for k, v in settings.items()},
        )
        cli = [*under, str(BIN / "grokgate")]
        key = asyncio.run(_tenant(db_url))
        port = free_port()
        env["GROKGATE_PORT"] = str(port)
        serve = [*cli, "serve", *(["--workers", str(self.workers)] if self.workers > 1 else []), *serve_args]
        return start("gateway", serve, env, port, self.workdir, wait=wait), key

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


async def _tenant(db_url: str) -> str:
    """The benchmark's organisation and key, made in this process (two CLI processes would cost seconds of CPU
    per gateway); returns the key's secret."""
    from grokgate.db.engine import Database
    from grokgate.db.migrate import upgrade
    from grokgate.orgs import service as orgs

    await upgrade(db_url)
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            org = await orgs.create_org(session, "bench", 10**9)
            _, secret = await orgs.create_key(session, org.id)
        return secret
    finally:
        await db.dispose()
