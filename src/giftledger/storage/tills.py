"""A till's requests on PostgreSQL, each one statement through `native.NativePool` (prepared once per
connection): recognising the API user behind a token, a balance check, a redemption or top-up, and the
`LineItems` look-up by transaction reference.

These are the same reads and writes the repositories do for SQLite (`cards.Cards`, `ledger.Ledger`,
`sites.Sites`, `guessing.CardMisses`), folded into one round trip each. The redemption is one data-modifying
statement: the site mapping, the reference check, the card-guessing pause and the card (locked `FOR UPDATE`)
are read, and only when all of them allow it are the balance moved (one conditional UPDATE), the transaction
and the line item inserted. The tender/discount split of a debit is `domain.ledger.debit_split` written in
SQL (`_DEBIT_DISCOUNT`); tests hold the two to the same results. Each of the three till statements also
takes the caller's token check (`CALLER`) when the request has not confirmed it yet (api/context.py), so a
till's request is one round trip and a revoked token reads and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from giftledger.domain.ledger import LineItemType
from giftledger.storage.clock import as_utc
from giftledger.storage.guessing import MissCount
from giftledger.storage.native import NativePool, Record
from giftledger.storage.records import ApiUserRow, CardRow, ContactRow, LineItemRow

_API_USER = """
SELECT id, account_id, merchant_id, username, password_hash, token_version, created_at, deleted_at
FROM api_users WHERE id = $1
"""

# Misses of this caller ($sub) and of this client address ($addr) since $since (see storage/guessing.py).
_MISSES = """
misses AS (
    SELECT count(*) FILTER (WHERE subject = {sub}) AS caller_misses,
           min(created_at) FILTER (WHERE subject = {sub}) AS caller_oldest,
           count(*) FILTER (WHERE client_address = {addr}) AS address_misses,
           min(created_at) FILTER (WHERE client_address = {addr}) AS address_oldest
    FROM card_lookup_misses
    WHERE (subject = {sub} OR client_address = {addr}) AND created_at >= {since}
)"""

# Whether the caller may act: when this request has not confirmed its token yet ({version} not NULL), the
# API user {api_user} must still exist in account {account} with that token version (api/context.py): the
# token check folded into the request's statement, so a revoked token reads and writes nothing. (Also the
# cost budget's spend: storage/throttle.py.)
CALLER = """
caller AS (
    SELECT {version}::integer IS NULL OR EXISTS (
        SELECT 1 FROM api_users
        WHERE api_users.account_id = {account}::bigint AND api_users.id = {api_user}::bigint
          AND api_users.token_version = {version}::integer AND api_users.deleted_at IS NULL
    ) AS live
)"""


@dataclass(frozen=True)
class PendingCaller:
    """An API user whose token the request has not confirmed yet: the statement's CALLER check must find it
    live in its account with this token version (api/context.py)."""

    account_id: int
    api_user_id: int
    token_version: int


def token_check(pending: PendingCaller | None) -> tuple[int | None, int | None]:
    """CALLER's API user and token version parameters (both NULL: the caller is confirmed already)."""
    return (pending.api_user_id, pending.token_version) if pending is not None else (None, None)


_CARD_COLUMNS = """
    {c}.id AS card_id, {c}.card_reference, {c}.alias, {c}.currency, {c}.status, {c}.balance, {c}.tender_balance,
    {c}.discount_balance, {c}.initial_balance, {c}.product_id, {c}.contact_id, {c}.expiry_time,
    {c}.created_at AS card_created_at, {c}.updated_at AS card_updated_at,
    products.name AS product_name, contacts.email AS contact_email, contacts.first_name AS contact_first_name,
    contacts.last_name AS contact_last_name"""

_CARD_JOINS = """
LEFT JOIN products ON products.account_id = $1 AND products.id = {c}.product_id
LEFT JOIN contacts ON contacts.account_id = $1 AND contacts.id = {c}.contact_id"""

