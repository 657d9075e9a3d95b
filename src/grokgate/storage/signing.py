"""Expiring HMAC-signed media links, shareable without the API key (like a presigned URL). Plain functions."""

from __future__ import annotations

import hashlib
import hmac
import math
import time

BUCKET_SECONDS = 3600


def _mac(secret: str, media_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def expiry(ttl: float, now: float | None = None) -> int:
    """`now + ttl`, rounded up to the hour, so that links issued close together are equal and cache well."""
    moment = (now if now is not None else time.time()) + ttl
    return int(math.ceil(moment / BUCKET_SECONDS) * BUCKET_SECONDS)


def sign(secret: str, media_id: str, expires: int) -> str:
    return f"exp={expires}&sig={_mac(secret, media_id, expires)}"


def verify(secret: str, media_id: str, expires: str | None, signature: str | None, now: float | None = None) -> bool:
    if not expires or not signature or not expires.isdigit():
        return False
    if int(expires) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_mac(secret, media_id, int(expires)), signature)
