"""Who a presented API key is, remembered for a few seconds so that a busy key is not looked up on every request.

Looking a key up costs a read transaction; with thousands of requests a second from a few keys that is most of the
database's work and a good share of the gateway's CPU. So a successful authentication is kept for `ttl` seconds
(`GROKGATE_AUTH_CACHE_SECONDS`, 5 by default; 0 turns the cache off). What that means for changes to a key:

- In the process that makes the change (revoking a key, editing its caps or scopes, changing the organisation's
  plan) it takes effect at once: the entries of the keys and organisations a committed transaction changed through
  the ORM are dropped when it commits, and a lookup that started before the drop does not put its answer back.
- In other processes (another `serve --workers` process, the admin CLI revoking a key) it takes effect within `ttl`.

Only the answer to a successful lookup is kept, under the SHA-256 of the whole presented token, so a wrong secret
is never answered from memory; an expiry time is checked on every hit. Money is not in it: suspension and balance
are checked by the charge itself.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from grokgate.db.base import utcnow
from grokgate.orgs.models import ApiKey, Organization

_DIRTY = "grokgate_auth_changed"


@dataclass(frozen=True)
class Entry:
    caller: Any
    """The `orgs.service.Caller` (typed loosely to keep this module below the service)."""
    expires_at: datetime | None
    stored: float


class AuthCache:
    def __init__(self, ttl: float, *, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._generation = 0

    @staticmethod
    def token_digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def generation(self) -> int:
        """Read before a lookup and passed to `put`: an answer read before a drop is not kept."""
        return self._generation

    def get(self, digest: str) -> Any | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if time.monotonic() - entry.stored > self.ttl or (
            entry.expires_at is not None and entry.expires_at <= utcnow()
        ):
            del self._entries[digest]
            return None
        return entry.caller

    def put(self, digest: str, caller: Any, expires_at: datetime | None, generation: int) -> None:
        if self.ttl <= 0 or generation != self._generation:
            return
        self._entries[digest] = Entry(caller, expires_at, time.monotonic())
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, *, key_ids: set[str], org_ids: set[str]) -> None:
        self._generation += 1
        for digest, entry in list(self._entries.items()):
            if entry.caller.key_id in key_ids or entry.caller.org_id in org_ids:
                del self._entries[digest]

    def watch(self, session_class: type[Session]) -> None:
        """Drop the entries a transaction of `session_class` changed, when it commits (see the module's docstring).
        Listens on the database's own session class, so that two apps in one process keep apart."""

        @event.listens_for(session_class, "after_flush")
        def _collect(session: Session, _context: Any) -> None:
            for row in (*session.dirty, *session.deleted):
                if isinstance(row, ApiKey):
                    session.info.setdefault(_DIRTY, []).append(("key", row.id))
                elif isinstance(row, Organization):
                    session.info.setdefault(_DIRTY, []).append(("org", row.id))

        @event.listens_for(session_class, "after_commit")
        def _drop(session: Session) -> None:
            changed = session.info.pop(_DIRTY, None)
            if changed:
                self.drop(
                    key_ids={id_ for kind, id_ in changed if kind == "key"},
                    org_ids={id_ for kind, id_ in changed if kind == "org"},
                )

        @event.listens_for(session_class, "after_rollback")
        def _forget(session: Session) -> None:
            session.info.pop(_DIRTY, None)
