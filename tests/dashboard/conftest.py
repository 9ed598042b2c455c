"""Fixtures for the dashboard tests: headless chromium, one per test module and backend.

Playwright's sync API marks an event loop as running in the main thread while it is alive, so
`asyncio.run` helpers cannot run beside it there. The browser is therefore module-scoped and tied to
the `server` fixture (it closes before the next backend's database is created), and tests run their
database helpers through `tests.dashboard.browser.off_loop`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from starlette.applications import Starlette

from giftledger.app import build_services, create_app
from giftledger.services.context import Services
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, wait_for
from tests.support import LiveServer, test_settings


@pytest.fixture(scope="module")
def playwright(server: LiveServer) -> Iterator[Playwright]:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            wait_for(lambda: os.access(CHROMIUM, os.X_OK), timeout=300)
        else:
            pytest.skip(f"{CHROMIUM} is not installed (make chromium installs it)")
    with sync_playwright() as runner:
        yield runner


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    """The services on this test's database, in this test's event loop."""
    built = build_services(test_settings(database_url))
    yield built
    await built.db.dispose()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    """The whole application (dashboard and API) in this process."""
    application = create_app(test_settings(database_url))
    yield application
    await application.state.services.db.dispose()
