"""The app factory: builds the database, the upstream client, the job service and the poller for one process.

Nothing is created at import time; `create_app(settings)` may be called many times in one process (the tests do),
and everything it builds is closed again when the app's lifespan ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from grokgate import __version__
from grokgate.api import errors
from grokgate.api.headers import RateLimitHeaders
from grokgate.api.metrics import Metrics, RequestMetrics
from grokgate.api.state import KeyUsage, Services
from grokgate.background import run_rounds
from grokgate.billing import endpoints as billing_endpoints
from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.idempotency.service import Idempotency
from grokgate.jobs import endpoints as job_endpoints
from grokgate.jobs.poller import Poller, PollerSettings
from grokgate.jobs.service import Finishing, JobService, process_identity
from grokgate.orgs import endpoints as org_endpoints
from grokgate.ratelimits import endpoints as ratelimit_endpoints
from grokgate.ratelimits.limiter import RateLimiter
from grokgate.storage import endpoints as storage_endpoints
from grokgate.storage.ingest import Ingestor, Limits
from grokgate.storage.links import MediaLinks
from grokgate.storage.service import signing_secret, sweep_expired
from grokgate.storage.store import MediaStore, open_store
from grokgate.upstream.sandbox.app import create_sandbox_app
from grokgate.upstream.xai import XaiUpstream
from grokgate.webhooks import endpoints as webhook_endpoints
from grokgate.webhooks.sender import SenderSettings, WebhookSender

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owner = process_identity()
        db = Database(settings.database_url)
        metrics.watch(db.engine)
        upstream = XaiUpstream(
            settings.upstream_base_url,
            settings.upstream_api_key,
            timeout=settings.upstream_timeout,
            retries=settings.upstream_retries,
            backoff=settings.upstream_backoff,
            observe=lambda endpoint, outcome: metrics.upstream.labels(endpoint, outcome).inc(),
        )
        media_store = MediaStore(open_store(settings.storage_url, settings.data_dir))
        ingestor = Ingestor(
            media_store,
            Limits(image_bytes=settings.max_result_image_bytes, video_bytes=settings.max_result_video_bytes),
            settings.data_dir / "tmp",
            timeout=settings.upstream_timeout,
        )
        finishing = Finishing(
            links=MediaLinks(
                secret=await signing_secret(db, settings.signing_secret),
                base_url=settings.base_url,
                ttl=settings.media_url_ttl,
            ),
            retention=timedelta(days=settings.media_retention_days),
            metrics=metrics,
        )
        jobs = JobService(
            db=db, upstream=upstream, settings=settings, owner=owner, ingestor=ingestor, finishing=finishing
        )
        limiter = RateLimiter(settings.redis_url, fail_open=settings.rate_limit_fail_open)
        app.state.services = Services(
            settings=settings,
            db=db,
            upstream=upstream,
            jobs=jobs,
            limiter=limiter,
            idempotency=Idempotency(db, stale_after=settings.request_lease),
            key_usage=KeyUsage(),
            media_store=media_store,
        )
        if settings.upstream == "sandbox":
            log.warning(
                "upstream.sandbox",
                message="NO XAI KEY: serving from the built-in SANDBOX upstream; results are synthetic",
                base_url=settings.upstream_base_url,
            )
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        sender = WebhookSender(
            db,
            SenderSettings(
                schedule=settings.webhook_retry_schedule,
                allow_private=settings.webhook_allow_private,
                timeout=settings.webhook_timeout,
                tick=max(0.02, min(0.5, settings.poll_interval)),
            ),
            owner,
        )
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
                ingestor=ingestor,
                finishing=finishing,
            )

            async def sweep() -> int:
                await sweep_expired(db, media_store)
                return 0

            tasks.append(asyncio.create_task(poller.run(stop), name="grokgate-poller"))
            tasks.append(asyncio.create_task(sender.run(stop), name="grokgate-webhooks"))
            tasks.append(
                asyncio.create_task(
                    run_rounds("sweeper", sweep, stop=stop, batch=1, tick=settings.sweep_interval),
                    name="grokgate-sweeper",
                )
            )
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await sender.aclose()
            await ingestor.aclose()
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
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    for router in (
        job_endpoints.router,
        webhook_endpoints.router,
        org_endpoints.router,
        ratelimit_endpoints.router,
        billing_endpoints.router,
        storage_endpoints.router,
    ):
        app.include_router(router)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    if settings.sandbox_mounted:
        app.mount("/sandbox", create_sandbox_app(video_seconds=settings.sandbox_video_seconds))
    return app
