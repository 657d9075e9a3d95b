"""The FastAPI dependency in front of every customer route: who is calling, may they, and are they within limits.

Order matters and is the same everywhere: the key (401), its scope (403), then the plan's rate limits (429), so a
request that is refused costs the caller nothing and is never charged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from grokgate.api.state import services_of
from grokgate.db.base import utcnow
from grokgate.orgs.scopes import require
from grokgate.orgs.service import Caller, authenticate, touch_key


def caller_with(scope: str) -> Any:
    async def dependency(
        request: Request,
        authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    ) -> Caller:
        services = services_of(request)
        async with services.db.reader() as session:
            caller = await authenticate(session, authorization)
        require(caller.scopes, scope)
        if services.key_usage.due(caller.key_id):
            async with services.db.transaction() as session:
                await touch_key(
                    session, caller.key_id, not_since=utcnow() - timedelta(seconds=services.key_usage.every)
                )
        plan = services.settings.plans.get(caller.plan) or services.settings.plans["default"]
        verdict = await services.limiter.hit(caller.org_id, plan)
        if verdict is not None:
            request.state.rate_headers = verdict.headers()
        return caller

    return Depends(dependency)


Generate = Annotated[Caller, caller_with("generate")]
JobsRead = Annotated[Caller, caller_with("jobs:read")]
JobsWrite = Annotated[Caller, caller_with("jobs:write")]
AccountRead = Annotated[Caller, caller_with("account:read")]
