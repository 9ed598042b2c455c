"""Card-number validation: checked before any request when on; anything non-empty passes when off."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_toggle_server import VALID_CARD, FakeToggle, card_number, make_client

from giftledger_client import GiftCardClient, InvalidCardNumber, check_card_number, luhn_check_digit

FULLWIDTH_CARD = "".join(chr(ord(digit) + 0xFEE0) for digit in VALID_CARD)  # digits, but not ASCII ones


def test_luhn_check_digit_of_the_documented_example() -> None:
    assert luhn_check_digit(VALID_CARD[:-1]) == "6"
    assert luhn_check_digit("7992739871") == "3"  # the textbook example


def test_luhn_check_digit_needs_digits() -> None:
    with pytest.raises(ValueError):
        luhn_check_digit("12a4")


def test_valid_number_passes_and_loses_surrounding_whitespace() -> None:
    assert check_card_number(VALID_CARD) == VALID_CARD
    assert check_card_number(f"  {VALID_CARD}\n") == VALID_CARD


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("", "Enter a card number."),
        ("   ", "Enter a card number."),
        ("63011900603375769a6", "The card number must contain digits only."),
        ("6301 1900 6033 7576 946", "The card number must contain digits only."),
        (FULLWIDTH_CARD, "The card number must contain digits only."),
        ("630119006033757694", "The card number must be 19 digits long."),
        ("63011900603375769460", "The card number must be 19 digits long."),
        ("5301190060337576947", "The card number must start with 63011900."),
        ("6301190060337576947", "The card number is not valid: its check digit is wrong."),
    ],
)
def test_invalid_numbers_are_refused(number: str, message: str) -> None:
    with pytest.raises(InvalidCardNumber) as caught:
        check_card_number(number)
    assert str(caught.value) == message
    assert caught.value.code == "INVALID_CARD_NUMBER"


def test_prefix_and_length_come_from_the_settings() -> None:
    body = "400000000000000"
    number = body + luhn_check_digit(body)
    assert check_card_number(number, prefix="4000", length=16) == number
    with pytest.raises(InvalidCardNumber):
        check_card_number(number)


def test_validation_off_accepts_any_non_empty_text() -> None:
    assert check_card_number(" GIFT-ABC-123 ", validate=False) == "GIFT-ABC-123"
    with pytest.raises(InvalidCardNumber):
        check_card_number("  ", validate=False)


def test_generated_numbers_pass() -> None:
    for serial in range(50):
        assert check_card_number(card_number(serial)) == card_number(serial)


OPERATIONS: dict[str, Callable[[GiftCardClient, str], object]] = {
    "check_balance": lambda client, card: client.check_balance(card),
    "top_up": lambda client, card: client.top_up(card, 500),
    "redeem": lambda client, card: client.redeem(card, 500),
    "sell_card": lambda client, card: client.sell_card(card, 500),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_an_invalid_number_sends_nothing(fake: FakeToggle, operation: str) -> None:
    with make_client(fake) as client, pytest.raises(InvalidCardNumber):
        OPERATIONS[operation](client, "6301190060337576947")
    assert fake.calls == []


def test_validation_off_sends_an_imported_number_as_is(fake: FakeToggle) -> None:
    fake.add_card("GIFT-ABC-123", 1200)
    with make_client(fake, validate_card_number=False) as client:
        assert client.check_balance("GIFT-ABC-123").balance == 1200
        redemption = client.redeem("GIFT-ABC-123", 500)
    assert redemption.taken == 500
    assert redemption.balance == 700
    assert [call.variables.get("card_reference") for call in fake.calls[1:]] == ["GIFT-ABC-123"] * 3


def test_validation_off_still_refuses_an_empty_number(fake: FakeToggle) -> None:
    with make_client(fake, validate_card_number=False) as client, pytest.raises(InvalidCardNumber):
        client.check_balance("")
    assert fake.calls == []
