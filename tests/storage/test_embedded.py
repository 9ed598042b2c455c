"""The private PostgreSQL server (giftledger.storage.embedded), driven as giftledger's commands would drive it:
each holder is a process of its own (`python -c`), and what runs is read from postmaster.pid and the process
table. The cases after the first share one data directory; each starts with no server and leaves none.

The data directories are not under pytest's tmp_path: run as root, the server runs as another user that must
traverse every parent directory, and each pytest session that starts on the machine (another worktree's, say)
takes group and other access off /tmp/pytest-of-<user> again."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import psutil
import pytest

HOLDER = """
import sys
from pathlib import Path
from giftledger.storage.embedded import hold
print(hold(Path(sys.argv[1])), flush=True)
sys.stdin.read()  # holds until its stdin closes (a clean exit) or a signal comes
"""

CHECK = """
import asyncio, json, sys
from pathlib import Path
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from giftledger.storage.embedded import embedded_server

async def check(url):
    connection = await asyncpg.connect(url)
    try:
        found = {"one": await connection.fetchval("SELECT 1")}
        found["database"] = await connection.fetchval("SELECT current_database()")
    finally:
        await connection.close()
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.connect() as c:
        found["sqlalchemy"] = (await c.execute(text("SELECT current_database()"))).scalar_one()
    await engine.dispose()
    return found | {"url": url}

with embedded_server(Path(sys.argv[1])) as url:
    print(json.dumps(asyncio.run(check(url))))
"""


def servers(data_dir: Path) -> list[psutil.Process]:
    """The postgres processes whose command line names this data directory (the postmaster's -D)."""
    pgdata = str(data_dir / "postgres")
    return [p for p in psutil.process_iter(["cmdline"]) if pgdata in (p.info["cmdline"] or [])]


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what} after {timeout_s} s")
        time.sleep(0.05)


def stopped(data_dir: Path) -> None:
    wait_for(lambda: not servers(data_dir), f"no postgres on {data_dir} any more")


def select_one(url: str) -> int:
    async def query() -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval("SELECT 1"))
        finally:
            await connection.close()

    return asyncio.run(query())


class Holder:
    """A process that holds the server until its stdin closes (`release`), or a signal ends it."""

    def __init__(self, data_dir: Path) -> None:
        command = [sys.executable, "-c", HOLDER, str(data_dir)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            assert self.process.stdout is not None
            self._url = self.process.stdout.readline().strip()
            assert self._url, f"the holder exited with {self.process.wait()} before it held the server"
        return self._url

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(60) == 0

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)
        self.process.wait(60)  # reaped: a zombie would still count as a live holder


def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="giftledger-embedded-")).resolve()
    yield path
    shutil.rmtree(path, ignore_errors=True)


data_dir = pytest.fixture(scope="module")(scratch)
fresh_dir = pytest.fixture(scratch)


@pytest.fixture
def holder(data_dir: Path) -> Iterator[Callable[[], Holder]]:
    """Starts holders on the shared data directory; afterwards ends those left and stops any server left."""
    started: list[Holder] = []

    def start() -> Holder:
        started.append(Holder(data_dir))
        return started[-1]

    assert not servers(data_dir)
    yield start
    for one in started:
        if one.process.poll() is None:
            one.process.kill()
            one.process.wait()
    for process in servers(data_dir):
        process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: the next case starts with no server
    stopped(data_dir)


@pytest.mark.parametrize("name", ["short", "long" * 25], ids=["short-path", "path-too-long-for-a-socket"])
def test_a_fresh_data_dir_is_initialised_and_serves_the_giftledger_database(fresh_dir: Path, name: str) -> None:
    data_dir = fresh_dir / name
    try:
        result = subprocess.run([sys.executable, "-c", CHECK, str(data_dir)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert (found["one"], found["database"], found["sqlalchemy"]) == (1, "giftledger", "giftledger")
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        url = urlsplit(found["url"])
        assert (url.scheme, url.path) == ("postgresql", "/giftledger")
        # a Unix socket's path has at most 107 bytes: under a long data directory it is elsewhere
        socket_dir = Path(parse_qs(url.query)["host"][0])
        assert (socket_dir == data_dir / "postgres") == (len(name) < 50)
    finally:
        stopped(data_dir)


def test_two_holders_at_once_share_one_server_until_the_second_releases(
    data_dir: Path, holder: Callable[[], Holder]
) -> None:
    first, second = holder(), holder()  # both starting at once
    assert first.url == second.url
    pid = postmaster_pid(data_dir)
    assert [p.pid for p in servers(data_dir)] == [pid]
    first.release()
    assert [p.pid for p in servers(data_dir)] == [pid]
    assert select_one(second.url) == 1
    second.release()
    stopped(data_dir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_the_last_holder_stops_the_server(
    data_dir: Path, holder: Callable[[], Holder], signum: signal.Signals
) -> None:
    only = holder()
    assert select_one(only.url) == 1
    only.signal(signum)
    stopped(data_dir)


def test_a_server_left_by_a_killed_holder_is_reused_and_stopped_by_the_next_holder(
    data_dir: Path, holder: Callable[[], Holder]
) -> None:
    killed = holder()
    assert killed.url
    pid = postmaster_pid(data_dir)
    killed.signal(signal.SIGKILL)
    assert [p.pid for p in servers(data_dir)] == [pid]  # nothing released it
    next_one = holder()
    assert select_one(next_one.url) == 1
    assert [p.pid for p in servers(data_dir)] == [pid]  # the same server, no second
    next_one.release()
    stopped(data_dir)


def test_a_stale_postmaster_pid_gets_a_fresh_server(data_dir: Path, holder: Callable[[], Holder]) -> None:
    first = holder()
    assert first.url
    postmaster = psutil.Process(postmaster_pid(data_dir))
    family = [postmaster, *postmaster.children()]
    postmaster.kill()
    wait_for(lambda: not any(p.is_running() for p in family), "the killed postmaster and its children to be gone")
    assert (data_dir / "postgres" / "postmaster.pid").exists()  # left behind, naming a dead process
    second = holder()
    assert select_one(second.url) == 1
    assert postmaster_pid(data_dir) != postmaster.pid
    assert [p.pid for p in servers(data_dir)] == [postmaster_pid(data_dir)]
    second.release()  # the first still holds it
    assert select_one(first.url) == 1
    first.release()  # the last holder: it stops the server the second started
    stopped(data_dir)
