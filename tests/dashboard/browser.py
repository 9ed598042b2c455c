"""Driving Debian's chromium with Playwright (sync API) against a live `giftledger serve`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, BrowserContext, Page

from tests import support
from tests.support import ROOT, Demo

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `condition` until it holds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def off_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a helper that calls `asyncio.run` in a worker thread (the browser's loop owns this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def new_demo(database_url: str) -> Demo:
    return off_loop(support.new_demo, database_url)


def with_services(database_url: str, work: Any) -> Any:
    return off_loop(support.with_services, database_url, work)


def signed_in(server: support.LiveServer, demo: Demo) -> support.Api:
    return off_loop(support.signed_in, server, demo)


@contextmanager
def unchanged(database_url: str, account_id: int) -> Iterator[None]:
    """Asserts that the block changed nothing in the account's ledger."""
    before = off_loop(support.snapshot, database_url, account_id)
    yield
    assert off_loop(support.snapshot, database_url, account_id) == before


class Dashboard:
    """One browser context (its own cookies) on the dashboard of a live server."""

    def __init__(self, browser: Browser, base_url: str, label: str) -> None:
        self.context: BrowserContext = browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 900})
        self.context.set_default_timeout(20_000)
        self.page: Page = self.context.new_page()
        self.label = label

    def close(self) -> None:
        self.context.close()

    def log_in(self, email: str, password: str, *, account_id: int | None = None) -> None:
        """Sign in; a person in several accounts then chooses `account_id` on the account chooser."""
        page = self.page
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        if account_id is not None:
            page.wait_for_url(re.compile(r".*/accounts\?next=%2F$"))
            page.locator(f'button[data-account-id="{account_id}"]').click()
        page.wait_for_url(re.compile(r".*/$"))

    def nav(self, label: str) -> None:
        """Follow a main menu link and wait until its page is the one shown (a click does not wait for that)."""
        link = self.page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True)
        href = link.get_attribute("href")
        assert href
        link.click()
        self.page.wait_for_url(re.compile(rf"^[^?#]*{re.escape(href.split('?')[0])}([?#].*)?$"))
        self.page.wait_for_load_state()

    def notice(self) -> str:
        return self.page.get_by_role("status").inner_text()

    def account_id(self) -> int:
        return int(self.page.get_by_test_id("account-id").inner_text())

    def rows(self, table: str, part: str = "tbody") -> list[list[str]]:
        """The cell texts of each row of a table (header cells included)."""
        rows = self.page.locator(f"{table} {part} tr")
        return [[text.strip() for text in row.locator("th, td").all_inner_texts()] for row in rows.all()]

    def csrf_token(self) -> str:
        token = self.page.locator('input[name="csrf_token"]').first.get_attribute("value")
        assert token
        return token

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.label}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
