"""Data exports (Data > Exports in the dashboard, `giftledger export` at the command line): Cards, Orders, Order
Line Items, Transactions, Balance Adjustments, Discounts and the Liability, as CSV with Toggle's columns.

- A range is of local dates in the account's time zone (both days included); times are written in that zone,
  which every time column's heading names. The liability is a snapshot as of one moment instead.
- Rows are read a chunk at a time (`CHUNK` rows, one statement each, from the read replica when one is
  configured: storage/exports.py) and written as they come: memory stays the same whatever the export's size.
- The dashboard queues every export (as Toggle's "Add to queue" does): each server process runs an `Exporter`
  that claims queued jobs one at a time, writes the file under `$GIFTLEDGER_DATA_DIR/exports/<account>/`, records
  the rows written after each chunk (the page's progress) and, when done, the file to download. A job whose
  process died is taken up again by another once its lease runs out. The command line writes the file itself.
- A queued export's file holds cardholders' names and email addresses: the exporter deletes it
  `export_retention_days` (GIFTLEDGER_EXPORT_RETENTION_DAYS, 7) after it was written, looking every `SWEEP_S`,
  and the job shows as expired (`remove_expired`). Files the command line writes are the operator's.
- Text a spreadsheet would run as a formula gets a leading `'` (`reports.spreadsheet_text`, shared with the
  reports page's CSV)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from time import monotonic
from typing import Any

from giftledger.domain.catalogue import FULFILMENT_METHODS, SALES_CHANNELS
from giftledger.domain.errors import REQUIRED, NotFound
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Permission
from giftledger.domain.time_zones import zone
from giftledger.domain.validation import Problems
from giftledger.services.account_time_zone import zone_of
from giftledger.services.context import Principal, Services
from giftledger.services.reports import END_BEFORE_START, spreadsheet_text
from giftledger.storage.clock import utcnow
from giftledger.storage.database import Record
from giftledger.storage.exports import EXPIRED, ExportJob, ExportQueue, ExportReader, Key
from giftledger.storage.exports import FIRST as FIRST_KEY
from giftledger.storage.people import Directory

log = logging.getLogger("giftledger.exports")

CHUNK = 5_000  # rows per statement
LEASE = timedelta(minutes=2)  # renewed after every chunk; a job whose worker died is taken up after it
POLL_S = 1.0
SWEEP_S = 600.0  # how often an exporter deletes the files past their retention
UNKNOWN_KIND = "Choose one of: {kinds}."
AT_REQUIRED = "The liability is as of a moment: give a date and time."
NOT_A_MOMENT = "Enter a date and time as YYYY-MM-DD HH:MM."


class ExportKind(StrEnum):
    CARDS = "cards"
    ORDERS = "orders"
    ORDER_LINE_ITEMS = "order-line-items"
    TRANSACTIONS = "transactions"
    BALANCE_ADJUSTMENTS = "balance-adjustments"
    DISCOUNTS = "discounts"
    LIABILITY = "liability"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()


@dataclass(frozen=True)
class ExportRequest:
    kind: ExportKind
    start: date | None  # local dates, both included (None for the liability)
    end: date | None
    at: datetime | None  # the liability's moment (aware)


def parse_moment(raw: str | None, time_zone: str) -> datetime | None:
    """A date and time typed as `YYYY-MM-DD HH:MM[:SS]` (or with a `T`), read in `time_zone` unless it names an
    offset; None when it is not one."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone(time_zone))


def check_request(kind: str, start: date | None, end: date | None, at: datetime | None) -> ExportRequest:
    """The export asked for, or `ValidationFailed` naming each field that is wrong."""
    problems = Problems()
    known = {k.value: k for k in ExportKind}
    chosen = known.get(kind)
    if chosen is None:
        problems.add("kind", UNKNOWN_KIND.format(kinds=", ".join(known)))
    elif chosen is ExportKind.LIABILITY:
        if at is None:
            problems.add("at", AT_REQUIRED)
    else:
        if start is None:
            problems.add("start", REQUIRED)
        if end is None:
            problems.add("end", REQUIRED)
        if start is not None and end is not None and end < start:
            problems.add("end", END_BEFORE_START)
    problems.raise_if_any()
    assert chosen is not None
    if chosen is ExportKind.LIABILITY:
        return ExportRequest(chosen, None, None, at)
    return ExportRequest(chosen, start, end, None)


