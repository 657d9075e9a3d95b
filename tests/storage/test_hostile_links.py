"""Media links as a hostile client writes them: every malformed `exp` or `sig` (Unicode digits, thousands of
digits, negative, empty, non-hex, wrong length, bytes that are not UTF-8...) is a 403 `INVALID_SIGNATURE` in the
common error body, on the same kept-alive connection: no 500, and the server never hangs up."""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import parse_qs, quote, quote_from_bytes, urlsplit

import h11
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import Gateway


class KeptAlive:
    """One TCP connection to the server, spoken to with h11: a response that ends the connection (a close, a
    `Connection: close`, a cut mid-body) fails the request instead of being papered over by a reconnect."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.conn = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def get(self, target: str) -> tuple[int, bytes]:
        request = h11.Request(method="GET", target=target, headers=[("Host", "127.0.0.1")])
        self.sock.sendall(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))
        status, body = 0, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError(f"the server closed the connection answering {target}")
        assert self.conn.their_state is h11.DONE, f"the server ended keep-alive answering {target} ({status})"
        self.conn.start_next_cycle()
        return status, body


def encoded(text: str) -> str:
    return quote(text, safe="")


_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60).map(encoded)
_RAW_BYTES = st.binary(max_size=40).map(lambda data: quote_from_bytes(data, safe=""))
_UNICODE_DIGITS = st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=12).map(encoded)

MALFORMED_EXP = st.one_of(
    st.sampled_from(
        ["", "\u00b2", "\u0661\u0667" + "\u0660" * 8, "-1", "+1700000000", " 1700000000", "1e10", "1_700_000_000"]
    ).map(encoded),
    st.integers(max_value=0).map(str),
    st.integers(min_value=10**12).map(str),
    st.integers(min_value=13, max_value=6000).map(lambda digits: "9" * digits),
    _UNICODE_DIGITS,
    _ANY_TEXT,
    _RAW_BYTES,
)
_HEX = "0123456789abcdef"
MALFORMED_SIG = st.one_of(
    st.sampled_from(["", "0" * 39, "0" * 41, "g" * 40, "Z" * 40, "é" * 40, "\x00" * 40, "0" * 5000]).map(encoded),
    st.text(alphabet=_HEX, max_size=80).filter(lambda sig: len(sig) != 40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=40, max_size=40).map(encoded),
    _ANY_TEXT,
    _RAW_BYTES,
)


async def test_malformed_exp_or_sig_is_403_and_keeps_the_connection(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    url = (await gateway.generate(tenant, {"prompt": "hostile", "model": "text-to-image"})).json()["imageUrl"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    good_exp, good_sig = query["exp"][0], query["sig"][0]
    near_misses = [
        ("0" + good_exp, good_sig),  # the same number, not the form that was signed
        (good_exp, good_sig.upper()),
        (good_exp, good_sig + "0"),
        (good_exp, good_sig[:-1]),
        (good_exp + "0" * 5000, good_sig),
        ("\u00b2" * 5000, good_sig),
    ]
    near_misses = [(encoded(exp), encoded(sig)) for exp, sig in near_misses]
    pairs = st.one_of(
        st.tuples(MALFORMED_EXP, st.one_of(st.just(good_sig), MALFORMED_SIG)),
        st.tuples(st.just(good_exp), MALFORMED_SIG),
        st.sampled_from(near_misses),
    )
    connection = KeptAlive(gateway.server.port)

    def refused(exp: str, sig: str) -> None:
        target = f"{parts.path}?exp={exp}&sig={sig}"
        status, body = connection.get(target)
        assert status == 403, (target[:200], status, body[:300])
        answer = json.loads(body)
        assert answer["code"] == "INVALID_SIGNATURE"
        assert set(answer) == {"error", "code", "details"}

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(pairs)
    def every_malformed_pair(pair: tuple[str, str]) -> None:
        exp, sig = pair
        assume((exp, sig) != (good_exp, good_sig))
        refused(exp, sig)

    try:
        for exp, sig in near_misses:
            await asyncio.to_thread(refused, exp, sig)
        await asyncio.to_thread(every_malformed_pair)
        # The same connection still serves the real link.
        status, _ = await asyncio.to_thread(connection.get, f"{parts.path}?{parts.query}")
        assert status == 200
    finally:
        connection.close()
