"""The Store Owner's Audit Trail page: filters, a page of records with their sites' names, the spreadsheet
export, and when card look-ups were paused."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from giftledger.domain.errors import NOT_EXPECTED, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.domain.time_zones import zone
from giftledger.domain.validation import Problems
from giftledger.services.audit.queries import csv_line, export_csv, list_events
from giftledger.services.audit.recording import OUTCOMES, PAUSED
from giftledger.services.context import Principal, Services
from giftledger.services.reports import END_BEFORE_START, spreadsheet_text
from giftledger.services.views import Page
from giftledger.storage.audit import AuditEventRow, AuditLog
from giftledger.storage.clock import utcnow

MAX_PAGE_NUMBER = 1_000_000
TRAIL_PAGE_SIZE = 50
PAUSES_SHOWN = 10


@dataclass(frozen=True)
class TrailFilter:
    """Which audit records to show or export: one operation (its exact name), one outcome, and a range of
    days in `time_zone` (the account's on the dashboard; both ends included; either end may be open)."""

    operation: str | None = None
    outcome: str | None = None
    start: date | None = None
    end: date | None = None
    time_zone: str = "UTC"

    @property
    def since(self) -> datetime | None:
        return datetime.combine(self.start, time.min, tzinfo=zone(self.time_zone)) if self.start is not None else None

    @property
    def until(self) -> datetime | None:
        if self.end is None or self.end == date.max:
            return None
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone(self.time_zone))


def trail_filter(
    principal: Principal,
    problems: Problems,
    *,
    operation: str | None,
    outcome: str | None,
    start: date | None,
    end: date | None,
    time_zone: str = "UTC",
) -> TrailFilter:
    """Check who asks (Store Owner only), then the filter, adding to `problems` (which may already hold the
    caller's own, such as a date it could not read) and raising them all together."""
    principal.require(Permission.AUDIT_READ)
    clean_operation = problems.optional_text("operation", operation, max_length=100)
    clean_outcome = (outcome or "").strip() or None
    if clean_outcome is not None and clean_outcome not in OUTCOMES:
        problems.add("outcome", NOT_EXPECTED)
    if start is not None and end is not None and end < start:
        problems.add("end", END_BEFORE_START)
    problems.raise_if_any()
    return TrailFilter(clean_operation, clean_outcome, start, end, time_zone)


@dataclass(frozen=True)
class TrailEntry:
    event: AuditEventRow
    site_name: str | None  # the site's name, also after it was deleted

    @property
    def facts(self) -> list[tuple[str, str]]:
        """The record's details as (name, value) pairs, for people to read."""
        try:
            found = json.loads(self.event.detail) if self.event.detail else {}
        except ValueError:
            return [("detail", self.event.detail or "")]
        if not isinstance(found, dict):
            return [("detail", self.event.detail or "")]
        return [(key, _readable(value)) for key, value in found.items()]


def _readable(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_readable(v) for v in value) or "(none)"
    return "(empty)" if value == "" else "—" if value is None else str(value)


async def audit_trail(
    services: Services, principal: Principal, where: TrailFilter, *, page: int = 1, limit: int = TRAIL_PAGE_SIZE
) -> Page[TrailEntry]:
    """A page of the account's audit records (`list_events`), newest first, with their sites' names
    (Store Owner only)."""
    principal.require(Permission.AUDIT_READ)
    if not 1 <= page <= MAX_PAGE_NUMBER:
        raise ValidationFailed.one("page", NOT_EXPECTED)
    events = await list_events(
        services,
        principal,
        limit=limit,
        page=page,
        operation=where.operation,
        outcome=where.outcome,
        since=where.since,
        until=where.until,
    )
    async with services.db.transaction() as conn:
        names = await AuditLog(conn, principal.account_id).site_names(
            e.site_id for e in events.data if e.site_id is not None
        )
    entries = [TrailEntry(e, names.get(e.site_id) if e.site_id is not None else None) for e in events.data]
    return Page(entries, events.total, events.per_page, events.current_page)


async def export_spreadsheet_csv(services: Services, principal: Principal, where: TrailFilter) -> AsyncIterator[str]:
    """`export_csv` as the dashboard serves it for download: the same columns and records, oldest first, with
    text cells that a spreadsheet would run as a formula prefixed with `'` (as the reports' CSV does: an
    email address may start with `=`). Store Owner only; the check runs before the header line is given."""
    lines = export_csv(
        services, principal, operation=where.operation, outcome=where.outcome, since=where.since, until=where.until
    )
    async for line in lines:
        for cells in csv.reader(io.StringIO(line)):
            yield csv_line(spreadsheet_text(cell) for cell in cells)


@dataclass(frozen=True)
class CardLookupPause:
    """One moment card look-ups by number were paused for a caller (`security.card_lookups_paused`)."""

    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    client_address: str | None
    until: datetime | None  # when look-ups resume (None: the record does not say)
    active: bool  # still paused now


async def card_lookup_pauses(
    services: Services, principal: Principal, *, limit: int = PAUSES_SHOWN, now: datetime | None = None
) -> list[CardLookupPause]:
    """The latest pauses of card look-ups in this account, newest first (Store Owner only)."""
    moment = now or utcnow()
    events = await list_events(services, principal, limit=limit, operation=PAUSED)
    pauses = []
    for event in events.data:
        try:
            wait = json.loads(event.detail).get("retry_after_seconds") if event.detail else None
        except (ValueError, AttributeError):
            wait = None
        until = event.created_at + timedelta(seconds=wait) if isinstance(wait, int) else None
        pauses.append(
            CardLookupPause(
                event.created_at,
                event.actor_kind,
                event.actor_id,
                event.actor_name,
                event.client_address,
                until,
                until is not None and until > moment,
            )
        )
    return pauses
