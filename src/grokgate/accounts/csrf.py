"""CSRF tokens: the synchronizer pattern. Each session carries a random token; every form posts it back in a
hidden field (and page scripts send it as `X-CSRF-Token`), compared in constant time. A form shown before anyone
signed in (log in, sign up) uses the same check against a token kept in its own cookie (double submit).

Another site can make a browser send our cookies, but cannot read our pages to learn the token."""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf_token"
HEADER = "x-csrf-token"
COOKIE = "grokgate_csrf"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def valid(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
