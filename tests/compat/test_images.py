"""The xAI-compatible image routes, driven by the official `openai` package against a real gateway and the sandbox:
both response formats, edits, errors in xAI's shape (nothing charged, no job), idempotency."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types import ImagesResponse
from PIL import Image

from grokgate.db.engine import Database
from grokgate.orgs.service import get_org
from tests.conftest import Gateway, Sandbox
from tests.jobs.test_generate_flows import png_data_uri
from tests.support import Tenant, counts


def client_of(gateway: Gateway, tenant: Tenant, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.server.url + "/v1", api_key=tenant.key, max_retries=0, **options)


async def balance(gateway: Gateway, tenant: Tenant) -> int:
    """Read from the database: an API call would count against the tenant's rate limits."""
    db = Database(gateway.db_url)
    try:
        async with db.reader() as session:
            return (await get_org(session, tenant.org_id)).credits_remaining
    finally:
        await db.dispose()


async def jobs_of(gateway: Gateway, tenant: Tenant) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await gateway.client.get("/api/v1/jobs", headers=tenant.headers)).json()["jobs"]
    return listed


async def served(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_generate_two_images_as_links_to_our_stored_copies(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)

    def call() -> ImagesResponse:
        # The synchronous client, exactly as a customer's script would use it (in a thread: the server shares
        # this test's event loop).
        with openai.OpenAI(base_url=gateway.server.url + "/v1", api_key=tenant.key, max_retries=0) as client:
            return client.images.generate(
                model="grok-imagine-image", prompt="A lighthouse", n=2, extra_body={"aspect_ratio": "16:9"}
            )

    result = await asyncio.to_thread(call)
    assert result.data is not None
    assert len(result.data) == 2
    for item in result.data:
        assert item.url is not None
        assert item.url.startswith(f"{gateway.server.url}/media/")
        assert item.b64_json is None
        image = await served(item.url)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (1024, 576)
    assert result.to_dict()["usage"] == {"cost_in_usd_ticks": 16 * 10**8, "credits": 16}

    [call_made] = await sandbox.requests("/v1/images/generations")
    assert call_made["body"]["model"] == "grok-imagine-image"
    assert call_made["body"]["n"] == 2
    assert call_made["body"]["aspect_ratio"] == "16:9"
    assert await balance(gateway, tenant) == 100 - 16
    [job] = await jobs_of(gateway, tenant)
    assert job["status"] == "completed"
    assert job["creditsCharged"] == 16
    assert sorted(job["output"]["resultUrls"]) == sorted(item.url for item in result.data)


async def test_b64_json_answers_the_bytes_media_serves(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    async with client_of(gateway, tenant) as client:
        result = await client.images.generate(
            model="grok-imagine-image",
            prompt="A red fox",
            n=2,
            response_format="b64_json",
            extra_body={"aspect_ratio": "16:9"},
        )
    assert result.data is not None
    assert [item.url for item in result.data] == [None, None]
    decoded = [base64.b64decode(item.b64_json or "") for item in result.data]
    [job] = await jobs_of(gateway, tenant)
    stored = [(await served(url)).content for url in job["output"]["resultUrls"]]
    assert decoded == stored
    assert all(Image.open(io.BytesIO(data)).size == (1024, 576) for data in decoded)
    # xAI was asked for links (grokgate copies them); the bytes come from our own store.
    [call_made] = await sandbox.requests("/v1/images/generations")
    assert call_made["body"]["response_format"] == "url"


async def test_edits_take_xai_json_bodies(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    source = png_data_uri()
    async with client_of(gateway, tenant) as client:
        single = await client.post(
            "/images/edits",
            body={"prompt": "Add a hat", "model": "grok-imagine-image", "image": {"url": source}},
            cast_to=ImagesResponse,
        )
        multi = await client.post(
            "/images/edits",
            body={"prompt": "<IMAGE_0> beside <IMAGE_1>", "images": [{"url": source}, {"url": source}], "n": 1},
            cast_to=ImagesResponse,
        )
    assert single.data is not None
    assert multi.data is not None
    assert single.data[0].url is not None
    assert (await served(single.data[0].url)).status_code == 200
    first, second = await sandbox.requests("/v1/images/edits")
    assert first["body"]["image"] == {"url": source}
    assert first["body"]["prompt"] == "Add a hat"
    assert second["body"]["images"] == [{"url": source}, {"url": source}]
    # Each edit is priced by the catalogue like the native edit: 8 per output image.
    assert await balance(gateway, tenant) == 100 - 16


async def test_not_enough_credits_is_402_in_xais_shape_and_changes_nothing(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=10)
    before = await counts(gateway.db_url)
    async with client_of(gateway, tenant) as client:
        with pytest.raises(openai.APIStatusError) as raised:
            await client.images.generate(model="grok-imagine-image", prompt="Two cats", n=2)
    assert raised.value.status_code == 402
    assert raised.value.response.json() == {
        "code": "INSUFFICIENT_CREDITS",
        "error": "Insufficient credits: 16 required, 10 remaining",
        "details": {"creditsRequired": 16, "creditsRemaining": 10},
    }
    assert await balance(gateway, tenant) == 10
    assert await counts(gateway.db_url) == before
    assert await sandbox.requests("/v1/images") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": 11}, "n"),
        ({"n": "2"}, "n"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),  # xAI has it; the catalogue does not sell it
        ({"resolution": "1.5k"}, "resolution"),
        ({"size": "1024x1024"}, "size"),
        ({"deferred": True}, "deferred"),
        ({"quality": "low"}, "quality"),  # only grok-imagine-image-2.0 takes it
        ({"model": "grok-imagine-image-2.0", "quality": "high"}, "quality"),
    ],
)
async def test_bad_input_is_400_naming_the_field_with_no_job_and_no_charge(
    gateway: Gateway, sandbox: Sandbox, body: dict[str, Any], field: str
) -> None:
    tenant = await gateway.tenant(credits=100)
    before = await counts(gateway.db_url)
    answer = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "A cat", **body}, headers=tenant.headers
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert set(error) == {"code", "error", "details"}
    assert error["code"] == "INVALID_INPUT"
    assert error["details"]["field"] == field
    assert error["error"].startswith(f"{field}:")
    assert "text-to-image" not in error["error"]  # spoken of by xAI's model names
    assert await counts(gateway.db_url) == before
    assert await balance(gateway, tenant) == 100
    assert await sandbox.requests("/v1/images") == []


