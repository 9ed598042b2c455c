"""Collecting field problems so a caller hears about every bad argument at once."""

from __future__ import annotations

from giftledger.domain import card_numbers
from giftledger.domain.errors import INVALID_CARD_REFERENCE, NOT_EXPECTED, REQUIRED, ValidationFailed

MAX_REFERENCE_LENGTH = 100
MAX_KEY_LENGTH = 255  # the longest Idempotency-Key
MAX_TEXT_LENGTH = 1000


class Problems:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        messages = self.fields.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def error(self) -> ValidationFailed:
        return ValidationFailed(self.fields)

    def raise_if_any(self) -> None:
        if self.fields:
            raise self.error()

    def required_text(self, field: str, value: str | None, *, max_length: int = MAX_TEXT_LENGTH) -> str | None:
        """A required string: trimmed, non-empty, printable and not too long."""
        if value is None or not value.strip():
            self.add(field, REQUIRED)
            return None
        return self.optional_text(field, value, max_length=max_length)

    def optional_text(self, field: str, value: str | None, *, max_length: int = MAX_TEXT_LENGTH) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if len(text) > max_length or any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
            self.add(field, NOT_EXPECTED)
            return None
        return text or None

    def card_reference(self, field: str, value: str | None) -> str | None:
        if value is None or not value.strip():
            self.add(field, REQUIRED)
            return None
        reference = value.strip()
        if not card_numbers.is_acceptable(reference):
            self.add(field, INVALID_CARD_REFERENCE)
            return None
        return reference

    def reference(self, field: str, value: str | None, *, required: bool) -> str | None:
        """A till's merchant_transaction_reference (or an EPOS reference)."""
        if value is None or not value.strip():
            if required:
                self.add(field, REQUIRED)
            return None
        return self.optional_text(field, value, max_length=MAX_REFERENCE_LENGTH)

    def positive_amount(self, field: str, value: int | None) -> int | None:
        if value is None:
            self.add(field, REQUIRED)
            return None
        if value <= 0 or value > MAX_AMOUNT:
            self.add(field, NOT_EXPECTED)
            return None
        return value


# The largest single amount accepted (10 million pounds in pence): keeps sums far inside BIGINT.
MAX_AMOUNT = 1_000_000_000


def is_email(value: str) -> bool:
    """name@domain.tld, at most 320 characters, with no space, line break or other unprintable character
    (an address goes into a message's To header, where a line break would start another header)."""
    local, at, domain = value.partition("@")
    printable = all(ch.isprintable() and not ch.isspace() for ch in value)
    return bool(at and local and "." in domain and printable and len(value) <= 320)
