"""The xAI-compatible video routes with plain httpx, the way xAI's docs poll: submit, `202` while pending, then
`done` with a URL served by grokgate; edits and extensions of our own stored video; failures refunded and shown in
xAI's shapes; and every one a job of the native API."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import av
import httpx

from tests.compat.test_images import balance, jobs_of, served
from tests.conftest import Gateway, Sandbox
from tests.jobs.test_generate_flows import png_data_uri
from tests.support import LiveServer, Tenant, counts, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_webhooks import fast


async def submit(gateway: Gateway, tenant: Tenant, path: str, body: dict[str, Any]) -> str:
    answer = await gateway.client.post(f"/v1/videos/{path}", json=body, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"request_id"}
    request_id: str = answer.json()["request_id"]
    return request_id


async def poll(gateway: Gateway, tenant: Tenant, request_id: str) -> httpx.Response:
    return await gateway.client.get(f"/v1/videos/{request_id}", headers=tenant.headers)


async def until_ended(gateway: Gateway, tenant: Tenant, request_id: str) -> dict[str, Any]:
    """Poll as xAI's docs say: 202 means not yet; 200 carries the outcome."""

    async def ended() -> dict[str, Any] | None:
        answer = await poll(gateway, tenant, request_id)
        if answer.status_code == 202:
            assert answer.json()["status"] == "pending"
            return None
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    result: dict[str, Any] = await wait_for(ended, timeout=30, what=f"video {request_id}")
    return result


def mp4_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return float(container.duration or 0) / 1_000_000


