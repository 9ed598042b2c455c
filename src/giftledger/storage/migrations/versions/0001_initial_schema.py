"""initial schema (PostgreSQL)

Revision ID: 0001
Revises:
Create Date: 2026-12-07

Every table as giftledger.storage.tables and its neighbours define them, written as PostgreSQL's own DDL (a
snapshot: later revisions change it, this one never does), the fixed POS merchants, and the trigger that
makes line items append-only. Earlier revisions (which also served SQLite) were folded into this one before
any data shipped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# POS companies with fixed ids (copied here, not imported, so this migration never changes).
MERCHANTS = {
    6: "Access",
    12: "Centegra",
    13: "Jigsaw",
    19: "Vita Mojo",
    26: "Other (third party)",
    32: "Cunninghams",
    41: "iiko / Syrve",
    60: "PointOne",
    61: "Polaris",
}

TABLES = """
CREATE TABLE accounts (
    id BIGSERIAL NOT NULL,
    name VARCHAR(200) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_accounts PRIMARY KEY (id)
);

CREATE TABLE login_attempts (
    id BIGSERIAL NOT NULL,
    subject VARCHAR(400) NOT NULL,
    succeeded BOOLEAN NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_login_attempts PRIMARY KEY (id)
);

CREATE INDEX ix_login_attempts_subject_created ON login_attempts (subject, created_at);

CREATE TABLE merchants (
    id BIGINT NOT NULL,
    name VARCHAR(200) NOT NULL,
    CONSTRAINT pk_merchants PRIMARY KEY (id)
);

CREATE TABLE throttle_buckets (
    subject VARCHAR(200) NOT NULL,
    available FLOAT NOT NULL,
    last_charge FLOAT NOT NULL,
    updated_epoch FLOAT NOT NULL,
    CONSTRAINT pk_throttle_buckets PRIMARY KEY (subject)
);

CREATE TABLE users (
    id BIGSERIAL NOT NULL,
    email VARCHAR(320) NOT NULL,
    name VARCHAR(200) NOT NULL,
    password_hash VARCHAR(200) NOT NULL,
    token_version INTEGER DEFAULT '0' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT uq_users_email UNIQUE (email)
);

CREATE TABLE api_users (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    merchant_id BIGINT NOT NULL,
    username VARCHAR(100) NOT NULL,
    password_hash VARCHAR(200) NOT NULL,
    token_version INTEGER DEFAULT '0' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_api_users PRIMARY KEY (id),
    CONSTRAINT fk_api_users_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_api_users_merchant_id_merchants FOREIGN KEY(merchant_id) REFERENCES merchants (id),
    CONSTRAINT uq_api_users_username UNIQUE (username)
);

CREATE INDEX ix_api_users_account_merchant ON api_users (account_id, merchant_id);

