"""What giftledger counts for Prometheus, in one place (`prometheus-client`), and the `/metrics` page's rules.

The instruments are module-level, as prometheus-client expects; the few places that feed them call the small
functions below: the request log (one call per HTTP request: request_log.py), the database pool (database.py),
the unit of work's commit and a till's statement (money moved), the card-guessing pause and a failed login.

Several worker processes (`giftledger serve --workers N`): prometheus-client's multiprocess mode. `serve`
gives the run a directory of its own (`worker_directory`: `$GIFTLEDGER_DATA_DIR/metrics/<pid of serve>`,
emptied at start, removed at exit) in `PROMETHEUS_MULTIPROC_DIR` before the workers start; each worker writes
its values there, any worker's `/metrics` adds up every worker's files, and a worker that ended is taken out of
the live gauges (`worker_ended`). One process (`--workers 1`, the tests in-process): plain in-memory values.

The outbox's backlog is read from the database when `/metrics` is scraped (it is the same for every worker).

Access (`refusal`): with `GIFTLEDGER_METRICS_TOKEN` set, `/metrics` needs `Authorization: Bearer <token>`
(compared in constant time) from anywhere; unset, it answers loopback clients only."""

from __future__ import annotations

import hmac
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATIONS = 200  # distinct `operation` labels per process; more (callers choose their root fields) are "other"
OTHER = "other"

REQUESTS = Counter(
    "giftledger_requests",
    "GraphQL requests by operation (their root fields, the schema's names) and outcome (accepted, refused)",
    ["operation", "outcome"],
)
# Fine enough below 100 ms to read a p99 from (the bench's latency breakdown does: bench/run.py).
BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0,
    2.0, 5.0, 10.0,
)  # fmt: skip
LATENCY = Histogram(
    "giftledger_request_duration_seconds",
    "GraphQL requests: from arrival at the app to the end of the reply, by operation",
    ["operation"],
    buckets=BUCKETS,
)
# One statement of a hot path (storage/database.Database.fetch: the tills' statements, the budget's): the wait
# for a pooled connection, then the statement's round trip (sent, run, its rows read).
DB_WAIT = Histogram(
    "giftledger_db_wait_seconds", "Hot-path statements: the wait for a pooled connection", buckets=BUCKETS
)
DB_STATEMENT = Histogram(
    "giftledger_db_statement_seconds", "Hot-path statements: the round trip (sent, run, rows read)", buckets=BUCKETS
)
RESPONSES = Counter("giftledger_http_responses", "HTTP responses of every kind, by status class (2xx ...)", ["status"])
REFUSALS = Counter("giftledger_refusals", "Refused GraphQL requests, by the first error's code", ["code"])
MOVEMENTS = Counter("giftledger_money_movements", "Line items written (committed), by kind", ["kind"])
MOVED = Counter("giftledger_money_moved_pence", "Money moved (committed) (pence, unsigned), by kind", ["kind"])
PAUSES = Counter("giftledger_card_lookup_pauses", "Callers paused for looking up card numbers that do not exist")
LOGIN_FAILURES = Counter("giftledger_login_failures", "Refused logins, by reason (credentials, throttled)", ["reason"])
POOL_IN_USE = Gauge(
    "giftledger_db_pool_in_use", "Database connections checked out of the pools", multiprocess_mode="livesum"
)
POOL_WAITING = Gauge(
    "giftledger_db_pool_waiting",
    "Tasks waiting for a database connection (a free one in the pool, or a new one being opened)",
    multiprocess_mode="livesum",
)

