"""Settings, read once from the environment by pydantic-settings and passed down explicitly.

Nothing reads `os.environ` elsewhere: the app factory, the CLI and the tests build a `Settings` and hand it to
whatever needs it, so two gateways with different settings can live in one test process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from grokgate.billing.amounts import MAX_CREDITS, MAX_PRICE
from grokgate.catalogue.catalogue import Catalogue
from grokgate.catalogue.catalogue import load as load_catalogue
from grokgate.ratelimits.plans import DEFAULT_PLANS, Plan, parse_plans
from grokgate.webhooks.schedule import DEFAULT_SCHEDULE, parse_schedule

DEFAULT_PRICES: dict[str, int] = {"text-to-image": 8, "text-to-video": 150, "image-to-video": 150}


def async_database_url(url: str) -> str:
    """Map the plain URLs operators write (`sqlite:///x.db`, `postgresql://...`) to the async drivers we ship."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GROKGATE_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///./var/grokgate.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: Literal["console", "json"] = "console"
    public_url: str | None = None
    """Base URL clients reach this server at; defaults to http://host:port."""

    upstream: Literal["xai", "sandbox"] | None = None
    xai_api_key: str | None = Field(default=None, validation_alias=AliasChoices("XAI_API_KEY", "xai_api_key"))
    xai_api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("XAI_API_KEYS", "xai_api_keys")
    )
    """More xAI keys (comma-separated), each another team's budget of requests per second; with `XAI_API_KEY` and
    the keys added by `grokgate admin upstream-key add`, they form the pool."""
    xai_base_url: str | None = Field(default=None, validation_alias=AliasChoices("XAI_BASE_URL", "xai_base_url"))
    xai_image_rps: int = Field(default=5, ge=0, le=1000)
    """Image submissions per second per key (xAI's limit per team: 5); 0 leaves them unpaced."""
    xai_video_rps: int = Field(default=1, ge=0, le=1000)
    """Video submissions per second per key (xAI's limit per team: 1); 0 leaves them unpaced."""
    xai_image_format: Literal["url", "b64_json"] = "url"
    """How images are asked of xAI: `url` (a temporary link, downloaded into storage) or `b64_json` (the bytes in
    the answer itself: one round trip and one connection to xAI's media host fewer per image)."""
    image_queue_wait: float = Field(default=30.0, ge=0)
    """Most seconds an image request waits for a key's pace before it is answered 503 `UPSTREAM_BUSY` (refunded)."""
    upstream_queue: int = Field(default=1000, ge=1)
    """Most requests of one kind a process holds waiting for a key's pace (503 `UPSTREAM_BUSY` past that)."""
    video_queue: int = Field(default=10000, ge=1)
    """Most videos queued in the database for a key's pace (503 `UPSTREAM_BUSY`, refunded, past that)."""
    submitter_concurrency: int = Field(default=4, ge=1, le=256)
    """Queued videos a background process sends at once (each waits for a key's pace)."""
    media_decoders: int = Field(default=1, ge=0, le=64)
    """Worker processes that check and measure downloaded results (and make videos' posters); 0 decodes in a thread
    instead."""
    upstream_timeout: float = 120.0
    """Seconds one upstream HTTP call may take (xAI renders an image in a few seconds, sometimes far more)."""
    upstream_retries: int = 3
    """Attempts for a call that is safe to repeat (polls, a submit refused with 429 or never sent)."""
    upstream_backoff: float = 0.5
    """Base seconds of the exponential back-off between those attempts."""

    poll_interval: float = 5.0
    """Seconds between two polls of one video."""
    poller_batch: int = 200
    poller_concurrency: int = 64
    run_poller: bool = True
    """Run the background work (poller, webhooks, sweeper) inside the API process; `grokgate worker` runs it alone."""
    shutdown_grace: float = 30.0
    """Seconds a stopping process gives in-flight requests before it closes them."""
    header_timeout: float = 10.0
    """Seconds a client has to send its request line and headers (408 and closed after that)."""
    max_header_bytes: int = 64 * 1024
    """Most bytes of request line and headers (431 and closed past that)."""
    body_timeout: float = 120.0
    """Seconds from a request's start by which its body must have arrived (408 after that)."""
    metrics_token: str | None = None
    """With it, `/metrics` on the API port answers a request bearing `Authorization: Bearer <token>`; without
    it, the API port has no `/metrics` at all (it shows business totals, such as credits charged)."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve `/metrics` on this separate port as well (no token), for a scraper on a private network."""
    metrics_host: str = "127.0.0.1"
    """Interface of the metrics port: loopback unless an operator opens it further."""
    credit_usd: float = 0.01
    """What one credit is sold for, in USD: the revenue side of `grokgate admin report`."""
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    """Seconds a successful API-key lookup is remembered in each process (0: never). A key revoked, or its caps or
    plan changed, is seen at once by the process that changed it and within this long by the others."""
    request_lease: float = 900.0
    """Seconds a request may work on its job: an image's deadline, and how long an unanswered `Idempotency-Key`
    claim is honoured. Must cover the worst-case image path (checked at start-up)."""
    job_lease: float = 60.0
    """Seconds a process owns a job it works on (a request talking to xAI, a poll, a download) without renewing
    it; renewed every third of it. A job whose process died is taken over, or refunded, within about this long."""
    video_deadline: float = 3600.0
    """Seconds after submission at which a video xAI never finished is failed and refunded."""

    catalogue_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("GROKGATE_CATALOGUE", "catalogue_file")
    )
    """A JSON catalogue of sub-models, fields and price rules replacing the shipped one (`catalogue/default.json`)."""
    prices: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    max_image_url_bytes: int = 20 * 1024 * 1024

    demo_credits: int = Field(default=1000, ge=0, le=MAX_CREDITS)

    data_dir: Path = Path("./var")
    """Where local media (`data_dir/media`) and download scratch space live."""
    storage_url: str | None = None
    """`s3://bucket/prefix` to keep media in an S3-compatible store (endpoint and keys from AWS_* variables)."""
    storage_presign: bool = False
    """With S3: media links redirect to presigned S3 URLs instead of being streamed through grokgate."""
    media_retention_days: float = 30.0
    media_url_ttl: float = 86400.0
    """Seconds a signed media link stays valid (rounded up to the hour)."""
    signing_secret: str | None = None
    """Key of media link signatures; when unset, one is generated once and kept in the database."""
    max_result_image_bytes: int = 50 * 1024 * 1024
    max_result_video_bytes: int = 1024 * 1024 * 1024
    sweep_interval: float = 300.0
    """Seconds between two runs of the media retention sweeper."""

    redis_url: str | None = None
    """Shared rate-limit counts across processes (`redis://127.0.0.1:6379/0`); in memory when unset. Also carries
    the news of changed jobs between processes (`jobs/notifications.py`)."""
    rate_limit_fail_open: bool = True
    """When the rate-limit store is down: let requests through (True) or answer 503 (False)."""
    plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS))

    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        default_factory=lambda: parse_schedule(DEFAULT_SCHEDULE)
    )
    webhook_allow_private: bool = False
    """Allow webhook URLs on loopback and private networks (development and tests only)."""
    webhook_timeout: float = 10.0
    max_wait_seconds: float = 60.0
    """Most a client may ask to wait with `Prefer: wait=N`."""
    max_waiters: int = 2000
    """Most clients this process holds open at once on jobs (event streams and `Prefer: wait`), all
    organisations together; each organisation's own share is its plan's `waiters`."""
    wait_recheck: float = Field(default=5.0, gt=0)
    """Seconds between two checks of the jobs held clients wait on, which ends a wait whose notification was lost
    (and, on SQLite without Redis, is how a change made by another process is seen)."""

    sandbox_video_seconds: float = 3.0
    """How long the sandbox pretends to render a video before it reports `done`."""

    signup: Literal["open", "invite", "off"] = "open"
    """Who may create a console account: anyone (a new organisation each), only people invited by a member, or
    nobody (invitations still add existing accounts)."""
    signup_credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    """Credits a new organisation made by sign-up starts with."""
    session_ttl: float = Field(default=14 * 86400.0, gt=0)
    """Seconds a console sign-in lasts."""
    login_limit_email: str = "10 per 5 minutes"
    login_limit_address: str = "50 per 5 minutes"
    """Sign-in attempts allowed per email address and per client address (`limits` notation), counted before the
    password is checked so that parallel guesses cannot outrun the count; a right password clears its email's count."""

    @field_validator("plans", mode="before")
    @classmethod
    def _parse_plans(cls, value: Any) -> Any:
        return parse_plans(value)

    @field_validator("xai_api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("login_limit_email", "login_limit_address")
    @classmethod
    def _parse_login_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError on nonsense, at start-up
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: Any) -> Any:
        return parse_schedule(value) if isinstance(value, str) else value

    @field_validator("prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            merged = dict(DEFAULT_PRICES)
            merged.update(value)
            return merged
        return value

    @field_validator("prices")
    @classmethod
    def _check_prices(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(DEFAULT_PRICES)
        if unknown:
            raise ValueError(f"unknown sub-model(s) in GROKGATE_PRICES: {sorted(unknown)}")
        if any(not 1 <= price <= MAX_PRICE for price in value.values()):
            raise ValueError(f"every price in GROKGATE_PRICES must be a positive integer, at most {MAX_PRICE}")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return async_database_url(value)

    _catalogue: Catalogue | None = PrivateAttr(default=None)

    @property
    def catalogue(self) -> Catalogue:
        """What is sold: the catalogue file (validated once, at start-up), with `GROKGATE_PRICES` on top."""
        assert self._catalogue is not None
        return self._catalogue

    @model_validator(mode="after")
    def _load_catalogue(self) -> Settings:
        table = load_catalogue(self.catalogue_file)
        if "prices" in self.model_fields_set:
            table = table.with_prices(self.prices)
        self._catalogue = table
        return self

    @model_validator(mode="after")
    def _choose_upstream(self) -> Settings:
        if self.upstream is None:
            self.upstream = "xai" if self.xai_api_key or self.xai_api_keys else "sandbox"
        if self.poll_interval <= 0:
            raise ValueError("GROKGATE_POLL_INTERVAL must be positive")
        if self.job_lease < 1:
            raise ValueError("GROKGATE_JOB_LEASE must be at least 1 second (it is renewed every third of it)")
        worst = self.worst_image_seconds
        if self.request_lease < worst:
            raise ValueError(
                f"GROKGATE_REQUEST_LEASE ({self.request_lease:g} s) must cover the worst-case image request, "
                f"{worst:g} s: GROKGATE_UPSTREAM_RETRIES ({self.upstream_retries}) attempts of "
                f"GROKGATE_UPSTREAM_TIMEOUT ({self.upstream_timeout:g} s) with back-off, for the generation and again "
                "for the download. Raise the lease or lower the timeout or retries"
            )
        if self.video_deadline <= self.poll_interval:
            raise ValueError(
                f"GROKGATE_VIDEO_DEADLINE ({self.video_deadline:g} s) must exceed GROKGATE_POLL_INTERVAL "
                f"({self.poll_interval:g} s)"
            )
        return self

    @property
    def worst_image_seconds(self) -> float:
        """The longest an image request can take: the wait for a key's pace, then each of its two upstream calls
        (the generation, then the download) tried `upstream_retries` times to the timeout, with the back-off
        between tries (for the generation, xAI's `Retry-After`, which the client honours up to 30 s)."""
        retries = max(1, self.upstream_retries)
        backoffs = [self.upstream_backoff * float(2**attempt) for attempt in range(retries - 1)]
        generation = retries * self.upstream_timeout + sum(max(pause * 1.5, 30.0) for pause in backoffs)
        generation += self.image_queue_wait
        download = retries * self.upstream_timeout + sum(backoffs)
        return float(generation + download)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sandbox_mounted(self) -> bool:
        """The sandbox runs inside this server when it is the upstream and nobody pointed us elsewhere."""
        return self.upstream == "sandbox" and not self.xai_base_url

    @property
    def upstream_base_url(self) -> str:
        if self.xai_base_url:
            return self.xai_base_url.rstrip("/")
        if self.upstream == "sandbox":
            return f"{self.base_url}/sandbox/v1"
        return "https://api.x.ai/v1"

    @property
    def upstream_api_keys(self) -> tuple[str, ...]:
        """The environment's keys for xAI or a standalone sandbox, without repeats; a mounted sandbox takes only
        the install's key, which the runtime reads from the database instead. With no key at all, a standalone
        sandbox is called with a placeholder (it takes any key unless told otherwise)."""
        given = dict.fromkeys(([self.xai_api_key] if self.xai_api_key else []) + list(self.xai_api_keys))
        if not given and self.upstream == "sandbox":
            return ("sandbox-key",)
        return tuple(given)

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None
