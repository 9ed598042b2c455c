"""Webhooks end to end: a live `giftledger serve` (its outbox sender posting), a till over HTTP, and a real
receiver (tests/webhooks/receiver.py) that checks each signature as the reference's PHP example does. Every
event is produced by the real action; the receiver sees exactly what a Toggle receiver would."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from giftledger.services import card_admin, card_messages, card_replacement, webhooks
from giftledger.services.context import Services, operator
from giftledger.storage.webhooks import DeliveryRow
from tests.safety.helpers import start_safety_server
from tests.safety.tills import adjustment, ref, reversal, sell_new, send
from tests.support import Demo, LiveServer, new_demo, signed_in, with_services
from tests.webhooks.receiver import Receiver, receiver

CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ORDER = """mutation($account_id:Int!,$merchant_id:Int!,$order_items:[OrderItemInput]!,$currency:String!,
  $group_fulfilment:Boolean!,$total:Int!,$sales_channel_id:Int!,$unit_epos_reference:String!,
  $merchant_transaction_reference:String,$receipt_contact:ReceiptContactInput){
 createOrder(account_id:$account_id,merchant_id:$merchant_id,order_items:$order_items,currency:$currency,
   group_fulfilment:$group_fulfilment,total:$total,sales_channel_id:$sales_channel_id,
   unit_epos_reference:$unit_epos_reference,merchant_transaction_reference:$merchant_transaction_reference,
   receipt_contact:$receipt_contact) { id LineItems { id Card { id card_reference } } } }"""


@pytest.fixture(scope="module")
def live(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server retrying a failed delivery after 1 s (then 2, 4, ...)."""
    server = start_safety_server(
        database, Path(tmp_path_factory.mktemp("webhooks")), {"GIFTLEDGER_WEBHOOK_RETRY_SECONDS": "1"}
    )
    yield server
    server.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as got:
        yield got


def subscribe(database: str, demo: Demo, hooks: Receiver, *events: str) -> int:
    """An endpoint of the demo account at the receiver, which is given its secret; its id."""
    created = with_services(
        database, lambda s: webhooks.add_endpoint(s, operator(demo.account_id), hooks.url, list(events))
    )
    hooks.secret = created.secret
    assert re.fullmatch(r"[0-9a-f]{64}", created.secret)
    return int(created.id)


def log_of(database: str, demo: Demo, endpoint_id: int) -> list[DeliveryRow]:
    async def work(s: Services) -> list[DeliveryRow]:
        return (await webhooks.endpoint_log(s, operator(demo.account_id), endpoint_id)).deliveries

    rows: list[DeliveryRow] = with_services(database, work)
    return rows


