"""webhook endpoints and deliveries through the outbox (issue 19)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

`webhook_endpoints`: an account's receivers (URL, the events chosen, the secret and, during a rotation's
overlap, the previous one; enabled or not, and since when it has been failing). A webhook delivery is a row of
the one outbox, `outbox_messages`, with `channel` 'webhook' (emails: 'email'), its endpoint, its event's id
(from `webhook_event_ids`: one id per event, the same on every endpoint and every attempt) and the last
attempt's HTTP status and response excerpt. Two partial indexes serve the claim's order rule (a delivery waits
while an earlier one to the same endpoint for the same card, or the same order, is still queued), one the
webhook sender's scan of each endpoint's due rows, one the delivery log. The emails' own indexes (due
messages, a card's and an order's messages) now cover emails only (`channel = 'email'`, as their queries say):
a webhook delivery, written with every till redemption an endpoint wants, is kept out of them.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE webhook_endpoints (
    id BIGSERIAL NOT NULL,
    account_id BIGINT NOT NULL,
    url VARCHAR(300) NOT NULL,
    events VARCHAR(40)[] NOT NULL,
    secret VARCHAR(100) NOT NULL,
    previous_secret VARCHAR(100),
    previous_secret_until TIMESTAMP WITH TIME ZONE,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    failing_since TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_webhook_endpoints PRIMARY KEY (id),
    CONSTRAINT fk_webhook_endpoints_account_id_accounts FOREIGN KEY(account_id) REFERENCES accounts (id),
    CONSTRAINT ck_webhook_endpoints_events_chosen CHECK (cardinality(events) > 0),
    CONSTRAINT ck_webhook_endpoints_previous_together CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL))
);
CREATE INDEX ix_webhook_endpoints_account ON webhook_endpoints (account_id);
CREATE SEQUENCE webhook_event_ids;
ALTER TABLE outbox_messages ADD COLUMN channel VARCHAR(10) DEFAULT 'email' NOT NULL;
ALTER TABLE outbox_messages ADD COLUMN endpoint_id BIGINT;
ALTER TABLE outbox_messages ADD COLUMN event_id BIGINT;
ALTER TABLE outbox_messages ADD COLUMN last_status INTEGER;
ALTER TABLE outbox_messages ADD COLUMN last_response TEXT;
ALTER TABLE outbox_messages ADD CONSTRAINT fk_outbox_messages_endpoint_id_webhook_endpoints
    FOREIGN KEY(endpoint_id) REFERENCES webhook_endpoints (id);
ALTER TABLE outbox_messages ADD CONSTRAINT ck_outbox_messages_channel_known
    CHECK (channel IN ('email', 'webhook') AND (channel = 'webhook') = (endpoint_id IS NOT NULL)
           AND (channel = 'webhook') = (event_id IS NOT NULL));
CREATE INDEX ix_outbox_messages_webhooks_due ON outbox_messages (endpoint_id, next_attempt_at, id)
    WHERE state = 'queued' AND channel = 'webhook';
CREATE INDEX ix_outbox_messages_queued_card ON outbox_messages (endpoint_id, card_id, id)
    WHERE state = 'queued' AND endpoint_id IS NOT NULL AND card_id IS NOT NULL;
CREATE INDEX ix_outbox_messages_queued_order ON outbox_messages (endpoint_id, order_id, id)
    WHERE state = 'queued' AND endpoint_id IS NOT NULL AND order_id IS NOT NULL;
CREATE INDEX ix_outbox_messages_endpoint ON outbox_messages (account_id, endpoint_id, id)
    WHERE endpoint_id IS NOT NULL;
DROP INDEX ix_outbox_messages_due;
CREATE INDEX ix_outbox_messages_due ON outbox_messages (next_attempt_at) WHERE state = 'queued' AND channel = 'email';
DROP INDEX ix_outbox_messages_card;
CREATE INDEX ix_outbox_messages_card ON outbox_messages (account_id, card_id) WHERE channel = 'email';
DROP INDEX ix_outbox_messages_order;
CREATE INDEX ix_outbox_messages_order ON outbox_messages (account_id, order_id) WHERE channel = 'email'
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM outbox_messages WHERE channel = 'webhook'")
    op.execute("DROP INDEX ix_outbox_messages_due, ix_outbox_messages_card, ix_outbox_messages_order")
    op.execute("CREATE INDEX ix_outbox_messages_due ON outbox_messages (next_attempt_at) WHERE state = 'queued'")
    op.execute("CREATE INDEX ix_outbox_messages_card ON outbox_messages (account_id, card_id)")
    op.execute("CREATE INDEX ix_outbox_messages_order ON outbox_messages (account_id, order_id)")
    op.execute("DROP INDEX ix_outbox_messages_endpoint, ix_outbox_messages_queued_order")
    op.execute("DROP INDEX ix_outbox_messages_queued_card, ix_outbox_messages_webhooks_due")
    op.execute("ALTER TABLE outbox_messages DROP CONSTRAINT ck_outbox_messages_channel_known")
    for column in ("last_response", "last_status", "event_id", "endpoint_id", "channel"):
        op.execute(f"ALTER TABLE outbox_messages DROP COLUMN {column}")
    op.execute("DROP SEQUENCE webhook_event_ids")
    op.execute("DROP TABLE webhook_endpoints")
