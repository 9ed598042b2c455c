"""The till's operations against the fake server, with exact requests and results."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fake_toggle_server import (
    CARD_NOT_FOUND,
    MERCHANT_ID,
    PRODUCT_ID,
    SITE,
    VALID_CARD,
    FakeToggle,
    card_number,
    make_client,
)

from giftledger_client import (
    Adjustment,
    AlreadyReversed,
    Balance,
    CardNotFound,
    ConfigurationError,
    DuplicateReference,
    GiftCardClient,
    LineItem,
    PriceModifier,
    Product,
    Redemption,
    Reversal,
    Sale,
    TransactionNotFound,
    ValidationFailed,
    ValueSplit,
)

CARD_CREATED = datetime(2024, 5, 13, 13, 11, 47, tzinfo=UTC)
ITEM_CREATED = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
SECOND_CARD = card_number(1)


def test_check_balance(client: GiftCardClient, fake: FakeToggle) -> None:
    assert client.check_balance(VALID_CARD) == Balance(
        card_reference=VALID_CARD,
        balance=5000,
        initial_balance=5000,
        created_at=CARD_CREATED,
        updated_at=CARD_CREATED,
        value_split=ValueSplit(tender=5000, discount=0),
    )
    assert fake.calls_to("Cards")[0].variables == {"card_reference": VALID_CARD, "page": 1, "limit": 1}


def test_check_balance_of_an_unknown_card(client: GiftCardClient) -> None:
    with pytest.raises(CardNotFound) as caught:
        client.check_balance(SECOND_CARD)
    assert str(caught.value) == CARD_NOT_FOUND


def test_products_with_price_modifiers(client: GiftCardClient, fake: FakeToggle) -> None:
    assert client.products() == [
        Product(
            id=244,
            name="In-Store Gift",
            price_modifiers=(
                PriceModifier(id=975, price=0, description="Blank card"),
                PriceModifier(id=977, price=2500, description=None),
            ),
        ),
        Product(id=245, name="Summer Promotion", price_modifiers=(PriceModifier(976, 3500, None),)),
    ]
    assert fake.calls_to("Products")[0].variables == {"account_id": 7}


def test_sell_a_physical_card(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_blank_card(SECOND_CARD)
    sale = client.sell_card(SECOND_CARD, 2500, reference="till-1-0001")
    assert sale == Sale(
        reference="till-1-0001",
        order_id=501,
        line_item_id=101,
        card_reference=SECOND_CARD,
        amount=2500,
        balance=2500,
    )
    assert fake.calls_to("createOrder")[0].variables == {
        "account_id": 7,
        "merchant_id": MERCHANT_ID,
        "order_items": [
            {
                "product_id": PRODUCT_ID,
                "card_reference": SECOND_CARD,
                "custom_price_modifier_value": 2500,
                "fulfilment_method_id": 3,
            }
        ],
        "currency": "GBP",
        "group_fulfilment": True,
        "total": 2500,
        "sales_channel_id": 3,
        "unit_epos_reference": SITE,
        "merchant_transaction_reference": "till-1-0001",
    }
    assert client.check_balance(SECOND_CARD).balance == 2500


def test_selling_needs_a_product_id(fake: FakeToggle) -> None:
    with make_client(fake, product_id=None) as client:
        with pytest.raises(ConfigurationError) as caught:
            client.sell_card(SECOND_CARD, 2500)
        with pytest.raises(ConfigurationError):
            client.sell_digital_card(2500, "guest@example.com")
    assert str(caught.value) == "Set product_id in the terminal settings to sell gift cards."
    assert fake.calls == []


def test_selling_a_card_twice_is_refused(client: GiftCardClient, fake: FakeToggle) -> None:
    with pytest.raises(ValidationFailed) as caught:
        client.sell_card(VALID_CARD, 2500)
    assert str(caught.value) == "card_reference: This card has already been sold."
    assert caught.value.validation == {"card_reference": ["This card has already been sold."]}
    assert len(fake.line_items) == 0


def test_sell_a_digital_card(client: GiftCardClient, fake: FakeToggle) -> None:
    sale = client.sell_digital_card(3000, " guest@example.com ", reference="till-1-0002")
    generated = card_number(900)
    assert sale == Sale("till-1-0002", 501, 101, generated, 3000, 3000)
    variables = fake.calls_to("createOrder")[0].variables
    assert variables["order_items"] == [
        {
            "product_id": PRODUCT_ID,
            "custom_price_modifier_value": 3000,
            "fulfilment_method_id": 1,
            "fulfilment_email": "guest@example.com",
            "generate_card_reference": True,
        }
    ]
    assert variables["total"] == 3000
    assert variables["sales_channel_id"] == 3


@pytest.mark.parametrize("email", ["", "guest", "@"])
def test_a_digital_card_needs_an_email_address(fake: FakeToggle, email: str) -> None:
    with make_client(fake) as client, pytest.raises(ValidationFailed) as caught:
        client.sell_digital_card(3000, email)
    assert str(caught.value) == "fulfilment_email: Must be an email address."
    assert fake.calls == []


def test_top_up(client: GiftCardClient, fake: FakeToggle) -> None:
    adjustment = client.top_up(VALID_CARD, 1000, reference="topup-1")
    assert adjustment == Adjustment(
        reference="topup-1",
        line_item_id=101,
        card_reference=VALID_CARD,
        amount=1000,
        balance=6000,
        value_split=ValueSplit(tender=1000, discount=0),
    )
    assert fake.calls_to("createBalanceAdjustment")[0].variables == {
        "currency": "GBP",
        "card_reference": VALID_CARD,
        "value": 1000,
        "unit_epos_reference": SITE,
        "merchant_id": MERCHANT_ID,
        "merchant_transaction_reference": "topup-1",
    }


def test_every_mutation_gets_a_fresh_reference(client: GiftCardClient, fake: FakeToggle) -> None:
    first = client.top_up(VALID_CARD, 100).reference
    second = client.top_up(VALID_CARD, 100).reference
    assert re.fullmatch("[0-9a-f]{32}", first)
    assert re.fullmatch("[0-9a-f]{32}", second)
    assert first != second
    assert [item.reference for item in fake.line_items] == [first, second]


def test_redeem_is_capped_at_the_balance(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_card(SECOND_CARD, 1500)
    redemption = client.redeem(SECOND_CARD, 2000, reference="bill-1")
    assert redemption == Redemption(
        reference="bill-1",
        card_reference=SECOND_CARD,
        bill=2000,
        taken=1500,
        remaining_to_pay=500,
        balance=0,
        line_item_id=101,
        value_split=ValueSplit(tender=-1500, discount=0),
    )
    assert fake.fields_called() == ["loginUser", "Cards", "createBalanceAdjustment"]
    assert fake.calls_to("createBalanceAdjustment")[0].variables["value"] == -1500
    assert fake.cards[SECOND_CARD].balance == 0


def test_redeem_is_capped_at_the_bill(client: GiftCardClient, fake: FakeToggle) -> None:
    redemption = client.redeem(VALID_CARD, 1200, reference="bill-2")
    assert (redemption.taken, redemption.remaining_to_pay, redemption.balance) == (1200, 0, 3800)
    assert fake.calls_to("createBalanceAdjustment")[0].variables["value"] == -1200


def test_redeem_reports_the_tender_and_discount_split(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_card(SECOND_CARD, 2000, discount=500)
    redemption = client.redeem(SECOND_CARD, 1000)
    assert redemption.value_split == ValueSplit(tender=-750, discount=-250)
    assert redemption.balance == 1000


def test_redeeming_an_empty_card_sends_no_adjustment(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_card(SECOND_CARD, 0)
    assert client.redeem(SECOND_CARD, 2000) == Redemption(
        reference=None,
        card_reference=SECOND_CARD,
        bill=2000,
        taken=0,
        remaining_to_pay=2000,
        balance=0,
        line_item_id=None,
        value_split=None,
    )
    assert fake.fields_called() == ["loginUser", "Cards"]


AMOUNT_CHECKS: dict[str, Callable[[GiftCardClient, object], object]] = {
    "amount": lambda client, amount: client.top_up(VALID_CARD, amount),  # type: ignore[arg-type]
    "bill": lambda client, amount: client.redeem(VALID_CARD, amount),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("amount", [0, -500, True, 10.5, "1000"])
@pytest.mark.parametrize("name", sorted(AMOUNT_CHECKS))
def test_amounts_must_be_positive_pence(fake: FakeToggle, name: str, amount: object) -> None:
    with make_client(fake) as client, pytest.raises(ValidationFailed) as caught:
        AMOUNT_CHECKS[name](client, amount)
    assert str(caught.value) == f"{name}: Must be a whole number of pence greater than zero."
    assert fake.calls == []


def test_reverse_a_redemption_by_its_reference(client: GiftCardClient, fake: FakeToggle) -> None:
    client.redeem(VALID_CARD, 1200, reference="bill-3")
    reversal = client.reverse("bill-3")
    assert reversal == Reversal(
        reference="bill-3-REVERSAL",
        original_reference="bill-3",
        reversed_line_item_ids=(101,),
        line_items=(
            LineItem(
                id=102,
                value=1200,
                reference="bill-3-REVERSAL",
                card_reference=VALID_CARD,
                card_balance=5000,
                value_split=ValueSplit(tender=1200, discount=0),
                created_at=ITEM_CREATED,
            ),
        ),
    )
    assert fake.calls_to("LineItems")[0].variables == {
        "page": 1,
        "limit": 100,
        "merchant_transaction_reference": "bill-3",
    }
    assert fake.calls_to("createReversal")[0].variables == {
        "ReversalItems": [{"line_item_id": 101, "shipping_refund": False}],
        "merchant_transaction_reference": "bill-3-REVERSAL",
        "unit_epos_reference": SITE,
        "merchant_id": MERCHANT_ID,
    }
    assert fake.cards[VALID_CARD].balance == 5000


def test_reverse_a_sale_with_its_own_reversal_reference(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_blank_card(SECOND_CARD)
    client.sell_card(SECOND_CARD, 2500, reference="sale-9")
    reversal = client.reverse("sale-9", reversal_reference="void-9")
    assert reversal.reference == "void-9"
    assert reversal.reversed_line_item_ids == (101,)
    assert [(item.id, item.value, item.card_balance) for item in reversal.line_items] == [(102, -2500, 0)]
    assert fake.cards[SECOND_CARD].balance == 0


def test_reversing_an_unknown_reference_sends_no_reversal(client: GiftCardClient, fake: FakeToggle) -> None:
    with pytest.raises(TransactionNotFound) as caught:
        client.reverse("nope")
    assert str(caught.value) == "No transaction has the reference nope."
    assert caught.value.reference == "nope"
    assert fake.fields_called() == ["loginUser", "LineItems"]


def test_reversing_twice(client: GiftCardClient, fake: FakeToggle) -> None:
    client.top_up(VALID_CARD, 1000, reference="topup-2")
    client.reverse("topup-2")
    with pytest.raises(DuplicateReference):  # same default reversal reference
        client.reverse("topup-2")
    with pytest.raises(AlreadyReversed) as caught:
        client.reverse("topup-2", reversal_reference="topup-2-again")
    assert str(caught.value) == "Line item 101 has already been reversed."
    assert fake.cards[VALID_CARD].balance == 5000
    assert len(fake.line_items) == 2


def test_line_items_of_a_reference(client: GiftCardClient) -> None:
    client.redeem(VALID_CARD, 800, reference="bill-4")
    assert client.line_items("bill-4") == [
        LineItem(
            id=101,
            value=-800,
            reference="bill-4",
            card_reference=VALID_CARD,
            card_balance=4200,
            value_split=ValueSplit(tender=-800, discount=0),
            created_at=ITEM_CREATED,
        )
    ]
    assert client.line_items("unknown") == []


@pytest.mark.parametrize("reference", ["", "   "])
def test_references_must_not_be_empty(fake: FakeToggle, reference: str) -> None:
    with make_client(fake) as client:
        with pytest.raises(ValidationFailed):
            client.top_up(VALID_CARD, 100, reference=reference)
        with pytest.raises(ValidationFailed):
            client.reverse(reference)
        with pytest.raises(ValidationFailed):
            client.line_items(reference)
    assert fake.calls == []
