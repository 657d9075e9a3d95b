"""xAI's per-team rate limits and request-id ownership in the sandbox, over real HTTP: with `image_rps` /
`video_rps` a key gets at most that many submits in any second and then 429 with xAI's error body and a
`Retry-After`; every key of a pool has its own pace; a request id answers only to the key that made it; the
journal names the key (by a short hash) and the model of every call. Off by default."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx

from grokgate.upstream.sandbox.state import key_id
from tests.e2e.process import GROKGATE, clean_env
from tests.support import free_port, wait_for
from tests.upstream.sandbox_support import KEYS, auth, sandbox_client


async def test_a_burst_over_the_image_rate_is_refused_with_429() -> None:
    async with sandbox_client(image_rps=5) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/images/generations", json={"prompt": f"burst {i}"}) for i in range(12))
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * 5 + [429] * 7
        for answer in answers:
            if answer.status_code == 429:
                assert set(answer.json()) == {"code", "error"}
                assert answer.json()["code"] == "rate_limited"
                assert int(answer.headers["retry-after"]) >= 1
        other = await client.post("/v1/images/generations", json={"prompt": "b"}, headers=auth(KEYS[1]))
        assert other.status_code == 200  # another key of the pool has its own budget
        assert (await client.get("/v1/image-generation-models")).status_code == 200  # listings are not paced
        await asyncio.sleep(int(answers[-1].headers.get("retry-after", "1")) + 0.05)
        assert (await client.post("/v1/images/generations", json={"prompt": "later"})).status_code == 200


async def test_no_second_holds_more_than_the_rate() -> None:
    """Requests sent steadily for 2.5 s: any six accepted ones must span a second or more, measured from the first
    one's send to the sixth's answer (so a slow machine cannot make this test fail)."""
    async with sandbox_client(image_rps=5) as client:
        accepted: list[tuple[float, float]] = []
        refused = 0
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            sent = time.monotonic()
            answer = await client.post("/v1/images/generations", json={"prompt": "steady"})
            if answer.status_code == 200:
                accepted.append((sent, time.monotonic()))
            else:
                assert answer.status_code == 429, answer.text
                refused += 1
            await asyncio.sleep(0.04)
        assert refused > 0
        assert len(accepted) > 5  # more than one second's budget: it comes back
        for first, sixth in zip(accepted, accepted[5:], strict=False):
            assert sixth[1] - first[0] >= 1.0, "six image requests were accepted within one second"


async def test_video_submits_are_paced_per_key_and_polls_are_not() -> None:
    async with sandbox_client(video_rps=1) as client:
        first = await client.post("/v1/videos/generations", json={"prompt": "v", "duration": 1})
        assert first.status_code == 200, first.text
        for path, body in [
            ("/v1/videos/generations", {"prompt": "v", "duration": 1}),
            ("/v1/videos/extensions", {"prompt": "v", "video": {"url": "http://127.0.0.1:9/x.mp4"}}),
        ]:
            again = await client.post(path, json=body)
            assert again.status_code == 429, again.text
            assert again.headers["retry-after"] == "1"
        request_id = first.json()["request_id"]
        for _ in range(5):
            assert (await client.get(f"/v1/videos/{request_id}")).status_code == 200
        other = await client.post("/v1/videos/generations", json={"prompt": "v", "duration": 1}, headers=auth(KEYS[1]))
        assert other.status_code == 200, other.text


async def test_rates_are_off_by_default() -> None:
    async with sandbox_client() as client:
        answers = await asyncio.gather(
            *(client.post("/v1/images/generations", json={"prompt": f"b{i}"}) for i in range(12)),
            *(client.post("/v1/videos/generations", json={"prompt": f"v{i}", "duration": 1}) for i in range(4)),
        )
        assert [answer.status_code for answer in answers] == [200] * 16


async def test_a_request_id_answers_only_to_the_key_that_made_it() -> None:
    async with sandbox_client() as client:
        made = await client.post("/v1/videos/generations", json={"prompt": "mine", "duration": 1})
        request_id = made.json()["request_id"]
        stranger = await client.get(f"/v1/videos/{request_id}", headers=auth(KEYS[1]))
        assert stranger.status_code == 404
        assert set(stranger.json()) == {"code", "error"}
        owner = await client.get(f"/v1/videos/{request_id}")
        assert owner.status_code == 200
        assert owner.json()["status"] == "done"
        assert (await client.get(f"/v1/videos/{request_id}", headers=auth("unknown-key"))).status_code == 401
    async with sandbox_client(api_keys=None) as client:  # a sandbox taking any key still keeps ids apart
        made = await client.post("/v1/videos/generations", json={"prompt": "mine", "duration": 1})
        request_id = made.json()["request_id"]
        assert (await client.get(f"/v1/videos/{request_id}", headers=auth("anyone-else"))).status_code == 404
        assert (await client.get(f"/v1/videos/{request_id}")).status_code == 200


async def test_the_journal_names_key_and_model_but_never_the_key() -> None:
    async with sandbox_client() as client:
        await client.post("/v1/images/generations", json={"prompt": "a", "model": "grok-imagine-image-pro"})
        await client.post("/v1/videos/generations", json={"prompt": "b", "duration": 1}, headers=auth(KEYS[1]))
        await client.post("/v1/images/generations", json={"prompt": "c", "model": "nope"})
        journal = (await client.get("/_sandbox/requests")).json()["requests"]
        assert [(entry["path"], entry["key"], entry["model"]) for entry in journal] == [
            ("/v1/images/generations", key_id(KEYS[0]), "grok-imagine-image-pro"),
            ("/v1/videos/generations", key_id(KEYS[1]), None),
            ("/v1/images/generations", key_id(KEYS[0]), "nope"),
        ]
        assert key_id(KEYS[0]) != key_id(KEYS[1])
        text = (await client.get("/_sandbox/requests")).text
        assert all(key not in text for key in KEYS)


async def test_the_cli_sandbox_takes_the_rates(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "sandbox.log").open("wb")
    args = [GROKGATE, "sandbox", "--port", str(port), "--api-key", KEYS[0], "--image-rps", "1", "--video-rps", "1"]
    proc = subprocess.Popen(args, env=clean_env(), stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth(), timeout=30) as client:

            async def listening() -> bool:
                assert proc.poll() is None, (tmp_path / "sandbox.log").read_text()
                try:
                    return (await client.get("/v1/image-generation-models")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(listening, what="the sandbox to listen")
            for path, body in [
                ("/v1/images/generations", {"prompt": "a"}),
                ("/v1/videos/generations", {"prompt": "v", "duration": 1}),
            ]:
                assert (await client.post(path, json=body)).status_code == 200
                assert (await client.post(path, json=body)).status_code == 429
    finally:
        proc.terminate()
        proc.wait(timeout=10)
