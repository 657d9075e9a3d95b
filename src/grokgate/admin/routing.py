"""What every admin write route shares: the id header, its documentation, and running the write once by it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from grokgate.admin.writes import Answer, Work, run_once
from grokgate.api.responses import errors, json_body
from grokgate.api.state import services_of

NO_NUL = r"^[^\x00]*$"
"""Text that reaches the database as a bind value: PostgreSQL refuses a NUL in text, so it is a 400 here."""
PathId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]

ID_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    "description": "Client-chosen id of this write: a repeat is answered again (`Idempotent-Replayed: true`) "
    "and changes nothing",
}
REPLAYED = {
    "Idempotent-Replayed": {"description": "`true` on a repeat of an earlier write", "schema": {"type": "string"}}
}
WRITE_ERRORS = errors(
    400, 404, 409, 422, says={404: "NOT_FOUND", 409: "IDEMPOTENCY_IN_PROGRESS", 422: "IDEMPOTENCY_KEY_REUSED"}
)


def write_doc(model: type[BaseModel] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": [ID_HEADER]}
    return {**json_body(model), **extra} if model is not None else extra


def answer_doc(model: type[BaseModel], status: int, what: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": what, "headers": REPLAYED}}


def answered(answer: Answer) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


async def run_write(request: Request, key: str | None, digest: str, work: Work, **kwargs: Any) -> JSONResponse:
    return answered(await run_once(services_of(request).db, key, digest, work, **kwargs))


def id_header(request: Request) -> str | None:
    return request.headers.get("idempotency-key")
