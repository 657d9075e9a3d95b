"""The admin CLI's operator tokens, suspension and capped keys, as an operator runs them, checked over HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.conftest import Gateway
from tests.e2e.process import clean_env, run_cli


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """In a thread: the gateway under test serves from this event loop, and must go on doing so meanwhile."""
    return await asyncio.to_thread(run_cli, *args, env=env)


async def ok(*args: str, env: dict[str, str]) -> dict[str, object]:
    result = await cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


@pytest.mark.timeout(180)
async def test_operator_tokens_capped_keys_and_suspension_from_the_cli(gateway: Gateway) -> None:
    env = clean_env(GROKGATE_DATABASE_URL=gateway.db_url)
    client = gateway.client
    made = await ok("admin", "create-operator-token", "--scope", "read", "--name", "dashboard", env=env)
    assert str(made["token"]).startswith("ggop_")
    operator = {"Authorization": f"Bearer {made['token']}"}
    assert (await client.get("/admin/api/v1/orgs", headers=operator)).status_code == 200
    listed = await ok("admin", "list-operator-tokens", env=env)
    assert listed == {
        "tokens": [
            {
                "id": made["id"],
                "scope": "read",
                "name": "dashboard",
                "createdAt": listed["tokens"][0]["createdAt"],
                "revoked": False,
            }  # type: ignore[index]
        ]
    }
    assert "token" not in json.dumps(listed["tokens"]).replace('"tokens"', "")  # never the secret again
    assert await ok("admin", "revoke-operator-token", "--token-id", str(made["id"]), env=env) == {
        "id": made["id"],
        "revoked": True,
    }
    assert (await client.get("/admin/api/v1/orgs", headers=operator)).json()["code"] == "TOKEN_REVOKED"
    org = {"id": (await gateway.tenant(credits=100)).org_id}
    key = await ok("admin", "create-key", "--org", str(org["id"]), "--daily-cap", "8", "--monthly-cap", "50", env=env)
    assert (key["dailyCap"], key["monthlyCap"]) == (8, 50)
    customer = {"Authorization": f"Bearer {key['key']}"}
    image = {"prompt": "from the CLI", "model": "text-to-image"}
    assert (await client.post("/api/v1/models/grok-imagine", json=image, headers=customer)).status_code == 200
    over = await client.post("/api/v1/models/grok-imagine", json=image, headers=customer)
    assert (over.status_code, over.json()["code"]) == (402, "KEY_SPEND_CAP_REACHED")
    assert await ok("admin", "suspend-org", "--org", str(org["id"]), env=env) == {"id": org["id"], "suspended": True}
    refused = await client.post("/api/v1/models/grok-imagine", json=image, headers=customer)
    assert refused.json()["code"] == "ORG_SUSPENDED"
