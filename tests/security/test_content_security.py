"""The Content-Security-Policies (security_headers.py) and what they rely on: the dashboard's templates hold no
script and nothing inline (the dashboard's policy runs no script at all and refuses inline styles), and the
policies allow nothing inline but one hashed stylesheet, nothing from another origin, and no framing.

Headers on real responses: tests/dashboard/test_http.py (the dashboard) and tests/api/test_graphiql.py
(GraphiQL); in a browser, with no violation reported: tests/dashboard/test_browser_csp.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from giftledger.security_headers import (
    COPY_BUTTON_CSP,
    COPY_BUTTON_SCRIPT,
    DASHBOARD_CSP,
    EXPLORER_CSP,
    GRAPHIQL_SCROLL_LOCK,
    PAGE_DIRECTIVES,
)
from tests.security.page_audit import audit_html
from tests.support import ROOT

TEMPLATES = sorted((ROOT / "src" / "giftledger" / "dashboard" / "templates").glob("**/*.html"))
# The one page that runs a script (under COPY_BUTTON_CSP): the copy buttons beside a password shown once.
SCRIPTED = {"api_user_created.html": [COPY_BUTTON_SCRIPT]}


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 10 and any(t.name == "base.html" for t in TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_no_template_holds_a_script_or_anything_inline(template: Path) -> None:
    """The dashboard's policy allows no script at all and no inline style: a page that needs one must be
    given a policy that allows it (security_headers.py), with the code in a file under dashboard/static."""
    found = audit_html(template.read_text(), template=True)
    assert found.scripts == SCRIPTED.get(template.name, []), f"{template.name}: <script> elements"
    assert found.blocked_inline() == [], f"{template.name}: inline code or styles, blocked by the policy"
    assert found.other_origins() == [], f"{template.name}: loads from another origin"


def test_the_audit_finds_what_it_looks_for() -> None:
    """The check above would notice each kind of inline code (so an empty finding means there is none)."""
    planted = """
      <script>alert(1)</script><script src="/static/ok.js"></script><script src="https://cdn.example/x.js"></script>
      <button type="button" onclick="go()">Go</button><body onload='x()'>
      <a href=" javascript:alert(1)">x</a><div style="color: red">x</div><style>p { color: red }</style>
      <img src="//cdn.example/i.png"><form action="{{ url }}" {% if x %}onsubmit="y()"{% endif %}></form>
      <a href="https://docs.example/">a link loads nothing</a><a href="#main">x</a><img src="i.png">
    """
    found = audit_html(planted, template=True)
    assert found.scripts == ["inline", "/static/ok.js", "https://cdn.example/x.js"]
    assert found.inline_scripts == ["alert(1)"]
    assert found.handlers == ["button onclick", "body onload", "form onsubmit"]
    assert found.script_urls == ["a href=javascript:alert(1)"]
    assert found.inline_styles == ['div style="color: red"', "<style>p { color: red }</style>"]
    assert found.other_origins() == ["https://cdn.example/x.js", "//cdn.example/i.png"]


@pytest.mark.parametrize(
    "policy", [DASHBOARD_CSP, EXPLORER_CSP, COPY_BUTTON_CSP], ids=["dashboard", "graphiql", "copy-button"]
)
def test_the_policies_allow_only_this_origin(policy: str) -> None:
    parsed = directives(policy)
    assert parsed["default-src"] == ["'none'"]  # anything not named below is refused
    assert parsed["frame-ancestors"] == ["'none'"] and parsed["base-uri"] == ["'none'"]
    assert parsed["form-action"] == ["'self'"]
    for name, sources in parsed.items():
        for source in sources:
            assert source in {"'self'", "'none'", "data:", GRAPHIQL_SCROLL_LOCK}, f"{name} allows {source}"
        if name != "style-src":
            assert GRAPHIQL_SCROLL_LOCK not in sources
    assert "data:" not in parsed.get("script-src", []) and "data:" not in parsed["style-src"]


def test_the_dashboard_runs_no_script() -> None:
    parsed = directives(DASHBOARD_CSP)
    assert "script-src" not in parsed and "connect-src" not in parsed  # default-src 'none' refuses both
    assert parsed == {name: value.split() for name, value in PAGE_DIRECTIVES.items()}


def test_the_copy_button_page_runs_scripts_from_here_only() -> None:
    assert directives(COPY_BUTTON_CSP) == {**directives(DASHBOARD_CSP), "script-src": ["'self'"]}
    assert (ROOT / "src" / "giftledger" / "dashboard" / COPY_BUTTON_SCRIPT.lstrip("/")).is_file()


def test_graphiql_runs_scripts_from_here_only() -> None:
    parsed = directives(EXPLORER_CSP)
    assert parsed["script-src"] == ["'self'"] and parsed["connect-src"] == ["'self'"]
    assert parsed["style-src"] == ["'self'", GRAPHIQL_SCROLL_LOCK]
    assert parsed["font-src"] == ["data:"]
