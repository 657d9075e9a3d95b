"""The price table and the settings that shape it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from grokgate.config import Settings, async_database_url


def test_seed_prices_by_default() -> None:
    settings = Settings(database_url="sqlite:///x.db")
    assert settings.prices == {
        "text-to-image": 8,
        "text-to-video": 150,
        "image-to-video": 150,
    }


def test_prices_override_merges_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROKGATE_PRICES", '{"text-to-video": 200}')
    settings = Settings()
    assert settings.prices["text-to-video"] == 200
    assert settings.prices["text-to-image"] == 8


@pytest.mark.parametrize("prices", ['{"text-to-music": 5}', '{"text-to-image": 0}'])
def test_bad_prices_are_refused(monkeypatch: pytest.MonkeyPatch, prices: str) -> None:
    monkeypatch.setenv("GROKGATE_PRICES", prices)
    with pytest.raises(ValidationError):
        Settings()


def test_upstream_defaults_to_sandbox_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    monkeypatch.delenv("XAI_BASE_URL", raising=False)
    settings = Settings(port=9000)
    assert settings.upstream == "sandbox"
    assert settings.sandbox_mounted
    assert settings.upstream_base_url == "http://127.0.0.1:9000/sandbox/v1"
    monkeypatch.setenv("XAI_API_KEY", "xai-123")
    real = Settings()
    assert (real.upstream, real.upstream_base_url, real.sandbox_mounted) == ("xai", "https://api.x.ai/v1", False)


def test_plain_database_urls_map_to_async_drivers() -> None:
    assert async_database_url("sqlite:///var/a.db") == "sqlite+aiosqlite:///var/a.db"
    assert async_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert Settings(database_url="postgresql://u@h/db").database_url == "postgresql+asyncpg://u@h/db"
