"""`/metrics`: Prometheus text with requests by route template, upstream calls, jobs, credits, database use."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway
from tests.support import wait_job


async def scrape(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await gateway.client.get("/metrics")
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
