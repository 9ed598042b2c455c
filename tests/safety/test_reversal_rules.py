"""Reversals on a card whose sale was reversed: the card goes back to unsold stock only when nothing is
left outstanding on it, so no value can ever land on (or be taken from) an unsold card."""

from __future__ import annotations

from typing import Any

from tests.safety.helpers import CARD_NOT_FOUND, verify_ledger
from tests.safety.tills import adjustment, balance, reversal, sale, send
from tests.support import Api, Demo, LiveServer, unchanged


def _ids(body: dict[str, Any], operation: str) -> int:
    data = body["data"][operation]
    item = data["LineItem"] if operation == "createBalanceAdjustment" else data["LineItems"][0]
    return int(item["id"])


def test_a_sale_reversed_after_other_activity_keeps_the_card_in_circulation(
    safety_server: LiveServer, account: Demo, till: Api, database_url: str
) -> None:
    card = account.card_references[0]
    sold = _ids(send(till, sale(account, {card: 1000})), "createOrder")
    redeemed = _ids(send(till, adjustment(account, card, -300)), "createBalanceAdjustment")
    topped_up = _ids(send(till, adjustment(account, card, 300)), "createBalanceAdjustment")
    body = send(till, reversal(account, [sold]))  # the card holds exactly the sale's value again
    assert "errors" not in body, body
    assert balance(till, card) == 0  # still in circulation: a redemption and a top-up are outstanding
    body = send(till, reversal(account, [redeemed]))
    assert "errors" not in body, body
    assert balance(till, card) == 300
    body = send(till, reversal(account, [topped_up]))
    assert "errors" not in body, body
    assert balance(till, card) == 0
    verify_ledger(database_url, account.account_id)


def test_an_unused_card_whose_sale_is_reversed_goes_back_to_stock(
    safety_server: LiveServer, account: Demo, till: Api, database_url: str
) -> None:
    card = account.card_references[0]
    sold = _ids(send(till, sale(account, {card: 1000})), "createOrder")
    redeemed = _ids(send(till, adjustment(account, card, -300)), "createBalanceAdjustment")
    assert "errors" not in send(till, reversal(account, [redeemed]))
    assert "errors" not in send(till, reversal(account, [sold]))
    assert balance(till, card) is None  # unsold again
    with unchanged(database_url, account.account_id):
        refused = send(till, adjustment(account, card, 100))
    assert refused["errors"][0]["message"] == CARD_NOT_FOUND
    resold = send(till, sale(account, {card: 2500}))
    assert "errors" not in resold, resold
    assert balance(till, card) == 2500
