"""Media object claims: one row per stored object, written by an ingest before it relies on the object, so that
the retention sweeper never deletes an object that a job about to be committed refers to.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_objects",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_media_objects")),
    )
    # Objects stored before this revision are claimed as of their newest reference, so the sweeper knows them.
    op.execute("INSERT INTO media_objects (key, claimed_at) SELECT key, max(created_at) FROM media GROUP BY key")


def downgrade() -> None:
    op.drop_table("media_objects")
