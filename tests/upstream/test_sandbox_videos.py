"""The sandbox's video endpoints speak xAI's whole video catalogue over real HTTP: both models and the alias,
480p/720p/1080p as real H.264 frame sizes (1080p only where the model serves it), edits that take their
duration and resolution from the input video, extensions that add to it, and the cost of each in `usage`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from grokgate.upstream.sandbox.render import render_mp4
from tests.support import LiveServer
from tests.upstream.sandbox_support import Mp4, make_video, png_data_uri, sandbox_client

CENT = 100_000_000


@pytest.mark.parametrize(
    ("body", "mp4", "cost"),
    [
        ({"duration": 2}, Mp4(848, 480, 2, "h264"), 2 * 5 * CENT),  # today's request: default model, 480p
        ({"duration": 1, "resolution": "720p"}, Mp4(1280, 720, 1, "h264"), 7 * CENT),
        ({"duration": 1, "resolution": "720p", "aspect_ratio": "9:16"}, Mp4(720, 1280, 1, "h264"), 7 * CENT),
        ({"duration": 1, "model": "grok-imagine-video-1.5"}, Mp4(848, 480, 1, "h264"), 8 * CENT),
        (
            {"duration": 2, "model": "grok-imagine-video-1.5-preview", "resolution": "1080p"},
            Mp4(1920, 1080, 2, "h264"),
            2 * 25 * CENT,
        ),
        (
            {"duration": 1, "model": "grok-imagine-video-1.5", "resolution": "1080p", "aspect_ratio": "1:1"},
            Mp4(1080, 1080, 1, "h264"),
            25 * CENT,
        ),
        (  # image-to-video: 1.5 bills the input image, grok-imagine-video does not
            {"duration": 1, "model": "grok-imagine-video-1.5", "resolution": "720p", "image": "png"},
            Mp4(1280, 720, 1, "h264"),
            14 * CENT + CENT,
        ),
        ({"duration": 1, "image": "png"}, Mp4(848, 480, 1, "h264"), 5 * CENT),
    ],
)
async def test_generations_render_the_resolution_and_bill_per_second(body: dict[str, Any], mp4: Mp4, cost: int) -> None:
    if body.get("image") == "png":
        body = {**body, "image": {"url": png_data_uri((64, 64))}}
    async with sandbox_client() as client:
        done = await make_video(client, "/v1/videos/generations", {"prompt": "waves", **body})
    assert done["mp4"].codec == mp4.codec
    assert (done["mp4"].width, done["mp4"].height) == (mp4.width, mp4.height)
    assert done["mp4"].seconds == pytest.approx(mp4.seconds, abs=0.2)
    assert done["video"]["duration"] == mp4.seconds
    assert done["usage"]["cost_in_usd_ticks"] == cost
    assert done["model"] == body.get("model", "grok-imagine-video").removesuffix("-preview")


async def test_1080p_only_on_the_model_that_serves_it_and_unknown_models_are_404() -> None:
    async with sandbox_client() as client:
        refused = await client.post(
            "/v1/videos/generations", json={"prompt": "x", "model": "grok-imagine-video", "resolution": "1080p"}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "invalid_argument"
        assert "1080p" in refused.json()["error"]
        assert (
            await client.post("/v1/videos/generations", json={"prompt": "x", "resolution": "4k"})
        ).status_code == 422
        for path in ("/v1/videos/generations", "/v1/videos/edits", "/v1/videos/extensions"):
            body = {"prompt": "x", "model": "grok-imagine-video-9", "video": {"url": "data:video/mp4;base64,AAAA"}}
            answer = await client.post(path, json=body)
            assert answer.status_code == 404, (path, answer.text)
            assert set(answer.json()) == {"code", "error"}


class VideoHost:
    """An outside web server holding one MP4, as a customer's input video would be."""

    def __init__(self, data: bytes) -> None:
        async def serve(_: Request) -> Response:
            return Response(data, media_type="video/mp4")

        self.server = LiveServer(Starlette(routes=[Route("/clip.mp4", serve)]))

    @property
    def url(self) -> str:
        return f"{self.server.url}/clip.mp4"


