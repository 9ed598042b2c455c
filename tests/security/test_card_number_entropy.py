"""Generated card numbers: 8-digit prefix, 10 random digits from `secrets`, Luhn check digit.
The format is fixed by the contract (tills check prefix and length), so the random part is
log2(10**10) = 33.2 bits; docs/security.md says so and explains what protects the numbers instead."""

from __future__ import annotations

import math
import secrets
from collections import Counter
from pathlib import Path

import pytest

from giftledger.domain import card_numbers

DRAWS = 4000
ROOT = Path(__file__).resolve().parents[2]


def test_ten_random_digits_carry_33_point_2_bits() -> None:
    assert card_numbers.RANDOM_DIGITS == 10
    assert len(card_numbers.IIN_PREFIX) + card_numbers.RANDOM_DIGITS + 1 == card_numbers.CARD_LENGTH == 19
    assert round(card_numbers.RANDOM_DIGITS * math.log2(10), 1) == 33.2
    assert "33.2 bits" in (ROOT / "docs" / "security.md").read_text()


def test_every_random_digit_comes_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """One draw from `secrets` below 10**10, written as ten digits (leading zeros kept): uniform, as ten
    draws of one digit each would be, at a fifth of the cost (card imports issue 100,000 numbers at once)."""
    calls: list[int] = []
    draws = iter([1234567890, 42])

    def fake_randbelow(n: int) -> int:
        calls.append(n)
        return next(draws)

    monkeypatch.setattr(secrets, "randbelow", fake_randbelow)
    number = card_numbers.generate()
    assert calls == [10**10]
    assert number[:8] == "63011900" and number[8:18] == "1234567890"
    assert card_numbers.passes_luhn(number)
    small = card_numbers.generate()
    assert calls == [10**10, 10**10]
    assert small[8:18] == "0000000042" and len(small) == 19 and card_numbers.passes_luhn(small)


def test_every_random_position_takes_all_ten_values_evenly() -> None:
    numbers = [card_numbers.generate() for _ in range(DRAWS)]
    assert len(set(numbers)) == DRAWS
    for number in numbers:
        assert len(number) == 19 and number.startswith("63011900") and card_numbers.passes_luhn(number)
    expected = DRAWS / 10
    for position in range(8, 18):
        counts = Counter(number[position] for number in numbers)
        assert sorted(counts) == list("0123456789"), position
        # chi-square with 9 degrees of freedom: a fair source exceeds 44.9 once in a million runs
        chi_square = sum((counts[d] - expected) ** 2 / expected for d in "0123456789")
        assert chi_square < 44.9, (position, counts)
