"""Card PINs: 4 to 8 digits, generated from `secrets` when a product asks for one, or imported as they are."""

from __future__ import annotations

import re
import secrets

MIN_DIGITS = 4
MAX_DIGITS = 8
_PIN = re.compile(r"^[0-9]{4,8}$")


def is_pin(text: str) -> bool:
    """True for 4 to 8 decimal digits (leading zeros kept: "0042" is a PIN of its own)."""
    return bool(_PIN.match(text))


def generate(digits: int) -> str:
    """A new PIN of `digits` random digits (4 to 8)."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError("a PIN has 4 to 8 digits")
    return "".join(str(secrets.randbelow(10)) for _ in range(digits))
