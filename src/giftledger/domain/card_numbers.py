"""Card numbers: the 19-digit IIN format, Luhn check digits, generation and acceptance rules."""

from __future__ import annotations

import re
import secrets

IIN_PREFIX = "63011900"
CARD_LENGTH = 19
# 19 digits = 8 fixed prefix + 10 random + 1 check digit: 10 random decimal digits carry
# log2(10**10) = 33.2 bits. Generated numbers are therefore paired with the account scope and
# the guessing throttle; see docs/api.md for the figure.
RANDOM_DIGITS = CARD_LENGTH - len(IIN_PREFIX) - 1

# Cards imported from other suppliers keep their own numbers ("non-IIN numbers which may differ in
# length"): we accept 4 to 32 letters or digits. A number that claims our IIN must carry a valid check digit.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9]{4,32}$")


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn mod-10 check."""
    total = 0
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def passes_luhn(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def is_iin_number(number: str) -> bool:
    return len(number) == CARD_LENGTH and number.isdigit() and number.startswith(IIN_PREFIX)


def is_acceptable(number: str) -> bool:
    """True when `number` is a card reference we accept at all (for lookups, sales and adjustments)."""
    if not _ACCEPTABLE.match(number):
        return False
    if number.isdigit() and number.startswith(IIN_PREFIX) and len(number) == CARD_LENGTH:
        return passes_luhn(number)
    return True


def generate() -> str:
    """A new 19-digit card number: IIN prefix, random digits from `secrets`, Luhn check digit."""
    body = IIN_PREFIX + f"{secrets.randbelow(10**RANDOM_DIGITS):0{RANDOM_DIGITS}d}"  # one draw: uniform, as ten
    return body + luhn_check_digit(body)


def mask_card(number: str) -> str:
    """A card number safe to store, show and log (the audit log, the server's log): first six and last four
    digits of a long number (`630119*********6946`), only the last four of a shorter one, nothing of a very
    short one."""
    number = number.strip()
    if len(number) >= 16:
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    if len(number) >= 8:
        return "*" * (len(number) - 4) + number[-4:]
    return "*" * len(number)
