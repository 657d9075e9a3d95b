"""The FastAPI dependency in front of every admin route: an operator token (401) with the scope it needs (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from grokgate.admin.tokens import READ, WRITE, Operator, authenticate
from grokgate.api.responses import errors
from grokgate.api.state import services_of
from grokgate.errors import ApiError

ADMIN_AUTHENTICATED = errors(
    401,
    403,
    503,
    says={
        401: "MISSING_AUTH, INVALID_FORMAT, TOKEN_NOT_FOUND or TOKEN_REVOKED (customer API keys are never accepted)",
        403: "INSUFFICIENT_SCOPE (a read token on a write)",
    },
)


def operator_with(scope: str) -> Any:
    async def dependency(
        request: Request,
        authorization: Annotated[str | None, Header(description="Bearer <operator token>")] = None,
    ) -> Operator:
        async with services_of(request).db.reader() as session:
            operator = await authenticate(session, authorization)
        if not operator.may(scope):
            raise ApiError(
                403, "INSUFFICIENT_SCOPE", f"This operator token lacks the '{scope}' scope", {"required": scope}
            )
        return operator

    return Depends(dependency)


OperatorRead = Annotated[Operator, operator_with(READ)]
OperatorWrite = Annotated[Operator, operator_with(WRITE)]