async def test_edit_errors_name_xais_fields(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    cases = [
        ({"image": {"url": "ftp://example.com/a.png"}}, "INVALID_URL", "image.url"),
        ({"images": [{"url": png_data_uri()}, {"url": "nope"}]}, "INVALID_URL", "images.1.url"),
        ({"image": {"file_id": "file_123"}}, "INVALID_INPUT", "image.file_id"),
        ({}, "INVALID_INPUT", "image"),
        ({"image": {"url": "data:image/png;base64,aGVsbG8="}}, "INVALID_URL", "image.url"),  # not an image
    ]
    for extra, code, field in cases:
        answer = await gateway.client.post("/v1/images/edits", json={"prompt": "Edit", **extra}, headers=tenant.headers)
        assert answer.status_code == 400, (extra, answer.text)
        assert (answer.json()["code"], answer.json()["details"]["field"]) == (code, field), answer.text
    assert await jobs_of(gateway, tenant) == []
    assert await balance(gateway, tenant) == 100
    assert await sandbox.requests("/v1/images") == []


async def test_a_multipart_body_is_415(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    async with client_of(gateway, tenant) as client:
        with pytest.raises(openai.APIStatusError) as raised:
            await client.images.edit(image=("a.png", base64.b64decode(png_data_uri().split(",")[1])), prompt="Hat")
    assert raised.value.status_code == 415
    assert raised.value.response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_unknown_key_and_unknown_model(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    stranger = Tenant(org_id="", key="gg_" + "x" * 40, key_id="")
    async with client_of(gateway, stranger) as client:
        with pytest.raises(openai.AuthenticationError) as unauthenticated:
            await client.images.generate(prompt="A cat")
    assert unauthenticated.value.status_code == 401
    assert set(unauthenticated.value.response.json()) == {"code", "error", "details"}
    async with client_of(gateway, tenant) as client:
        with pytest.raises(openai.NotFoundError) as unknown:
            await client.images.generate(model="dall-e-3", prompt="A cat")
        with pytest.raises(openai.NotFoundError):
            await client.images.generate(model="grok-imagine-video", prompt="A cat")  # a video model
    assert unknown.value.response.json()["code"] == "MODEL_NOT_FOUND"
    assert unknown.value.response.json()["details"]["field"] == "model"
    assert await jobs_of(gateway, tenant) == []


async def test_rate_limit_is_429_with_retry_after_and_the_native_details(
    gateway_factory: Callable[..., Any], sandbox: Sandbox
) -> None:
    tight = {"default": {"rpm": 1, "rph": 100, "rpd": 100, "concurrent": 10}}
    async with gateway_factory(plans=tight) as gateway:
        tenant = await gateway.tenant(credits=100)
        async with client_of(gateway, tenant) as client:
            await client.images.generate(prompt="First")
            with pytest.raises(openai.RateLimitError) as limited:
                await client.images.generate(prompt="Second")
        response = limited.value.response
        body = response.json()
        assert body["code"] == "RATE_LIMIT_EXCEEDED"
        assert body["details"]["limits"] == {"type": "minute", "limit": 1, "used": 1}
        assert int(response.headers["retry-after"]) == body["details"]["retryAfter"] >= 1
        assert await balance(gateway, tenant) == 100 - 8  # the refused one cost nothing
        assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_same_idempotency_key_twice_is_one_job_and_one_charge(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    async with client_of(gateway, tenant) as client:
        answers = [
            await client.images.with_raw_response.generate(
                prompt="Once only", n=2, extra_headers={"Idempotency-Key": "compat-key-1"}
            )
            for _ in range(2)
        ]
        with pytest.raises(openai.APIStatusError) as reused:
            await client.images.generate(prompt="Another", extra_headers={"Idempotency-Key": "compat-key-1"})
    first, second = (answer.parse() for answer in answers)
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert first.data is not None
    assert second.data is not None
    assert [item.url for item in first.data] == [item.url for item in second.data]
    assert reused.value.status_code == 422
    assert reused.value.response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await jobs_of(gateway, tenant)) == 1
    assert await balance(gateway, tenant) == 100 - 16
    assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_idempotent_replay_in_b64_json_reads_the_store_again(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    async with client_of(gateway, tenant) as client:
        first, second = [
            await client.images.generate(
                prompt="Same bytes", response_format="b64_json", extra_headers={"Idempotency-Key": "compat-key-2"}
            )
            for _ in range(2)
        ]
    assert first.data is not None
    assert second.data is not None
    assert first.data[0].b64_json
    assert first.data[0].b64_json == second.data[0].b64_json
    assert await balance(gateway, tenant) == 100 - 8


async def test_upstream_refusal_is_refunded_and_replayed_under_its_key(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant(credits=100)
    async with client_of(gateway, tenant) as client:
        for _ in range(2):
            with pytest.raises(openai.BadRequestError) as refused:
                await client.images.generate(
                    prompt="[sandbox:reject] no", extra_headers={"Idempotency-Key": "compat-key-3"}
                )
            body = refused.value.response.json()
            assert body["code"] == "UPSTREAM_REJECTED"
            assert body["details"]["jobId"]
    [job] = await jobs_of(gateway, tenant)
    assert job["status"] == "failed"
    assert job["creditsRefunded"] == 8
    assert await balance(gateway, tenant) == 100
    assert len(await sandbox.requests("/v1/images/generations")) == 1


async def test_image_models_are_listed_from_the_catalogue(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    listed = (await gateway.client.get("/v1/image-generation-models", headers=tenant.headers)).json()["models"]
    by_id = {model["id"]: model for model in listed}
    assert list(by_id) == ["grok-imagine-image", "grok-imagine-image-quality", "grok-imagine-image-2.0"]
    plain = by_id["grok-imagine-image"]
    assert plain["object"] == "model"
    assert plain["image_price"] == 8  # 8 credits at $0.01, in cents
    assert {(t["resolution"], t["credits_per_image"]) for t in plain["pricing"]} == {("1k", 8), ("2k", 12)}
    two = {(t["quality"], t["resolution"]): t["credits_per_image"] for t in by_id["grok-imagine-image-2.0"]["pricing"]}
    assert two == {("low", "1k"): 10, ("low", "2k"): 15, ("medium", "1k"): 20, ("medium", "2k"): 30}
    one = await gateway.client.get("/v1/image-generation-models/grok-imagine-image", headers=tenant.headers)
    assert one.json() == plain
    missing = await gateway.client.get("/v1/image-generation-models/dall-e-3", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "MODEL_NOT_FOUND"
    assert (await gateway.client.get("/v1/image-generation-models")).status_code == 401


async def test_the_routes_are_documented_under_their_own_tag(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    tagged = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "xai-compatible" in operation.get("tags", [])
    }
    assert {
        "POST /v1/images/generations",
        "POST /v1/images/edits",
        "POST /v1/videos/generations",
        "POST /v1/videos/edits",
        "POST /v1/videos/extensions",
        "GET /v1/videos/{request_id}",
        "GET /v1/image-generation-models",
        "GET /v1/video-generation-models",
    } <= tagged
    generate = document["paths"]["/v1/images/generations"]["post"]
    schema = generate["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/GenerateImageRequest"}
    assert "response_format" in document["components"]["schemas"]["GenerateImageRequest"]["properties"]
    assert {"402", "415", "429"} <= set(generate["responses"])
