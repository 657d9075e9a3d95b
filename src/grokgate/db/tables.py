"""Imports every domain's tables, so that `Base.metadata` is complete for migrations and tests."""

from grokgate.billing.models import LedgerEntry
from grokgate.db.base import Base
from grokgate.jobs.models import Job
from grokgate.orgs.models import ApiKey, Organization

metadata = Base.metadata

__all__ = ["ApiKey", "Job", "LedgerEntry", "Organization", "metadata"]
