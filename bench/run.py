"""giftledger benchmark: redemption, balance check, LineItems and login over HTTP, side by side with the
limit (pgbench running the server's own redemption statement), the lean limit (pgbench running the least a
durable redemption does, bench/pgbench_script.py) and a bare Starlette endpoint, all in one run on one machine.

    python bench/run.py [--cards 100000] [--duration 10] [--connections 1,8,32] [--workers N] [--pairs 3]
                        [--scale-to 1000000] [--messages 10000] [--only redeem,balance]

Uses the PostgreSQL named by TEST_DATABASE_URL (default: the local one) in a fresh database of its own,
dropped at the end. The server mails to an SMTP sink started for the run (bench/outbox_drain.py), as production
settings require an SMTP server. Prints one table; exits non-zero if any request errored.
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
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import card_import  # noqa: E402
import expiry_run  # noqa: E402
import export_stream  # noqa: E402
import outbox_drain  # noqa: E402
import pgbench_script  # noqa: E402
import webhook_delivery  # noqa: E402
from tests.safety import processes  # noqa: E402

from giftledger.app import build_services  # noqa: E402
from giftledger.config import Settings  # noqa: E402
from giftledger.domain.catalogue import POINTONE  # noqa: E402
from giftledger.services import setup  # noqa: E402
from giftledger.storage import migrate  # noqa: E402

BENCH = Path(__file__).resolve().parent
T = TypeVar("T")
SECRET = "bench-secret-key-" + "x" * 40
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
EPOS = "bench"
BALANCE = 1_000_000_000
GROUP = 4  # API users of the `group` part, each at a site of its own
GROUP_CONNECTIONS = 64
# What a run measures; `--only` picks some. The first seven are rows at each connection count; "mixed" is the
# redemption beside logins, "budget" the rows with the cost budget on, "alternating" the redemption runs
# between limit runs, "outbox" the drain of a backlog of e-gifts and the redemption beside it (bench/outbox_drain.py).
# "import": `giftledger cards import` of 100,000 cards (bench/card_import.py). "webhooks": the redemption with
# a webhook endpoint subscribed to it, beside the same without (bench/webhook_delivery.py). "export":
# `giftledger export transactions` of 1,000,000 line items (bench/export_stream.py). "expiry": an expiry run
# over 100,000 due cards while tills redeem, beside redemptions without it (bench/expiry_run.py).
PARTS = (
    "limit",
    "redeem",
    "balance",
    "line_items",
    "ping",
    "floor",
    "login",
    "mixed",
    "budget",
    "alternating",
    "outbox",
    "import",
    "webhooks",
    "export",
    "expiry",
    "group",
)
NAN = float("nan")  # a column that does not apply to a row (printed empty)


@dataclass
class Row:
    operation: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float | None = None
    db_cpu_ms_per_request: float | None = None
    rss_mb: float | None = None
    note: str = ""
    split: str = ""  # the server's connections per worker while it ran, most first ("5/3")
    inside: str = ""  # the server's own p99s over the run (request / connection wait / statement): `breakdown`


@dataclass
class Bench:
    base_url: str
    database_url: str
    cards: int
    workers: int
    duration: int
    rows: list[Row] = field(default_factory=list)
    api_username: str = ""
    api_password: str = ""
    account_id: int = 0
    api_user_id: int = 0
    scaled_from: int = 0
    token: str = ""
    repeat: int = 1
    only: frozenset[str] = frozenset(PARTS)
    # At 8 connections, alternating: limit, redemption, limit, ..., limit (each redemption between two limits).
    sandwich: list[Row] = field(default_factory=list)
    pairs: int = 3  # at 8 connections, the limit and the lean limit alternate this many times
    # (limit, lean limit, the 1-minute load average before the pair) at each connection count, in run order
    lean_pairs: dict[int, list[tuple[Row, Row, float]]] = field(default_factory=dict)
    messages: int = 10_000  # e-gifts queued for the outbox part
    sink: outbox_drain.Sink | None = None  # the SMTP server the bench server mails to
    due: int = 100_000  # due cards for the expiry part
    group: list[tuple[str, str, str]] = field(default_factory=list)  # API users (name, password, EPOS reference)
    # the webhooks part's runs with a dead endpoint: (without, with), alternating
    dead_pairs: list[tuple[Row, Row]] = field(default_factory=list)
    # the budget part's alternating runs, (budget off, budget on), by kind of request
    budget_pairs: dict[str, list[tuple[Row, Row]]] = field(default_factory=dict)


def beside(url: str, name: str) -> str:
    """The URL of database `name` on the server `url` names (its host and port, or socket directory, kept)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def progress(label: str, done: int, total: int) -> None:
    width = 40
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def prepare(bench: Bench) -> int:
    """Migrate, create the account, its site mapping and API user. Returns the account id."""
    services = build_services(Settings(database_url=bench.database_url, secret_key=SECRET, environment="test"))
    try:
        await migrate.upgrade(services.db.engine)
        account_id = await setup.create_account(services, "Bench")
        op = setup.operator(account_id)
        site = await setup.add_site(services, op, setup.SiteInput("Bench site", "", "B"))
        await setup.set_site_mapping(services, op, POINTONE, {site: EPOS})
        new = await setup.create_api_user(services, op, POINTONE)
        bench.api_username, bench.api_password = new.username, new.password
        bench.account_id, bench.api_user_id = account_id, new.id
        # A group of sites (the `group` part): GROUP API users of the same merchant, each at a site of its own.
        mapping = {site: EPOS}
        bench.group = [(new.username, new.password, EPOS)]
        for n in range(2, GROUP + 1):
            other = await setup.add_site(services, op, setup.SiteInput(f"Bench site {n}", "", f"B{n}"))
            mapping[other] = f"{EPOS}-{n}"
            user = await setup.create_api_user(services, op, POINTONE)
            bench.group.append((user.username, user.password, mapping[other]))
        await setup.set_site_mapping(services, op, POINTONE, mapping)
        return account_id
    finally:
        await services.db.dispose()


