"""The app factory: builds the database, the upstream client, the job service and the poller for one process.

Nothing is created at import time; `create_app(settings)` may be called many times in one process (the tests do),
and everything it builds is closed again when the app's lifespan ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from grokgate import __version__
from grokgate.admin import ops_routes as admin_ops_routes
from grokgate.admin import org_routes as admin_org_routes
from grokgate.api import errors
from grokgate.api.backlog import record_backlog
from grokgate.api.headers import BodyLimit, RateLimitHeaders
from grokgate.api.metrics import RequestMetrics
from grokgate.api.requests import RequestIds
from grokgate.api.responses import document
from grokgate.api.responses import errors as error_responses
from grokgate.api.routing import add_routes
from grokgate.api.state import Services
from grokgate.background import run_rounds
from grokgate.billing import endpoints as billing_endpoints
from grokgate.compat import endpoints as compat_endpoints
from grokgate.config import Settings
from grokgate.errors import ApiError
from grokgate.jobs import catalogue_endpoints
from grokgate.jobs import endpoints as job_endpoints
from grokgate.metrics import Metrics
from grokgate.orgs import endpoints as org_endpoints
from grokgate.ratelimits import endpoints as ratelimit_endpoints
from grokgate.runtime import runtime
from grokgate.storage import endpoints as storage_endpoints
from grokgate.upstream.sandbox.app import create_sandbox_app, set_api_key
from grokgate.upstream.sandbox.secret import sandbox_api_key
from grokgate.web import console
from grokgate.webhooks import endpoints as webhook_endpoints

log = structlog.get_logger(__name__)

BACKLOG_SAMPLE_SECONDS = 5.0
"""How often the backlog gauges are read when a metrics port serves them (no route is there to read them)."""


def _metrics_caller(authorization: str | None, token: str) -> None:
    """The scraper's bearer token, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "MISSING_AUTH", "Authorization header is required: 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "KEY_NOT_FOUND", "Metrics token not accepted")


@contextlib.asynccontextmanager
async def _backlog_sampler(settings: Settings, services: Services, metrics: Metrics) -> AsyncIterator[None]:
    """With a metrics port, read the backlog gauges every few seconds, as `grokgate worker` does."""
    if settings.metrics_port is None:
        yield
        return

    async def sample() -> int:
        await record_backlog(services.db, metrics)
        return 0

    stop = asyncio.Event()
    task = asyncio.create_task(run_rounds("backlog", sample, stop=stop, batch=1, tick=BACKLOG_SAMPLE_SECONDS))
    try:
        yield
    finally:
        stop.set()
        await task


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    # Mounted on the customer port: no inspection routes, and no key works until the lifespan sets the install's.
    sandbox = (
        create_sandbox_app(api_key=secrets.token_urlsafe(32), video_seconds=settings.sandbox_video_seconds)
        if settings.sandbox_mounted
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with (
                runtime(settings, metrics, background=settings.run_poller) as services,
                _backlog_sampler(settings, services, metrics),
            ):
                app.state.services = services
                if sandbox is not None:
                    set_api_key(sandbox, await sandbox_api_key(services.db))
                yield
        finally:
            metrics.process_exited()

    app = FastAPI(
        title="grokgate",
        version=__version__,
        description="Grok Imagine image and video generation, sold for credits. Images answer at once; videos "
        "answer 202 with a job id to poll.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    errors.install(app)
    document(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestIds)
    app.add_middleware(BodyLimit, limit=settings.max_image_url_bytes + 1024 * 1024, timeout=settings.body_timeout)
    for router in (
        job_endpoints.router,
        catalogue_endpoints.router,
        webhook_endpoints.router,
        org_endpoints.router,
        ratelimit_endpoints.router,
        billing_endpoints.router,
        storage_endpoints.router,
        compat_endpoints.router,
        admin_org_routes.router,
        admin_ops_routes.router,
    ):
        add_routes(app, router)
    console.install(app, settings)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: the database (and Redis when configured) answer, and an xAI key is in rotation",
        responses={503: {"description": "A dependency is down: the same body, with `status` `unavailable`"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        services: Services = request.app.state.services
        checks: dict[str, str] = {}
        try:
            async with services.db.reader() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if settings.redis_url:
            checks["redis"] = "ok" if await services.limiter.healthy() else "unavailable"
        pool = services.upstream
        with contextlib.suppress(Exception):  # the database being away is reported above
            await pool.refresh()
        checks["upstream"] = "ok" if pool.rotation() else "unavailable: no xAI key in rotation"
        ready = all(value == "ok" for value in checks.values())
        body = {"status": "ok" if ready else "unavailable", "checks": checks, "upstreamKeys": pool.health()}
        return JSONResponse(body, 200 if ready else 503)

    if settings.metrics_token is not None:
        token = settings.metrics_token

        @app.get(
            "/metrics",
            tags=["ops"],
            summary="Prometheus metrics (GROKGATE_METRICS_TOKEN as a bearer token)",
            response_class=Response,
            responses=error_responses(401, says={401: "MISSING_AUTH or KEY_NOT_FOUND (not the metrics token)"}),
        )
        async def metrics_endpoint(request: Request) -> Response:
            _metrics_caller(request.headers.get("authorization"), token)
            services: Services = request.app.state.services
            with contextlib.suppress(Exception):  # the database being away must not hide every other metric
                await record_backlog(services.db, metrics)
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

    if sandbox is not None:
        app.mount("/sandbox", sandbox)
    return app


def app_from_env() -> FastAPI:
    """The factory `grokgate serve --workers N` gives uvicorn: each worker process builds its app from the
    environment."""
    from grokgate import gc_tuning
    from grokgate.logs import configure

    settings = Settings()
    configure(settings.log_level, settings.log_format)
    app = create_app(settings)
    gc_tuning.tune()  # a server process of its own
    return app
