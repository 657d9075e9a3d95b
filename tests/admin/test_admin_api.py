"""The admin HTTP API over real HTTP: operator tokens only, every write once per client-chosen id, organisations,
credits, keys with caps, suspension, jobs of everyone, failing webhook deliveries and the report."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from grokgate.billing.models import LedgerEntry
from grokgate.db.engine import Database
from grokgate.webhooks.models import WebhookDelivery
from tests.admin.helpers import operator_headers
from tests.conftest import Gateway, Sandbox
from tests.support import counts

API = "/admin/api/v1"
IMAGE = {"prompt": "an operator's lighthouse", "model": "text-to-image"}


def _with(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def _ledger(db_url: str, org_id: str) -> list[tuple[str, int, str | None]]:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            rows = await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.note)
                .where(LedgerEntry.org_id == org_id)
                .order_by(LedgerEntry.id)
            )
            return [(kind, amount, note) for kind, amount, note in rows.all()]
    finally:
        await db.dispose()


async def test_only_operator_tokens_open_it_and_scopes_hold(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant()
    read = await operator_headers(gateway.db_url, "read")
    write = await operator_headers(gateway.db_url, "write")
    missing = await client.get(f"{API}/orgs")
    assert (missing.status_code, missing.json()["code"]) == (401, "MISSING_AUTH")
    customer = await client.get(f"{API}/orgs", headers=tenant.headers)  # a customer key, even a valid one
    assert (customer.status_code, customer.json()["code"]) == (401, "TOKEN_NOT_FOUND")
    assert (await client.get(f"{API}/orgs", headers=read)).status_code == 200
    refused = await client.post(f"{API}/orgs", json={"name": "x"}, headers=_with(read, "org-1"))
    assert (refused.status_code, refused.json()["code"]) == (403, "INSUFFICIENT_SCOPE")
    # An operator token is nobody on the customer API.
    assert (await client.get("/api/v1/organization", headers=write)).json()["code"] == "KEY_NOT_FOUND"
    forged = {"Authorization": write["Authorization"][:-4] + "AAAA"}
    assert (await client.get(f"{API}/orgs", headers=forged)).json()["code"] == "TOKEN_NOT_FOUND"


async def test_a_revoked_operator_token_is_refused_at_once(gateway: Gateway) -> None:
    from grokgate.admin import tokens

    headers = await operator_headers(gateway.db_url, "write")
    assert (await gateway.client.get(f"{API}/orgs", headers=headers)).status_code == 200
    token_id = tokens.token_id_of(headers["Authorization"].removeprefix("Bearer "))
    assert token_id is not None
    db = Database(gateway.db_url)
    try:
        async with db.transaction() as session:
            await tokens.revoke_token(session, token_id)
    finally:
        await db.dispose()
    answer = await gateway.client.get(f"{API}/orgs", headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (401, "TOKEN_REVOKED")


async def test_organisations_create_once_list_search_show_and_plan(gateway: Gateway) -> None:
    client = gateway.client
    op = await operator_headers(gateway.db_url)
    no_id = await client.post(f"{API}/orgs", json={"name": "Acme"}, headers=op)
    assert (no_id.status_code, no_id.json()["details"]["field"]) == (400, "Idempotency-Key")
    made = await client.post(f"{API}/orgs", json={"name": "Acme Rockets", "credits": 300}, headers=_with(op, "o-1"))
    assert made.status_code == 201, made.text
    org = made.json()
    assert (org["name"], org["creditsRemaining"], org["plan"], org["suspended"]) == (
        "Acme Rockets",
        300,
        "default",
        False,
    )
    again = await client.post(f"{API}/orgs", json={"name": "Acme Rockets", "credits": 300}, headers=_with(op, "o-1"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == org
    other = await client.post(f"{API}/orgs", json={"name": "Acme Boats"}, headers=_with(op, "o-1"))
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    await client.post(f"{API}/orgs", json={"name": "Globex"}, headers=_with(op, "o-2"))
    listed = (await client.get(f"{API}/orgs", headers=op)).json()
    assert listed["total"] == 2
    found = (await client.get(f"{API}/orgs", params={"q": "ROCKET"}, headers=op)).json()
    assert [row["id"] for row in found["organizations"]] == [org["id"]]
    by_id = (await client.get(f"{API}/orgs", params={"q": org["id"][-6:]}, headers=op)).json()
    assert [row["id"] for row in by_id["organizations"]] == [org["id"]]
    shown = (await client.get(f"{API}/orgs/{org['id']}", headers=op)).json()
    assert (shown["ledgerSum"], shown["keys"], shown["activeJobs"]) == (300, 0, 0)
    assert (await client.get(f"{API}/orgs/org_nope", headers=op)).status_code == 404
    bad = await client.put(f"{API}/orgs/{org['id']}/plan", json={"plan": "gold"}, headers=op)
    assert (bad.status_code, bad.json()["details"]["field"]) == (400, "plan")
    assert (await client.put(f"{API}/orgs/{org['id']}/plan", json={"plan": "default"}, headers=op)).status_code == 200
    nul = await client.post(f"{API}/orgs", json={"name": "a\u0000b"}, headers=_with(op, "o-3"))
    assert (nul.status_code, nul.json()["details"]["field"]) == (400, "name")  # PostgreSQL holds no NUL in text
    nul_query = await client.get(f"{API}/orgs", params={"q": "a\x00b"}, headers=op)
    assert (nul_query.status_code, nul_query.json()["details"]["field"]) == (400, "query.q")
    blank = await client.post(f"{API}/orgs", json={"name": "   "}, headers=_with(op, "o-3"))
    assert (blank.status_code, blank.json()["details"]["field"]) == (400, "name")
    assert (await client.post(f"{API}/orgs", json={"name": "Fixed"}, headers=_with(op, "o-3"))).status_code == 201


async def test_a_payment_delivered_twice_grants_once_even_at_once(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant(credits=100)
    op = await operator_headers(gateway.db_url)
    grant = {"credits": 500, "reason": "invoice 42 paid", "grantId": "pay_42"}
    url = f"{API}/orgs/{tenant.org_id}/credits/grants"
    answers = await asyncio.gather(*(client.post(url, json=grant, headers=op) for _ in range(8)))
    assert [answer.status_code for answer in answers] == [201] * 8
    assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers) == 7
    assert {answer.json()["creditsRemaining"] for answer in answers} == {600}
    # The same payment a day later, by header this time: still once.
    later = await client.post(url, json={"credits": 500, "reason": "invoice 42 paid"}, headers=_with(op, "pay_42"))
    assert later.status_code == 201
    assert later.headers["idempotent-replayed"] == "true"
    assert await _ledger(gateway.db_url, tenant.org_id) == [
        ("grant", 100, "initial credits"),
        ("grant", 500, "invoice 42 paid"),
    ]
    mismatch = await client.post(url, json={**grant, "grantId": "pay_43"}, headers=_with(op, "pay_44"))
    assert (mismatch.status_code, mismatch.json()["details"]["field"]) == (400, "grantId")
    unnamed = await client.post(url, json={"credits": 5, "reason": "no id"}, headers=op)
    assert (unnamed.status_code, unnamed.json()["details"]["field"]) == (400, "Idempotency-Key")
    for body, field in (
        ({"credits": 0, "reason": "x", "grantId": "g0"}, "credits"),
        ({"credits": 10**9 + 1, "reason": "x", "grantId": "g1"}, "credits"),
        ({"credits": "5", "reason": "x", "grantId": "g2"}, "credits"),
        ({"credits": 5, "grantId": "g3"}, "reason"),
        ({"credits": 5, "reason": "x", "grantId": "g4", "bonus": 1}, "bonus"),
    ):
        before = await counts(gateway.db_url)
        refused = await client.post(url, json=body, headers=op)
        assert (refused.status_code, refused.json()["details"].get("field")) == (400, field), refused.text
        assert await counts(gateway.db_url) == before
    assert (
        await client.post(f"{API}/orgs/org_nope/credits/grants", json=grant | {"grantId": "x"}, headers=op)
    ).status_code == 404


async def test_removals_are_ledger_rows_and_never_take_a_balance_below_zero(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant(credits=100)
    op = await operator_headers(gateway.db_url)
    url = f"{API}/orgs/{tenant.org_id}/credits/removals"
    removed = await client.post(url, json={"credits": 30, "reason": "chargeback", "removalId": "cb-1"}, headers=op)
    assert removed.status_code == 201, removed.text
    assert removed.json() == {
        "orgId": tenant.org_id,
        "kind": "removal",
        "credits": 30,
        "reason": "chargeback",
        "id": "cb-1",
        "creditsRemaining": 70,
    }
    assert (
        await client.post(url, json={"credits": 30, "reason": "chargeback", "removalId": "cb-1"}, headers=op)
    ).json()["creditsRemaining"] == 70
    before = await counts(gateway.db_url)
    too_much = await client.post(url, json={"credits": 71, "reason": "oops", "removalId": "cb-2"}, headers=op)
    assert (too_much.status_code, too_much.json()["details"]["field"]) == (400, "credits")
    assert await counts(gateway.db_url) == before
    assert await _ledger(gateway.db_url, tenant.org_id) == [
        ("grant", 100, "initial credits"),
        ("removal", -30, "chargeback"),
    ]
    ledger = (await client.get("/api/v1/ledger", headers=tenant.headers)).json()
    assert [entry["kind"] for entry in ledger["entries"]] == ["removal", "grant"]


async def test_keys_with_caps_are_listed_with_their_spend_and_revoked(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant(credits=1000)
    op = await operator_headers(gateway.db_url)
    url = f"{API}/orgs/{tenant.org_id}/keys"
    body = {"scopes": ["generate", "account:read"], "dailyCap": 16, "monthlyCap": 100}
    made = await client.post(url, json=body, headers=_with(op, "k-1"))
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["key"].startswith("gg_")
    assert (key["dailyCap"], key["monthlyCap"], key["scopes"]) == (16, 100, ["generate", "account:read"])
    replay = await client.post(url, json=body, headers=_with(op, "k-1"))
    assert replay.json()["id"] == key["id"]
    assert replay.json()["key"] is None  # the secret is never kept, not even for a repeat
    customer = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.post("/api/v1/models/grok-imagine", json=IMAGE, headers=customer)).status_code == 200
    listed = {row["id"]: row for row in (await client.get(url, headers=op)).json()["keys"]}
    assert listed[key["id"]]["spent"] == {"day": 8, "month": 8}
    assert listed[tenant.key_id]["dailyCap"] is None
    for bad, field in (
        ({"dailyCap": 0}, "dailyCap"),
        ({"monthlyCap": 10**9 + 1}, "monthlyCap"),
        ({"scopes": ["root"]}, "scopes.0"),
    ):
        refused = await client.post(url, json=bad, headers=_with(op, f"k-bad-{field}"))
        assert (refused.status_code, refused.json()["details"]["field"]) == (400, field), refused.text
    revoked = await client.post(f"{API}/keys/{key['id']}/revoke", headers=op)
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"] is not None
    gone = await client.post("/api/v1/models/grok-imagine", json=IMAGE, headers=customer)
    assert gone.json()["code"] == "KEY_REVOKED"
    assert (await client.post(f"{API}/keys/key_nope/revoke", headers=op)).status_code == 404
    assert (await client.get(f"{API}/orgs/org_nope/keys", headers=op)).status_code == 404


async def test_a_suspended_organisation_generates_nothing_and_still_reads(gateway: Gateway, sandbox: Sandbox) -> None:
    client = gateway.client
    tenant = await gateway.tenant(credits=1000)
    op = await operator_headers(gateway.db_url)
    suspended = await client.post(f"{API}/orgs/{tenant.org_id}/suspend", headers=op)
    assert suspended.status_code == 200
    assert suspended.json()["suspended"] is True
    before, calls = await counts(gateway.db_url), len(await sandbox.requests())
    for body in (IMAGE, {"prompt": "a suspended video", "model": "text-to-video"}):
        refused = await gateway.generate(tenant, body)
        assert (refused.status_code, refused.json()["code"]) == (403, "ORG_SUSPENDED"), refused.text
    workflow = await client.post(
        "/api/v1/jobs", json={"workflow": "generate_image", "input": {"prompt": "x"}}, headers=tenant.headers
    )
    assert workflow.status_code == 403
    assert await counts(gateway.db_url) == before  # nothing charged, no job
    assert len(await sandbox.requests()) == calls  # no upstream call
    assert (await client.get("/api/v1/organization", headers=tenant.headers)).json()["creditsRemaining"] == 1000
    assert (await client.get("/api/v1/jobs", headers=tenant.headers)).status_code == 200
    listed = (await client.get(f"{API}/orgs", params={"suspended": "true"}, headers=op)).json()
    assert [row["id"] for row in listed["organizations"]] == [tenant.org_id]
    assert (await client.post(f"{API}/orgs/{tenant.org_id}/resume", headers=op)).json()["suspended"] is False
    assert (await gateway.generate(tenant, IMAGE)).status_code == 200


async def test_jobs_of_every_organisation_with_filters(gateway: Gateway) -> None:
    client = gateway.client
    acme, globex = await gateway.tenant(name="acme"), await gateway.tenant(name="globex")
    op = await operator_headers(gateway.db_url, "read")
    assert (await gateway.generate(acme, IMAGE)).status_code == 200
    assert (await gateway.generate(globex, {**IMAGE, "prompt": "no [sandbox:reject]"})).status_code == 400
    assert (await gateway.generate(globex, {"prompt": "v", "model": "text-to-video"})).status_code == 202

    async def page(**params: Any) -> dict[str, Any]:
        answer = await client.get(f"{API}/jobs", params=params, headers=op)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    assert (await page())["total"] == 3
    assert {job["orgId"] for job in (await page(orgId=globex.org_id))["jobs"]} == {globex.org_id}
    failed = (await page(status="failed"))["jobs"]
    assert [(job["orgId"], job["error"]["code"]) for job in failed] == [(globex.org_id, "UPSTREAM_REJECTED")]
    assert failed[0]["keyId"] == globex.key_id
    assert (await page(subModel="text-to-video"))["total"] == 1
    assert (await page(since="2999-01-01T00:00:00"))["total"] == 0
    assert (await page(until="2000-01-01T00:00:00Z"))["total"] == 0
    assert [len((await page(limit=2, offset=offset))["jobs"]) for offset in (0, 2)] == [2, 1]
    bad = await client.get(f"{API}/jobs", params={"status": "lost"}, headers=op)
    assert (bad.status_code, bad.json()["details"]["field"]) == (400, "query.status")


async def test_failing_deliveries_are_listed_and_retried(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant()
    op = await operator_headers(gateway.db_url)
    db = Database(gateway.db_url)
    try:
        async with db.transaction() as session:
            for delivery_id, status, attempts in (
                ("whd_failed", "failed", 8),
                ("whd_retry", "pending", 2),
                ("whd_ok", "delivered", 1),
                ("whd_new", "pending", 0),
            ):
                session.add(
                    WebhookDelivery(
                        id=delivery_id,
                        org_id=tenant.org_id,
                        job_id="job_x",
                        event="job.completed",
                        url="http://127.0.0.1:9/hook",
                        payload={},
                        status=status,
                        attempts=attempts,
                        last_error="connection refused" if status != "delivered" else None,
                    )
                )
    finally:
        await db.dispose()
    listed = (await client.get(f"{API}/webhooks/deliveries", headers=op)).json()
    assert sorted(row["id"] for row in listed["deliveries"]) == ["whd_failed", "whd_retry"]
    only_failed = (await client.get(f"{API}/webhooks/deliveries", params={"state": "failed"}, headers=op)).json()
    assert [row["id"] for row in only_failed["deliveries"]] == ["whd_failed"]
    retried = await client.post(f"{API}/webhooks/deliveries/whd_failed/retry", headers=op)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 8)
    assert retried.json()["nextAttemptAt"] is not None
    done = await client.post(f"{API}/webhooks/deliveries/whd_ok/retry", headers=op)
    assert (done.status_code, done.json()["code"]) == (409, "DELIVERY_DELIVERED")
    assert (await client.post(f"{API}/webhooks/deliveries/whd_nope/retry", headers=op)).status_code == 404


async def test_the_report_per_day_and_sub_model(gateway: Gateway) -> None:
    client = gateway.client
    tenant = await gateway.tenant(credits=1000)
    op = await operator_headers(gateway.db_url, "read")
    assert (await gateway.generate(tenant, IMAGE)).status_code == 200
    assert (await gateway.generate(tenant, {**IMAGE, "prompt": "[sandbox:reject]"})).status_code == 400
    report = (await client.get(f"{API}/report", headers=op)).json()
    assert report["totals"]["credits"] == {"sold": 1000, "removed": 0, "charged": 16, "refunded": 8, "used": 8}
    assert report["totals"]["jobs"] == 2
    assert report["totals"]["upstreamCostUsd"] > 0
    assert report["totals"]["marginUsd"] == round(
        report["totals"]["revenueUsd"] - report["totals"]["upstreamCostUsd"], 4
    )
    [today] = report["byDay"]
    assert today["credits"] == report["totals"]["credits"]
    assert report["bySubModel"]["text-to-image"]["jobs"] == 2
    assert report["bySubModel"]["text-to-image"]["creditsNet"] == 8
    mine = (await client.get(f"{API}/report", params={"orgId": tenant.org_id}, headers=op)).json()
    assert mine["totals"] == report["totals"]
    assert (await client.get(f"{API}/report", params={"orgId": "org_nope"}, headers=op)).status_code == 404
    empty = (await client.get(f"{API}/report", params={"since": "2999-01-01T00:00:00Z"}, headers=op)).json()
    assert (empty["byDay"], empty["totals"]["jobs"]) == ([], 0)


async def test_the_document_describes_the_admin_api(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    admin = {path for path in document["paths"] if path.startswith(API)}
    assert f"{API}/orgs/{{orgId}}/credits/grants" in admin
    assert len(admin) >= 11
    grant = document["paths"][f"{API}/orgs/{{orgId}}/credits/grants"]["post"]
    assert {"201", "400", "401", "403", "404", "422"} <= set(grant["responses"])
    assert any(parameter["name"] == "Idempotency-Key" for parameter in grant["parameters"])
