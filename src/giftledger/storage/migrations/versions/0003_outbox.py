"""the outbox, card pages and branding

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Every outbound message is a row of `outbox_messages`, written in the transaction of the change that causes it,
holding the whole message as it will be sent (so a resend after a crash is byte for byte the same, with the same
Message-ID). `card_pages` maps the hash of a card page's secret token to its card. `account_branding` holds a
merchant's colour and logo for emails and card pages.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE outbox_messages (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    kind VARCHAR(40) NOT NULL,
    recipient VARCHAR(320) NOT NULL,
    subject VARCHAR(300) NOT NULL,
    message_id VARCHAR(255) NOT NULL,
    content BYTEA NOT NULL,
    card_id BIGINT,
    order_id BIGINT,
    state VARCHAR(10) NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
    locked_until TIMESTAMP WITH TIME ZONE,
    last_error TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    sent_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_outbox_messages PRIMARY KEY (id),
    CONSTRAINT uq_outbox_messages_message_id UNIQUE (message_id),
    CONSTRAINT ck_outbox_messages_state_known CHECK (state IN ('queued', 'sent', 'failed')),
    CONSTRAINT fk_outbox_messages_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_outbox_messages_card_id_cards FOREIGN KEY(card_id) REFERENCES cards (id),
    CONSTRAINT fk_outbox_messages_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)
);
CREATE INDEX ix_outbox_messages_due ON outbox_messages (next_attempt_at) WHERE state = 'queued';
CREATE INDEX ix_outbox_messages_card ON outbox_messages (account_id, card_id);
CREATE INDEX ix_outbox_messages_order ON outbox_messages (account_id, order_id);
CREATE TABLE card_pages (
    token_hash VARCHAR(64) NOT NULL,
    account_id BIGINT NOT NULL,
    card_id BIGINT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_card_pages PRIMARY KEY (token_hash),
    CONSTRAINT fk_card_pages_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT fk_card_pages_card_id_cards FOREIGN KEY(card_id) REFERENCES cards (id)
);
CREATE INDEX ix_card_pages_card ON card_pages (account_id, card_id);
CREATE TABLE account_branding (
    account_id BIGINT NOT NULL,
    colour VARCHAR(7) NOT NULL,
    logo BYTEA,
    logo_type VARCHAR(40),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_account_branding PRIMARY KEY (account_id),
    CONSTRAINT ck_account_branding_colour_hex CHECK (colour ~ '^#[0-9a-f]{6}$'),
    CONSTRAINT fk_account_branding_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id)
)
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE account_branding, card_pages, outbox_messages")