CREATE TABLE card_lookup_misses (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    subject VARCHAR(100) NOT NULL,
    client_address VARCHAR(100),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_card_lookup_misses PRIMARY KEY (id),
    CONSTRAINT fk_card_lookup_misses_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_card_lookup_misses_address_created ON card_lookup_misses (client_address, created_at);

CREATE INDEX ix_card_lookup_misses_subject_created ON card_lookup_misses (subject, created_at);

CREATE TABLE contacts (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    email VARCHAR(320) NOT NULL,
    first_name VARCHAR(200),
    last_name VARCHAR(200),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_contacts PRIMARY KEY (id),
    CONSTRAINT fk_contacts_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_contacts_account_email ON contacts (account_id, email);

CREATE TABLE dashboard_sessions (
    id BIGSERIAL NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    user_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    csrf_token VARCHAR(64) NOT NULL,
    token_version INTEGER NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_dashboard_sessions PRIMARY KEY (id),
    CONSTRAINT uq_dashboard_sessions_token_hash UNIQUE (token_hash),
    CONSTRAINT fk_dashboard_sessions_user_id_users FOREIGN KEY(user_id) REFERENCES users (id),
    CONSTRAINT fk_dashboard_sessions_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_dashboard_sessions_user ON dashboard_sessions (user_id);

CREATE TABLE idempotency_keys (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    key VARCHAR(255) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    state VARCHAR(10) NOT NULL,
    owner VARCHAR(80) NOT NULL,
    locked_until TIMESTAMP WITH TIME ZONE NOT NULL,
    response_status INTEGER,
    response_body BYTEA,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_idempotency_keys PRIMARY KEY (id),
    CONSTRAINT uq_idempotency_keys_account_key UNIQUE (account_id, key),
    CONSTRAINT ck_idempotency_keys_state_known CHECK (state IN ('running', 'done')),
    CONSTRAINT fk_idempotency_keys_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_idempotency_keys_account_created ON idempotency_keys (account_id, created_at);

CREATE TABLE memberships (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role VARCHAR(40) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_memberships PRIMARY KEY (id),
    CONSTRAINT uq_memberships_account_user UNIQUE (account_id, user_id),
    CONSTRAINT fk_memberships_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_memberships_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE TABLE products (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    name VARCHAR(200) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_products PRIMARY KEY (id),
    CONSTRAINT fk_products_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_products_account ON products (account_id);

CREATE TABLE sites (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    name VARCHAR(200) NOT NULL,
    address VARCHAR(500) DEFAULT '' NOT NULL,
    reference VARCHAR(100) DEFAULT '' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_sites PRIMARY KEY (id),
    CONSTRAINT fk_sites_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
);

CREATE INDEX ix_sites_account ON sites (account_id);

CREATE TABLE audit_events (
    id BIGSERIAL NOT NULL,
    account_id BIGINT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor_kind VARCHAR(20) NOT NULL,
    actor_id BIGINT,
    actor_name VARCHAR(320),
    site_id BIGINT,
    operation VARCHAR(100) NOT NULL,
    card TEXT,
    outcome VARCHAR(20) NOT NULL,
    error_code VARCHAR(60),
    client_address VARCHAR(100),
    detail TEXT,
    CONSTRAINT pk_audit_events PRIMARY KEY (id),
    CONSTRAINT fk_audit_events_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_audit_events_site_id_sites FOREIGN KEY(site_id) REFERENCES sites (id)
);

CREATE INDEX ix_audit_events_account_created ON audit_events (account_id, created_at);

CREATE TABLE cards (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    card_reference VARCHAR(32) NOT NULL,
    alias VARCHAR(32),
    pin VARCHAR(12),
    currency VARCHAR(3) NOT NULL,
    status VARCHAR(10) NOT NULL,
    balance BIGINT DEFAULT '0' NOT NULL,
    tender_balance BIGINT DEFAULT '0' NOT NULL,
    discount_balance BIGINT DEFAULT '0' NOT NULL,
    initial_balance BIGINT DEFAULT '0' NOT NULL,
    product_id BIGINT,
    contact_id BIGINT,
    message TEXT,
    expiry_time TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_cards PRIMARY KEY (id),
    CONSTRAINT uq_cards_account_reference UNIQUE (account_id, card_reference),
    CONSTRAINT ck_cards_balance_not_negative CHECK (tender_balance >= 0 AND discount_balance >= 0 AND balance = tender_balance + discount_balance),
    CONSTRAINT ck_cards_status_known CHECK (status IN ('stock', 'active')),
    CONSTRAINT ck_cards_balance_within_limit CHECK (balance <= 2147483647),
    CONSTRAINT fk_cards_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_cards_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
    CONSTRAINT fk_cards_contact_id_contacts FOREIGN KEY(contact_id) REFERENCES contacts (id)
);

CREATE INDEX ix_cards_account_alias ON cards (account_id, alias);

CREATE TABLE consents (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    consent_copy TEXT NOT NULL,
    consented_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_consents PRIMARY KEY (id),
    CONSTRAINT fk_consents_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_consents_contact_id_contacts FOREIGN KEY(contact_id) REFERENCES contacts (id)
);

CREATE INDEX ix_consents_account_contact ON consents (account_id, contact_id);

CREATE TABLE price_modifiers (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    price BIGINT NOT NULL,
    description VARCHAR(200),
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_price_modifiers PRIMARY KEY (id),
    CONSTRAINT ck_price_modifiers_price_not_negative CHECK (price >= 0),
    CONSTRAINT fk_price_modifiers_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_price_modifiers_product_id_products FOREIGN KEY(product_id) REFERENCES products (id)
);

CREATE INDEX ix_price_modifiers_account_product ON price_modifiers (account_id, product_id);

CREATE TABLE site_mappings (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    site_id BIGINT NOT NULL,
    merchant_id BIGINT NOT NULL,
    epos_reference VARCHAR(100) NOT NULL,
    CONSTRAINT pk_site_mappings PRIMARY KEY (id),
    CONSTRAINT uq_site_mappings_reference UNIQUE (account_id, merchant_id, epos_reference),
    CONSTRAINT uq_site_mappings_site UNIQUE (account_id, merchant_id, site_id),
    CONSTRAINT fk_site_mappings_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_site_mappings_site_id_sites FOREIGN KEY(site_id) REFERENCES sites (id),
    CONSTRAINT fk_site_mappings_merchant_id_merchants FOREIGN KEY(merchant_id) REFERENCES merchants (id)
);

CREATE TABLE transactions (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    merchant_id BIGINT,
    merchant_transaction_reference VARCHAR(100),
    kind VARCHAR(20) NOT NULL,
    site_id BIGINT,
    api_user_id BIGINT,
    user_id BIGINT,
    note TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_transactions PRIMARY KEY (id),
    CONSTRAINT uq_transactions_reference UNIQUE (account_id, merchant_id, merchant_transaction_reference),
    CONSTRAINT fk_transactions_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_transactions_merchant_id_merchants FOREIGN KEY(merchant_id) REFERENCES merchants (id),
    CONSTRAINT fk_transactions_site_id_sites FOREIGN KEY(site_id) REFERENCES sites (id),
    CONSTRAINT fk_transactions_api_user_id_api_users FOREIGN KEY(api_user_id) REFERENCES api_users (id),
    CONSTRAINT fk_transactions_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE TABLE orders (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    transaction_id BIGINT NOT NULL,
    merchant_id BIGINT,
    site_id BIGINT,
    sales_channel_id INTEGER NOT NULL,
    currency VARCHAR(3) NOT NULL,
    total BIGINT NOT NULL,
    discount_total BIGINT NOT NULL,
    note TEXT,
    receipt_contact_id BIGINT,
    status VARCHAR(12) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_orders PRIMARY KEY (id),
    CONSTRAINT fk_orders_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_orders_transaction_id_transactions FOREIGN KEY(transaction_id) REFERENCES transactions (id),
    CONSTRAINT fk_orders_merchant_id_merchants FOREIGN KEY(merchant_id) REFERENCES merchants (id),
    CONSTRAINT fk_orders_site_id_sites FOREIGN KEY(site_id) REFERENCES sites (id),
    CONSTRAINT fk_orders_receipt_contact_id_contacts FOREIGN KEY(receipt_contact_id) REFERENCES contacts (id)
);

CREATE INDEX ix_orders_account_created ON orders (account_id, created_at);

CREATE TABLE line_items (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    card_id BIGINT NOT NULL,
    transaction_id BIGINT NOT NULL,
    order_id BIGINT,
    type_id INTEGER NOT NULL,
    value BIGINT NOT NULL,
    tender BIGINT NOT NULL,
    discount BIGINT NOT NULL,
    site_id BIGINT,
    merchant_id BIGINT,
    product_id BIGINT,
    price_modifier_id BIGINT,
    fulfilment_method_id INTEGER,
    reverses_line_item_id BIGINT,
    note TEXT,
    api_user_id BIGINT,
    user_id BIGINT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_line_items PRIMARY KEY (id),
    CONSTRAINT ck_line_items_value_adds_up CHECK (value <> 0 AND value = tender + discount),
    CONSTRAINT uq_line_items_reverses UNIQUE (account_id, reverses_line_item_id),
    CONSTRAINT fk_line_items_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_line_items_card_id_cards FOREIGN KEY(card_id) REFERENCES cards (id),
    CONSTRAINT fk_line_items_transaction_id_transactions FOREIGN KEY(transaction_id) REFERENCES transactions (id),
    CONSTRAINT fk_line_items_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id),
    CONSTRAINT fk_line_items_site_id_sites FOREIGN KEY(site_id) REFERENCES sites (id),
    CONSTRAINT fk_line_items_merchant_id_merchants FOREIGN KEY(merchant_id) REFERENCES merchants (id),
    CONSTRAINT fk_line_items_product_id_products FOREIGN KEY(product_id) REFERENCES products (id),
    CONSTRAINT fk_line_items_price_modifier_id_price_modifiers FOREIGN KEY(price_modifier_id) REFERENCES price_modifiers (id),
    CONSTRAINT fk_line_items_reverses_line_item_id_line_items FOREIGN KEY(reverses_line_item_id) REFERENCES line_items (id),
    CONSTRAINT fk_line_items_api_user_id_api_users FOREIGN KEY(api_user_id) REFERENCES api_users (id),
    CONSTRAINT fk_line_items_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_line_items_account_card ON line_items (account_id, card_id);

CREATE INDEX ix_line_items_account_created ON line_items (account_id, created_at);

CREATE INDEX ix_line_items_account_transaction ON line_items (account_id, transaction_id);
"""

APPEND_ONLY = (
    """
CREATE FUNCTION giftledger_line_items_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'line_items are append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql
""",
    """
CREATE TRIGGER line_items_append_only BEFORE UPDATE OR DELETE ON line_items
FOR EACH ROW EXECUTE FUNCTION giftledger_line_items_append_only()
""",
)


def upgrade() -> None:
    for statement in TABLES.split(";"):  # one statement at a time: each runs as a prepared statement
        if statement.strip():
            op.execute(statement)
    merchants = sa.table("merchants", sa.column("id", sa.BigInteger), sa.column("name", sa.String))
    op.bulk_insert(merchants, [{"id": mid, "name": name} for mid, name in MERCHANTS.items()])
    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE line_items, orders, transactions, site_mappings, price_modifiers, consents, cards, audit_events, sites, products, memberships, idempotency_keys, dashboard_sessions, contacts, card_lookup_misses, api_users, users, throttle_buckets, merchants, login_attempts, accounts")
    op.execute("DROP FUNCTION giftledger_line_items_append_only()")
