"""Fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server, database `test`); each test run
creates a fresh database beside it and drops it afterwards. With CI=true an unreachable PostgreSQL
fails the run; elsewhere those tests are skipped with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    DEFAULT_PG,
    Api,
    Demo,
    LiveServer,
    create_postgres_database,
    drop_postgres_database,
    logged_in,
    migrate_database,
    new_demo,
    postgres_reachable,
    start_server,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_base_url: str
) -> Iterator[str]:
    """A migrated database of each kind, shared by the session (tests isolate by account)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'giftledger.sqlite3'}"
        migrate_database(url)
        yield url
        return
    reason = postgres_reachable(pg_base_url)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {pg_base_url} is unreachable in CI: {reason}")
        pytest.skip(f"PostgreSQL at {pg_base_url} is unreachable: {reason}")
    url = create_postgres_database(pg_base_url)
    try:
        migrate_database(url)
        yield url
    finally:
        drop_postgres_database(pg_base_url, url)


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live `giftledger serve` process on the session database, over real HTTP. Every test reaches it from
    127.0.0.1, so the per-address login limit is lifted here (tests that refuse logins on purpose would
    otherwise lock out the rest), and so is the per-address card-miss limit; both are tested on servers of
    their own."""
    live = start_server(
        database_url,
        Path(tmp_path_factory.mktemp("server")),
        {"GIFTLEDGER_LOGIN_ADDRESS_FAILURE_LIMIT": "1000000", "GIFTLEDGER_CARD_MISS_ADDRESS_LIMIT": "1000000"},
    )
    yield live
    live.stop()


@pytest.fixture
def demo(database_url: str) -> Demo:
    """A fresh demo account for this test alone."""
    return new_demo(database_url)


@pytest.fixture
def api(server: LiveServer, demo: Demo) -> Api:
    """A till logged in as the demo account's PointOne API user."""
    return logged_in(server, demo)
