"""card lifecycle: validity and expiry rules, breakage (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

A product's validity and expiry settings (domain/validity.py): when its cards become active
(`activation_delay_seconds` after purchase, and not before `valid_after`), when they expire (`expiry_kind`:
never, `expiry_period_days` after purchase, or on `expiry_date`) and how many days before expiry the holder
is reminded (`reminder_days`). A card keeps the reminder it was sold with (`expiry_reminder_days`) and the
expiry its reminder was sent for (`expiry_reminded_for`: one reminder per card per expiry). The expiry run
finds due cards by `ix_cards_expiry` (on expiry_time alone, so a till's balance change keeps its HOT update).
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE products ADD COLUMN activation_delay_seconds INTEGER DEFAULT 0 NOT NULL")
    op.execute("ALTER TABLE products ADD COLUMN valid_after DATE")
    op.execute("ALTER TABLE products ADD COLUMN expiry_kind VARCHAR(10) DEFAULT 'never' NOT NULL")
    op.execute("ALTER TABLE products ADD COLUMN expiry_period_days INTEGER")
    op.execute("ALTER TABLE products ADD COLUMN expiry_date DATE")
    op.execute("ALTER TABLE products ADD COLUMN reminder_days INTEGER")
    op.execute(
        "ALTER TABLE products ADD CONSTRAINT ck_products_validity_known CHECK ("
        "activation_delay_seconds >= 0 AND expiry_kind IN ('never', 'period', 'date')"
        " AND (expiry_kind <> 'period' OR expiry_period_days > 0)"
        " AND (expiry_kind <> 'date' OR expiry_date IS NOT NULL)"
        " AND (reminder_days IS NULL OR reminder_days > 0))"
    )
    op.execute("ALTER TABLE cards ADD COLUMN expiry_reminder_days INTEGER")
    op.execute("ALTER TABLE cards ADD COLUMN expiry_reminded_for TIMESTAMP WITH TIME ZONE")
    op.execute("CREATE INDEX ix_cards_expiry ON cards (expiry_time) WHERE expiry_time IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_cards_expiry")
    op.execute("ALTER TABLE cards DROP COLUMN expiry_reminded_for")
    op.execute("ALTER TABLE cards DROP COLUMN expiry_reminder_days")
    op.execute("ALTER TABLE products DROP CONSTRAINT ck_products_validity_known")
    for column in ("reminder_days", "expiry_date", "expiry_period_days", "expiry_kind", "valid_after"):
        op.execute(f"ALTER TABLE products DROP COLUMN {column}")
    op.execute("ALTER TABLE products DROP COLUMN activation_delay_seconds")
