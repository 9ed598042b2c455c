"""The hardening headers of every HTML page giftledger serves, in one place: the dashboard's pages
(dashboard/web.py) and the GraphiQL explorer on GET /graphql (api/graphiql.py).

The Content-Security-Policy starts from `default-src 'none'` and allows each page only what it uses, and only
from this origin (docs/security.md explains each directive):

- the dashboard runs no script at all: its stylesheet and images from here, `data:` images, forms posted here;
- the explorer also runs its scripts from here (vendored, no inline script), fetches from here (its queries to
  /graphql), and uses the fonts its stylesheet embeds as `data:` URLs.

Neither may be framed (`frame-ancestors 'none'`, and `X-Frame-Options` for older browsers) nor re-based
(`base-uri 'none'`). Nothing here imports the rest of giftledger."""

from __future__ import annotations

from collections.abc import Mapping


def content_security_policy(directives: Mapping[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


PAGE_DIRECTIVES: dict[str, str] = {
    "default-src": "'none'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}

# GraphiQL's dialogs (settings, short keys) lock the page's scrolling while open by adding a <style> element
# (react-remove-scroll-bar, under Radix's Dialog). On the explorer's page, which never scrolls, its text is always
# the same (every gap 0px); this is its hash, so no inline style but that one is allowed. Were it blocked, nothing
# would look different, but the browser would report a violation each time a dialog opens. A GraphiQL upgrade
# that changes that text fails tests/dashboard/test_browser_csp.py, which opens both dialogs.
GRAPHIQL_SCROLL_LOCK = "'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='"

EXPLORER_DIRECTIVES: dict[str, str] = {
    **PAGE_DIRECTIVES,
    "style-src": f"'self' {GRAPHIQL_SCROLL_LOCK}",
    "script-src": "'self'",
    "connect-src": "'self'",
    "font-src": "data:",
}

DASHBOARD_CSP = content_security_policy(PAGE_DIRECTIVES)
EXPLORER_CSP = content_security_policy(EXPLORER_DIRECTIVES)


def page_headers(policy: str) -> dict[str, str]:
    """The headers of an HTML page under `policy`; `no-store` keeps what a page showed (a password shown once)
    out of the browser's cache."""
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


# The one dashboard page that runs a script: the page showing a password once, whose copy button is
# progressive enhancement (dashboard/static/copy.js, from here; no inline script). Every other page runs none.
COPY_BUTTON_CSP = content_security_policy({**PAGE_DIRECTIVES, "script-src": "'self'"})
COPY_BUTTON_SCRIPT = "/static/copy.js"  # the template names it too (api_user_created.html)

DASHBOARD_HEADERS = page_headers(DASHBOARD_CSP)
EXPLORER_HEADERS = page_headers(EXPLORER_CSP)
