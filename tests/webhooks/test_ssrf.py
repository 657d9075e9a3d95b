"""The SSRF guard against addresses written to slip past it (IPv4 inside IPv6, port 0), and at send time: the
sender connects to the address it vetted, with the URL's name in `Host`, so a changed DNS answer cannot reach
an inner address."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from grokgate.db.engine import Database
from grokgate.orgs import service as orgs
from grokgate.webhooks.models import WebhookAttempt, WebhookDelivery
from grokgate.webhooks.outbox import enqueue
from grokgate.webhooks.schedule import parse_schedule
from grokgate.webhooks.sender import SenderSettings, WebhookSender
from grokgate.webhooks.urls import is_public
from tests.conftest import Gateway
from tests.support import LiveServer, counts
from tests.webhooks.receiver import Receiver

INNER_URLS = [
    "http://[::7f00:1]:{port}/hook",  # IPv4-compatible 127.0.0.1
    "http://[::ffff:7f00:1]:{port}/hook",  # IPv4-mapped 127.0.0.1
    "http://[64:ff9b::7f00:1]:{port}/hook",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::808:808]/hook",  # local-use NAT64 prefix
    "http://[2002:7f00:1::1]:{port}/hook",  # 6to4 of 127.0.0.1
    "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "http://[fec0::1]/hook",  # site-local
    "http://[ff02::1]/hook",  # multicast
    "http://[::]:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://224.0.0.1/hook",
    "http://192.0.2.1/hook",  # documentation
    "http://8.8.8.8:0/hook",  # port 0
    "https://8.8.8.8:0/hook",
]


@pytest.mark.parametrize("url", INNER_URLS)
async def test_inner_addresses_in_any_form_are_refused(gateway: Gateway, url: str) -> None:
    tenant = await gateway.tenant()
    before = await counts(gateway.db_url)
    body = {"prompt": "x", "model": "text-to-image", "webhookUrl": url.format(port=gateway.server.port)}
    response = await gateway.generate(tenant, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_URL"
    assert "webhookUrl" in response.json()["error"]
    assert await counts(gateway.db_url) == before


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: a public destination
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::ffff:8.8.8.8", True),
        ("::7f00:1", False),
        ("64:ff9b::a00:1", False),
        ("2002:c0a8:101::1", False),
        ("fec0::1", False),
        ("100.64.0.1", False),
    ],
)
def test_embedded_ipv4_decides(address: str, public: bool) -> None:
    assert is_public(address) is public


class Names:
    """DNS for names that only this test knows: the edge the guard starts from."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: no such name")
        return self.answers[host]


async def deliver_once(db_url: str, url: str, *, allow_private: bool, names: Names) -> WebhookDelivery:
    """One delivery of `url` through a real sender, to its end; the stored row."""
    db = Database(db_url)
    sender = WebhookSender(
        db, SenderSettings(schedule=parse_schedule("1h"), allow_private=allow_private), "test", resolver=names
    )
    try:
        async with db.transaction() as session:
            org = await orgs.create_org(session, "hooked", 0)
            delivery_id = await enqueue(session, org_id=org.id, job_id="job_x", url=url, event="job.completed", data={})
        assert await sender.round() == 1
        async with db.reader() as session:
            row = await session.get(WebhookDelivery, delivery_id)
            attempts = (
                await session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
            ).all()
        assert row is not None
        assert len(attempts) == 1
        return row
    finally:
        await sender.aclose()
        await db.dispose()


async def test_the_sender_connects_to_the_address_it_resolved(db_url: str) -> None:
    receiver = Receiver()
    async with LiveServer(receiver.app()) as hook:
        names = Names({"hooks.customer.test": ["127.0.0.1"]})
        url = f"http://hooks.customer.test:{hook.port}/hook"
        row = await deliver_once(db_url, url, allow_private=True, names=names)
    assert (row.status, row.last_status_code) == ("delivered", 204)
    [received] = receiver.received
    assert received.headers["host"] == f"hooks.customer.test:{hook.port}"
    assert names.asked == ["hooks.customer.test"]  # resolved once, by the guard, and connected to that answer


async def test_a_name_that_now_resolves_inside_is_never_connected_to(db_url: str) -> None:
    """It passed the check when the job was made; at send time its answer is an inner address."""
    receiver = Receiver()
    async with LiveServer(receiver.app()) as hook:
        for inner in ("127.0.0.1", "::ffff:127.0.0.1"):
            names = Names({"rebound.customer.test": [inner]})
            url = f"http://rebound.customer.test:{hook.port}/hook"
            row = await deliver_once(db_url, url, allow_private=False, names=names)
            assert row.status == "pending"
            assert row.last_status_code is None
            assert "non-public" in (row.last_error or "")
        await asyncio.sleep(0.1)
    assert receiver.received == []
