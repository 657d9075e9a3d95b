"""Webhooks end to end: signed with Standard Webhooks, retried on failure, kept across a restart, SSRF-guarded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from standardwebhooks import Webhook

from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from grokgate.webhooks.schedule import next_retry_in, parse_schedule
from grokgate.webhooks.urls import is_public
from tests.conftest import Gateway
from tests.support import LiveServer, Tenant, counts, wait_for
from tests.webhooks.receiver import Receiver


async def secret_of(db_url: str, org_id: str) -> str:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            return await orgs.webhook_secret(session, org_id, rotate=False)
    finally:
        await db.dispose()


def fast(**extra: Any) -> dict[str, Any]:
    return {"webhook_allow_private": True, "webhook_retry_schedule": "0.1s,0.1s,0.1s", **extra}


async def test_completed_video_is_delivered_signed(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver()
    async with LiveServer(receiver.app()) as hook, gateway_factory(**fast()) as gw:
        tenant = await gw.tenant()
        response = await gw.generate(tenant, {"prompt": "hooked", "duration": 1, "webhookUrl": f"{hook.url}/hook"})
        job_id = response.json()["jobId"]
        await wait_for(lambda: len(receiver.accepted) == 1, what="the webhook")
        [delivery] = receiver.accepted
        payload = Webhook(await secret_of(gw.db_url, tenant.org_id)).verify(delivery.body, delivery.headers)
        assert payload["type"] == "job.completed"
        assert payload["data"]["id"] == job_id
        assert payload["data"]["status"] == "completed"
        assert payload["data"]["output"]["videoUrl"]
        assert delivery.headers["webhook-id"].startswith("msg_")
        # The receiver answers before the sender records the answer: wait for the record.
        for _ in range(100):
            shown = (await gw.client.get(f"/api/v1/jobs/{job_id}/deliveries", headers=tenant.headers)).json()
            if shown["deliveries"][0]["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        [row] = shown["deliveries"]
        assert (row["status"], row["attempts"], row["lastStatusCode"], row["event"]) == (
            "delivered",
            1,
            204,
            "job.completed",
        )
        assert len(row["history"]) == 1


@pytest.mark.parametrize(
    ("prompt", "event"), [("x [sandbox:fail]", "job.failed"), ("x [sandbox:never]", "job.cancelled")]
)
async def test_failed_and_cancelled_jobs_are_announced(
    gateway_factory: Callable[..., Any], prompt: str, event: str
) -> None:
    receiver = Receiver()
    async with LiveServer(receiver.app()) as hook, gateway_factory(**fast()) as gw:
        tenant = await gw.tenant()
        response = await gw.generate(tenant, {"prompt": prompt, "duration": 1, "webhookUrl": f"{hook.url}/hook"})
        job_id = response.json()["jobId"]
        if event == "job.cancelled":
            assert (await gw.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).status_code == 200
        await wait_for(lambda: len(receiver.accepted) == 1, what="the webhook")
        [payload] = receiver.payloads()
        assert payload["type"] == event
        assert payload["data"]["creditsRefunded"] == 150


async def test_fails_twice_then_accepts_once_across_a_restart(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver(fail_first=2)
    async with LiveServer(receiver.app()) as hook:
        async with gateway_factory(**fast(webhook_retry_schedule="0.3s,0.3s,0.3s")) as first:
            tenant = await first.tenant()
            response = await first.generate(
                tenant, {"prompt": "img", "model": "text-to-image", "webhookUrl": f"{hook.url}/hook"}
            )
            job_id = response.json()["jobId"]
            await wait_for(lambda: len(receiver.received) >= 1, what="the first attempt")
        # The first server is gone; the outbox row is not.
        async with gateway_factory(**fast(webhook_retry_schedule="0.3s,0.3s,0.3s")) as second:
            await wait_for(lambda: len(receiver.accepted) == 1, what="the successful delivery")

            async def recorded() -> Any:
                """The sender writes the receiver's 204 down just after the receiver has answered it."""
                shown = (await second.client.get(f"/api/v1/jobs/{job_id}/deliveries", headers=tenant.headers)).json()
                return shown if shown["deliveries"][0]["status"] == "delivered" else None

            shown = await wait_for(recorded, what="the delivery to be recorded")
    assert [item.answered for item in receiver.received] == [500, 500, 204]
    assert len({item.headers["webhook-id"] for item in receiver.received}) == 1
    secret = await secret_of(second.db_url, tenant.org_id)
    payload = Webhook(secret).verify(receiver.accepted[0].body, receiver.accepted[0].headers)
    assert payload["data"]["id"] == job_id
    [row] = shown["deliveries"]
    assert (row["status"], row["attempts"]) == ("delivered", 3)
    assert [attempt["statusCode"] for attempt in row["history"]] == [500, 500, 204]


async def test_a_delivery_gives_up_when_the_schedule_runs_out(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver(fail_first=99)
    async with LiveServer(receiver.app()) as hook, gateway_factory(**fast(webhook_retry_schedule="0.05s")) as gw:
        tenant = await gw.tenant()
        response = await gw.generate(
            tenant, {"prompt": "i", "model": "text-to-image", "webhookUrl": f"{hook.url}/hook"}
        )
        job_id = response.json()["jobId"]

        async def given_up() -> bool:
            shown = (await gw.client.get(f"/api/v1/jobs/{job_id}/deliveries", headers=tenant.headers)).json()
            return shown["deliveries"][0]["status"] == "failed"

        await wait_for(given_up, what="the delivery to give up")
    assert len(receiver.received) == 2  # the first try and the one retry of the schedule


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "http://user:pass@127.0.0.1/hook",
        "http://localhost/hook",
        "https://]",
        "http://[::1/hook",
    ],
)
async def test_private_or_odd_webhook_urls_are_refused_before_any_charge(gateway: Gateway, url: str) -> None:
    tenant = await gateway.tenant()
    before = await counts(gateway.db_url)
    response = await gateway.generate(tenant, {"prompt": "x", "model": "text-to-image", "webhookUrl": url})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_URL"
    assert "webhookUrl" in response.json()["error"]
    assert await counts(gateway.db_url) == before


async def test_private_urls_are_allowed_when_configured(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(webhook_allow_private=True) as gw:
        tenant: Tenant = await gw.tenant()
        response = await gw.generate(
            tenant, {"prompt": "x", "model": "text-to-image", "webhookUrl": "http://127.0.0.1:9/hook"}
        )
        assert response.status_code == 200


def test_schedule_parsing_and_jitter() -> None:
    assert parse_schedule("5s,30s,2m,10m,1h,3h,6h,12h") == (5, 30, 120, 600, 3600, 10800, 21600, 43200)
    assert parse_schedule("250ms") == (0.25,)
    with pytest.raises(ValueError, match="bad step"):
        parse_schedule("5 parsecs")
    schedule = parse_schedule("10s,1m")
    assert 8 <= (next_retry_in(1, schedule) or 0) <= 12
    assert 48 <= (next_retry_in(2, schedule) or 0) <= 72
    assert next_retry_in(3, schedule) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("169.254.169.254", False),
        ("fe80::1%eth0", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
    ],
)
def test_public_address_rule(address: str, public: bool) -> None:
    assert is_public(address) is public