def bounds(request: ExportRequest, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants an export reads between: [midnight of the first day, midnight after the last) in the
    account's zone; for the liability, its moment twice."""
    if request.at is not None:
        return request.at, request.at
    assert request.start is not None and request.end is not None
    here = zone(time_zone)
    start = datetime.combine(request.start, time.min, tzinfo=here)
    after = request.end + timedelta(days=1) if request.end < date.max else request.end
    return start, datetime.combine(after, time.min, tzinfo=here)


# --- columns and rows -------------------------------------------------------------------------------------------


def major_units(pence: int | None) -> str:
    """Pence as major units with two decimals ("-5.50"); "" for nothing."""
    if pence is None:
        return ""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"


def _id(value: int | None) -> str:
    return "" if value is None else str(value)


def _text(value: str | None) -> str:
    return spreadsheet_text(value)


def _name(first: str | None, last: str | None) -> str:
    return _text(" ".join(part for part in (first, last) if part))


def _channel(channel_id: int | None) -> str:
    return SALES_CHANNELS.get(channel_id, str(channel_id)) if channel_id is not None else ""


def _fulfilment(method_id: int | None) -> str:
    return FULFILMENT_METHODS.get(method_id, str(method_id)) if method_id is not None else ""


def _yes(flag: bool | None) -> str:
    return "Yes" if flag else "No"


def _consent(consented: bool | None) -> str:
    return "Marketing" if consented else ""


# What the Transactions export's "Type" (how the money moved) says of each line-item type: a sale is paid for at
# the till ("External": giftledger takes no payment), a redemption pays with the gift card; the rest move no money.
PAYMENT_TYPES = {int(LineItemType.SALE): "External", int(LineItemType.REDEMPTION): "Gift Card"}


LABELS = {int(kind): kind.label for kind in LineItemType}


def _label(type_id: int) -> str:
    return LABELS[type_id]


def balance_adjustment_columns(tz: str) -> list[str]:
    return [
        "Card ID", "Line Item ID", "Product/Gift Name", "Experience Description", "Unit", "Card Unique Code",
        "Line Item Type", "Value", f"Adjustment Date ({tz})", "Merchant", "Order ID", "Sales Channel",
        "Fulfilment Method", "Notes", "User", "Transaction ID", "Merchant Transaction Reference",
        "Total Associated Transaction Value", "Postage Price", "Transaction Discount Value", "Reverse Line Item ID",
        "Reverse by Line Item ID",
    ]  # fmt: skip


def balance_adjustment_row(r: Record) -> list[str]:
    in_order = r["order_id"] is not None
    return [
        str(r["card_id"]), str(r["id"]), _text(r["product_name"]), "", _text(r["site_name"]), r["card_reference"],
        _label(r["type_id"]), major_units(r["value"]), r["local_at"], _text(r["merchant_name"]), _id(r["order_id"]),
        _channel(r["sales_channel_id"]), _fulfilment(r["fulfilment_method_id"]), _text(r["note"]),
        _text(r["actor"]), str(r["transaction_id"]), _text(r["merchant_transaction_reference"]),
        major_units(r["order_total"] if in_order else r["transaction_value"]), major_units(0),
        major_units(r["order_discount"] if in_order else 0), _id(r["reverses_line_item_id"]), _id(r["reversed_by"]),
    ]  # fmt: skip


def transaction_columns(tz: str) -> list[str]:
    return [
        "Type", "Sales channel", "Merchant", "Transaction reference", "Value", "Order ID", "Order Subtotal",
        "Postage Value", "Order status", "Gift card number", "Line Item ID", "Line Item Type",
        f"Transaction Date ({tz})", "Unit",
    ]  # fmt: skip


def transaction_row(r: Record) -> list[str]:
    in_order = r["order_id"] is not None
    return [
        PAYMENT_TYPES.get(r["type_id"], "N/A"), _channel(r["sales_channel_id"]), _text(r["merchant_name"]),
        _text(r["merchant_transaction_reference"]), major_units(r["value"]), _id(r["order_id"]),
        major_units(r["order_total"] + r["order_discount"]) if in_order else "", major_units(0) if in_order else "",
        r["order_status"] or "", r["card_reference"], str(r["id"]), _label(r["type_id"]), r["local_at"],
        _text(r["site_name"]),
    ]  # fmt: skip


def order_columns(tz: str) -> list[str]:
    return [
        "Purchaser Name", "Purchaser Email Address", "Order ID", f"Order Creation Date ({tz})",
        "Merchant Transaction Reference", "Merchant Name", "Total Order Value", "Postage Value", "Discount Value",
        "Sales Channel", "Status Order", "Consent Type",
    ]  # fmt: skip


def order_row(r: Record) -> list[str]:
    return [
        _name(r["first_name"], r["last_name"]), _text(r["email"]), str(r["id"]), r["local_at"],
        _text(r["merchant_transaction_reference"]), _text(r["merchant_name"]), major_units(r["total"]), major_units(0),
        major_units(r["discount_total"]), _channel(r["sales_channel_id"]), r["status"], _consent(r["consented"]),
    ]  # fmt: skip


def order_line_item_columns(tz: str) -> list[str]:
    return [
        "Order ID", "Line Item ID", "Purchaser Name", "Purchaser Email", f"Order Created Date ({tz})",
        "Line Item Value", "Product Name", "Product Option", "Fulfilment Method", "Fulfilment Name",
        "Fulfilment Email", "Fulfilment Address Line 1", "Fulfilment Address Line 2", "Fulfilment Town/City",
        "Fulfilment Post Code", "Fulfilment Postage Type", "Tracking Reference", "Personal Message", "Order Status",
    ]  # fmt: skip


def order_line_item_row(r: Record) -> list[str]:
    return [
        str(r["order_id"]), str(r["id"]), _name(r["first_name"], r["last_name"]), _text(r["email"]), r["local_at"],
        major_units(r["value"]), _text(r["product_name"]), _text(r["product_option"]),
        _fulfilment(r["fulfilment_method_id"]), _name(r["recipient_first_name"], r["recipient_last_name"]),
        _text(r["recipient_email"]), "", "", "", "", "", "", _text(r["message"]), r["status"],
    ]  # fmt: skip


def card_columns(tz: str) -> list[str]:
    return [
        "Card ID", f"Creation Date ({tz})", "Card Unique Code", "Unique Code Alias", "Gift Name", "Order ID",
        "Current Balance", "Recipient Name", "Recipient Email", "First top up value", "First top up reversed",
        "Sold in site", f"Last redemption date ({tz})", "Last redemption value", "Last redemption site",
        "Transaction discount types", "Transaction discounts value", "Transaction promotions",
        "Card initial balance discount value", "Consent type",
    ]  # fmt: skip


def card_row(r: Record) -> list[str]:
    return [
        str(r["id"]), r["local_at"], r["card_reference"], _text(r["alias"]), _text(r["product_name"]),
        _id(r["order_id"]), major_units(r["balance"]), _name(r["first_name"], r["last_name"]), _text(r["email"]),
        major_units(r["first_value"]), _yes(r["first_reversed"]), _text(r["sold_site"]), r["last_redeemed_at"] or "",
        major_units(-r["last_redeemed_value"]) if r["last_redeemed_value"] is not None else "",
        _text(r["last_redeemed_site"]), "", major_units(r["discount_total"]), "", major_units(r["first_discount"]),
        _consent(r["consented"]),
    ]  # fmt: skip


def discount_columns(tz: str) -> list[str]:
    return [
        "Discount ID", "Discount Value", "Discount Type", "Promotion Type", "Promotion campaign name",
        "Promotion code used", "Order ID", "Transaction ID", "Line item ID", "Fulfilment ID",
        f"Transaction date ({tz})",
    ]  # fmt: skip


def discount_row(r: Record) -> list[str]:
    return [
        str(r["id"]), major_units(r["discount"]), "", "", "", "", _id(r["order_id"]), str(r["transaction_id"]),
        str(r["id"]), "", r["local_at"],
    ]  # fmt: skip


def liability_columns(tz: str, at: str) -> list[str]:
    return [
        "Card ID", "Card Unique Code", "Gift Name", "Sold in site", f"Creation Date ({tz})", f"Expiry ({tz})",
        "Initial Top Up Value", "Initial Discount Value", f"Value at {at} ({tz})", f"Tender Value at {at} ({tz})",
        f"Discount Value at {at} ({tz})", f"Breakage to {at} ({tz})",
    ]  # fmt: skip


def liability_row(r: Record) -> list[str]:
    return [
        str(r["id"]), r["card_reference"], _text(r["product_name"]), _text(r["sold_site"]), r["local_at"] or "",
        r["expiry"] or "", major_units(r["first_value"]), major_units(r["first_discount"]), major_units(r["value"]),
        major_units(r["tender"]), major_units(r["discount"]), major_units(r["breakage"]),
    ]  # fmt: skip


@dataclass(frozen=True)
class Shape:
    source: str  # storage/exports.py's reader
    columns: Callable[[str], list[str]]
    row: Callable[[Record], list[str]]


SHAPES: dict[ExportKind, Shape] = {
    ExportKind.CARDS: Shape("cards", card_columns, card_row),
    ExportKind.ORDERS: Shape("orders", order_columns, order_row),
    ExportKind.ORDER_LINE_ITEMS: Shape("order_line_items", order_line_item_columns, order_line_item_row),
    ExportKind.TRANSACTIONS: Shape("line_items", transaction_columns, transaction_row),
    ExportKind.BALANCE_ADJUSTMENTS: Shape("line_items", balance_adjustment_columns, balance_adjustment_row),
    ExportKind.DISCOUNTS: Shape("discounts", discount_columns, discount_row),
}


@dataclass(frozen=True)
class Export:
    """An export ready to be read: its file name, its heading and its rows, a chunk at a time."""

    request: ExportRequest
    time_zone: str
    columns: list[str]
    file_name: str
    chunks: Callable[[], AsyncIterator[list[list[str]]]]
    count: Callable[[], Any]  # awaitable: how many rows (at most) it will have


def _file_name(request: ExportRequest, time_zone: str) -> str:
    if request.at is not None:
        moment = request.at.astimezone(zone(time_zone)).strftime("%Y-%m-%d-%H%M")
        return f"{request.kind.value}-at-{moment}.csv"
    assert request.start is not None and request.end is not None
    return f"{request.kind.value}-{request.start.isoformat()}-to-{request.end.isoformat()}.csv"


def prepare(services: Services, account_id: int, time_zone: str, request: ExportRequest) -> Export:
    """`request` for one account, read from the reporting database (the replica when configured)."""
    reader = ExportReader(services.reporting_db, account_id, time_zone)
    start, before = bounds(request, time_zone)
    if request.kind is ExportKind.LIABILITY:
        assert request.at is not None
        at = request.at.astimezone(zone(time_zone)).strftime("%Y-%m-%d %H:%M")
        shape = Shape("liability", lambda tz: liability_columns(tz, at), liability_row)
    else:
        shape = SHAPES[request.kind]

    async def chunks() -> AsyncIterator[list[list[str]]]:
        """Each chunk's statement is sent as soon as the previous chunk has arrived, so the database reads the
        next while this process formats and writes the last (at most two chunks are held at once)."""
        pending: asyncio.Future[list[Record]] | None = asyncio.ensure_future(
            reader.chunk(shape.source, start, before, FIRST_KEY, CHUNK)
        )
        try:
            while pending is not None:
                rows = await pending
                pending = None
                if len(rows) == CHUNK:
                    after: Key = reader.key(shape.source, rows[-1])
                    pending = asyncio.ensure_future(reader.chunk(shape.source, start, before, after, CHUNK))
                if rows:
                    yield [shape.row(r) for r in rows]
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def count() -> int:
        return await reader.count(shape.source, start, before)

    return Export(request, time_zone, shape.columns(time_zone), _file_name(request, time_zone), chunks, count)


async def account_zone(services: Services, principal: Principal) -> str:
    """The account's time zone, once `principal` may read reports and its credential is live (on the primary:
    a short transaction)."""
    principal.require(Permission.REPORT_READ)
    return await zone_of(services, principal)


async def open_export(services: Services, principal: Principal, request: ExportRequest) -> Export:
    return prepare(services, principal.account_id, await account_zone(services, principal), request)


class CsvSink:
    """Writes CSV rows to a text file as they come (nothing is kept)."""

    def __init__(self, handle: Any) -> None:
        self._writer = csv.writer(handle, lineterminator="\r\n")

    def rows(self, rows: Iterable[Sequence[str]]) -> None:
        self._writer.writerows(rows)


async def write_export(export: Export, path: Path, progress: Callable[[int], Any] | None = None) -> int:
    """Write `export` to `path` (through a temporary file beside it, renamed when complete: a failed export
    leaves nothing at `path`); the number of rows. `progress(rows so far)` is awaited after every chunk."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    written = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            sink = CsvSink(handle)
            sink.rows([export.columns])
            async for chunk in export.chunks():
                sink.rows(chunk)
                written += len(chunk)
                if progress is not None:
                    await progress(written)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return written


# --- exports prepared in the background --------------------------------------------------------------------------


def export_directory(services: Services, account_id: int) -> Path:
    return services.settings.data_dir / "exports" / str(account_id)


async def queue_export(services: Services, principal: Principal, request: ExportRequest) -> int:
    """Queue `request` for this process's (or another's) exporter; the job's id."""
    principal.require(Permission.REPORT_READ)
    async with services.unit_of_work(principal) as uow:
        return await ExportQueue(uow.conn).add(
            principal.account_id, request.kind.value, request.start, request.end, request.at,
            principal.user_id, utcnow(),
        )  # fmt: skip


