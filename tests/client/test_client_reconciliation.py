"""Never charge twice: lost replies are reconciled from the ledger, unsent requests resent with the same
reference, and every outcome is checked against the fake server's ledger."""

from __future__ import annotations

import pytest
from fake_toggle_server import (
    CONNECT_ERROR,
    DROP_AFTER,
    GARBLED_AFTER,
    HTTP_503_BEFORE,
    MALFORMED_AFTER,
    PARTIAL_AFTER,
    PASS,
    RETRYABLE_BEFORE,
    TIMEOUT_AFTER,
    TIMEOUT_BEFORE,
    VALID_CARD,
    Call,
    FakeToggle,
    card_number,
)

from giftledger_client import (
    Adjustment,
    DuplicateReference,
    GiftCardClient,
    InsufficientBalance,
    Redemption,
    Sale,
    ServerError,
    TransportError,
    ValueSplit,
)

ADJUST = "createBalanceAdjustment"
SECOND_CARD = card_number(1)


def references_sent(fake: FakeToggle, root_field: str) -> list[str]:
    return [call.variables["merchant_transaction_reference"] for call in fake.calls_to(root_field)]


@pytest.mark.parametrize("fault", [TIMEOUT_AFTER, DROP_AFTER, GARBLED_AFTER, MALFORMED_AFTER, PARTIAL_AFTER])
def test_a_lost_reply_after_a_top_up_is_reconciled_not_resent(
    client: GiftCardClient, fake: FakeToggle, sleeps: list[float], fault: str
) -> None:
    fake.fail(ADJUST, fault)
    adjustment = client.top_up(VALID_CARD, 1000, reference="topup-lost")
    assert adjustment == Adjustment(
        reference="topup-lost",
        line_item_id=101,
        card_reference=VALID_CARD,
        amount=1000,
        balance=6000,
        value_split=ValueSplit(tender=1000, discount=0),
    )
    assert len(fake.line_items) == 1
    assert fake.line_items[0].id == adjustment.line_item_id
    assert fake.cards[VALID_CARD].balance == 6000
    assert fake.fields_called() == ["loginUser", ADJUST, "LineItems"]
    assert references_sent(fake, "LineItems") == ["topup-lost"]
    # An unreadable success is never resent, so there is nothing to wait for.
    assert sleeps == ([] if fault in (MALFORMED_AFTER, PARTIAL_AFTER) else [0.25])


