"""What the app factory builds once and every route reaches through `request.app.state`: no module globals."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from grokgate.config import Settings
from grokgate.db.engine import Database
from grokgate.jobs.service import JobService
from grokgate.upstream.base import Upstream


@dataclass
class Services:
    settings: Settings
    db: Database
    upstream: Upstream
    jobs: JobService


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
