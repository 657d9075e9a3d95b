"""Routers' routes placed in the app's own route list, rather than included as routers.

Why: FastAPI keeps an included router as one entry of the app's list and, on every request, walks the included
routers in order, checking each router's route-list version (a pass over its routes) and then every route inside
it with its own bookkeeping in the request's scope; a matched router's routes are matched once more to handle the
request. With the gateway's 85 routes in 22 routers that was about 40 % of the CPU of a request to a route near the
end of the list (py-spy, `/healthz` at 16 connections: 486 us a request). A route in the app's own list is matched
by one regular expression, as Starlette does.

Every router here sets its prefix, tags and error responses where it is made (`APIRouter(prefix=..., tags=...)`),
which FastAPI writes into each route as it is declared; such a router needs nothing from its inclusion, so its
routes can stand in the app's list as they are. A router that would (dependencies of its own, routers included in
it) is refused rather than served without them.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put `router`'s routes at the end of `app`'s own route list, in their order."""
    if router.dependencies:
        raise ValueError("a router with dependencies of its own must be included with app.include_router")
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise ValueError(f"{route!r} is not a plain route: include its router with app.include_router")
    app.router.routes.extend(router.routes)