def settled_log(database: str, demo: Demo, endpoint_id: int, timeout: float = 20.0) -> list[DeliveryRow]:
    """The endpoint's delivery log once none is queued (or at the deadline): the sender records a reply after the
    receiver gave it, so the log can be a moment behind what the receiver holds."""
    deadline = time.monotonic() + timeout
    while True:
        log = log_of(database, demo, endpoint_id)
        if all(d.state != "queued" for d in log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def envelope(event: dict[str, Any], event_type: str) -> dict[str, Any]:
    """The event's data object, once its envelope is checked."""
    assert set(event) == {"id", "object", "api_version", "webhook_version", "created_at", "type", "data"}
    assert (event["object"], event["api_version"], event["webhook_version"], event["type"]) == (
        "event",
        "3.10",
        "1.0",
        event_type,
    )
    assert isinstance(event["id"], int) and CREATED_AT.match(event["created_at"])
    data: dict[str, Any] = event["data"]["object"]
    return data


def test_till_movements_over_http_give_card_balance_adjusted_signed_as_toggle_signs(
    database: str, live: LiveServer, hooks: Receiver
) -> None:
    demo = new_demo(database)
    endpoint_id = subscribe(database, demo, hooks, "card.balance_adjusted")
    till = signed_in(live, demo)
    card, _ = sell_new(till, demo, 2500)  # a sale is order.created's, not a balance adjustment
    redeemed = send(till, adjustment(demo, card, -700, reference="pay-1-" + ref("r")))
    assert "errors" not in redeemed
    send(till, adjustment(demo, card, 1000))
    reference = redeemed["data"]["createBalanceAdjustment"]["LineItem"]["Transaction"]["merchant_transaction_reference"]
    [redemption_id] = [
        line["id"]
        for line in send(
            till,
            {
                "query": "query($r:String!){LineItems(merchant_transaction_reference:$r,page:1,limit:5){data{id}}}",
                "variables": {"r": reference},
            },
        )["data"]["LineItems"]["data"]
    ]
    send(till, reversal(demo, [redemption_id]))
    got = hooks.wait_for(lambda g: len(g) >= 3, what="three events")

    assert [g.verified for g in got] == [True] * 3 and [g.path for g in got] == ["/hooks"] * 3
    assert all(
        g.headers["Content-Type"] == "application/json" and "Toggle-Signature-Previous" not in g.headers for g in got
    )
    cards = [envelope(g.event, "card.balance_adjusted") for g in got]
    assert [(c["object"], c["card_reference"], c["balance"], c["account_id"]) for c in cards] == [
        ("card", card, 1800, demo.account_id),
        ("card", card, 2800, demo.account_id),
        ("card", card, 3500, demo.account_id),
    ]
    lines = [g.event["data"]["line_item"] for g in got]
    assert [(li["value"], li["line_item_type"]) for li in lines] == [
        (-700, {"id": 2, "name": "Redemption"}),
        (1000, {"id": 7, "name": "Top-up"}),
        (700, {"id": 4, "name": "Reversal"}),
    ]
    assert lines[0]["id"] == redemption_id and lines[0]["merchant_transaction_reference"] == reference
    ids = [g.event["id"] for g in got]
    assert ids == sorted(set(ids))
    assert cards[0]["currency"] == {
        "object": "currency",
        "id": 1,
        "name": "Sterling",
        "denomination": 100,
        "iso_currency_code": "GBP",
    }
    assert cards[0]["product"]["object"] == "product" and cards[0]["pin"] is None
    log = settled_log(database, demo, endpoint_id)
    assert [(d.event_id, d.event_type, d.state, d.attempts, d.last_status) for d in log] == [
        (i, "card.balance_adjusted", "sent", 1, 200) for i in reversed(ids)
    ]


def test_sales_cancellations_and_emails_give_order_and_card_events(
    database: str, live: LiveServer, hooks: Receiver
) -> None:
    demo = new_demo(database)
    subscribe(database, demo, hooks)  # every event
    till = signed_in(live, demo)
    item = {
        "product_id": demo.product_id,
        "custom_price_modifier_value": 3000,
        "fulfilment_method_id": 1,
        "fulfilment_email": "guest@example.com",
        "message": "Happy birthday",
        "generate_card_reference": True,
    }
    variables = {
        "account_id": demo.account_id,
        "merchant_id": demo.merchant_id,
        "order_items": [item],
        "currency": "GBP",
        "group_fulfilment": True,
        "total": 3000,
        "sales_channel_id": 3,
        "unit_epos_reference": demo.epos,
        "merchant_transaction_reference": ref("egift"),
        "receipt_contact": {"email": "buyer@example.com", "first_name": "Ann", "last_name": "Buyer"},
    }
    body = send(till, {"query": ORDER, "variables": variables})
    assert "errors" not in body, body
    order = body["data"]["createOrder"]
    [line] = order["LineItems"]
    card = line["Card"]["card_reference"]
    got = hooks.wait_for(lambda g: len(g) >= 3, what="the sale's three events")
    assert [g.event["type"] for g in got] == ["order.created", "card.send_recipient_email", "order.send_receipt_email"]
    created = envelope(got[0].event, "order.created")
    assert (created["object"], created["id"], created["value"], created["postage_value"], created["status"]) == (
        "order",
        int(order["id"]),
        3000,
        0,
        "completed",
    )
    assert created["transaction"]["value"] == 3000 and created["transaction"]["object"] == "transaction"
    assert created["receipt_contact"]["email"] == "buyer@example.com"
    [sold] = created["line_items"]
    assert (sold["object"], sold["id"], sold["value"], sold["personalised_message"]) == (
        "line_item",
        line["id"],
        3000,
        "Happy birthday",
    )
    assert sold["line_item_type"] == {"id": 1, "name": "Sale"} and sold["card"]["card_reference"] == card
    emailed = envelope(got[1].event, "card.send_recipient_email")
    assert (emailed["card_reference"], emailed["balance"], emailed["personal_message"]) == (
        card,
        3000,
        "Happy birthday",
    )
    assert emailed["purchaser_contact"]["email"] == "buyer@example.com"
    assert envelope(got[2].event, "order.send_receipt_email")["id"] == int(order["id"])

    # the dashboard's "Send digital copy"
    async def resend(s: Services) -> None:
        history = await card_admin.card_history(s, operator(demo.account_id), int(line["Card"]["id"]))
        await card_messages.resend_e_gift(s, operator(demo.account_id), history.card.id, "friend@example.com")

    with_services(database, resend)

    async def listed(s: Services) -> list[tuple[str, str]]:  # the card's messages: its emails, not its webhooks
        history = await card_admin.card_history(s, operator(demo.account_id), int(line["Card"]["id"]))
        shown = await card_messages.card_messages(s, operator(demo.account_id), history)
        return [(m.kind, m.recipient) for m in shown.lines]

    assert with_services(database, listed) == [
        ("card.e_gift", "guest@example.com"),
        ("card.e_gift", "friend@example.com"),
    ]
    got = hooks.wait_for(lambda g: len(g) >= 4, what="the resend's event")
    again = envelope(got[3].event, "card.resend_recipient_email")
    assert (again["object"], again["mail_to_address"], again["card"]["card_reference"]) == (
        "resend_recipient_email",
        "friend@example.com",
        card,
    )

    # every sale of the order reversed: order.cancelled, and the sale's reversal moves the balance
    send(till, reversal(demo, [line["id"]]))
    got = hooks.wait_for(lambda g: len(g) >= 6, what="the cancellation's events")
    # (a card's events keep their order, and an order's theirs; these two are one of each, so either may come first)
    assert sorted(g.event["type"] for g in got[4:]) == ["card.balance_adjusted", "order.cancelled"]
    cancelled = envelope(next(g.event for g in got[4:] if g.event["type"] == "order.cancelled"), "order.cancelled")
    assert (cancelled["id"], cancelled["status"]) == (int(order["id"]), "cancelled")
    assert all(g.verified for g in got) and len({g.event["id"] for g in got}) == 6


def test_a_failed_delivery_is_retried_until_the_receiver_takes_it_with_the_same_event_and_body(
    database: str, live: LiveServer, hooks: Receiver
) -> None:
    demo = new_demo(database)
    endpoint_id = subscribe(database, demo, hooks, "card.balance_adjusted")
    hooks.fail_next = 2
    till = signed_in(live, demo)
    card, _ = sell_new(till, demo, 1000)
    send(till, adjustment(demo, card, -100))
    got = hooks.wait_for(lambda g: len(g) >= 3, what="two failures and a success")
    assert [g.status for g in got] == [500, 500, 200]
    assert len({g.body for g in got}) == 1 and all(g.verified for g in got)
    [delivery] = settled_log(database, demo, endpoint_id)
    assert (delivery.event_id, delivery.state, delivery.attempts, delivery.last_status, delivery.last_response) == (
        got[0].event["id"],
        "sent",
        3,
        200,
        '{"ok": true}',
    )
    assert len(hooks.received()) == 3


def test_events_of_one_card_arrive_in_the_order_they_happened_under_concurrent_redemptions(
    database: str, live: LiveServer, hooks: Receiver
) -> None:
    demo = new_demo(database)
    subscribe(database, demo, hooks, "card.balance_adjusted")
    # the card's first delivery is refused once: its later events wait for its retry (1 s later) rather than
    # overtake it; and the receiver is slow, so that several deliveries would be in flight at once without the rule
    hooks.fail_next = 1
    hooks.delay = 0.02
    card, _ = sell_new(signed_in(live, demo), demo, 5000)
    tills = [signed_in(live, demo) for _ in range(6)]

    def redeem(n: int) -> None:
        assert "errors" not in send(tills[n % 6], adjustment(demo, card, -100))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(redeem, range(18)))
    got = hooks.wait_for(lambda g: len(g) >= 19, what="18 events and one refusal")
    assert [g.status for g in got] == [500] + [200] * 18
    taken = hooks.events("card.balance_adjusted")
    assert [e["data"]["object"]["balance"] for e in taken] == list(range(4900, 3100, -100))
    line_items = [e["data"]["line_item"]["id"] for e in taken]
    assert line_items == sorted(line_items) and got[0].event == taken[0]


