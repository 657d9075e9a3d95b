"""The admin CLI as an operator runs it: one JSON object with --json, one line on stderr and exit 1 on error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.process import clean_env, run_cli


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return clean_env(GROKGATE_DATABASE_URL=db_url)


def ok(*args: str, env: dict[str, str]) -> dict[str, object]:
    result = run_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


def fails(*args: str, env: dict[str, str], process: bool = False) -> str:
    result = run_cli(*args, env=env, process=process)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_org_key_credits_balance_revoke(env: dict[str, str]) -> None:
    org = ok("admin", "create-org", "--name", "Acme", "--credits", "500", env=env)
    assert set(org) == {"id", "name", "creditsRemaining"}
    assert org["name"] == "Acme"
    assert org["creditsRemaining"] == 500
    key = ok("admin", "create-key", "--org", str(org["id"]), env=env)
    assert str(key["key"]).startswith("gg_")
    assert str(key["id"]).startswith("key_")
    assert ok("admin", "add-credits", "--org", str(org["id"]), "--credits", "25", env=env)["creditsRemaining"] == 525
    assert ok("admin", "balance", "--org", str(org["id"]), env=env) == {"creditsRemaining": 525, "ledgerSum": 525}
    assert ok("admin", "revoke-key", "--key-id", str(key["id"]), env=env) == {"id": key["id"], "revoked": True}
    assert ok("migrate", env=env) == {"migrated": True}


def test_errors_are_one_line_without_traceback(env: dict[str, str], tmp_path: Path) -> None:
    # As processes, where a traceback would show: an answer the command refuses, and a configuration it refuses.
    assert "not found" in fails("admin", "balance", "--org", "org_missing", env=env, process=True)
    assert "not found" in fails("admin", "add-credits", "--org", "org_missing", "--credits", "5", env=env)
    assert "not found" in fails("admin", "revoke-key", "--key-id", "key_missing", env=env)
    org = ok("admin", "create-org", "--name", "Zero", env=env)
    assert "positive" in fails("admin", "add-credits", "--org", str(org["id"]), "--credits", "-5", env=env)
    assert "negative" in fails("admin", "create-org", "--name", "Neg", "--credits", "-1", env=env)
    bad = {**env, "GROKGATE_PRICES": '{"text-to-music": 3}'}
    assert "configuration" in fails("admin", "create-org", "--name", "X", env=bad, process=True)
