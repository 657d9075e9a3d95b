"""API key format and checks, as plain functions.

A key reads `gg_<id>_<secret>`: the id part finds the row, the secret is compared as a SHA-256 hash in
constant time. Only the hash is stored, so a copy of the database does not hand out working keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from grokgate.errors import ApiError

KEY_PREFIX = "gg"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    secret_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = f"key_{secrets.token_hex(8)}"
    secret = f"{KEY_PREFIX}_{key_id.removeprefix('key_')}_{secrets.token_urlsafe(24)}"
    return NewKey(key_id=key_id, secret=secret, secret_hash=hash_key(secret))


def key_id_of(key: str) -> str | None:
    """The row id a presented key claims to be, or None when it is not shaped like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return f"key_{parts[1]}"


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def bearer_token(authorization: str | None) -> str:
    """The key from an `Authorization` header, or the seed's 401 codes for a missing or malformed one."""
    if authorization is None or not authorization.strip():
        raise ApiError(401, "MISSING_AUTH", "Authorization header is required: 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(401, "INVALID_FORMAT", "Authorization header must be 'Bearer <key>'")
    return token
