"""Installing the consoles on the app (the customer's at `/`, the operator's at `/admin`): their templates, static
files, login throttle and page routes.

Built by the app factory, like everything else: nothing here runs at import time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from grokgate.accounts.throttle import LoginThrottle
from grokgate.config import Settings


class SignInRequired(Exception):
    """A page needs a signed-in member; answered with a redirect to the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


@dataclass(frozen=True)
class Console:
    settings: Settings
    templates: Environment
    throttle: LoginThrottle

    @property
    def secure_cookies(self) -> bool:
        """Cookies go over TLS only when customers reach us over TLS (a proxy in front terminating it)."""
        return self.settings.base_url.startswith("https://")

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.session_ttl)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def install(app: FastAPI, settings: Settings) -> None:
    from grokgate.api.routing import add_routes
    from grokgate.web import account_pages, billing_pages, job_pages, key_pages
    from grokgate.web.operator import common, money_pages, ops_pages, org_pages, sign_in

    templates = Environment(
        loader=PackageLoader("grokgate.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.state.console = Console(
        settings=settings,
        templates=templates,
        throttle=LoginThrottle(
            settings.redis_url, per_email=settings.login_limit_email, per_address=settings.login_limit_address
        ),
    )

    async def sign_in_first(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/login?next={exc.back_to}", status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_first)
    app.add_exception_handler(common.OperatorSignInRequired, common.sign_in_first)
    for module in (account_pages, job_pages, key_pages, billing_pages, sign_in, org_pages, ops_pages, money_pages):
        add_routes(app, module.router)
    app.mount("/static", StaticFiles(packages=[("grokgate.web", "static")]), name="static")
