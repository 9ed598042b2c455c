"""What the request bounds cost (cli/request_bounds.py): giftledger's own app and uvicorn settings
(`serving.options`), one worker each, served by the bounded protocol as shipped and by uvicorn's plain
httptools protocol, GET /healthz under wrk, the two measured in alternating runs (the order swapped every
round, so that a drift of the machine's speed falls on both), medians side by side: requests/s, and the
server's CPU time per request (steadier than requests/s on a machine shared with other work), and the median
of each round's ratio of the two.

    python bench/request_bounds.py [--rounds 11] [--duration 5] [--connections 8] [--database-url URL]

Two loads: kept-alive connections (what tills do), and a new connection per request (`Connection: close`),
which pays the bounded protocol's per-connection timer too. Then, since a difference of a few microseconds is
lost in the noise of wrk runs on a shared machine, the protocols alone, in this process: each fed requests by
hand (a stand-in transport, an app that answers at once), in alternating batches, microseconds per request
and per connection, and the median of each pair's difference. /healthz never touches the database, but the
servers' outbox senders do: they run on a fresh database, created and dropped, on the PostgreSQL server
named by --database-url (default: TEST_DATABASE_URL, else an embedded server started for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from run import cpu_seconds, free_port, process_tree, stop, wait_ready  # noqa: E402
from tests.support import fresh_database  # noqa: E402

from giftledger.cli.request_bounds import DEFAULT_BOUNDS, protocol  # noqa: E402
from giftledger.storage.embedded import embedded_server  # noqa: E402

SECRET = "bench-secret-key-" + "x" * 40
# The bounded protocol is what `serving.options` gives; "plain" swaps in uvicorn's own httptools protocol.
SERVE = """
import sys
from giftledger.cli import serving
settings = serving.options("127.0.0.1", int(sys.argv[1]), 1)
if sys.argv[2] == "plain":
    settings["http"] = "httptools"
serving.run(settings)
"""
VARIANTS = ("plain", "bounded")


def start(variant: str, database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",  # mail to a directory, not SMTP; otherwise as in production
        "GIFTLEDGER_SECRET_KEY": SECRET,
        "GIFTLEDGER_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT / "src"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), variant],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    wait_ready(url, process)
    return process, url


def wrk(server: subprocess.Popen[bytes], url: str, connections: int, duration: int, close: bool) -> tuple[float, float]:
    """Requests/s and the server's CPU microseconds per request; fails if any request did not get a 2xx."""
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", url]
    if close:
        command[1:1] = ["-H", "Connection: close"]
    pids = process_tree(server.pid)
    before = cpu_seconds(pids)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pids) - before
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    # With `Connection: close` wrk counts the server's closing each connection as a read error; only connect,
    # write and timeout errors count there.
    failed = (int(bad.group(1)) if bad else 0) + (
        sum(int(g) for g in (errors.groups()[0::2] if close else errors.groups())) if errors else 0
    )
    if failed:
        raise SystemExit(f"{failed} requests failed:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), used * 1e6 / requests  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    with postgres(args.database_url) as server_url, fresh_database(server_url) as database_url:
        measure(args, database_url)
    uvloop.run(in_process())


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="giftledger-bench-pg-") as directory,
        embedded_server(Path(directory)) as started,
    ):
        yield started


def measure(args: argparse.Namespace, database_url: str) -> None:
    servers = {v: start(v, database_url, args.log_dir / f"bench-bounds-{v}.log") for v in VARIANTS}
    try:
        for close in (False, True):
            rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
            cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for n in range(args.rounds):
                for variant in VARIANTS if n % 2 == 0 else VARIANTS[::-1]:
                    process, url = servers[variant]
                    rate, cpu_us = wrk(process, url, args.connections, args.duration, close)
                    rps[variant].append(rate)
                    cpu[variant].append(cpu_us)
            load = "new connection per request" if close else "kept-alive connections"
            print(f"GET /healthz, {args.connections} {load}, {args.rounds} alternating runs of {args.duration} s")
            for variant in VARIANTS:
                print(
                    f"  {variant:8} median {statistics.median(rps[variant]):8,.0f} requests/s, "
                    f"{statistics.median(cpu[variant]):6.1f} us CPU/request  "
                    f"(runs: {', '.join(f'{r:,.0f}' for r in rps[variant])} /s; "
                    f"{', '.join(f'{c:.1f}' for c in cpu[variant])} us)"
                )
            # Each round's two runs are adjacent: their ratio leaves out most of the drift between rounds.
            ratio = statistics.median(b / p for b, p in zip(rps["bounded"], rps["plain"], strict=True))
            cost = statistics.median(b / p for b, p in zip(cpu["bounded"], cpu["plain"], strict=True))
            print(
                f"  bounded / plain, median of the rounds' ratios: requests/s {ratio:.1%}, CPU per request {cost:.1%}"
            )
    finally:
        for process, _ in servers.values():
            stop(process)


class Transport(asyncio.Transport):
    """Enough of a socket's transport for the protocols: takes what they write, notes a close."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


KEPT = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CLOSED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n"


async def batch(make: Callable[..., asyncio.Protocol], per_connection: bool, n: int = 1000) -> float:
    """Microseconds per request: `n` requests on one connection, or each on a connection of its own."""
    config = Config(app=answer, http="httptools", ws="none", lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    began = time.perf_counter()
    connection = None
    for i in range(n):
        if per_connection or i == 0:
            connection = make(config=config, server_state=state, app_state={})
            connection.connection_made(Transport())
        assert connection is not None
        connection.data_received(CLOSED if per_connection else KEPT)  # type: ignore[attr-defined]
        await asyncio.sleep(0)  # the app's task answers
        await asyncio.sleep(0)
        if per_connection:
            connection.connection_lost(None)
    return (time.perf_counter() - began) * 1e6 / n


async def in_process(rounds: int = 100) -> None:
    makers = {"plain": HttpToolsProtocol, "bounded": protocol(DEFAULT_BOUNDS)}
    for per_connection in (False, True):
        us: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for n in range(rounds):
            for variant in VARIANTS if n % 2 == 0 else VARIANTS[::-1]:
                us[variant].append(await batch(makers[variant], per_connection))
        unit = "per connection (one request each)" if per_connection else "per request (kept-alive)"
        plain, bounded = (statistics.median(us[v]) for v in VARIANTS)
        extra = statistics.median(b - p for b, p in zip(us["bounded"], us["plain"], strict=True))
        print(
            f"In-process, {unit}, {rounds} alternating batches: plain {plain:.1f} us, bounded {bounded:.1f} us, "
            f"bounded - plain {extra:+.1f} us (median of the pairs)"
        )


if __name__ == "__main__":
    main()
