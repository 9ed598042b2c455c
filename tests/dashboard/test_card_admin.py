"""Back-office card work on both databases: history, manual adjustments and dashboard reversals move money
only through the ledger, exactly, and every refusal leaves the account untouched."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from giftledger.domain import card_numbers
from giftledger.domain.errors import (
    AlreadyReversed,
    CardNotFound,
    Forbidden,
    NegativeBalance,
    NotFound,
    ValidationFailed,
)
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Role
from giftledger.services import card_admin, setup
from giftledger.services.card_admin import ManualAdjustment
from giftledger.services.context import Services
from giftledger.storage.tables import cards
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.helpers import person, redeem, sell, site_ids, till
from tests.support import Demo, ledger_sums, new_demo

REQUIRED = "This field is required"
NOT_EXPECTED = "This field is not of an expected value"


def consistent(database_url: str, demo: Demo) -> None:
    sums = off_loop(ledger_sums, database_url, demo.account_id)
    assert all(stored == summed for stored, summed in sums.values()), sums


async def test_find_card_by_number_alias_or_stock(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    card, imported = demo.card_references[0], demo.card_references[1]
    spaced = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    card_id = await card_admin.find_card(services, owner, spaced)
    history = await card_admin.card_history(services, owner, card_id)
    assert (history.card.card_reference, history.card.status, history.line_items) == (card, "stock", [])
    async with services.db.transaction() as conn:  # an imported card keeps its old number as its alias
        await conn.execute(
            update(cards)
            .where(cards.c.account_id == demo.account_id, cards.c.card_reference == imported)
            .values(alias="OLD12345678")
        )
    aliased = await card_admin.find_card(services, owner, "old1 2345-678".upper())
    assert (await card_admin.card_history(services, owner, aliased)).card.card_reference == imported
    with pytest.raises(CardNotFound):
        await card_admin.find_card(services, owner, card_numbers.generate())
    with pytest.raises(ValidationFailed) as error:
        await card_admin.find_card(services, owner, "")
    assert error.value.fields == {"card_reference": [REQUIRED]}


async def test_manual_debit_takes_tender_and_discount_in_proportion(
    services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 2000, discount=500)  # £15 paid + £5 free
    card_id = await card_admin.find_card(services, owner, card)
    leeds = (await site_ids(services, demo))["Leeds"]

    item = await card_admin.adjust_card(
        services, owner, card_id, ManualAdjustment(-1000, leeds, "  Guest complaint: cold coffee  ")
    )
    assert (item.type_id, item.value, item.tender, item.discount) == (LineItemType.MANUAL_ADJUSTMENT, -1000, -750, -250)
    assert (item.note, item.site_name, item.merchant_name, item.actor) == (
        "Guest complaint: cold coffee",
        "Leeds",
        None,
        owner.name,
    )
    assert item.merchant_transaction_reference is None
    history = await card_admin.card_history(services, owner, card_id)
    assert (history.card.balance, history.card.tender_balance, history.card.discount_balance) == (1000, 750, 250)
    assert [i.type_id for i in history.line_items] == [LineItemType.SALE, LineItemType.MANUAL_ADJUSTMENT]
    consistent(database_url, demo)


@pytest.mark.parametrize(("credit_as", "split"), [("tender", (500, 0)), ("discount", (0, 500))])
async def test_manual_credit_is_booked_as_chosen(
    services: Services, demo: Demo, database_url: str, credit_as: str, split: tuple[int, int]
) -> None:
    pos = await till(services, demo)
    manager = await person(services, demo, Role.STORE_MANAGER)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 1000)
    card_id = await card_admin.find_card(services, manager, card)
    soho = (await site_ids(services, demo))["Soho"]
    item = await card_admin.adjust_card(services, manager, card_id, ManualAdjustment(500, soho, "Goodwill", credit_as))
    assert (item.value, item.tender, item.discount) == (500, *split)
    history = await card_admin.card_history(services, manager, card_id)
    assert (history.card.tender_balance, history.card.discount_balance) == (1000 + split[0], split[1])
    consistent(database_url, demo)


async def test_manual_adjustment_refusals_change_nothing(services: Services, demo: Demo, database_url: str) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    sold, stock = demo.card_references[0], demo.card_references[1]
    await sell(services, pos, demo, sold, 1000)
    card_id = await card_admin.find_card(services, owner, sold)
    stock_id = await card_admin.find_card(services, owner, stock)
    sites = await site_ids(services, demo)
    gone = await setup.add_site(services, setup.operator(demo.account_id), setup.SiteInput("Closed"))
    await setup.delete_site(services, setup.operator(demo.account_id), gone)
    cases: list[tuple[object, int, ManualAdjustment, type[Exception], dict[str, list[str]] | None]] = [
        (
            owner,
            card_id,
            ManualAdjustment(None, None, None),
            ValidationFailed,
            {"value": [REQUIRED], "reason": [REQUIRED], "site_id": [REQUIRED]},
        ),
        (owner, card_id, ManualAdjustment(0, sites["Soho"], "x"), ValidationFailed, {"value": [NOT_EXPECTED]}),
        (owner, card_id, ManualAdjustment(-100, gone, "x"), ValidationFailed, {"site_id": [NOT_EXPECTED]}),
        (
            owner,
            card_id,
            ManualAdjustment(100, sites["Soho"], "x", "gift"),
            ValidationFailed,
            {"credit_as": [NOT_EXPECTED]},
        ),
        (owner, card_id, ManualAdjustment(-1001, sites["Soho"], "too much"), NegativeBalance, None),
        (owner, stock_id, ManualAdjustment(500, sites["Soho"], "unsold"), CardNotFound, None),
        (
            await person(services, demo, Role.FOH_MANAGER),
            card_id,
            ManualAdjustment(-1, sites["Soho"], "x"),
            Forbidden,
            None,
        ),
        (
            await person(services, demo, Role.FINANCIAL_MANAGER),
            card_id,
            ManualAdjustment(1, sites["Soho"], "x"),
            Forbidden,
            None,
        ),
        (pos, card_id, ManualAdjustment(-1, sites["Soho"], "x"), Forbidden, None),
    ]
    for principal, target, adjustment, refusal, fields in cases:
        with unchanged(database_url, demo.account_id), pytest.raises(refusal) as error:
            await card_admin.adjust_card(services, principal, target, adjustment)  # type: ignore[arg-type]
        if fields is not None:
            assert error.value.fields == fields  # type: ignore[attr-defined]
    consistent(database_url, demo)


async def test_dashboard_reversal_undoes_one_line_item_once(services: Services, demo: Demo, database_url: str) -> None:
    pos = await till(services, demo)
    manager = await person(services, demo, Role.STORE_MANAGER)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 3000, discount=1000)
    redemption = await redeem(services, pos, demo, card, 1200, epos=demo.unit_epos_references[1])
    original = redemption.line_item.item
    assert (original.tender, original.discount) == (-800, -400)

    reversal = await card_admin.reverse_line_item(services, manager, original.id)
    assert (reversal.type_id, reversal.value, reversal.tender, reversal.discount) == (
        LineItemType.REVERSAL,
        1200,
        800,
        400,
    )
    assert (reversal.reverses_line_item_id, reversal.site_name, reversal.merchant_name, reversal.actor) == (
        original.id,
        "Leeds",
        None,
        manager.name,
    )
    history = await card_admin.card_history(services, manager, original.card_id)
    assert (history.card.balance, history.card.tender_balance, history.card.discount_balance) == (3000, 2000, 1000)
    assert [i.reversed_by_line_item_id for i in history.line_items] == [None, reversal.id, None]

    staff = await person(services, demo, Role.FOH_STAFF)
    refusals: list[tuple[object, int, type[Exception]]] = [
        (manager, original.id, AlreadyReversed),
        (manager, reversal.id, ValidationFailed),
        (manager, 10**12, NotFound),
        (staff, history.line_items[0].id, Forbidden),
        (await person(services, demo, Role.GUEST_SERVICE), history.line_items[0].id, Forbidden),
    ]
    for principal, line_item_id, refusal in refusals:
        with unchanged(database_url, demo.account_id), pytest.raises(refusal):
            await card_admin.reverse_line_item(services, principal, line_item_id)  # type: ignore[arg-type]
    consistent(database_url, demo)


async def test_reversing_a_sale_in_the_dashboard_cancels_the_order(
    services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card = demo.card_references[0]
    order = await sell(services, pos, demo, card, 1500)
    [sale] = order.line_items
    await card_admin.reverse_line_item(services, owner, sale.item.id)
    detail = await card_admin.order_detail(services, owner, order.order.id)
    assert detail.order.status == "cancelled"
    assert [(v.item.type_id, v.item.value) for v in detail.line_items] == [
        (LineItemType.SALE, 1500),
        (LineItemType.REVERSAL, -1500),
    ]
    history = await card_admin.card_history(services, owner, sale.card.card.id)
    assert (history.card.status, history.card.balance) == ("stock", 0)
    with pytest.raises(NotFound):
        await card_admin.order_detail(services, owner, 10**12)
    with pytest.raises(Forbidden):
        await card_admin.order_detail(services, await person(services, demo, Role.FOH_STAFF), order.order.id)
    consistent(database_url, demo)


async def test_history_of_another_accounts_card_is_not_found(services: Services, demo: Demo, database_url: str) -> None:
    other = new_demo_for(database_url)
    pos = await till(services, other)
    await sell(services, pos, other, other.card_references[0], 1000)
    theirs = await card_admin.find_card(
        services, await person(services, other, Role.STORE_OWNER), other.card_references[0]
    )
    mine = await person(services, demo, Role.STORE_OWNER)
    with pytest.raises(NotFound):
        await card_admin.card_history(services, mine, theirs)
    with pytest.raises(CardNotFound):
        await card_admin.find_card(services, mine, other.card_references[0])


def new_demo_for(database_url: str) -> Demo:
    return off_loop(new_demo, database_url)
