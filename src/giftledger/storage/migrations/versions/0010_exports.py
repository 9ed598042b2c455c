"""data exports prepared in the background (issue 18)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

`export_jobs`: one row per export asked for from the dashboard (Data > Exports), queued, then claimed and written
to a CSV file under the data directory by a server process's exporter (services/exports.py), which records how
many rows it has written so far (the page's progress) and, when it is done, the file's name or the failure.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE export_jobs (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    kind VARCHAR(30) NOT NULL,
    starts_on DATE,
    ends_on DATE,
    at TIMESTAMP WITH TIME ZONE,
    user_id BIGINT,
    state VARCHAR(10) NOT NULL,
    rows_expected BIGINT,
    rows_written BIGINT DEFAULT 0 NOT NULL,
    file_name VARCHAR(200),
    error TEXT,
    locked_until TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_export_jobs PRIMARY KEY (id),
    CONSTRAINT ck_export_jobs_state_known CHECK (state IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT fk_export_jobs_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_export_jobs_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_export_jobs_account_created ON export_jobs (account_id, created_at);
CREATE INDEX ix_export_jobs_due ON export_jobs (id) WHERE state IN ('queued', 'running');
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE export_jobs")
