from __future__ import annotations

import pytest

from giftledger.domain import card_numbers

GUIDE_NUMBERS = ["6301190060337576946", "6301190000554511994", "6301190045888067809", "6301190092843818801"]


@pytest.mark.parametrize("number", GUIDE_NUMBERS)
def test_the_guides_numbers_pass_luhn(number: str) -> None:
    assert card_numbers.passes_luhn(number)
    assert card_numbers.is_acceptable(number)


def test_check_digit_examples() -> None:
    assert card_numbers.luhn_check_digit("7992739871") == "3"
    assert card_numbers.passes_luhn("79927398713")
    assert not card_numbers.passes_luhn("79927398710")


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("6301190060337576947", False),  # our prefix, wrong check digit
        ("1234", True),  # imported numbers may be short
        ("ABCD1234", True),
        ("123", False),
        ("x" * 33, False),
        ("1234 5678", False),
        ("12-34", False),
        ("١٢٣٤٥", False),  # Unicode digits look like digits but are not accepted
        ("", False),
    ],
)
def test_acceptable_references(number: str, ok: bool) -> None:
    assert card_numbers.is_acceptable(number) is ok


def test_generated_numbers_are_19_digits_with_prefix_and_check_digit() -> None:
    numbers = {card_numbers.generate() for _ in range(500)}
    assert len(numbers) == 500
    for number in numbers:
        assert len(number) == 19 and number.isdigit() and number.startswith("63011900")
        assert card_numbers.passes_luhn(number)