# $1 account, $2 card number or alias, $3-$5 the caller's misses (see _MISSES), $6 limit, $7 offset,
# $8 API user, $9 its token version while unconfirmed (see CALLER).
_FIND_CARD = f"""
WITH {_MISSES.format(sub="$3::text", addr="$4::text", since="$5::timestamptz")},
{CALLER.format(account="$1", api_user="$8", version="$9")},
found AS (
    SELECT {_CARD_COLUMNS.format(c="cards")}
    FROM cards {_CARD_JOINS.format(c="cards")}
    WHERE (SELECT live FROM caller) AND cards.account_id = $1 AND cards.status = 'active'
      AND (cards.card_reference = $2 OR cards.alias = $2)
)
SELECT caller.live AS caller_live, misses.*, (SELECT count(*) FROM found) AS total, page.*
FROM misses CROSS JOIN caller
LEFT JOIN LATERAL (SELECT * FROM found ORDER BY card_id LIMIT $6 OFFSET $7) AS page ON true
ORDER BY page.card_id
"""

# The discount part of a debit of `amount` from a card holding `tender` + `discount` (both >= 0, and
# amount <= their sum): rounded down, so the tender part takes the rest (domain.ledger.debit_split).
_DEBIT_DISCOUNT = "div({amount}::numeric * {discount}, {tender} + {discount})::bigint"

# $1 account, $2 merchant, $3 EPOS reference, $4 merchant_transaction_reference (or NULL), $5 card number or
# alias, $6 currency, $7 value (< 0 a debit), $8 line-item type, $9 API user, $10 user, $11 now,
# $12 miss subject, $13 client address, $14 misses counted since, $15 caller's miss limit, $16 address's,
# $17 the API user's token version while unconfirmed (see CALLER).
_ADJUST = f"""
WITH site AS (
    SELECT site_mappings.site_id, sites.name
    FROM site_mappings JOIN sites ON sites.account_id = site_mappings.account_id AND sites.id = site_mappings.site_id
    WHERE site_mappings.account_id = $1 AND site_mappings.merchant_id = $2 AND site_mappings.epos_reference = $3
      AND sites.deleted_at IS NULL
),
used AS (
    SELECT 1 FROM transactions
    WHERE account_id = $1 AND merchant_id = $2 AND merchant_transaction_reference = $4::text
    LIMIT 1
),
{_MISSES.format(sub="$12::text", addr="$13::text", since="$14::timestamptz")},
{CALLER.format(account="$1", api_user="$9", version="$17")},
card AS (
    SELECT id, status, currency, tender_balance, discount_balance
    FROM cards
    WHERE (SELECT live FROM caller) AND account_id = $1 AND (card_reference = $5 OR alias = $5)
    ORDER BY (card_reference <> $5), id
    LIMIT 1
    FOR UPDATE
),
allowed AS (
    SELECT card.id, site.site_id,
           CASE WHEN $7::bigint < 0
                THEN $7::bigint + {
    _DEBIT_DISCOUNT.format(amount="-$7::bigint", tender="tender_balance", discount="discount_balance")
}
                ELSE $7::bigint END AS tender,
           CASE WHEN $7::bigint < 0
                THEN -{
    _DEBIT_DISCOUNT.format(amount="-$7::bigint", tender="tender_balance", discount="discount_balance")
}
                ELSE 0 END AS discount
    FROM card, site, misses, caller
    WHERE caller.live AND NOT EXISTS (SELECT 1 FROM used)
      AND ($12::text IS NULL OR misses.caller_misses < $15)
      AND ($12::text IS NULL OR $13::text IS NULL OR misses.address_misses < $16)
      AND card.status = 'active' AND card.currency = $6
      AND ($7::bigint > 0 OR card.tender_balance + card.discount_balance >= -$7::bigint)
),
moved AS (
    UPDATE cards
    SET balance = cards.balance + $7::bigint,
        tender_balance = cards.tender_balance + allowed.tender,
        discount_balance = cards.discount_balance + allowed.discount,
        updated_at = $11
    FROM allowed
    WHERE cards.account_id = $1 AND cards.id = allowed.id
      AND cards.tender_balance + allowed.tender >= 0 AND cards.discount_balance + allowed.discount >= 0
    RETURNING cards.*, allowed.site_id AS moved_site_id, allowed.tender AS moved_tender,
              allowed.discount AS moved_discount
),
tx AS (
    INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, site_id,
                              api_user_id, user_id, created_at)
    SELECT $1, $2, $4::text, 'adjustment', moved_site_id, $9::bigint, $10::bigint, $11 FROM moved
    RETURNING id
),
item AS (
    INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount, site_id,
                            merchant_id, api_user_id, user_id, created_at)
    SELECT $1, moved.id, tx.id, $8, $7::bigint, moved_tender, moved_discount, moved_site_id, $2, $9::bigint,
           $10::bigint, $11
    FROM moved, tx
    RETURNING id, transaction_id, tender, discount, created_at
)
SELECT caller.live AS caller_live, (SELECT site_id FROM site) AS site_id, (SELECT name FROM site) AS site_name,
       EXISTS (SELECT 1 FROM used) AS used, misses.*,
       card.status AS found_status, card.currency AS found_currency,
       item.id AS line_item_id, item.transaction_id, item.tender AS item_tender, item.discount AS item_discount,
       item.created_at AS item_created_at, merchants.name AS merchant_name,
       {_CARD_COLUMNS.format(c="moved")}
FROM misses CROSS JOIN caller
LEFT JOIN card ON true
LEFT JOIN moved ON true
LEFT JOIN item ON true
LEFT JOIN merchants ON merchants.id = $2
{_CARD_JOINS.format(c="moved")}
"""

