"""The admin API's bodies and answers on the wire. Bodies are strict (JSON types as documented, no unknown fields);
answers are declared so the OpenAPI document promises exactly what is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grokgate.billing.amounts import MAX_CREDITS
from grokgate.jobs.schemas import JobStatus, Whole

_NO_NUL = r"^[^\x00]*$"
"""PostgreSQL refuses a NUL in text: it is a 400 naming the field, never a database error."""
_STRICT = ConfigDict(extra="forbid", strict=True)
ClientId = Field(default=None, min_length=1, max_length=64, description="Client-chosen id of this write")


class OrgCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    credits: Whole = Field(default=0, ge=0, le=MAX_CREDITS, description="Initial credits (a ledger grant)")


class PlanChange(BaseModel):
    model_config = _STRICT
    plan: str = Field(min_length=1, max_length=40, pattern=_NO_NUL)


class CreditGrant(BaseModel):
    model_config = _STRICT
    credits: Whole = Field(ge=1, le=MAX_CREDITS)
    reason: str = Field(min_length=1, max_length=200, pattern=_NO_NUL, description="Kept as the ledger row's note")
    grantId: str | None = ClientId


class CreditRemoval(BaseModel):
    model_config = _STRICT
    credits: Whole = Field(ge=1, le=MAX_CREDITS)
    reason: str = Field(min_length=1, max_length=200, pattern=_NO_NUL, description="Kept as the ledger row's note")
    removalId: str | None = ClientId


class KeyCreate(BaseModel):
    model_config = _STRICT
    scopes: list[Literal["generate", "jobs:read", "jobs:write", "account:read"]] | None = Field(
        default=None, min_length=1, description="Default: all of them"
    )
    expiresInSeconds: Whole | None = Field(default=None, ge=1, le=10 * 365 * 86400)
    dailyCap: Whole | None = Field(default=None, ge=1, le=MAX_CREDITS, description="Credits per UTC day")
    monthlyCap: Whole | None = Field(default=None, ge=1, le=MAX_CREDITS, description="Credits per UTC month")


class Org(BaseModel):
    id: str
    name: str
    plan: str
    creditsRemaining: int
    suspended: bool
    suspendedAt: datetime | None
    createdAt: datetime
    updatedAt: datetime


class OrgDetail(Org):
    ledgerSum: int
    keys: int
    activeJobs: int


class OrgList(BaseModel):
    organizations: list[Org]
    total: int
    limit: int
    offset: int


class CreditMovement(BaseModel):
    orgId: str
    kind: Literal["grant", "removal"]
    credits: int
    reason: str
    id: str | None = Field(description="The client-chosen id (grantId / removalId / Idempotency-Key)")
    creditsRemaining: int


class Spent(BaseModel):
    day: int
    month: int


class Key(BaseModel):
    id: str
    orgId: str
    scopes: list[str]
    dailyCap: int | None
    monthlyCap: int | None
    spent: Spent
    createdAt: datetime
    expiresAt: datetime | None
    revokedAt: datetime | None
    lastUsedAt: datetime | None


class KeyCreated(Key):
    key: str | None = Field(description="The secret, shown once; null when a repeated request is answered again")


class KeyList(BaseModel):
    keys: list[Key]


class AdminJob(BaseModel):
    id: str
    orgId: str
    keyId: str | None
    subModel: str
    kind: str
    workflow: str
    status: JobStatus
    creditsCharged: int
    creditsRefunded: int
    costInUsdTicks: int | None
    error: dict[str, str] | None
    createdAt: datetime
    updatedAt: datetime
    finishedAt: datetime | None


class AdminJobList(BaseModel):
    jobs: list[AdminJob]
    total: int
    limit: int
    offset: int


class Delivery(BaseModel):
    id: str
    orgId: str
    jobId: str
    event: str
    url: str
    status: str
    attempts: int
    lastStatusCode: int | None
    lastError: str | None
    nextAttemptAt: datetime | None
    createdAt: datetime


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    total: int
    limit: int
    offset: int


class Credits(BaseModel):
    sold: int
    removed: int
    charged: int
    refunded: int
    used: int


class ReportLine(BaseModel):
    jobs: int
    credits: Credits
    revenueUsd: float
    upstreamCostUsd: float
    marginUsd: float


class ReportDay(ReportLine):
    day: str


class SubModelLine(BaseModel):
    jobs: int
    creditsNet: int
    revenueUsd: float
    upstreamCostUsd: float
    marginUsd: float


class Report(BaseModel):
    since: str
    until: str | None
    orgId: str | None
    creditUsd: float
    totals: ReportLine
    byDay: list[ReportDay]
    bySubModel: dict[str, SubModelLine]


def drop_secret(body: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a new key's answer for a repeat of its request: everything but the secret."""
    return {**body, "key": None}
