"""Property-based: random sequences of sales, top-ups, redemptions and reversals (valid and invalid ones)
against the real server, with the card lifecycle between them (a card's expiry coming and the expiry run's
breakage, blocking and unblocking, reversing a breakage to reactivate the card, replacing the card: its balance
moved to a new card by a balance transfer, the card blocked, the transfer never reversible), each reply and the final
balances and states compared with a small in-memory model of the rules. The sequences are derandomized (the
same 100+ every run) so CI is stable; `ledger verify` runs on the account afterwards (the `account` fixture)."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from giftledger.app import build_services
from giftledger.domain.ledger import LineItemType
from giftledger.services import card_lifecycle, card_replacement
from giftledger.services.context import Services, operator
from giftledger.services.expiry import expire_due
from giftledger.storage.clock import utcnow
from giftledger.storage.tables import cards, line_items
from tests.safety.tills import new_card
from tests.support import Api, Demo
from tests.support import test_settings as settings_for

# 100 sequences in the suite (its time budget); a longer run: GIFTLEDGER_MODEL_SEQUENCES=2000 pytest this file
SEQUENCES = int(os.environ.get("GIFTLEDGER_MODEL_SEQUENCES", "100"))
SLOTS = 2  # card numbers per sequence (few, so operations meet on the same card)

CARD_FIELDS = "card_reference balance state ValueSplit { tender discount }"
ITEM_FIELDS = f"id value ValueSplit {{ tender discount }} Card {{ {CARD_FIELDS} }}"
SELL = f"""mutation($account_id:Int!,$merchant_id:Int!,$order_items:[OrderItemInput]!,$currency:String!,$total:Int!,
  $unit_epos_reference:String!,$merchant_transaction_reference:String){{
  createOrder(account_id:$account_id,merchant_id:$merchant_id,order_items:$order_items,currency:$currency,
    group_fulfilment:true,total:$total,sales_channel_id:3,unit_epos_reference:$unit_epos_reference,
    merchant_transaction_reference:$merchant_transaction_reference){{ LineItems {{ {ITEM_FIELDS} }} }} }}"""
ADJUST = f"""mutation($value:Int,$card_reference:String!,$unit_epos_reference:String!,$merchant_id:Int!,
  $merchant_transaction_reference:String){{
  createBalanceAdjustment(currency:"GBP",value:$value,card_reference:$card_reference,
    unit_epos_reference:$unit_epos_reference,merchant_id:$merchant_id,
    merchant_transaction_reference:$merchant_transaction_reference){{ LineItem {{ {ITEM_FIELDS} }} }} }}"""
REVERSE = f"""mutation($merchant_id:Int!,$unit_epos_reference:String!,$merchant_transaction_reference:String,
  $ReversalItems:[ReversalItemInput]!){{
  createReversal(ReversalItems:$ReversalItems,merchant_transaction_reference:$merchant_transaction_reference,
    unit_epos_reference:$unit_epos_reference,merchant_id:$merchant_id){{ LineItems {{ {ITEM_FIELDS} }} }} }}"""
CARD = f"query($r:String!){{ Cards(card_reference:$r,page:1,limit:1){{ data {{ {CARD_FIELDS} }} }} }}"

SALE, REDEMPTION, REVERSAL, TOP_UP, BREAKAGE = "sale", "redemption", "reversal", "top-up", "breakage"
TRANSFER = "transfer"  # a replacement's transfer out of the card (never reversible)


@dataclass
class Card:
    tender: int = 0
    discount: int = 0
    active: bool = True
    expired: bool = False  # its expiry has come (set by the model's "expire"; removed by reversing its breakage)
    blocked: bool = False
    replaced: bool = False  # its balance moved to a new card; blocked for good

    @property
    def balance(self) -> int:
        return self.tender + self.discount

    @property
    def state(self) -> str | None:
        if not self.active:
            return None  # unsold stock has no state
        return "blocked" if self.blocked else "expired" if self.expired else "active"


@dataclass
class Item:
    server_id: int
    slot: int
    kind: str
    tender: int
    discount: int
    reversed: bool = False

    @property
    def value(self) -> int:
        return self.tender + self.discount


@dataclass
class Model:
    """The rules as the contract and docs/api.md state them, written the simplest way."""

    cards: dict[int, Card] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    references: dict[str, list[int]] = field(default_factory=dict)  # successful ones: their line items

    def active(self, slot: int) -> Card | None:
        card = self.cards.get(slot)
        return card if card is not None and card.active else None


# The operations a till may send, valid or not. Round amounts make balances meet exactly (a card emptied,
# a reversal exactly covered) far more often than arbitrary ones would.
ROUND = [100, 200, 300]
amount = st.one_of(st.sampled_from(ROUND), st.integers(1, 5000))
sell_op = st.tuples(
    st.just(SALE), st.integers(0, SLOTS - 1), amount, st.sampled_from([0, 0, 0, 1, 2])
)  # last: 0 no discount, 1 part discount, 2 all discount (a free card)
adjust_op = st.tuples(
    st.just("adjust"),
    st.integers(0, SLOTS - 1),
    st.one_of(
        st.sampled_from(["all", "over", "refill"]),
        st.sampled_from([-v for v in ROUND] + ROUND),
        st.integers(-6000, 3000).filter(lambda v: v != 0),
    ),
    st.booleans(),
)  # "all": redeem exactly the balance; "over": 1p more; "refill": top up to the card's first sale value.
# last: reuse an earlier successful reference
reverse_op = st.tuples(
    st.just("reverse"), st.integers(0, 50), st.sampled_from(["any", "any", "last", "sale", "unknown"]), st.booleans()
)  # (index into the line items so far; which: any of them, the last one, a sale, an id that does not exist;
# reuse a reference)
life_op = st.tuples(
    st.just("life"),
    st.integers(0, SLOTS - 1),
    st.sampled_from(["expire", "expire", "block", "unblock", "reactivate", "replace"]),
)  # the card's expiry comes and the expiry run breaks it; blocked or unblocked by hand; its last breakage reversed;
# replaced (its balance moved to a new card)
operations = st.lists(st.one_of(sell_op, adjust_op, reverse_op, life_op), min_size=1, max_size=8)


def _split_debit(card: Card, amount: int) -> tuple[int, int]:
    discount = amount * card.discount // card.balance
    return -(amount - discount), -discount


class Lifecycle:
    """What the model does besides a till: in this process, on the services (its own event loop)."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.services: Services = build_services(settings_for(database_url))

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.services.db.dispose())
        self.loop.close()

    async def expire(self, account_id: int, number: str) -> int | None:
        """Let the card's expiry come, run the expiry; the id of its newest breakage line item (None: none)."""
        async with self.services.db.transaction() as conn:
            await conn.execute(
                cards.update()
                .where(cards.c.account_id == account_id, cards.c.card_reference == number)
                .values(expiry_time=utcnow() - timedelta(seconds=1))
            )
        await expire_due(self.services)
        async with self.services.db.engine.connect() as conn:
            found = await conn.execute(
                line_items.select()
                .with_only_columns(line_items.c.id)
                .join_from(line_items, cards, cards.c.id == line_items.c.card_id)
                .where(
                    line_items.c.account_id == account_id,
                    cards.c.card_reference == number,
                    line_items.c.type_id == int(LineItemType.BREAKAGE),
                )
                .order_by(line_items.c.id.desc())
                .limit(1)
            )
            newest = found.scalar()
            return int(newest) if newest is not None else None

    async def card_id(self, account_id: int, number: str) -> int:
        async with self.services.db.engine.connect() as conn:
            found = await conn.execute(
                cards.select()
                .with_only_columns(cards.c.id)
                .where(cards.c.account_id == account_id, cards.c.card_reference == number)
            )
            return int(found.scalar_one())


