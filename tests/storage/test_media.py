"""Durable results: stored byte-identical, served with ranges and caching headers, signed links, refunds when a
result cannot be fetched, retention, and the S3 backend against a real S3-compatible server on loopback."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import obstore
import pytest
from PIL import Image

from grokgate.db.engine import Database
from grokgate.storage import endpoints as media_endpoints
from grokgate.storage import signing
from grokgate.storage.retention import sweep_expired
from grokgate.storage.store import MediaStore, open_store
from tests.conftest import Gateway, Sandbox
from tests.support import wait_job


async def fetch(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        return await client.get(url, headers=headers)


async def test_image_is_stored_and_served_byte_identical(gateway: Gateway, sandbox: Sandbox) -> None:
    tenant = await gateway.tenant()
    body = (await gateway.generate(tenant, {"prompt": "kept", "model": "text-to-image", "aspect_ratio": "3:4"})).json()
    assert body["imageUrl"].startswith(f"{gateway.server.url}/media/med_")
    served = await fetch(body["imageUrl"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(served.content))
    digest = hashlib.sha256(served.content).hexdigest()
    assert served.headers["etag"] == f'"{digest}"'
    assert served.headers["accept-ranges"] == "bytes"
    assert "max-age=" in served.headers["cache-control"]
    assert digest in (await sandbox.media_hashes()).values()
    assert Image.open(io.BytesIO(served.content)).size == (768, 1024)
    media = (await gateway.client.get(f"/api/v1/jobs/{body['jobId']}/media", headers=tenant.headers)).json()
    [item] = media["media"]
    assert (item["role"], item["sha256"], item["width"], item["height"]) == ("image", digest, 768, 1024)
    assert item["size"] == len(served.content)


@pytest.mark.parametrize("answered", ["whole", "streamed"])
async def test_video_is_stored_with_a_poster_and_served_in_ranges(
    gateway: Gateway, sandbox: Sandbox, answered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways a download is answered: read whole (up to `WHOLE_UP_TO` bytes) and streamed (larger)."""
    if answered == "streamed":
        monkeypatch.setattr(media_endpoints, "WHOLE_UP_TO", 0)
    tenant = await gateway.tenant()
    job_id = (await gateway.generate(tenant, {"prompt": "kept video", "duration": 2})).json()["jobId"]
    job = await wait_job(gateway.client, tenant, job_id)
    output = job["output"]
    assert set(output) == {"videoUrl", "resultUrls", "duration", "thumbnailUrl"}
    full = await fetch(output["videoUrl"])
    assert full.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(full.content).hexdigest() in (await sandbox.media_hashes()).values()
    size = len(full.content)
    for header, (start, end) in {
        "bytes=0-99": (0, 100),
        "bytes=100-": (100, size),
        "bytes=-50": (size - 50, size),
        f"bytes=10-{size + 500}": (10, size),
    }.items():
        part = await fetch(output["videoUrl"], Range=header)
        assert part.status_code == 206, header
        assert part.content == full.content[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert part.headers["content-length"] == str(end - start)
    beyond = await fetch(output["videoUrl"], Range=f"bytes={size}-")
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    cached = await fetch(output["videoUrl"], **{"If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304
    poster = await fetch(output["thumbnailUrl"])
    assert poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).format == "JPEG"
    media = (await gateway.client.get(f"/api/v1/jobs/{job_id}/media", headers=tenant.headers)).json()["media"]
    video = next(item for item in media if item["role"] == "video")
    assert video["duration"] == pytest.approx(2, abs=0.2)
    assert (video["width"], video["height"]) == (848, 480)


async def test_forged_expired_and_missing_signatures_are_403(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    url = (await gateway.generate(tenant, {"prompt": "guarded", "model": "text-to-image"})).json()["imageUrl"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    media_id = parts.path.rsplit("/", 1)[1]
    secret = gateway.server.app.state.services.jobs.finishing.links.secret
    past = int(time.time()) - 10
    for bad in (
        base,
        f"{base}?exp={query['exp'][0]}&sig={'0' * 40}",
        f"{base}?exp={int(query['exp'][0]) + 3600}&sig={query['sig'][0]}",
        f"{base}?{signing.sign(secret, media_id, past)}",
        f"{base}?{signing.sign('another-secret', media_id, int(query['exp'][0]))}",
    ):
        response = await fetch(bad)
        assert response.status_code == 403, bad
        assert response.json()["code"] == "INVALID_SIGNATURE"
    assert (await fetch(url)).status_code == 200


async def test_job_media_links_are_for_the_owner_only(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    stranger = await gateway.tenant(name="stranger")
    job_id = (await gateway.generate(tenant, {"prompt": "mine", "model": "text-to-image"})).json()["jobId"]
    response = await gateway.client.get(f"/api/v1/jobs/{job_id}/media", headers=stranger.headers)
    assert (response.status_code, response.json()["code"]) == (404, "JOB_NOT_FOUND")


@pytest.mark.parametrize(("marker", "code"), [("deadurl", "RESULT_GONE"), ("notmedia", "RESULT_INVALID")])
async def test_image_whose_result_cannot_be_kept_is_refunded(gateway: Gateway, marker: str, code: str) -> None:
    tenant = await gateway.tenant(credits=8)
    response = await gateway.generate(tenant, {"prompt": f"lost [sandbox:{marker}]", "model": "text-to-image"})
    assert response.status_code == 502
    jobs = (await gateway.client.get("/api/v1/jobs", headers=tenant.headers)).json()["jobs"]
    assert jobs[0]["status"] == "failed"
    assert jobs[0]["error"]["code"] == code
    assert jobs[0]["creditsRefunded"] == 8


@pytest.mark.parametrize(("marker", "code"), [("deadurl", "RESULT_GONE"), ("notmedia", "RESULT_INVALID")])
async def test_video_whose_result_cannot_be_kept_is_refunded(
    gateway_factory: Callable[..., Any], marker: str, code: str
) -> None:
    async with gateway_factory() as gw:
        tenant = await gw.tenant(credits=150)
        job_id = (await gw.generate(tenant, {"prompt": f"lost [sandbox:{marker}]", "duration": 1})).json()["jobId"]
        job = await wait_job(gw.client, tenant, job_id)
        assert job["status"] == "failed"
        assert job["error"]["code"] == code
        assert job["creditsRefunded"] == 150


async def test_retention_sweep_deletes_media_and_says_so(gateway_factory: Callable[..., Any]) -> None:
    async with gateway_factory(media_retention_days=1e-9) as gw:
        tenant = await gw.tenant()
        body = (await gw.generate(tenant, {"prompt": "short-lived", "model": "text-to-image"})).json()
        second = (await gw.generate(tenant, {"prompt": "short-lived", "model": "text-to-image"})).json()
        store: MediaStore = gw.server.app.state.services.media_store
        db = Database(gw.db_url)
        try:
            assert await sweep_expired(db, store) == 2
            assert await sweep_expired(db, store) == 0
        finally:
            await db.dispose()
        gone = await fetch(body["imageUrl"])
        assert (gone.status_code, gone.json()["code"]) == (410, "MEDIA_EXPIRED")
        job = (await gw.client.get(f"/api/v1/jobs/{body['jobId']}", headers=tenant.headers)).json()
        assert job["output"]["expired"] is True
        assert (await fetch(second["imageUrl"])).status_code == 410
        media = (await gw.client.get(f"/api/v1/jobs/{body['jobId']}/media", headers=tenant.headers)).json()
        assert media["media"][0]["expired"] is True


def test_byte_range_rules() -> None:
    from grokgate.errors import ApiError
    from grokgate.storage.endpoints import byte_range

    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-9", 100) == (0, 10)
    assert byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=-10", 100) == (90, 100)
    assert byte_range("bytes=-500", 100) == (0, 100)
    assert byte_range("bytes=0-1,5-6", 100) is None
    assert byte_range("items=0-1", 100) is None
    assert byte_range("bytes=a-b", 100) is None
    with pytest.raises(ApiError):
        byte_range("bytes=100-", 100)
    with pytest.raises(ApiError):
        byte_range("bytes=5-2", 100)


def test_signatures() -> None:
    expires = signing.expiry(3600, now=1_000_000)
    assert expires % 3600 == 0
    assert expires >= 1_003_600
    token = parse_qs(signing.sign("k", "med_1", expires))
    assert signing.verify("k", "med_1", token["exp"][0], token["sig"][0], now=1_000_000)
    assert not signing.verify("k", "med_2", token["exp"][0], token["sig"][0], now=1_000_000)
    assert not signing.verify("k", "med_1", token["exp"][0], token["sig"][0], now=expires + 1)
    assert not signing.verify("k", "med_1", "soon", token["sig"][0], now=1_000_000)
    for exp, sig in (
        ("\u00b2", token["sig"][0]),  # a digit to str.isdigit(), not to int()
        ("9" * 5000, token["sig"][0]),  # more digits than int() converts
        ("0" + token["exp"][0], token["sig"][0]),  # the same number, not the form that was signed
        (token["exp"][0], "\u00e9" * 40),  # hmac.compare_digest raises on non-ASCII text
        (token["exp"][0], token["sig"][0].upper()),
    ):
        assert not signing.verify("k", "med_1", exp, sig, now=1_000_000), (exp[:20], sig)


async def test_video_in_s3_is_served_the_same_way(gateway_factory: Callable[..., Any], s3: str) -> None:
    import boto3

    async with gateway_factory(storage_url=s3) as gw:
        tenant = await gw.tenant()
        job_id = (await gw.generate(tenant, {"prompt": "to the bucket", "duration": 1})).json()["jobId"]
        job = await wait_job(gw.client, tenant, job_id)
        full = await fetch(job["output"]["videoUrl"])
        assert full.status_code == 200
        assert full.headers["content-type"] == "video/mp4"
        part = await fetch(job["output"]["videoUrl"], Range="bytes=4-11")
        assert part.status_code == 206
        assert (
            part.content == full.content[4:12] == b"ftypisom"[: len(part.content)] or part.content == full.content[4:12]
        )
    listing = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="grokgate-media", Prefix="results/")
    keys = [item["Key"] for item in listing.get("Contents", [])]
    digest = hashlib.sha256(full.content).hexdigest()
    assert f"results/{digest[:2]}/{digest}.mp4" in keys
    assert any(key.endswith(".jpg") for key in keys)


async def test_s3_presigned_links_redirect_to_the_bucket(gateway_factory: Callable[..., Any], s3: str) -> None:
    async with gateway_factory(storage_url=s3, storage_presign=True) as gw:
        tenant = await gw.tenant()
        url = (await gw.generate(tenant, {"prompt": "presigned", "model": "text-to-image"})).json()["imageUrl"]
        async with httpx.AsyncClient() as client:
            redirect = await client.get(url)
            assert redirect.status_code == 302
            assert "X-Amz-Signature" in redirect.headers["location"]
            followed = await client.get(redirect.headers["location"])
        assert followed.status_code == 200
        assert Image.open(io.BytesIO(followed.content)).format == "PNG"


async def test_store_writes_are_all_or_nothing(tmp_path: Any) -> None:
    store = MediaStore(open_store(None, tmp_path))
    await store.put_bytes("ab/object.bin", b"x" * 1000)
    files = sorted(path.name for path in (tmp_path / "media" / "ab").iterdir())
    assert files == ["object.bin"]  # no staging file left behind
    chunks = [chunk async for chunk in await store.open("ab/object.bin", 10, 20)]
    assert b"".join(chunks) == b"x" * 10
    await store.delete("ab/object.bin")
    assert not await store.exists("ab/object.bin")


async def test_a_local_store_answers_exists_as_obstore_does(tmp_path: Any) -> None:
    """The local store asks its directory directly; obstore's own answer is the reference."""
    store = MediaStore(open_store(None, tmp_path))
    await store.put_bytes("ab/object.bin", b"x")

    async def obstore_says(key: str) -> bool:
        try:
            await obstore.head_async(store.store, key)
        except FileNotFoundError:
            return False
        return True

    for key in ("ab/object.bin", "ab/missing.bin", "ab", "cd/object.bin"):
        assert await store.exists(key) == await obstore_says(key), key
    assert await store.exists("ab/object.bin")


async def test_a_local_store_takes_a_downloaded_file_without_copying_it(tmp_path: Any) -> None:
    store = MediaStore(open_store(None, tmp_path))
    source = tmp_path / "download-1"
    source.write_bytes(b"video bytes")
    source.chmod(0o600)
    await store.put_file("ab/video.mp4", source)
    stored = tmp_path / "media" / "ab" / "video.mp4"
    assert stored.stat().st_ino == source.stat().st_ino  # one file, two names
    assert stored.stat().st_mode & 0o777 == 0o644
    await store.put_file("ab/video.mp4", source)  # already there: the same bytes, by its key
    source.unlink()
    assert b"".join([chunk async for chunk in await store.open("ab/video.mp4", 0, 11)]) == b"video bytes"


async def test_a_file_on_another_filesystem_is_copied_into_a_local_store(tmp_path: Any) -> None:
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to download to")
    store = MediaStore(open_store(None, tmp_path))
    source = elsewhere / f"grokgate-test-{time.time_ns()}"
    source.write_bytes(b"copied")
    try:
        await store.put_file("cd/other.mp4", source)
    finally:
        source.unlink()
    assert (tmp_path / "media" / "cd" / "other.mp4").read_bytes() == b"copied"