async def test_generate_poll_then_edit_and_extend_our_own_video(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    request_id = await submit(
        gateway,
        tenant,
        "generations",
        {"prompt": "A cat with a ball [sandbox:delay=0.6]", "model": "grok-imagine-video", "duration": 2},
    )
    pending = await poll(gateway, tenant, request_id)
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending"

    done = await until_ended(gateway, tenant, request_id)
    assert done["status"] == "done"
    assert done["model"] == "grok-imagine-video"
    assert done["progress"] == 100
    assert done["usage"] == {"cost_in_usd_ticks": 150 * 10**8, "credits": 150}
    video = done["video"]
    assert video["duration"] == 2
    assert video["respect_moderation"] is True
    assert video["url"].startswith(f"{gateway.server.url}/media/")
    mp4 = await served(video["url"])
    assert mp4.headers["content-type"] == "video/mp4"
    assert abs(mp4_seconds(mp4.content) - 2) < 0.2
    [call] = await sandbox.requests("/v1/videos/generations")
    assert call["body"]["model"] == "grok-imagine-video"
    assert call["body"]["duration"] == 2

    # The request id is the job's id: the native API lists it, with the same result.
    [job] = await jobs_of(gateway, tenant)
    assert job["id"] == request_id
    assert job["status"] == "completed"
    assert job["creditsCharged"] == 150

    edit_id = await submit(gateway, tenant, "edits", {"prompt": "Add snow", "video": {"url": video["url"]}})
    extend_id = await submit(
        gateway, tenant, "extensions", {"prompt": "Zoom out", "video": {"url": video["url"]}, "duration": 2}
    )
    edited = await until_ended(gateway, tenant, edit_id)
    extended = await until_ended(gateway, tenant, extend_id)
    assert edited["status"] == extended["status"] == "done"
    assert edited["usage"]["credits"] == 150
    assert extended["usage"]["credits"] == 60 + 15 * 2
    assert abs(mp4_seconds((await served(extended["video"]["url"])).content) - 4) < 0.3
    [edit_call] = await sandbox.requests("/v1/videos/edits")
    [extend_call] = await sandbox.requests("/v1/videos/extensions")
    # xAI is handed a fresh link to our stored copy, never the customer's own link.
    assert edit_call["body"]["video"]["url"].startswith(f"{gateway.server.url}/media/")
    assert extend_call["body"]["duration"] == 2
    assert await balance(gateway, tenant) == 1000 - 150 - 150 - 90
    assert {job["id"] for job in await jobs_of(gateway, tenant)} == {request_id, edit_id, extend_id}


async def test_xais_defaults_aliases_and_image_to_video(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    await submit(gateway, tenant, "generations", {"prompt": "Default length"})
    await submit(gateway, tenant, "generations", {"prompt": "As a string", "seconds": "3"})
    still = png_data_uri()
    await submit(gateway, tenant, "generations", {"input_reference": {"url": still}, "duration": 2})
    await submit(
        gateway,
        tenant,
        "generations",
        {"prompt": "Sharper", "model": "grok-imagine-video-1.5", "duration": 2, "resolution": "720p"},
    )
    default, string, animated, sharper = await sandbox.requests("/v1/videos/generations")
    assert default["body"]["duration"] == 8  # xAI's default, not the native API's 6
    assert string["body"]["duration"] == 3
    assert animated["body"]["image"]["url"].startswith("data:image/png;base64,")
    assert sharper["body"]["model"] == "grok-imagine-video-1.5"
    assert sharper["body"]["resolution"] == "720p"
    models = {job["id"]: job for job in await jobs_of(gateway, tenant)}
    assert len(models) == 4
    # 150 + 150 + 150 (+ the catalogue's per-second 1.5 rule: 16 x 2 x 1.75 = 56)
    assert await balance(gateway, tenant) == 1000 - 150 * 3 - 56


async def test_a_failed_video_is_refunded_and_shown_failed(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=300)
    failing = await submit(gateway, tenant, "generations", {"prompt": "Doomed [sandbox:fail]", "duration": 1})
    expiring = await submit(gateway, tenant, "generations", {"prompt": "Gone [sandbox:expire]", "duration": 1})
    failed = await until_ended(gateway, tenant, failing)
    assert failed == {
        "status": "failed",
        "error": {"code": "internal_error", "message": "Video generation failed"},
        "usage": {"cost_in_usd_ticks": 0, "credits": 0},
    }
    expired = await until_ended(gateway, tenant, expiring)
    assert expired["status"] == "expired"
    assert expired["usage"]["credits"] == 0
    assert await balance(gateway, tenant) == 300
    jobs = {job["id"]: job for job in await jobs_of(gateway, tenant)}
    assert jobs[failing]["status"] == jobs[expiring]["status"] == "failed"
    assert jobs[failing]["creditsRefunded"] == 150


async def test_a_cancelled_video_is_refunded_and_shown_failed(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=150)
    request_id = await submit(gateway, tenant, "generations", {"prompt": "Slow [sandbox:delay=30]", "duration": 1})
    cancelled = await gateway.client.delete(f"/api/v1/jobs/{request_id}", headers=tenant.headers)
    assert cancelled.status_code == 200
    answer = await poll(gateway, tenant, request_id)
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed"
    assert answer.json()["error"]["code"] == "failed_precondition"
    assert await balance(gateway, tenant) == 150


async def test_unknown_foreign_and_image_ids_are_404(gateway: Gateway, sandbox: Sandbox) -> None:
    owner = await gateway.tenant(credits=200, name="owner")
    other = await gateway.tenant(credits=200, name="other")
    request_id = await submit(gateway, owner, "generations", {"prompt": "Mine", "duration": 1})
    image = await gateway.client.post("/v1/images/generations", json={"prompt": "Still"}, headers=owner.headers)
    assert image.status_code == 200
    [image_job] = [job["id"] for job in await jobs_of(gateway, owner) if job["id"] != request_id]
    for tenant, asked in ((other, request_id), (owner, "job_doesnotexist"), (owner, image_job)):
        answer = await poll(gateway, tenant, asked)
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "JOB_NOT_FOUND"
        assert set(answer.json()) == {"code", "error", "details"}
    assert (await gateway.client.get(f"/v1/videos/{request_id}")).status_code == 401


async def test_bad_video_bodies_name_the_field_and_charge_nothing(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    before = await counts(gateway.db_url)
    cases = [
        ("generations", {"prompt": "Long", "duration": 20}, "duration"),
        ("generations", {"prompt": "Bool", "duration": True}, "duration"),
        ("generations", {"prompt": "Text", "duration": "6s"}, "duration"),
        ("generations", {"duration": 2}, "prompt"),
        ("generations", {"prompt": "Tall", "resolution": "1080p"}, "resolution"),  # only on -1.5
        ("generations", {"prompt": "Refs", "reference_images": [{"url": png_data_uri()}]}, "reference_images"),
        ("generations", {"image": {"url": "nope"}}, "image.url"),
        ("edits", {"prompt": "Snow"}, "video"),
        ("edits", {"prompt": "Snow", "video": {"url": "data:video/mp4;base64,AAAA"}}, "video.url"),
        ("edits", {"prompt": "Snow", "video": {"url": f"{gateway.server.url}/media/med_x"}}, "video.url"),
        ("extensions", {"prompt": "More", "video": {"url": "https://example.com/a.mp4"}, "duration": 11}, "duration"),
        ("generations", {"prompt": "Hook", "webhook_url": "http://127.0.0.1/hook"}, "webhook_url"),
    ]
    for path, body, field in cases:
        answer = await gateway.client.post(f"/v1/videos/{path}", json=body, headers=tenant.headers)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["details"]["field"] == field, (body, answer.text)
        assert answer.json()["error"].startswith(field), answer.text
    unknown = await gateway.client.post(
        "/v1/videos/generations", json={"prompt": "Who", "model": "sora-2"}, headers=tenant.headers
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "MODEL_NOT_FOUND"
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/videos") == []


async def test_video_models_are_listed_from_the_catalogue(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    listed = (await gateway.client.get("/v1/video-generation-models", headers=tenant.headers)).json()["models"]
    by_id = {model["id"]: model for model in listed}
    assert list(by_id) == ["grok-imagine-video", "grok-imagine-video-1.5"]
    assert by_id["grok-imagine-video"]["input_modalities"] == ["text", "image", "video"]
    assert by_id["grok-imagine-video"]["resolutions"] == ["480p", "720p"]
    assert by_id["grok-imagine-video-1.5"]["resolutions"] == ["480p", "720p", "1080p"]
    one = await gateway.client.get("/v1/video-generation-models/grok-imagine-video-1.5", headers=tenant.headers)
    assert one.json() == by_id["grok-imagine-video-1.5"]


async def test_webhook_url_announces_the_video_like_a_native_job(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver()
    async with LiveServer(receiver.app()) as hook, gateway_factory(**fast()) as gateway:
        tenant = await gateway.tenant(credits=150)
        request_id = await submit(
            gateway, tenant, "generations", {"prompt": "Hooked", "duration": 1, "webhook_url": f"{hook.url}/hook"}
        )
        await wait_for(lambda: len(receiver.accepted) == 1, what="the webhook")
        [payload] = receiver.payloads()
        assert payload["type"] == "job.completed"
        assert payload["data"]["id"] == request_id
        done = await until_ended(gateway, tenant, request_id)
        assert done["status"] == "done"
