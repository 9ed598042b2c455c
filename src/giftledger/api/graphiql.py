"""The GraphiQL explorer a browser gets on GET /graphql, and the files it loads, served by giftledger itself.

React, ReactDOM and GraphiQL are vendored at pinned versions in api/static/graphiql/ (its README.md records
each package's version, npm integrity and licence), beside our own start script and stylesheet. The page loads
nothing from another origin and runs no inline script, so its Content-Security-Policy (security_headers.py)
allows scripts, styles and requests from this origin only.

Each file's URL carries a fingerprint of its content (`?v=`), so a browser may keep it for a year: a changed
file gets a new URL. The page itself is never cached, so it always names the current fingerprints."""

from __future__ import annotations

import hashlib
import os
from html import escape
from pathlib import Path
from urllib.parse import parse_qs

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from giftledger.security_headers import EXPLORER_HEADERS

ASSETS_PATH = "/graphiql"
ASSETS_DIR = Path(__file__).with_name("static") / "graphiql"
STYLES = ("graphiql.min.css", "giftledger-graphiql.css")
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "giftledger-graphiql.js")
CACHED_FOR_A_YEAR = "public, max-age=31536000, immutable"
REVALIDATED = "no-cache"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>giftledger GraphiQL</title>
{styles}
</head>
<body>
  <div id="graphiql">Loading the GraphiQL explorer...</div>
{scripts}
</body>
</html>
"""


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Assets(StaticFiles):
    """The explorer's files, with long cache headers when the URL names the file's current fingerprint (as the
    page does) and revalidation otherwise. `nosniff`: a browser runs them only as the types they are served as."""

    def __init__(self, directory: Path, fingerprints: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self.fingerprints = fingerprints

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        current = self.fingerprints.get(os.path.basename(full_path))
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v")
        response.headers["Cache-Control"] = CACHED_FOR_A_YEAR if current and asked == [current] else REVALIDATED
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


class Explorer:
    """The explorer's page and files, fingerprinted once when the application is built."""

    def __init__(self, directory: Path = ASSETS_DIR) -> None:
        self.fingerprints = {name: fingerprint(directory / name) for name in (*STYLES, *SCRIPTS)}
        self.assets = Assets(directory, self.fingerprints)
        self.page = PAGE.format(
            styles="\n".join(f'  <link rel="stylesheet" href="{escape(self.url(name))}">' for name in STYLES),
            scripts="\n".join(f'  <script src="{escape(self.url(name))}"></script>' for name in SCRIPTS),
        )

    def url(self, name: str) -> str:
        return f"{ASSETS_PATH}/{name}?v={self.fingerprints[name]}"

    def response(self) -> Response:
        return HTMLResponse(self.page, headers=EXPLORER_HEADERS)

    def files_route(self) -> Mount:
        """The route the composition root adds beside /graphql for the explorer's files."""
        return Mount(ASSETS_PATH, app=self.assets)
