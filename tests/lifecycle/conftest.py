"""Fixtures for the card-lifecycle tests: the whole application in this process (no lifespan: the background
expiry run never races a test; the tests run it themselves), its services, and one demo account per module
(each test works on cards of its own, and starts with the product's rules back at their defaults)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from giftledger.app import create_app
from giftledger.domain.validity import ValidityRules
from giftledger.services.context import Services
from giftledger.storage.lifecycle import Lifecycle
from tests.lifecycle.helpers import Till
from tests.support import Demo, new_demo, test_settings


@pytest.fixture(scope="module")
def demo(database_url: str) -> Demo:
    """One demo account for the module."""
    return new_demo(database_url)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(test_settings(database_url))
    yield application
    await application.state.services.db.dispose()


@pytest.fixture
async def services(app: Starlette, demo: Demo) -> Services:
    built: Services = app.state.services
    async with built.db.transaction() as conn:  # the product's rules as a new account has them
        await Lifecycle(conn, demo.account_id).set_rules(demo.product_id, ValidityRules())
    return built


@pytest.fixture
async def till(app: Starlette, demo: Demo) -> AsyncIterator[Till]:
    signed_in = await Till(app, demo).sign_in(app.state.services)
    yield signed_in
    await signed_in.close()
