"""Transactions and line items: append-only. A reversal is a new line item pointing at the old one.

Every movement of a card's balance goes through one piece of SQL (`MOVEMENT`): the card is locked, the
movement's tender and discount parts are decided (`domain.ledger.movement_split`, written in SQL), the
balance moves in one conditional UPDATE that refuses to go below zero or above `MAX_BALANCE`, and the line
item is appended. `Ledger.post` runs it inside a unit of work (sales, reversals, manual adjustments); the
tills' redemption and top-up (storage/tills.py) fold the same text into their one statement. The CHECK
constraints on `cards` and the append-only trigger on `line_items` are the backstop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from giftledger.domain.ledger import MAX_BALANCE, Holding, LineItemType, Split
from giftledger.domain.records import LineItemRow
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.tables import api_users, line_items, merchants, sites, transactions, users
from giftledger.storage.webhooks import balance_event

# The discount part of a debit of `amount` from a card holding `tender` + `discount` (both >= 0, amount <= their
# sum): rounded down, so the tender part takes the rest (domain.ledger.debit_split).
DEBIT_DISCOUNT = "div({amount}::numeric * {discount}, {tender} + {discount})::bigint"

# The movement, given a CTE `card(id, tender_balance, discount_balance)` holding the locked card. {source}
# and {gate}: what else the movement needs to be allowed (a till's site, reference and caller checks).
# {value}: the movement (< 0 a debit); {credit_tender}/{credit_discount}: a credit's parts when they are not
# all tender (NULL: the rule's). Yields `split(id, tender, discount)`, `moved` (the card after, with
# moved_tender and moved_discount; no row: refused) and `item` (the line item appended); {between}: CTEs
# the line item needs that depend on `moved` (a till's transaction row).
MOVEMENT = f"""
split AS (
    SELECT card.id,
           CASE WHEN {{value}} < 0 THEN {{value}} + {{debit_discount}}
                WHEN {{credit_tender}} IS NOT NULL THEN {{credit_tender}}
                ELSE {{value}} END AS tender,
           CASE WHEN {{value}} < 0 THEN -{{debit_discount}}
                WHEN {{credit_tender}} IS NOT NULL THEN {{credit_discount}}
                ELSE 0 END AS discount
    FROM {{source}}
    WHERE ({{gate}}) AND ({{value}} > 0 OR card.tender_balance + card.discount_balance >= -{{value}})
),
moved AS (
    UPDATE cards
    SET balance = cards.balance + split.tender + split.discount,
        tender_balance = cards.tender_balance + split.tender,
        discount_balance = cards.discount_balance + split.discount,
        updated_at = {{now}}
    FROM split
    WHERE cards.account_id = {{account}} AND cards.id = split.id
      AND cards.tender_balance + split.tender >= 0 AND cards.discount_balance + split.discount >= 0
      AND cards.balance + split.tender + split.discount <= {MAX_BALANCE}
    RETURNING cards.*, split.tender AS moved_tender, split.discount AS moved_discount
),{{between}}
item AS (
    INSERT INTO line_items (account_id, card_id, transaction_id, order_id, type_id, value, tender, discount, site_id,
                            merchant_id, product_id, price_modifier_id, fulfilment_method_id, reverses_line_item_id,
                            note, api_user_id, user_id, created_at)
    SELECT {{account}}, moved.id, {{transaction}}, {{order}}, {{type}}, moved_tender + moved_discount, moved_tender,
           moved_discount, {{site}}, {{merchant}}, {{product}}, {{price_modifier}}, {{fulfilment}}, {{reverses}},
           {{note}}, {{api_user}}, {{user}}, {{now}}
    FROM moved {{joins}}
    RETURNING id, card_id, transaction_id, tender, discount, created_at
)"""


def movement(*, events: bool = True, **parts: str) -> str:
    """`MOVEMENT` with its placeholders bound to a statement's own parameters and CTEs, followed by its
    `card.balance_adjusted` webhook event (storage/webhooks.py `balance_event`: nothing is written without a
    subscribed endpoint); `reference`, the movement's merchant_transaction_reference for the event (NULL).
    Without `events`, no event: the statement's {gate} must then refuse the movement whenever it would have had
    one (`webhooks.balance_event_wanted`), as a till's statement for an account without endpoints does."""
    value = parts["value"]
    debit_discount = DEBIT_DISCOUNT.format(
        amount=f"-{value}", tender="card.tender_balance", discount="card.discount_balance"
    )
    defaults = {"source": "card", "gate": "true", "joins": "", "between": ""}
    moving = {key: value for key, value in parts.items() if key != "reference"}
    # and the movement's `card.balance_adjusted` event, for the account's subscribed webhook endpoints
    event = (
        balance_event(
            account=parts["account"],
            type=parts["type"],
            now=parts["now"],
            reference=parts.get("reference", "NULL::text"),
        )
        if events
        else ""
    )
    return MOVEMENT.format(**{**defaults, **moving, "debit_discount": debit_discount}).strip() + event