async def replace(services: Services, account_id: int, number: str) -> int:
    """Replace the card (services/card_replacement.py); the id of its transfer out."""
    async with services.db.engine.connect() as conn:
        found = await conn.execute(
            cards.select()
            .with_only_columns(cards.c.id)
            .where(cards.c.account_id == account_id, cards.c.card_reference == number)
        )
        card_id = int(found.scalar_one())
    done = await card_replacement.replace_card(services, operator(account_id), card_id, "lost")
    async with services.db.engine.connect() as conn:
        found = await conn.execute(
            line_items.select()
            .with_only_columns(line_items.c.id)
            .where(line_items.c.account_id == account_id, line_items.c.transaction_id == done.transaction_id,
                   line_items.c.card_id == card_id)
        )  # fmt: skip
        return int(found.scalar_one())


class Runner:
    def __init__(self, till: Api, account: Demo, life: Lifecycle) -> None:
        self.till = till
        self.account = account
        self.life = life
        self.model = Model()
        self.numbers = [new_card() for _ in range(SLOTS)]
        self.prefix = uuid.uuid4().hex[:12]
        self.count = 0

    def reference(self) -> str:
        self.count += 1
        return f"m-{self.prefix}-{self.count}"

    def send(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.till.post(query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def till_variables(self, reference: str) -> dict[str, Any]:
        return {
            "merchant_id": self.account.merchant_id,
            "unit_epos_reference": self.account.epos,
            "merchant_transaction_reference": reference,
        }

    @staticmethod
    def refused(body: dict[str, Any], operation: str) -> dict[str, Any]:
        assert body["data"] == {operation: None}, body
        [error] = body["errors"]
        result: dict[str, Any] = error
        return result

    def check_item(self, got: dict[str, Any], slot: int, tender: int, discount: int) -> None:
        card = self.model.cards[slot]
        assert got["value"] == tender + discount
        assert got["ValueSplit"] == {"tender": tender, "discount": discount}
        assert got["Card"] == {
            "card_reference": self.numbers[slot],
            "balance": card.balance,
            "state": card.state,
            "ValueSplit": {"tender": card.tender, "discount": card.discount},
        }

    def sell(self, slot: int, value: int, discounted: int) -> None:
        discount = {0: 0, 1: value // 3, 2: value}[discounted]
        item: dict[str, Any] = {
            "fulfilment_method_id": 3,
            "product_id": self.account.product_id,
            "card_reference": self.numbers[slot],
            "custom_price_modifier_value": value,
        }
        if discount:
            item["discounts"] = [{"discount_type_id": 1, "value": discount}]
        reference = self.reference()
        body = self.send(
            SELL,
            {
                **self.till_variables(reference),
                "account_id": self.account.account_id,
                "order_items": [item],
                "currency": "GBP",
                "total": value - discount,
            },
        )
        if self.model.active(slot) is not None:
            error = self.refused(body, "createOrder")
            assert error["validation"] == {"order_items.0.card_reference": ["This card has already been sold."]}
            return
        assert "errors" not in body, body
        self.model.cards[slot] = card = self.model.cards.get(slot, Card())
        card.active = True
        card.expired = False  # sold again: the product's terms (the demo product never expires)
        card.tender += value - discount
        card.discount += discount
        [got] = body["data"]["createOrder"]["LineItems"]
        self.model.items.append(Item(got["id"], slot, SALE, value - discount, discount))
        self.model.references[reference] = [got["id"]]
        self.check_item(got, slot, value - discount, discount)

    def adjust(self, slot: int, value: int | str, reuse: bool) -> None:
        if isinstance(value, str):
            held = self.model.active(slot)
            balance = held.balance if held else 100
            if value == "refill":
                sales = [i.value for i in self.model.items if i.slot == slot and i.kind == SALE]
                value = max((sales[0] if sales else 100) - balance, 0) or 1
            else:
                value = -balance - (1 if value == "over" else 0) or -1
        reused = reuse and bool(self.model.references)
        reference = sorted(self.model.references)[value % len(self.model.references)] if reused else self.reference()
        body = self.send(
            ADJUST, {**self.till_variables(reference), "value": value, "card_reference": self.numbers[slot]}
        )
        if reused:
            error = self.refused(body, "createBalanceAdjustment")
            assert error["extensions"] == {
                "code": "DUPLICATE_REFERENCE",
                "merchant_transaction_reference": reference,
                "line_item_ids": self.model.references[reference],
            }
            return
        card = self.model.active(slot)
        if card is None:
            assert self.refused(body, "createBalanceAdjustment")["extensions"]["code"] == "CARD_NOT_FOUND"
            return
        if card.state != "active":
            assert self.refused(body, "createBalanceAdjustment")["extensions"]["code"] == {
                "blocked": "CARD_BLOCKED",
                "expired": "CARD_EXPIRED",
            }[card.state]
            return
        if value < 0 and -value > card.balance:
            assert self.refused(body, "createBalanceAdjustment")["extensions"]["code"] == "NEGATIVE_BALANCE"
            return
        assert "errors" not in body, body
        tender, discount = _split_debit(card, -value) if value < 0 else (value, 0)
        card.tender += tender
        card.discount += discount
        got = body["data"]["createBalanceAdjustment"]["LineItem"]
        self.model.items.append(Item(got["id"], slot, REDEMPTION if value < 0 else TOP_UP, tender, discount))
        self.model.references[reference] = [got["id"]]
        self.check_item(got, slot, tender, discount)

    def reverse(self, index: int, which: str, reuse: bool) -> None:
        items = self.model.items
        if which == "sale":
            items = [i for i in items if i.kind == SALE] or items
        elif which == "last":
            items = items[-1:]
        if which == "unknown" or not items:
            target_id, target = 2_000_000_000, None
        else:
            target = items[index % len(items)]
            target_id = target.server_id
        reused = reuse and bool(self.model.references)
        reference = sorted(self.model.references)[index % len(self.model.references)] if reused else self.reference()
        body = self.send(
            REVERSE,
            {
                **self.till_variables(reference),
                "ReversalItems": [{"line_item_id": target_id, "shipping_refund": False}],
            },
        )
        if reused:
            assert self.refused(body, "createReversal")["extensions"]["code"] == "DUPLICATE_REFERENCE"
            return
        if target is None or target.kind in (REVERSAL, TRANSFER):
            error = self.refused(body, "createReversal")
            assert error["validation"] == {"ReversalItems.0.line_item_id": ["This field is not of an expected value"]}
            return
        if target.reversed:
            error = self.refused(body, "createReversal")
            assert (error["extensions"]["code"], error["message"]) == (
                "ALREADY_REVERSED",
                f"Line item {target_id} has already been reversed.",
            )
            return
        card = self.model.cards[target.slot]
        if target.value > 0 and target.value > card.balance:
            assert self.refused(body, "createReversal")["extensions"]["code"] == "NEGATIVE_BALANCE"
            return
        assert "errors" not in body, body
        tender, discount = (-target.tender, -target.discount) if target.value < 0 else _split_debit(card, target.value)
        card.tender += tender
        card.discount += discount
        target.reversed = True
        if target.kind == BREAKAGE:
            card.expired = False  # reactivated: its expiry is removed
        [got] = body["data"]["createReversal"]["LineItems"]
        self.model.items.append(Item(got["id"], target.slot, REVERSAL, tender, discount))
        self.model.references[reference] = [got["id"]]
        on_card = [i for i in self.model.items if i.slot == target.slot and i.kind != REVERSAL]
        if target.kind == SALE and all(i.reversed for i in on_card):
            card.active = False  # an unsold card again: back in stock, without the block of the sale reversed
            card.blocked = False
        self.check_item(got, target.slot, tender, discount)

    def lifecycle(self, slot: int, what: str) -> None:
        card = self.model.active(slot)
        if card is None:
            return  # nothing to do to an unsold card
        number = self.numbers[slot]
        if what == "expire":
            newest = self.life.run(self.life.expire(self.account.account_id, number))
            card.expired = True
            if card.balance > 0:
                assert newest is not None and all(i.server_id != newest for i in self.model.items)
                self.model.items.append(Item(newest, slot, BREAKAGE, -card.tender, -card.discount))
                card.tender = card.discount = 0
        elif what == "block" and not card.blocked:
            card_id = self.life.run(self.life.card_id(self.account.account_id, number))
            self.life.run(card_lifecycle.block_card(self.life.services, operator(self.account.account_id), card_id,
                                                    "lost"))  # fmt: skip
            card.blocked = True
        elif what == "unblock" and card.blocked and not card.replaced:
            card_id = self.life.run(self.life.card_id(self.account.account_id, number))
            reason = self.life.run(
                card_lifecycle.unblock_card(self.life.services, operator(self.account.account_id), card_id)
            )
            assert reason == "lost"
            card.blocked = False
        elif what == "replace" and not card.blocked and card.balance > 0:
            out = self.life.run(replace(self.life.services, self.account.account_id, number))
            self.model.items.append(Item(out, slot, TRANSFER, -card.tender, -card.discount))
            card.tender = card.discount = 0
            card.blocked = card.replaced = True
        elif what == "reactivate":
            broken = [n for n, i in enumerate(self.model.items) if i.slot == slot and i.kind == BREAKAGE]
            if broken:
                self.reverse(broken[-1], "any", False)

    def final_balances(self) -> None:
        for slot, number in enumerate(self.numbers):
            data = self.till.call(CARD, {"r": number})["data"]["Cards"]["data"]
            card = self.model.active(slot)
            if card is None:
                assert data == [], (slot, data)
            else:
                assert data == [
                    {"card_reference": number, "balance": card.balance, "state": card.state,
                     "ValueSplit": {"tender": card.tender, "discount": card.discount}}
                ]  # fmt: skip


def test_random_till_sequences_match_the_model(till: Api, account: Demo, database_url: str) -> None:
    sequences = 0
    life = Lifecycle(database_url)

    @settings(
        max_examples=SEQUENCES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(operations)
    def run(ops: list[tuple[Any, ...]]) -> None:
        nonlocal sequences
        sequences += 1
        runner = Runner(till, account, life)
        for op in ops:
            kind, *args = op
            if kind == SALE:
                runner.sell(*args)
            elif kind == "adjust":
                runner.adjust(*args)
            elif kind == "life":
                runner.lifecycle(*args)
            else:
                runner.reverse(*args)
        runner.final_balances()

    try:
        run()
    finally:
        life.close()
    assert sequences >= SEQUENCES
