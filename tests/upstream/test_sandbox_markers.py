"""The sandbox's answers for the markers that shape what a 200 or a billed 400 holds, over real HTTP, so that the
gateway's tests can lean on them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import SANDBOX_KEY, Sandbox

AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}


async def _post(sandbox: Sandbox, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as client:
        return await client.post(path, json=body)


async def _poll_done(sandbox: Sandbox, request_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as client:
        for _ in range(100):
            answer = await client.get(f"/v1/videos/{request_id}")
            if answer.status_code != 202:
                return answer
            await asyncio.sleep(0.05)
    raise AssertionError("the video never finished")


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/videos/generations"])
async def test_notjson_submit_answers_html(sandbox: Sandbox, path: str) -> None:
    answer = await _post(sandbox, path, {"prompt": "a cat [sandbox:notjson]"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.content.lstrip().startswith(b"<html>")


async def test_image_answers_without_a_usable_image(sandbox: Sandbox) -> None:
    empty = await _post(sandbox, "/v1/images/generations", {"prompt": "x [sandbox:emptydata]"})
    assert empty.status_code == 200
    assert empty.json()["data"] == []
    nourl = (await _post(sandbox, "/v1/images/generations", {"prompt": "x [sandbox:nourl]", "n": 2})).json()
    assert len(nourl["data"]) == 2
    assert all("url" not in item and "b64_json" not in item for item in nourl["data"])
    withheld = (await _post(sandbox, "/v1/images/generations", {"prompt": "x [sandbox:withheld]"})).json()
    assert withheld["data"][0]["respect_moderation"] is False
    assert "url" not in withheld["data"][0]


@pytest.mark.parametrize(("marker", "shape"), [("moderatedcost", "flat"), ("moderatedcost=2", "nested")])
async def test_moderated_refusal_carries_its_cost(sandbox: Sandbox, marker: str, shape: str) -> None:
    answer = await _post(sandbox, "/v1/images/generations", {"prompt": f"x [sandbox:{marker}]"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["usage"]["cost_in_usd_ticks"] == 200_000_000
    if shape == "flat":
        assert body["code"] == "invalid_argument"
        assert isinstance(body["error"], str)
    else:
        assert body["error"]["code"] == "invalid_argument"
        assert body["error"]["message"]


async def test_finished_video_without_status(sandbox: Sandbox) -> None:
    submitted = await _post(sandbox, "/v1/videos/generations", {"prompt": "x [sandbox:nostatus]", "duration": 1})
    answer = await _poll_done(sandbox, submitted.json()["request_id"])
    assert answer.status_code == 200
    body = answer.json()
    assert "status" not in body
    assert body["model"] == "grok-imagine-video"
    assert body["video"]["url"]


async def test_polljunk_polls_answer_html(sandbox: Sandbox) -> None:
    submitted = await _post(sandbox, "/v1/videos/generations", {"prompt": "x [sandbox:polljunk]", "duration": 1})
    async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as client:
        answer = await client.get(f"/v1/videos/{submitted.json()['request_id']}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
