"""The audit log: who did what, to which account, site and card, from where, and whether it was applied.

Written for every GraphQL mutation attempt (accepted or refused, by `api.guard`), for every dashboard change
(accepted or refused: the dashboard's form wrapper calls `record_change` once per form it receives), and for
security events (card look-ups paused). Card numbers are masked
before they are stored; details keep only plain facts, never passwords, tokens, secrets or PINs.
Read by the Store Owner (`Permission.AUDIT_READ`): `list_events`, `export_csv`, `login_failures`, and for the
dashboard's Audit Trail page `audit_trail`, `export_spreadsheet_csv`, `card_lookup_pauses`."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.errors import NOT_EXPECTED, Retryable, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.services.context import Principal, Services
from giftledger.services.reports import END_BEFORE_START, spreadsheet_text
from giftledger.services.views import Page
from giftledger.storage import audit as storage
from giftledger.storage.audit import AuditEventRow, AuditFilter, AuditLog, NewAuditEvent
from giftledger.storage.cards import Cards
from giftledger.storage.clock import utcnow
from giftledger.storage.database import DATABASE_ERRORS
from giftledger.storage.ledger import Ledger
from giftledger.storage.sites import Sites

log = logging.getLogger("giftledger.audit")

ACCEPTED = "accepted"
REFUSED = "refused"
OUTCOMES = (ACCEPTED, REFUSED)
MAX_PAGE = 100
EXPORT_BATCH = 1000
# Detail keys that could carry a secret are dropped, whatever their value.
SECRET_WORDS = ("password", "secret", "token", "pin", "key", "authorization", "hash", "cookie", "csrf")
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

Scalar = str | int | float | bool | None
Detail = Mapping[str, Scalar | list[Scalar]]


def mask_card(number: str) -> str:
    """A card number safe to store and show: first six and last four digits of a long number
    (`630119*********6946`), only the last four of a shorter one, nothing of a very short one."""
    number = number.strip()
    if len(number) >= 16:
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    if len(number) >= 8:
        return "*" * (len(number) - 4) + number[-4:]
    return "*" * len(number)


@functools.lru_cache(maxsize=1024)
def names_a_secret(key: str) -> bool:
    """Whether a detail key could carry a secret (asked for the same few keys with every audit record)."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def clean_detail(detail: Detail | None) -> str | None:
    """The detail as compact JSON, without any key that names a secret."""
    if not detail:
        return None
    kept = {key: value for key, value in detail.items() if not names_a_secret(key)}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str) if kept else None


@dataclass(frozen=True)
class Where:
    """The till a request names (its merchant and `unit_epos_reference`), resolved to the account's site."""

    merchant_id: int
    epos_reference: str


async def add_event(
    conn: AsyncConnection,
    principal: Principal | None,
    *,
    operation: str,
    outcome: str,
    account_id: int | None = None,
    site_id: int | None = None,
    where: Where | None = None,
    card_references: Iterable[str] = (),
    line_item_ids: Iterable[int] = (),
    error_code: str | None = None,
    client_address: str | None = None,
    detail: Detail | None = None,
    at: datetime | None = None,
) -> int:
    """Write one audit row inside the caller's transaction (see `record`)."""
    account = _account_of(principal, account_id)
    numbers = list(card_references)
    if account is not None and principal is not None and principal.account_id == account:
        if site_id is None and where is not None:
            site_id = await Sites(conn, account).site_for_reference(where.merchant_id, where.epos_reference)
        ids = [i for i in line_item_ids if isinstance(i, int)]
        if ids:
            cards = Cards(conn, account)
            for item in await Ledger(conn, account).many(ids):
                card = await cards.get(item.card_id)
                if card is not None:
                    numbers.append(card.card_reference)
    event = _new_event(
        principal, operation, outcome, account, site_id, numbers, error_code, client_address, detail, at or utcnow()
    )
    return await AuditLog(conn, account).add(event)


def _account_of(principal: Principal | None, account_id: int | None) -> int | None:
    return account_id if account_id is not None else principal.account_id if principal else None


def _new_event(
    principal: Principal | None,
    operation: str,
    outcome: str,
    account: int | None,
    site_id: int | None,
    card_numbers: Iterable[str],
    error_code: str | None,
    client_address: str | None,
    detail: Detail | None,
    at: datetime,
) -> NewAuditEvent:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    masked = ", ".join(dict.fromkeys(mask_card(n) for n in card_numbers if n and n.strip())) or None
    return NewAuditEvent(
        account_id=account,
        created_at=at,
        actor_kind=principal.kind if principal else "anonymous",
        actor_id=principal.id if principal else None,
        actor_name=principal.name if principal else None,
        site_id=site_id,
        operation=operation[:100],
        card=masked,
        outcome=outcome,
        error_code=error_code[:60] if error_code else None,
        client_address=(client_address or (principal.client_address if principal else None) or None),
        detail=clean_detail(detail),
    )


