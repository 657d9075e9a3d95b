"""An index of the jobs that hold a lease, so that finding the ones whose lease ran out reads those few rows, not
every job in flight (`jobs/due.py`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    leased = sa.text("lease_expires_at IS NOT NULL")
    op.create_index("ix_jobs_leased", "jobs", ["lease_expires_at"], postgresql_where=leased, sqlite_where=leased)


def downgrade() -> None:
    op.drop_index("ix_jobs_leased", table_name="jobs")
