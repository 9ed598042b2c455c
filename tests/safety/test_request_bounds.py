"""Every part of a request has a bound that `giftledger serve` itself enforces before the request costs much
(issue 15; cli/request_bounds.py): a head over 64 KiB gets 431 and the connection closes once 64 KiB of it has
been read, and a head with more than 100 headers gets 431 too; a chunked body's trailers are bounded alike; a
request that has not arrived whole within the read timeout (1 s here, 10 s by default) is closed, and so is a
connection that sends nothing; and none of it holds up the other requests of the worker (one worker here)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, start_server

TIMEOUT_S = 1
HEAD_LIMIT = 65_536
MIB = 1 << 20


@pytest.fixture(scope="module")
def bounded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        database_url,
        Path(tmp_path_factory.mktemp("request-bounds")),
        {"GIFTLEDGER_READ_TIMEOUT_SECONDS": str(TIMEOUT_S)},
    )
    yield live
    live.stop()


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", _port(server)), timeout=15)


def _head(*headers: str) -> bytes:
    return ("\r\n".join(["GET /healthz HTTP/1.1", "Host: test", *headers]) + "\r\n\r\n").encode()


def _until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset after a reply counts as closing).
    Fails with a timeout if the server keeps the connection open."""
    data = b""
    try:
        while chunk := connection.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _send(connection: socket.socket, data: bytes) -> None:
    """Send `data`; the server may close the connection before it has read it all."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.sendall(data)


def _health(server: LiveServer) -> bytes:
    """GET /healthz on a connection of its own: the reply's status line."""
    with _connect(server) as connection:
        connection.sendall(_head("Connection: close"))
        return _until_closed(connection).split(b"\r\n", 1)[0]


def _status(reply: bytes) -> bytes:
    return reply.split(b"\r\n", 1)[0]