_operations: set[str] = set()
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_children: dict[tuple[Any, ...], Any] = {}  # `labels()` costs ~5 us a call: each labelled child is looked up once


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def observe_request(noted: Mapping[str, Any], status: int, seconds: float) -> None:
    """One HTTP request has ended (request_log.py): `noted` is what the endpoint told its log line (a GraphQL
    request's `operation`, `outcome` and refusal `code`: api/guard.py)."""
    _child(RESPONSES, _STATUS_CLASSES.get(status // 100, "other")).inc()
    outcome = noted.get("outcome")
    if outcome is None:  # not a GraphQL request that reached the guard (the dashboard, a malformed body ...)
        return
    operation = str(noted.get("operation") or "none")
    if operation not in _operations:
        if len(_operations) >= MAX_OPERATIONS:
            operation = OTHER
        else:
            _operations.add(operation)
    _child(REQUESTS, operation, str(outcome)).inc()
    _child(LATENCY, operation).observe(seconds)
    if outcome == "refused":
        _child(REFUSALS, str(noted.get("code") or "none")).inc()


def statement_timed(waited: float, ran: float) -> None:
    """A hot-path statement (storage/database.py): seconds waiting for a connection, then its round trip."""
    DB_WAIT.observe(waited)
    DB_STATEMENT.observe(ran)


def money_moved(movements: Iterable[tuple[str, int]]) -> None:
    """Committed line items: (kind, value in pence, signed)."""
    for kind, value in movements:
        _child(MOVEMENTS, kind).inc()
        _child(MOVED, kind).inc(abs(value))


def card_lookups_paused() -> None:
    PAUSES.inc()


def login_failed(reason: str) -> None:
    LOGIN_FAILURES.labels(reason).inc()


def connection_checked_out(*_: Any) -> None:
    """SQLAlchemy's pool `checkout` event (storage/database.py)."""
    POOL_IN_USE.inc()


def connection_checked_in(*_: Any) -> None:
    """SQLAlchemy's pool `checkin` event."""
    POOL_IN_USE.dec()


T = TypeVar("T")


class WaitingFor(Generic[T]):
    """Wraps the async context manager that hands out a connection: counted as waiting while it enters."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> T:
        POOL_WAITING.inc()
        try:
            entered: T = await self._inner.__aenter__()
        finally:
            POOL_WAITING.dec()
        return entered

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        result: bool | None = await self._inner.__aexit__(kind, error, trace)
        return result


@contextmanager
def waiting() -> Iterator[None]:
    """Counted as waiting for a connection for the block."""
    POOL_WAITING.inc()
    try:
        yield
    finally:
        POOL_WAITING.dec()


# Several worker processes.


@contextmanager
def worker_directory(data_dir: Path) -> Iterator[Path]:
    """For `serve` with several workers, before they start: this run's directory for their values, empty,
    named in `PROMETHEUS_MULTIPROC_DIR` for the workers; removed afterwards, with those of runs that died."""
    root = data_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():  # left by a run that was killed outright
        if old.is_dir() and not (old.name.isdigit() and psutil.pid_exists(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)
    directory = (root / str(os.getpid())).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    os.environ[DIRECTORY_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(DIRECTORY_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def worker_ended(pid: int | None) -> None:
    """A worker process has ended: its live gauges (the pool's) no longer count."""
    if pid is not None and DIRECTORY_VARIABLE in os.environ:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# The page.


def refusal(request: Request, token: str | None) -> Response | None:
    """Who may read `/metrics` (None: this request may)."""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return PlainTextResponse("A metrics token is required.", 401, headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else ""
    try:
        loopback = ip_address(client).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return PlainTextResponse("Metrics are served to this machine only (or set GIFTLEDGER_METRICS_TOKEN).", 403)


class _Outbox(Collector):
    def __init__(self, backlog: tuple[int, datetime | None], now: datetime) -> None:
        self._count, self._oldest = backlog
        self._now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("giftledger_outbox_backlog", "Messages waiting to be sent", value=self._count)
        age = (self._now - self._oldest).total_seconds() if self._oldest is not None else 0.0
        yield GaugeMetricFamily(
            "giftledger_outbox_oldest_age_seconds",
            "Age of the oldest message waiting to be sent (0: none waits)",
            value=max(age, 0.0),
        )


def page(backlog: tuple[int, datetime | None] | None, now: datetime) -> Response:
    """Every worker's values (one process's when there is one), and the outbox's backlog when it was read."""
    if DIRECTORY_VARIABLE in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if backlog is not None:
        outbox = CollectorRegistry()
        outbox.register(_Outbox(backlog, now))
        text += generate_latest(outbox)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
