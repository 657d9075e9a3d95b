"""`GET /api/v1/models` (what is sold: sub-models, their fields, ranges and price rules) and `POST /api/v1/quote`
(what a request would cost, computed exactly as the charge is, with nothing charged), so clients and web pages need
no hard-coded lists or prices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from grokgate.api.responses import AUTHENTICATED, errors, json_body
from grokgate.api.state import services_of
from grokgate.jobs.endpoints import parse_body
from grokgate.jobs.schemas import GenerateRequest
from grokgate.jobs.spec import build_spec
from grokgate.orgs.auth import Generate, JobsRead
from grokgate.orgs.service import read_org

router = APIRouter(prefix="/api/v1", tags=["catalogue"], responses=AUTHENTICATED)


class ModelList(BaseModel):
    object: str = "list"
    data: list[dict[str, Any]]
    version: int


class Quote(BaseModel):
    model: str
    kind: str
    creditsCharged: int
    creditsRemaining: int
    input: dict[str, Any]


@router.get(
    "/models", summary="The sub-models sold here, with their fields, ranges and price rules", response_model=ModelList
)
async def list_models(request: Request, _caller: JobsRead) -> JSONResponse:
    catalogue = services_of(request).settings.catalogue
    return JSONResponse({"object": "list", "data": catalogue.listing(), "version": catalogue.version})


@router.post(
    "/quote",
    summary="What a generation request would cost, without running or charging it",
    responses={200: {"model": Quote, "description": "The price, as it would be charged"}, **errors(400, 413)},
    openapi_extra=json_body(GenerateRequest),
)
async def quote(request: Request, caller: Generate) -> JSONResponse:
    body, _ = await parse_body(request, GenerateRequest)
    services = services_of(request)
    spec = build_spec(
        body, max_image_url_bytes=services.settings.max_image_url_bytes, catalogue=services.settings.catalogue
    )
    remaining = (await services.db.quick_read(lambda tx: read_org(tx, caller.org_id))).credits_remaining
    return JSONResponse(
        {
            "model": spec.model,
            "kind": spec.kind,
            "creditsCharged": spec.price,
            "creditsRemaining": remaining,
            "input": {k: v for k, v in spec.echo().items() if k not in ("image_url", "image_urls")},
        }
    )
