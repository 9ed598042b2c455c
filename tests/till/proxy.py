"""A loopback HTTP proxy between a till and a live server that records every exchange and can misbehave.

Rules pick requests by their GraphQL root field (`createBalanceAdjustment`, `LineItems`, `loginUser`, ...) and
make the proxy:
- `drop_after_commit`: forward the request, read the server's reply (the server has committed), then close
  the connection without answering: the till sees a dropped connection and cannot know the outcome;
- `drop_before_forward`: close the connection without forwarding (the server never sees the request);
- `unavailable`: answer HTTP 503 without forwarding;
- `set_token`: forward, then replace the token the reply carries with `token(real_token)`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx
from graphql import FieldNode, OperationDefinitionNode, parse

from tests.support import tls

Action = Literal["forward", "drop_after_commit", "drop_before_forward", "unavailable", "set_token"]
TOKEN_HEADERS = ("X-Authorization", "Authorization")


@dataclass
class Rule:
    """Apply `action` to requests for root field `field`: let `skip` through first, then act `times` times."""

    field: str
    action: Action
    times: int = 1
    skip: int = 0
    token: Callable[[str], str] | None = None


@dataclass
class Exchange:
    """One request the till sent, and what became of it."""

    field: str
    variables: dict[str, Any]
    authorization: str | None
    action: Action = "forward"
    status: int | None = None  # what the server answered (None: not forwarded)
    reply: dict[str, Any] | None = None
    reply_token: str | None = None  # the token the server's reply carried (before any replacement)
    sent_token: str | None = None  # the token the till received


def root_field(query: str) -> str:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    first = operation.selection_set.selections[0]
    assert isinstance(first, FieldNode)
    return first.name.value


def _bearer(value: str | None) -> str | None:
    return value.removeprefix("Bearer ") if value else None


class LoopbackProxy:
    """Listens on 127.0.0.1 (a free port) and forwards POSTs to `upstream` (the server's /graphql)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.exchanges: list[Exchange] = []
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30, verify=tls())
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="loopback-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/graphql"

    @property
    def fields(self) -> list[str]:
        with self._lock:
            return [exchange.field for exchange in self.exchanges]

    def add(self, *rules: Rule) -> None:
        with self._lock:
            self.rules.extend(rules)

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.rules.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def _begin(self, body: dict[str, Any], authorization: str | None) -> tuple[Exchange, Rule | None]:
        with self._lock:
            exchange = Exchange(root_field(body["query"]), dict(body.get("variables") or {}), authorization)
            self.exchanges.append(exchange)
            for rule in self.rules:
                if rule.field != exchange.field or rule.times <= 0:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    return exchange, None
                rule.times -= 1
                exchange.action = rule.action
                return exchange, rule
            return exchange, None

    def _forward(self, raw: bytes, authorization: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        return self._http.post(self.upstream, content=raw, headers=headers)


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        proxy: LoopbackProxy = self.server.proxy  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        authorization = self.headers.get("Authorization")
        exchange, rule = proxy._begin(json.loads(raw), authorization)
        if exchange.action == "drop_before_forward":
            self.close_connection = True
            return
        if exchange.action == "unavailable":
            self._reply(503, b'{"errors": [{"message": "Service unavailable"}]}', {})
            return
        response = proxy._forward(raw, authorization)
        exchange.status = response.status_code
        exchange.reply = response.json()
        token = _bearer(response.headers.get("X-Authorization") or response.headers.get("Authorization"))
        exchange.reply_token = token
        if exchange.action == "drop_after_commit":
            self.close_connection = True
            return
        if exchange.action == "set_token" and token is not None and rule is not None and rule.token is not None:
            token = rule.token(token)
        exchange.sent_token = token
        extra = {name: f"Bearer {token}" for name in TOKEN_HEADERS} if token else {}
        self._reply(response.status_code, response.content, extra)

    def _reply(self, status: int, body: bytes, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
