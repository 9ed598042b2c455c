"""Fixtures for the ledger-safety tests: a live server without throttles, a fresh account per test with a till
signed in (tests/support.py signed_in), and `ledger verify` after every test that touched an account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.safety.helpers import start_safety_server, verify_ledger
from tests.support import Api, Demo, LiveServer, new_demo, signed_in


@pytest.fixture
def postgres_base(pg_base_url: str) -> str:
    """The PostgreSQL server itself, for tests of statements and the pool (no database of ours needed)."""
    return pg_base_url


@pytest.fixture(scope="session")
def safety_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_safety_server(database_url, Path(tmp_path_factory.mktemp("safety-server")))
    yield live
    live.stop()


@pytest.fixture
def account(database_url: str) -> Iterator[Demo]:
    """A fresh demo account; `ledger verify` must pass on it when the test ends."""
    demo = new_demo(database_url)
    yield demo
    verify_ledger(database_url, demo.account_id)


@pytest.fixture
def till(safety_server: LiveServer, account: Demo) -> Api:
    return signed_in(safety_server, account)
