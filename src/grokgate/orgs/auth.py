"""The FastAPI dependency that turns `Authorization: Bearer <key>` into a `Caller`, or the seed's 401s."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from grokgate.api.state import services_of
from grokgate.orgs.service import Caller, authenticate


async def current_caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Caller:
    async with services_of(request).db.reader() as session:
        return await authenticate(session, authorization)


CallerDep = Annotated[Caller, Depends(current_caller)]
