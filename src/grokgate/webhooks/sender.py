"""The webhook sender: leases due deliveries from the outbox, signs and POSTs them, and records every attempt.

Delivery is at least once: a delivery is marked `delivered` only after a 2xx, in a transaction of its own, so a
crash between the POST and that write sends it again after the lease runs out, with the same `webhook-id` for the
receiver to deduplicate. The request path never waits on any of this.

Each attempt resolves the URL's host once, vets every address (`urls.py`), and connects to a vetted address
itself: the URL's host is replaced by that address, while the `Host` header and the TLS server name (SNI, and so
the certificate check) stay the URL's name. httpx never resolves the name again, so DNS rebinding between the
check and the connection cannot reach an inner address. Connections are not kept alive: the pool would key them
by address, and a request for one name must not travel over a TLS session verified for another on the same
address. No proxy from the environment is used either (its address would be the one connected to).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from time import perf_counter

import httpx
import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from grokgate.background import run_rounds
from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.db.leases import anything_due, claim
from grokgate.errors import ApiError
from grokgate.metrics import Metrics
from grokgate.orgs.models import Organization
from grokgate.webhooks.models import WebhookAttempt, WebhookDelivery
from grokgate.webhooks.outbox import new_secret
from grokgate.webhooks.schedule import next_retry_in
from grokgate.webhooks.urls import Resolver, resolve_webhook_url, system_resolver

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SenderSettings:
    schedule: tuple[float, ...]
    allow_private: bool = False
    timeout: float = 10.0
    batch: int = 100
    concurrency: int = 32
    lease: float = 60.0
    tick: float = 0.5


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        db: Database,
        settings: SenderSettings,
        owner: str,
        metrics: Metrics | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.settings = settings
        self.owner = owner
        self.resolver = resolver
        self._client = httpx.AsyncClient(
            timeout=settings.timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds("webhooks", self.round, stop=stop, batch=self.settings.batch, tick=self.settings.tick)

    async def round(self) -> int:
        due = [WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow()]
        async with self.db.reader() as session:
            if not await anything_due(session, WebhookDelivery, due=due):
                return 0
        async with self.db.transaction() as session:
            deliveries = await claim(
                session,
                WebhookDelivery,
                due=due,
                order_by=WebhookDelivery.next_attempt_at,
                owner=self.owner,
                lease_seconds=self.settings.lease,
                limit=self.settings.batch,
                is_postgres=not self.db.is_sqlite,
            )
            secrets = {d.org_id: await self._secret(session, d.org_id) for d in deliveries}
        if deliveries:
            await asyncio.gather(*(self._guarded(d, secrets[d.org_id]) for d in deliveries))
        return len(deliveries)

    @staticmethod
    async def _secret(session: AsyncSession, org_id: str) -> str:
        org = await session.get(Organization, org_id)
        assert org is not None
        if org.webhook_secret is None:
            org.webhook_secret = new_secret()
        return org.webhook_secret

    async def _guarded(self, delivery: WebhookDelivery, secret: str) -> None:
        async with self._slots:
            try:
                await self.deliver(delivery, secret)
            except Exception:
                log.exception("webhooks.delivery_crashed", delivery_id=delivery.id)

    async def attempt(self, delivery: WebhookDelivery, secret: str) -> Outcome:
        try:
            destination = await resolve_webhook_url(
                delivery.url, allow_private=self.settings.allow_private, resolver=self.resolver
            )
        except ApiError as exc:
            return Outcome(None, exc.message)
        body = json.dumps(delivery.payload, separators=(",", ":"))
        now = utcnow()
        url = httpx.URL(delivery.url)
        headers = {
            "host": url.netloc.decode("ascii"),
            "content-type": "application/json",
            "user-agent": "grokgate-webhooks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(delivery.id, now, body),
        }
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        failure = "no address to connect to"
        for address in destination.addresses:
            try:
                response = await self._client.post(
                    url.copy_with(host=address.split("%", 1)[0]), content=body, headers=headers, extensions=extensions
                )
            except httpx.ConnectError as exc:  # nothing was sent: the next vetted address may answer
                failure = f"{type(exc).__name__}: {exc}"[:500]
                continue
            except httpx.HTTPError as exc:
                return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
            return Outcome(response.status_code, None if response.is_success else response.text[:500])
        return Outcome(None, failure)

    async def deliver(self, delivery: WebhookDelivery, secret: str) -> None:
        started = perf_counter()
        outcome = await self.attempt(delivery, secret)
        elapsed_ms = int((perf_counter() - started) * 1000)
        attempts = delivery.attempts + 1
        now = utcnow()
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if outcome.delivered:
            values |= {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
            result = "delivered"
        else:
            wait = next_retry_in(attempts, self.settings.schedule)
            if wait is None:
                values |= {"status": "failed", "next_attempt_at": None}
                result = "gave_up"
            else:
                values["next_attempt_at"] = now + timedelta(seconds=wait)
                result = "will_retry"
        async with self.db.transaction() as session:
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=elapsed_ms,
                )
            )
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery.id, WebhookDelivery.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        if self.metrics is not None:
            self.metrics.webhooks.labels(result).inc()
        log.info(
            "webhooks.attempt",
            delivery_id=delivery.id,
            job_id=delivery.job_id,
            status_code=outcome.status_code,
            delivered=outcome.delivered,
            attempts=attempts,
        )
