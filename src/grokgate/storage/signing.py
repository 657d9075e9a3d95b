"""Expiring HMAC-signed media links, shareable without the API key (like a presigned URL). Plain functions.

`verify` takes what a stranger typed in a query string, so it checks the form of both parameters before it does
any arithmetic or comparison with them: `str.isdigit()` accepts digits like `²` that `int()` refuses, `int()`
refuses 5,000 digits, and `hmac.compare_digest` raises on non-ASCII text. Any of those would be a 500 (and a
dropped connection) instead of the 403 a bad link deserves. Only the exact form `sign` writes is accepted: an
ASCII decimal without leading zeros, and 40 lowercase hex digits.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time

BUCKET_SECONDS = 3600
SIGNATURE_LENGTH = 40
_EXPIRY = re.compile(r"[1-9][0-9]{0,11}")  # up to the year 33658: anything longer was never signed here
_SIGNATURE = re.compile(rf"[0-9a-f]{{{SIGNATURE_LENGTH}}}")


def _mac(secret: str, media_id: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()
    return digest[:SIGNATURE_LENGTH]


def expiry(ttl: float, now: float | None = None) -> int:
    """`now + ttl`, rounded up to the hour, so that links issued close together are equal and cache well."""
    moment = (now if now is not None else time.time()) + ttl
    return int(math.ceil(moment / BUCKET_SECONDS) * BUCKET_SECONDS)


def sign(secret: str, media_id: str, expires: int) -> str:
    return f"exp={expires}&sig={_mac(secret, media_id, expires)}"


def parse_expiry(expires: str | None) -> int | None:
    """The expiry of a link as `sign` wrote it, or None for anything else."""
    if expires is None or not _EXPIRY.fullmatch(expires):
        return None
    return int(expires)


def verify(secret: str, media_id: str, expires: str | None, signature: str | None, now: float | None = None) -> bool:
    moment = parse_expiry(expires)
    if moment is None or signature is None or not _SIGNATURE.fullmatch(signature):
        return False
    if moment < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_mac(secret, media_id, moment).encode(), signature.encode())
