"""The jobs API beyond the seed: list, cancel, the workflow form, waiting without polling, and the event stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Gateway, Sandbox
from tests.support import counts, wait_job


async def test_list_is_newest_first_paginated_and_filtered(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    other = await gateway.tenant(name="other")
    made = []
    for i in range(5):
        made.append((await gateway.generate(tenant, {"prompt": f"i{i}", "model": "text-to-image"})).json()["jobId"])
    await gateway.generate(other, {"prompt": "not yours", "model": "text-to-image"})
    failing = await gateway.generate(tenant, {"prompt": "x [sandbox:reject]", "model": "text-to-image"})
    assert failing.status_code == 400

    page = (await gateway.client.get("/api/v1/jobs?limit=2", headers=tenant.headers)).json()
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 0)
    assert page["jobs"][1]["id"] == made[-1]
    assert page["jobs"][0]["status"] == "failed"
    second = (await gateway.client.get("/api/v1/jobs?limit=2&offset=2", headers=tenant.headers)).json()
    assert [job["id"] for job in second["jobs"]] == [made[3], made[2]]
    completed = (await gateway.client.get("/api/v1/jobs?status=completed", headers=tenant.headers)).json()
    assert completed["total"] == 5
    assert set(completed["jobs"][0]) == {
        "id",
        "status",
        "output",
        "creditsCharged",
        "workflowSlug",
        "createdAt",
        "updatedAt",
    }
    for bad in ("limit=0", "limit=101", "offset=-1", "status=weird"):
        response = await gateway.client.get(f"/api/v1/jobs?{bad}", headers=tenant.headers)
        assert response.status_code == 400, bad
        assert response.json()["code"] == "INVALID_INPUT"


async def test_cancel_refunds_once_and_stops_polling(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=150)
    job_id = (await gateway.generate(tenant, {"prompt": "long [sandbox:never]", "duration": 1})).json()["jobId"]
    cancelled = await gateway.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["creditsRefunded"]) == ("cancelled", 150)
    again = await gateway.client.delete(f"/api/v1/jobs/{job_id}", headers=tenant.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "JOB_NOT_CANCELLABLE"
    polls = len(await sandbox.requests("/v1/videos/"))
    job = await wait_job(gateway.client, tenant, job_id)
    assert job["status"] == "cancelled"
    assert len(await sandbox.requests("/v1/videos/")) <= polls + 1  # at most one poll was already in flight
    # The refund is whole: another video fits the balance again.
    assert (await gateway.generate(tenant, {"prompt": "next", "duration": 1})).status_code == 202


async def test_finished_and_foreign_jobs_cannot_be_cancelled(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    stranger = await gateway.tenant(name="stranger")
    done = (await gateway.generate(tenant, {"prompt": "i", "model": "text-to-image"})).json()["jobId"]
    response = await gateway.client.delete(f"/api/v1/jobs/{done}", headers=tenant.headers)
    assert (response.status_code, response.json()["code"]) == (409, "JOB_NOT_CANCELLABLE")
    video = (await gateway.generate(tenant, {"prompt": "v [sandbox:never]", "duration": 1})).json()["jobId"]
    response = await gateway.client.delete(f"/api/v1/jobs/{video}", headers=stranger.headers)
    assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND")


async def test_workflow_form_creates_the_same_jobs(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    image = await gateway.client.post(
        "/api/v1/jobs",
        json={
            "workflow": "generate_image",
            "input": {"prompt": "A fox", "model": "grok-imagine", "aspect_ratio": "1:1"},
        },
        headers=tenant.headers,
    )
    assert image.status_code == 201, image.text
    body = image.json()
    assert body["workflow"] == "generate_image"
    assert (body["status"], body["creditsCharged"]) == ("completed", 8)
    assert body["_links"]["self"].endswith(f"/api/v1/jobs/{body['id']}")
    assert body["_links"]["cancel"].endswith(f"/api/v1/jobs/{body['id']}")
    video = await gateway.client.post(
        "/api/v1/jobs",
        json={"workflow": "generate_video", "input": {"prompt": "A river", "duration": 2}},
        headers=tenant.headers,
    )
    assert video.status_code == 201
    assert (video.json()["status"], video.json()["creditsCharged"]) == ("pending", 150)
    job = await wait_job(gateway.client, tenant, video.json()["id"])
    assert job["status"] == "completed"
    [call] = await sandbox.requests("/v1/videos/generations")
    assert call["body"]["duration"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow": "generate_audio", "input": {"prompt": "x"}}, "workflow"),
        ({"workflow": "generate_image", "input": {}}, "input.prompt"),
        ({"workflow": "generate_video", "input": {"prompt": "x", "duration": 99}}, "input.duration"),
        ({"workflow": "generate_image", "input": {"prompt": "x", "model": "dall-e"}}, "input.model"),
        ({"workflow": "generate_image"}, "input"),
    ],
)
async def test_workflow_form_validation_names_the_field(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    tenant = await gateway.tenant()
    before = await counts(gateway.db_url)
    response = await gateway.client.post("/api/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(field)
    assert await counts(gateway.db_url) == before


async def test_prefer_wait_answers_when_the_video_ends(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(
        tenant, {"prompt": "quick", "duration": 1}, headers={**tenant.headers, "Prefer": "wait=30"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=30"
    body = response.json()
    assert body["status"] == "completed"
    assert body["output"]["videoUrl"]
    generic = await gateway.client.post(
        "/api/v1/jobs",
        json={"workflow": "generate_video", "input": {"prompt": "fails [sandbox:fail]", "duration": 1}},
        headers={**tenant.headers, "Prefer": "wait=30"},
    )
    assert generic.status_code == 201
    assert generic.json()["status"] == "failed"
    assert generic.json()["creditsRefunded"] == 150


async def test_prefer_wait_runs_out_and_answers_the_current_job(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(
        tenant, {"prompt": "slow [sandbox:never]", "duration": 1}, headers={**tenant.headers, "Prefer": "wait=0.3"}
    )
    assert response.status_code == 202
    assert response.json()["status"] in ("pending", "processing")
    assert response.json()["output"] is None


async def test_event_stream_follows_the_job_to_its_end(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    job_id = (await gateway.generate(tenant, {"prompt": "streamed [sandbox:delay=0.5]", "duration": 1})).json()["jobId"]
    events = []
    async with gateway.client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=tenant.headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                events.append((event["status"], event.get("progress")))
    statuses = [status for status, _ in events]
    assert statuses[0] in ("pending", "processing")
    assert statuses[-1] == "completed"
    # One event per change: of the status, or of xAI's progress while it renders (which only goes up).
    assert len(events) == len(set(events))
    progress = [percent for status, percent in events if status == "processing" and percent is not None]
    assert progress == sorted(progress)
    missing = await gateway.client.get("/api/v1/jobs/job_nope/events", headers=tenant.headers)
    assert missing.status_code == 404


async def test_idempotent_image_runs_once_and_replays(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    headers = {**tenant.headers, "Idempotency-Key": "order-42"}
    body = {"prompt": "once", "model": "text-to-image"}
    first = await gateway.generate(tenant, body, headers=headers)
    second = await gateway.generate(tenant, body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(await sandbox.requests("/v1/images/generations")) == 1
    reused = await gateway.generate(tenant, {"prompt": "other", "model": "text-to-image"}, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    other_org = await gateway.tenant(name="other")
    fresh = await gateway.generate(other_org, body, headers={**other_org.headers, "Idempotency-Key": "order-42"})
    assert fresh.status_code == 200
    assert fresh.json()["jobId"] != first.json()["jobId"]


async def test_two_racing_requests_with_one_key_charge_once(gateway: Gateway, sandbox: Sandbox) -> None:
    import asyncio

    tenant = await gateway.tenant(credits=300)
    headers = {**tenant.headers, "Idempotency-Key": "race-1"}
    body = {"prompt": "racing [sandbox:hang=0.3]", "duration": 1}
    first, second = await asyncio.gather(
        gateway.generate(tenant, body, headers=headers), gateway.generate(tenant, body, headers=headers)
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["jobId"] == second.json()["jobId"]
    assert len(await sandbox.requests("/v1/videos/generations")) == 1
    ledger = (await gateway.client.get("/api/v1/ledger", headers=tenant.headers)).json()
    assert [entry["kind"] for entry in ledger["entries"]] == ["charge", "grant"]


async def test_idempotent_failure_is_replayed_not_retried(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    headers = {**tenant.headers, "Idempotency-Key": "bad-1"}
    body = {"prompt": "x [sandbox:error500]", "model": "text-to-image"}
    first = await gateway.generate(tenant, body, headers=headers)
    second = await gateway.generate(tenant, body, headers=headers)
    assert first.status_code == second.status_code == 502
    assert first.json() == second.json()
    assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_a_refusal_for_want_of_credits_is_not_replayed_after_a_top_up(gateway: Gateway, sandbox: Sandbox) -> None:
    """402 took nothing and ran nothing: after a top-up the same request with the same key runs, once."""
    from grokgate.billing import ledger
    from grokgate.db.engine import Database

    tenant = await gateway.tenant(credits=4)
    headers = {**tenant.headers, "Idempotency-Key": "poor-1"}
    body = {"prompt": "wanted", "model": "text-to-image"}
    refused = await gateway.generate(tenant, body, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (402, "INSUFFICIENT_CREDITS")
    db = Database(gateway.db_url)
    try:
        async with db.transaction() as session:
            await ledger.grant(session, tenant.org_id, 10, "top-up")
    finally:
        await db.dispose()
    made = await gateway.generate(tenant, body, headers=headers)
    assert made.status_code == 200, made.text
    again = await gateway.generate(tenant, body, headers=headers)
    assert (again.json(), again.headers["idempotent-replayed"]) == (made.json(), "true")
    assert len(await sandbox.requests("/v1/images/generations")) == 1
    shown = (await gateway.client.get("/api/v1/organization", headers=tenant.headers)).json()
    assert shown["creditsRemaining"] == 14 - 8


async def test_bad_idempotency_keys_are_400(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(
        tenant, {"prompt": "x", "model": "text-to-image"}, headers={**tenant.headers, "Idempotency-Key": "x" * 300}
    )
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_INPUT")


async def test_idempotency_key_works_on_the_workflow_form(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory() as gw:
        tenant = await gw.tenant()
        headers = {**tenant.headers, "Idempotency-Key": "wf-1"}
        body = {"workflow": "generate_video", "input": {"prompt": "v", "duration": 1}}
        first = await gw.client.post("/api/v1/jobs", json=body, headers=headers)
        second = await gw.client.post("/api/v1/jobs", json=body, headers=headers)
        assert first.json()["id"] == second.json()["id"]
        assert first.status_code == second.status_code == 201
