"""an account's time zone; a card's validity start and block

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

`accounts.time_zone` (an IANA name, Europe/London unless the Store Owner sets another) is the zone of every
time the dashboard shows and exports, and of the 3 am expiry rule. `cards.validity_start_time` is when a sold
card may first be used (NULL: at once); `cards.blocked_reason` and `cards.blocked_at` say a card is stopped
(lost, stolen, fraud, replaced) and since when (NULL: not blocked).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE accounts ADD COLUMN time_zone VARCHAR(64) DEFAULT 'Europe/London' NOT NULL")
    op.execute("ALTER TABLE cards ADD COLUMN validity_start_time TIMESTAMP WITH TIME ZONE")
    op.execute("ALTER TABLE cards ADD COLUMN blocked_reason VARCHAR(20)")
    op.execute("ALTER TABLE cards ADD COLUMN blocked_at TIMESTAMP WITH TIME ZONE")
    op.execute(
        "ALTER TABLE cards ADD CONSTRAINT ck_cards_blocked_together CHECK ((blocked_reason IS NULL) = (blocked_at IS NULL))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE cards DROP CONSTRAINT ck_cards_blocked_together")
    for column in ("blocked_at", "blocked_reason", "validity_start_time"):
        op.execute(f"ALTER TABLE cards DROP COLUMN {column}")
    op.execute("ALTER TABLE accounts DROP COLUMN time_zone")
