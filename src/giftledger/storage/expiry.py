"""The expiry run's statements: breakage of the cards whose expiry has come, and the reminders due before it.

Breakage is one statement per batch of an account's due cards: it claims them (`FOR UPDATE SKIP LOCKED`, so
two servers, or a server and `giftledger expire`, never claim one card twice and a till holding a card is not
waited for), opens one transaction for the batch and moves each card's whole balance out through the ledger's
one movement (`ledger.MOVEMENT`) as a Breakage line item with its tender and discount parts. A card is due
while it is sold, its expiry has come and it holds something, so the same statement run again (after a crash,
on another server) finds nothing left to do for the cards it did: each card's balance breaks once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.ledger import LineItemType
from giftledger.storage.ledger import movement

# $1 account, $2 now, $3 most cards in the batch, $4/$5 the (expiry_time, id) the run's previous batch ended at
# (the run goes through the due cards in that order once, rather than past the ones it broke in every batch).
_BREAKAGE = f"""
WITH card AS (
    SELECT id, tender_balance, discount_balance, expiry_time
    FROM cards
    WHERE account_id = $1 AND expiry_time <= $2 AND (expiry_time, id) > ($4::timestamptz, $5::bigint)
      AND status = 'active' AND balance > 0
    ORDER BY expiry_time, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
tx AS (
    INSERT INTO transactions (account_id, kind, created_at)
    SELECT $1, 'expiry', $2 WHERE EXISTS (SELECT 1 FROM card)
    RETURNING id
),
{
    movement(
        account="$1",
        value="(-(card.tender_balance + card.discount_balance))",
        credit_tender="NULL::bigint",
        credit_discount="NULL::bigint",
        now="$2",
        gate="card.tender_balance + card.discount_balance > 0",
        transaction="tx.id",
        order="NULL::bigint",
        type=str(int(LineItemType.BREAKAGE)),
        site="NULL::bigint",
        merchant="NULL::bigint",
        product="NULL::bigint",
        price_modifier="NULL::bigint",
        fulfilment="NULL::integer",
        reverses="NULL::bigint",
        note="NULL::text",
        api_user="NULL::bigint",
        user="NULL::bigint",
        joins=", tx",
    )
}
SELECT (SELECT count(*) FROM card) AS claimed, (SELECT count(*) FROM item) AS broken, last.expiry_time, last.id
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (SELECT expiry_time, id FROM card ORDER BY expiry_time DESC, id DESC LIMIT 1) AS last ON true
"""

# The accounts with cards due for breakage at $1.
_DUE_ACCOUNTS = """
SELECT DISTINCT account_id FROM cards
WHERE expiry_time <= :now AND status = 'active' AND balance > 0
ORDER BY account_id
"""

# The accounts with reminders due at :now (see _REMINDERS).
_REMINDER_ACCOUNTS = """
SELECT DISTINCT account_id FROM cards
WHERE expiry_time > :now AND expiry_reminder_days IS NOT NULL
  AND expiry_time - make_interval(days => expiry_reminder_days) <= :now
  AND expiry_reminded_for IS DISTINCT FROM expiry_time AND status = 'active' AND balance > 0
  AND blocked_reason IS NULL AND contact_id IS NOT NULL
ORDER BY account_id
"""

# An account's cards whose reminder is due at :now: sold, holding something, not blocked, with an email, the
# expiry still ahead but within the card's reminder days, and no reminder queued yet for this expiry.
_REMINDERS = """
SELECT cards.id, cards.card_reference, cards.balance, cards.currency, cards.expiry_time, contacts.email
FROM cards JOIN contacts ON contacts.account_id = cards.account_id AND contacts.id = cards.contact_id
WHERE cards.account_id = :account AND cards.expiry_time > :now AND cards.expiry_reminder_days IS NOT NULL
  AND cards.expiry_time - make_interval(days => cards.expiry_reminder_days) <= :now
  AND cards.expiry_reminded_for IS DISTINCT FROM cards.expiry_time AND cards.status = 'active'
  AND cards.balance > 0 AND cards.blocked_reason IS NULL
ORDER BY cards.expiry_time, cards.id
LIMIT :limit
FOR UPDATE OF cards SKIP LOCKED
"""

_REMINDED = """
UPDATE cards SET expiry_reminded_for = expiry_time
WHERE account_id = :account AND id = :card AND expiry_time = :expiry
"""


@dataclass(frozen=True)
class Breakage:
    claimed: int  # due cards claimed by this batch
    broken: int  # of them, moved to zero by a Breakage line item
    after: tuple[datetime, int] | None  # the (expiry_time, id) of the last card claimed (None: none)


START = (datetime.min.replace(tzinfo=UTC), 0)  # before every card


@dataclass(frozen=True)
class DueReminder:
    card_id: int
    card_reference: str
    balance: int
    currency: str
    expiry_time: datetime
    email: str


async def accounts_due(conn: AsyncConnection, now: datetime) -> list[int]:
    return [int(a) for a in (await conn.execute(text(_DUE_ACCOUNTS), {"now": now})).scalars()]


async def break_batch(
    conn: AsyncConnection, account_id: int, now: datetime, limit: int, after: tuple[datetime, int] = START
) -> Breakage:
    """Break up to `limit` of the account's due cards that come after `after` in (expiry_time, id) order (one
    statement; see the module's docstring). A card a till holds at that moment is skipped: the next run has it."""
    row = (await conn.exec_driver_sql(_BREAKAGE, (account_id, now, limit, *after))).one()
    last = (row.expiry_time, int(row.id)) if row.id is not None else None
    return Breakage(int(row.claimed), int(row.broken), last)


async def reminder_accounts(conn: AsyncConnection, now: datetime) -> list[int]:
    return [int(a) for a in (await conn.execute(text(_REMINDER_ACCOUNTS), {"now": now})).scalars()]


async def claim_reminders(conn: AsyncConnection, account_id: int, now: datetime, limit: int) -> list[DueReminder]:
    """The account's due reminders, locked until the caller's transaction ends (others skip them)."""
    rows = await conn.execute(text(_REMINDERS), {"account": account_id, "now": now, "limit": limit})
    return [DueReminder(int(r.id), r.card_reference, int(r.balance), r.currency, r.expiry_time, r.email) for r in rows]


async def mark_reminded(conn: AsyncConnection, account_id: int, card_id: int, expiry_time: datetime) -> None:
    await conn.execute(text(_REMINDED), {"account": account_id, "card": card_id, "expiry": expiry_time})
