"""an export's file is kept for a while, then deleted: the job is 'expired'

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08

An export's file holds the account's cardholders' names and email addresses; it was kept for ever under
`$GIFTLEDGER_DATA_DIR/exports/`. The exporter now deletes it `GIFTLEDGER_EXPORT_RETENTION_DAYS` (7) after it was
written and marks the job 'expired' (services/exports.py); a partial index finds the finished jobs by age.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE export_jobs DROP CONSTRAINT ck_export_jobs_state_known")
    op.execute(
        "ALTER TABLE export_jobs ADD CONSTRAINT ck_export_jobs_state_known "
        "CHECK (state IN ('queued', 'running', 'done', 'failed', 'expired'))"
    )
    op.execute("CREATE INDEX ix_export_jobs_done ON export_jobs (finished_at) WHERE state = 'done'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_export_jobs_done")
    op.execute("UPDATE export_jobs SET state = 'done' WHERE state = 'expired'")
    op.execute("ALTER TABLE export_jobs DROP CONSTRAINT ck_export_jobs_state_known")
    op.execute(
        "ALTER TABLE export_jobs ADD CONSTRAINT ck_export_jobs_state_known "
        "CHECK (state IN ('queued', 'running', 'done', 'failed'))"
    )
