"""PostgreSQL: a job's opening (charge, ledger row, active-job count, job row) as one function call.

Why: on PostgreSQL every round trip costs the gateway about 70 microseconds of CPU, and opening a job took five
(`BEGIN`, the charge, its ledger row, the job's INSERT, `COMMIT`). The function does the same statements, in the
same order and under the same lock, in one. Each statement of a (volatile) PL/pgSQL function reads with a snapshot
taken when it starts, so the count, taken after the charge's row lock, sees every job committed before the lock
was granted, as the separate statement did. The rules stay those of `billing/ledger.py` and `jobs/service.py`
(see `jobs/one_trip.py`); SQLite keeps the separate statements, which cost it microseconds.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_JOB = """
CREATE OR REPLACE FUNCTION grokgate_open_job(
    p_org text, p_price integer, p_now timestamptz, p_most integer, p_active text[], p_job json
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    active integer;
BEGIN
    -- The charge: one conditional UPDATE, which also takes the organisation's row lock.
    UPDATE organizations SET credits_remaining = credits_remaining - p_price, updated_at = p_now
     WHERE id = p_org AND credits_remaining - p_price >= 0 AND suspended_at IS NULL;
    IF NOT FOUND THEN
        RETURN NULL;  -- refused: the caller reads why (402 or 403)
    END IF;
    SELECT count(*) INTO active FROM jobs WHERE org_id = p_org AND status = ANY (p_active);
    IF active >= p_most THEN  -- undoes the charge with the rest of the call
        RAISE EXCEPTION USING ERRCODE = 'GG429', MESSAGE = active::text;
    END IF;
    INSERT INTO ledger_entries (org_id, kind, amount, movement_key, job_id, note, created_at)
    VALUES (p_org, 'charge', -p_price, 'charge:' || (p_job ->> 'id'), p_job ->> 'id', NULL, p_now);
    INSERT INTO jobs SELECT * FROM json_populate_record(NULL::jobs, p_job);
    RETURN active;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(OPEN_JOB)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS grokgate_open_job(text, integer, timestamptz, integer, text[], json)")