async def record(
    services: Services,
    principal: Principal | None,
    *,
    operation: str,
    outcome: str,
    account_id: int | None = None,
    site_id: int | None = None,
    where: Where | None = None,
    card_references: Iterable[str] = (),
    line_item_ids: Iterable[int] = (),
    error_code: str | None = None,
    client_address: str | None = None,
    detail: Detail | None = None,
) -> int:
    """Write one audit record in its own transaction and return its id.

    `principal` is who acted (None: an unauthenticated caller); the account is the principal's unless
    `account_id` says otherwise. `outcome` is "accepted" or "refused" (with the refusal's `error_code`).
    Card numbers are masked here; `line_item_ids` add the cards of those line items (of the principal's
    account). `detail` holds plain facts (references, amounts, ids); keys naming secrets are dropped."""
    async with services.db.transaction() as conn:
        return await add_event(
            conn,
            principal,
            operation=operation,
            outcome=outcome,
            account_id=account_id,
            site_id=site_id,
            where=where,
            card_references=card_references,
            line_item_ids=line_item_ids,
            error_code=error_code,
            client_address=client_address,
            detail=detail,
        )


@dataclass(frozen=True)
class Attempt:
    """One audit record waiting in an `AuditQueue` (the arguments of `record`, and when it happened)."""

    principal: Principal | None
    operation: str
    outcome: str
    at: datetime
    where: Where | None = None
    card_references: tuple[str, ...] = ()
    line_item_ids: tuple[int, ...] = ()
    error_code: str | None = None
    client_address: str | None = None
    detail: Detail | None = None


# Why a batch may not be written now (it waits and is tried again): the database is away or refused it.
AUDIT_WRITE_ERRORS: tuple[type[Exception], ...] = (Retryable, OSError, *DATABASE_ERRORS)


@dataclass
class AuditQueue:
    """Audit records written behind the requests that made them: a batch per short delay, in one
    transaction, so auditing adds no database round trip to a till's request. `flush()` writes what is
    waiting now; `close()` flushes and stops (the app calls it on shutdown). If the database is down the
    batch waits and is retried; past `max_pending` waiting records the oldest are dropped, and logged."""

    services: Services
    delay_seconds: float = 0.05
    max_batch: int = 500
    max_pending: int = 50_000
    _pending: deque[Attempt] = field(default_factory=deque)
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closing: bool = False
    dropped: int = 0

    def put(self, attempt: Attempt) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            log.error("audit queue full: %d audit records dropped so far", self.dropped)
        self._pending.append(attempt)
        if self._task is None or self._task.done():
            self._closing = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if not self._closing:
                await asyncio.sleep(self.delay_seconds)
            if not await self._write_waiting() and not self._closing:
                await asyncio.sleep(max(1.0, self.delay_seconds))  # the database is down: try again shortly
                self._wake.set()

    async def _write_waiting(self, *, everything: bool = False) -> bool:
        """Write what was waiting when called (`everything`: and what arrives meanwhile), a batch per
        transaction. False when the database refused. Records that arrive during a write wait for the next
        round (after `delay_seconds`): writing them at once would make a stream of tiny batches, each a
        commit of its own, under steady load."""
        async with self._lock:
            left = len(self._pending)
            while self._pending and (everything or left > 0):
                batch = [self._pending[i] for i in range(min(self.max_batch, len(self._pending)))]
                try:
                    await _write_batch(self.services, batch)
                except AUDIT_WRITE_ERRORS as error:
                    log.warning("audit records not written yet (%s); retrying", type(error).__name__)
                    return False
                for _ in batch:
                    self._pending.popleft()
                left -= len(batch)
        return True

    async def flush(self) -> None:
        """Write every waiting record now (raises `Retryable` if the database refuses)."""
        if not await self._write_waiting(everything=True):
            raise Retryable("The audit log could not be written.")

    async def close(self) -> None:
        """Write what is waiting and stop the writer (on shutdown)."""
        self._closing = True
        if self._task is not None and not self._task.done():
            assert self._wake is not None
            self._wake.set()
            await self._task
        self._task = None
        await self._write_waiting(everything=True)