async def load_cards(bench: Bench, account_id: int, start: int, stop: int) -> None:
    """Cards start..stop-1 ("B000000000001"...), each with one transaction (reference "L<n>") and one
    inbound-balance-transfer line item, so every balance equals the sum of its line items; and as many cards
    of the lean limit's (bench/pgbench_script.py), its tables made with the first."""
    conn = await asyncpg.connect(bench.database_url)
    try:
        site_id = await conn.fetchval("SELECT id FROM sites WHERE account_id = $1", account_id)
        if start == 1:
            await conn.execute(pgbench_script.LEAN_TABLES)
        now = await conn.fetchval("SELECT now()")
        chunk = 50_000
        for low in range(start, stop, chunk):
            high = min(stop, low + chunk)
            async with conn.transaction():
                await conn.execute(
                    """
                    WITH c AS (
                      INSERT INTO cards (account_id, card_reference, currency, status, balance, tender_balance,
                                         discount_balance, initial_balance, created_at, updated_at)
                      SELECT $1, 'B' || lpad(n::text, 12, '0'), 'GBP', 'active', $4, $4, 0, $4, $5, $5
                      FROM generate_series($2::bigint, $3::bigint) AS n
                      RETURNING id, card_reference
                    ), t AS (
                      INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind,
                                                site_id, created_at)
                      SELECT $1, 60, 'L' || (substr(card_reference, 2)::bigint)::text, 'import', $6, $5 FROM c
                      RETURNING id, merchant_transaction_reference
                    )
                    INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount,
                                            site_id, merchant_id, created_at)
                    SELECT $1, c.id, t.id, 6, $4, $4, 0, $6, 60, $5
                    FROM c JOIN t
                      ON t.merchant_transaction_reference = 'L' || (substr(c.card_reference, 2)::bigint)::text
                    """,
                    account_id,
                    low,
                    high - 1,
                    BALANCE,
                    now,
                    site_id,
                )
                await conn.execute(pgbench_script.LEAN_CARDS, low, high - 1, BALANCE)
            progress("loading cards", high - 1, stop - 1)
        # As a database that grew over months would be: vacuumed, analysed, and the load's WAL checkpointed,
        # so the measurement does not run beside the bulk load's own write-back.
        await conn.execute("VACUUM ANALYZE")
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            sys.stderr.write("CHECKPOINT needs a superuser (or pg_checkpoint); measuring without it\n")
    finally:
        await conn.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


# One API user drives the whole load, and its cost budget at Toggle's defaults sustains about one redemption
# a second, so the budget is off for the table's rows; the "budget on" rows run the default code path with
# a budget too large to refuse anything.
NO_BUDGET = {"GIFTLEDGER_COST_MAXIMUM": "0"}
HUGE_BUDGET = {"GIFTLEDGER_COST_MAXIMUM": "1000000000000", "GIFTLEDGER_COST_RESTORE": "1000000000000"}


