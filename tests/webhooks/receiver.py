"""A webhook receiver for the tests: a real HTTP server (`http.server`, one thread per request) on a free port,
that checks each delivery's signature as the reference's PHP example does,

    $expected = hash_hmac('sha256', file_get_contents('php://input'), $secret);
    if (!hash_equals($expected, $_SERVER['HTTP_TOGGLE_SIGNATURE'])) { http_response_code(401); exit; }

and answers 200 (or, while `fail_next` > 0, 500; or after `delay` seconds). It keeps every request it got."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Got:
    path: str
    body: bytes
    headers: dict[str, str]
    verified: bool  # the signature matched the receiver's secret
    status: int  # what the receiver answered

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.fail_next = 0  # answer 500 to this many requests, then 200
        self.delay = 0.0  # seconds before answering
        self._got: list[Got] = []
        self._lock = threading.Lock()
        self.url = ""

    def received(self) -> list[Got]:
        with self._lock:
            return list(self._got)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The bodies of the accepted (verified, answered 200) deliveries, in arrival order."""
        return [
            g.event
            for g in self.received()
            if g.verified and g.status == 200 and (event_type is None or g.event["type"] == event_type)
        ]

    def wait_for(self, condition: Callable[[list[Got]], bool], timeout: float = 20.0, what: str = "") -> list[Got]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if condition(got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {[g.event for g in got]}")
            time.sleep(0.05)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, handler.headers.get("Toggle-Signature", ""))
        with self._lock:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        status = 401 if not verified else 500 if failing else 200
        with self._lock:  # kept on arrival: a delivery held by `delay` counts as received
            self._got.append(Got(handler.path, body, dict(handler.headers.items()), verified, status))
        if self.delay:
            time.sleep(self.delay)
        reply = b'{"ok": true}' if status == 200 else b"try again later"
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state._handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
