"""The long-running commands: the API server, the background worker, the sandbox, migrations and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from grokgate.cli.common import CliError, JsonFlag, app, emit, in_transaction, run, settings_from_env

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from grokgate.config import Settings

DEMO_EMAIL = "demo@example.com"


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[None]:
    """Give the API processes of `serve --workers` one directory for prometheus-client's multiprocess mode.

    An operator's own `PROMETHEUS_MULTIPROC_DIR` is used (emptied first: values of an earlier run would be added
    in); otherwise a private directory lives as long as the server."""
    import os
    import shutil
    import tempfile

    from grokgate.metrics import MULTIPROCESS_DIR

    given = os.environ.get(MULTIPROCESS_DIR)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    private = tempfile.mkdtemp(prefix="grokgate-metrics-")
    os.environ[MULTIPROCESS_DIR] = private
    try:
        yield
    finally:
        shutil.rmtree(private, ignore_errors=True)


def serve_metrics(settings: Settings, registry: Any) -> None:
    """`/metrics` on its own port (a daemon thread of prometheus-client), for `serve --metrics-port`."""
    from prometheus_client import start_http_server

    assert settings.metrics_port is not None
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)


def shared_registry() -> Any:
    """What the processes of `serve --workers` wrote to the shared directory, added up at each scrape."""
    import os

    from prometheus_client import CollectorRegistry, multiprocess

    from grokgate.metrics import MULTIPROCESS_DIR

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ[MULTIPROCESS_DIR])  # type: ignore[no-untyped-call]
    return registry


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(help="API processes sharing the port (uvicorn's process manager).")] = 1,
    background: Annotated[
        bool, typer.Option("--background/--no-background", help="Also run the poller, webhooks and sweeper.")
    ] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this port too, on GROKGATE_METRICS_HOST (127.0.0.1).")
    ] = None,
) -> None:
    """Run the API server (and, unless --no-background, the video poller) after migrating the database."""
    import os

    import uvicorn

    from grokgate import gc_tuning
    from grokgate.api.app import create_app
    from grokgate.api.slowclients import GuardedHttpProtocol
    from grokgate.cli.workers import run_workers
    from grokgate.db.migrate import upgrade
    from grokgate.logs import configure

    settings = settings_from_env(
        host=host, port=port, run_poller=None if background else False, metrics_port=metrics_port
    )
    if workers > 1 and settings.sandbox_mounted:
        raise CliError(
            "the built-in sandbox keeps its videos in one process: with --workers, run `grokgate sandbox` on its "
            "own port and point XAI_BASE_URL at it"
        )
    configure(settings.log_level, settings.log_format)
    asyncio.run(upgrade(settings.database_url))
    if settings.upstream == "sandbox":
        typer.secho(
            "!! No XAI_API_KEY: grokgate answers from its built-in SANDBOX upstream (synthetic media, no cost) !!",
            fg=typer.colors.YELLOW,
            bold=True,
            err=True,
        )
    common: dict[str, Any] = {
        "http": functools.partial(
            GuardedHttpProtocol, header_timeout=settings.header_timeout, max_header_bytes=settings.max_header_bytes
        ),
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": int(settings.shutdown_grace),
        "backlog": 4096,
    }
    if workers > 1:
        # Each worker process builds its app from the environment: carry the command line's choices there.
        os.environ.update(
            {
                "GROKGATE_HOST": settings.host,
                "GROKGATE_PORT": str(settings.port),
                "GROKGATE_RUN_POLLER": str(settings.run_poller),
                **({"GROKGATE_METRICS_PORT": str(settings.metrics_port)} if settings.metrics_port else {}),
            }
        )
        with shared_metrics_dir():
            if settings.metrics_port:  # the parent serves the sum; the workers only sample their backlog
                serve_metrics(settings, shared_registry())
            run_workers("grokgate.api.app:app_from_env", workers, **common)
        return
    api = create_app(settings)
    gc_tuning.tune()
    if settings.metrics_port:
        serve_metrics(settings, shared_registry() if api.state.metrics.shared_dir else api.state.metrics.registry)
    uvicorn.run(api, **common)


@app.command()
def worker(
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
) -> None:
    """Run the background work alone: video poller, webhook sender, media sweeper (no API). Stops on SIGTERM."""
    import signal

    from prometheus_client import start_http_server

    from grokgate import gc_tuning
    from grokgate.api.backlog import record_backlog
    from grokgate.background import run_rounds
    from grokgate.db.migrate import upgrade
    from grokgate.logs import configure
    from grokgate.metrics import Metrics
    from grokgate.runtime import runtime

    settings = settings_from_env()
    configure(settings.log_level, settings.log_format)
    asyncio.run(upgrade(settings.database_url))
    metrics = Metrics()
    if metrics_port:
        start_http_server(metrics_port, addr=settings.host, registry=metrics.registry)
    gc_tuning.tune()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with runtime(settings, metrics, background=True) as services:
            typer.echo("grokgate worker running (poller, webhooks, sweeper)", err=True)
            if metrics_port:

                async def sample() -> int:
                    await record_backlog(services.db, metrics)
                    return 0

                await run_rounds("backlog", sample, stop=stop, batch=1, tick=5.0)
            await stop.wait()

    asyncio.run(main())


@app.command()
def migrate(as_json: JsonFlag = False) -> None:
    """Upgrade the database schema to the newest migration."""
    from grokgate.db.migrate import upgrade

    settings = settings_from_env()
    run(upgrade(settings.database_url))
    emit(as_json, {"migrated": True}, "database is up to date")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    video_seconds: Annotated[float, typer.Option(help="Seconds until a video is done.")] = 3.0,
    api_key: Annotated[str | None, typer.Option(help="Accept only this key (as xAI would).")] = None,
    inspect: Annotated[
        bool,
        typer.Option(
            "--inspect", help="Serve /_sandbox/* (every caller's requests and files): for tests and benchmarks."
        ),
    ] = False,
    bench: Annotated[bool, typer.Option("--bench", help="Benchmark mode: pre-rendered media, no journal.")] = False,
    image_delay: Annotated[float, typer.Option(help="Benchmark mode: seconds before an image answer.")] = 0.0,
    same_image: Annotated[
        bool, typer.Option("--same-image", help="Benchmark mode: one cached PNG for all (not distinct images).")
    ] = False,
    video_delay_min: Annotated[float, typer.Option(help="Benchmark mode: shortest video render.")] = 1.0,
    video_delay_max: Annotated[float, typer.Option(help="Benchmark mode: longest video render.")] = 1.0,
    image_rps: Annotated[int | None, typer.Option(help="Image requests per second per key, as xAI's 5 (off).")] = None,
    video_rps: Annotated[int | None, typer.Option(help="Video requests per second per key, as xAI's 1 (off).")] = None,
) -> None:
    """Run the sandbox upstream on its own port: xAI's media API, offline (point XAI_BASE_URL at HOST:PORT/v1)."""
    import uvicorn

    from grokgate.upstream.sandbox.app import BenchMode, create_sandbox_app

    mode = BenchMode(image_delay, (video_delay_min, video_delay_max), same_image) if bench else None
    app_ = create_sandbox_app(
        api_key=api_key,
        video_seconds=video_seconds,
        bench=mode,
        inspect=inspect,
        image_rps=image_rps,
        video_rps=video_rps,
    )
    uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False, backlog=4096)