async def export_jobs(services: Services, principal: Principal) -> list[ExportJob]:
    """The account's latest exports, newest first."""
    principal.require(Permission.REPORT_READ)
    async with services.unit_of_work(principal) as uow:
        return await ExportQueue(uow.conn).for_account(principal.account_id)


async def export_file(services: Services, principal: Principal, job_id: int) -> tuple[Path, str]:
    """The file of a finished export of the account, and the name to download it as."""
    principal.require(Permission.REPORT_READ)
    async with services.unit_of_work(principal) as uow:
        job = await ExportQueue(uow.conn).get(principal.account_id, job_id)
    if job is not None and job.state == EXPIRED:
        days = services.settings.export_retention_days
        raise NotFound(f"This export has expired (files are kept for {days} days): export it again.")
    if job is None or job.file_name is None:
        raise NotFound("There is no such export ready to download.")
    path = _path(services, job)
    if not path.exists():
        raise NotFound("This export's file is no longer there: export it again.")
    return path, job.file_name


def _path(services: Services, job: ExportJob) -> Path:
    return export_directory(services, job.account_id) / f"{job.id}-{job.file_name}"


async def remove_expired(services: Services, now: datetime) -> int:
    """Delete the files of exports written more than `export_retention_days` before `now` and mark their jobs
    expired; how many. Files are deleted before their jobs' marking commits: a job whose marking failed still
    shows as ready (its download says the file is no longer there) until the next sweep finds and marks it."""
    before = now - timedelta(days=services.settings.export_retention_days)
    removed = 0
    while True:
        async with services.db.transaction() as conn:  # on the primary: a batch marked is not read again
            queue = ExportQueue(conn)
            due = await queue.written_before(before)
            if not due:
                return removed
            for job in due:
                _path(services, job).unlink(missing_ok=True)
            await queue.expire([job.id for job in due])
        removed += len(due)


