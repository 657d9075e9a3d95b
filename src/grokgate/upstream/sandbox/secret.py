"""The mounted sandbox's API key: made once per install and kept in the database, so that every process sharing
it (`grokgate serve`, `grokgate worker`) calls the sandbox with the same key, and no customer knows it."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from grokgate.db.engine import Database
from grokgate.storage.models import ServerSecret

ROW_NAME = "sandbox_api_key"


async def sandbox_api_key(db: Database) -> str:
    """The key this database keeps, made by whichever process asked first."""
    for _ in range(2):
        try:
            async with db.transaction() as session:
                found = await session.get(ServerSecret, ROW_NAME)
                if found is not None:
                    return found.value
                value = f"xai-sandbox-{secrets.token_urlsafe(32)}"
                session.add(ServerSecret(name=ROW_NAME, value=value))
                return value
        except IntegrityError:
            continue  # another process made it at the same moment: read theirs
    raise RuntimeError("could not read or create the sandbox API key")
