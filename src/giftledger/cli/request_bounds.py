"""Bounds on what a client may send, enforced by the server itself before a request costs much (issue 15).

uvicorn's httptools protocol as shipped bounds none of these. It reads a request head of any size: httptools
joins the pieces of a header by copying, so one 60 MB header held a worker for 7.5-13.3 s while every other
request on it waited (a chunked body's trailer fields, parsed the same way, did too). It takes any number of
headers. And it keeps for ever a connection that opens and sends nothing, or sends part of a request and then
stops or drips (its `timeout_keep_alive` only closes a connection idle between two requests).
`BoundedHttpTools` is that protocol (a subclass, given through uvicorn's public `http=` setting) with three
bounds added:

- A request head (request line and headers) may be at most `max_head_bytes` (64 KiB), and so may the trailer
  fields after a chunked body. Reads are fed to the parser only up to what the field section may still take,
  so a larger one is refused once 64 KiB of it has been read: a head with 431 and `Connection: close` (it never
  reaches the app), trailers by closing the connection (the app, which holds the request, sees the client
  disconnect).
- At most `max_headers` (100) header fields, trailers included; more are refused the same way, counted once
  the head (or the trailers) has been parsed, before the app is started: a per-header check would cost every
  request, and 64 KiB holds too few fields for parsing them to cost much.
- A request must arrive whole, head and body, within `read_timeout_s` (10 s) of its first bytes, or, for the
  first request of a connection, of the connection's opening. Otherwise it is closed: with 408 if part of a
  head had arrived, silently if nothing had, and without a reply in a body (the app sees the client
  disconnect). Time the server itself is not reading (reading paused for flow control or behind a pipelined
  request, or a body held back until the app asks for it with `Expect: 100-continue`) is not the client's:
  the deadline starts again. Once a request has arrived whole, the app's time is not bounded here; between
  requests uvicorn's keep-alive timeout (5 s) applies.

The body's size is bounded by the app: `GIFTLEDGER_MAX_BODY_BYTES` (64 KiB) on `/graphql`, which answers 413
(api/endpoint.py); the dashboard reads its forms with Starlette's limits on the number and size of fields.

Field bytes are counted read by read. A field section that begins partway through a read (a pipelined
request's head after another request, trailers after the last chunk) has that read's part of it uncounted, so
it may run over by up to one read (about 256 kB at most): still bounded.

Why not uvicorn's h11 protocol: its `h11_max_incomplete_event_size` bounds the head but answers 400, it counts
no headers and has no deadline either, and it parses in Python. Why not only a proxy in front: the bounds must
hold for the server as shipped; a proxy's own limits (nginx's `large_client_header_buffers`,
`client_header_timeout`) can only make them tighter."""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class RequestBounds:
    max_head_bytes: int = 65_536  # request line and headers, CRLFs included (and a chunked body's trailers)
    max_headers: int = 100  # header fields, trailers included
    read_timeout_s: float = 10.0  # for a whole request to arrive (and for a new connection to send one)


DEFAULT_BOUNDS = RequestBounds()


class _TooManyHeaders(Exception):
    """Raised in a parser callback, which stops httptools at once."""


class BoundedHttpTools(HttpToolsProtocol):
    # In slots, not in the instance's dict: with ours added, that dict would outgrow what CPython shares between
    # instances (30 keys), and uvicorn's own attributes would get slower to reach (about 3 us more per
    # connection, measured in-process).
    __slots__ = ("_deadline", "_field_bytes", "_in_fields", "_in_head", "_too_many_headers", "bounds")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        bounds: RequestBounds,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds = bounds
        self._in_head = True  # the next bytes read belong to a request head
        self._in_fields = True  # ... to a field section: a head, or the trailers after a chunked body
        self._field_bytes = 0  # of the field section being read
        self._too_many_headers = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        limit = self.bounds.max_head_bytes
        while self._in_fields and self._field_bytes + len(data) > limit:
            # Feed only what this field section may still take: if it has not ended by then, it is too large.
            room = limit - self._field_bytes
            self._field_bytes = limit
            super().data_received(data[:room])
            if self.transport.is_closing():
                return
            if self._in_fields and self._field_bytes == limit:  # the same section (a new one starts from 0)
                self._refuse(431, f"Request {'head' if self._in_head else 'trailers'} larger than {limit} bytes.")
                return
            data = data[room:]
        if self._in_fields:
            self._field_bytes += len(data)
        super().data_received(data)
        # Part of a request has arrived, not all of it (a head begun, or a body), and no deadline runs yet.
        if self._deadline is None and (self._field_bytes or not self._in_head) and not self.transport.is_closing():
            self._arm()

    # httptools' callbacks. Every request runs these, so they are kept short, and none runs per header.
    def on_headers_complete(self) -> None:
        if len(self.headers) > self.bounds.max_headers:  # before the app is started
            self._too_many_fields()
        self._in_head = self._in_fields = False
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        self._in_fields, self._field_bytes = True, 0  # trailers follow the last chunk's header

    def on_body(self, body: bytes) -> None:
        self._in_fields = False
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        if len(self.headers) > self.bounds.max_headers:  # trailers, after the last chunk
            self._too_many_fields()
        self._in_fields = False

    def on_message_complete(self) -> None:
        self._in_head = self._in_fields = True
        self._field_bytes = 0
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().on_message_complete()

    def _too_many_fields(self) -> None:
        self._too_many_headers = True
        raise _TooManyHeaders  # stops the parser; uvicorn's data_received then calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._too_many_headers:
            self._refuse(431, f"More than {self.bounds.max_headers} request header fields.")
        else:
            super().send_400_response(msg)

    def _refuse(self, status: int, reason: str) -> None:
        """Reply `status` (unless a reply to an earlier request is still being written) and close."""
        logger.warning("%s Refused with %d.", reason, status)
        self._disarm()
        if self.cycle is None or self.cycle.response_complete:
            body = reason.encode()
            lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode()]
            lines += [name + b": " + value for name, value in self.server_state.default_headers]
            lines += [b"content-type: text/plain; charset=utf-8", b"content-length: %d" % len(body)]
            lines += [b"connection: close", b"", body]
            self.transport.write(b"\r\n".join(lines))
        self.transport.close()

    # The read deadline
    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.bounds.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        held_back = cycle is not None and not cycle.response_complete and cycle.waiting_for_100_continue
        if self.flow.read_paused or held_back:
            self._arm()  # the server is not reading: the client is not late
        elif self._in_head and self._field_bytes > 0:
            self._refuse(408, f"Request head not received within {self.bounds.read_timeout_s:g} s.")
        else:
            self.transport.close()


def protocol(bounds: RequestBounds) -> Callable[..., asyncio.Protocol]:
    """What uvicorn's `http` setting takes: `BoundedHttpTools` with `bounds` (picklable, for spawned workers)."""
    return partial(BoundedHttpTools, bounds=bounds)