async def test_an_edit_takes_duration_and_resolution_from_its_input() -> None:
    async with sandbox_client() as client:
        source = await make_video(
            client,
            "/v1/videos/generations",
            {"prompt": "city", "duration": 3, "resolution": "720p", "aspect_ratio": "9:16"},
        )
        # one of the sandbox's own links, as the output of an earlier generation
        done = await make_video(
            client, "/v1/videos/edits", {"prompt": "add snow", "video": {"url": source["video"]["url"]}}
        )
        assert (done["mp4"].width, done["mp4"].height) == (720, 1280)
        assert done["mp4"].seconds == pytest.approx(3, abs=0.2)
        assert done["video"]["duration"] == 3
        assert done["usage"]["cost_in_usd_ticks"] == 3 * 7 * CENT + 3 * CENT  # output 720p + $0.01/s of input

        host = VideoHost(render_mp4("outside", 2, "4:3", "1080p"))  # fetched over HTTP; 1080p input capped at 720p
        async with host.server:
            body = {"prompt": "add snow", "model": "grok-imagine-video-1.5", "video": {"url": host.url}}
            done = await make_video(client, "/v1/videos/edits", body)
        assert (done["mp4"].width, done["mp4"].height) == (960, 720)
        assert done["video"]["duration"] == 2
        assert done["usage"]["cost_in_usd_ticks"] == 2 * 14 * CENT + 2 * CENT

        unreachable = {"prompt": "add snow", "video": {"url": "http://127.0.0.1:9/gone.mp4"}}
        done = await make_video(client, "/v1/videos/edits", unreachable)  # unreadable: 6 s at 480p
        assert (done["mp4"].width, done["mp4"].height, done["video"]["duration"]) == (848, 480, 6)
        assert done["usage"]["cost_in_usd_ticks"] == 6 * 5 * CENT + 6 * CENT

        too_long = VideoHost(render_mp4("long", 10, "16:9"))
        async with too_long.server:
            refused = await client.post("/v1/videos/edits", json={"prompt": "x", "video": {"url": too_long.url}})
        assert refused.status_code == 400, refused.text
        assert "video" in refused.json()["error"]
        not_video = await client.post("/v1/videos/edits", json={"prompt": "x", "video": {"url": png_data_uri((8, 8))}})
        assert not_video.status_code == 400
        assert "decoded" in not_video.json()["error"]
        assert (await client.post("/v1/videos/edits", json={"prompt": "x"})).status_code == 422
        assert (await client.post("/v1/videos/edits", json={"video": {"url": host.url}})).status_code == 422


async def test_an_extension_adds_its_duration_to_the_input() -> None:
    async with sandbox_client() as client:
        source = await make_video(client, "/v1/videos/generations", {"prompt": "road", "duration": 2})
        url = source["video"]["url"]
        done = await make_video(
            client, "/v1/videos/extensions", {"prompt": "keep driving", "video": {"url": url}, "duration": 3}
        )
        assert (done["mp4"].width, done["mp4"].height) == (848, 480)
        assert done["mp4"].seconds == pytest.approx(5, abs=0.2)
        assert done["video"]["duration"] == 5  # 2 s of input + 3 s added
        assert done["usage"]["cost_in_usd_ticks"] == 3 * 5 * CENT + 2 * CENT  # the added seconds + the input's

        default = await make_video(
            client, "/v1/videos/extensions", {"prompt": "on", "video": {"url": url}, "model": "grok-imagine-video-1.5"}
        )
        assert default["video"]["duration"] == 2 + 6
        assert default["usage"]["cost_in_usd_ticks"] == 6 * 8 * CENT + 2 * CENT

        for duration in (1, 11):
            answer = await client.post(
                "/v1/videos/extensions", json={"prompt": "x", "video": {"url": url}, "duration": duration}
            )
            assert answer.status_code == 422, answer.text
            assert "duration" in answer.json()["error"]
        short = await make_video(client, "/v1/videos/generations", {"prompt": "blink", "duration": 1})
        refused = await client.post(
            "/v1/videos/extensions", json={"prompt": "x", "video": {"url": short["video"]["url"]}}
        )
        assert refused.status_code == 400, refused.text
        assert "2 to 15 s" in refused.json()["error"]


async def test_edits_and_extensions_follow_the_prompt_markers() -> None:
    async with sandbox_client() as client:
        body: dict[str, Any] = {"video": {"url": "http://127.0.0.1:9/x.mp4"}}
        for path in ("/v1/videos/edits", "/v1/videos/extensions"):
            rejected = await client.post(path, json={**body, "prompt": "[sandbox:reject]"})
            assert rejected.status_code == 400
            started = await client.post(path, json={**body, "prompt": "[sandbox:fail]"})
            request_id = started.json()["request_id"]
            answer: httpx.Response = await client.get(f"/v1/videos/{request_id}")
            assert answer.json()["status"] == "failed"


@pytest.mark.parametrize("same", [False, True])
async def test_benchmark_mode_hands_out_distinct_valid_videos(same: bool) -> None:
    """The benchmark's videos are one pre-rendered MP4 marked apart per request (each a new stored object for the
    gateway, which its probe still reads as the same video), unless `same_image` asks for the one cached MP4."""
    from grokgate.storage.probe import probe
    from grokgate.upstream.sandbox.app import BenchMode

    async with sandbox_client(bench=BenchMode(video_delay=(0.0, 0.0), same_image=same)) as client:
        done = [await make_video(client, "/v1/videos/generations", {"prompt": "bench"}) for _ in range(2)]
        contents = [(await client.get(video["video"]["url"])).content for video in done]
    assert len(set(contents)) == (1 if same else 2)
    measured = [probe(content, "video", poster=True) for content in contents]
    assert measured[0] == measured[1]
    assert measured[0].poster
