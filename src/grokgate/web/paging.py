"""A console list's page: the number asked for, clamped, turned into an offset, and drawn with its links.

Every list page of both consoles (history, billing, the operator's organisations, jobs and webhooks) reads its
`page` the same way, so the bound and the arithmetic live here once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

MAX_PAGE = 10_000
"""Past this a page number is taken as the last one allowed: its offset stays a small bind value."""


@dataclass(frozen=True)
class Paging:
    page: int
    size: int

    @classmethod
    def asked(cls, page: int, size: int) -> Paging:
        return cls(max(1, min(page, MAX_PAGE)), size)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def shown(self, total: int, path: str | None = None, kept: dict[str, str] | None = None) -> dict[str, Any]:
        """What the template draws: `total`, `page`, `pages` and, given the list's `path`, `page_link(n)` keeping
        the filters in `kept`."""
        context: dict[str, Any] = {"total": total, "page": self.page, "pages": max(1, -(-total // self.size))}
        if path is not None:
            context["page_link"] = lambda n: f"{path}?" + urlencode({**(kept or {}), "page": n})
        return context
