"""Where the SDK and the CLI find the gateway and the key: arguments, then `GROKGATE_API_KEY` /
`GROKGATE_BASE_URL`, then the file `grokgate login` writes in the user's config directory (readable by the user
only)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from grokgate.client.errors import GrokgateError

API_KEY_ENV = "GROKGATE_API_KEY"
BASE_URL_ENV = "GROKGATE_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Credentials:
    """An API key and the gateway it belongs to."""

    api_key: str
    base_url: str


class MissingCredentials(GrokgateError):
    """No API key in the arguments, the environment or the saved login."""


def credentials_file() -> Path:
    """`<user config dir>/grokgate/credentials.json` (on Linux `$XDG_CONFIG_HOME`, by default `~/.config`)."""
    return platformdirs.user_config_path("grokgate") / "credentials.json"


def saved(path: Path | None = None) -> Credentials | None:
    """What `grokgate login` stored, if anything readable is there."""
    try:
        data = json.loads((path or credentials_file()).read_text())
    except (OSError, ValueError):
        return None
    key, url = data.get("apiKey"), data.get("baseUrl")
    if not isinstance(key, str) or not isinstance(url, str):
        return None
    return Credentials(key, url)


def save(credentials: Credentials, path: Path | None = None) -> Path:
    """Write the credentials readable and writable by this user alone (0600; the directory 0700). An existing
    file is replaced whole, so a half-written key is never left behind."""
    target = path or credentials_file()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"apiKey": credentials.api_key, "baseUrl": credentials.base_url}, handle)
    os.replace(staging, target)
    return target


def resolve(api_key: str | None = None, base_url: str | None = None) -> Credentials:
    """The credentials to use: each of key and URL from the arguments, else the environment, else the saved login
    (the saved URL only with the saved key), else the local default URL."""
    stored = saved()
    key = api_key or os.environ.get(API_KEY_ENV) or (stored.api_key if stored else None)
    if not key:
        raise MissingCredentials(f"no API key: set {API_KEY_ENV} or run `grokgate login`")
    url = base_url or os.environ.get(BASE_URL_ENV)
    if url is None:
        url = stored.base_url if stored and stored.api_key == key else DEFAULT_BASE_URL
    return Credentials(key, url.rstrip("/"))
