"""Replacement cards (issue 17): the whole balance, tender and discount, moves to a new card as two linked
balance transfers in one transaction; the old card is blocked as replaced; `ledger verify` checks the pair."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from giftledger.domain.errors import Forbidden, ValidationFailed
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Role
from giftledger.domain.validity import CardBlocked
from giftledger.services import card_admin, card_replacement, ledger
from giftledger.services.context import Services
from giftledger.services.verification import verify_account
from giftledger.storage.ledger import Actor, Entry
from giftledger.storage.tables import cards, line_items, transactions
from tests.dashboard.browser import unchanged
from tests.dashboard.helpers import person, redeem, sell, till
from tests.support import Demo


async def _card_state(services: Services, card_id: int) -> tuple[str | None, bool, int, int, int]:
    async with services.db.transaction() as conn:
        row = (
            await conn.execute(
                select(
                    cards.c.blocked_reason,
                    cards.c.blocked_at.is_not(None),
                    cards.c.balance,
                    cards.c.tender_balance,
                    cards.c.discount_balance,
                ).where(cards.c.id == card_id)
            )
        ).one()
    return row[0], row[1], row[2], row[3], row[4]


async def test_replacement_moves_the_whole_balance_as_a_linked_pair(
    services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 3000, discount=1000)  # £20 paid + £10 free
    await redeem(services, pos, demo, card, 600)  # takes 400 tender + 200 discount
    card_id = await card_admin.find_card(services, owner, card)

    done = await card_replacement.replace_card(services, owner, card_id, "lost")

    assert (done.tender, done.discount, done.value) == (1600, 800, 2400)
    assert await _card_state(services, card_id) == ("replaced", True, 0, 0, 0)
    assert await _card_state(services, done.new_card_id) == (None, False, 2400, 1600, 800)
    async with services.db.transaction() as conn:
        pair = (
            await conn.execute(
                select(line_items.c.card_id, line_items.c.type_id, line_items.c.tender, line_items.c.discount)
                .where(line_items.c.transaction_id == done.transaction_id)
                .order_by(line_items.c.id)
            )
        ).all()
        kind = (
            await conn.execute(select(transactions.c.kind).where(transactions.c.id == done.transaction_id))
        ).scalar_one()
    assert kind == "replacement"
    assert [tuple(r) for r in pair] == [
        (card_id, LineItemType.OUTBOUND_BALANCE_TRANSFER, -1600, -800),
        (done.new_card_id, LineItemType.INBOUND_BALANCE_TRANSFER, 1600, 800),
    ]
    new = await card_admin.card_history(services, owner, done.new_card_id)
    assert (new.card.card_reference, new.card.status, new.card.initial_balance) == (
        done.new_card_reference,
        "active",
        2400,
    )
    assert len(done.new_card_reference) == 19 and done.new_card_reference != card
    linked = await card_replacement.linked_cards(services, owner, card_id)
    assert [(x.card_id, x.replaced_this) for x in linked] == [(done.new_card_id, True)]
    assert [
        (x.card_id, x.replaced_this) for x in await card_replacement.linked_cards(services, owner, new.card.id)
    ] == [(card_id, False)]
    # tills refuse the old card (it is blocked as replaced), changing nothing
    with unchanged(database_url, demo.account_id), pytest.raises(CardBlocked):
        await redeem(services, pos, demo, card, 100)
    await redeem(services, pos, demo, done.new_card_reference, 400)  # the new card works at once
    assert await _card_state(services, done.new_card_id) == (None, False, 2000, 1333, 667)
    report = await verify_account(services, demo.account_id)
    transfers = next(c for c in report.checks if c.name == "balance_transfers")
    assert (transfers.examined, transfers.violations, report.violations) == (1, [], [])


async def test_replacement_onto_a_chosen_stock_card(services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card, stock = demo.card_references[0], demo.card_references[1]
    await sell(services, pos, demo, card, 2500)
    card_id = await card_admin.find_card(services, owner, card)
    done = await card_replacement.replace_card(services, owner, card_id, "damaged", stock_number=stock)
    assert (done.new_card_reference, done.value) == (stock, 2500)
    assert await _card_state(services, done.new_card_id) == (None, False, 2500, 2500, 0)


async def test_replacement_refusals_change_nothing(services: Services, demo: Demo, database_url: str) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    staff = await person(services, demo, Role.FOH_STAFF)
    card, other, unsold, emptied = demo.card_references[:4]
    await sell(services, pos, demo, card, 2500)
    await sell(services, pos, demo, other, 1000)
    await sell(services, pos, demo, emptied, 500)
    await redeem(services, pos, demo, emptied, 500)
    card_id = await card_admin.find_card(services, owner, card)
    unsold_id = await card_admin.find_card(services, owner, unsold)
    emptied_id = await card_admin.find_card(services, owner, emptied)
    with unchanged(database_url, demo.account_id):
        with pytest.raises(Forbidden):
            await card_replacement.replace_card(services, staff, card_id, "lost")
        with pytest.raises(ValidationFailed) as bad_reason:
            await card_replacement.replace_card(services, owner, card_id, "stolen")
        assert bad_reason.value.fields == {"reason": ["This field is not of an expected value"]}
        with pytest.raises(ValidationFailed) as sold_stock:
            await card_replacement.replace_card(services, owner, card_id, "lost", stock_number=other)
        assert sold_stock.value.fields == {"stock_number": [card_replacement.NOT_STOCK]}
        with pytest.raises(ValidationFailed) as not_sold:
            await card_replacement.replace_card(services, owner, unsold_id, "lost")
        assert not_sold.value.fields == {"card_id": [card_replacement.NOT_ACTIVE]}
        with pytest.raises(ValidationFailed) as empty:
            await card_replacement.replace_card(services, owner, emptied_id, "lost")
        assert empty.value.fields == {"card_id": [card_replacement.EMPTY]}
    await card_replacement.replace_card(services, owner, card_id, "lost")
    assert await _card_state(services, card_id) == ("replaced", True, 0, 0, 0)
    with unchanged(database_url, demo.account_id):
        with pytest.raises(ValidationFailed) as twice:
            await card_replacement.replace_card(services, owner, card_id, "lost")
        assert twice.value.fields == {"card_id": [card_replacement.BLOCKED]}


async def test_ledger_verify_names_transfers_that_do_not_pair_up(services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    first, second = demo.card_references[:2]
    await sell(services, pos, demo, first, 2000)
    await sell(services, pos, demo, second, 2000)
    ids = [await card_admin.find_card(services, owner, n) for n in (first, second)]
    actor = Actor(user_id=owner.user_id)
    async with services.unit_of_work(owner) as uow:  # a lopsided pair: 1000 out, 900 in
        lopsided = await uow.ledger.open_transaction("replacement", actor, None)
        await ledger.post(uow, lopsided, actor, Entry(ids[0], LineItemType.OUTBOUND_BALANCE_TRANSFER, -1000))
        await ledger.post(uow, lopsided, actor, Entry(ids[1], LineItemType.INBOUND_BALANCE_TRANSFER, 900))
        alone = await uow.ledger.open_transaction("manual_adjustment", actor, None)  # an inbound, not an import
        await ledger.post(uow, alone, actor, Entry(ids[1], LineItemType.INBOUND_BALANCE_TRANSFER, 50))
    report = await verify_account(services, demo.account_id)
    transfers = next(c for c in report.checks if c.name == "balance_transfers")
    assert transfers.examined == 2
    assert transfers.violations == [
        f"transaction {lopsided} (replacement) holds 1 transfer(s) out and 1 in (and 0 other line items) on 2 "
        "card(s), summing to -100 (tender -100, discount 0)",
        f"transaction {alone} (manual_adjustment) holds 0 transfer(s) out and 1 in (and 0 other line items) on 1 "
        "card(s), summing to 50 (tender 50, discount 0)",
    ]
    assert [v for v in report.violations if not v.startswith("balance_transfers")] == []
