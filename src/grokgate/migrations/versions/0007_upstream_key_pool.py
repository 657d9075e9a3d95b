"""The upstream key pool: a row per xAI key (health and pace shared by every process); on each job the key that
created its xAI request, since only that key may poll it, and, for a video waiting for a key's pace, the request
to send; and xAI's progress percentage of a rendering video, as last polled.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upstream_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("hint", sa.String(length=8), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="active"),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("image_rps", sa.Integer(), nullable=True),
        sa.Column("video_rps", sa.Integer(), nullable=True),
        sa.Column("image_next_at", sa.Float(), nullable=False, server_default="0"),
        sa.Column("video_next_at", sa.Float(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_keys")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upstream_key_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("upstream_request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("progress")
        batch_op.drop_column("upstream_request")
        batch_op.drop_column("upstream_key_id")
    op.drop_table("upstream_keys")
