"""Key scopes, expiry from the CLI, last-used bookkeeping, plans and webhook secrets from the CLI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from grokgate.orgs.models import ApiKey
from tests.conftest import Gateway
from tests.e2e.process import clean_env, run_cli


async def key_with(db_url: str, org_id: str, scopes: set[str]) -> dict[str, str]:
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            _, secret = await orgs.create_key(session, org_id, scopes=frozenset(scopes))
        return {"Authorization": f"Bearer {secret}"}
    finally:
        await db.dispose()


ROUTES: list[tuple[str, str, str, Any]] = [
    ("POST", "/api/v1/models/grok-imagine", "generate", {"prompt": "x", "model": "text-to-image"}),
    ("POST", "/api/v1/jobs", "generate", {"workflow": "generate_image", "input": {"prompt": "x"}}),
    ("GET", "/api/v1/jobs", "jobs:read", None),
    ("GET", "/api/v1/jobs/job_x", "jobs:read", None),
    ("GET", "/api/v1/jobs/job_x/events", "jobs:read", None),
    ("GET", "/api/v1/jobs/job_x/deliveries", "jobs:read", None),
    ("DELETE", "/api/v1/jobs/job_x", "jobs:write", None),
    ("GET", "/api/v1/organization", "account:read", None),
    ("GET", "/api/v1/account/rate-limits", "account:read", None),
    ("GET", "/api/v1/ledger", "account:read", None),
]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
async def test_every_route_needs_its_scope(gateway: Gateway, method: str, path: str, scope: str, body: Any) -> None:
    tenant = await gateway.tenant()
    others = {"generate", "jobs:read", "jobs:write", "account:read"} - {scope}
    without = await key_with(gateway.db_url, tenant.org_id, others)
    response = await gateway.client.request(method, path, json=body, headers=without)
    assert response.status_code == 403
    assert response.json()["code"] == "INSUFFICIENT_SCOPE"
    assert response.json()["details"] == {"required": scope}
    with_it = await key_with(gateway.db_url, tenant.org_id, {scope})
    allowed = await gateway.client.request(method, path, json=body, headers=with_it)
    assert allowed.status_code != 403


async def test_last_used_is_recorded_without_a_write_per_request(gateway: Gateway) -> None:
    tenant = await gateway.tenant()

    async def last_used() -> Any:
        db = Database(gateway.db_url)
        try:
            async with db.reader() as session:
                row = await session.get(ApiKey, tenant.key_id)
                assert row is not None
                return row.last_used_at
        finally:
            await db.dispose()

    assert await last_used() is None
    await gateway.client.get("/api/v1/organization", headers=tenant.headers)
    first = await last_used()
    assert first is not None
    for _ in range(3):
        await gateway.client.get("/api/v1/organization", headers=tenant.headers)
    assert await last_used() == first


def test_cli_keys_plans_and_webhook_secrets(db_url: str) -> None:
    env = clean_env(
        GROKGATE_DATABASE_URL=db_url, GROKGATE_PLANS='{"pro": {"rpm": 3000, "rph": 1e5, "rpd": 1e6, "concurrent": 500}}'
    )

    def ok(*args: str) -> dict[str, Any]:
        result = run_cli(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        payload: dict[str, Any] = json.loads(result.stdout)
        return payload

    org = ok("admin", "create-org", "--name", "Scoped", "--credits", "10")
    key = ok("admin", "create-key", "--org", org["id"], "--scopes", "generate,jobs:read", "--expires-in", "30d")
    assert key["scopes"] == ["generate", "jobs:read"]
    assert key["expiresAt"]
    bad = run_cli("admin", "create-key", "--org", org["id"], "--scopes", "everything", env=env)
    assert bad.returncode == 1
    assert "scopes" in bad.stderr
    bad_expiry = run_cli("admin", "create-key", "--org", org["id"], "--expires-in", "soon", env=env)
    assert bad_expiry.returncode == 1
    plan = ok("admin", "set-plan", "--org", org["id"], "--plan", "pro")
    assert plan["plan"] == "pro"
    assert plan["limits"]["rpm"] == 3000
    assert run_cli("admin", "set-plan", "--org", org["id"], "--plan", "gold", env=env).returncode == 1
    shown = ok("admin", "webhook-secret", "--org", org["id"])
    assert shown["secret"].startswith("whsec_")
    assert ok("admin", "webhook-secret", "--org", org["id"])["secret"] == shown["secret"]
    rotated = ok("admin", "webhook-secret", "--org", org["id"], "--rotate")
    assert rotated["secret"] != shown["secret"]


async def test_expired_key_from_the_cli_is_refused(gateway: Gateway) -> None:
    # The CLI runs in a thread: the gateway in this event loop must keep serving (and committing) meanwhile.
    env = clean_env(GROKGATE_DATABASE_URL=gateway.db_url)
    made = await asyncio.to_thread(run_cli, "admin", "create-org", "--name", "E", "--json", env=env)
    assert made.returncode == 0, made.stderr
    org = json.loads(made.stdout)
    created = await asyncio.to_thread(
        run_cli, "admin", "create-key", "--org", org["id"], "--expires-in", "1s", "--json", env=env
    )
    key = json.loads(created.stdout)
    await asyncio.sleep(1.1)
    response = await gateway.client.get("/api/v1/organization", headers={"Authorization": f"Bearer {key['key']}"})
    assert response.json()["code"] == "KEY_EXPIRED"


async def test_routes_that_authorize_themselves_document_the_header_as_the_dependency_does(gateway: Gateway) -> None:
    """The submitting routes and the two polls call `authorize` directly and write their `Authorization` parameter
    by hand (`orgs/auth.AUTHORIZATION_HEADER`): it must stay what FastAPI makes of the dependency's `Header` on the
    others."""
    paths = (await gateway.client.get("/openapi.json")).json()["paths"]

    def authorization(operation: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in operation.get("parameters", []) if p["name"].lower() == "authorization"]

    [made_by_fastapi] = authorization(paths["/api/v1/jobs"]["get"])
    for path, method in [
        ("/api/v1/jobs/{jobId}", "get"),
        ("/v1/videos/{request_id}", "get"),
        ("/api/v1/models/grok-imagine", "post"),
        ("/api/v1/jobs", "post"),
        ("/v1/images/generations", "post"),
        ("/v1/videos/generations", "post"),
    ]:
        assert authorization(paths[path][method]) == [made_by_fastapi], path
