"""the ledger's hot inserts without foreign keys to reference data (issue 21)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

A till's redemption inserts a transaction, a line item and an audit record; each foreign key on them was a
look-up and a row lock (on the account, the merchant, the site and the API user: rows every till shares) at
every insert: 18 of them. Kept: a line item's card, now one key scoped by account, (account_id, card_id) ->
cards (account_id, id), which also says the card is the line item's own account's (it replaces the card's and
the account's keys); its transaction, order and reversed line item. Dropped: the keys to reference data that
is never deleted (the account, merchant, site, API user, user, product and price modifier). The statements
that write them read the rows they name, and `ledger verify` reports any that names a row missing or of
another account.

And `uq_line_items_reverses` (a line item is reversed at most once) holds only reversals: every other line
item was an entry of it with an empty key, written and never read.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# (table, constraint, column, referred table) of each key dropped
DROPPED = (
    ("transactions", "fk_transactions_account_id_accounts", "account_id", "accounts"),
    ("transactions", "fk_transactions_merchant_id_merchants", "merchant_id", "merchants"),
    ("transactions", "fk_transactions_site_id_sites", "site_id", "sites"),
    ("transactions", "fk_transactions_api_user_id_api_users", "api_user_id", "api_users"),
    ("transactions", "fk_transactions_user_id_users", "user_id", "users"),
    ("line_items", "fk_line_items_account_id_accounts", "account_id", "accounts"),
    ("line_items", "fk_line_items_card_id_cards", "card_id", "cards"),
    ("line_items", "fk_line_items_site_id_sites", "site_id", "sites"),
    ("line_items", "fk_line_items_merchant_id_merchants", "merchant_id", "merchants"),
    ("line_items", "fk_line_items_product_id_products", "product_id", "products"),
    ("line_items", "fk_line_items_price_modifier_id_price_modifiers", "price_modifier_id", "price_modifiers"),
    ("line_items", "fk_line_items_api_user_id_api_users", "api_user_id", "api_users"),
    ("line_items", "fk_line_items_user_id_users", "user_id", "users"),
    ("audit_events", "fk_audit_events_account_id_accounts", "account_id", "accounts"),
    ("audit_events", "fk_audit_events_site_id_sites", "site_id", "sites"),
)


def upgrade() -> None:
    op.execute("ALTER TABLE cards ADD CONSTRAINT uq_cards_account_id UNIQUE (account_id, id)")
    op.execute(
        "ALTER TABLE line_items ADD CONSTRAINT fk_line_items_account_id_cards "
        "FOREIGN KEY (account_id, card_id) REFERENCES cards (account_id, id)"
    )
    for table, name, _, _ in DROPPED:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE line_items DROP CONSTRAINT uq_line_items_reverses")
    op.execute(
        "CREATE UNIQUE INDEX uq_line_items_reverses ON line_items (account_id, reverses_line_item_id) "
        "WHERE reverses_line_item_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX uq_line_items_reverses")
    op.execute(
        "ALTER TABLE line_items ADD CONSTRAINT uq_line_items_reverses UNIQUE (account_id, reverses_line_item_id)"
    )
    for table, name, column, referred in DROPPED:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {referred} (id)")
    op.execute("ALTER TABLE line_items DROP CONSTRAINT fk_line_items_account_id_cards")
    op.execute("ALTER TABLE cards DROP CONSTRAINT uq_cards_account_id")
