"""The dashboard over HTTP in-process (httpx + ASGI), as a browser without JavaScript would use it."""

from __future__ import annotations

import html
import re
import uuid

import httpx
from starlette.applications import Starlette

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Web:
    """One browser: its own cookies and client address (login throttling counts per address)."""

    def __init__(self, app: Starlette, *, https: bool = False) -> None:
        address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        self.address = address  # the client address the application sees
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        scheme = "https" if https else "http"
        self.http = httpx.AsyncClient(transport=transport, base_url=f"{scheme}://dashboard.test")
        self.csrf: str | None = None

    async def close(self) -> None:
        await self.http.aclose()

    def _remember(self, response: httpx.Response) -> httpx.Response:
        found = CSRF.search(response.text) if response.headers.get("content-type", "").startswith("text/html") else None
        if found:
            self.csrf = found.group(1)
        return response

    async def get(self, path: str) -> httpx.Response:
        return self._remember(await self.http.get(path))

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            if self.csrf is None:
                await self.get("/")
            assert self.csrf is not None
            form.setdefault("csrf_token", self.csrf)
        return self._remember(await self.http.post(path, data=form))

    async def log_in(self, email: str, password: str) -> httpx.Response:
        await self.get("/login")
        response = await self.post("/login", {"email": email, "password": password})
        if response.status_code == 303:  # the page asked for, or the account chooser
            await self.get(response.headers["location"])
        return response


def text_of(body: str) -> str:
    """The visible text of an HTML page, tags removed and spaces collapsed."""
    without = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without)).split())


def field_error(body: str, name: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">(.*?)</p>', body, flags=re.S)
    return html.unescape(found.group(1)).strip() if found else None


def rows(body: str, table_id: str, part: str = "tbody") -> list[list[str]]:
    table = re.search(rf'<table[^>]*id="{re.escape(table_id)}".*?</table>', body, flags=re.S)
    assert table, f"no table {table_id}"
    section = re.search(rf"<{part}>(.*?)</{part}>", table.group(0), flags=re.S)
    if section is None:
        return []
    result = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section.group(1), flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        result.append([text_of(c) for c in cells])
    return result


def cookie_header(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")