_IDS_FOR_REFERENCE = """
SELECT line_items.id
FROM transactions JOIN line_items ON line_items.account_id = $1 AND line_items.transaction_id = transactions.id
WHERE transactions.account_id = $1 AND transactions.merchant_id = $2
  AND transactions.merchant_transaction_reference = $3
ORDER BY line_items.id
"""

# $1 account, $2 merchant, $3 merchant_transaction_reference, $4 limit, $5 offset, $6 API user, $7 its token
# version while unconfirmed (see CALLER). {merchant}: the POS merchant's own references (an API user), or
# any merchant's (a dashboard user). Two statements, not `($2 IS NULL OR merchant_id = $2)`: a prepared
# statement's generic plan for that could not use the (account, merchant, reference) index.
_LINE_ITEMS = """
WITH {caller},
found AS (
    SELECT line_items.id, line_items.card_id, line_items.transaction_id, line_items.order_id, line_items.type_id,
           line_items.value, line_items.tender, line_items.discount, line_items.site_id, sites.name AS site_name,
           line_items.merchant_id, merchants.name AS merchant_name, transactions.merchant_transaction_reference,
           line_items.reverses_line_item_id, reversal.id AS reversed_by_line_item_id, line_items.note,
           coalesce(users.email, api_users.username) AS actor, line_items.created_at
    FROM transactions
    JOIN line_items ON line_items.account_id = $1 AND line_items.transaction_id = transactions.id
    LEFT JOIN sites ON sites.id = line_items.site_id
    LEFT JOIN merchants ON merchants.id = line_items.merchant_id
    LEFT JOIN users ON users.id = line_items.user_id
    LEFT JOIN api_users ON api_users.id = line_items.api_user_id
    LEFT JOIN line_items AS reversal
           ON reversal.account_id = $1 AND reversal.reverses_line_item_id = line_items.id
    WHERE (SELECT live FROM caller) AND transactions.account_id = $1
      AND transactions.merchant_transaction_reference = $3 AND {merchant}
)
SELECT caller.live AS caller_live, (SELECT count(*) FROM found) AS total, page.*, {columns}
FROM caller
LEFT JOIN LATERAL (SELECT * FROM found ORDER BY id LIMIT $4 OFFSET $5) AS page ON true
LEFT JOIN cards ON cards.account_id = $1 AND cards.id = page.card_id
{joins}
ORDER BY page.id
"""


def _line_items(merchant: str) -> str:
    return _LINE_ITEMS.format(
        caller=CALLER.format(account="$1", api_user="$6", version="$7").strip(),
        merchant=merchant,
        columns=_CARD_COLUMNS.format(c="cards"),
        joins=_CARD_JOINS.format(c="cards"),
    )


