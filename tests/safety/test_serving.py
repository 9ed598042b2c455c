"""`giftledger serve --workers N` on uvicorn's own supervisor (cli/serving.py): what is still ours to promise.
N worker processes each serve; a worker that dies is replaced while the others carry on; SIGTERM or SIGINT
lets a request in hand finish and then stops the parent and every worker; a worker that cannot start stops
the server with an error instead of being started again and again. How connections are spread is uvicorn's
business (and the kernel's), not a promise."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.safety import processes
from tests.safety.processes import ESTABLISHED, LISTENING
from tests.support import LiveServer, free_port, start_server

WORKERS = 2


def _in_session(session: int) -> list[int]:
    """Every process whose session is `session` (a process started with start_new_session=True and all its
    descendants, wherever they were re-parented)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _server_end(connection: socket.socket, port: int) -> set[int]:
    """The socket inode of the server's end of `connection` (to local `port`)."""
    return processes.sockets(port, ESTABLISHED, connection.getsockname()[1])


def _reply(connection: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP reply on `connection` (Content-Length framed): its status line and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before a reply: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = connection.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed inside a reply: {data!r}")
        body += chunk
    return lines[0], body


def _health(connection: socket.socket) -> bytes:
    """One keep-alive GET /healthz on an open connection; the reply's status line."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    return _reply(connection)[0]


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _served_within_tries(server: LiveServer, worker: int, tries: int = 5) -> socket.socket:
    """`_connection_served_by`, tried again while `worker` (just started) may still be starting up."""
    for _ in range(tries - 1):
        try:
            return _connection_served_by(server, worker)
        except TimeoutError:
            time.sleep(1)
    return _connection_served_by(server, worker)


def _connection_served_by(server: LiveServer, worker: int) -> socket.socket:
    """A keep-alive connection that `worker` accepted and answered. The other workers are stopped (SIGSTOP)
    meanwhile, so that only `worker` can accept it, and continued at once: well inside the 5 s that
    uvicorn's supervisor gives a worker to answer its health check."""
    port = _port(server)
    others = [pid for pid in processes.workers(server.process.pid) if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=3)
        status = _health(connection)
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)
    assert status == b"HTTP/1.1 200 OK"
    assert processes.held(worker, _server_end(connection, port)) == 1
    return connection


ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def several(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(database_url, tmp_path, workers=WORKERS)
    _wait_for(lambda: len(processes.workers(live.process.pid)) == WORKERS)
    yield live
    live.stop()


@ON_POSTGRESQL
def test_each_worker_serves(several: LiveServer) -> None:
    workers = processes.workers(several.process.pid)
    assert len(workers) == WORKERS
    connections = [_connection_served_by(several, pid) for pid in workers]
    try:
        assert [_health(c) for c in connections] == [b"HTTP/1.1 200 OK"] * WORKERS  # each kept its connection
        assert (
            processes.held(several.process.pid, processes.sockets(_port(several), ESTABLISHED)) == 0
        )  # the parent serves none
    finally:
        for c in connections:
            c.close()


@ON_POSTGRESQL
def test_a_worker_that_dies_is_replaced(several: LiveServer) -> None:
    port = _port(several)
    killed, survivor = processes.workers(several.process.pid)
    with _connection_served_by(several, survivor) as kept:
        os.kill(killed, signal.SIGKILL)
        # Meanwhile the survivor carries on, with the connection it holds and with new ones. (Before uvicorn's
        # keep-alive timeout, 5 s, closes the idle one.)
        assert _health(kept) == b"HTTP/1.1 200 OK"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as meanwhile:
        assert _health(meanwhile) == b"HTTP/1.1 200 OK"
    _wait_for(
        lambda: (
            len(processes.workers(several.process.pid)) == WORKERS
            and killed not in processes.workers(several.process.pid)
        )
    )
    workers = processes.workers(several.process.pid)
    assert survivor in workers
    for pid in workers:  # the replacement serves too (once it has started up: a few tries, each short enough
        # that the stopped workers stay well inside the supervisor's 5 s)
        _served_within_tries(several, pid).close()
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        assert [_health(c) for c in connections] == [b"HTTP/1.1 200 OK"] * 8
    finally:
        for c in connections:
            c.close()


@ON_POSTGRESQL
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_finishes_the_request_in_hand_then_stops_every_worker(
    several: LiveServer, signum: signal.Signals
) -> None:
    port = _port(several)
    workers = processes.workers(several.process.pid)
    body = b'{"query": "{ __typename }"}'
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        # The request is in hand once the app waits for its body: uvicorn then answers "100 Continue".
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert connection.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        holder = next(pid for pid in workers if processes.held(pid, _server_end(connection, port)))
        listener = processes.sockets(port, LISTENING)
        several.process.send_signal(signum)
        _wait_for(lambda: processes.held(holder, listener) == 0)  # the worker stopped accepting: it is shutting down
        connection.sendall(body)
        status, reply = _reply(connection)
        assert status == b"HTTP/1.1 200 OK"
        assert b"__typename" in reply
    finally:
        connection.close()
    assert several.process.wait(timeout=60) == 0
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@ON_POSTGRESQL
def test_a_worker_that_cannot_start_stops_the_server(database_url: str, tmp_path: Path) -> None:
    """A worker whose app cannot be built (here: a secret key too short, which `serve` itself would have
    refused before starting any) exits with uvicorn's startup-failure code; the server then stops, exits
    with that code and leaves no process behind, rather than starting workers again and again."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", f"from giftledger.cli import serving; serving.serve('127.0.0.1', {port}, {WORKERS})"],
        env={
            **os.environ,
            "GIFTLEDGER_ENV": "test",
            "GIFTLEDGER_DATABASE_URL": database_url,
            "GIFTLEDGER_SECRET_KEY": "too-short",
        },
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = server.communicate(timeout=120)  # a server that restarts its workers for ever never ends
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    log = output.decode()
    assert server.returncode == 3, log
    assert "GIFTLEDGER_SECRET_KEY must be at least 32 characters" in log
    assert "a worker could not start (exit code 3)" in log
    _wait_for(lambda: not _in_session(server.pid))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@ON_POSTGRESQL
def test_one_worker_is_uvicorn_alone(database_url: str, tmp_path: Path) -> None:
    live = start_server(database_url, tmp_path, workers=1)
    try:
        assert processes.workers(live.process.pid) == []
        with socket.create_connection(("127.0.0.1", _port(live)), timeout=10) as connection:
            assert _health(connection) == b"HTTP/1.1 200 OK"
        live.process.send_signal(signal.SIGTERM)
        # uvicorn alone, once it has shut down gracefully, raises the signal it caught again (since 0.29)
        assert live.process.wait(timeout=60) == -signal.SIGTERM
    finally:
        live.stop()
