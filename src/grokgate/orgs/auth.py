"""The FastAPI dependency in front of every customer route: who is calling, may they, and are they within limits.

Order matters and is the same everywhere: the key (401), its scope (403), then the plan's rate limits (429), so a
request that is refused costs the caller nothing and is never charged.

A request without `Authorization` may instead carry a console member's session cookie: the web pages' scripts
call these same routes, as the member's organisation with every scope. Such a request that changes anything must
also send the session's CSRF token as `X-CSRF-Token` (403 `CSRF_FAILED` otherwise).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from grokgate.accounts import csrf, sessions
from grokgate.accounts.service import context_of
from grokgate.api.state import services_of
from grokgate.db.base import utcnow
from grokgate.errors import ApiError
from grokgate.orgs.scopes import require
from grokgate.orgs.service import Caller, authenticate_cached, touch_key


async def authorize(request: Request, scope: str) -> Caller:
    """Who is calling (API key or console session), checked for `scope` and counted against the plan's limits.

    Routes take it as a dependency (`JobsRead`, ...). The routes that submit work, and the two polls, call it
    themselves, with the `Authorization` header documented by hand (`AUTHORIZATION_HEADER`): FastAPI's solving of
    even this one dependency (its cache key, the header parameter's validation) was about a twentieth of an image
    request's CPU, and more of a poll's."""
    services = services_of(request)
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(sessions.COOKIE) if authorization is None else None
    member = None
    if cookie:
        async with services.db.reader() as session:
            member = await context_of(session, cookie)
    if member is not None:
        caller = member.caller
    else:
        caller = await authenticate_cached(services.db, services.auth_cache, authorization)
    changes = request.method not in ("GET", "HEAD", "OPTIONS")
    if member is not None and changes and not csrf.valid(member.csrf_token, request.headers.get(csrf.HEADER)):
        raise ApiError(403, "CSRF_FAILED", "X-CSRF-Token header missing or wrong for this session")
    require(caller.scopes, scope)
    if caller.key_id and services.key_usage.due(caller.key_id):
        async with services.db.transaction() as session:
            await touch_key(session, caller.key_id, not_since=utcnow() - timedelta(seconds=services.key_usage.every))
    plan = services.settings.plans.get(caller.plan) or services.settings.plans["default"]
    verdict = await services.limiter.hit(caller.org_id, plan)
    if verdict is not None:
        request.state.rate_headers = verdict.headers()
    return caller


AUTHORIZATION_HEADER = {
    "name": "authorization",
    "in": "header",
    "required": False,
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "Bearer <API key>",
        "title": "Authorization",
    },
    "description": "Bearer <API key>",
}
"""The header as the dependency's `Header` parameter puts it in the OpenAPI document, for routes that call
`authorize` themselves."""


def caller_with(scope: str) -> Any:
    async def dependency(
        request: Request,
        authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    ) -> Caller:
        return await authorize(request, scope)

    return Depends(dependency)


Generate = Annotated[Caller, caller_with("generate")]
JobsRead = Annotated[Caller, caller_with("jobs:read")]
JobsWrite = Annotated[Caller, caller_with("jobs:write")]
AccountRead = Annotated[Caller, caller_with("account:read")]
