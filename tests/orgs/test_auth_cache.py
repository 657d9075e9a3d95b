"""The authentication cache: a key revoked by the serving process is refused at once, one revoked by another process
within `auth_cache_seconds`, and with the cache off at once everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from tests.admin.helpers import operator_headers
from tests.conftest import Gateway

LIST = "/api/v1/jobs"


async def _revoke_elsewhere(db_url: str, key_id: str) -> None:
    """What another process (the admin CLI, another worker) does: its own engine, its own transaction."""
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            await orgs.revoke_key(session, key_id)
    finally:
        await db.dispose()


async def test_a_key_revoked_by_the_serving_process_is_refused_at_once(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    assert (await gateway.client.get(LIST, headers=tenant.headers)).status_code == 200  # now remembered
    op = await operator_headers(gateway.db_url)
    revoked = await gateway.client.post(f"/admin/api/v1/keys/{tenant.key_id}/revoke", headers=op)
    assert revoked.status_code == 200, revoked.text
    refused = await gateway.client.get(LIST, headers=tenant.headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "KEY_REVOKED")


@pytest.mark.timeout(30)
async def test_a_key_revoked_elsewhere_is_refused_within_the_ttl(gateway_factory: Callable[..., Any]) -> None:
    ttl = 0.5
    async with gateway_factory(auth_cache_seconds=ttl) as gateway:
        tenant = await gateway.tenant()
        other = await gateway.tenant(name="other")
        assert (await gateway.client.get(LIST, headers=tenant.headers)).status_code == 200
        await _revoke_elsewhere(gateway.db_url, tenant.key_id)
        revoked_at = time.monotonic()
        # Remembered for at most `ttl`: still answered now, refused once it has passed.
        assert (await gateway.client.get(LIST, headers=tenant.headers)).status_code == 200
        while (await gateway.client.get(LIST, headers=tenant.headers)).status_code == 200:
            assert time.monotonic() - revoked_at < ttl + 1.0, "the revoked key was still answered after the TTL"
            await asyncio.sleep(0.05)
        refused = await gateway.client.get(LIST, headers=tenant.headers)
        assert (refused.status_code, refused.json()["code"]) == (401, "KEY_REVOKED")
        # A wrong secret for a remembered key is never answered from memory.
        assert (await gateway.client.get(LIST, headers=other.headers)).status_code == 200
        forged = {"Authorization": f"Bearer {other.key[:-4]}abcd"}
        assert (await gateway.client.get(LIST, headers=forged)).json()["code"] == "KEY_NOT_FOUND"


async def test_with_the_cache_off_a_key_revoked_elsewhere_is_refused_at_once(
    gateway_factory: Callable[..., Any],
) -> None:
    async with gateway_factory(auth_cache_seconds=0) as gateway:
        tenant = await gateway.tenant()
        assert (await gateway.client.get(LIST, headers=tenant.headers)).status_code == 200
        await _revoke_elsewhere(gateway.db_url, tenant.key_id)
        refused = await gateway.client.get(LIST, headers=tenant.headers)
        assert (refused.status_code, refused.json()["code"]) == (401, "KEY_REVOKED")
