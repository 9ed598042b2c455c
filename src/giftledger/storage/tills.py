"""The look-ups and movements tills make on every request, each one statement (prepared once per connection;
behind PgBouncer in transaction mode, parsed every time: storage/database.py):
a card by number (a balance check, and the dashboard's card search), a redemption or top-up, and the
`LineItems` look-up by transaction reference.

Each statement also checks the caller's credential (`callers.CALLER`: a revoked token reads and writes
nothing) and counts the caller's card-number misses (`guessing.MISSES`), so a till's request is one round
trip. The redemption is one data-modifying statement: the site mapping, the reference check, the
card-guessing pause and the card (locked `FOR UPDATE`) are read, and only when all of them allow it does
the ledger's movement (`ledger.MOVEMENT`) run, with the transaction row inserted beside its line item. The
services decide what each outcome means (services/adjustments.py, services/queries.py).

The redemption's statement is the hot path's whole database cost, so it reads as little as it can (docs/performance.md,
issue 21): one statement per kind of caller (each reads only its own credential), the card by number or alias
with two probes of unique indexes, and, for an account without webhook endpoints, no webhook event to build:
that statement refuses to move when an event is due and says so, and the one with the event runs instead (a
second round trip, for the first redemption of such an account in a process: `_EVENTS_HINT`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from giftledger.domain.ledger import LineItemType
from giftledger.domain.records import CardRow, ContactRow, LineItemRow
from giftledger.storage.callers import CallerKind, Credential, caller_statement
from giftledger.storage.clock import as_utc
from giftledger.storage.database import Database, Record
from giftledger.storage.guessing import MISSES, MissCount, miss_counts
from giftledger.storage.ledger import movement
from giftledger.storage.webhooks import balance_event_wanted

_CARD_COLUMNS = """
    {c}.id AS card_id, {c}.card_reference, {c}.alias, {c}.currency, {c}.status, {c}.balance, {c}.tender_balance,
    {c}.discount_balance, {c}.initial_balance, {c}.product_id, {c}.contact_id, {c}.expiry_time,
    {c}.created_at AS card_created_at, {c}.updated_at AS card_updated_at, {c}.validity_start_time,
    {c}.blocked_reason, {c}.blocked_at,
    products.name AS product_name, contacts.email AS contact_email, contacts.first_name AS contact_first_name,
    contacts.last_name AS contact_last_name"""

_CARD_JOINS = """
LEFT JOIN products ON products.account_id = $1 AND products.id = {c}.product_id
LEFT JOIN contacts ON contacts.account_id = $1 AND contacts.id = {c}.contact_id"""

# $1 account, $2 card number or alias, $3-$5 the caller's misses (see MISSES), $6 limit, $7 offset,
# $8-$10 the caller's credential (see CALLER), $11 whether unsold stock counts (the dashboard's search).
# The number wins over an alias that is the same text.
_FIND_CARD = f"""
WITH {MISSES.format(sub="$3::text", addr="$4::text", since="$5::timestamptz").strip()},
{caller_statement(account="$1", kind="$8", id="$9", version="$10")},
found AS (
    SELECT {_CARD_COLUMNS.format(c="cards")}, (cards.card_reference <> $2) AS by_alias
    FROM cards {_CARD_JOINS.format(c="cards")}
    WHERE (SELECT live FROM caller) AND cards.account_id = $1 AND (cards.status = 'active' OR $11::boolean)
      AND (cards.card_reference = $2 OR cards.alias = $2)
)
SELECT caller.live AS caller_live, misses.*, (SELECT count(*) FROM found) AS total, page.*
FROM misses CROSS JOIN caller
LEFT JOIN LATERAL (SELECT * FROM found ORDER BY by_alias, card_id LIMIT $6 OFFSET $7) AS page ON true
ORDER BY page.by_alias, page.card_id
"""

# A card a till may redeem or top up at {now}: not blocked (for any reason), not expired, already valid. The
# same test as domain.validity.card_state, which names the refusal when this one says no.
USABLE = """{c}.blocked_reason IS NULL AND ({c}.expiry_time IS NULL OR {c}.expiry_time > {now})
      AND ({c}.validity_start_time IS NULL OR {c}.validity_start_time <= {now})"""

# The API user or user a till's transaction and line item name: the caller's credential (`CALLER`, $15-$17), which
# the statement checks is live in the account (no foreign key on them: storage/tables.py).
_API_USER = "CASE WHEN $15::text = 'api_user' THEN $16::bigint END"
_USER = "CASE WHEN $15::text = 'user' THEN $16::bigint END"

# Whether the movement has a webhook event to write (an endpoint of the account subscribed to it).
_EVENTS_WANTED = balance_event_wanted(account="$1", type="$8::integer")

# The till's movement: allowed only when the caller is live, the reference unused, the caller not paused, and
# the card sold, usable now and in the till's currency (see _ADJUST's parameters); the transaction row beside it.
_ADJUST_GATE = f"""caller.live AND NOT EXISTS (SELECT 1 FROM used)
      AND ($10::text IS NULL OR misses.caller_misses < $13)
      AND ($10::text IS NULL OR $11::text IS NULL OR misses.address_misses < $14)
      AND card.status = 'active' AND card.currency = $6 AND {USABLE.format(c="card", now="$9")}"""
_ADJUST_TRANSACTION = f"""
tx AS (
    INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, site_id,
                              api_user_id, user_id, created_at)
    SELECT $1, $2, $4::text, 'adjustment', site.site_id, {_API_USER}, {_USER}, $9 FROM moved, site
    RETURNING id
),"""
_ADJUST_MOVEMENT = dict(
    account="$1",
    value="$7::bigint",
    credit_tender="NULL::bigint",
    credit_discount="NULL::bigint",
    now="$9",
    source="card, site, misses, caller",
    gate=_ADJUST_GATE,
    between=_ADJUST_TRANSACTION,
    transaction="tx.id",
    order="NULL::bigint",
    type="$8::integer",
    site="site.site_id",
    merchant="$2",
    product="NULL::bigint",
    price_modifier="NULL::bigint",
    fulfilment="NULL::integer",
    reverses="NULL::bigint",
    note="NULL::text",
    api_user=_API_USER,
    user=_USER,
    joins=", tx, site",
    reference="$4::text",  # for its card.balance_adjusted webhook event (storage/webhooks.py)
)
# Without the event (the statement for an account without endpoints): refused when there is one to write.
_QUIET_GATE = f"{_ADJUST_GATE}\n      AND NOT (SELECT wanted FROM events)"

# Where a till is: the live site its POS merchant ($2) mapped to its EPOS reference ($3); POS Mode, the
# dashboard's own till, names a site of the account by its id instead ($3) and has no merchant ($2 NULL).
# Either way the site, and a merchant written, is one the statement read (the mapping's merchant is a
# known one: site_mappings' foreign key).
_SITE_BY_MAPPING = """
    SELECT site_mappings.site_id, sites.name
    FROM site_mappings JOIN sites ON sites.account_id = site_mappings.account_id AND sites.id = site_mappings.site_id
    WHERE site_mappings.account_id = $1 AND site_mappings.merchant_id = $2 AND site_mappings.epos_reference = $3
      AND sites.deleted_at IS NULL"""
_SITE_CHOSEN = """
    SELECT sites.id AS site_id, sites.name
    FROM sites
    WHERE sites.account_id = $1 AND sites.id = $3::bigint AND sites.deleted_at IS NULL AND $2::bigint IS NULL"""

# `used`: at most one row (uq_transactions_reference). The card: the one with this number, else the one with this
# alias (the number wins), each a probe of a unique index (no sort), locked.
# $1 account, $2 merchant, $3 EPOS reference, $4 merchant_transaction_reference (or NULL), $5 card number or
# alias, $6 currency, $7 value (< 0 a debit), $8 line-item type, $9 now, $10 miss subject, $11 client address,
# $12 misses counted since, $13 caller's miss limit, $14 address's, $15-$17 the caller's credential (see
# CALLER: the API user or user the transaction and line item name is the one it checks), $18-$21 the accepted
# movement's audit record (`Recorded`; $18 NULL: none): its operation, the actor's name, the masked card, the
# client address, $22 its detail (JSON).
_ADJUST_AT = f"""
WITH site AS ({{site}}
),
used AS (
    SELECT 1 FROM transactions
    WHERE account_id = $1 AND merchant_id = $2 AND merchant_transaction_reference = $4::text
),
{MISSES.format(sub="$10::text", addr="$11::text", since="$12::timestamptz").strip()},
{{caller}},
events AS (
    SELECT {_EVENTS_WANTED} AS wanted
),
card AS (
    SELECT id, status, currency, tender_balance, discount_balance, expiry_time, validity_start_time, blocked_reason
    FROM cards
    WHERE (SELECT live FROM caller) AND account_id = $1
      AND card_reference = coalesce(
          (SELECT n.card_reference FROM cards AS n WHERE n.account_id = $1 AND n.card_reference = $5),
          (SELECT a.card_reference FROM cards AS a WHERE a.account_id = $1 AND a.alias = $5))
    FOR UPDATE
),
{{movement}},
recorded AS (
    INSERT INTO audit_events (account_id, created_at, actor_kind, actor_id, actor_name, site_id, operation, card,
                              outcome, error_code, client_address, detail)
    SELECT $1, $9, $15, $16, $19::text, site.site_id, $18::text, $20::text, 'accepted', NULL, $21::text,
           (coalesce($22::jsonb, '{{}}') || jsonb_build_object('result_id', item.id))::text
    FROM item, site
    WHERE $18::text IS NOT NULL
)
SELECT caller.live AS caller_live, site.site_id, site.name AS site_name, EXISTS (SELECT 1 FROM used) AS used,
       (SELECT wanted FROM events) AS events_wanted, misses.*,
       card.status AS found_status, card.currency AS found_currency, card.expiry_time AS found_expiry_time,
       card.validity_start_time AS found_validity_start_time, card.blocked_reason AS found_blocked_reason,
       item.id AS line_item_id, item.transaction_id, item.tender AS item_tender, item.discount AS item_discount,
       item.created_at AS item_created_at, merchants.name AS merchant_name,
       {_CARD_COLUMNS.format(c="moved")}
