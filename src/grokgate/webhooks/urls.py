"""The SSRF guard: a webhook URL must be http(s) and resolve only to public addresses.

Checked when a job is created (a clear 400 before any charge) and again before every delivery, since DNS answers
can change between the two. `GROKGATE_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rule for local development.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from grokgate.errors import ApiError


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_URL", f"webhookUrl: {message}", {"field": "webhookUrl"})


def is_public(address: str) -> bool:
    """Globally routable unicast only: no loopback, private, link-local (cloud metadata), CGNAT or reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_shape(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unbalanced "[" or "]" in the host part
        raise _invalid("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _invalid("must be an http(s) URL")
    if parts.username or parts.password:
        raise _invalid("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _invalid("has an invalid port") from None
    return host, port


async def check_webhook_url(url: str, *, allow_private: bool) -> str:
    if len(url) > 2048:
        raise _invalid("is longer than 2048 characters")
    host, port = check_shape(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _invalid(f"host {host!r} cannot be resolved") from None
    if not allow_private:
        for info in infos:
            address = str(info[4][0])
            if not is_public(address):
                raise _invalid(f"resolves to a non-public address ({address})")
    return url