def test_a_replaced_card_gives_its_transfers_and_card_reference_updated(
    database: str, live: LiveServer, hooks: Receiver
) -> None:
    demo = new_demo(database)
    subscribe(database, demo, hooks, "card.card_reference_updated", "card.balance_adjusted")
    till = signed_in(live, demo)
    card, _ = sell_new(till, demo, 2000)

    async def replace(s: Services) -> str:
        card_id = await card_admin.find_card(s, operator(demo.account_id), card)
        done = await card_replacement.replace_card(s, operator(demo.account_id), card_id, "lost")
        return done.new_card_reference

    new_card = with_services(database, replace)
    got = sorted(hooks.wait_for(lambda g: len(g) >= 3, what="the replacement's events"), key=lambda g: g.event["id"])
    assert [
        (g.event["type"], g.event["data"]["object"]["card_reference"], g.event["data"]["object"]["balance"])
        for g in got
    ] == [
        ("card.balance_adjusted", card, 0),
        ("card.balance_adjusted", new_card, 2000),
        ("card.card_reference_updated", new_card, 2000),
    ]
    assert [g.event["data"]["line_item"]["line_item_type"]["name"] for g in got[:2]] == [
        "Outbound Balance Transfer",
        "Inbound Balance Transfer",
    ]
    previous = got[2].event["data"]["previous_card"]
    assert (previous["object"], previous["card_reference"]) == ("card", card)
