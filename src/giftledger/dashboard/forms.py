"""Reading form input: amounts typed in pounds, ids, dates. Bad input becomes a message next to its field."""

from __future__ import annotations

import re
from datetime import date

from giftledger.domain.validation import Problems

AMOUNT_HINT = "Enter an amount in pounds, like 12.50."
DATE_HINT = "Enter a date as YYYY-MM-DD."
_AMOUNT = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?")
_WHOLE = re.compile(r"[0-9]{1,18}")


def pence(raw: str, field: str, problems: Problems, *, required: bool = True) -> int | None:
    """An amount typed in pounds ("12.50", "£12.5", "1,000") as pence; never a float."""
    text = raw.strip().replace("£", "").replace(",", "").replace(" ", "")
    if not text:
        if required:
            problems.add(field, "This field is required")
        return None
    match = _AMOUNT.fullmatch(text)
    if match is None:
        problems.add(field, AMOUNT_HINT)
        return None
    whole, part = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(part)


def whole_number(raw: str | None) -> int | None:
    """A whole number written in ASCII digits (at most 18, so it fits a BIGINT), else None. Every path segment,
    query value and form field the dashboard reads as a number comes through here: `str.isdigit` says yes to
    "²" (which `int` refuses) and `\\d` to "٣" (which `int` reads as 3), so neither decides what a number is."""
    text = (raw or "").strip()
    return int(text) if _WHOLE.fullmatch(text) else None



def day(raw: str | None, field: str, problems: Problems) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        problems.add(field, DATE_HINT)
        return None
