"""Imported cards: the files imported (one row per account and file, by SHA-256), the numbers an account
already has, and the bulk statement that writes a file's cards with their opening balances.

The bulk statement is the import's counterpart of the ledger's movement (storage/ledger.py): each card is
inserted holding its opening balance, and in the same statement an Inbound Balance Transfer line item of exactly
that value (tender and discount parts) is appended to the import's transaction, so a card's balance is the sum
of its line items from its first moment; the CHECK constraints on `cards` and `line_items` are the backstop, as
for every movement. Rows travel as arrays (`unnest`), a chunk per statement, so 100,000 cards take a few dozen
round trips inside one transaction, not 100,000."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.ledger import LineItemType
from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, Money, metadata

card_imports = Table(
    "card_imports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("file_name", String(300), nullable=False),
    Column("cards", Integer, nullable=False),
    Column("total", Money, nullable=False),
    Column("transaction_id", Id, ForeignKey("transactions.id"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "file_sha256", name="uq_card_imports_account_file"),
)

imported_cards = Table(
    "imported_cards",
    metadata,
    Column("card_id", Id, ForeignKey("cards.id"), primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("card_import_id", Id, ForeignKey("card_imports.id"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("purchaser_name", String(200)),
    Column("purchaser_email", String(320)),
    Column("recipient_name", String(200)),
    Column("notes", Text),
    Index("ix_imported_cards_account_import", "account_id", "card_import_id"),
)

FILE_IMPORTED = "uq_card_imports_account_file"  # another import of the same file committed first
CHUNK = 2500  # rows per statement: each stays far inside the statement timeout

# Two joins, not one on `card_reference = n OR alias = n`: each can use its own index (or a hash join).
_EXISTING = """
WITH n AS (SELECT DISTINCT number FROM unnest($2::text[]) AS u(number)),
found AS (
    SELECT n.number, true AS as_number FROM n JOIN cards ON cards.account_id = $1 AND cards.card_reference = n.number
    UNION ALL
    SELECT n.number, false FROM n JOIN cards ON cards.account_id = $1 AND cards.alias = n.number
)
SELECT number, bool_or(as_number) AS as_number FROM found GROUP BY number
"""

# $1 account, $2 transaction, $3 import, $4 now, $5 currency, $6 user; then one array per column.
_INSERT = f"""
WITH input AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('cards', 'id')) AS card_id,
           CASE WHEN u.recipient_email IS NOT NULL THEN nextval(pg_get_serial_sequence('contacts', 'id')) END
               AS contact_id,
           u.*
    FROM unnest($7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::timestamptz[],
                $13::integer[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
         AS u(card_reference, alias, pin_hash, tender, discount, expiry_time, row_number, purchaser_name,
              purchaser_email, recipient_name, recipient_email, notes)
),
contacts_added AS (
    INSERT INTO contacts (id, account_id, email, created_at)
    SELECT contact_id, $1, recipient_email, $4 FROM input WHERE contact_id IS NOT NULL
),
cards_added AS (
    INSERT INTO cards (id, account_id, card_reference, alias, pin_hash, currency, status, balance, tender_balance,
                       discount_balance, initial_balance, contact_id, expiry_time, created_at, updated_at)
    SELECT card_id, $1, card_reference, alias, pin_hash, $5, 'active', tender + discount, tender, discount,
           tender + discount, contact_id, expiry_time, $4, $4
    FROM input
),
items_added AS (
    INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount, user_id,
                            created_at)
    SELECT $1, card_id, $2, {int(LineItemType.INBOUND_BALANCE_TRANSFER)}, tender + discount, tender, discount,
           $6::bigint, $4
    FROM input WHERE tender + discount > 0
),
kept AS (
    INSERT INTO imported_cards (card_id, account_id, card_import_id, row_number, purchaser_name, purchaser_email,
                                recipient_name, notes)
    SELECT card_id, $1, $3, row_number, purchaser_name, purchaser_email, recipient_name, notes FROM input
)
SELECT count(*) FROM input
"""


@dataclass(frozen=True)
class ImportedFile:
    id: int
    file_name: str
    cards: int
    total: int
    transaction_id: int
    created_at: datetime


@dataclass(frozen=True)
class NewCard:
    """One card of a file, ready to write."""

    card_reference: str
    alias: str | None
    pin_hash: str | None
    tender: int
    discount: int
    expiry_time: datetime | None
    row_number: int
    purchaser_name: str | None
    purchaser_email: str | None
    recipient_name: str | None
    recipient_email: str | None
    notes: str | None


class CardImports:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def existing(self, numbers: Sequence[str]) -> dict[str, bool]:
        """Which of `numbers` the account already has: True as a card's number, False only as an alias."""
        if not numbers:
            return {}
        rows = (await self._conn.exec_driver_sql(_EXISTING, (self._account_id, list(numbers)))).all()
        return {str(r.number): bool(r.as_number) for r in rows}

    async def find(self, file_sha256: str) -> ImportedFile | None:
        row = (
            await self._conn.execute(
                select(
                    card_imports.c.id,
                    card_imports.c.file_name,
                    card_imports.c.cards,
                    card_imports.c.total,
                    card_imports.c.transaction_id,
                    card_imports.c.created_at,
                ).where(card_imports.c.account_id == self._account_id, card_imports.c.file_sha256 == file_sha256)
            )
        ).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["created_at"] = as_utc(data["created_at"])
        return ImportedFile(**data)

    async def record(
        self,
        *,
        file_sha256: str,
        file_name: str,
        cards: int,
        total: int,
        transaction_id: int,
        user_id: int | None,
        now: datetime,
    ) -> int:
        result = await self._conn.execute(
            card_imports.insert()
            .values(
                account_id=self._account_id,
                file_sha256=file_sha256,
                file_name=file_name,
                cards=cards,
                total=total,
                transaction_id=transaction_id,
                user_id=user_id,
                created_at=now,
            )
            .returning(card_imports.c.id)
        )
        return int(result.scalar_one())

    async def add_cards(
        self,
        import_id: int,
        transaction_id: int,
        currency: str,
        user_id: int | None,
        now: datetime,
        new: Sequence[NewCard],
    ) -> int:
        """Write the cards, their contacts, opening balances and import details; how many were written."""
        written = 0
        for start in range(0, len(new), CHUNK):
            chunk = new[start : start + CHUNK]
            columns = [
                [getattr(card, name) for card in chunk]
                for name in (
                    "card_reference",
                    "alias",
                    "pin_hash",
                    "tender",
                    "discount",
                    "expiry_time",
                    "row_number",
                    "purchaser_name",
                    "purchaser_email",
                    "recipient_name",
                    "recipient_email",
                    "notes",
                )
            ]
            parameters = (self._account_id, transaction_id, import_id, now, currency, user_id, *columns)
            written += int((await self._conn.exec_driver_sql(_INSERT, parameters)).scalar_one())
        return written
