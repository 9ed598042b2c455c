"""Card numbers: the terminal's "Validate Card Number" check (digits, length, IIN prefix, Luhn digit)."""

from __future__ import annotations

from .errors import InvalidCardNumber

DEFAULT_CARD_PREFIX = "63011900"
DEFAULT_CARD_LENGTH = 19


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn mod-10 check.

    >>> luhn_check_digit("630119006033757694")
    '6'
    """
    if not _is_ascii_digits(payload):
        raise ValueError("payload must be ASCII digits")
    total = 0
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def check_card_number(
    number: str,
    *,
    validate: bool = True,
    prefix: str = DEFAULT_CARD_PREFIX,
    length: int = DEFAULT_CARD_LENGTH,
) -> str:
    """Return the card number to send, or raise `InvalidCardNumber`.

    Surrounding whitespace (a scanner's trailing newline) is removed first. With `validate` off any
    non-empty text is accepted as it is (cards imported from another supplier keep their own numbers).
    With it on the number must be exactly `length` ASCII digits, start with `prefix` and end with a
    valid Luhn check digit.
    """
    if not isinstance(number, str):
        raise InvalidCardNumber("The card number must be text.")
    candidate = number.strip()
    if not candidate:
        raise InvalidCardNumber("Enter a card number.")
    if not validate:
        return candidate
    if not _is_ascii_digits(candidate):
        raise InvalidCardNumber("The card number must contain digits only.")
    if len(candidate) != length:
        raise InvalidCardNumber(f"The card number must be {length} digits long.")
    if not candidate.startswith(prefix):
        raise InvalidCardNumber(f"The card number must start with {prefix}.")
    if luhn_check_digit(candidate[:-1]) != candidate[-1]:
        raise InvalidCardNumber("The card number is not valid: its check digit is wrong.")
    return candidate