def test_a_lost_reply_with_a_generated_reference(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail(ADJUST, TIMEOUT_AFTER)
    adjustment = client.top_up(VALID_CARD, 1000)
    assert len(fake.line_items) == 1
    assert fake.line_items[0].reference == adjustment.reference
    assert references_sent(fake, "LineItems") == [adjustment.reference]


def test_a_lost_reply_after_a_redemption(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail(ADJUST, TIMEOUT_AFTER)
    redemption = client.redeem(VALID_CARD, 2000, reference="bill-lost")
    assert redemption == Redemption(
        reference="bill-lost",
        card_reference=VALID_CARD,
        bill=2000,
        taken=2000,
        remaining_to_pay=0,
        balance=3000,
        line_item_id=101,
        value_split=ValueSplit(tender=-2000, discount=0),
    )
    assert [(item.value, item.reference) for item in fake.line_items] == [(-2000, "bill-lost")]
    assert fake.cards[VALID_CARD].balance == 3000
    assert fake.fields_called() == ["loginUser", "Cards", ADJUST, "LineItems"]


def test_a_lost_reply_after_selling_a_card(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.add_blank_card(SECOND_CARD)
    fake.fail("createOrder", TIMEOUT_AFTER)
    sale = client.sell_card(SECOND_CARD, 2500, reference="sale-lost")
    assert sale == Sale(
        reference="sale-lost", order_id=None, line_item_id=101, card_reference=SECOND_CARD, amount=2500, balance=2500
    )
    assert len(fake.line_items) == 1
    assert len(fake.calls_to("createOrder")) == 1


def test_a_lost_reply_after_selling_a_digital_card(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail("createOrder", DROP_AFTER)
    sale = client.sell_digital_card(3000, "guest@example.com", reference="egift-lost")
    assert sale == Sale("egift-lost", None, 101, card_number(900), 3000, 3000)
    assert len(fake.line_items) == 1
    assert len(fake.calls_to("createOrder")) == 1


def test_a_lost_reply_after_a_reversal(client: GiftCardClient, fake: FakeToggle) -> None:
    client.redeem(VALID_CARD, 1200, reference="bill-5")
    fake.fail("createReversal", TIMEOUT_AFTER)
    reversal = client.reverse("bill-5")
    assert reversal.reference == "bill-5-REVERSAL"
    assert reversal.reversed_line_item_ids == (101,)
    assert [(item.id, item.value, item.card_balance) for item in reversal.line_items] == [(102, 1200, 5000)]
    assert len(fake.calls_to("createReversal")) == 1
    assert len(fake.line_items) == 2
    assert fake.cards[VALID_CARD].balance == 5000


def test_a_request_that_never_arrived_is_resent_once_with_the_same_reference(
    client: GiftCardClient, fake: FakeToggle, sleeps: list[float]
) -> None:
    fake.fail(ADJUST, CONNECT_ERROR)
    adjustment = client.top_up(VALID_CARD, 1000)
    sent = references_sent(fake, ADJUST)
    assert len(sent) == 2
    assert sent[0] == sent[1] == adjustment.reference
    assert fake.fields_called() == ["loginUser", ADJUST, ADJUST]  # provably unsent: nothing to reconcile
    assert [item.reference for item in fake.line_items] == [adjustment.reference]
    assert adjustment.balance == 6000
    assert sleeps == [0.25]


@pytest.mark.parametrize("fault", [HTTP_503_BEFORE, RETRYABLE_BEFORE, TIMEOUT_BEFORE])
def test_an_unapplied_attempt_is_checked_then_resent_with_the_same_reference(
    client: GiftCardClient, fake: FakeToggle, fault: str
) -> None:
    fake.fail(ADJUST, fault)
    redemption = client.redeem(VALID_CARD, 700, reference="bill-6")
    assert fake.fields_called() == ["loginUser", "Cards", ADJUST, "LineItems", ADJUST]
    assert references_sent(fake, ADJUST) == ["bill-6", "bill-6"]
    assert [(item.value, item.reference) for item in fake.line_items] == [(-700, "bill-6")]
    assert (redemption.taken, redemption.balance, redemption.line_item_id) == (700, 4300, 101)


def test_a_resend_refused_as_a_duplicate_is_treated_as_applied(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail(ADJUST, TIMEOUT_AFTER)  # applied, reply lost
    fake.fail("LineItems", TIMEOUT_BEFORE)  # the check is lost too, so the client resends
    adjustment = client.top_up(VALID_CARD, 1000, reference="topup-dup")
    assert fake.fields_called() == ["loginUser", ADJUST, "LineItems", ADJUST, "LineItems"]
    assert references_sent(fake, ADJUST) == ["topup-dup", "topup-dup"]
    assert len(fake.line_items) == 1
    assert adjustment == Adjustment("topup-dup", 101, VALID_CARD, 1000, 6000, ValueSplit(1000, 0))


def test_a_reversal_resend_refused_as_a_duplicate_is_treated_as_applied(
    client: GiftCardClient, fake: FakeToggle
) -> None:
    client.top_up(VALID_CARD, 1000, reference="topup-7")
    fake.fail("createReversal", DROP_AFTER)
    fake.fail("LineItems", PASS)  # the lookup of the original transaction goes through
    fake.fail("LineItems", HTTP_503_BEFORE)  # the check after the lost reply fails, so the client resends
    reversal = client.reverse("topup-7")
    assert reversal.line_items[0].value == -1000
    assert len(fake.calls_to("createReversal")) == 2
    assert fake.cards[VALID_CARD].balance == 5000
    assert len(fake.line_items) == 2


def test_unreachable_server_gives_up_after_three_attempts(
    client: GiftCardClient, fake: FakeToggle, sleeps: list[float]
) -> None:
    for _ in range(3):
        fake.fail(ADJUST, CONNECT_ERROR)
    with pytest.raises(TransportError) as caught:
        client.top_up(VALID_CARD, 1000, reference="topup-down")
    assert caught.value.request_sent is False
    assert caught.value.reference == "topup-down"
    assert references_sent(fake, ADJUST) == ["topup-down"] * 3
    assert fake.line_items == []
    assert sleeps == [0.25, 1.0]


def test_unanswered_attempts_are_checked_every_time_before_giving_up(client: GiftCardClient, fake: FakeToggle) -> None:
    for _ in range(3):
        fake.fail(ADJUST, TIMEOUT_BEFORE)
    with pytest.raises(TransportError) as caught:
        client.top_up(VALID_CARD, 1000, reference="topup-slow")
    assert str(caught.value) == "The gift card server did not answer in time (ReadTimeout)."
    assert caught.value.reference == "topup-slow"
    assert fake.fields_called() == ["loginUser"] + [ADJUST, "LineItems"] * 3
    assert fake.line_items == []
    assert fake.cards[VALID_CARD].balance == 5000


def test_applied_on_the_last_attempt_is_still_found(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail(ADJUST, TIMEOUT_BEFORE)
    fake.fail(ADJUST, TIMEOUT_BEFORE)
    fake.fail(ADJUST, TIMEOUT_AFTER)
    adjustment = client.top_up(VALID_CARD, 1000, reference="topup-late")
    assert adjustment.line_item_id == 101
    assert len(fake.line_items) == 1
    assert len(fake.calls_to(ADJUST)) == 3


def test_a_reused_reference_of_another_transaction_is_not_mistaken_for_ours(
    client: GiftCardClient, fake: FakeToggle
) -> None:
    client.top_up(VALID_CARD, 500, reference="shared")
    fake.fail(ADJUST, TIMEOUT_BEFORE)
    with pytest.raises(DuplicateReference) as caught:
        client.top_up(VALID_CARD, 700, reference="shared")
    assert caught.value.line_item_ids == (101,)
    assert caught.value.reference == "shared"
    assert [item.value for item in fake.line_items] == [500]
    assert fake.cards[VALID_CARD].balance == 5500


def test_an_unreadable_success_with_no_trace_is_not_resent(client: GiftCardClient, fake: FakeToggle) -> None:
    fake.fail(ADJUST, MALFORMED_AFTER)
    fake.fail("LineItems", TIMEOUT_BEFORE)
    with pytest.raises(ServerError) as caught:
        client.top_up(VALID_CARD, 1000, reference="topup-odd")
    assert str(caught.value) == "Unexpected reply from the gift card server: missing LineItem."
    assert caught.value.reference == "topup-odd"
    assert len(fake.calls_to(ADJUST)) == 1
    assert len(fake.line_items) == 1  # applied once; the till can confirm with line_items("topup-odd")


def test_a_resend_refused_for_the_balance_is_checked_against_the_ledger_first(
    client: GiftCardClient, fake: FakeToggle
) -> None:
    fake.reference_checked_first = False  # this server answers "negative balance" before "duplicate"
    fake.fail(ADJUST, TIMEOUT_AFTER)  # the whole balance is taken, the reply is lost
    fake.fail("LineItems", TIMEOUT_BEFORE)  # and so is the check, so the client resends
    redemption = client.redeem(VALID_CARD, 5000, reference="bill-all")
    assert fake.fields_called() == ["loginUser", "Cards", ADJUST, "LineItems", ADJUST, "LineItems"]
    assert (redemption.taken, redemption.remaining_to_pay, redemption.balance) == (5000, 0, 0)
    assert [(item.value, item.reference) for item in fake.line_items] == [(-5000, "bill-all")]


def test_a_refused_resend_with_nothing_applied_raises_the_refusal(client: GiftCardClient, fake: FakeToggle) -> None:
    def another_till_spends_first(call: Call) -> None:
        if len(fake.calls_to(ADJUST)) == 2:  # just before the resend is processed
            fake.cards[VALID_CARD].balance = 100

    fake.before_request = another_till_spends_first
    fake.fail(ADJUST, TIMEOUT_BEFORE)  # not applied, but the client cannot know
    fake.fail("LineItems", TIMEOUT_BEFORE)  # the check is lost too, so the client resends
    with pytest.raises(InsufficientBalance) as caught:
        client.redeem(VALID_CARD, 3000, reference="bill-raced")
    assert caught.value.reference == "bill-raced"
    assert fake.fields_called() == ["loginUser", "Cards", ADJUST, "LineItems", ADJUST, "LineItems"]
    assert fake.line_items == []
