"""security (issue 6): cost budgets, card look-up misses, the audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

- `throttle_buckets`: the GraphQL cost budget of each caller (token bucket).
- `card_lookup_misses`: balance checks and adjustments naming a card that does not exist.
- `audit_events`: every mutation attempt, dashboard change and security event.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "throttle_buckets",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("available", sa.Float(), nullable=False),
        sa.Column("last_charge", sa.Float(), nullable=False),
        sa.Column("updated_epoch", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_throttle_buckets")),
    )
    op.create_table(
        "card_lookup_misses",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("client_address", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_card_lookup_misses_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_lookup_misses")),
    )
    with op.batch_alter_table("card_lookup_misses", schema=None) as batch_op:
        batch_op.create_index("ix_card_lookup_misses_subject_created", ["subject", "created_at"], unique=False)
        batch_op.create_index("ix_card_lookup_misses_address_created", ["client_address", "created_at"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", _ID, nullable=True),
        sa.Column("actor_name", sa.String(length=320), nullable=True),
        sa.Column("site_id", _ID, nullable=True),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("card", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("client_address", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_audit_events_account_id_accounts")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_audit_events_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_account_created", ["account_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_account_created")
    op.drop_table("audit_events")
    with op.batch_alter_table("card_lookup_misses", schema=None) as batch_op:
        batch_op.drop_index("ix_card_lookup_misses_address_created")
        batch_op.drop_index("ix_card_lookup_misses_subject_created")
    op.drop_table("card_lookup_misses")
    op.drop_table("throttle_buckets")