FROM misses CROSS JOIN caller
LEFT JOIN site ON true
LEFT JOIN card ON true
LEFT JOIN moved ON true
LEFT JOIN item ON true
LEFT JOIN merchants ON merchants.id = $2
{_CARD_JOINS.format(c="moved")}
"""


def _adjust(*, at_site: bool, kind: CallerKind | None, events: bool) -> str:
    """The statement for a till at a mapped site or at a chosen one, for a caller of one kind (`caller_statement`'s
    `of`: it reads only what that kind's credential needs; None: any kind), with or without the movement's
    webhook event. Without it, the statement refuses to move when there is an event to write and says so
    (`events_wanted`): the caller runs the one with it then (`TillStatements.adjust`)."""
    gate = _ADJUST_GATE if events else _QUIET_GATE
    return (
        _ADJUST_AT.replace("{site}", _SITE_CHOSEN if at_site else _SITE_BY_MAPPING)
        .replace("{caller}", caller_statement(account="$1", kind="$15", id="$16", version="$17", of=kind))
        .replace("{movement}", movement(events=events, **{**_ADJUST_MOVEMENT, "gate": gate}))
    )


_ADJUSTS = {
    (at_site, kind, events): _adjust(at_site=at_site, kind=kind, events=events)
    for at_site in (False, True)
    for kind in ("api_user", "user", None)
    for events in (False, True)
}
# A till's redemption for an account without webhook endpoints (bench/pgbench_script.py runs it), with them, and
# POS Mode's (a dashboard user at a chosen site), named here for the tests that read every statement.
_ADJUST = _ADJUSTS[False, "api_user", False]
_ADJUST_WITH_EVENTS = _ADJUSTS[False, "api_user", True]
_ADJUST_AT_SITE = _ADJUSTS[True, "user", True]

# Accounts whose last adjustment in this process found a webhook endpoint subscribed (so the next one runs
# the statement with its event first). Only a hint: the statement without the event never moves money an
# event was due for, so a stale entry costs one more round trip, never an event.
_EVENTS_HINT: dict[int, bool] = {}
_EVENTS_HINT_SIZE = 10_000

# $1 account, $2 merchant, $3 merchant_transaction_reference, $4 limit, $5 offset, $6-$8 the caller's
# credential (see CALLER). {merchant}: the POS merchant's own references (an API user), or any merchant's (a
# dashboard user). Two statements, not `($2 IS NULL OR merchant_id = $2)`: a prepared statement's generic plan
# for that could not use the (account, merchant, reference) index.
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
    LEFT JOIN sites ON sites.account_id = $1 AND sites.id = line_items.site_id
    LEFT JOIN merchants ON merchants.id = line_items.merchant_id
    LEFT JOIN users ON users.id = line_items.user_id
    LEFT JOIN api_users ON api_users.account_id = $1 AND api_users.id = line_items.api_user_id
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
        caller=caller_statement(account="$1", kind="$6", id="$7", version="$8"),
        merchant=merchant,
        columns=_CARD_COLUMNS.format(c="cards"),
        joins=_CARD_JOINS.format(c="cards"),
    )


_LINE_ITEMS_OF_MERCHANT = _line_items("transactions.merchant_id = $2")
_LINE_ITEMS_OF_ANY_MERCHANT = _line_items("$2::bigint IS NULL")


@dataclass(frozen=True)
class Caller:
    """Who makes a look-up by card number: the credential its statement checks, and whose misses count (see
    services/guessing.py) with the limits they are held to."""

    credential: Credential
    subject: str | None  # None: the operator, whose misses are not counted
    client_address: str | None
    misses_since: datetime
    caller_limit: int
    address_limit: int


@dataclass(frozen=True)
class Recorded:
    """The audit record an accepted redemption or top-up writes in its own statement (the site, the time, the
    actor and the line item's id as `result_id` in the detail are the statement's)."""

    operation: str
    actor_name: str
    card: str  # masked
    client_address: str | None
    detail: str | None  # a JSON object


@dataclass(frozen=True)
class CardLookup:
    caller_live: bool  # False: the caller's credential is revoked; nothing was read
    misses: tuple[MissCount, MissCount]  # of the caller, of its client address
    total: int
    cards: list[tuple[CardRow, ContactRow | None]]


@dataclass(frozen=True)
class Adjustment:
    """What one adjustment statement found and, when everything allowed it, did."""

    caller_live: bool  # False: the caller's credential is revoked; nothing was written
    site_id: int | None
    reference_used: bool
    misses: tuple[MissCount, MissCount]  # of the caller, of its client address
    card_active: bool  # a sold card with this number or alias exists in the account
    card_currency: str | None
    line_item: LineItemRow | None  # None: nothing was written
    card: tuple[CardRow, ContactRow | None] | None
    card_expiry_time: datetime | None = None  # the card found (whether or not it moved): domain/validity.py
    card_validity_start_time: datetime | None = None
    card_blocked_reason: str | None = None


@dataclass(frozen=True)
class LineItemsFound:
    caller_live: bool  # False: the caller's credential is revoked; nothing was read
    items: list[tuple[LineItemRow, CardRow, ContactRow | None]]
    total: int


def _time(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


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
        validity_start_time=_time(row["validity_start_time"]),
        blocked_reason=row["blocked_reason"],
        blocked_at=_time(row["blocked_at"]),
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
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_card(
        self, reference: str, caller: Caller, *, limit: int, offset: int, include_stock: bool = False
    ) -> CardLookup:
        """Cards with this number or alias (sold ones; also unsold stock when asked), a page of them, and the
        caller's misses."""
        account_id = caller.credential.account_id
        rows = await self._db.fetch(
            _FIND_CARD,
            account_id,
            reference,
            caller.subject,
            caller.client_address,
            caller.misses_since,
            limit,
            offset,
            *caller.credential.parameters,
            include_stock,
        )
        first = rows[0]
        found = [_card(r, account_id) for r in rows if r["card_id"] is not None]
        return CardLookup(bool(first["caller_live"]), miss_counts(first), int(first["total"]), found)

    async def adjust(
        self,
        *,
        merchant_id: int | None,
        epos_reference: str | None,
        reference: str | None,
        card_reference: str,
        currency: str,
        value: int,
        actor: str | None,
        caller: Caller,
        now: datetime,
        recorded: Recorded | None = None,
        site_id: int | None = None,
    ) -> Adjustment:
        """A redemption (value < 0) or a top-up (value > 0) in one statement (see the module's docstring), at
        the site `merchant_id` mapped to `epos_reference`, or at `site_id` (POS Mode: no merchant).
        Raises `ConstraintBroken` (uq_transactions_reference) when another request inserted the same reference
        meanwhile."""
        credential = caller.credential
        kind = LineItemType.REDEMPTION if value < 0 else LineItemType.TOP_UP
        reads = credential.kind if credential.kind in ("api_user", "user") else None
        account_id = credential.account_id
        parameters = (
            account_id,
            merchant_id,
            epos_reference if site_id is None else site_id,
            reference,
            card_reference,
            currency,
            value,
            int(kind),
            now,
            caller.subject,
            caller.client_address,
            caller.misses_since,
            caller.caller_limit,
            caller.address_limit,
            *credential.parameters,
            *(
                (recorded.operation, recorded.actor_name, recorded.card, recorded.client_address, recorded.detail)
                if recorded is not None
                else (None,) * 5
            ),
        )
        events = _EVENTS_HINT.get(account_id, False)
        row = await self._db.fetchrow(_ADJUSTS[site_id is not None, reads, events], *parameters)
        assert row is not None  # the statement always returns its one row
        if row["events_wanted"] and not events:  # refused for want of its event: nothing was written
            row = await self._db.fetchrow(_ADJUSTS[site_id is not None, reads, True], *parameters)
            assert row is not None
        if len(_EVENTS_HINT) >= _EVENTS_HINT_SIZE:
            _EVENTS_HINT.clear()
        _EVENTS_HINT[account_id] = bool(row["events_wanted"])
        item: LineItemRow | None = None
        card = None
        if row["line_item_id"] is not None:
            card = _card(row, credential.account_id)
            item = LineItemRow(
                id=int(row["line_item_id"]),
                account_id=credential.account_id,
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
            misses=miss_counts(row),
            card_active=row["found_status"] == "active",
            card_currency=row["found_currency"],
            card_expiry_time=_time(row["found_expiry_time"]),
            card_validity_start_time=_time(row["found_validity_start_time"]),
            card_blocked_reason=row["found_blocked_reason"],
            line_item=item,
            card=card,
        )

    async def line_items_by_reference(
        self, credential: Credential, merchant_id: int | None, reference: str, *, limit: int, offset: int
    ) -> LineItemsFound:
        account_id = credential.account_id
        statement = _LINE_ITEMS_OF_ANY_MERCHANT if merchant_id is None else _LINE_ITEMS_OF_MERCHANT
        rows = await self._db.fetch(
            statement, account_id, merchant_id, reference, limit, offset, *credential.parameters
        )
        found: list[tuple[LineItemRow, CardRow, ContactRow | None]] = []
        for r in rows:
            if r["id"] is None:
                continue
            card, contact = _card(r, account_id)
            found.append((_line_item(r, account_id), card, contact))
        return LineItemsFound(bool(rows[0]["caller_live"]), found, int(rows[0]["total"]))


_LINE_ITEM_FIELDS = (
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


def _line_item(row: Record, account_id: int) -> LineItemRow:
    data: dict[str, Any] = {name: row[name] for name in _LINE_ITEM_FIELDS}
    return LineItemRow(account_id=account_id, created_at=as_utc(row["created_at"]), **data)
