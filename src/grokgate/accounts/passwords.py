"""Password hashing with argon2id (argon2-cffi), and the rule a new password must meet.

Hashing is deliberately slow (tens of milliseconds, tens of MiB), so it runs in a worker thread, off the event
loop. Nothing here knows who the password belongs to: members and operators use the same functions.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grokgate.errors import invalid_input

MIN_LENGTH = 10
MAX_LENGTH = 1024
"""Long enough for any passphrase; short enough that nobody can make us hash megabytes."""

_HASHER = PasswordHasher()
"""Stateless (holds only the parameters), so one is shared; argon2-cffi's defaults follow RFC 9106."""


@functools.cache
def _dummy_hash() -> str:
    """Verified against when an account does not exist, so a login takes as long whether or not it does. Made
    on first use, not at import: every `grokgate` command imports this module, and a hash costs half a second."""
    return _HASHER.hash("grokgate-dummy-password")


def check_new(password: str, field: str = "password") -> str:
    if len(password) < MIN_LENGTH:
        raise invalid_input(f"{field}: must be at least {MIN_LENGTH} characters", field)
    if len(password) > MAX_LENGTH:
        raise invalid_input(f"{field}: must be at most {MAX_LENGTH} characters", field)
    return password


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy_hash(), password[:MAX_LENGTH]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, spends the same time and answers False."""
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
