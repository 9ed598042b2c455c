"""An unknown address (404) or a method a page does not take (405) answers the dashboard's styled error page with
its hardening headers, signed in (with the navigation) or not; the API's paths keep their plain answers. A card
search that finds nothing says so in the dashboard's words, while the API keeps its contract's message."""

from __future__ import annotations

import re

from starlette.applications import Starlette

from giftledger.domain import card_numbers
from giftledger.domain.errors import CardNotFound
from giftledger.security_headers import DASHBOARD_HEADERS
from giftledger.services.context import Services
from tests.dashboard.browser import unchanged
from tests.dashboard.test_http import owner_web
from tests.dashboard.web import Web, field_error, text_of
from tests.support import Demo

NOT_FOUND = "Not found There is no page at this address. Check it, or start again from the overview."
NOT_ALLOWED = "Not possible This page cannot be used that way. Go back, reload the page and try again."


def error_of(body: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>.*?<p class=\"error-message\"[^>]*>(.*?)</p>", body, flags=re.S)
    assert found, body
    return text_of(found.group(1) + " " + found.group(2))


def assert_styled(response: object, status: int, words: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "text/html; charset=utf-8"  # type: ignore[attr-defined]
    for name, value in DASHBOARD_HEADERS.items():
        assert response.headers.get(name) == value, name  # type: ignore[attr-defined]
    assert '<link rel="stylesheet"' in response.text  # type: ignore[attr-defined]
    assert error_of(response.text) == words  # type: ignore[attr-defined]


async def test_unknown_paths_and_methods_answer_the_styled_page(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    visitor = Web(app)
    owner = await owner_web(app, services, demo)
    with unchanged(database_url, demo.account_id):
        for path in ("/no-such-page", "/settings/nowhere", "/cards/1/nothing", "/static/missing.css"):
            signed_out = await visitor.get(path)
            assert_styled(signed_out, 404, NOT_FOUND)
            assert 'href="/login"' in signed_out.text and 'aria-label="Main"' not in signed_out.text
            signed_in = await owner.get(path)
            assert_styled(signed_in, 404, NOT_FOUND)
            assert 'aria-label="Main"' in signed_in.text and 'data-testid="account-id"' in signed_in.text

        logout = await owner.http.get("/logout")  # a form's address, opened as a page
        assert_styled(logout, 405, NOT_ALLOWED)
        assert logout.headers["allow"] == "POST"
        put = await visitor.http.put("/settings/sites", data={"name": "Bath"})
        assert_styled(put, 405, NOT_ALLOWED)
        assert sorted(put.headers["allow"].split(", ")) == ["GET", "HEAD"]  # Starlette lists a set
        assert (await owner.get("/settings/sites")).status_code == 200  # still signed in after all that


async def test_the_apis_paths_keep_their_plain_answers(app: Starlette) -> None:
    visitor = Web(app)
    for method, path, status, text in (
        ("PUT", "/graphql", 405, "Method Not Allowed"),
        ("GET", "/graphql/nested", 404, "Not Found"),
        ("GET", "/graphiql/nothing.js", 404, "Not Found"),
        ("POST", "/healthz", 405, "Method Not Allowed"),
    ):
        response = await visitor.http.request(method, path)
        assert (response.status_code, response.text) == (status, text), path
        assert response.headers["content-type"] == "text/plain; charset=utf-8", path
    answered = await visitor.http.post("/graphql", json={"query": "{ nothing"})  # the API's own errors: JSON
    assert answered.headers["content-type"].startswith("application/json")
    assert answered.json()["errors"][0]["message"].startswith("Syntax Error")


async def test_a_card_search_miss_speaks_the_dashboards_words(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    owner = await owner_web(app, services, demo)
    with unchanged(database_url, demo.account_id):
        for typed in (card_numbers.generate(), "no-such-alias"):
            missing = await owner.post("/cards", {"card_reference": typed})
            assert missing.status_code == 404
            assert field_error(missing.text, "card_reference") == (
                "No card found with this number or alias in this account."
            )
            assert "Transaction not applied" not in missing.text
    # the API's message is the contract's, unchanged
    assert CardNotFound().message == (
        "No card has been found for this account for the card ref supplied. Transaction not applied."
    )
