"""Every dashboard route, every path segment, query value and form field, with values that look like numbers
but are not ASCII digits (superscript, full-width, Arabic-Indic) and other hostile input: no answer is a
server error (500). Ids and page numbers are read by one strict helper (dashboard/forms.whole_number): an id
that is not one is "No such page", and a form value that is not one is a refusal in the form."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.routing import Route

from giftledger.domain.permissions import Role
from giftledger.services.context import Services
from tests.dashboard.helpers import PASSWORD, person, sell, till
from tests.dashboard.web import Web
from tests.support import Demo

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "giftledger" / "dashboard"
HOSTILE = [
    "²",
    "¹",
    "\uff11",
    "\u0663",  # superscripts, a full-width 1, an Arabic-Indic 3
    "-1",
    "0",
    "99999999999999999999",
    "1e3",
    "0x1",
    "+1",
    " ",
    "",
    "1.5",
    "x",
    "\x00",
]
NOT_HERE = {"/logout", "/login"}  # would end the session (tested on their own, test_http.py)


def _field_names() -> list[str]:
    """Every form field the dashboard reads or renders, and the site mapping's `site_<id>` ones."""
    source = "\n".join(p.read_text() for p in TEMPLATES.rglob("*") if p.suffix in (".py", ".html"))
    names = set(re.findall(r'field\("([a-z_0-9]+)"\)', source)) | set(re.findall(r'name="([a-z_0-9]+)"', source))
    return sorted((names - {"csrf_token"}) | {"site_1", "site_2", "page", "start", "end", "operation"})


def _routes(app: Starlette) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path not in {"/graphql", "/healthz", "/readyz"} | NOT_HERE:
            found += [(route.path, method) for method in sorted(route.methods or ()) if method in ("GET", "POST")]
    return found


def _with(path: str, value: str) -> str:
    return re.sub(r"\{[a-z_]+\}", quote(value, safe=""), path)


async def test_no_route_answers_500_to_any_value(app: Starlette, services: Services, demo: Demo) -> None:
    await sell(services, await till(services, demo), demo, demo.card_references[0], 2500)
    owner = await person(services, demo, Role.STORE_OWNER)
    web = Web(app)
    assert (await web.log_in(owner.name, PASSWORD)).status_code == 303
    routes = _routes(app)
    fields = _field_names()
    assert len(routes) > 30 and {"site_id", "account_id", "value", "page"} <= set(fields)
    errors: list[str] = []
    tried = 0
    for path, method in routes:
        for value in HOSTILE:
            url = _with(path, value)
            query = "?" + "&".join(f"{name}={quote(value, safe='')}" for name in ("page", "start", "end", "site_id"))
            if method == "GET":
                response = await web.get(url + query)
            else:
                response = await web.post(url, dict.fromkeys(fields, value))
            tried += 1
            if response.status_code >= 500:
                errors.append(f"{method} {url}: {response.status_code}")
            elif response.status_code in (302, 303) and response.headers.get("location", "").startswith("/login"):
                assert (await web.log_in(owner.name, PASSWORD)).status_code == 303  # a refusal signed it out
    assert errors == []
    assert tried == len(routes) * len(HOSTILE)


async def test_a_number_that_is_not_ascii_digits_is_no_such_page(
    app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    web = Web(app)
    assert (await web.log_in(owner.name, PASSWORD)).status_code == 303
    for path in ("/cards/%C2%B2", "/orders/%C2%B9", "/cards/%EF%BC%91", "/settings/sites/%D9%A3/edit"):
        response = await web.get(path)
        assert (response.status_code, "No such page." in response.text) == (404, True), path
    for path in ("/orders?page=%C2%B2", "/cards?page=%C2%B2", "/settings/audit?page=%C2%B3"):
        assert (await web.get(path)).status_code == 200, path  # a page number that is not one: the first page
