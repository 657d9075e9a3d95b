"""Each organisation's jobs in flight kept as a number on its row, so that a job's opening reads one value to check
the plan's concurrent limit instead of counting the organisation's active jobs.

The count read every job in flight on every opening: at 1,000 in flight on PostgreSQL it cost the server 0.5 ms
(a third of its CPU per image) and grew with the load. The number is kept by triggers on `jobs`, not by the code
that writes jobs, so every way a job enters or leaves `pending`/`processing` (an opening, the single ending in
`repository.finish_in`, a deletion, an operator's hand-written SQL) moves it in the same statement, and no path
can forget to. Openings already lock the organisation's row for the charge, so reading the number after that
lock is as safe against racing requests as the count was.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "('pending', 'processing')"
"""`jobs.states.ACTIVE` (a test checks they agree)."""

BACKFILL = f"""
UPDATE organizations SET active_jobs = (
    SELECT count(*) FROM jobs WHERE jobs.org_id = organizations.id AND jobs.status IN {ACTIVE}
)
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER jobs_active_inserted AFTER INSERT ON jobs WHEN NEW.status IN {ACTIVE}
    BEGIN UPDATE organizations SET active_jobs = active_jobs + 1 WHERE id = NEW.org_id; END""",
    f"""CREATE TRIGGER jobs_active_updated AFTER UPDATE OF status, org_id ON jobs
    WHEN (OLD.status IN {ACTIVE}) <> (NEW.status IN {ACTIVE}) OR OLD.org_id <> NEW.org_id
    BEGIN
        UPDATE organizations SET active_jobs = active_jobs - 1 WHERE id = OLD.org_id AND OLD.status IN {ACTIVE};
        UPDATE organizations SET active_jobs = active_jobs + 1 WHERE id = NEW.org_id AND NEW.status IN {ACTIVE};
    END""",
    f"""CREATE TRIGGER jobs_active_deleted AFTER DELETE ON jobs WHEN OLD.status IN {ACTIVE}
    BEGIN UPDATE organizations SET active_jobs = active_jobs - 1 WHERE id = OLD.org_id; END""",
]

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION grokgate_count_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status IN {ACTIVE} THEN
        UPDATE organizations SET active_jobs = active_jobs - 1 WHERE id = OLD.org_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN {ACTIVE} THEN
        UPDATE organizations SET active_jobs = active_jobs + 1 WHERE id = NEW.org_id;
    END IF;
    RETURN NULL;
END
$$
"""

# The WHEN clauses keep every other write to a job (a poll's reschedule, a lease, pending to processing) from
# calling the function or touching the organisation's row at all.
POSTGRES_TRIGGERS = [
    f"""CREATE TRIGGER jobs_active_inserted AFTER INSERT ON jobs FOR EACH ROW
    WHEN (NEW.status IN {ACTIVE}) EXECUTE FUNCTION grokgate_count_active()""",
    f"""CREATE TRIGGER jobs_active_updated AFTER UPDATE OF status, org_id ON jobs FOR EACH ROW
    WHEN ((OLD.status IN {ACTIVE}) <> (NEW.status IN {ACTIVE}) OR OLD.org_id <> NEW.org_id)
    EXECUTE FUNCTION grokgate_count_active()""",
    f"""CREATE TRIGGER jobs_active_deleted AFTER DELETE ON jobs FOR EACH ROW
    WHEN (OLD.status IN {ACTIVE}) EXECUTE FUNCTION grokgate_count_active()""",
]

OPEN_JOB = """
CREATE OR REPLACE FUNCTION grokgate_open_job(
    p_org text, p_price integer, p_now timestamptz, p_most integer, p_active text[], p_job json
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    active integer;
BEGIN
    -- The charge: one conditional UPDATE, which also takes the organisation's row lock and reads its jobs in
    -- flight as the last opening or ending to hold that lock left them.
    UPDATE organizations SET credits_remaining = credits_remaining - p_price, updated_at = p_now
     WHERE id = p_org AND credits_remaining - p_price >= 0 AND suspended_at IS NULL
    RETURNING active_jobs INTO active;
    IF NOT FOUND THEN
        RETURN NULL;  -- refused: the caller reads why (402 or 403)
    END IF;
    IF active >= p_most THEN  -- undoes the charge with the rest of the call
        RAISE EXCEPTION USING ERRCODE = 'GG429', MESSAGE = active::text;
    END IF;
    INSERT INTO ledger_entries (org_id, kind, amount, movement_key, job_id, note, created_at)
    VALUES (p_org, 'charge', -p_price, 'charge:' || (p_job ->> 'id'), p_job ->> 'id', NULL, p_now);
    INSERT INTO jobs SELECT * FROM json_populate_record(NULL::jobs, p_job);  -- the trigger counts it
    RETURN active;
END
$$
"""
"""`p_active` is no longer read; the signature stays so that a process of the previous version, still running
during a rolling deploy, calls the same function."""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("active_jobs", sa.Integer(), nullable=False, server_default="0"))
    if postgres:  # no job may start or end between the count and the triggers
        op.execute("LOCK TABLE organizations, jobs IN SHARE ROW EXCLUSIVE MODE")
    op.execute(BACKFILL)
    if postgres:
        op.execute(POSTGRES_FUNCTION)
        for trigger in POSTGRES_TRIGGERS:
            op.execute(trigger)
        op.execute(OPEN_JOB)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in ("jobs_active_inserted", "jobs_active_updated", "jobs_active_deleted"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON jobs" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS grokgate_count_active()")
        counting = importlib.import_module("grokgate.migrations.versions.0012_open_job_function")
        op.execute(counting.OPEN_JOB)  # the opening that counts
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: recreating `organizations` would trip the foreign
    # keys that point at it
    op.execute("ALTER TABLE organizations DROP COLUMN active_jobs")
