"""Every documented error code of `POST /api/v1/models/grok-imagine` and `GET /api/v1/jobs/{id}`, and the rule that
bad input changes nothing: no ledger row, no job, no call to xAI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from grokgate.db.base import utcnow
from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from grokgate.orgs.models import ApiKey
from tests.conftest import Gateway, Sandbox
from tests.support import counts

URL = "/api/v1/models/grok-imagine"


def assert_error(response: Any, status: int, code: str, mentions: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "code", "details"}, body
    assert body["code"] == code, body
    if mentions is not None:
        assert mentions in body["error"], body
    return body


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_AUTH"),
        ({"Authorization": ""}, "MISSING_AUTH"),
        ({"Authorization": "Token abc"}, "INVALID_FORMAT"),
        ({"Authorization": "Bearer"}, "INVALID_FORMAT"),
        ({"Authorization": "Bearer two words"}, "INVALID_FORMAT"),
        ({"Authorization": "Bearer gg_nothere_secret"}, "KEY_NOT_FOUND"),
        ({"Authorization": "Bearer not-even-our-shape"}, "KEY_NOT_FOUND"),
    ],
)
async def test_authentication_errors(gateway: Gateway, headers: dict[str, str], code: str) -> None:
    response = await gateway.client.post(URL, json={"prompt": "x", "model": "text-to-image"}, headers=headers)
    assert_error(response, 401, code)
    assert_error(await gateway.client.get("/api/v1/jobs/job_x", headers=headers), 401, code)


async def test_auth_is_checked_before_the_body(gateway: Gateway) -> None:
    response = await gateway.client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 401, "MISSING_AUTH")


async def test_right_key_id_with_wrong_secret_is_not_found(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    forged = tenant.key[:-4] + "abcd"
    response = await gateway.client.get("/api/v1/jobs/job_x", headers={"Authorization": f"Bearer {forged}"})
    assert_error(response, 401, "KEY_NOT_FOUND")


async def test_revoked_and_expired_keys(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    db = Database(gateway.db_url)
    try:
        async with db.transaction() as session:
            await orgs.revoke_key(session, tenant.key_id)
            _, expiring = await orgs.create_key(session, tenant.org_id)
            expired_row = await session.get(ApiKey, expiring.split("_")[0] and "key_" + expiring.split("_")[1])
            assert expired_row is not None
            expired_row.expires_at = utcnow()
    finally:
        await db.dispose()
    body = {"prompt": "x", "model": "text-to-image"}
    assert_error(await gateway.generate(tenant, body), 401, "KEY_REVOKED")
    expired = {"Authorization": f"Bearer {expiring}"}
    assert_error(await gateway.client.post(URL, json=body, headers=expired), 401, "KEY_EXPIRED")


BAD_BODIES: list[tuple[Any, str, str]] = [
    ({}, "INVALID_INPUT", "prompt"),
    ({"model": "text-to-image"}, "INVALID_INPUT", "prompt"),
    ({"prompt": "   ", "model": "text-to-image"}, "INVALID_INPUT", "prompt"),
    ({"prompt": "x" * 5001}, "INVALID_INPUT", "prompt"),
    ({"prompt": 42}, "INVALID_INPUT", "prompt"),
    ({"prompt": "x", "model": "text-to-audio"}, "INVALID_INPUT", "model"),
    ({"prompt": "x", "aspect_ratio": "21:9"}, "INVALID_INPUT", "aspect_ratio"),
    ({"prompt": "x", "duration": 0}, "INVALID_INPUT", "duration"),
    ({"prompt": "x", "duration": 16}, "INVALID_INPUT", "duration"),
    ({"prompt": "x", "duration": 6.5}, "INVALID_INPUT", "duration"),
    ({"prompt": "x", "duration": "long"}, "INVALID_INPUT", "duration"),
    ({"prompt": "x", "model": "text-to-image", "duration": 6}, "INVALID_INPUT", "duration"),
    ({"prompt": "x", "aspectRatio": "16:9"}, "INVALID_INPUT", "aspectRatio"),
    ({"model": "image-to-video"}, "INVALID_INPUT", "image_url"),
    ({"prompt": "x", "image_url": "https://example.com/a.png"}, "INVALID_INPUT", "image_url"),
    ({"model": "image-to-video", "image_url": "ftp://example.com/a.png"}, "INVALID_URL", "image_url"),
    ({"model": "image-to-video", "image_url": "not a url"}, "INVALID_URL", "image_url"),
    ({"model": "image-to-video", "image_url": "https://"}, "INVALID_URL", "image_url"),
    ({"model": "image-to-video", "image_url": "http://[::1/a.png"}, "INVALID_URL", "image_url"),
    ({"model": "image-to-video", "image_url": "data:text/plain;base64,aGk="}, "INVALID_URL", "image_url"),
    ({"prompt": "x", "model": "text-to-image", "image_url": "data:image/png;base64,@@@"}, "INVALID_URL", "image_url"),
    ([1, 2], "INVALID_INPUT", "JSON object"),
    ("a string", "INVALID_INPUT", "JSON object"),
]


@pytest.mark.parametrize(("body", "code", "mentions"), BAD_BODIES)
async def test_bad_input_names_the_field_and_changes_nothing(
    gateway: Gateway, sandbox: Sandbox, body: Any, code: str, mentions: str
) -> None:
    tenant = await gateway.tenant()
    before = await counts(gateway.db_url)
    upstream_before = len(await sandbox.requests())
    assert_error(await gateway.generate(tenant, body), 400, code, mentions)
    assert await counts(gateway.db_url) == before
    assert len(await sandbox.requests()) == upstream_before


@pytest.mark.parametrize("raw", [b"{", b"{'prompt': 'x'}", b"", b"\xff\xfe", b"null"])
async def test_malformed_or_missing_json_is_400(gateway: Gateway, raw: bytes) -> None:
    tenant = await gateway.tenant()
    before = await counts(gateway.db_url)
    response = await gateway.client.post(
        URL, content=raw, headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400, "INVALID_INPUT")
    assert await counts(gateway.db_url) == before


async def test_too_large_data_uri_is_refused_before_any_charge(gateway_factory: Any, sandbox: Sandbox) -> None:
    async with gateway_factory(max_image_url_bytes=1000) as gw:
        tenant = await gw.tenant()
        before = await counts(gw.db_url)
        big = "data:image/png;base64," + "A" * 2000
        body = {"model": "image-to-video", "image_url": big}
        assert_error(await gw.generate(tenant, body), 400, "INVALID_URL", "image_url")
        assert await counts(gw.db_url) == before
        assert await sandbox.requests("/v1/") == []


async def test_insufficient_credits_makes_no_upstream_call(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    before = await counts(gateway.db_url)
    body = assert_error(await gateway.generate(tenant, {"prompt": "a video"}), 402, "INSUFFICIENT_CREDITS")
    assert body["details"] == {"creditsRequired": 150, "creditsRemaining": 100}
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/") == []


async def test_unknown_job_and_other_organisations_job_are_404(gateway: Gateway) -> None:
    owner = await gateway.tenant(name="owner")
    stranger = await gateway.tenant(name="stranger")
    made = await gateway.generate(owner, {"prompt": "mine", "model": "text-to-image"})
    job_id = made.json()["jobId"]
    assert (await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=owner.headers)).status_code == 200
    assert_error(await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=stranger.headers), 404, "JOB_NOT_FOUND")
    assert_error(await gateway.client.get("/api/v1/jobs/job_nope", headers=owner.headers), 404, "JOB_NOT_FOUND")


async def test_unknown_path_and_method(gateway: Gateway) -> None:
    assert_error(await gateway.client.get("/api/v1/nothing"), 404, "NOT_FOUND")
    assert_error(await gateway.client.get(URL), 405, "METHOD_NOT_ALLOWED")


async def test_upstream_500_is_502_and_refunded(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    response = await gateway.generate(tenant, {"prompt": "boom [sandbox:error500]", "model": "text-to-image"})
    body = assert_error(response, 502, "UPSTREAM_ERROR")
    job = (await gateway.client.get(f"/api/v1/jobs/{body['details']['jobId']}", headers=tenant.headers)).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "UPSTREAM_ERROR"
    assert job["creditsRefunded"] == job["creditsCharged"] == 8
    # A submit whose outcome is unknown (a 500 after sending) is not repeated.
    assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_upstream_rejection_is_400_with_xai_message_and_refunded(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=150)
    for body in ({"prompt": "bad [sandbox:reject]", "model": "text-to-image"}, {"prompt": "bad [sandbox:reject]"}):
        response = await gateway.generate(tenant, body)
        error = assert_error(response, 400, "UPSTREAM_REJECTED", "content policy")
        assert error["details"]["upstreamCode"] == "invalid_argument"
    balance = (await gateway.generate(tenant, {"prompt": "ok", "model": "text-to-image"})).json()
    assert balance["creditsCharged"] == 8


async def test_rate_limited_submit_is_retried_then_succeeds(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    response = await gateway.generate(tenant, {"prompt": "busy [sandbox:ratelimit=2]", "model": "text-to-image"})
    assert response.status_code == 200, response.text
    assert len(await sandbox.requests("/v1/images/generations")) == 3


async def test_a_video_xai_keeps_refusing_with_429_is_queued_then_failed_and_refunded(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    """429 means xAI did not take the video: it is queued (202, no xAI id yet) and sent again by the submitter,
    and when xAI keeps refusing, the job fails and is refunded; the next video goes through."""
    tenant = await gateway.tenant(credits=150)
    response = await gateway.generate(tenant, {"prompt": "busy [sandbox:ratelimit=99]"})
    assert response.status_code == 202, response.text
    assert response.json()["externalJobId"] is None
    job_id = response.json()["jobId"]
    for _ in range(300):
        job = (await gateway.client.get(f"/api/v1/jobs/{job_id}", headers=tenant.headers)).json()
        if job["status"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "UPSTREAM_ERROR"
    assert job["creditsRefunded"] == 150
    assert len(await sandbox.requests("/v1/videos/generations")) >= 3
    again = await gateway.generate(tenant, {"prompt": "fine now"})
    assert again.status_code == 202
