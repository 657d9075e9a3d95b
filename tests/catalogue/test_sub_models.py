"""Each sub-model and new field end to end through real HTTP: what reaches xAI (the sandbox's journal), the answer,
the charge, and the stored media; the listing and the quote read the same table as the charge."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway, Sandbox
from tests.jobs.test_generate_errors import assert_error
from tests.jobs.test_generate_flows import png_data_uri
from tests.support import assert_money_exact, counts, wait_job


async def test_the_listing_shows_every_sub_model_without_xais_names(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    listed = (await gateway.client.get("/api/v1/models", headers=tenant.headers)).json()
    names = [entry["id"] for entry in listed["data"]]
    assert names[:3] == ["text-to-video", "text-to-image", "image-to-video"]
    assert {"video-edit", "video-extend", "text-to-image-quality", "text-to-image-2", "text-to-video-1.5"} <= set(names)
    by_name = {entry["id"]: entry for entry in listed["data"]}
    assert by_name["text-to-image"]["price"] == {"perImage": 8, "resolution": {"2k": 1.5}}
    assert by_name["text-to-video"]["fields"]["duration"] == {"min": 1, "max": 15, "default": 6, "required": False}
    assert by_name["text-to-video-1.5"]["fields"]["resolution"]["values"] == ["480p", "720p", "1080p"]
    assert all("xaiModel" not in entry and "operation" not in entry for entry in listed["data"])


async def test_a_quote_is_the_charge_without_charging(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    body = {"prompt": "x", "model": "text-to-video-1.5", "duration": 15, "resolution": "1080p"}
    before = await counts(gateway.db_url)
    quoted = (await gateway.client.post("/api/v1/quote", json=body, headers=tenant.headers)).json()
    assert (quoted["creditsCharged"], quoted["creditsRemaining"]) == (750, 1000)
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/") == []
    made = await gateway.generate(tenant, body)
    assert made.status_code == 202, made.text
    assert made.json()["creditsCharged"] == 750
    submitted = (await sandbox.requests("/v1/videos/generations"))[-1]["body"]
    assert (submitted["model"], submitted["resolution"], submitted["duration"]) == (
        "grok-imagine-video-1.5",
        "1080p",
        15,
    )
    await wait_job(gateway.client, tenant, made.json()["jobId"])


async def test_n_images_are_each_charged_and_each_delivered(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    made = await gateway.generate(tenant, {"prompt": "four", "model": "text-to-image", "n": 4})
    assert made.status_code == 200, made.text
    answer = made.json()
    assert answer["creditsCharged"] == 32
    assert len(answer["resultUrls"]) == 4
    assert answer["imageUrl"] == answer["resultUrls"][0]
    bodies = {(await gateway.client.get(url)).content for url in answer["resultUrls"]}
    assert len(bodies) == 4  # four images, not one four times
    assert (await sandbox.requests("/v1/images/generations"))[-1]["body"]["n"] == 4


async def test_a_refused_request_of_n_images_refunds_exactly_what_it_charged(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits=24)
    made = await gateway.generate(tenant, {"prompt": "x [sandbox:reject]", "model": "text-to-image", "n": 3})
    error = assert_error(made, 400, "UPSTREAM_REJECTED")
    job = (await gateway.client.get(f"/api/v1/jobs/{error['details']['jobId']}", headers=tenant.headers)).json()
    assert (job["creditsCharged"], job["creditsRefunded"]) == (24, 24)


async def test_images_xai_withheld_are_refunded_and_the_rest_delivered(gateway: Gateway) -> None:
    """Three images asked at 2k (36 credits), one withheld by xAI's moderation: two are delivered and the customer
    pays what two would have cost (24), once, however the answer is asked for again."""
    tenant = await gateway.tenant(credits=100)
    body = {"prompt": "three [sandbox:withheld=1]", "model": "text-to-image", "n": 3, "resolution": "2k"}
    made = await gateway.generate(tenant, body, headers={"Idempotency-Key": "withheld-1"})
    assert made.status_code == 200, made.text
    answer = made.json()
    assert (answer["creditsCharged"], answer["creditsRefunded"], len(answer["resultUrls"])) == (36, 12, 2)
    again = await gateway.generate(tenant, body, headers={"Idempotency-Key": "withheld-1"})
    assert again.json() == answer
    job = (await gateway.client.get(f"/api/v1/jobs/{answer['jobId']}", headers=tenant.headers)).json()
    assert (job["status"], job["creditsCharged"], job["creditsRefunded"]) == ("completed", 36, 12)
    shown = (await gateway.client.get("/api/v1/organization", headers=tenant.headers)).json()
    assert shown["creditsRemaining"] == 100 - 24
    await assert_money_exact(gateway.db_url)


@pytest.mark.parametrize(
    ("model", "extra", "xai_model"),
    [
        ("text-to-image-quality", {}, "grok-imagine-image-quality"),
        ("text-to-image-2", {"quality": "medium"}, "grok-imagine-image-2.0"),
        ("text-to-image", {"resolution": "2k"}, "grok-imagine-image"),
    ],
)
async def test_premium_image_variants_reach_their_xai_model(
    gateway: Gateway, sandbox: Sandbox, model: str, extra: dict[str, Any], xai_model: str
) -> None:
    tenant = await gateway.tenant(credits=100)
    made = await gateway.generate(tenant, {"prompt": "p", "model": model, **extra})
    assert made.status_code == 200, made.text
    sent = (await sandbox.requests("/v1/images/generations"))[-1]["body"]
    assert sent["model"] == xai_model
    for name, value in extra.items():
        assert sent[name] == value


async def test_a_multi_image_edit_sends_every_source(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    sources = [png_data_uri(), "https://example.com/b.png"]
    made = await gateway.generate(
        tenant,
        {
            "prompt": "<IMAGE_0> beside <IMAGE_1>",
            "model": "text-to-image",
            "image_urls": sources,
            "aspect_ratio": "1:1",
        },
    )
    assert made.status_code == 200, made.text
    sent = (await sandbox.requests("/v1/images/edits"))[-1]["body"]
    assert [image["url"] for image in sent["images"]] == sources
    assert sent["aspect_ratio"] == "1:1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "model": "text-to-image", "quality": "low"}, "quality"),
        (
            {"prompt": "x", "model": "video-edit", "video_url": "https://x.test/v.mp4", "resolution": "720p"},
            "resolution",
        ),
        ({"prompt": "x", "model": "text-to-video", "resolution": "1080p"}, "resolution"),
        ({"prompt": "x", "model": "text-to-video", "n": 2}, "n"),
        ({"prompt": "x", "model": "video-extend", "video_url": "https://x.test/v.mp4", "duration": 12}, "duration"),
        ({"prompt": "x", "model": "video-extend"}, "video_url"),
        (
            {
                "prompt": "x",
                "model": "text-to-image",
                "image_url": "https://x.test/a.png",
                "image_urls": ["https://x.test/b.png"],
            },
            "image_urls",
        ),
        ({"prompt": "x", "model": "text-to-image", "image_urls": ["https://x.test/b.png"] * 4}, "image_urls"),
        ({"prompt": "x", "model": "nothing-like-this"}, "model"),
    ],
)
async def test_a_field_a_sub_model_does_not_take_is_named_and_changes_nothing(
    gateway: Gateway, sandbox: Sandbox, body: dict[str, Any], field: str
) -> None:
    tenant = await gateway.tenant(credits=1000)
    before = await counts(gateway.db_url)
    error = assert_error(await gateway.generate(tenant, body), 400, "INVALID_INPUT", field)
    assert error["details"]["field"] == field
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/") == []


async def test_extend_my_last_video_by_its_link(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=1000)
    first = await gateway.generate(tenant, {"prompt": "a wave", "duration": 2})
    video = (await wait_job(gateway.client, tenant, first.json()["jobId"]))["output"]["videoUrl"]
    extended = await gateway.generate(
        tenant, {"prompt": "and it breaks", "model": "video-extend", "video_url": video, "duration": 2}
    )
    assert extended.status_code == 202, extended.text
    assert extended.json()["creditsCharged"] == 90
    sent = (await sandbox.requests("/v1/videos/extensions"))[-1]["body"]
    assert sent["video"]["url"].startswith(f"{gateway.server.url}/media/")
    assert sent["duration"] == 2
    job = await wait_job(gateway.client, tenant, extended.json()["jobId"])
    assert job["status"] == "completed", job


async def test_another_organisations_video_cannot_be_used(gateway: Gateway, sandbox: Sandbox) -> None:
    owner = await gateway.tenant(credits=1000, name="owner")
    stranger = await gateway.tenant(credits=1000, name="stranger")
    first = await gateway.generate(owner, {"prompt": "mine", "duration": 1})
    video = (await wait_job(gateway.client, owner, first.json()["jobId"]))["output"]["videoUrl"]
    before = await counts(gateway.db_url)
    calls = len(await sandbox.requests("/v1/"))
    refused = await gateway.generate(stranger, {"prompt": "steal", "model": "video-edit", "video_url": video})
    assert_error(refused, 400, "INVALID_URL", "video_url")
    assert await counts(gateway.db_url) == before
    assert len(await sandbox.requests("/v1/")) == calls
