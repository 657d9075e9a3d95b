"""The sandbox's image endpoints speak xAI's whole image catalogue over real HTTP: every model and alias, `n`
distinct images, the three resolutions as real PNG sizes, `b64_json`, `quality` on the model that takes it, edits
of up to three sources, and the cost of each in `usage`."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.upstream.sandbox_support import image_sizes, png_data_uri, sandbox_client

CENT = 100_000_000


async def cost_of(client: httpx.AsyncClient, body: dict[str, object], path: str = "/v1/images/generations") -> int:
    answer = await client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    ticks: int = answer.json()["usage"]["cost_in_usd_ticks"]
    return ticks


async def test_every_model_and_alias_is_served_at_its_price() -> None:
    async with sandbox_client() as client:
        prompt = {"prompt": "a fox"}
        assert await cost_of(client, prompt) == 2 * CENT  # no model: grok-imagine-image, as the gateway sends today
        assert await cost_of(client, {**prompt, "model": "grok-imagine-image"}) == 2 * CENT
        assert await cost_of(client, {**prompt, "model": "grok-imagine-image", "n": 3}) == 6 * CENT
        assert await cost_of(client, {**prompt, "model": "grok-imagine-image-quality"}) == 7 * CENT
        assert await cost_of(client, {**prompt, "model": "grok-imagine-image-pro"}) == 7 * CENT
        image2 = {**prompt, "model": "grok-imagine-image-2.0"}
        assert await cost_of(client, image2) == 4 * CENT  # medium at 1k by default
        assert await cost_of(client, {**image2, "quality": "low"}) == 1 * CENT
        assert await cost_of(client, {**image2, "quality": "low", "resolution": "1.5k"}) == 3 * CENT // 2
        assert await cost_of(client, {**image2, "quality": "medium", "resolution": "2k", "n": 2}) == 16 * CENT


async def test_an_unknown_model_is_404_as_on_xai() -> None:
    async with sandbox_client() as client:
        for path in ("/v1/images/generations", "/v1/images/edits"):
            body = {"prompt": "a fox", "model": "grok-imagine-image-9", "image": {"url": png_data_uri((8, 8))}}
            answer = await client.post(path, json=body)
            assert answer.status_code == 404, answer.text
            assert set(answer.json()) == {"code", "error"}
            assert "grok-imagine-image-9" in answer.json()["error"]
        assert (
            await client.post("/v1/images/generations", json={"prompt": "x", "model": "grok-imagine-video"})
        ).status_code == 404


async def test_quality_only_on_image_2_0() -> None:
    async with sandbox_client() as client:
        for model in ("grok-imagine-image", "grok-imagine-image-pro"):
            answer = await client.post("/v1/images/generations", json={"prompt": "x", "model": model, "quality": "low"})
            assert answer.status_code == 400, answer.text
            assert answer.json()["code"] == "invalid_argument"
            assert "quality" in answer.json()["error"]
        answer = await client.post(
            "/v1/images/generations", json={"prompt": "x", "model": "grok-imagine-image-2.0", "quality": "high"}
        )
        assert answer.status_code == 422  # not one of the enum's values
        assert "quality" in answer.json()["error"]


@pytest.mark.parametrize(
    ("resolution", "aspect_ratio", "size"),
    [
        (None, None, (1024, 1024)),
        ("1k", "16:9", (1024, 576)),
        ("1.5k", "auto", (1536, 1536)),
        ("1.5k", "9:16", (864, 1536)),
        ("2k", "3:2", (2048, 1365)),
        ("2k", "1:1", (2048, 2048)),
    ],
)
async def test_resolution_renders_pngs_of_the_matching_size(
    resolution: str | None, aspect_ratio: str | None, size: tuple[int, int]
) -> None:
    async with sandbox_client() as client:
        body = {"prompt": "a fox", "resolution": resolution, "aspect_ratio": aspect_ratio}
        answer = await client.post("/v1/images/generations", json={k: v for k, v in body.items() if v is not None})
        assert answer.status_code == 200, answer.text
        assert await image_sizes(client, answer) == [size]


async def test_n_images_are_distinct_in_either_response_format() -> None:
    async with sandbox_client() as client:
        for response_format in ("url", "b64_json"):
            answer = await client.post(
                "/v1/images/generations",
                json={"prompt": "a fox", "n": 4, "response_format": response_format, "resolution": "1.5k"},
            )
            assert answer.status_code == 200, answer.text
            items = answer.json()["data"]
            assert len(items) == 4
            assert all(item["mime_type"] == "image/png" for item in items)
            assert all(("url" in item) == (response_format == "url") for item in items)
            assert await image_sizes(client, answer) == [(1536, 1536)] * 4
            datas = [
                base64.b64decode(item["b64_json"]) if "b64_json" in item else (await client.get(item["url"])).content
                for item in items
            ]
            assert len({hashlib.sha256(data).hexdigest() for data in datas}) == 4
        for n in (0, 11):
            assert (await client.post("/v1/images/generations", json={"prompt": "x", "n": n})).status_code == 422


async def test_edits_take_up_to_three_sources_and_bill_each() -> None:
    async with sandbox_client() as client:
        source = {"url": png_data_uri((300, 200))}
        single = await client.post("/v1/images/edits", json={"prompt": "add a hat", "image": source})
        assert single.status_code == 200, single.text
        assert single.json()["usage"]["cost_in_usd_ticks"] == 2 * CENT + CENT // 5  # $0.02 + $0.002 for the input
        assert await image_sizes(client, single) == [(1024, 683)]  # a single-image edit keeps the input's shape

        multi = {"prompt": "<IMAGE_0> meets <IMAGE_1>", "images": [source] * 3, "aspect_ratio": "16:9", "n": 2}
        answer = await client.post("/v1/images/edits", json={**multi, "model": "grok-imagine-image-pro"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["cost_in_usd_ticks"] == 2 * 7 * CENT + 3 * CENT // 5
        assert await image_sizes(client, answer) == [(1024, 576)] * 2

        four = await client.post("/v1/images/edits", json={**multi, "images": [source] * 4})
        assert four.status_code == 400
        assert four.json()["code"] == "invalid_argument"
        assert "images" in four.json()["error"]
        both = await client.post("/v1/images/edits", json={"prompt": "x", "image": source, "images": [source]})
        assert both.status_code == 400
        assert (await client.post("/v1/images/edits", json={"prompt": "x"})).status_code == 422
        bad = await client.post(
            "/v1/images/edits", json={"prompt": "x", "images": [source, {"url": "data:image/png;base64,AAAA"}]}
        )
        assert bad.status_code == 400
        assert "decoded" in bad.json()["error"]


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_benchmark_mode_hands_out_distinct_valid_images(response_format: str) -> None:
    """The benchmark's images are one pre-rendered picture marked apart: each a valid PNG of other bytes (so
    every image is a new stored object for the gateway), unless `same_image` asks for the one cached PNG."""
    from grokgate.upstream.sandbox.app import BenchMode

    body = {"prompt": "bench", "n": 2, "response_format": response_format}
    async with sandbox_client(bench=BenchMode()) as client:
        answers = [await client.post("/v1/images/generations", json=body) for _ in range(2)]
        sizes = [await image_sizes(client, answer) for answer in answers]
        assert all(len(size) == 2 for size in sizes), sizes  # Pillow opened all four
        payloads = []
        for answer in answers:
            for item in answer.json()["data"]:
                if "b64_json" in item:
                    payloads.append(base64.b64decode(item["b64_json"]))
                else:
                    payloads.append((await client.get(item["url"])).content)
        assert len({hashlib.sha256(data).hexdigest() for data in payloads}) == 4
    async with sandbox_client(bench=BenchMode(same_image=True)) as client:
        urls = [(await client.post("/v1/images/generations", json=body)).json()["data"][0]["url"] for _ in range(2)]
        contents = {(await client.get(url)).content for url in urls}
        assert len(contents) == 1