# $1 account, $2 card, $3 transaction, $4 type, $5 value, $6/$7 a credit's tender/discount (NULL: the rule's),
# $8 order, $9 product, $10 price modifier, $11 fulfilment method, $12 reversed line item, $13 note, $14 site,
# $15 merchant, $16 API user, $17 user, $18 now.
_POST = f"""
WITH card AS (
    SELECT id, tender_balance, discount_balance FROM cards WHERE account_id = $1 AND id = $2 FOR UPDATE
),
{
    movement(
        account="$1",
        value="$5::bigint",
        credit_tender="$6::bigint",
        credit_discount="$7::bigint",
        now="$18",
        transaction="$3",
        order="$8::bigint",
        type="$4::integer",
        site="$14::bigint",
        merchant="$15::bigint",
        product="$9::bigint",
        price_modifier="$10::bigint",
        fulfilment="$11::integer",
        reverses="$12::bigint",
        note="$13::text",
        api_user="$16::bigint",
        user="$17::bigint",
        reference="(SELECT merchant_transaction_reference FROM transactions WHERE account_id = $1 AND id = $3)",
    )
}
SELECT card.tender_balance, card.discount_balance, item.id AS line_item_id
FROM card LEFT JOIN item ON true
"""


@dataclass(frozen=True)
class Entry:
    """One movement of one card's balance: the line item it appends."""

    card_id: int
    type: LineItemType
    value: int  # < 0 a debit
    credit: Split | None = None  # a credit's parts, when not all tender (domain.ledger.movement_split)
    order_id: int | None = None
    product_id: int | None = None
    price_modifier_id: int | None = None
    fulfilment_method_id: int | None = None
    reverses_line_item_id: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who did it: an API user (a till) or a dashboard user, and where."""

    api_user_id: int | None = None
    user_id: int | None = None
    merchant_id: int | None = None
    site_id: int | None = None


@dataclass(frozen=True)
class Posted:
    """What `Ledger.post` found and did: the card before (None: no such card), the line item (None: refused,
    because the card would have gone below zero or above `MAX_BALANCE`; nothing changed)."""

    before: Holding | None
    line_item_id: int | None


_reversal = aliased(line_items, name="reversal")


def _select() -> Any:
    return select(
        line_items.c.id,
        line_items.c.account_id,
        line_items.c.card_id,
        line_items.c.transaction_id,
        line_items.c.order_id,
        line_items.c.type_id,
        line_items.c.value,
        line_items.c.tender,
        line_items.c.discount,
        line_items.c.site_id,
        sites.c.name.label("site_name"),
        line_items.c.merchant_id,
        merchants.c.name.label("merchant_name"),
        transactions.c.merchant_transaction_reference,
        line_items.c.reverses_line_item_id,
        _reversal.c.id.label("reversed_by_line_item_id"),
        line_items.c.note,
        func.coalesce(users.c.email, api_users.c.username).label("actor"),
        line_items.c.created_at,
    ).select_from(
        line_items.join(transactions, transactions.c.id == line_items.c.transaction_id)
        .outerjoin(sites, sites.c.id == line_items.c.site_id)
        .outerjoin(merchants, merchants.c.id == line_items.c.merchant_id)
        .outerjoin(users, users.c.id == line_items.c.user_id)
        .outerjoin(api_users, api_users.c.id == line_items.c.api_user_id)
        .outerjoin(
            _reversal,
            (_reversal.c.account_id == line_items.c.account_id)
            & (_reversal.c.reverses_line_item_id == line_items.c.id),
        )
    )


def _row(row: Any) -> LineItemRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    return LineItemRow(**data)


class Ledger:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id
        self.posted: list[Entry] = []  # what `post` wrote in this transaction (the metrics count it once committed)

    async def open_transaction(self, kind: str, actor: Actor, reference: str | None, note: str | None = None) -> int:
        """Record a transaction. The unique (account, merchant, reference) index refuses a reused
        reference even between two requests racing each other."""
        result = await self._conn.execute(
            transactions.insert()
            .values(
                account_id=self._account_id,
                merchant_id=actor.merchant_id,
                merchant_transaction_reference=reference,
                kind=kind,
                site_id=actor.site_id,
                api_user_id=actor.api_user_id,
                user_id=actor.user_id,
                note=note,
                created_at=utcnow(),
            )
            .returning(transactions.c.id)
        )
        return int(result.scalar_one())

    async def post(self, transaction_id: int, actor: Actor, entry: Entry) -> Posted:
        """Move a card's balance and append its line item, in one statement (see the module's docstring)."""
        credit = entry.credit if entry.value > 0 else None
        row = (
            await self._conn.exec_driver_sql(
                _POST,
                (
                    self._account_id,
                    entry.card_id,
                    transaction_id,
                    int(entry.type),
                    entry.value,
                    credit.tender if credit is not None else None,
                    credit.discount if credit is not None else None,
                    entry.order_id,
                    entry.product_id,
                    entry.price_modifier_id,
                    entry.fulfilment_method_id,
                    entry.reverses_line_item_id,
                    entry.note,
                    actor.site_id,
                    actor.merchant_id,
                    actor.api_user_id,
                    actor.user_id,
                    utcnow(),
                ),
            )
        ).first()
        if row is None:
            return Posted(None, None)
        before = Holding(int(row.tender_balance), int(row.discount_balance))
        if row.line_item_id is None:
            return Posted(before, None)
        self.posted.append(entry)
        return Posted(before, int(row.line_item_id))

    async def ids_for_reference(self, merchant_id: int | None, reference: str) -> list[int] | None:
        """The line items of the transaction that used `reference`, or None when it was never used."""
        tx = (
            await self._conn.execute(
                select(transactions.c.id).where(
                    transactions.c.account_id == self._account_id,
                    transactions.c.merchant_id == merchant_id,
                    transactions.c.merchant_transaction_reference == reference,
                )
            )
        ).scalar_one_or_none()
        if tx is None:
            return None
        ids = await self._conn.execute(
            select(line_items.c.id)
            .where(line_items.c.account_id == self._account_id, line_items.c.transaction_id == tx)
            .order_by(line_items.c.id)
        )
        return [int(i) for i in ids.scalars()]

    async def get(self, line_item_id: int) -> LineItemRow | None:
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.id == line_item_id)
        row = (await self._conn.execute(query)).first()
        return _row(row) if row else None

    async def many(self, ids: Sequence[int]) -> list[LineItemRow]:
        if not ids:
            return []
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.id.in_(list(ids)))
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def for_order(self, order_ids: Sequence[int]) -> list[LineItemRow]:
        if not order_ids:
            return []
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.order_id.in_(list(order_ids)))
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def for_card(self, card_id: int) -> list[LineItemRow]:
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.card_id == card_id)
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def is_reversed(self, line_item_id: int) -> bool:
        found = (
            await self._conn.execute(
                select(line_items.c.id).where(
                    line_items.c.account_id == self._account_id,
                    line_items.c.reverses_line_item_id == line_item_id,
                )
            )
        ).first()
        return found is not None

    async def card_sum(self, card_id: int) -> int:
        total = (
            await self._conn.execute(
                select(func.coalesce(func.sum(line_items.c.value), 0)).where(
                    line_items.c.account_id == self._account_id, line_items.c.card_id == card_id
                )
            )
        ).scalar_one()
        return int(total)
