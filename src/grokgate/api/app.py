"""The app factory: builds the database, the upstream client, the job service and the poller for one process.

Nothing is created at import time; `create_app(settings)` may be called many times in one process (the tests do),
and everything it builds is closed again when the app's lifespan ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from grokgate import __version__
from grokgate.api import errors
from grokgate.api.state import Services
from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.jobs import endpoints as job_endpoints
from grokgate.jobs.poller import Poller, PollerSettings
from grokgate.jobs.service import JobService, process_identity
from grokgate.upstream.sandbox.app import create_sandbox_app
from grokgate.upstream.xai import XaiUpstream

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owner = process_identity()
        db = Database(settings.database_url)
        upstream = XaiUpstream(
            settings.upstream_base_url,
            settings.upstream_api_key,
            timeout=settings.upstream_timeout,
            retries=settings.upstream_retries,
            backoff=settings.upstream_backoff,
        )
        jobs = JobService(db=db, upstream=upstream, settings=settings, owner=owner)
        app.state.services = Services(settings=settings, db=db, upstream=upstream, jobs=jobs)
        if settings.upstream == "sandbox":
            log.warning(
                "upstream.sandbox",
                message="NO XAI KEY: serving from the built-in SANDBOX upstream; results are synthetic",
                base_url=settings.upstream_base_url,
            )
        stop = asyncio.Event()
        poller_task: asyncio.Task[None] | None = None
        if settings.run_poller:
            poller = Poller(
                db,
                upstream,
                PollerSettings(
                    interval=settings.poll_interval,
                    batch=settings.poller_batch,
                    concurrency=settings.poller_concurrency,
                    lease=settings.poll_lease,
                ),
                owner,
            )
            poller_task = asyncio.create_task(poller.run(stop), name="grokgate-poller")
        try:
            yield
        finally:
            stop.set()
            if poller_task is not None:
                await poller_task
            await upstream.aclose()
            await db.dispose()

    app = FastAPI(
        title="grokgate",
        version=__version__,
        description="Grok Imagine image and video generation, sold for credits. Images answer at once; videos "
        "answer 202 with a job id to poll.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(job_endpoints.router)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    if settings.sandbox_mounted:
        app.mount("/sandbox", create_sandbox_app(video_seconds=settings.sandbox_video_seconds))
    return app
