"""Imports every domain's tables, so that `Base.metadata` is complete for migrations and tests."""

from grokgate.accounts.models import AuthSession, Invitation, Member, Membership, Operator
from grokgate.admin.models import AdminWrite, OperatorToken
from grokgate.billing.models import KeySpend, LedgerEntry
from grokgate.db.base import Base
from grokgate.idempotency.models import IdempotencyRecord
from grokgate.jobs.models import Job
from grokgate.orgs.models import ApiKey, Organization
from grokgate.storage.models import Media, ServerSecret
from grokgate.upstream.models import UpstreamKey
from grokgate.webhooks.models import WebhookAttempt, WebhookDelivery

metadata = Base.metadata

__all__ = [
    "AdminWrite",
    "ApiKey",
    "AuthSession",
    "IdempotencyRecord",
    "Invitation",
    "Job",
    "KeySpend",
    "LedgerEntry",
    "Media",
    "Member",
    "Membership",
    "Operator",
    "OperatorToken",
    "Organization",
    "ServerSecret",
    "UpstreamKey",
    "WebhookAttempt",
    "WebhookDelivery",
    "metadata",
]
