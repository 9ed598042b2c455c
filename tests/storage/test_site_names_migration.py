"""Migration 0004 (site names and references unique among an account's live sites) on a database that already
holds twins: it does not fail; the earliest site keeps its name and reference, each later twin gets the first free
" (n)" suffix; deleted sites and other accounts are untouched; afterwards the indexes refuse a new twin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, text

from giftledger.services.context import Services
from giftledger.storage import migrate
from giftledger.storage.database import ConstraintBroken
from tests.support import create_postgres_database, drop_postgres_database, with_services

SITES = [  # account, name, reference, deleted
    (1, "Soho", "SOHO", False),
    (1, "Leeds", "", False),
    (1, "soho ", "", False),  # stored before names were trimmed: not the same name
    (1, "SOHO", "SOHO", False),
    (1, "Soho (2)", "", False),  # the first suffix is already a site's name: the twin gets " (3)"
    (1, "Soho", "SOHO", True),  # deleted: kept as it is
    (1, "x" * 200, "", False),
    (1, "X" * 200, "", False),  # the suffix still fits the column
    (1, "Leeds 2", "", False),
    (2, "Soho", "SOHO", False),  # another account
]


@pytest.fixture
def old_database(pg_base_url: str) -> Iterator[str]:
    url = create_postgres_database(pg_base_url)
    try:
        yield url
    finally:
        drop_postgres_database(pg_base_url, url)


async def _at_0003_with_twins(services: Services) -> None:
    def work(connection: Connection) -> None:
        command.upgrade(migrate.alembic_config(connection), "0003")
        connection.execute(text("INSERT INTO accounts (id, name, created_at) VALUES (1, 'A', now()), (2, 'B', now())"))
        for account, name, reference, deleted in SITES:
            connection.execute(
                text(
                    "INSERT INTO sites (account_id, name, reference, created_at, deleted_at) "
                    "VALUES (:a, :n, :r, now(), CASE WHEN :d THEN now() END)"
                ),
                {"a": account, "n": name, "r": reference, "d": deleted},
            )

    async with services.db.engine.begin() as conn:
        await conn.run_sync(work)


async def _upgrade_and_read(services: Services) -> list[tuple[int, str, str, bool]]:
    await migrate.upgrade(services.db.engine)
    async with services.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT account_id, name, reference, deleted_at IS NOT NULL FROM sites ORDER BY id")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def _insert_twin(services: Services) -> str:
    try:
        async with services.db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO sites (account_id, name, reference, created_at) VALUES (1, 'LEEDS', '', now())")
            )
    except ConstraintBroken as broken:
        return broken.constraint
    return "accepted"


def test_existing_twins_are_renamed_and_the_indexes_hold(old_database: str) -> None:
    with_services(old_database, _at_0003_with_twins)
    assert with_services(old_database, _upgrade_and_read) == [
        (1, "Soho", "SOHO", False),
        (1, "Leeds", "", False),
        (1, "soho ", "", False),
        (1, "SOHO (3)", "SOHO (2)", False),
        (1, "Soho (2)", "", False),
        (1, "Soho", "SOHO", True),
        (1, "x" * 200, "", False),
        (1, "X" * 196 + " (2)", "", False),
        (1, "Leeds 2", "", False),
        (2, "Soho", "SOHO", False),
    ]
    assert with_services(old_database, _insert_twin) == "uq_sites_account_name"