async def _write_batch(services: Services, batch: list[Attempt]) -> None:
    """A batch of attempts in one transaction: one statement writes them all (each till's site is looked up
    inside it), unless an attempt names line items (a reversal: their cards are read first)."""
    if not any(a.line_item_ids for a in batch):
        rows = [
            (
                _new_event(
                    a.principal,
                    a.operation,
                    a.outcome,
                    _account_of(a.principal, None),
                    None,
                    a.card_references,
                    a.error_code,
                    a.client_address,
                    a.detail,
                    a.at,
                ),
                (a.where.merchant_id, a.where.epos_reference) if a.where is not None and a.principal else None,
            )
            for a in batch
        ]
        await storage.AuditStatements(services.db).add(rows)
        return
    async with services.db.transaction() as conn:
        await _write_batch_in(conn, batch)


async def _write_batch_in(conn: AsyncConnection, batch: list[Attempt]) -> None:
    for attempt in batch:
        await add_event(
            conn,
            attempt.principal,
            operation=attempt.operation,
            outcome=attempt.outcome,
            where=attempt.where,
            card_references=attempt.card_references,
            line_item_ids=attempt.line_item_ids,
            error_code=attempt.error_code,
            client_address=attempt.client_address,
            detail=attempt.detail,
            at=attempt.at,
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


def _csv_line(values: Iterable[object]) -> str:
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
    yield _csv_line(CSV_COLUMNS)
    after = 0
    while True:
        async with services.db.transaction() as conn:
            rows = await AuditLog(conn, principal.account_id).after(where, after, EXPORT_BATCH)
        for row in rows:
            yield _csv_line(_csv_row(row))
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


# --- Dashboard changes, and the Store Owner's audit page -------------------------------------------------

MAX_PAGE_NUMBER = 1_000_000
TRAIL_PAGE_SIZE = 50
PAUSES_SHOWN = 10


async def record_change(
    services: Services,
    principal: Principal | None,
    *,
    operation: str,
    outcome: str,
    account_id: int | None = None,
    site_id: int | None = None,
    card_ids: Iterable[int] = (),
    error_code: str | None = None,
    client_address: str | None = None,
    detail: Detail | None = None,
) -> int:
    """Write one audit record for a change made in the dashboard, in a transaction of its own, and return
    its id. Written after the change's own transaction has ended, so the record of a refused change is not
    rolled back with it.

    Like `record`, except that the cards are named by id and the site by id, both looked up in the
    principal's account: an id that is not one of the account's (a made-up one, or another account's) is
    kept in the details only (`card_ids`, `site_id`), so a record never points at another account's rows."""
    account = account_id if account_id is not None else principal.account_id if principal else None
    facts: dict[str, Scalar | list[Scalar]] = dict(detail or {})
    async with services.db.transaction() as conn:
        own = account if principal is not None and principal.account_id == account else None
        numbers: list[str] = []
        unknown_cards: list[Scalar] = []
        for card_id in dict.fromkeys(card_ids):
            card = await Cards(conn, own).get(card_id) if own is not None else None
            if card is None:
                unknown_cards.append(card_id)
            else:
                numbers.append(card.card_reference)
        if unknown_cards:
            facts["card_ids"] = unknown_cards
        if site_id is not None and (own is None or await Sites(conn, own).get(site_id) is None):
            facts["site_id"] = site_id
            site_id = None
        return await add_event(
            conn,
            principal,
            operation=operation,
            outcome=outcome,
            account_id=account,
            site_id=site_id,
            card_references=numbers,
            error_code=error_code,
            client_address=client_address,
            detail=facts or None,
        )


@dataclass(frozen=True)
class TrailFilter:
    """Which audit records to show or export: one operation (its exact name), one outcome, and a range of
    UTC days (both ends included; either end may be open)."""

    operation: str | None = None
    outcome: str | None = None
    start: date | None = None
    end: date | None = None

    @property
    def since(self) -> datetime | None:
        return datetime.combine(self.start, time.min, tzinfo=UTC) if self.start is not None else None

    @property
    def until(self) -> datetime | None:
        if self.end is None or self.end == date.max:
            return None
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def trail_filter(
    principal: Principal,
    problems: Problems,
    *,
    operation: str | None,
    outcome: str | None,
    start: date | None,
    end: date | None,
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
    return TrailFilter(clean_operation, clean_outcome, start, end)


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
            yield _csv_line(spreadsheet_text(cell) for cell in cells)


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
    from giftledger.services.guessing import PAUSED  # guessing writes these records, and imports this module

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
