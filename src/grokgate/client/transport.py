"""What both transports share: turning httpx's answers and failures into the protocol's values."""

from __future__ import annotations

import json

import httpx

from grokgate import __version__
from grokgate.client.protocol import Reply, TransportFailure

USER_AGENT = f"grokgate-python/{__version__}"


def reply_of(response: httpx.Response, content: bytes) -> Reply:
    """The answer with its body parsed as JSON (None when it is empty or not JSON)."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = content.decode("utf-8", "replace")[:500]
    return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body)


def failure(error: Exception) -> TransportFailure:
    """A request that got no (whole) answer."""
    return TransportFailure(error, timeout=isinstance(error, httpx.TimeoutException))
