"""`/metrics`: Prometheus text with requests by route template, upstream calls, jobs, credits, poll lag, webhook
attempts, the backlog and database use. (Several processes adding up their values: tests/ops/test_processes.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway
from tests.support import LiveServer, wait_for, wait_job
from tests.webhooks.receiver import Receiver

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = "metrics-test-token"  # /metrics is on the API port only behind a token (tests/ops/test_hostile_inputs.py)


@pytest.fixture
async def gateway(gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with gateway_factory(metrics_token=TOKEN) as gw:
        yield gw


async def scrape(gateway: Gateway) -> Samples:
    response = await gateway.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_count_what_happened(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    await gateway.generate(tenant, {"prompt": "m", "model": "text-to-image"})
    job_id = (await gateway.generate(tenant, {"prompt": "x [sandbox:fail]", "duration": 1})).json()["jobId"]
    await wait_job(gateway.client, tenant, job_id)
    samples = await scrape(gateway)
    route = (("route", "/api/v1/models/grok-imagine"), ("status", "200"))
    assert samples[("grokgate_http_requests_total", route)] == 1
    assert samples[("grokgate_http_requests_total", (("route", "/api/v1/jobs/{jobId}"), ("status", "200")))] >= 1
    assert samples[("grokgate_upstream_calls_total", (("endpoint", "images/generations"), ("outcome", "200")))] == 1
    assert samples[("grokgate_upstream_calls_total", (("endpoint", "poll"), ("outcome", "200")))] >= 1
    assert samples[("grokgate_jobs_finished_total", (("status", "completed"),))] == 1
    assert samples[("grokgate_jobs_finished_total", (("status", "failed"),))] == 1
    assert samples[("grokgate_credits_total", (("kind", "charge"),))] == 158
    assert samples[("grokgate_credits_total", (("kind", "refund"),))] == 150
    assert samples[("grokgate_db_connections_max", ())] >= 1
    assert samples[("grokgate_db_statements_total", ())] > 0

    async def idle() -> bool:  # no request is under way: no connection is in use (the kept ones of direct
        return (await scrape(gateway))[("grokgate_db_connections_in_use", ())] == 0  # transactions included)

    await wait_for(idle, what="no database connection in use")


async def test_backlog_poll_lag_and_webhook_attempts(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver(fail_first=1)
    settings = {
        "metrics_token": TOKEN,
        "webhook_allow_private": True,
        "webhook_retry_schedule": "0.1s,0.1s",
        "poll_interval": 0.2,
    }
    async with LiveServer(receiver.app()) as hook, gateway_factory(**settings) as gw:
        tenant = await gw.tenant()
        waiting = (await gw.generate(tenant, {"prompt": "w [sandbox:never]", "duration": 1})).json()["jobId"]
        hooked = {"prompt": "h", "duration": 1, "webhookUrl": f"{hook.url}/hook"}
        done = (await gw.generate(tenant, hooked)).json()["jobId"]
        await wait_job(gw.client, tenant, done)
        delivered = ("grokgate_webhook_attempts_total", (("outcome", "delivered"),))

        async def recorded() -> Samples | None:
            samples = await scrape(gw)
            return samples if samples.get(delivered) == 1 else None

        await wait_for(recorded, what="the webhook delivered after one refusal")
        # A fresh scrape: the one that saw the counter may have read the backlog just before the delivery's commit
        # (the counter moves after it), so only a scrape begun after it must see the outbox empty.
        samples = await scrape(gw)
        assert len(receiver.accepted) == 1
        assert samples[("grokgate_jobs_active", (("status", "processing"),))] == 1  # the one that never ends
        assert samples[("grokgate_jobs_active", (("status", "pending"),))] == 0
        assert ("grokgate_queue_depth", (("queue", "video_polls_due"),)) in samples
        assert samples[("grokgate_queue_depth", (("queue", "webhooks_due"),))] == 0
        assert samples[("grokgate_webhook_attempts_total", (("outcome", "will_retry"),))] == 1
        assert samples[("grokgate_poll_lag_seconds_count", ())] >= 2
        assert samples[("grokgate_poll_lag_seconds_sum", ())] >= 0
        cancelled = await gw.client.delete(f"/api/v1/jobs/{waiting}", headers=tenant.headers)
        assert cancelled.status_code == 200
        assert (await scrape(gw))[("grokgate_jobs_active", (("status", "processing"),))] == 0
