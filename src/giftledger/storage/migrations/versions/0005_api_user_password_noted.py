"""whether an API user's password was noted

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

The dashboard shows a new API user's password once, behind an "I have noted this password" tick. A user
created there starts with `password_noted` false until the tick is confirmed, and the integration page warns
about every user still false. Users that existed before this revision are taken as noted (nobody can tell
now), as are users created at the command line, where the operator sees the password.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_users ADD COLUMN password_noted BOOLEAN DEFAULT true NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE api_users DROP COLUMN password_noted")
