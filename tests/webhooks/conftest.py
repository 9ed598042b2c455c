"""Each webhook test module on a database of its own: no other test's (or live server's) sender takes its
deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from giftledger.app import build_services
from giftledger.services.context import Services
from tests import support
from tests.support import fresh_database


@pytest.fixture(scope="module")
def database(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


@pytest.fixture
async def services(database: str) -> AsyncIterator[Services]:
    built = build_services(support.test_settings(database))
    yield built
    await built.db.dispose()
