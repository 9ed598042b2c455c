"""The card lifecycle as a till meets it, over the GraphQL API (in-process ASGI): the terms a card is sold with
(the product's, or the order item's own), and the refusals of a redemption or top-up on a card that is not
yet valid, expired or blocked, each leaving everything as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from giftledger.domain.time_zones import zone
from giftledger.domain.validity import ExpiryKind, ValidityRules, expires_at
from giftledger.services import card_lifecycle
from giftledger.services.context import Services, operator
from giftledger.storage.clock import utcnow
from giftledger.storage.lifecycle import Lifecycle
from giftledger.storage.tables import cards
from tests.lifecycle.helpers import Till, refusal, set_card, state
from tests.safety.tills import reversal
from tests.support import Demo

CREATED = "%Y-%m-%d %H:%M:%S"


async def _set_rules(services: Services, demo: Demo, rules: ValidityRules) -> None:
    async with services.db.transaction() as conn:
        assert await Lifecycle(conn, demo.account_id).set_rules(demo.product_id, rules)


def _contract(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(CREATED)


async def test_a_sale_takes_the_products_delay_and_expiry_with_the_3_am_rule(
    till: Till, services: Services, demo: Demo
) -> None:
    await _set_rules(
        services, demo, ValidityRules(activation_delay_seconds=86_400, expiry_kind=ExpiryKind.PERIOD,
                                      expiry_period_days=365, reminder_days=14)
    )  # fmt: skip
    before = utcnow()
    line = await till.sell(2500)
    after = utcnow()
    card = line["Card"]
    bought = before.astimezone(zone("Europe/London")).date()
    assert card["expiry_time"] == _contract(expires_at(bought + timedelta(days=365), "Europe/London"))
    assert _contract(before + timedelta(days=1)) <= card["validity_start_time"] <= _contract(after + timedelta(days=1))
    assert card["state"] == "not_yet_valid"
    # a till is refused until the card becomes active, and nothing changes
    reference = card["card_reference"]
    held = await state(services, demo.account_id)
    for value in (-100, 100):
        body = await till.adjust(reference, value)
        assert refusal(body, "createBalanceAdjustment") == (
            "CARD_NOT_YET_VALID",
            "This card is not valid yet. Transaction not applied.",
            True,
        )
    assert await state(services, demo.account_id) == held
    assert (await till.balance(reference))["state"] == "not_yet_valid"


async def test_an_order_items_validity_rules_and_expiry_config_replace_the_products(
    till: Till, services: Services, demo: Demo
) -> None:
    await _set_rules(services, demo, ValidityRules(expiry_kind=ExpiryKind.DATE, expiry_date=date(2040, 1, 31)))
    line = await till.sell(
        1000,
        validity_rules=[{"validity_rule_type_id": 1, "rule": "2030-06-01 09:30:00"}],
        expiry_config={"hard_expire_at": "2031-06-01 09:30:00", "send_expiry_alert_days_before": 7},
    )
    card = line["Card"]
    assert (card["validity_start_time"], card["expiry_time"]) == ("2030-06-01 09:30:00", "2031-06-01 09:30:00")
    # expiry_config with neither time: never expires; no validity_rules: the product's (active at once)
    line = await till.sell(1000, expiry_config={"seconds_valid_for": None})
    assert (line["Card"]["validity_start_time"], line["Card"]["expiry_time"], line["Card"]["state"]) == (
        None,
        None,
        "active",
    )
    # the product's fixed date: shown as 31 January 2040, so it expires at 03:00 on 1 February (GMT)
    line = await till.sell(1000)
    assert line["Card"]["expiry_time"] == "2040-02-01 03:00:00"


async def test_bad_validity_rules_are_refused_by_field_and_nothing_is_sold(
    till: Till, services: Services, demo: Demo
) -> None:
    held = await state(services, demo.account_id)
    body = await till.call(
        f"mutation($items:[OrderItemInput]!){{ createOrder(account_id:{demo.account_id},"
        f"merchant_id:{demo.merchant_id},order_items:$items,currency:\"GBP\",group_fulfilment:true,total:2000,"
        f'sales_channel_id:3,unit_epos_reference:"{demo.epos}"){{ id }} }}',
        {
            "items": [
                {
                    "product_id": demo.product_id,
                    "fulfilment_method_id": 3,
                    "generate_card_reference": True,
                    "custom_price_modifier_value": 1000,
                    "validity_rules": [{"validity_rule_type_id": 9, "rule": "x"}, {"validity_rule_type_id": 1,
                                                                                   "rule": "1 June"}],
                    "expiry_config": {"seconds_valid_for": -5, "hard_expire_at": "2031-02-30 00:00:00"},
                },
                {
                    "product_id": demo.product_id,
                    "fulfilment_method_id": 3,
                    "generate_card_reference": True,
                    "custom_price_modifier_value": 1000,
                    "validity_rules": [{"validity_rule_type_id": 2, "rule": "2020-01-01 00:00:00"}],
                    "expiry_config": {"hard_expire_at": "2021-01-01 00:00:00"},
                }
            ]
        },
    )  # fmt: skip
    assert body["data"] == {"createOrder": None}
    [error] = body["errors"]
    assert error["validation"] == {
        "order_items.0.validity_rules.0.validity_rule_type_id": ["This field is not of an expected value"],
        "order_items.0.validity_rules.1.rule": ["Enter a UTC time as Y-m-d H:i:s."],
        "order_items.0.expiry_config.seconds_valid_for": ["Enter a whole number of seconds from 1 to 3162240000."],
        "order_items.0.expiry_config.hard_expire_at": ["Enter a UTC time as Y-m-d H:i:s."],
        "order_items.1.validity_rules.0.rule": ["This time has already passed."],
        "order_items.1.expiry_config.hard_expire_at": ["This time has already passed."],
    }
    assert await state(services, demo.account_id) == held


async def test_an_expired_card_is_refused_until_its_breakage_and_shows_expired(
    till: Till, services: Services, demo: Demo
) -> None:
    card = (await till.sell(3000, discount=1000))["Card"]["card_reference"]
    await set_card(services, demo.account_id, card, expiry_time=utcnow() - timedelta(seconds=1))
    held = await state(services, demo.account_id)
    for value in (-100, 100, -5000):
        body = await till.adjust(card, value)
        assert refusal(body, "createBalanceAdjustment") == (
            "CARD_EXPIRED",
            "This card has expired. Transaction not applied.",
            True,
        )
    assert await state(services, demo.account_id) == held
    shown = await till.balance(card)
    assert (shown["state"], shown["balance"], shown["ValueSplit"]) == ("expired", 3000, {"tender": 2000,
                                                                                       "discount": 1000})  # fmt: skip


async def test_a_blocked_card_is_refused_for_any_reason_even_replaced_and_unblocking_lets_it_work(
    till: Till, services: Services, demo: Demo
) -> None:
    sold = (await till.sell(2000))["Card"]
    owner = operator(demo.account_id)
    await card_lifecycle.block_card(services, owner, sold["id"], "stolen")
    held = await state(services, demo.account_id)
    for value in (-100, 100):
        body = await till.adjust(sold["card_reference"], value)
        assert refusal(body, "createBalanceAdjustment") == (
            "CARD_BLOCKED",
            "This card is blocked. Transaction not applied.",
            True,
        )
    assert await state(services, demo.account_id) == held
    shown = await till.balance(sold["card_reference"])
    assert (shown["state"], shown["blocked_reason"]) == ("blocked", "stolen")
    assert await card_lifecycle.unblock_card(services, owner, sold["id"]) == "stolen"
    body = await till.adjust(sold["card_reference"], -500)
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 1500
    # a replacement (part B) blocks with reason "replaced": the same refusal, and no unblocking by hand
    await set_card(services, demo.account_id, sold["card_reference"], blocked_reason="replaced", blocked_at=utcnow())
    body = await till.adjust(sold["card_reference"], -100)
    assert refusal(body, "createBalanceAdjustment")[0] == "CARD_BLOCKED"


async def test_a_blocked_card_whose_sale_is_reversed_goes_back_to_stock_unblocked_and_sells_again(
    till: Till, services: Services, demo: Demo
) -> None:
    """A block belongs to the sale: once that sale is reversed the number is unsold stock, not blocked, and a
    new sale of it gives a card that works (before, it stayed blocked, and unblocking took only sold cards)."""
    line = await till.sell(2000)
    sold, number = line["Card"], line["Card"]["card_reference"]
    await card_lifecycle.block_card(services, operator(demo.account_id), sold["id"], "lost")
    undo = reversal(demo, [line["id"]])
    body = await till.call(undo["query"], undo["variables"])
    assert "errors" not in body, body
    async with services.db.read() as conn:
        row = (await conn.execute(select(cards.c.status, cards.c.balance, cards.c.blocked_reason, cards.c.blocked_at)
                                  .where(cards.c.id == sold["id"]))).one()  # fmt: skip
    assert tuple(row) == ("stock", 0, None, None)
    again = await till.sell(1500, card_reference=number, generate_card_reference=False)
    assert again["Card"]["id"] == sold["id"]
    body = await till.adjust(number, -500)
    assert "errors" not in body, body
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 1000
    shown = await till.balance(number)
    assert (shown["state"], shown["blocked_reason"], shown["balance"]) == ("active", None, 1000)