_LINE_ITEMS_OF_MERCHANT = _line_items("transactions.merchant_id = $2")
_LINE_ITEMS_OF_ANY_MERCHANT = _line_items("$2::bigint IS NULL")


class ReferenceTaken(Exception):
    """Another request used this merchant_transaction_reference between the check and the insert."""


@dataclass(frozen=True)
class CardLookup:
    caller_live: bool  # False: the caller's unconfirmed token is revoked; nothing was read (see CALLER)
    misses: tuple[MissCount, MissCount]  # of the caller, of its client address (services/guessing.py)
    total: int
    cards: list[tuple[CardRow, ContactRow | None]]


@dataclass(frozen=True)
class Adjustment:
    """What one adjustment statement found and, when everything allowed it, did."""

    caller_live: bool  # False: the caller's unconfirmed token is revoked; nothing was written (see CALLER)
    site_id: int | None
    reference_used: bool
    misses: tuple[MissCount, MissCount]  # of the caller, of its client address (services/guessing.py)
    card_active: bool  # a sold card with this number or alias exists in the account
    card_currency: str | None
    line_item: LineItemRow | None  # None: nothing was written
    card: tuple[CardRow, ContactRow | None] | None


@dataclass(frozen=True)
class LineItemsFound:
    caller_live: bool  # False: the caller's unconfirmed token is revoked; nothing was read (see CALLER)
    items: list[tuple[LineItemRow, CardRow, ContactRow | None]]
    total: int


@dataclass(frozen=True)
class Caller:
    """Who makes the request, as the guessing throttle counts them."""

    subject: str | None
    client_address: str | None
    misses_since: datetime
    caller_limit: int
    address_limit: int


