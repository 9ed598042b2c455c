"""the outbox's rows without foreign keys to the account and the webhook endpoint

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

A till's redemption for an account with a webhook endpoint writes its `card.balance_adjusted` delivery in its
own statement; the delivery's keys to the account and to the endpoint took a shared lock on those two rows,
every till's the same, at each one (the same cost migration 0011 took off the ledger's inserts). Neither row is
ever deleted (an endpoint is disabled, not removed): the statements that write a delivery read the endpoint they
name, in the account they write for, and `ledger verify` (`references`) reports a delivery naming an endpoint
missing or of another account. An email's or delivery's card and order keep their keys.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DROPPED = (
    ("fk_outbox_messages_account_id_accounts", "account_id", "accounts"),
    ("fk_outbox_messages_endpoint_id_webhook_endpoints", "endpoint_id", "webhook_endpoints"),
)


def upgrade() -> None:
    for name, _, _ in DROPPED:
        op.execute(f"ALTER TABLE outbox_messages DROP CONSTRAINT {name}")


def downgrade() -> None:
    for name, column, referred in DROPPED:
        op.execute(
            f"ALTER TABLE outbox_messages ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {referred} (id)"
        )
