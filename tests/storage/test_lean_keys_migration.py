"""Migration 0011 (the ledger's hot inserts without foreign keys to reference data) and its downgrade: the keys each
side holds, and the partial index of reversals, by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, text

from giftledger.services.context import Services
from giftledger.storage import migrate
from tests.support import create_postgres_database, drop_postgres_database, with_services

KEYS = """
SELECT conrelid::regclass::text, conname FROM pg_constraint
WHERE contype = 'f' AND conrelid::regclass::text IN ('transactions', 'line_items', 'audit_events')
ORDER BY 1, 2"""
REVERSES = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_line_items_reverses'"

AT_0011 = [
    ("line_items", "fk_line_items_account_id_cards"),
    ("line_items", "fk_line_items_order_id_orders"),
    ("line_items", "fk_line_items_reverses_line_item_id_line_items"),
    ("line_items", "fk_line_items_transaction_id_transactions"),
]
AT_0010 = [
    ("audit_events", "fk_audit_events_account_id_accounts"),
    ("audit_events", "fk_audit_events_site_id_sites"),
    *(
        ("line_items", f"fk_line_items_{key}")
        for key in (
            "account_id_accounts",
            "api_user_id_api_users",
            "card_id_cards",
            "merchant_id_merchants",
            "order_id_orders",
            "price_modifier_id_price_modifiers",
            "product_id_products",
            "reverses_line_item_id_line_items",
            "site_id_sites",
            "transaction_id_transactions",
            "user_id_users",
        )
    ),
    *(
        ("transactions", f"fk_transactions_{key}")
        for key in (
            "account_id_accounts",
            "api_user_id_api_users",
            "merchant_id_merchants",
            "site_id_sites",
            "user_id_users",
        )
    ),
]


@pytest.fixture
def empty_database(pg_base_url: str) -> Iterator[str]:
    url = create_postgres_database(pg_base_url)
    try:
        yield url
    finally:
        drop_postgres_database(pg_base_url, url)


def test_0011_drops_the_reference_keys_and_its_downgrade_restores_them(empty_database: str) -> None:
    async def work(services: Services) -> list[tuple[list[tuple[str, str]], str]]:
        seen = []

        def read(connection: Connection) -> None:
            keys = [(str(t), str(n)) for t, n in connection.execute(text(KEYS))]
            seen.append((keys, str(connection.execute(text(REVERSES)).scalar_one())))

        def downgrade(connection: Connection) -> None:
            command.downgrade(migrate.alembic_config(connection), "0010")

        for step in (None, downgrade, None):
            if step is None:
                await migrate.upgrade(services.db.engine)
            else:
                async with services.db.engine.begin() as conn:
                    await conn.run_sync(step)
            async with services.db.engine.connect() as conn:
                await conn.run_sync(read)
        return seen

    partial = (
        "CREATE UNIQUE INDEX uq_line_items_reverses ON public.line_items USING btree (account_id, "
        "reverses_line_item_id) WHERE (reverses_line_item_id IS NOT NULL)"
    )
    whole = (
        "CREATE UNIQUE INDEX uq_line_items_reverses ON public.line_items USING btree (account_id, "
        "reverses_line_item_id)"
    )
    assert with_services(empty_database, work) == [(AT_0011, partial), (AT_0010, whole), (AT_0011, partial)]
