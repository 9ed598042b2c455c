"""Read-only queries that audit one account's ledger against its invariants.

Each check is one statement, so on PostgreSQL it reads one consistent snapshot even while tills keep
writing; each returns how many rows it examined and the rows that break the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from giftledger.domain.ledger import LineItemType
from giftledger.storage.audit import audit_events
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.tables import (
    api_users,
    cards,
    line_items,
    merchants,
    orders,
    price_modifiers,
    products,
    sites,
    transactions,
    users,
)
from giftledger.storage.webhooks import webhook_endpoints

REVERSAL = int(LineItemType.REVERSAL)
SALE = int(LineItemType.SALE)
BREAKAGE = int(LineItemType.BREAKAGE)
OUTBOUND = int(LineItemType.OUTBOUND_BALANCE_TRANSFER)
INBOUND = int(LineItemType.INBOUND_BALANCE_TRANSFER)


# The references without a foreign key (storage/tables.py), per table: (what it names, the column, the table named,
# whether the row named must be of the same account).
_Reference = tuple[str, Any, Table, bool]
_REFERENCES: tuple[tuple[str, Table, tuple[_Reference, ...]], ...] = (
    (
        "transaction",
        transactions,
        (
            ("site", transactions.c.site_id, sites, True),
            ("merchant", transactions.c.merchant_id, merchants, False),
            ("API user", transactions.c.api_user_id, api_users, True),
            ("user", transactions.c.user_id, users, False),
        ),
    ),
    (
        "line item",
        line_items,
        (
            ("transaction", line_items.c.transaction_id, transactions, True),
            ("order", line_items.c.order_id, orders, True),
            ("site", line_items.c.site_id, sites, True),
            ("merchant", line_items.c.merchant_id, merchants, False),
            ("product", line_items.c.product_id, products, True),
            ("price modifier", line_items.c.price_modifier_id, price_modifiers, True),
            ("API user", line_items.c.api_user_id, api_users, True),
            ("user", line_items.c.user_id, users, False),
        ),
    ),
    ("audit record", audit_events, (("site", audit_events.c.site_id, sites, True),)),
    (  # migration 0012
        "outbox message",
        outbox_messages,
        (("webhook endpoint", outbox_messages.c.endpoint_id, webhook_endpoints, True),),
    ),
)


@dataclass(frozen=True)
class Finding:
    """The rows one check examined and the ones that broke its rule (as plain mappings)."""

    examined: int
    rows: list[dict[str, Any]]


class LedgerAudit:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def _count(self, table: Any, *conditions: Any) -> int:
        query = select(func.count()).select_from(table).where(table.c.account_id == self._account_id, *conditions)
        return int((await self._conn.execute(query)).scalar_one())

    async def _rows(self, query: Any) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in (await self._conn.execute(query)).all()]

    async def card_sums(self) -> Finding:
        """Cards whose stored balance (or its tender or discount part) differs from the sum of their line items."""
        summed = (
            select(
                line_items.c.card_id,
                func.sum(line_items.c.value).label("value"),
                func.sum(line_items.c.tender).label("tender"),
                func.sum(line_items.c.discount).label("discount"),
            )
            .where(line_items.c.account_id == self._account_id)
            .group_by(line_items.c.card_id)
            .subquery()
        )
        value = func.coalesce(summed.c.value, 0)
        tender = func.coalesce(summed.c.tender, 0)
        discount = func.coalesce(summed.c.discount, 0)
        query = (
            select(
                cards.c.id,
                cards.c.card_reference,
                cards.c.balance,
                cards.c.tender_balance,
                cards.c.discount_balance,
                value.label("sum_value"),
                tender.label("sum_tender"),
                discount.label("sum_discount"),
            )
            .select_from(cards.outerjoin(summed, summed.c.card_id == cards.c.id))
            .where(
                cards.c.account_id == self._account_id,
                or_(cards.c.balance != value, cards.c.tender_balance != tender, cards.c.discount_balance != discount),
            )
            .order_by(cards.c.id)
        )
        return Finding(await self._count(cards), await self._rows(query))

    async def negative_balances(self) -> Finding:
        """Cards holding less than nothing, in total or in either part."""
        query = (
            select(
                cards.c.id, cards.c.card_reference, cards.c.balance, cards.c.tender_balance, cards.c.discount_balance
            )
            .where(
                cards.c.account_id == self._account_id,
                or_(cards.c.balance < 0, cards.c.tender_balance < 0, cards.c.discount_balance < 0),
            )
            .order_by(cards.c.id)
        )
        return Finding(await self._count(cards), await self._rows(query))

    async def stock_holding_value(self) -> Finding:
        """Unsold (stock) cards must hold nothing."""
        query = (
            select(cards.c.id, cards.c.card_reference, cards.c.balance)
            .where(cards.c.account_id == self._account_id, cards.c.status == "stock", cards.c.balance != 0)
            .order_by(cards.c.id)
        )
        return Finding(await self._count(cards, cards.c.status == "stock"), await self._rows(query))

    async def line_item_splits(self) -> Finding:
        """Line items whose value is zero or is not the sum of its tender and discount parts."""
        query = (
            select(line_items.c.id, line_items.c.value, line_items.c.tender, line_items.c.discount)
            .where(
                line_items.c.account_id == self._account_id,
                or_(line_items.c.value == 0, line_items.c.value != line_items.c.tender + line_items.c.discount),
            )
            .order_by(line_items.c.id)
        )
        return Finding(await self._count(line_items), await self._rows(query))

    async def reversal_links(self) -> Finding:
        """Reversals that do not point at exactly one reversible line item of the same card, with the
        opposite value and split; and line items other than reversals that point at something."""
        target = aliased(line_items, name="target")
        problem = case(
            (
                and_(line_items.c.type_id == REVERSAL, line_items.c.reverses_line_item_id.is_(None)),
                literal("points at no line item"),
            ),
            (
                and_(line_items.c.type_id != REVERSAL, line_items.c.reverses_line_item_id.is_not(None)),
                literal("is not a reversal but points at a line item"),
            ),
            (target.c.id.is_(None), literal("points at a line item missing from this account")),
            (target.c.type_id == REVERSAL, literal("points at another reversal")),
            (
                target.c.card_id != line_items.c.card_id,
                literal("is on a different card from the line item it reverses"),
            ),
            (
                or_(
                    line_items.c.value != -target.c.value,
                    and_(
                        target.c.value < 0,
                        or_(line_items.c.tender != -target.c.tender, line_items.c.discount != -target.c.discount),
                    ),
                ),
                literal("does not undo the value of the line item it reverses"),
            ),
            else_=literal(None),
        ).label("problem")
        candidates = (
            select(
                line_items.c.id,
                line_items.c.type_id,
                line_items.c.value,
                line_items.c.reverses_line_item_id,
                target.c.value.label("target_value"),
                problem,
            )
            .select_from(
                line_items.outerjoin(
                    target,
                    and_(
                        target.c.account_id == line_items.c.account_id,
                        target.c.id == line_items.c.reverses_line_item_id,
                    ),
                )
            )
            .where(
                line_items.c.account_id == self._account_id,
                or_(line_items.c.type_id == REVERSAL, line_items.c.reverses_line_item_id.is_not(None)),
            )
            .subquery()
        )
        query = select(candidates).where(candidates.c.problem.is_not(None)).order_by(candidates.c.id)
        examined = await self._count(
            line_items, or_(line_items.c.type_id == REVERSAL, line_items.c.reverses_line_item_id.is_not(None))
        )
        return Finding(examined, await self._rows(query))

    async def reversed_twice(self) -> Finding:
        """Line items reversed more than once."""
        query = (
            select(
                line_items.c.reverses_line_item_id.label("line_item_id"),
                func.count().label("reversals"),
            )
            .where(line_items.c.account_id == self._account_id, line_items.c.reverses_line_item_id.is_not(None))
            .group_by(line_items.c.reverses_line_item_id)
            .having(func.count() > 1)
            .order_by(line_items.c.reverses_line_item_id)
        )
        return Finding(await self._count(line_items, line_items.c.type_id == REVERSAL), await self._rows(query))

    async def reused_references(self) -> Finding:
        """merchant_transaction_references used by more than one transaction of the same merchant."""
        query = (
            select(
                transactions.c.merchant_id,
                transactions.c.merchant_transaction_reference,
                func.count().label("transactions"),
            )
            .where(
                transactions.c.account_id == self._account_id,
                transactions.c.merchant_transaction_reference.is_not(None),
            )
            .group_by(transactions.c.merchant_id, transactions.c.merchant_transaction_reference)
            .having(func.count() > 1)
            .order_by(transactions.c.merchant_id, transactions.c.merchant_transaction_reference)
        )
        examined = await self._count(transactions, transactions.c.merchant_transaction_reference.is_not(None))
        return Finding(examined, await self._rows(query))

    async def order_totals(self) -> Finding:
        """Orders whose total (tender) and discount total differ from their sale line items, that sold
        nothing, or whose status disagrees with their sales' reversals (cancelled = every sale reversed)."""
        reversal = aliased(line_items, name="reversal")
        sales = (
            select(
                line_items.c.order_id,
                func.count().label("sales"),
                func.sum(line_items.c.tender).label("tender"),
                func.sum(line_items.c.discount).label("discount"),
                func.count(reversal.c.id).label("reversed"),
            )
            .select_from(
                line_items.outerjoin(
                    reversal,
                    and_(
                        reversal.c.account_id == line_items.c.account_id,
                        reversal.c.reverses_line_item_id == line_items.c.id,
                    ),
                )
            )
            .where(
                line_items.c.account_id == self._account_id,
                line_items.c.type_id == SALE,
                line_items.c.order_id.is_not(None),
            )
            .group_by(line_items.c.order_id)
            .subquery()
        )
        count = func.coalesce(sales.c.sales, 0)
        tender = func.coalesce(sales.c.tender, 0)
        discount = func.coalesce(sales.c.discount, 0)
        reversed_all = and_(count > 0, func.coalesce(sales.c.reversed, 0) == count)
        query = (
            select(
                orders.c.id,
                orders.c.total,
                orders.c.discount_total,
                orders.c.status,
                count.label("sales"),
                tender.label("sum_tender"),
                discount.label("sum_discount"),
                func.coalesce(sales.c.reversed, 0).label("reversed"),
            )
            .select_from(orders.outerjoin(sales, sales.c.order_id == orders.c.id))
            .where(
                orders.c.account_id == self._account_id,
                or_(
                    count == 0,
                    orders.c.total != tender,
                    orders.c.discount_total != discount,
                    and_(orders.c.status == "cancelled", ~reversed_all),
                    and_(orders.c.status != "cancelled", reversed_all),
                ),
            )
            .order_by(orders.c.id)
        )
        return Finding(await self._count(orders), await self._rows(query))

    async def transfer_pairs(self) -> Finding:
        """Transactions holding balance transfers that do not pair up: a transfer out must sit with exactly one
        transfer in, on another card, the two summing to zero (tender and discount each), and nothing else in
        their transaction; a transfer in without one out is only an import's opening balance."""
        outbound = func.count().filter(line_items.c.type_id == OUTBOUND)
        inbound = func.count().filter(line_items.c.type_id == INBOUND)
        others = func.count().filter(line_items.c.type_id.not_in((OUTBOUND, INBOUND)))
        grouped = (
            select(
                line_items.c.transaction_id,
                transactions.c.kind,
                outbound.label("outbound"),
                inbound.label("inbound"),
                others.label("others"),
                func.count(func.distinct(line_items.c.card_id)).label("cards"),
                func.sum(line_items.c.value).label("value"),
                func.sum(line_items.c.tender).label("tender"),
                func.sum(line_items.c.discount).label("discount"),
            )
            .select_from(
                line_items.join(
                    transactions,
                    and_(
                        transactions.c.account_id == line_items.c.account_id,
                        transactions.c.id == line_items.c.transaction_id,
                    ),
                )
            )
            .where(line_items.c.account_id == self._account_id)
            .group_by(line_items.c.transaction_id, transactions.c.kind)
            .having(or_(outbound > 0, inbound > 0))
            .subquery()
        )
        paired = and_(
            grouped.c.outbound == 1,
            grouped.c.inbound == 1,
            grouped.c.others == 0,
            grouped.c.cards == 2,
            grouped.c.value == 0,
            grouped.c.tender == 0,
            grouped.c.discount == 0,
        )
        opening = and_(grouped.c.outbound == 0, grouped.c.others == 0, grouped.c.kind == "import")
        query = select(grouped).where(~or_(paired, opening)).order_by(grouped.c.transaction_id)
        examined = int((await self._conn.execute(select(func.count()).select_from(grouped))).scalar_one())
        return Finding(examined, await self._rows(query))

    async def references(self) -> Finding:
        """Transactions, line items and audit records that name a row that does not exist, or one of another
        account where the row named is an account's: the references the database holds no foreign key for
        (storage/tables.py). One row per record, naming the first such reference."""
        found = []
        for kind, table, references in _REFERENCES:
            joined: Any = table
            broken: list[tuple[Any, str, Column[Any]]] = []
            for name, column, target, scoped in references:
                named = aliased(target)
                on = named.c.id == column
                if scoped:
                    on = and_(on, named.c.account_id == table.c.account_id)
                joined = joined.outerjoin(named, on)
                article = "an" if name[0] in "AEIOUaeiou" else "a"
                whose = f"{article} {name} of another account or none" if scoped else f"a {name} that does not exist"
                broken.append((and_(column.is_not(None), named.c.id.is_(None)), whose, column))
            found.append(
                select(
                    literal(kind).label("kind"),
                    table.c.id,
                    case(*((b, literal(whose)) for b, whose, _ in broken), else_=None).label("problem"),
                    case(*((b, column) for b, _, column in broken), else_=None).label("named"),
                )
                .select_from(joined)
                .where(table.c.account_id == self._account_id)
            )
        candidates = union_all(*found).subquery()
        query = select(candidates).where(candidates.c.problem.is_not(None)).order_by(candidates.c.kind, candidates.c.id)
        examined = sum([await self._count(table) for _, table, _ in _REFERENCES])
        return Finding(examined, await self._rows(query))

    async def breakages(self) -> Finding:
        """Breakage line items that are not an expiry run's whole-balance debit of an expired card: each must
        be a debit (tender and discount parts not positive) in an expiry transaction that leaves its card at
        zero, and, unless reversed (which removes the card's expiry), on a card whose expiry had come."""
        earlier = aliased(line_items, name="earlier")
        reversal = aliased(line_items, name="reversal")
        after = (
            select(func.coalesce(func.sum(earlier.c.value), 0))
            .where(
                earlier.c.account_id == line_items.c.account_id,
                earlier.c.card_id == line_items.c.card_id,
                earlier.c.id <= line_items.c.id,
            )
            .scalar_subquery()
        )
        problem = case(
            (
                or_(line_items.c.value >= 0, line_items.c.tender > 0, line_items.c.discount > 0),
                literal("is not a debit"),
            ),
            (transactions.c.kind != "expiry", literal("is not in an expiry run's transaction")),
            (after != 0, literal("does not leave its card at zero")),
            (
                and_(
                    reversal.c.id.is_(None),
                    or_(cards.c.expiry_time.is_(None), cards.c.expiry_time > line_items.c.created_at),
                ),
                literal("is on a card whose expiry had not come"),
            ),
            else_=literal(None),
        ).label("problem")
        candidates = (
            select(line_items.c.id, line_items.c.card_id, line_items.c.value, cards.c.expiry_time, problem)
            .select_from(
                line_items.join(
                    transactions,
                    and_(
                        transactions.c.account_id == line_items.c.account_id,
                        transactions.c.id == line_items.c.transaction_id,
                    ),
                )
                .join(cards, and_(cards.c.account_id == line_items.c.account_id, cards.c.id == line_items.c.card_id))
                .outerjoin(
                    reversal,
                    and_(
                        reversal.c.account_id == line_items.c.account_id,
                        reversal.c.reverses_line_item_id == line_items.c.id,
                    ),
                )
            )
            .where(line_items.c.account_id == self._account_id, line_items.c.type_id == BREAKAGE)
            .subquery()
        )
        query = select(candidates).where(candidates.c.problem.is_not(None)).order_by(candidates.c.id)
        return Finding(await self._count(line_items, line_items.c.type_id == BREAKAGE), await self._rows(query))
