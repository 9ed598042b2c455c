"""ledger safety (issue 5): idempotency keys; append-only line items on SQLite too

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

- The `idempotency_keys` table behind the `Idempotency-Key` request header (one row per account and key:
  the request's hash, who holds it while it runs, and the stored reply once it is done).
- SQLite gets the append-only rule PostgreSQL has had since 0001: triggers refuse UPDATE and DELETE on
  `line_items`. (A later SQLite batch migration that rebuilds `line_items` must create them again.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_APPEND_ONLY = {
    "line_items_append_only_update": "UPDATE",
    "line_items_append_only_delete": "DELETE",
}


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('running', 'done')", name=op.f("ck_idempotency_keys_state_known")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_idempotency_keys_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_account_created", ["account_id", "created_at"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for name, operation in SQLITE_APPEND_ONLY.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON line_items "
                f"BEGIN SELECT RAISE(ABORT, 'line_items are append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_account_created")
    op.drop_table("idempotency_keys")
