"""invitations; a dashboard session may wait for its account to be chosen

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Inviting a person creates a pending invitation they accept themselves (it no longer adds an existing login
to the account at once), and a person in several accounts chooses the account a session acts on.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE invitations (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    email VARCHAR(320) NOT NULL,
    name VARCHAR(200) NOT NULL,
    role VARCHAR(40) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    invited_by BIGINT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_invitations PRIMARY KEY (id),
    CONSTRAINT uq_invitations_token_hash UNIQUE (token_hash),
    CONSTRAINT fk_invitations_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_invitations_invited_by_users FOREIGN KEY(invited_by) REFERENCES users (id)
);
CREATE UNIQUE INDEX ix_invitations_account_email ON invitations (account_id, email);
CREATE INDEX ix_invitations_email ON invitations (email);
ALTER TABLE dashboard_sessions ALTER COLUMN account_id DROP NOT NULL
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM dashboard_sessions WHERE account_id IS NULL")
    op.execute("ALTER TABLE dashboard_sessions ALTER COLUMN account_id SET NOT NULL")
    op.execute("DROP TABLE invitations")