@app.command()
def demo(as_json: JsonFlag = False) -> None:
    """Create a demo organisation with credits, an API key and a console member (password printed once), unless an
    organisation exists already; an install from before the console gets its demo member too."""
    from grokgate.accounts import repository as accounts_repository
    from grokgate.accounts import service as accounts
    from grokgate.orgs import service as orgs

    settings = settings_from_env()

    async def work(session: AsyncSession) -> dict[str, Any]:
        existing = await orgs.any_org(session)
        result: dict[str, Any]
        if existing is not None:
            result = {"created": False, "orgId": existing.id}
        else:
            org = await orgs.create_org(session, "demo", settings.demo_credits)
            _, secret = await orgs.create_key(session, org.id, name="demo")
            result = {"created": True, "orgId": org.id, "creditsRemaining": org.credits_remaining, "key": secret}
        if await accounts_repository.any_member(session) is None:
            password = secrets.token_urlsafe(12)
            await accounts.create_member(session, result["orgId"], DEMO_EMAIL, password)
            result["member"] = {"email": DEMO_EMAIL, "password": password}
        return result

    result = run(in_transaction(settings, work))
    if as_json:
        emit(True, result, "")
        return
    login = ""
    if "member" in result:
        login = (
            f"Web console: {settings.base_url}/  sign in as {result['member']['email']} "
            f"with password {result['member']['password']} (shown once)\n"
        )
    if not result["created"]:
        typer.echo(
            f"{login}Organisation {result['orgId']} exists. "
            f"A new key: grokgate admin create-key --org {result['orgId']}"
        )
        return
    body = json.dumps({"prompt": "A lighthouse at dawn, 35mm film", "model": "text-to-image"})
    typer.echo(
        f"Demo organisation {result['orgId']} with {result['creditsRemaining']} credits.\n"
        f"API key (shown once): {result['key']}\n"
        f"{login}\n"
        f"curl -s -X POST {settings.base_url}/api/v1/models/grok-imagine \\\n"
        f"  -H 'Authorization: Bearer {result['key']}' -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}\n"
    )
