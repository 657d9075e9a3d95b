"""The app's routes stand in its own list (`api/routing.add_routes`), each as declared in its router."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from grokgate.api.app import create_app
from grokgate.api.routing import add_routes
from grokgate.config import Settings


def _router() -> APIRouter:
    router = APIRouter(prefix="/things", tags=["things"], responses={418: {"description": "a teapot"}})

    @router.get("/{thing_id}")
    async def read(thing_id: int) -> dict[str, int]:
        return {"thing": thing_id}

    @router.post("/{thing_id}")
    async def write(thing_id: int) -> dict[str, int]:
        return {"written": thing_id}

    return router


def test_added_routes_serve_and_document_as_an_included_router_does() -> None:
    added, included = FastAPI(), FastAPI()
    add_routes(added, _router())
    included.include_router(_router())
    assert added.openapi() == included.openapi()
    with TestClient(added) as served, TestClient(included) as reference:
        for method, path in [
            ("GET", "/things/7"),
            ("POST", "/things/7"),
            ("GET", "/things/x"),
            ("PUT", "/things/7"),
            ("GET", "/things/7/"),
            ("GET", "/nothing"),
        ]:
            got, expected = served.request(method, path), reference.request(method, path)
            assert (got.status_code, got.headers.get("allow"), got.content) == (
                expected.status_code,
                expected.headers.get("allow"),
                expected.content,
            ), (method, path)
        assert served.get("/things/7").json() == {"thing": 7}


def test_a_router_that_needs_its_inclusion_is_refused() -> None:
    async def check() -> None:
        pass

    guarded = APIRouter(dependencies=[Depends(check)])
    guarded.add_api_route("/x", check)
    with pytest.raises(ValueError, match="dependencies"):
        add_routes(FastAPI(), guarded)
    outer = APIRouter()
    outer.include_router(_router())
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), outer)


def test_the_gateway_matches_its_routes_in_its_own_list() -> None:
    """No router stands between a request and its route (FastAPI would walk each included router's routes)."""
    routes = create_app(Settings()).router.routes
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    assert [type(route).__name__ for route in routes if not hasattr(route, "path")] == []
    assert api_routes[0].path == "/api/v1/models/grok-imagine"
    assert all(hasattr(route, "path_regex") for route in routes)
