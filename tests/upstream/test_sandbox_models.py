"""`GET /v1/image-generation-models` and `GET /v1/video-generation-models` list the sandbox's models in the shape of
xAI's openapi document, with the prices the sandbox really charges: a client can price a request from the
listing alone, and the cost in `usage` agrees with it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.upstream.sandbox_support import KEYS, auth, make_video, png_data_uri, sandbox_client

# The `required` lists of ImageGenerationModel / VideoGenerationModel in xai-media-openapi.json.
IMAGE_MODEL_FIELDS = {
    "id", "fingerprint", "max_prompt_length", "created", "object", "owned_by", "version", "input_modalities",
    "output_modalities", "image_price", "aliases",
}  # fmt: skip
VIDEO_MODEL_FIELDS = {
    "id", "fingerprint", "created", "object", "owned_by", "version", "input_modalities", "output_modalities",
    "aliases",
}  # fmt: skip
CENT = 100_000_000


async def listed(client: httpx.AsyncClient, path: str) -> dict[str, dict[str, Any]]:
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"models"}
    return {model["id"]: model for model in answer.json()["models"]}


async def test_image_models_are_listed_with_the_prices_charged() -> None:
    async with sandbox_client() as client:
        models = await listed(client, "/v1/image-generation-models")
        assert set(models) == {"grok-imagine-image", "grok-imagine-image-quality", "grok-imagine-image-2.0"}
        for model in models.values():
            assert set(model) >= IMAGE_MODEL_FIELDS
            assert model["object"] == "model"
            assert model["owned_by"] == "xai"
            assert isinstance(model["created"], int)
            assert "image" in model["output_modalities"]
        assert models["grok-imagine-image-quality"]["aliases"] == ["grok-imagine-image-pro"]
        assert {name: model["image_price"] for name, model in models.items()} == {
            "grok-imagine-image": 2,
            "grok-imagine-image-quality": 7,
            "grok-imagine-image-2.0": 4,
        }  # cents, per the openapi document
        for name in ("grok-imagine-image", "grok-imagine-image-pro"):  # a flat price by any name
            made = await client.post("/v1/images/generations", json={"prompt": "x", "model": name, "resolution": "2k"})
            expected = models["grok-imagine-image-quality" if name.endswith("pro") else name]["image_price"] * CENT
            assert made.json()["usage"]["cost_in_usd_ticks"] == expected
        tiers = models["grok-imagine-image-2.0"]["pricing"]
        assert {(tier["quality"], tier["resolution"]) for tier in tiers} == {
            (quality, resolution) for quality in ("low", "medium") for resolution in ("1k", "1.5k", "2k")
        }
        for tier in tiers:
            body = {"prompt": "x", "model": "grok-imagine-image-2.0", **{k: tier[k] for k in ("quality", "resolution")}}
            made = await client.post("/v1/images/generations", json=body)
            assert made.json()["usage"]["cost_in_usd_ticks"] == tier["price_per_image"], tier
        assert "pricing" not in models["grok-imagine-image"]  # omitted where quality does not change the price
        edit = await client.post("/v1/images/edits", json={"prompt": "x", "image": {"url": png_data_uri((8, 8))}})
        input_price = models["grok-imagine-image"]["input_image_price"]
        assert edit.json()["usage"]["cost_in_usd_ticks"] == 2 * CENT + input_price == 2 * CENT + CENT // 5

        one = await client.get("/v1/image-generation-models/grok-imagine-image-pro")
        assert one.status_code == 200
        assert one.json() == models["grok-imagine-image-quality"]
        assert (await client.get("/v1/image-generation-models/nope")).status_code == 404


async def test_video_models_are_listed_with_the_prices_charged() -> None:
    async with sandbox_client() as client:
        models = await listed(client, "/v1/video-generation-models")
        assert set(models) == {"grok-imagine-video", "grok-imagine-video-1.5"}
        for model in models.values():
            assert set(model) >= VIDEO_MODEL_FIELDS
            assert model["output_modalities"] == ["video"]
        assert models["grok-imagine-video-1.5"]["aliases"] == ["grok-imagine-video-1.5-preview"]
        per_second = {
            name: {tier["resolution"]: tier["price_per_second"] for tier in model["pricing"]}
            for name, model in models.items()
        }
        assert per_second == {
            "grok-imagine-video": {"480p": 5 * CENT, "720p": 7 * CENT},
            "grok-imagine-video-1.5": {"480p": 8 * CENT, "720p": 14 * CENT, "1080p": 25 * CENT},
        }
        assert models["grok-imagine-video"]["resolutions"] == ["480p", "720p"]
        assert models["grok-imagine-video-1.5"]["input_image_price"] == CENT
        assert models["grok-imagine-video"]["input_image_price"] == 0
        assert {model["input_video_price_per_second"] for model in models.values()} == {CENT}
        body = {"prompt": "x", "model": "grok-imagine-video-1.5", "resolution": "720p", "duration": 2}
        done = await make_video(client, "/v1/videos/generations", body)
        assert done["usage"]["cost_in_usd_ticks"] == 2 * per_second["grok-imagine-video-1.5"]["720p"]
        assert (await client.get("/v1/video-generation-models/grok-imagine-video-1.5-preview")).json()["id"] == (
            "grok-imagine-video-1.5"
        )
        assert (await client.get("/v1/video-generation-models/nope")).status_code == 404


async def test_listings_need_a_key() -> None:
    async with sandbox_client() as client:
        for path in ("/v1/image-generation-models", "/v1/video-generation-models"):
            assert (await client.get(path, headers={"Authorization": ""})).status_code == 401
            assert (await client.get(path, headers=auth("not-a-key"))).status_code == 401
            assert (await client.get(path, headers=auth(KEYS[1]))).status_code == 200
