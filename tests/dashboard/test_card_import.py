"""Imported cards (issue 17, Toggle's "Switch"): a dry run lists every problem by row and column and writes
nothing; an import writes the whole file or nothing; the same file again changes nothing; opening balances are
inbound balance transfers; a number the account has (as a number or an alias) is refused by row; PINs are kept
hashed; aliases find the card wherever a number does."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from giftledger.auth.pins import PinHasher
from giftledger.domain import card_numbers
from giftledger.domain.card_import import BAD_AMOUNT, BAD_DATE, BAD_EMAIL, BAD_NUMBER, BAD_PIN, DISCOUNT_OVER, REQUIRED
from giftledger.domain.errors import Forbidden
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Role
from giftledger.services import card_admin, card_import
from giftledger.services.context import Services
from giftledger.services.verification import verify_account
from giftledger.storage.card_imports import card_imports, imported_cards
from giftledger.storage.tables import cards, contacts, line_items
from tests.dashboard.browser import unchanged
from tests.dashboard.helpers import person
from tests.support import Demo

HEADER = (
    "Card Number,PIN,Balance,Discount,Expiry Date,Purchaser Name,Purchaser Email,Recipient Name,Recipient Email,Notes\n"
)


def csv_of(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


async def _imports(services: Services, account_id: int) -> int:
    async with services.db.transaction() as conn:
        found = await conn.execute(
            select(func.count()).select_from(card_imports).where(card_imports.c.account_id == account_id)
        )
        return int(found.scalar_one())


async def test_import_writes_every_card_with_its_opening_balance(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    ours = card_numbers.generate()
    data = csv_of(
        "TOG-0001,1234,25.00,5,2027-06-30,Pat Buyer,pat@example.com,Sam Holder,sam@example.com,from the old system",
        f"{ours},,£10.5,,,,,,,",
        "TOG0003,00420042,0,,,,,,,empty card",
    )
    checked = await card_import.import_cards(services, owner, data, "cards.csv", dry_run=True)
    assert (checked.ok, checked.imported, checked.cards, checked.total, checked.aliases) == (True, False, 3, 3550, 2)
    assert await _imports(services, demo.account_id) == 0

    done = await card_import.import_cards(services, owner, data, "cards.csv", dry_run=False)
    assert (done.ok, done.imported, done.cards, done.total, done.aliases) == (True, True, 3, 3550, 2)
    async with services.db.transaction() as conn:
        rows = (
            await conn.execute(
                select(
                    cards,
                    imported_cards.c.row_number,
                    imported_cards.c.purchaser_name,
                    imported_cards.c.purchaser_email,
                    imported_cards.c.recipient_name,
                    imported_cards.c.notes,
                    contacts.c.email.label("recipient_email"),
                )
                .join(imported_cards, imported_cards.c.card_id == cards.c.id)
                .outerjoin(contacts, contacts.c.id == cards.c.contact_id)
                .where(cards.c.account_id == demo.account_id)
                .order_by(imported_cards.c.row_number)
            )
        ).all()
        items = (
            await conn.execute(
                select(line_items.c.card_id, line_items.c.type_id, line_items.c.tender, line_items.c.discount)
                .where(line_items.c.account_id == demo.account_id)
                .order_by(line_items.c.card_id)
            )
        ).all()
    first, second, third = rows
    assert (first.alias, len(first.card_reference), first.card_reference.startswith(card_numbers.IIN_PREFIX)) == (
        "TOG0001",
        19,
        True,
    )
    assert card_numbers.passes_luhn(first.card_reference)
    assert (first.balance, first.tender_balance, first.discount_balance, first.initial_balance, first.status) == (
        2500,
        2000,
        500,
        2500,
        "active",
    )
    # 2027-06-30 is the last day: the card expires at 03:00 on 1 July, London time (BST: 02:00 UTC)
    assert first.expiry_time == datetime(2027, 7, 1, 2, 0, tzinfo=UTC)
    assert (first.row_number, first.purchaser_name, first.purchaser_email, first.recipient_name) == (
        2,
        "Pat Buyer",
        "pat@example.com",
        "Sam Holder",
    )
    assert (first.recipient_email, first.notes) == ("sam@example.com", "from the old system")
    pins = PinHasher(services.settings.secret_key, services.settings.previous_secret_keys)
    # stored keyed and hashed, never as typed (a hex digest may of course hold "1234" by chance)
    assert first.pin_hash is not None and re.fullmatch(r"pin1\$[0-9a-f]{8}\$[0-9a-f]{64}", first.pin_hash)
    assert pins.verify(first.pin_hash, demo.account_id, first.card_reference, "1234")
    assert not pins.verify(first.pin_hash, demo.account_id, first.card_reference, "1235")
    assert (second.card_reference, second.alias, second.balance, second.pin_hash, second.expiry_time) == (
        ours,
        None,
        1050,
        None,
        None,
    )
    assert (third.alias, third.balance, third.notes) == ("TOG0003", 0, "empty card")
    assert pins.verify(third.pin_hash, demo.account_id, third.card_reference, "00420042")
    # opening balances are inbound balance transfers (none for an empty card)
    inbound = int(LineItemType.INBOUND_BALANCE_TRANSFER)
    assert [tuple(i) for i in items] == [(first.id, inbound, 2000, 500), (second.id, inbound, 1050, 0)]
    report = await verify_account(services, demo.account_id)
    assert report.violations == []

    # the same file again: nothing changes, and the report says when it was imported
    with unchanged(database_url_of(services), demo.account_id):
        again = await card_import.import_cards(services, owner, data, "renamed.csv", dry_run=False)
    assert (again.imported, again.ok, again.earlier is not None) == (False, False, True)
    assert again.earlier is not None and again.earlier.cards == 3
    assert await _imports(services, demo.account_id) == 1

    # the alias finds the card, as a number does
    assert await card_admin.find_card(services, owner, "tog0001".upper()) == first.id


def database_url_of(services: Services) -> str:
    return services.settings.database_url or ""


async def test_a_file_with_problems_lists_them_all_and_writes_nothing(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    guest = await person(services, demo, Role.GUEST_SERVICE)
    first = csv_of("OLD11111,,5,,,,,,,")
    assert (await card_import.import_cards(services, owner, first, "first.csv", dry_run=False)).imported
    stock = demo.card_references[0]  # an unsold card of the account
    data = csv_of(
        "OLD22222,12,abc,1,2027-02-30,,not-an-email,,,",  # row 2: PIN, balance, date, email
        ",,5,6,,,,,,",  # row 3: no number; discount over balance
        "OLD11111,,5,,,,,,,",  # row 4: already an alias of this account
        f"{stock},,5,,,,,,,",  # row 5: already a card of this account
        "OLD33333,,5,,,,,,,",  # row 6: fine
        "OLD33333,,7,,,,,,,",  # row 7: the same number as row 6
        "a-b,,5,,,,,,,",  # row 8: too short once dashes go
    )
    expected = [
        (2, "balance", BAD_AMOUNT),
        (2, "expiry_date", BAD_DATE),
        (2, "pin", BAD_PIN),
        (2, "purchaser_email", BAD_EMAIL),
        (3, "card_number", REQUIRED),
        (3, "discount", DISCOUNT_OVER),
        (4, "card_number", card_import.ALREADY_AN_ALIAS),
        (5, "card_number", card_import.ALREADY_A_CARD),
        (7, "card_number", "The same number is on row 6."),
        (8, "card_number", BAD_NUMBER),
    ]
    with unchanged(database_url_of(services), demo.account_id):
        for dry_run in (True, False):
            report = await card_import.import_cards(services, owner, data, "bad.csv", dry_run=dry_run)
            assert [(p.row, p.column, p.message) for p in report.problems] == expected
            assert (report.ok, report.imported, report.cards) == (False, False, 1)
        with pytest.raises(Forbidden):
            await card_import.import_cards(services, guest, csv_of("OLD44444,,5,,,,,,,"), "x.csv", dry_run=False)
        header = await card_import.import_cards(services, owner, b"number,balance\n1,2\n", "h.csv", dry_run=False)
        assert [(p.row, p.column, p.message) for p in header.problems] == [
            (1, "card_number", "This column is missing."),
            (1, "number", "Unknown column."),
        ]
        binary = await card_import.import_cards(services, owner, b"\xff\xfe\x00", "b.csv", dry_run=False)
        assert [(p.row, p.column) for p in binary.problems] == [(0, "file")]
    assert await _imports(services, demo.account_id) == 1


async def test_the_same_file_imported_twice_at_once_is_imported_once(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    data = csv_of(*(f"RACE{n:05d},,{n + 1},,,,,,," for n in range(50)))
    first, second = await asyncio.gather(
        card_import.import_cards(services, owner, data, "a.csv", dry_run=False),
        card_import.import_cards(services, owner, data, "b.csv", dry_run=False),
    )
    assert sorted([first.imported, second.imported]) == [False, True]
    loser = second if first.imported else first
    assert loser.earlier is not None and loser.earlier.cards == 50 and loser.problems == []
    assert await _imports(services, demo.account_id) == 1
    assert (await verify_account(services, demo.account_id)).violations == []
