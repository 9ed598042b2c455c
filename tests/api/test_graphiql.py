"""GraphiQL on GET /graphql over real HTTP: the page loads nothing from another origin and runs nothing inline,
carries its Content-Security-Policy, and every file it names is served by giftledger with its type and long
cache headers; the vendored files are the ones api/static/graphiql/README.md records.

In a browser (it renders, runs a query, and no violation is reported): tests/dashboard/test_browser_csp.py."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import httpx
import pytest

from giftledger.api.graphiql import ASSETS_DIR, SCRIPTS, STYLES
from giftledger.security_headers import EXPLORER_HEADERS
from tests.security.page_audit import audit_html
from tests.support import LiveServer

TYPES = {".js": "text/javascript", ".css": "text/css"}
README = ASSETS_DIR / "README.md"


def graphiql_page(server: LiveServer) -> httpx.Response:
    response = httpx.get(server.graphql_url, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


def test_the_page_loads_everything_from_here_and_nothing_inline(server: LiveServer) -> None:
    response = graphiql_page(server)
    found = audit_html(response.text)
    assert found.other_origins() == []
    assert found.blocked_inline() == []
    assert "unpkg" not in response.text and "http" not in response.text
    names = [urlsplit(url).path.rsplit("/", 1)[-1] for url in found.urls]
    assert names == [*STYLES, *SCRIPTS]  # in order: React, ReactDOM, GraphiQL, then our start script
    assert [urlsplit(url).path.rsplit("/", 1)[-1] for url in found.scripts] == list(SCRIPTS)


def test_the_page_carries_its_policy(server: LiveServer) -> None:
    headers = graphiql_page(server).headers
    for name, value in EXPLORER_HEADERS.items():
        assert headers[name] == value
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "unsafe" not in headers["content-security-policy"]


def test_each_file_the_page_names_is_served_with_its_type_for_a_year(server: LiveServer) -> None:
    found = audit_html(graphiql_page(server).text)
    assert len(found.urls) == len(STYLES) + len(SCRIPTS)
    with httpx.Client(base_url=server.url) as client:
        for url in found.urls:
            path, query = urlsplit(url).path, urlsplit(url).query
            name = path.rsplit("/", 1)[-1]
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-type"].split(";")[0] == TYPES[name[name.rindex(".") :]], url
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable", url
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.content == (ASSETS_DIR / name).read_bytes()
            assert query == "v=" + hashlib.sha256(response.content).hexdigest()[:16]  # a new file, a new URL
            # Without the current fingerprint (an old page, a hand-typed URL): served, but revalidated.
            for stale in (path, path + "?v=0123456789abcdef"):
                again = client.get(stale)
                assert (again.status_code, again.headers["cache-control"]) == (200, "no-cache"), stale
            # A browser's revalidation is answered without the body.
            etag = response.headers["etag"]
            assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["/graphiql/nothing.js", "/graphiql/../graphiql.py", "/graphiql/%2e%2e/graphiql.py"])
def test_nothing_else_is_served_from_there(server: LiveServer, path: str) -> None:
    assert httpx.get(server.url + path).status_code == 404


def test_the_vendored_files_are_the_ones_the_readme_records() -> None:
    """README.md's table of files names each vendored file's size and sha256; the files match it (so an
    upgrade updates the record, and the record says what is served)."""
    rows = re.findall(r"^\| ([\w.-]+) \| .+? \| (\d+) \| ([0-9a-f]{64}) \|$", README.read_text(), re.MULTILINE)
    recorded = {name: (int(size), digest) for name, size, digest in rows}
    vendored = {"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css"}
    assert vendored <= set(recorded) and vendored <= {*STYLES, *SCRIPTS}
    assert {"LICENSE.react", "LICENSE.graphiql"} <= set(recorded)
    for name, (size, digest) in recorded.items():
        content = (ASSETS_DIR / name).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (size, digest), name
    ours = {p.name for p in ASSETS_DIR.iterdir()} - set(recorded) - {"README.md"}
    assert ours == {"giftledger-graphiql.js", "giftledger-graphiql.css"}  # nothing else unrecorded in the folder
    for package, version in (("react", "18.3.1"), ("react-dom", "18.3.1"), ("graphiql", "3.8.3")):
        assert re.search(rf"^\| {package} \| {version} \| MIT ", README.read_text(), re.MULTILINE), package