def _time(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _misses(row: Record) -> tuple[MissCount, MissCount]:
    return (
        MissCount(int(row["caller_misses"]), _time(row["caller_oldest"])),
        MissCount(int(row["address_misses"]), _time(row["address_oldest"])),
    )


def _card(row: Record, account_id: int) -> tuple[CardRow, ContactRow | None]:
    card = CardRow(
        id=int(row["card_id"]),
        account_id=account_id,
        card_reference=row["card_reference"],
        alias=row["alias"],
        currency=row["currency"],
        status=row["status"],
        balance=int(row["balance"]),
        tender_balance=int(row["tender_balance"]),
        discount_balance=int(row["discount_balance"]),
        initial_balance=int(row["initial_balance"]),
        product_id=row["product_id"],
        product_name=row["product_name"],
        contact_id=row["contact_id"],
        expiry_time=_time(row["expiry_time"]),
        created_at=as_utc(row["card_created_at"]),
        updated_at=as_utc(row["card_updated_at"]),
    )
    contact = (
        ContactRow(int(row["contact_id"]), row["contact_email"], row["contact_first_name"], row["contact_last_name"])
        if row["contact_id"] is not None and row["contact_email"] is not None
        else None
    )
    return card, contact


class TillStatements:
    def __init__(self, native: NativePool) -> None:
        self._native = native

    async def api_user(self, api_user_id: int) -> ApiUserRow | None:
        row = await self._native.fetchrow(_API_USER, api_user_id)
        if row is None:
            return None
        return ApiUserRow(
            id=int(row["id"]),
            account_id=int(row["account_id"]),
            merchant_id=int(row["merchant_id"]),
            username=row["username"],
            password_hash=row["password_hash"],
            token_version=int(row["token_version"]),
            created_at=as_utc(row["created_at"]),
            deleted_at=_time(row["deleted_at"]),
        )

    async def find_card(
        self,
        account_id: int,
        reference: str,
        caller: Caller,
        *,
        limit: int,
        offset: int,
        pending: PendingCaller | None,
    ) -> CardLookup:
        """Sold cards with this number or alias (a page of them, by id), and the caller's misses."""
        rows = await self._native.fetch(
            _FIND_CARD,
            account_id,
            reference,
            caller.subject,
            caller.client_address,
            caller.misses_since,
            limit,
            offset,
            *token_check(pending),
        )
        first = rows[0]
        found = [_card(r, account_id) for r in rows if r["card_id"] is not None]
        return CardLookup(bool(first["caller_live"]), _misses(first), int(first["total"]), found)

    async def adjust(
        self,
        account_id: int,
        *,
        merchant_id: int,
        epos_reference: str,
        reference: str | None,
        card_reference: str,
        currency: str,
        value: int,
        api_user_id: int | None,
        user_id: int | None,
        actor: str | None,
        caller: Caller,
        now: datetime,
        pending: PendingCaller | None,
    ) -> Adjustment:
        """A redemption (value < 0) or a top-up (value > 0) in one statement (see the module's docstring).
        Raises `ReferenceTaken` when another request inserted the same reference meanwhile."""
        kind = LineItemType.REDEMPTION if value < 0 else LineItemType.TOP_UP
        try:
            row = await self._native.fetchrow(
                _ADJUST,
                account_id,
                merchant_id,
                epos_reference,
                reference,
                card_reference,
                currency,
                value,
                int(kind),
                api_user_id,
                user_id,
                now,
                caller.subject,
                caller.client_address,
                caller.misses_since,
                caller.caller_limit,
                caller.address_limit,
                token_check(pending)[1],  # CALLER's API user is $9, the actor's
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "uq_transactions_reference":
                raise ReferenceTaken() from error
            raise
        assert row is not None  # the statement always returns its one row
        item: LineItemRow | None = None
        card = None
        if row["line_item_id"] is not None:
            card = _card(row, account_id)
            item = LineItemRow(
                id=int(row["line_item_id"]),
                account_id=account_id,
                card_id=card[0].id,
                transaction_id=int(row["transaction_id"]),
                order_id=None,
                type_id=int(kind),
                value=value,
                tender=int(row["item_tender"]),
                discount=int(row["item_discount"]),
                site_id=row["site_id"],
                site_name=row["site_name"],
                merchant_id=merchant_id,
                merchant_name=row["merchant_name"],
                merchant_transaction_reference=reference,
                reverses_line_item_id=None,
                reversed_by_line_item_id=None,
                note=None,
                actor=actor,
                created_at=as_utc(row["item_created_at"]),
            )
        return Adjustment(
            caller_live=bool(row["caller_live"]),
            site_id=row["site_id"],
            reference_used=bool(row["used"]),
            misses=_misses(row),
            card_active=row["found_status"] == "active",
            card_currency=row["found_currency"],
            line_item=item,
            card=card,
        )

    async def ids_for_reference(self, account_id: int, merchant_id: int, reference: str) -> list[int]:
        """The line items of the transaction that used `reference` (see ledger.Ledger.ids_for_reference)."""
        rows = await self._native.fetch(_IDS_FOR_REFERENCE, account_id, merchant_id, reference)
        return [int(r["id"]) for r in rows]

    async def line_items_by_reference(
        self,
        account_id: int,
        merchant_id: int | None,
        reference: str,
        *,
        limit: int,
        offset: int,
        pending: PendingCaller | None,
    ) -> LineItemsFound:
        statement = _LINE_ITEMS_OF_ANY_MERCHANT if merchant_id is None else _LINE_ITEMS_OF_MERCHANT
        rows = await self._native.fetch(
            statement, account_id, merchant_id, reference, limit, offset, *token_check(pending)
        )
        found: list[tuple[LineItemRow, CardRow, ContactRow | None]] = []
        for r in rows:
            if r["id"] is None:
                continue
            card, contact = _card(r, account_id)
            found.append((_line_item(r, account_id), card, contact))
        return LineItemsFound(bool(rows[0]["caller_live"]), found, int(rows[0]["total"]))


def _line_item(row: Record, account_id: int) -> LineItemRow:
    data: dict[str, Any] = {
        name: row[name]
        for name in (
            "id",
            "card_id",
            "transaction_id",
            "order_id",
            "type_id",
            "value",
            "tender",
            "discount",
            "site_id",
            "site_name",
            "merchant_id",
            "merchant_name",
            "merchant_transaction_reference",
            "reverses_line_item_id",
            "reversed_by_line_item_id",
            "note",
            "actor",
        )
    }
    return LineItemRow(account_id=account_id, created_at=as_utc(row["created_at"]), **data)
