"""The Content-Security-Policies in a real browser (headless chromium): GraphiQL renders from giftledger's own
files, runs a query and opens its dialogs, and the dashboard's pages show, with no violation reported and no
request to another origin. (The headers themselves: tests/api/test_graphiql.py, tests/dashboard/test_http.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

from tests.dashboard.browser import new_demo, signed_in
from tests.support import LiveServer

# Each violation the page reports, kept where the test can read it (Playwright adds this before the page's
# own scripts, and the page's policy does not apply to it).
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => window.cspViolations.push(
  `${event.effectiveDirective} refused ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`));
"""


@dataclass
class Watched:
    """A page, with what its console said and every request it made outside `origin`."""

    page: Page
    origin: str
    console: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.cspViolations")
        return found

    def errors(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text or text.startswith("pageerror")]


@pytest.fixture
def context(server: LiveServer, browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


def watch(context: BrowserContext, origin: str) -> Watched:
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    watched = Watched(page, origin)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith(origin):
            watched.elsewhere.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console.append(f"pageerror: {error}"))
    page.on("request", on_request)
    return watched


def test_graphiql_runs_a_query_under_its_policy(context: BrowserContext, server: LiveServer) -> None:
    api = signed_in(server, new_demo(server.database_url))
    watched = watch(context, server.url)
    page = watched.page
    page.goto("/graphql", wait_until="networkidle")
    page.locator(".graphiql-query-editor .CodeMirror").wait_for()
    page.evaluate(
        "(text) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(text)",
        "{\n  Merchants {\n    id\n    name\n  }\n}\n",
    )
    page.get_by_role("button", name="Headers").click()
    page.locator(".graphiql-editor-tool .CodeMirror >> visible=true").click()
    page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {api.token}"}))
    page.locator("button.graphiql-execute-button").click()
    page.wait_for_function("() => document.querySelector('.result-window').innerText.includes('PointOne')")
    result = json.loads(page.evaluate("document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"))
    assert {"id": 60, "name": "PointOne"} in result["data"]["Merchants"]
    # The schema's documentation (GraphiQL's introspection query), then both dialogs: they add the scroll-lock
    # stylesheet whose hash the policy allows (security_headers.GRAPHIQL_SCROLL_LOCK).
    page.get_by_role("button", name="Show Documentation Explorer").click()
    page.get_by_text("A GraphQL schema provides a root type").wait_for()
    for dialog in ("Open settings dialog", "Open short keys dialog"):
        page.get_by_role("button", name=dialog).click()
        page.get_by_role("dialog").wait_for()
        page.keyboard.press("Escape")
        page.get_by_role("dialog").wait_for(state="detached")
    fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert {"Roboto", "Fira Code"} <= set(fonts)  # the stylesheet's data: fonts (font-src data:)
    assert watched.violations() == [] and watched.errors() == []
    assert watched.elsewhere == []


def test_dashboard_pages_show_under_their_policy(context: BrowserContext, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    watched = watch(context, server.url)
    page = watched.page
    page.goto("/login")
    page.get_by_label("Email").fill(demo.owner_email)
    page.get_by_label("Password").fill(demo.owner_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/")
    links = page.get_by_role("navigation", name="Main").get_by_role("link").all()
    paths = [link.get_attribute("href") for link in links]
    assert "/reports" in paths and "/settings/sites" in paths
    for path in paths:
        assert path is not None
        page.goto(path, wait_until="networkidle")
        # The stylesheet from here applied (style-src 'self'), and nothing was refused.
        assert page.evaluate("[...document.styleSheets].map(sheet => sheet.cssRules.length)")[0] > 10, path
        assert watched.violations() == [], path
    assert watched.errors() == [] and watched.elsewhere == []
