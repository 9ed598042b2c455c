"""`giftledger serve --workers N`: the parent deals connections to its workers in turn (cli/serving.py), so a
few long-lived till connections are spread evenly; a worker that dies is replaced; SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, start_server

WORKERS = 2
CONNECTIONS = 8


def _workers(parent: int) -> list[int]:
    """The worker processes of `parent` (multiprocessing's spawned children, not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _established(port: int) -> set[int]:
    """Socket inodes of the established TCP connections to local `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(int(fields[9]))
    return inodes


def _connections_held(pid: int, port: int) -> int:
    wanted = _established(port)
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in wanted:
            held += 1
    return held


def _health(connection: socket.socket) -> bytes:
    """One keep-alive GET /healthz on an open connection; the reply's status line."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.split(b"\r\n", 1)[0]


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def several(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(database_url, tmp_path, workers=WORKERS)
    _wait_for(lambda: len(_workers(live.process.pid)) == WORKERS)
    yield live
    live.stop()


@ON_POSTGRESQL
def test_connections_are_dealt_evenly_to_the_workers(several: LiveServer) -> None:
    port = _port(several)
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        assert [_health(c) for c in connections] == [b"HTTP/1.1 200 OK"] * CONNECTIONS
        workers = _workers(several.process.pid)
        held = {pid: _connections_held(pid, port) for pid in workers}
        assert sorted(held.values()) == [CONNECTIONS // WORKERS] * WORKERS
        assert _connections_held(several.process.pid, port) == 0  # the parent keeps none
        # Each connection stays with its worker: a second request on each still succeeds.
        assert [_health(c) for c in connections] == [b"HTTP/1.1 200 OK"] * CONNECTIONS
    finally:
        for c in connections:
            c.close()


@ON_POSTGRESQL
def test_a_worker_that_dies_is_replaced(several: LiveServer) -> None:
    port = _port(several)
    before = _workers(several.process.pid)
    os.kill(before[0], signal.SIGKILL)
    _wait_for(lambda: len(_workers(several.process.pid)) == WORKERS and before[0] not in _workers(several.process.pid))
    after = _workers(several.process.pid)
    assert before[1] in after and len(set(after) - set(before)) == 1
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        assert [_health(c) for c in connections] == [b"HTTP/1.1 200 OK"] * CONNECTIONS
        assert sorted(_connections_held(pid, port) for pid in after) == [CONNECTIONS // WORKERS] * WORKERS
    finally:
        for c in connections:
            c.close()
    assert "exited with -9; starting another" in several.log_path.read_text()


@ON_POSTGRESQL
def test_sigterm_stops_the_parent_and_every_worker(several: LiveServer) -> None:
    workers = _workers(several.process.pid)
    several.process.send_signal(signal.SIGTERM)
    assert several.process.wait(timeout=30) == 0
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=10)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", _port(several)), timeout=2)