def _request_of(job: ExportJob) -> ExportRequest:
    return ExportRequest(ExportKind(job.kind), job.starts_on, job.ends_on, job.at)


async def run_one(services: Services) -> ExportJob | None:
    """Claim the oldest due export job and write its file; the job (None when there was none)."""
    async with services.db.transaction() as conn:
        job = await ExportQueue(conn).claim(utcnow(), LEASE)
    if job is None:
        return None
    written = 0
    try:
        async with services.db.read() as conn:
            time_zone = await Directory(conn).account_time_zone(job.account_id)
        export = prepare(services, job.account_id, time_zone or "UTC", _request_of(job))
        expected = await export.count()
        await _progress(services, job.id, 0, expected)
        directory = export_directory(services, job.account_id)
        directory.mkdir(parents=True, exist_ok=True)

        async def progress(rows: int) -> None:
            await _progress(services, job.id, rows, None)

        written = await write_export(export, directory / f"{job.id}-{export.file_name}", progress)
    except Exception as error:  # recorded on the job, shown on the page; the exporter goes on
        log.exception("export %s failed", job.id)
        async with services.db.transaction() as conn:
            await ExportQueue(conn).finish(
                job.id, file_name=None, error=type(error).__name__, rows_written=written, now=utcnow()
            )
        return job
    async with services.db.transaction() as conn:
        await ExportQueue(conn).finish(
            job.id, file_name=export.file_name, error=None, rows_written=written, now=utcnow()
        )
    return job


async def _progress(services: Services, job_id: int, rows: int, expected: int | None) -> None:
    async with services.db.transaction() as conn:
        await ExportQueue(conn).progress(
            job_id, rows_written=rows, rows_expected=expected, locked_until=utcnow() + LEASE
        )


class Exporter:
    """Runs queued exports until stopped, one at a time; idle, it looks again after `POLL_S`."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="giftledger-exporter")

    async def stop(self) -> None:
        """Stop at once: an export under way is left to its lease, and another process (or this one's next start)
        writes it again from the beginning."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        swept = -SWEEP_S
        while not self._stop.is_set():
            try:
                ran = await run_one(self._services)
                if ran is None and monotonic() - swept >= SWEEP_S:
                    swept = monotonic()
                    if removed := await remove_expired(self._services, utcnow()):
                        log.info("export files past their retention deleted", extra={"exports": removed})
            except Exception:
                log.exception("the exporter failed a round; trying again")
                ran = None
            if ran is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=POLL_S)
