"""Serving from several processes with uvicorn's own supervisor (`uvicorn.supervisors.Multiprocess`, what
`uvicorn --workers N` runs). One process (`--workers 1`) is plain `uvicorn.run`.

What uvicorn does for us (0.51 or later; checked on 0.55):
- N worker processes (spawned, each loading the app through `worker_app`) accept from one listening socket
  that the parent bound.
- A worker that dies is replaced (since 0.30); one that stops answering the parent's health check for
  `timeout_worker_healthcheck` (5 s) is killed and replaced.
- A worker that cannot start (it exits with uvicorn's startup-failure code 3: the app fails to load, or its
  lifespan startup fails) stops the whole server rather than being restarted for ever (since 0.50).
- SIGTERM or SIGINT: the parent sends SIGTERM to every worker, each stops accepting, finishes the requests
  it holds (uvicorn's graceful shutdown, up to `GRACE_S`) and exits, and the parent waits for them all.
  SIGHUP replaces the workers one at a time; SIGTTIN and SIGTTOU add or remove one.

What it does not do:
- Spread connections evenly. Each worker takes whichever new connection it wakes up for first: in the
  bench, 8 connections landed 6/2 at times and 64 up to 48/16, with no consistent cost against the parent
  that dealt them evenly before (docs/performance.md, "Serving"). Where a few long-lived connections must
  be spread, the README ("Serving") names a proxy to put in front.
- Count an exception raised while the app module is imported as a failure to start: the worker exits with
  1 and is restarted for ever. So the workers load the app through `worker_app`, a factory that turns any
  exception in building it into exit code 3.
- Exit with an error when a worker could not start: after stopping, `uvicorn.run` returns normally (only a
  single process exits with 3). So `run` builds the supervisor as `uvicorn.run` does (`Config`,
  `bind_socket`, `Multiprocess`; its constructor as of 0.51) and, once it has stopped, exits with 3 itself
  if a worker's exit code says it could not start.
- Bound a request's head (its size, its number of headers) or the time a request may take to arrive: its
  httptools protocol reads a head of any size and keeps a connection that stops half way for ever. `options`
  gives it a subclass that does (`http=`; cli/request_bounds.py).
- Stop the workers when the parent is killed outright (SIGKILL): they go on serving until stopped. A
  service manager that stops the whole process group (systemd's default, a container) covers that.

Why not gunicorn with uvicorn-worker's `UvicornWorker`: it halts on a worker that fails to boot, with exit
code 3, and its workers notice a dead parent, but SIGINT is its quick shutdown (SIGQUIT to the workers), on
which uvicorn-worker 0.4's workers only mark themselves stopping and go on accepting until gunicorn kills
them at its graceful timeout (tried with gunicorn 27); and it is two more dependencies."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from giftledger import metrics
from giftledger.cli.request_bounds import DEFAULT_BOUNDS, RequestBounds, protocol
from giftledger.logs import log_config

GRACE_S = 20  # how long a worker may take to finish its requests when asked to stop


def worker_app() -> ASGIApp:
    """`giftledger.asgi:app`, which builds the app from the environment (`serve` puts the database URL
    there); if it cannot be built, exit with uvicorn's startup-failure code, so that uvicorn's supervisor
    stops the server rather than starting the worker again."""
    try:
        from giftledger.asgi import app
    except Exception:
        logging.getLogger("uvicorn.error").exception("giftledger's app could not be built")
        sys.exit(STARTUP_FAILURE)
    return app


def options(host: str, port: int, workers: int, bounds: RequestBounds = DEFAULT_BOUNDS) -> dict[str, Any]:
    """uvicorn's settings for giftledger, one process or several: httptools with `bounds` on each request's
    head and on the time it takes to arrive (cli/request_bounds.py); its log as JSON lines (logs.py)."""
    return {
        "app": "giftledger.cli.serving:worker_app",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_config": log_config(),  # JSON lines on stderr, in every worker (logs.py)
        "log_level": "warning",  # uvicorn's own loggers; giftledger's request lines are INFO (logs.py)
        "access_log": False,  # replaced by giftledger's request line (request_log.py): no query strings
        "timeout_graceful_shutdown": GRACE_S,
        "proxy_headers": False,
        "http": protocol(bounds),
        "ws": "none",  # giftledger serves no WebSocket: an upgrade request is served as plain HTTP
    }


class Supervisor(Multiprocess):
    """uvicorn's supervisor, telling the metrics of each worker that ended (replaced, or stopped with the rest)."""

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {process.pid for process in self.processes}:
            metrics.worker_ended(pid)

    def restart_all(self) -> None:
        before = {process.pid for process in self.processes}
        super().restart_all()
        for pid in before - {process.pid for process in self.processes}:
            metrics.worker_ended(pid)


def run(settings: dict[str, Any], data_dir: Path = Path("var")) -> None:
    """Serve with uvicorn's settings `settings`; exits with 3 if a worker could not start. Several workers
    keep their metrics in a directory of this run's under `data_dir` (metrics.worker_directory)."""
    if settings.get("workers", 1) <= 1:
        uvicorn.run(**settings)  # exits with 3 itself if the server could not start
        return
    with metrics.worker_directory(data_dir):  # before the workers start: they inherit the environment
        config = uvicorn.Config(**settings)
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        supervisor.run()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        logging.getLogger("giftledger").error(
            "a worker could not start (exit code %d); see the log above", STARTUP_FAILURE
        )
        raise SystemExit(STARTUP_FAILURE)


def serve(
    host: str, port: int, workers: int, bounds: RequestBounds = DEFAULT_BOUNDS, data_dir: Path = Path("var")
) -> None:
    """Serve giftledger on `host:port` from `workers` processes, with `bounds` on every request."""
    run(options(host, port, workers, bounds), data_dir)
