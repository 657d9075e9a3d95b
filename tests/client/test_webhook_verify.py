"""`grokgate.webhooks.verify` on a real delivery from the gateway: accepted as sent, refused when altered, signed
with another secret, or replayed later."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from grokgate.client import AsyncClient
from grokgate.webhooks import WebhookVerificationError, verify
from tests.support import LiveServer, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_webhooks import secret_of


async def test_a_real_delivery_verifies_and_tampering_does_not(gateway_factory: Callable[..., Any]) -> None:
    receiver = Receiver()
    async with (
        LiveServer(receiver.app()) as hook,
        gateway_factory(webhook_allow_private=True, webhook_retry_schedule="0.1s") as gw,
    ):
        tenant = await gw.tenant()
        async with AsyncClient(tenant.key, base_url=gw.server.url) as client:
            video = await client.videos.create("hooked", duration=1, webhook_url=f"{hook.url}/hook")
            await video.wait(timeout=30)
        await wait_for(lambda: len(receiver.accepted) == 1, what="the delivery")
        secret = await secret_of(gw.db_url, tenant.org_id)
    [delivery] = receiver.accepted
    event = verify(delivery.body, delivery.headers, secret)
    assert (event.type, event.data.id, event.data.status) == ("job.completed", video.id, "completed")
    assert event.id == delivery.headers["webhook-id"]
    assert event.data.video_url
    upper = {key.upper(): value for key, value in delivery.headers.items()}
    assert verify(delivery.body.decode(), upper, secret).data.id == video.id  # header names in any case

    altered = delivery.body.replace(b'"completed"', b'"failed"', 1)
    assert altered != delivery.body
    stale = {**delivery.headers, "webhook-timestamp": str(int(time.time()) - 600)}
    broken = {**delivery.headers, "webhook-signature": "v1"}
    missing = {k: v for k, v in delivery.headers.items() if k != "webhook-signature"}
    other_secret = "whsec_" + "A" * 43 + "="
    for body, headers, key in [
        (altered, delivery.headers, secret),
        (delivery.body, stale, secret),
        (delivery.body, broken, secret),
        (delivery.body, missing, secret),
        (delivery.body, delivery.headers, other_secret),
    ]:
        with pytest.raises(WebhookVerificationError):
            verify(body, headers, key)


def test_importing_the_verifier_loads_no_server_module() -> None:
    probe = (
        "import sys, grokgate.webhooks; "
        "names = ('sqlalchemy', 'fastapi', 'grokgate.db', 'grokgate.webhooks.sender'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(heavy)"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"
