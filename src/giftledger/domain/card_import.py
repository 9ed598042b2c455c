"""Imported cards (Toggle calls it "Switch"): the CSV file's columns and every rule a row must keep.

This module is the one place a row is checked; the checks that need the database (a number the account
already has) are made by services/card_import.py, which names the row and column the same way. A file's
problems are all listed (row, column, message), never just the first: the file's header is row 1, its first
card row 2, as a spreadsheet numbers them.

Columns: `COLUMNS` below, each with the header names that mean it (matched ignoring case, spaces and dashes;
order is free; a header row is required); what each holds: docs/card-import.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from giftledger.domain import card_numbers, card_pins
from giftledger.domain.ledger import MAX_BALANCE
from giftledger.domain.validation import is_email

MAX_ROWS = 200_000
MAX_NOTES = 2000
MAX_NAME = 200

# canonical column -> the header names that mean it
COLUMNS: dict[str, tuple[str, ...]] = {
    "card_number": ("card_number", "redemption_code"),
    "pin": ("pin",),
    "balance": ("balance", "current_balance"),
    "discount": ("discount", "discount_balance"),
    "expiry_date": ("expiry_date",),
    "purchaser_name": ("purchaser_name",),
    "purchaser_email": ("purchaser_email",),
    "recipient_name": ("recipient_name",),
    "recipient_email": ("recipient_email",),
    "notes": ("notes",),
}
REQUIRED_COLUMNS = ("card_number", "balance")
_HEADER_NAMES = {name: column for column, names in COLUMNS.items() for name in names}

_POUNDS = re.compile(r"^£?([0-9]{1,8})(?:\.([0-9]{1,2}))?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

REQUIRED = "This field is required."
BAD_NUMBER = "Not a card number: 4 to 32 letters or digits (one of ours: 19 digits with a valid check digit)."
BAD_PIN = "A PIN is 4 to 8 digits."
BAD_AMOUNT = "An amount in pounds, such as 25 or 25.50."
TOO_MUCH = f"A card may hold at most £{MAX_BALANCE // 100:,}.{MAX_BALANCE % 100:02d}."
DISCOUNT_OVER = "The discount is more than the balance."
BAD_DATE = "A date as YYYY-MM-DD, such as 2027-12-31."
BAD_EMAIL = "Not an email address."
TOO_LONG = "Too long."
UNPRINTABLE = "Contains a character that is not printable."


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1: the header; 0: the file as a whole
    column: str  # a canonical column name, or "file"
    message: str


@dataclass(frozen=True)
class ImportRow:
    row: int
    number: str  # as in the file
    pin: str | None
    tender: int  # pence
    discount: int  # pence
    expiry_date: date | None
    purchaser_name: str | None
    purchaser_email: str | None
    recipient_name: str | None
    recipient_email: str | None
    notes: str | None

    @property
    def keeps_number(self) -> bool:
        """True when the number is one of ours (kept as the card's number); otherwise it becomes the alias."""
        return card_numbers.is_iin_number(self.number)


@dataclass(frozen=True)
class ParsedFile:
    rows: list[ImportRow]
    problems: list[RowProblem]


def header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def pence(text: str) -> int | None:
    """Pounds as written in the file ("25", "25.5", "£25.50") in pence; None when it is not such an amount."""
    found = _POUNDS.match(text)
    if not found:
        return None
    whole, fraction = found.group(1), (found.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(fraction)


def _text(row: int, column: str, value: str, limit: int, problems: list[RowProblem]) -> str | None:
    text = value.strip()
    if len(text) > limit:
        problems.append(RowProblem(row, column, TOO_LONG))
        return None
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        problems.append(RowProblem(row, column, UNPRINTABLE))
        return None
    return text or None


def _email(row: int, column: str, value: str, problems: list[RowProblem]) -> str | None:
    text = value.strip()
    if text and not is_email(text):
        problems.append(RowProblem(row, column, BAD_EMAIL))
        return None
    return text.lower() or None


def check_row(row: int, values: dict[str, str], problems: list[RowProblem]) -> ImportRow | None:
    """One data row (`values` by canonical column, missing columns as ""): the row, or None with its problems
    appended."""
    before = len(problems)
    number = "".join(ch for ch in values.get("card_number", "") if ch not in " -")  # as the dashboard's search
    if not number:
        problems.append(RowProblem(row, "card_number", REQUIRED))
    elif not card_numbers.is_acceptable(number):
        problems.append(RowProblem(row, "card_number", BAD_NUMBER))
    pin = values.get("pin", "").strip() or None
    if pin is not None and not card_pins.is_pin(pin):
        problems.append(RowProblem(row, "pin", BAD_PIN))
    balance_text = values.get("balance", "").strip()
    balance = pence(balance_text) if balance_text else None
    if not balance_text:
        problems.append(RowProblem(row, "balance", REQUIRED))
    elif balance is None:
        problems.append(RowProblem(row, "balance", BAD_AMOUNT))
    elif balance > MAX_BALANCE:
        problems.append(RowProblem(row, "balance", TOO_MUCH))
    discount_text = values.get("discount", "").strip()
    discount = pence(discount_text) if discount_text else 0
    if discount is None:
        problems.append(RowProblem(row, "discount", BAD_AMOUNT))
    elif balance is not None and discount > balance:
        problems.append(RowProblem(row, "discount", DISCOUNT_OVER))
    expiry_text = values.get("expiry_date", "").strip()
    expiry: date | None = None
    if expiry_text:
        try:
            expiry = date.fromisoformat(expiry_text) if _DATE.match(expiry_text) else None
        except ValueError:
            expiry = None
        if expiry is None:
            problems.append(RowProblem(row, "expiry_date", BAD_DATE))
    purchaser_name = _text(row, "purchaser_name", values.get("purchaser_name", ""), MAX_NAME, problems)
    recipient_name = _text(row, "recipient_name", values.get("recipient_name", ""), MAX_NAME, problems)
    purchaser_email = _email(row, "purchaser_email", values.get("purchaser_email", ""), problems)
    recipient_email = _email(row, "recipient_email", values.get("recipient_email", ""), problems)
    notes = _text(row, "notes", values.get("notes", ""), MAX_NOTES, problems)
    if len(problems) > before:
        return None
    assert balance is not None and discount is not None
    return ImportRow(
        row=row,
        number=number,
        pin=pin,
        tender=balance - discount,
        discount=discount,
        expiry_date=expiry,
        purchaser_name=purchaser_name,
        purchaser_email=purchaser_email,
        recipient_name=recipient_name,
        recipient_email=recipient_email,
        notes=notes,
    )


def parse(data: bytes) -> ParsedFile:
    """Every row of a CSV file checked (UTF-8, an optional byte-order mark; comma-separated, a header row)."""
    problems: list[RowProblem] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ParsedFile([], [RowProblem(0, "file", "The file is not UTF-8 text (save it as CSV UTF-8).")])
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[ImportRow] = []
    try:
        header = next(reader, None)
        if header is None:
            return ParsedFile([], [RowProblem(0, "file", "The file is empty.")])
        columns: list[str | None] = []
        for name in header:
            column = _HEADER_NAMES.get(header_key(name))
            if column is None and name.strip():
                problems.append(RowProblem(1, name.strip()[:60], "Unknown column."))
            if column is not None and column in columns:
                problems.append(RowProblem(1, column, "This column appears twice."))
            columns.append(column)
        for required in REQUIRED_COLUMNS:
            if required not in columns:
                problems.append(RowProblem(1, required, "This column is missing."))
        if problems:
            return ParsedFile([], problems)
        first_seen: dict[str, int] = {}
        for index, fields in enumerate(reader, start=2):
            if not any(f.strip() for f in fields):
                continue  # a blank line
            if index - 1 > MAX_ROWS:
                problems.append(RowProblem(index, "file", f"A file holds at most {MAX_ROWS:,} cards."))
                break
            if len(fields) > len(columns):
                problems.append(RowProblem(index, "file", "This row has more fields than the header."))
                continue
            values = {c: f for c, f in zip(columns, fields, strict=False) if c is not None}
            checked = check_row(index, values, problems)
            if checked is None:
                continue
            key = checked.number.upper()
            if key in first_seen:
                problems.append(RowProblem(index, "card_number", f"The same number is on row {first_seen[key]}."))
                continue
            first_seen[key] = index
            rows.append(checked)
    except csv.Error as error:
        problems.append(RowProblem(reader.line_num, "file", f"Not readable as CSV: {error}."))
    if not rows and not problems:
        problems.append(RowProblem(0, "file", "The file has no cards."))
    return ParsedFile(rows, problems)
