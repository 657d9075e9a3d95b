"""Retention that cannot lose a result, on the local store and on S3: an object that an expiring job shares with a
job not yet committed survives the sweep (the race replayed step by step, in the order it happens), objects are
deleted once nothing refers to them and the grace has passed, and a media row whose object is missing answers a
clean 404 `MEDIA_MISSING` instead of a 200 that breaks mid-body."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from grokgate.db.base import new_id, utcnow
from grokgate.db.engine import Database
from grokgate.storage.ingest import Ingestor, Limits
from grokgate.storage.models import Media, MediaObject
from grokgate.storage.retention import GRACE, ObjectClaims, sweep_expired
from grokgate.storage.store import MediaStore
from tests.conftest import Gateway

STORES = ["local", "s3"]


@pytest.fixture
async def gw(request: pytest.FixtureRequest, gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    """A gateway on the local store or on S3 (`indirect` parameter: "local", "s3" or "s3-presign")."""
    overrides: dict[str, Any] = {}
    if request.param.startswith("s3"):
        overrides["storage_url"] = request.getfixturevalue("s3")
        overrides["storage_presign"] = request.param == "s3-presign"
    async with gateway_factory(**overrides) as gateway:
        yield gateway


@pytest.fixture
async def db(gw: Gateway) -> AsyncIterator[Database]:
    database = Database(gw.db_url)
    yield database
    await database.dispose()


def store_of(gw: Gateway) -> MediaStore:
    store: MediaStore = gw.server.app.state.services.media_store
    return store


async def fetch(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        return await client.get(url, headers=headers)


async def media_row(db: Database, job_id: str) -> Media:
    async with db.reader() as session:
        row = await session.scalar(select(Media).where(Media.job_id == job_id))
    assert row is not None
    return row


@pytest.mark.parametrize("gw", STORES, indirect=True)
async def test_an_object_shared_with_a_job_not_yet_committed_survives_the_sweep(
    gw: Gateway, db: Database, tmp_path: Path
) -> None:
    tenant = await gw.tenant()
    first = (await gw.generate(tenant, {"prompt": "shared bytes", "model": "text-to-image"})).json()
    content = (await fetch(first["imageUrl"])).content
    old = await media_row(db, first["jobId"])
    store = store_of(gw)
    # The first job's result was stored a retention period ago and has just expired.
    long_ago = utcnow() - timedelta(days=31)
    async with db.transaction() as session:
        await session.execute(
            update(Media).where(Media.id == old.id).values(created_at=long_ago, expires_at=utcnow() - timedelta(1))
        )
        await session.execute(update(MediaObject).values(claimed_at=long_ago))

    # 1. A new job's ingest gets byte-identical bytes: the object is there already, so it is not written again.
    ingestor = Ingestor(
        store, Limits(image_bytes=10**7, video_bytes=10**8), tmp_path / "scratch", claims=ObjectClaims(db)
    )
    try:
        [stored] = await ingestor.ingest(f"data:image/png;base64,{base64.b64encode(content).decode()}", "image")
    finally:
        await ingestor.aclose()
    assert stored.key == old.key
    # 2. The sweeper runs before that job's media row is committed: the first row expires, the object stays.
    assert await sweep_expired(db, store) == 1
    assert await store.exists(old.key)
    # 3. The new job's media row is committed, and its link serves the whole result.
    now = utcnow()
    new = Media(
        id=new_id("med"), job_id=new_id("job"), org_id=tenant.org_id, role="image", key=stored.key,
        content_type=stored.content_type, size=stored.size, sha256=stored.sha256, created_at=now,
        expires_at=now + timedelta(days=30),
    )  # fmt: skip
    async with db.transaction() as session:
        session.add(new)
    links = gw.server.app.state.services.jobs.finishing.links
    served = await fetch(links.url(new.id))
    assert (served.status_code, served.content) == (200, content)
    # Long after the grace, the object is still referred to by the new row: kept.
    later = utcnow() + GRACE * 2
    assert await sweep_expired(db, store, now=later) == 0
    assert await store.exists(old.key)
    # Once that row expires too and the grace has passed, the object goes, and so does its claim.
    assert await sweep_expired(db, store, now=now + timedelta(days=30) + GRACE * 2) == 1
    assert not await store.exists(old.key)
    async with db.reader() as session:
        assert await session.get(MediaObject, old.key) is None
    gone = await fetch(links.url(new.id))
    assert (gone.status_code, gone.json()["code"]) == (410, "MEDIA_EXPIRED")


@pytest.mark.parametrize("gw", STORES, indirect=True)
async def test_an_expired_object_is_deleted_only_after_the_grace(gw: Gateway, db: Database) -> None:
    tenant = await gw.tenant()
    job = (await gw.generate(tenant, {"prompt": "short-lived object", "model": "text-to-image"})).json()
    row = await media_row(db, job["jobId"])
    store = store_of(gw)
    async with db.transaction() as session:  # retention passed right after the ingest
        await session.execute(update(Media).where(Media.id == row.id).values(expires_at=utcnow()))
    assert await sweep_expired(db, store) == 1
    assert await store.exists(row.key)  # claimed by its ingest less than GRACE ago
    assert await sweep_expired(db, store, now=utcnow() + GRACE) == 0
    assert not await store.exists(row.key)


@pytest.mark.parametrize("gw", ["local", "s3", "s3-presign"], indirect=True)
async def test_a_media_row_whose_object_is_missing_answers_media_missing(gw: Gateway, db: Database) -> None:
    tenant = await gw.tenant()
    job = (await gw.generate(tenant, {"prompt": "lost object", "model": "text-to-image"})).json()
    row = await media_row(db, job["jobId"])
    await store_of(gw).delete(row.key)
    async with httpx.AsyncClient() as client:
        for headers in ({}, {"Range": "bytes=0-9"}):
            response = await client.get(job["imageUrl"], headers=headers)
            assert response.status_code == 404, (headers, response.status_code)
            body = response.json()
            assert body["code"] == "MEDIA_MISSING"
            assert body["details"] == {"mediaId": row.id}
            assert set(body) == {"error", "code", "details"}
        # The connection that got the error still works.
        assert (await client.get(f"{gw.server.url}/healthz")).status_code == 200
