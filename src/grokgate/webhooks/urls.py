"""The SSRF guard: a webhook URL must be http(s) and resolve only to public addresses.

Checked when a job is created (a clear 400 before any charge) and again before every delivery, since DNS answers
can change between the two. The sender then connects to an address this check vetted, never to a name resolved
again (see `sender.py`), so a DNS answer that changes between the check and the connection (rebinding) cannot
reach an inner address. `GROKGATE_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rule for local development.

An address is public when neither it nor any IPv4 address it carries is special-purpose: an IPv6 address can
reach an IPv4 one through the IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::/96`) forms, where the IPv4
address is the real destination, and through 6to4 (`2002::/16`), Teredo (`2001::/32`) and the deprecated
IPv4-compatible form (`::a.b.c.d`), where it must be public as well as the IPv6 address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from grokgate.errors import ApiError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`(host, port) -> addresses`: DNS, the edge every address check starts from."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LOW_32_BITS = 0xFFFFFFFF


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_URL", f"webhookUrl: {message}", {"field": "webhookUrl"})


def _special(ip: IPAddress) -> bool:
    """In any special-purpose range (Python's `ipaddress` registry of them), or not globally routable."""
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_reserved
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip in _LOCAL_NAT64))
    )


def _reached(ip: IPAddress) -> list[IPAddress]:
    """Every address a connection to `ip` depends on: the IPv4 destination of a translated form, or `ip` and
    each IPv4 address it embeds."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & _LOW_32_BITS)]
    reached: list[IPAddress] = [ip]
    if ip.sixtofour is not None:
        reached.append(ip.sixtofour)
    if ip.teredo is not None:
        reached.extend(ip.teredo)
    if ip in _IPV4_COMPATIBLE:
        reached.append(ipaddress.IPv4Address(int(ip) & _LOW_32_BITS))
    return reached


def is_public(address: str) -> bool:
    """Globally routable unicast only, embedded IPv4 included: no loopback, private, link-local (cloud
    metadata), CGNAT, reserved, multicast or unspecified address, however it is written."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not any(_special(reached) for reached in _reached(ip))


def check_shape(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:  # an unbalanced "[" or "]" in the host part, or a port out of range
        raise _invalid("is not a valid URL with a valid port") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _invalid("must be an http(s) URL")
    if parts.username or parts.password:
        raise _invalid("must not carry credentials")
    if port == 0:
        raise _invalid("port 0 is not a port anything listens on")
    return host, port or (443 if parts.scheme == "https" else 80)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Destination:
    """A webhook URL's host and port, and the addresses it resolved to, each one vetted."""

    host: str
    port: int
    addresses: tuple[str, ...]


async def resolve_webhook_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Destination:
    """Check the URL's shape, resolve its host once, and refuse it if any address is not public."""
    if len(url) > 2048:
        raise _invalid("is longer than 2048 characters")
    host, port = check_shape(url)
    try:
        addresses = list(dict.fromkeys(await resolver(host, port)))
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        raise _invalid(f"host {host!r} cannot be resolved") from None
    if not addresses:
        raise _invalid(f"host {host!r} cannot be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise _invalid(f"resolves to a non-public address ({address})")
    return Destination(host, port, tuple(addresses))


async def check_webhook_url(url: str, *, allow_private: bool) -> str:
    await resolve_webhook_url(url, allow_private=allow_private)
    return url
