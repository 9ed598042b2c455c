"""A request id for every HTTP request, and one log line when it ends (a pure ASGI middleware).

The id is the caller's `X-Request-Id` when that is a short plain token (letters, digits, `.`, `_`, `-`, `:`, at
most 64, and no run of digits as long as a card number), otherwise a new one (uuid4, hex). It is sent back in the
`X-Request-Id` header of every response the app gives (the API, the dashboard, errors: this wraps the whole app,
its error pages included) and bound, through `structlog.contextvars`, to every line logged while the request is
handled.

The request's line (logger `giftledger.request`, message `request`) carries `request_id`, `method`, `path` (the
path only: a query string can carry a card number), `status`, `duration_ms`, and whatever the endpoint noted
with `note` on the way (the GraphQL operation, the account, the outcome: api/guard.py). The same facts, with
the duration, go to `observe` when one is given (the metrics: metrics.py). Nothing here imports the rest of
giftledger."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
_HEADER_KEY = HEADER.lower().encode()
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_LONG_DIGITS = re.compile(r"\d{13}")

log = logging.getLogger("giftledger.request")

_noted: ContextVar[dict[str, Any] | None] = ContextVar("giftledger_request_log", default=None)


def note(**fields: Any) -> None:
    """Add `fields` to the line of the request being handled (nothing outside a request)."""
    noted = _noted.get()
    if noted is not None:
        noted.update(fields)


def request_id_from(value: str | None) -> str:
    """The caller's id when it is a sane short token, otherwise a new one."""
    if value and _SANE.fullmatch(value) and not _LONG_DIGITS.search(value):
        return value
    while True:  # hex digits: one in ~30 has a run the log would mask as a card number (logs.py)
        new = uuid.uuid4().hex
        if not _LONG_DIGITS.search(new):
            return new


class RequestLog:
    """Wraps an ASGI app: HTTP requests get an id (in their response and their log lines) and a log line."""

    def __init__(self, app: ASGIApp, observe: Callable[[Mapping[str, Any], int, float], None] | None = None) -> None:
        self.app = app
        self.observe = observe  # told each request's noted fields, status and duration (seconds) when it ends

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == _HEADER_KEY), None)
        request_id = request_id_from(incoming.decode("latin-1") if incoming is not None else None)
        id_header = (_HEADER_KEY, request_id.encode())
        status = 500  # unless the app starts a response
        finished = False
        noted: dict[str, Any] = {}
        reset = _noted.set(noted)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, id_header]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # logged here, with the request's id; uvicorn logs it again (without) only if the reply is unfinished
                log.exception("unhandled error")
                if not finished:
                    raise
            finally:
                _noted.reset(reset)
                seconds = time.perf_counter() - started
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        **noted,
                    },
                )
                if self.observe is not None:
                    self.observe(noted, status, seconds)