def _one_reply(connection: socket.socket) -> bytes:
    """The status line of one reply on a kept-alive connection, read whole (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        body += connection.recv(65536)
    return _status(head)


def test_a_head_up_to_64_kib_is_served(bounded: LiveServer) -> None:
    padding = HEAD_LIMIT - len(_head("Connection: close", "X-Big: "))
    with _connect(bounded) as connection:
        connection.sendall(_head("Connection: close", "X-Big: " + "a" * padding))
        assert _status(_until_closed(connection)) == b"HTTP/1.1 200 OK"


def test_a_head_over_64_kib_gets_431_and_the_connection_closes(bounded: LiveServer) -> None:
    head = _head("X-Big: " + "a" * (HEAD_LIMIT + 1 - len(_head("X-Big: "))))
    with _connect(bounded) as connection:
        connection.sendall(head[:60_000])
        assert _health(bounded) == b"HTTP/1.1 200 OK"  # on another connection, while this head is on its way
        _send(connection, head[60_000:])
        reply = _until_closed(connection)
    assert _status(reply) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"\r\nconnection: close\r\n" in reply.lower()


def test_more_than_100_headers_get_431(bounded: LiveServer) -> None:
    with _connect(bounded) as connection:  # Host and 99 more: 100
        connection.sendall(_head("Connection: close", *(f"X-{n}: {n}" for n in range(98))))
        assert _status(_until_closed(connection)) == b"HTTP/1.1 200 OK"
    with _connect(bounded) as connection:  # 101
        _send(connection, _head("Connection: close", *(f"X-{n}: {n}" for n in range(99))))
        reply = _until_closed(connection)
    assert _status(reply) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"\r\nconnection: close\r\n" in reply.lower()


BODY = b'{"query": "{ __typename }"}'
BEFORE_BIG_FIELD = {
    "head": b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ",
    "trailers": b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Big: " % (len(BODY), BODY),
}


@pytest.mark.parametrize("where", BEFORE_BIG_FIELD)
def test_a_60_mb_field_does_not_hold_up_other_requests(bounded: LiveServer, where: str) -> None:
    """Before the bound, the worker read all 60 MB of a header (7.5-13.3 s), or of a chunked body's trailer,
    and every other request waited for it."""
    sent = 0
    started = threading.Event()
    big = _connect(bounded)

    def send_big_field() -> None:
        nonlocal sent
        try:
            big.sendall(BEFORE_BIG_FIELD[where])
            for _ in range(60):
                big.sendall(b"a" * MIB)
                sent += MIB
                started.set()
            big.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after the field section's first 64 KiB
        finally:
            started.set()

    sender = threading.Thread(target=send_big_field)
    sender.start()
    try:
        assert started.wait(15)
        assert _health(bounded) == b"HTTP/1.1 200 OK"  # on another connection, meanwhile
        sender.join(60)
        assert not sender.is_alive()
        reply = _until_closed(big)
    finally:
        big.close()
    if where == "trailers":
        assert reply == b""
    else:  # the 431 may be lost to the reset a close with unread bytes causes
        assert reply == b"" or _status(reply) == b"HTTP/1.1 431 Request Header Fields Too Large"
    # The server stopped reading after 64 KiB (a head gets 431, trailers no reply: the app holds the request,
    # and sees the client disconnect): the rest never left the client (its and the server's socket
    # buffers hold a few MiB: 1-3 MiB had left it when this was written).
    assert sent < 16 * MIB, sent


def test_an_incomplete_head_is_closed(bounded: LiveServer) -> None:
    with _connect(bounded) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        began = time.monotonic()
        reply = _until_closed(connection)
        waited = time.monotonic() - began
    assert _status(reply) == b"HTTP/1.1 408 Request Timeout"
    assert b"\r\nconnection: close\r\n" in reply.lower()
    assert waited >= TIMEOUT_S * 0.9


def test_a_head_that_keeps_dripping_is_closed_all_the_same(bounded: LiveServer) -> None:
    """Slowloris: a byte every 0.1 s keeps a connection busy but never finishes its head (it would take 20 s)."""
    head = _head("X-Slow: " + "a" * 200)
    sent = 0
    with _connect(bounded) as connection:
        while sent < len(head) and not select.select([connection], [], [], 0.1)[0]:
            try:
                connection.sendall(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        reply = _until_closed(connection)
    assert sent < len(head)
    assert _status(reply) == b"HTTP/1.1 408 Request Timeout"


def test_a_connection_that_sends_nothing_is_closed(bounded: LiveServer) -> None:
    with _connect(bounded) as connection:
        assert _until_closed(connection) == b""


def test_an_incomplete_body_is_closed(bounded: LiveServer) -> None:
    body = b'{"query": "{ __typename }"}'
    with _connect(bounded) as connection:
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        assert _until_closed(connection) == b""  # no reply: the app was still waiting for the body


def test_a_request_that_arrives_in_time_is_served_and_the_connection_kept(bounded: LiveServer) -> None:
    """The deadline is for a request to arrive, in pieces too; between requests uvicorn's keep-alive timeout
    (5 s) applies, not this one."""
    head = _head()
    with _connect(bounded) as connection:
        connection.sendall(head[:20])
        time.sleep(TIMEOUT_S / 2)
        connection.sendall(head[20:])
        assert _one_reply(connection) == b"HTTP/1.1 200 OK"
        time.sleep(TIMEOUT_S * 1.5)
        connection.sendall(_head("Connection: close"))
        assert _status(_until_closed(connection)) == b"HTTP/1.1 200 OK"


def test_several_workers_are_bounded_too(database_url: str, tmp_path: Path) -> None:
    """`--workers N`: uvicorn's supervisor hands its settings, the bounded protocol among them, to the worker
    processes it spawns (whichever of them takes each connection here)."""
    several = start_server(database_url, tmp_path, workers=2)
    try:
        for _ in range(8):
            with _connect(several) as connection:
                _send(connection, _head("X-Big: " + "a" * HEAD_LIMIT))
                assert _status(_until_closed(connection)) == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert _health(several) == b"HTTP/1.1 200 OK"
    finally:
        several.stop()
