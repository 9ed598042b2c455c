"""The till load through PgBouncer (transaction mode) beside the same load straight to PostgreSQL.

    python bench/pgbouncer_run.py [--cards 10000] [--connections 8] [--duration 10] [--repeat 2] [--workers 2]

Three ways to the same database, each a `giftledger serve --workers W` measured with wrk and bench/run.py's
scripts (a redemption, a balance check), alternating so the machine's drift falls on all of them:

- `direct`: giftledger's default: each hot statement prepared once per connection (asyncpg's statement cache).
- `direct, no cache`: GIFTLEDGER_DATABASE_POOLER=pgbouncer but straight to PostgreSQL: what giving up prepared
  statements costs on its own (each statement parsed and planned every time).
- `pgbouncer`: the same setting through Debian's PgBouncer (1.18: no `max_prepared_statements`) in transaction
  mode, `--pool` server connections.

A fresh database is created (and dropped) on the server --database-url names (default: TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/test). PostgreSQL's CPU is that server's processes' alone (PgBouncer's is
not counted anywhere). Figures: docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "src", ROOT / "bench", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import asyncpg  # noqa: E402
import run as bench_run  # noqa: E402
from tests.storage.pgbouncer import Bouncer, unavailable  # noqa: E402
from tests.support import create_postgres_database, drop_postgres_database, server_url_option  # noqa: E402

SCRIPTS = ("redeem.lua", "balance.lua")


def only_this_server(url: str) -> None:
    """bench/run.py counts every PostgreSQL process on the machine; here only the bench server's own (its
    postmaster and the processes it started), so other servers on the machine do not count."""

    async def postmaster() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:  # read while the backend is there: it leaves /proc when the connection closes
            return parent(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    def parent(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
        return 0

    root = asyncio.run(postmaster())
    everything = bench_run.postgres_pids

    def own() -> list[int]:
        found = []
        for pid in everything():
            try:
                if pid == root or parent(pid) == root:
                    found.append(pid)
            except OSError:
                continue
        return found

    bench_run.postgres_pids = own


def start(bench: bench_run.Bench, url: str, pooler: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = bench_run.free_port()
    env = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",
        "GIFTLEDGER_SECRET_KEY": bench_run.SECRET,
        "GIFTLEDGER_DATABASE_URL": url,
        "GIFTLEDGER_DATABASE_POOLER": pooler,
        **bench_run.NO_BUDGET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "giftledger", "serve", "--port", str(port), "--workers", str(bench.workers)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    bench_run.wait_ready(f"{base}/healthz", process)
    return process, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=10, help="PgBouncer's server connections")
    server_url_option(parser)
    options = parser.parse_args()
    if (reason := unavailable()) is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    url = create_postgres_database(options.database_url)
    bouncer: Bouncer | None = None
    try:
        bouncer = Bouncer(url, pool_size=options.pool)
        only_this_server(url)
        bench = bench_run.Bench(options.database_url, url, options.cards, options.workers, options.duration)
        account_id = asyncio.run(bench_run.prepare(bench))
        asyncio.run(bench_run.load_cards(bench, account_id, 1, options.cards + 1))
        through = bouncer.url(url.rsplit("/", 1)[1].split("?", 1)[0])
        ways = [("direct", url, "none"), ("direct, no cache", url, "pgbouncer"), ("pgbouncer", through, "pgbouncer")]
        results: dict[tuple[str, str], list[bench_run.Row]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for round_number in range(options.repeat):
                order = ways if round_number % 2 == 0 else list(reversed(ways))
                for name, target, pooler in order:
                    process, base = start(bench, target, pooler, Path(tmp) / f"{name}.log")
                    try:
                        bench.token = bench_run.login_token(base, bench)
                        for script in SCRIPTS:
                            row = bench_run.run_wrk(bench, script, base, options.connections, process.pid)
                            results.setdefault((name, script), []).append(row)
                            print(f"{name:17} {script:12} {row.rps:8.0f} req/s", file=sys.stderr, flush=True)
                    finally:
                        bench_run.stop(process)
        print(
            f"\n{options.cards:,} cards, {options.workers} workers, {options.connections} connections, "
            f"{options.duration}s each, best of {options.repeat} (alternating); PgBouncer pool {options.pool}"
        )
        print("| way | operation | req/s | p50 ms | p99 ms | errors | server CPU ms/req | PostgreSQL CPU ms/req |")
        print("|---|---|---|---|---|---|---|---|")
        for script in SCRIPTS:
            for name, _, _ in ways:
                best = max(results[(name, script)], key=lambda r: r.rps)
                print(
                    f"| {name} | {best.operation} | {best.rps:.0f} | {best.p50_ms:.1f} | {best.p99_ms:.1f} "
                    f"| {sum(r.errors for r in results[(name, script)])} | {best.cpu_ms_per_request or 0:.2f} "
                    f"| {best.db_cpu_ms_per_request or 0:.2f} |"
                )
        return 0
    finally:
        if bouncer is not None:
            bouncer.stop()
        drop_postgres_database(options.database_url, url)


if __name__ == "__main__":
    sys.exit(main())
