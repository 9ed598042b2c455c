"""Reading the audit log (Store Owner only): a page of records, the CSV export, recent failed logins."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from giftledger.domain.permissions import Permission
from giftledger.services.context import Principal, Services
from giftledger.services.views import Page
from giftledger.storage import audit as storage
from giftledger.storage.audit import AuditEventRow, AuditFilter, AuditLog
from giftledger.storage.clock import utcnow

MAX_PAGE = 100
EXPORT_BATCH = 1000
CSV_COLUMNS = (
    "id",
    "time_utc",
    "actor_kind",
    "actor_id",
    "actor_name",
    "site_id",
    "operation",
    "card",
    "outcome",
    "error_code",
    "client_address",
    "detail",
)


def _filter(operation: str | None, outcome: str | None, since: datetime | None, until: datetime | None) -> AuditFilter:
    return AuditFilter(operation=operation or None, outcome=outcome or None, since=since, until=until)


async def list_events(
    services: Services,
    principal: Principal,
    *,
    limit: int = 50,
    page: int = 1,
    operation: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEventRow]:
    """The account's audit records, newest first (Store Owner only)."""
    principal.require(Permission.AUDIT_READ)
    size = max(1, min(limit, MAX_PAGE))
    number = max(1, page)
    async with services.db.transaction() as conn:
        rows, total = await AuditLog(conn, principal.account_id).page(
            _filter(operation, outcome, since, until), limit=size, offset=(number - 1) * size
        )
    return Page(rows, total, size, number)


def csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _csv_row(row: AuditEventRow) -> list[object]:
    return [
        row.id,
        row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        row.actor_kind,
        row.actor_id,
        row.actor_name,
        row.site_id,
        row.operation,
        row.card,
        row.outcome,
        row.error_code,
        row.client_address,
        row.detail,
    ]


async def export_csv(
    services: Services,
    principal: Principal,
    *,
    operation: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[str]:
    """The account's audit records as CSV, oldest first: the header line, then one line per record.
    Reads a batch at a time in short transactions, so a slow download holds no lock (Store Owner only)."""
    principal.require(Permission.AUDIT_READ)
    where = _filter(operation, outcome, since, until)
    yield csv_line(CSV_COLUMNS)
    after = 0
    while True:
        async with services.db.transaction() as conn:
            rows = await AuditLog(conn, principal.account_id).after(where, after, EXPORT_BATCH)
        for row in rows:
            yield csv_line(_csv_row(row))
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].id


async def export_csv_text(services: Services, principal: Principal, **filters: datetime | str | None) -> str:
    """`export_csv` collected into one string."""
    return "".join([chunk async for chunk in export_csv(services, principal, **filters)])  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoginThrottle:
    name: str  # an API username or a team member's email
    kind: str  # "api_user" or "user"
    failures: int  # failed logins within the throttle window
    last_failure: datetime
    throttled: bool  # further logins with this name are refused until failures age out of the window


async def login_failures(
    services: Services, principal: Principal, *, now: datetime | None = None
) -> list[LoginThrottle]:
    """Recent failed logins for this account's API users and team members, most failures first; `throttled`
    marks the names whose logins are being refused (Store Owner only)."""
    principal.require(Permission.AUDIT_READ)
    settings = services.settings
    since = (now or utcnow()) - timedelta(seconds=settings.login_failure_window_seconds)
    async with services.db.transaction() as conn:
        rows = await storage.login_failures(conn, principal.account_id, since)
    return [
        LoginThrottle(r.name, r.kind, r.failures, r.last_failure, r.failures >= settings.login_failure_limit)
        for r in rows
    ]


