"""Everything one process runs on, built once: the services the API uses, and the background work (video poller,
webhook sender, media sweeper) that `grokgate serve` and `grokgate worker` both run.

`runtime(settings, metrics, background=...)` is an async context: on exit the background loops finish their round,
leases this process still holds on polled videos and webhook deliveries are handed back at once (so another
process takes them over without waiting for them to run out), and every client and pool is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from sqlalchemy import update

from grokgate.api.state import KeyUsage, Services
from grokgate.background import run_rounds
from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.db.leases import LeaseKeeper
from grokgate.housekeeping import purge
from grokgate.idempotency.service import Idempotency
from grokgate.jobs import repository
from grokgate.jobs.models import Job
from grokgate.jobs.notifications import JobNotifier, channel_for
from grokgate.jobs.poller import Poller, PollerSettings
from grokgate.jobs.render_times import RenderTimes
from grokgate.jobs.repository import Finishing
from grokgate.jobs.service import JobService, process_identity
from grokgate.jobs.submitter import Submitter, SubmitterSettings
from grokgate.jobs.waiters import Waiters
from grokgate.metrics import Metrics
from grokgate.orgs.authcache import AuthCache
from grokgate.ratelimits.limiter import RateLimiter
from grokgate.storage.decoders import MediaDecoders
from grokgate.storage.ingest import Ingestor, Limits
from grokgate.storage.links import MediaLinks
from grokgate.storage.retention import ObjectClaims, sweep_expired
from grokgate.storage.service import signing_secret
from grokgate.storage.store import MediaStore, open_store
from grokgate.upstream.keys import EnvKey
from grokgate.upstream.pace import DatabasePace, RedisPace, SharedPace
from grokgate.upstream.pool import PoolSettings, UpstreamPool
from grokgate.upstream.sandbox.secret import sandbox_api_key
from grokgate.upstream.xai import key_id_of
from grokgate.webhooks.models import WebhookDelivery
from grokgate.webhooks.sender import SenderSettings, WebhookSender

log = structlog.get_logger(__name__)


async def release_leases(db: Database, owner: str) -> None:
    """Hand back what this process leased and can safely give up: polls of submitted videos, and deliveries."""
    async with db.transaction() as session:
        await repository.hand_back(session, owner)
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


def env_keys(secrets: tuple[str, ...]) -> list[EnvKey]:
    return [EnvKey(key_id_of(secret), f"environment key {i + 1}", secret) for i, secret in enumerate(secrets)]


async def _upstream_pool(settings: Settings, db: Database, metrics: Metrics) -> UpstreamPool:
    """The xAI keys of the environment and of the database, paced in Redis when there is one."""
    # The sandbox mounted on the customer port takes only the key this install keeps in its database.
    secrets = (await sandbox_api_key(db),) if settings.sandbox_mounted else settings.upstream_api_keys
    pool = UpstreamPool(
        db,
        env_keys(secrets),
        PoolSettings(
            base_url=settings.upstream_base_url,
            timeout=settings.upstream_timeout,
            retries=settings.upstream_retries,
            backoff=settings.upstream_backoff,
            image_rps=settings.xai_image_rps,
            video_rps=settings.xai_video_rps,
            image_wait=settings.image_queue_wait,
            queue=settings.upstream_queue,
            image_format=settings.xai_image_format,
        ),
        pace=SharedPace(RedisPace(settings.redis_url), DatabasePace(db)) if settings.redis_url else DatabasePace(db),
        observe=lambda endpoint, outcome: metrics.upstream.labels(endpoint, outcome).inc(),
        metrics=metrics,
    )
    await pool.start()
    return pool


@contextlib.asynccontextmanager
async def runtime(settings: Settings, metrics: Metrics, *, background: bool) -> AsyncIterator[Services]:
    owner = process_identity()
    db = Database(settings.database_url)
    metrics.watch(db.engine, db.direct_hooks)
    upstream = await _upstream_pool(settings, db, metrics)
    media_store = MediaStore(open_store(settings.storage_url, settings.data_dir))
    ingestor = Ingestor(
        media_store,
        Limits(image_bytes=settings.max_result_image_bytes, video_bytes=settings.max_result_video_bytes),
        settings.data_dir / "tmp",
        timeout=settings.upstream_timeout,
        claims=ObjectClaims(db),
        decoders=MediaDecoders(settings.media_decoders),
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
    leases = LeaseKeeper(db, Job, owner, settings.job_lease)
    notifier = JobNotifier(db, channel=channel_for(settings, db, metrics), recheck=settings.wait_recheck)
    render_times = RenderTimes()
    """How long videos take, learned by this process's poller and used by whatever submits here too."""
    services = Services(
        settings=settings,
        db=db,
        upstream=upstream,
        jobs=JobService(
            db=db,
            upstream=upstream,
            settings=settings,
            owner=owner,
            ingestor=ingestor,
            finishing=finishing,
            leases=leases,
            notifier=notifier,
            render_times=render_times,
        ),
        limiter=RateLimiter(settings.redis_url, fail_open=settings.rate_limit_fail_open),
        idempotency=Idempotency(db, stale_after=settings.request_lease),
        key_usage=KeyUsage(),
        media_store=media_store,
        metrics=metrics,
        waiters=Waiters(settings.max_waiters),
        auth_cache=AuthCache(settings.auth_cache_seconds),
    )
    services.auth_cache.watch(db.session_class)
    if settings.upstream == "sandbox":
        log.warning(
            "upstream.sandbox",
            message="NO XAI KEY: serving from the built-in SANDBOX upstream; results are synthetic",
            base_url=settings.upstream_base_url,
        )
    stop = asyncio.Event()
    # Requests hold leases too (an image waiting on xAI), so every process renews, with or without background work.
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(leases.run(stop), name="grokgate-leases"),
        asyncio.create_task(notifier.run(stop), name="grokgate-notifications"),
    ]
    sender = WebhookSender(
        db,
        SenderSettings(
            schedule=settings.webhook_retry_schedule,
            allow_private=settings.webhook_allow_private,
            timeout=settings.webhook_timeout,
            tick=max(0.02, min(0.5, settings.poll_interval)),
        ),
        owner,
        metrics,
    )
    if background:
        poller = Poller(
            db,
            upstream,
            PollerSettings(
                interval=settings.poll_interval,
                batch=settings.poller_batch,
                concurrency=settings.poller_concurrency,
                lease=settings.job_lease,
            ),
            owner,
            ingestor=ingestor,
            finishing=finishing,
            leases=leases,
            metrics=metrics,
            render_times=render_times,
        )

        async def sweep() -> int:
            await sweep_expired(db, media_store)
            await purge(db)
            return 0

        submitter = Submitter(
            db,
            upstream,
            owner,
            leases=leases,
            finishing=finishing,
            store=media_store,
            settings=SubmitterSettings(
                concurrency=settings.submitter_concurrency,
                lease=settings.job_lease,
                interval=settings.poll_interval,
            ),
            render_times=render_times,
        )
        tasks += [
            asyncio.create_task(submitter.run(stop), name="grokgate-submitter"),
            asyncio.create_task(poller.run(stop), name="grokgate-poller"),
            asyncio.create_task(sender.run(stop), name="grokgate-webhooks"),
            asyncio.create_task(
                run_rounds("sweeper", sweep, stop=stop, batch=1, tick=settings.sweep_interval),
                name="grokgate-sweeper",
            ),
        ]
    try:
        yield services
    finally:
        stop.set()
        await _finish_rounds(tasks, settings.shutdown_grace)
        if background:
            with contextlib.suppress(Exception):
                await release_leases(db, owner)
        await sender.aclose()
        await ingestor.aclose()
        await upstream.aclose()
        await services.limiter.aclose()
        await db.dispose()


async def _finish_rounds(tasks: list[asyncio.Task[None]], grace: float) -> None:
    """Let each background loop end its round, for at most `grace` seconds, then cut the rest short.

    A round cut short is safe to abandon: its work is leased rows, each step one transaction, so what it had not
    committed is picked up again by this or another process (its leases are handed back just after). Bounded,
    because an orchestrator's SIGKILL follows its own deadline and a hung webhook receiver must not hold a stop.
    """
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if pending:
        log.warning("runtime.rounds_cut_short", tasks=sorted(task.get_name() for task in pending))
