"""card lifecycle: imported cards, aliases, PINs, replacement (issue 17)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

`cards.pin` (never written) becomes `cards.pin_hash`: a card's PIN is kept only as a keyed hash
(auth/pins.py). `products.pin_digits` (4 to 8, NULL: no PIN) asks for a PIN generated on each sale of the
product. An alias now names at most one card of an account (`uq_cards_account_alias`, partial: cards without
one are not indexed), replacing the plain index on it. `card_imports` records each imported file by its SHA-256
(one row per account and file, so the same file is never imported twice) with the transaction that holds its
opening balances; `imported_cards` keeps what the file said of each card that has no column on `cards` (its
row, purchaser, recipient's name, notes).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE cards DROP COLUMN pin;
ALTER TABLE cards ADD COLUMN pin_hash VARCHAR(100);
ALTER TABLE products ADD COLUMN pin_digits SMALLINT;
ALTER TABLE products ADD CONSTRAINT ck_products_pin_digits_range
    CHECK (pin_digits IS NULL OR pin_digits BETWEEN 4 AND 8);
DROP INDEX ix_cards_account_alias;
CREATE UNIQUE INDEX uq_cards_account_alias ON cards (account_id, alias) WHERE alias IS NOT NULL;
CREATE TABLE card_imports (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    file_sha256 VARCHAR(64) NOT NULL,
    file_name VARCHAR(300) NOT NULL,
    cards INTEGER NOT NULL,
    total BIGINT NOT NULL,
    transaction_id BIGINT NOT NULL,
    user_id BIGINT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_card_imports PRIMARY KEY (id),
    CONSTRAINT uq_card_imports_account_file UNIQUE (account_id, file_sha256),
    CONSTRAINT fk_card_imports_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_card_imports_transaction_id_transactions FOREIGN KEY(transaction_id) REFERENCES transactions (id),
    CONSTRAINT fk_card_imports_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE TABLE imported_cards (
    card_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    card_import_id BIGINT NOT NULL,
    row_number INTEGER NOT NULL,
    purchaser_name VARCHAR(200),
    purchaser_email VARCHAR(320),
    recipient_name VARCHAR(200),
    notes TEXT,
    CONSTRAINT pk_imported_cards PRIMARY KEY (card_id),
    CONSTRAINT fk_imported_cards_card_id_cards FOREIGN KEY(card_id) REFERENCES cards (id),
    CONSTRAINT fk_imported_cards_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_imported_cards_card_import_id_card_imports FOREIGN KEY(card_import_id) REFERENCES card_imports (id)
);
CREATE INDEX ix_imported_cards_account_import ON imported_cards (account_id, card_import_id);
"""

DOWNGRADE = """
DROP TABLE imported_cards;
DROP TABLE card_imports;
DROP INDEX uq_cards_account_alias;
CREATE INDEX ix_cards_account_alias ON cards (account_id, alias);
ALTER TABLE products DROP CONSTRAINT ck_products_pin_digits_range;
ALTER TABLE products DROP COLUMN pin_digits;
ALTER TABLE cards DROP COLUMN pin_hash;
ALTER TABLE cards ADD COLUMN pin VARCHAR(12);
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE.split(";"):
        if statement.strip():
            op.execute(statement)