def start_giftledger(
    bench: Bench, log: Path, budget: dict[str, str] = NO_BUDGET
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = start_command(bench, log, ["serve", "--port", str(port), "--workers", str(bench.workers)], budget)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/healthz", process)
    return process, url


def start_command(bench: Bench, log: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`giftledger ARGS` on the bench's database, in production (unless `env` says otherwise), mailing to the
    bench's SMTP sink, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "giftledger", *args],
        env={
            **os.environ,
            "GIFTLEDGER_ENV": "production",
            "GIFTLEDGER_SECRET_KEY": SECRET,
            "GIFTLEDGER_DATABASE_URL": bench.database_url,
            "GIFTLEDGER_SMTP_URL": bench.sink.url if bench.sink else "",
            "GIFTLEDGER_MAIL_FROM": outbox_drain.SENDER,
            **env,
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
        start_new_session=True,
    )


def start_ping(bench: Bench, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_uvicorn(bench, log, "ping_app:app", "")


def start_floor(bench: Bench, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The balance check's floor (bench/floor_app.py): HTTP, the server's own statement and JSON, no more."""
    env = {
        "FLOOR_DATABASE_URL": bench.database_url,
        "FLOOR_ACCOUNT": str(bench.account_id),
        "FLOOR_API_USER": str(bench.api_user_id),
        "PYTHONPATH": str(ROOT / "src"),
    }
    return start_uvicorn(bench, log, "floor_app:app", "/graphql", env)


def start_uvicorn(
    bench: Bench, log: Path, app: str, path: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A bench app served as giftledger is: uvicorn, uvloop, httptools, one worker per core."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--app-dir",
            str(BENCH),
            "--port",
            str(port),
            "--workers",
            str(bench.workers),
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        env={**os.environ, **(env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + path, process)
    return process, url


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                fields = (child / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in pids:
                pids.append(int(child.name))
    return pids


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine (the server's backends, the WAL writer, ...)."""
    found = []
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                if (child / "comm").read_text().strip() == "postgres":
                    found.append(int(child.name))
            except OSError:
                continue
    return found


def database_cpu(work: Callable[[], T]) -> tuple[T, float]:
    """`work()`, and the CPU seconds PostgreSQL's processes spent meanwhile. Backends come and go, so they
    are read every 0.1 s: one opened meanwhile counts in full, one that exits loses at most its last 0.1 s."""
    before = {p: cpu_seconds([p]) for p in postgres_pids()}
    latest = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while True:
            for p in postgres_pids():
                latest[p] = max(latest.get(p, 0.0), cpu_seconds([p]))
            if stop.wait(0.1):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        stop.set()
        sampler.join()
    return result, sum(used - before.get(p, 0.0) for p, used in latest.items())


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler:
    """Samples, while a measurement runs, the RSS of every process of a server (the max per process) and,
    with `port`, how its connections are spread over its workers (the sample that saw the most of them)."""

    def __init__(self, pid: int, port: int | None = None) -> None:
        self.pid = pid
        self.port = port
        self.peak = 0.0
        self.split: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            workers = process_tree(self.pid)[1:] or [self.pid]
            self.peak = max([self.peak, *(rss_mb(p) for p in workers)])
            if self.port is not None:
                inodes = processes.sockets(self.port, processes.ESTABLISHED)
                serving = processes.workers(self.pid) or [self.pid]
                split = sorted((processes.held(p, inodes) for p in serving), reverse=True)
                if sum(split) >= sum(self.split):
                    self.split = split

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# The server's histograms (metrics.py) whose p99s `breakdown` reads: where a request's time goes beyond the
# database's own (pgbench's p99 beside them in the same run: `limits`).
INSIDE = (
    "giftledger_request_duration_seconds",  # arrival at the app to the end of the reply
    "giftledger_db_wait_seconds",  # a hot-path statement's wait for a pooled connection
    "giftledger_db_statement_seconds",  # its round trip
)


def histograms(url: str) -> dict[str, dict[float, float]] | None:
    """The server's histograms in INSIDE, as cumulative counts by upper bound (summed over labels and workers);
    None when the server has no /metrics (the bench's other apps)."""
    try:
        reply = httpx.get(f"{url}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    if reply.status_code != 200:
        return None
    found: dict[str, dict[float, float]] = {name: {} for name in INSIDE}
    for family in text_string_to_metric_families(reply.text):
        if family.name not in found:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                found[family.name][bound] = found[family.name].get(bound, 0.0) + sample.value
    return found


def percentile_of(before: dict[float, float], after: dict[float, float], p: float) -> float:
    """The p-th percentile (ms) of what was observed between two readings of one histogram, interpolated
    within its bucket; NaN when nothing was."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return NAN
    wanted = counts[-1] * p / 100
    low, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= wanted:
            if bound == float("inf"):
                return low * 1000
            share = (wanted - below) / (count - below) if count > below else 1.0
            return (low + (bound - low) * share) * 1000
        low, below = bound, count
    return NAN


def breakdown(before: dict[str, dict[float, float]] | None, after: dict[str, dict[float, float]] | None) -> str:
    """The server's own p99s between two readings: request / connection wait / statement, in ms."""
    if before is None or after is None:
        return ""
    return " / ".join(f"{percentile_of(before[name], after[name], 99):.1f}" for name in INSIDE)


def run_wrk(
    bench: Bench,
    script: str,
    url: str,
    connections: int,
    pid: int,
    duration: int | None = None,
    env: dict[str, str] | None = None,
) -> Row:
    env = {
        **(env or {}),
        **os.environ,
        "BENCH_WRK_DIR": str(BENCH / "wrk"),
        "BENCH_TOKEN": bench.token,
        "BENCH_CARDS": str(bench.cards),
        "BENCH_EPOS": EPOS,
        "BENCH_MERCHANT": str(POINTONE),
        "BENCH_USERNAME": bench.api_username,
        "BENCH_PASSWORD": bench.api_password,
    }
    threads = max(1, min(connections, 2))
    pids = process_tree(pid)
    inside = histograms(url)
    before = cpu_seconds(pids)
    with Sampler(pid, int(url.rsplit(":", 1)[1])) as sampler:
        result, db_used = database_cpu(
            lambda: subprocess.run(
                [
                    "wrk",
                    "-t",
                    str(threads),
                    "-c",
                    str(connections),
                    "-d",
                    f"{duration or bench.duration}s",
                    "--latency",
                    # A till gives up after 10 s (giftledger_client's default timeout); wrk's own 2 s would
                    # count a slow login on a saturated machine as an error and drop it from the p99.
                    "--timeout",
                    "10s",
                    "-s",
                    str(BENCH / "wrk" / script),
                    url,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        )
    used = cpu_seconds(process_tree(pid)) - before
    inside_p99 = breakdown(inside, histograms(url))
    out = result.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = int(re.search(r"GRAPHQL_ERRORS (\d+)", out).group(1))  # type: ignore[union-attr]
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    p50 = int(re.search(r"LATENCY_P50_US (\d+)", out).group(1)) / 1000  # type: ignore[union-attr]
    p99 = int(re.search(r"LATENCY_P99_US (\d+)", out).group(1)) / 1000  # type: ignore[union-attr]
    if errors and result.stderr:
        sys.stderr.write(result.stderr[:1000])
    return Row(
        script.removesuffix(".lua"),
        connections,
        rps,
        p50,
        p99,
        errors,
        used * 1000 / requests if requests else None,
        rss_mb=sampler.peak,
        db_cpu_ms_per_request=db_used * 1000 / requests if requests else None,
        split="/".join(str(n) for n in sampler.split) if len(sampler.split) > 1 else "",
        inside=inside_p99,
    )


async def transactions_since(database_url: str, after: int | None, table: str = "transactions") -> int:
    """With `after` None: the highest transaction id so far (0 with none). Otherwise: how many transactions
    were written since `after` was read. `table`: ours, or the lean limit's ("lean.transactions")."""
    conn = await asyncpg.connect(database_url)
    try:
        if after is None:
            return int(await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}"))
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE id > $1", after))
    finally:
        await conn.close()


LIMIT, LEAN_LIMIT = "limit (pgbench)", "lean limit (pgbench)"


def run_pgbench(bench: Bench, connections: int, lean: bool = False) -> Row:
    """The limit: pgbench running the server's redemption statements (bench/pgbench_script.py); with `lean`,
    the lean limit's statement instead. A statement that committed without redeeming (its parameters no
    longer what the server binds: a refused caller, an unknown site) counts as an error."""
    settings = Settings(database_url=bench.database_url, secret_key=SECRET)
    table = "lean.transactions" if lean else "transactions"
    before = asyncio.run(transactions_since(bench.database_url, None, table))
    with tempfile.TemporaryDirectory() as logs:
        redemption = Path(logs) / "redemption.sql"
        text, variables = (
            pgbench_script.lean_script()
            if lean
            else pgbench_script.script(
                account_id=bench.account_id,
                api_user_id=bench.api_user_id,
                epos=EPOS,
                miss_limit=settings.card_miss_limit,
                miss_address_limit=settings.card_miss_address_limit,
                api_username=bench.api_username,
            )
        )
        redemption.write_text(text)
        defines = [f"{name}={value}" for name, value in variables.items()]
        done, db_used = database_cpu(
            lambda: subprocess.run(
                [
                    "pgbench",
                    "-n",
                    "-M",
                    "prepared",
                    "-c",
                    str(connections),
                    "-j",
                    str(max(1, min(connections, 2))),
                    "-T",
                    str(bench.duration),
                    "-D",
                    f"cards={bench.cards}",
                    *(option for define in defines for option in ("-D", define)),
                    "-l",
                    "--log-prefix",
                    f"{logs}/pgb",
                    "-f",
                    str(redemption),
                    bench.database_url,
                ],
                capture_output=True,
                text=True,
            )
        )
        if done.returncode != 0:
            raise SystemExit(f"pgbench failed: {done.stderr[-2000:]}")
        latencies: list[int] = []
        failed = 0
        for path in Path(logs).glob("pgb*"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if parts[2] in ("skipped", "failed", "serialization", "deadlock"):
                    failed += 1
                    continue
                latencies.append(int(parts[2]))
    if not latencies:
        raise SystemExit("pgbench ran no transaction")
    redeemed = asyncio.run(transactions_since(bench.database_url, before, table))
    if redeemed < len(latencies):
        sys.stderr.write(f"pgbench: {len(latencies) - redeemed} of {len(latencies)} statements redeemed nothing\n")
        failed += len(latencies) - redeemed
    rps = len(latencies) / bench.duration
    latencies = corrected(latencies, bench.duration * 1_000_000, connections)
    return Row(
        LEAN_LIMIT if lean else LIMIT,
        connections,
        rps,
        percentile(latencies, 50) / 1000,
        percentile(latencies, 99) / 1000,
        failed,
        db_cpu_ms_per_request=db_used * 1000 / len(latencies),
    )


def corrected(latencies_us: list[int], runtime_us: int, connections: int) -> list[int]:
    """pgbench's latencies with the same coordinated-omission correction wrk applies to its own (wrk.c,
    `stats_correct`), so the two p99 columns compare like with like: with each connection's mean interval
    between requests as `expected`, a request that took `n` >= 2 * expected also counts n - expected,
    n - 2 * expected, ... down to above `expected` (the requests that would have been sent meanwhile).
    One 400 ms commit stall at 1 connection thus weighs ~200 samples, in both tools. Sorted."""
    per_connection = len(latencies_us) // connections
    if per_connection == 0:
        return sorted(latencies_us)
    expected = runtime_us // per_connection
    out = list(latencies_us)
    if expected > 0:
        for n in latencies_us:
            if n >= 2 * expected:
                out.extend(range(n - expected, expected, -expected))
    out.sort()
    return out


def percentile(values: list[int], p: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))
    return float(values[index])


def login_token(url: str, bench: Bench, username: str | None = None, password: str | None = None) -> str:
    query = "query($username:String,$password:String!){loginUser(username:$username,password:$password){id}}"
    response = httpx.post(
        f"{url}/graphql",
        json={
            "query": query,
            "variables": {"username": username or bench.api_username, "password": password or bench.api_password},
        },
    )
    return response.headers["X-Authorization"].removeprefix("Bearer ")


def grouped(bench: Bench, url: str, pid: int, name: str = "redeem (4 API users)", note: str = "") -> Row:
    """Redemptions at GROUP_CONNECTIONS connections, each request from one of the group's API users at its site."""
    tokens = [login_token(url, bench, username, password) for username, password, _ in bench.group]
    env = {"BENCH_TOKENS": ",".join(tokens), "BENCH_EPOS_LIST": ",".join(epos for _, _, epos in bench.group)}
    row = run_wrk(bench, "redeem_group.lua", url, GROUP_CONNECTIONS, pid, env=env)
    row.operation, row.note = name, note or f"{GROUP} API users of one merchant, each at a site of its own"
    return row


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def measure(bench: Bench, connections: list[int], scale_to: int | None) -> None:
    only = bench.only
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_giftledger(bench, Path(tmp) / "server.log")
        ping, ping_url = start_ping(bench, Path(tmp) / "ping.log") if "ping" in only else (None, "")
        floor, floor_url = start_floor(bench, Path(tmp) / "floor.log") if "floor" in only else (None, "")
        try:
            bench.token = login_token(url, bench)
            for c in connections:
                if "limit" in only:
                    limits(bench, c)
                for script in ("redeem", "balance", "line_items"):
                    if script in only:
                        bench.rows.append(run_wrk(bench, f"{script}.lua", url, c, server.pid))
                if ping is not None:
                    bench.rows.append(run_wrk(bench, "ping.lua", ping_url, c, ping.pid))
                if floor is not None:
                    bench.rows.append(floor_row := run_wrk(bench, "balance.lua", floor_url, c, floor.pid))
                    floor_row.operation, floor_row.note = "balance floor", "no GraphQL: HTTP, the statement, JSON"
                if "login" in only:
                    bench.rows.append(run_wrk(bench, "login.lua", url, min(c, 8), server.pid))
            if "group" in only:  # 64 connections on the group's 4 API users, beside pgbench's at 64
                if "limit" in only:
                    limits(bench, GROUP_CONNECTIONS)
                bench.rows.append(grouped(bench, url, server.pid))
            if "mixed" in only:
                mixed(bench, url, server.pid)
            if "budget" in only:
                budgeted(bench, Path(tmp) / "budgeted.log", url, server.pid)
            if "alternating" in only:
                alternating(bench, url, server.pid)
            if "outbox" in only:
                outbox(bench, url, server.pid)
            if "import" in only:
                bench.rows.append(imported(bench))
            if "export" in only:
                bench.rows.append(exported(bench))
            if "expiry" in only:
                expiring(bench, url, server.pid)
            if scale_to is not None and scale_to > bench.cards:
                scale(bench, url, server.pid, scale_to)
        finally:
            stop(server)
            for other in (ping, floor):
                if other is not None:
                    stop(other)
        if "webhooks" in only:  # once that server is gone: its sender (production) would refuse the local receiver
            webhooked(bench, Path(tmp))


def imported(bench: Bench, rows: int = 100_000) -> Row:
    """`giftledger cards import` of a CSV file of `rows` cards into a new account (bench/card_import.py)."""
    result = card_import.measure(bench.database_url, rows)
    return Row(
        f"card import ({rows:,} rows, CLI)",
        1,
        result.rows_per_second,
        NAN,
        NAN,
        int(result.exit_code != 0),
        rss_mb=result.peak_rss_mb,
        note=f"{result.seconds:.1f} s from start to exit (target < {card_import.TARGET_SECONDS} s), the command's "
        f"CPU {result.cpu_seconds:.1f} s; rows/s",
    )


def exported(bench: Bench, rows: int = 1_000_000) -> Row:
    """`giftledger export transactions` of `rows` line items of a new account (bench/export_stream.py)."""
    result = export_stream.measure(bench.database_url, rows)
    return Row(
        f"export ({rows:,} line items, CLI)",
        1,
        result.rows_per_second,
        NAN,
        NAN,
        int(result.exit_code != 0),
        result.cpu_seconds * 1000 / max(1, result.rows),
        rss_mb=result.peak_rss_mb,
        note=f"{result.seconds:.1f} s from start to exit, peak RSS target < {export_stream.TARGET_RSS_MB} MB; rows/s",
    )


def expiring(bench: Bench, url: str, pid: int) -> None:
    """Redemptions at 8 connections without an expiry run, then `bench.due` due cards expired (bench/expiry_run.py)
    while the same redemptions run beside it: the run's cards/s, and the tills' rate beside it."""
    without = run_wrk(bench, "redeem.lua", url, 8, pid)
    without.operation, without.note = "redeem (no expiry run)", "just before the next rows"
    bench.rows.append(without)
    asyncio.run(expiry_run.make_due(bench.database_url, bench.account_id, bench.due))
    done: list[expiry_run.Expired] = []
    running = threading.Thread(
        target=lambda: done.append(asyncio.run(expiry_run.expire(bench.database_url, SECRET, bench.account_id)))
    )
    began = time.monotonic()
    running.start()
    beside = run_wrk(bench, "redeem.lua", url, 8, pid)
    redeeming = time.monotonic() - began
    running.join()
    [run] = done
    beside.operation = "redeem (expiry running)"
    beside.note = f"beside the next row for {min(redeeming, run.seconds):.1f} s of its {run.seconds:.1f} s"
    bench.rows.append(beside)
    bench.rows.append(
        Row(
            f"expiry run ({run.cards:,} due cards)",
            1,
            run.rate,
            NAN,
            NAN,
            abs(run.broken - run.cards),
            note=f"cards/s, {expiry_run.BATCH} a statement, 8 tills redeeming beside it; errors: cards not "
            "broken exactly once",
        )
    )


def start_worker(bench: Bench, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`giftledger work` (its default niceness) beside a server started with GIFTLEDGER_BACKGROUND=separate."""
    return start_command(bench, log, ["work"], env)


def webhooked(bench: Bench, tmp: Path) -> None:
    """Redemptions at 8 connections with one webhook endpoint subscribed to card.balance_adjusted (a local
    receiver), alternating with runs without it (bench/webhook_delivery.py), on a server of its own: first with
    the deliveries in a `giftledger work` process (GIFTLEDGER_BACKGROUND=separate), then in the serving
    processes (serve, the default)."""
    secret_file = tmp / "webhook-secret"  # the receiver reads the endpoint's secret from it
    env = {"WEBHOOK_SECRET_FILE": str(secret_file)}
    receiver, receiver_url = start_uvicorn(bench, tmp / "receiver.log", "webhook_receiver:app", "/hooks", env)
    try:
        endpoint = asyncio.run(
            webhook_delivery.subscribe(bench.database_url, SECRET, bench.account_id, receiver_url + "/hooks")
        )
        secret_file.write_text(endpoint.secret)
        asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, endpoint.id, False))
        for mode in webhook_delivery.MODES:
            background = {**webhook_delivery.ENV, "GIFTLEDGER_BACKGROUND": mode}
            server, url = start_giftledger(bench, tmp / f"webhooks-{mode}.log", {**NO_BUDGET, **background})
            worker = start_worker(bench, tmp / "worker.log", background) if mode == "separate" else None
            try:
                senders = worker.pid if worker is not None else server.pid
                webhook_pairs(bench, url, server.pid, endpoint.id, mode, senders, receiver.pid)
                if mode == "serve":
                    dead_endpoint(bench, url, server.pid, receiver_url + "/hang")
            finally:
                stop(server)
                if worker is not None:
                    stop(worker)
    finally:
        stop(receiver)


def webhook_pairs(bench: Bench, url: str, pid: int, endpoint_id: int, mode: str, senders: int, receiver: int) -> None:
    """Alternating runs without and with the endpoint (disabled before and after). The CPU per delivery of the
    processes that send (`senders`: `giftledger work`, or the server, which also serves the tills) and of the
    receiver, over the run with the endpoint and its drain."""
    for _ in range(max(1, bench.repeat)):
        without = run_wrk(bench, "redeem.lua", url, 8, pid)
        without.operation, without.note = f"redeem (no webhook, {mode})", "alternating with the next row"
        bench.rows.append(without)
        asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, endpoint_id, True))
        parts = {"receiver": process_tree(receiver), "sender": process_tree(senders)}
        spent = {name: cpu_seconds(pids) for name, pids in parts.items()}
        began = asyncio.run(webhook_delivery.now(bench.database_url))
        with_ = run_wrk(bench, "redeem.lua", url, 8, pid)
        ended = asyncio.run(webhook_delivery.now(bench.database_url))
        done = asyncio.run(webhook_delivery.delivered(bench.database_url, began, ended))
        drain = asyncio.run(webhook_delivery.wait_drained(bench.database_url))
        drained = asyncio.run(webhook_delivery.now(bench.database_url))
        total = asyncio.run(webhook_delivery.delivered(bench.database_url, began, drained)).sent
        per = {name: (cpu_seconds(pids) - spent[name]) * 1000 / max(total, 1) for name, pids in parts.items()}
        sender = "`giftledger work`" if senders != pid else "server (tills included)"
        with_.operation = f"redeem (webhook subscribed, {mode})"
        with_.note = (
            f"one endpoint, card.balance_adjusted: {done.sent / (ended - began).total_seconds():,.0f} "
            f"deliveries/s sent meanwhile, {done.queued:,} queued at its end, drained after in {drain:.1f} s; "
            f"CPU per delivery: {sender} {per['sender']:.2f} ms, receiver {per['receiver']:.2f} ms"
        )
        with_.errors += done.failed
        bench.rows.append(with_)
        asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, endpoint_id, False))


def dead_endpoint(bench: Bench, url: str, pid: int, hang_url: str) -> None:
    """Redemptions with an endpoint subscribed that never answers (each post held past the sender's 10-second
    timeout), alternating with runs without it, on the serving processes' sender: what a dead endpoint costs a
    till's request (the event's row only: its deliveries wait, 4 in flight at most, then for their retries)."""
    dead = asyncio.run(webhook_delivery.subscribe(bench.database_url, SECRET, bench.account_id, hang_url))
    asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, dead.id, False))
    for _ in range(max(1, bench.repeat)):
        without = run_wrk(bench, "redeem.lua", url, 8, pid)
        without.operation, without.note = "redeem (no webhook, beside a dead one)", "alternating with the next row"
        asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, dead.id, True))
        with_ = run_wrk(bench, "redeem.lua", url, 8, pid)
        asyncio.run(webhook_delivery.switch(bench.database_url, SECRET, bench.account_id, dead.id, False))
        attempted = asyncio.run(webhook_delivery.forget(bench.database_url, dead.id))
        with_.operation = "redeem (dead endpoint, serve)"
        with_.note = (
            f"one endpoint that never answers, card.balance_adjusted: {attempted} of its deliveries attempted "
            "(timed out or in flight) during the run; p50 and p99 beside the run before"
        )
        bench.rows += [without, with_]
        bench.dead_pairs.append((without, with_))


def mixed(bench: Bench, url: str, pid: int) -> None:
    """8 connections redeeming while 2 log in."""
    mixed_rows: list[Row] = []

    def logins() -> None:
        mixed_rows.append(run_wrk(bench, "login.lua", url, 2, pid))

    side = threading.Thread(target=logins)
    side.start()
    redeem = run_wrk(bench, "redeem.lua", url, 8, pid)
    side.join()
    redeem.operation, redeem.note = "redeem (mixed)", "with 2 connections logging in"
    bench.rows.append(redeem)
    for row in mixed_rows:
        row.operation, row.note = "login (mixed)", "beside 8 redeeming"
        bench.rows.append(row)


def outbox(bench: Bench, url: str, pid: int) -> None:
    """The outbox (bench/outbox_drain.py): the floor (aiosmtplib alone to the sink, a connection per message and
    one per batch); `bench.messages` e-gifts queued at once and drained by the server's senders (one per worker);
    then redemptions at 8 connections without a backlog, and again while as many e-gifts drain."""
    assert bench.sink is not None
    n = bench.messages
    for reuse in (False, True):
        floor = outbox_drain.floor(bench.sink.url, bench.sink.process.pid, min(n, 2000), reuse, cpu_seconds)
        bench.rows.append(
            Row(
                f"smtp floor ({f'{outbox_drain.BATCH} messages' if reuse else 'a message'} a connection)",
                outbox_drain.CONCURRENCY,
                floor.rate,
                NAN,
                NAN,
                0,
                floor.client_cpu_ms,
                note=f"aiosmtplib alone, no database: messages/s, the client's CPU; the sink's "
                f"{floor.sink_cpu_ms:.2f} ms/message",
            )
        )
    start = asyncio.run(outbox_drain.database_now(bench.database_url))
    asyncio.run(outbox_drain.queue(bench.database_url, bench.account_id, n))
    before = cpu_seconds(process_tree(pid))
    with Sampler(pid) as sampler:
        drained, db_used = database_cpu(lambda: asyncio.run(outbox_drain.wait_drained(bench.database_url, start)))
    used = cpu_seconds(process_tree(pid)) - before
    bench.rows.append(
        Row(
            "outbox drain",
            outbox_drain.CONCURRENCY * bench.workers,
            drained.rate,
            NAN,
            NAN,
            drained.failed + drained.retried + n - drained.messages,
            used * 1000 / max(1, drained.messages),
            db_used * 1000 / max(1, drained.messages),
            rss_mb=sampler.peak,
            note=f"messages/s: {n:,} e-gifts queued at once, {bench.workers} senders (one a worker), "
            f"{outbox_drain.CONCURRENCY} SMTP connections each at once; errors: failed, lost or sent twice",
        )
    )
    without = run_wrk(bench, "redeem.lua", url, 8, pid)
    without.operation, without.note = "redeem (no backlog)", "just before the next row"
    bench.rows.append(without)
    start = asyncio.run(outbox_drain.database_now(bench.database_url))
    asyncio.run(outbox_drain.queue(bench.database_url, bench.account_id, n))
    began = asyncio.run(outbox_drain.database_now(bench.database_url))
    beside = run_wrk(bench, "redeem.lua", url, 8, pid)
    ended = asyncio.run(outbox_drain.database_now(bench.database_url))
    left = asyncio.run(outbox_drain.queued(bench.database_url))
    sent = asyncio.run(outbox_drain.sent_between(bench.database_url, began, ended))
    drained = asyncio.run(outbox_drain.wait_drained(bench.database_url, start))
    beside.operation = "redeem (outbox draining)"
    beside.note = f"while {n:,} queued e-gifts drain ({left:,} still queued at its end)"
    bench.rows.append(beside)
    bench.rows.append(
        Row(
            "outbox drain (beside redeeming)",
            outbox_drain.CONCURRENCY * bench.workers,
            sent / (ended - began).total_seconds(),
            NAN,
            NAN,
            drained.failed + drained.retried + n - drained.messages,
            note="messages/s sent while 8 connections redeemed (the row above)",
        )
    )


def limits(bench: Bench, connections: int) -> None:
    """The limit and the lean limit, alternating (limit, lean, limit, lean, ...): `bench.pairs` pairs at 8
    connections, one pair at any other count, so that a drift of the shared machine's speed falls on both."""
    pairs = bench.lean_pairs.setdefault(connections, [])
    for _ in range(max(1, bench.pairs) if connections == 8 else 1):
        load = os.getloadavg()[0]
        ours, lean = run_pgbench(bench, connections), run_pgbench(bench, connections, lean=True)
        ours.note = lean.note = "alternating: limit, lean limit, limit, ..."
        bench.rows += [ours, lean]
        pairs.append((ours, lean, load))


def alternating(bench: Bench, url: str, pid: int) -> None:
    """The machine's speed drifts over minutes (shared cores): the ratio is taken again from runs that
    alternate, limit, redemption, limit, ..., limit, each redemption against the mean of the limits run just
    before and just after it, so that a drift in between cancels out."""
    if bench.repeat == 0:
        return
    bench.sandwich.append(run_pgbench(bench, 8))
    for _ in range(bench.repeat):
        bench.sandwich.append(run_wrk(bench, "redeem.lua", url, 8, pid))
        bench.sandwich.append(run_pgbench(bench, 8))


def budgeted(bench: Bench, log: Path, off_url: str, off_pid: int) -> None:
    """Redemptions and balance checks at 8 connections (and the group's at 64) with the cost budget on (the
    default), each run right after the same run on the budget-off server (`off_url`), `--repeat` pairs of each
    (at least one), so that the ratio of each pair is measured in the same minute: what the budget costs."""
    server, url = start_giftledger(bench, log, HUGE_BUDGET)
    kinds: list[tuple[str, Callable[[str, int], Row]]] = [
        ("redeem", lambda u, pid: run_wrk(bench, "redeem.lua", u, 8, pid)),
        ("balance", lambda u, pid: run_wrk(bench, "balance.lua", u, 8, pid)),
    ]
    if "group" in bench.only:
        kinds.append((f"redeem on {GROUP} API users", lambda u, pid: grouped(bench, u, pid)))
    try:
        for name, run in kinds:
            for _ in range(max(1, bench.repeat)):
                off, on = run(off_url, off_pid), run(url, server.pid)
                off.operation, off.note = f"{name} (budget off)", "alternating with the next row"
                on.operation, on.note = f"{name} (budget on)", "cost budget on, as by default"
                bench.rows += [off, on]
                bench.budget_pairs.setdefault(name, []).append((off, on))
    finally:
        stop(server)


def scale(bench: Bench, url: str, pid: int, cards: int) -> None:
    """The same server, the same database, grown to `cards`: balance checks and LineItems look-ups again at
    8 connections, over all the cards, beside the figures at the first size."""
    first = bench.cards
    asyncio.run(load_cards(bench, bench.account_id, first + 1, cards + 1))
    bench.cards = cards
    for script in ("balance.lua", "line_items.lua"):
        row = run_wrk(bench, script, url, 8, pid)
        row.operation, row.note = f"{row.operation} (scale)", f"at {cards:,} cards"
        bench.rows.append(row)
    bench.scaled_from = first


async def explain(bench: Bench) -> str:
    """EXPLAIN ANALYZE of every hot statement on a card in the middle of the loaded range."""
    statements = pgbench_script.plans_sql(
        account_id=bench.account_id,
        api_user_id=bench.api_user_id,
        epos=EPOS,
        card=bench.cards // 2,
        api_username=bench.api_username,
    )
    conn = await asyncpg.connect(bench.database_url)
    out = [f"Query plans at {bench.cards:,} cards (EXPLAIN ANALYZE; the redemption rolled back):", ""]
    try:
        for name, sql in statements.items():
            transaction = conn.transaction()
            await transaction.start()
            try:
                rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) " + sql)
            finally:
                await transaction.rollback()
            out += [f"{name}:", "", "```", *(r[0] for r in rows), "```", ""]
    finally:
        await conn.close()
    return "\n".join(out)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else NAN


def targets(bench: Bench, by: dict[tuple[str, int], Row]) -> list[str]:
    """Issue 21's end-to-end figures: redemptions against the lean limit (at least 30 %), the budget on against
    off (at least 90 %), and the redemption's p99 against pgbench's own statement's in the same run (at most 2x),
    at 8 connections on one API user and at 64 on the group's 4."""
    lines = []
    for c, name in ((8, "redeem"), (GROUP_CONNECTIONS, "redeem (4 API users)")):
        pairs = bench.lean_pairs.get(c, [])
        row = by.get((name, c))
        if row is None:
            continue
        who = "one API user" if c == 8 else f"{GROUP} API users"
        lean = _median([n.rps for _, n, _ in pairs])
        if lean == lean:
            lines.append(
                f"- {c} connections, {who}: redemption / lean limit = {row.rps:,.0f} / {lean:,.0f} = "
                f"{row.rps / lean:.0%} (target at least 30%)"
            )
        limit_p99 = _median([o.p99_ms for o, _, _ in pairs])
        if limit_p99 == limit_p99 and limit_p99 > 0:
            lines.append(
                f"- {c} connections, {who}: redemption p99 / pgbench's (our statement) = {row.p99_ms:.1f} / "
                f"{limit_p99:.1f} ms = {row.p99_ms / limit_p99:.1f}x (target at most 2x); inside the server "
                f"(request / connection wait / statement): {row.inside or 'n/a'} ms"
            )
    for name, pairs in bench.budget_pairs.items():
        ratios = [on.rps / off.rps for off, on in pairs if off.rps]
        each = ", ".join(f"{on.rps:,.0f}/{off.rps:,.0f}" for off, on in pairs)
        lines.append(
            f"- {name}, {pairs[0][0].connections} connections: budget on / off median {_median(ratios):.0%} "
            f"(target at least 90%; {len(pairs)} alternating pairs: {each})"
        )
    return lines


def table(bench: Bench) -> str:
    lines = [
        f"cards: {bench.cards:,}; server workers: {bench.workers}; {bench.duration}s per measurement; "
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "",
        "| operation | conns | requests/s | p50 ms | p99 ms | errors | server CPU ms/req | database CPU ms/req "
        "| server RSS MB | connections per worker | server p99 ms: request / connection wait / statement | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in bench.rows:
        cpu = f"{r.cpu_ms_per_request:.2f}" if r.cpu_ms_per_request is not None else ""
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else ""
        db = f"{r.db_cpu_ms_per_request:.2f}" if r.db_cpu_ms_per_request is not None else ""
        p50, p99 = (f"{ms:.2f}" if ms == ms else "" for ms in (r.p50_ms, r.p99_ms))  # NaN: does not apply
        lines.append(
            f"| {r.operation} | {r.connections} | {r.rps:,.0f} | {p50} | {p99} | "
            f"{r.errors} | {cpu} | {db} | {rss} | {r.split} | {r.inside} | {r.note} |"
        )
    lines.append("")
    by = {(r.operation, r.connections): r for r in bench.rows}
    for c in sorted({r.connections for r in bench.rows if r.operation == "redeem"}):
        limit, redeem = by.get((LIMIT, c)), by.get(("redeem", c))
        ping, balance = by.get(("ping", c)), by.get(("balance", c))
        if limit and redeem and limit.rps:
            lines.append(f"- {c} connections: redemption / limit = {redeem.rps / limit.rps:.0%}")
        if ping and balance and ping.rps:
            lines.append(f"- {c} connections: balance check / HTTP ceiling = {balance.rps / ping.rps:.0%}")
        floor = by.get(("balance floor", c))
        if ping and floor and balance and ping.rps and floor.rps:
            lines.append(
                f"- {c} connections: balance floor / HTTP ceiling = {floor.rps / ping.rps:.0%} (the most any "
                f"balance check could reach here); balance check / floor = {balance.rps / floor.rps:.0%}"
            )
    for c, pairs in sorted(bench.lean_pairs.items()):
        ratios = sorted(ours.rps / lean.rps for ours, lean, _ in pairs if lean.rps)
        if not ratios:
            continue
        each = ", ".join(
            f"{ours.rps:,.0f}/{lean.rps:,.0f} = {ours.rps / lean.rps:.0%} (load {load:.1f})"
            for ours, lean, load in pairs
            if lean.rps
        )
        cpu = [(o.db_cpu_ms_per_request or 0.0, n.db_cpu_ms_per_request or 0.0) for o, n, _ in pairs]
        lines.append(
            f"- {c} connections: limit / lean limit median {ratios[len(ratios) // 2]:.0%} (target at least 65%; "
            f"{len(ratios)} alternating pairs: {each}); database CPU ms per redemption, limit / lean: "
            + ", ".join(f"{o:.2f}/{n:.2f}" for o, n in cpu)
        )
    if len(bench.sandwich) >= 3:
        limits, redeems = bench.sandwich[0::2], bench.sandwich[1::2]
        ratios: list[float] = []
        each: list[str] = []
        for i, redeem in enumerate(redeems):
            limit = (limits[i].rps + limits[i + 1].rps) / 2
            ratios.append(redeem.rps / limit if limit else 0.0)
            each.append(
                f"{redeem.rps:,.0f}/{limit:,.0f} = {ratios[-1]:.0%} (p99 {redeem.p99_ms:.1f} ms; limit p99 "
                f"{limits[i].p99_ms:.1f} and {limits[i + 1].p99_ms:.1f} ms)"
            )
        ratios.sort()
        lines.append(
            f"- 8 connections, {len(redeems)} redemption runs each between two limit runs (against their mean): "
            + ", ".join(each)
        )
        lines.append(
            f"- 8 connections: redemption / limit median {ratios[len(ratios) // 2]:.0%} "
            f"(lowest {ratios[0]:.0%}, highest {ratios[-1]:.0%})"
        )
    quiet, busy = by.get(("redeem (no backlog)", 8)), by.get(("redeem (outbox draining)", 8))
    if quiet and busy and quiet.rps:
        lines.append(
            f"- outbox: redemption while e-gifts drain / without a backlog = {busy.rps / quiet.rps:.0%} "
            f"(p99 {busy.p99_ms:.1f} / {quiet.p99_ms:.1f} ms)"
        )
    lines += targets(bench, by)
    for mode in webhook_delivery.MODES:
        quiet_runs = [r.rps for r in bench.rows if r.operation == f"redeem (no webhook, {mode})"]
        hooked_runs = [r.rps for r in bench.rows if r.operation == f"redeem (webhook subscribed, {mode})"]
        if quiet_runs and hooked_runs and sum(quiet_runs):
            lines.append(
                f"- webhooks ({webhook_delivery.MODES[mode]}): redemption with an endpoint subscribed / without = "
                f"{sum(hooked_runs) / len(hooked_runs) / (sum(quiet_runs) / len(quiet_runs)):.0%} "
                f"(means of {len(hooked_runs)} alternating runs each; target at least 85%)"
            )
    if bench.dead_pairs:
        each = ", ".join(
            f"{d.rps:,.0f}/{w.rps:,.0f}/s, p50 {d.p50_ms:.1f}/{w.p50_ms:.1f}, p99 {d.p99_ms:.1f}/{w.p99_ms:.1f} ms"
            for w, d in bench.dead_pairs
        )
        ratio = _median([d.rps / w.rps for w, d in bench.dead_pairs if w.rps])
        lines.append(
            f"- webhooks, a dead endpoint subscribed / none: redemptions median {ratio:.0%} "
            f"({len(bench.dead_pairs)} alternating pairs, with/without: {each})"
        )
    drain = by.get(("outbox drain", outbox_drain.CONCURRENCY * bench.workers))
    single = by.get(("smtp floor (a message a connection)", outbox_drain.CONCURRENCY))
    batched = by.get((f"smtp floor ({outbox_drain.BATCH} messages a connection)", outbox_drain.CONCURRENCY))
    if drain and single and batched and single.rps:
        lines.append(
            f"- outbox: drain / SMTP floor with a connection a message = {drain.rps / single.rps:.0%}; "
            f"that floor / with {outbox_drain.BATCH} messages a connection = {single.rps / batched.rps:.0%}"
        )
    for name in ("balance", "line_items"):
        small, large = by.get((name, 8)), by.get((f"{name} (scale)", 8))
        if small and large and small.p99_ms:
            lines.append(
                f"- {name} p99 at {bench.cards:,} cards / at {bench.scaled_from:,} cards = "
                f"{large.p99_ms / small.p99_ms:.2f} ({large.p99_ms:.2f} / {small.p99_ms:.2f} ms)"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--scale-to", type=int, default=None, help="then grow to this many cards and measure again")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat", type=int, default=5, help="redemption runs between limit runs at 8 connections, for the ratio"
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"measure only these, comma-separated, of: {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="alternating runs of the limit and the lean limit at 8 connections"
    )
    parser.add_argument("--messages", type=int, default=10_000, help="e-gifts queued for the outbox part")
    parser.add_argument("--due", type=int, default=100_000, help="due cards for the expiry part")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    only = frozenset(part.strip() for part in args.only.split(",") if part.strip())
    if not only or only - set(PARTS):
        parser.error(f"--only takes some of: {', '.join(PARTS)}")
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install wrk postgresql-client")
    name = f"giftledger_bench_{uuid.uuid4().hex[:8]}"
    admin = args.database_url

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(create())
    bench = Bench(admin, beside(admin, name), args.cards, args.workers, args.duration)
    bench.repeat = max(0, args.repeat)
    bench.pairs = max(1, args.pairs)
    bench.only = only
    bench.messages = max(2, args.messages)
    bench.due = max(1, args.due)
    with tempfile.TemporaryDirectory() as logs:
        bench.sink = outbox_drain.Sink(Path(logs) / "smtp.log")
        try:
            account_id = asyncio.run(prepare(bench))
            asyncio.run(load_cards(bench, account_id, 1, args.cards + 1))
            measure(bench, [int(c) for c in args.connections.split(",")], args.scale_to)
            plans = asyncio.run(explain(bench)) if "limit" in only else ""
        finally:
            bench.sink.stop()
            asyncio.run(drop())
    print(table(bench))
    if plans:
        print()
        print(plans)
    if any(r.errors for r in [*bench.rows, *bench.sandwich]):
        raise SystemExit("some requests errored: see the errors column")


if __name__ == "__main__":
    main()
