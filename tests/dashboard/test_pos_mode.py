"""POS Mode over HTTP in-process: the dashboard's till sells, takes payments, tops up and reverses through the
till's own use cases, booked at the site chosen and in the team member's name; every refusal changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from giftledger.domain import card_numbers, validity
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import NOT_EXPECTED, ValidationFailed
from giftledger.domain.permissions import Role
from giftledger.services import card_pins
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Services, operator
from giftledger.services.reversals import ReversalItem, ReversalRequest, reverse_line_items
from giftledger.storage.tables import cards, line_items, transactions
from tests.dashboard.browser import off_loop
from tests.dashboard.helpers import PASSWORD, person, sell, site_ids, till
from tests.dashboard.web import Web, field_error, text_of
from tests.support import Demo, snapshot


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[Web]:
    browser = Web(app)
    yield browser
    await browser.close()


def receipt_id(location: str) -> int:
    found = re.fullmatch(r"/pos/\d+/line-items/(\d+)", location)
    assert found, location
    return int(found.group(1))


async def booked(services: Services, line_item_id: int) -> tuple[int, int | None, int | None, int | None, int | None]:
    """(value, site, user, API user, merchant) of a line item, and its transaction's site must agree."""
    async with services.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    line_items.c.value,
                    line_items.c.site_id,
                    line_items.c.user_id,
                    line_items.c.api_user_id,
                    line_items.c.merchant_id,
                    transactions.c.site_id.label("tx_site"),
                    transactions.c.user_id.label("tx_user"),
                )
                .join(transactions, transactions.c.id == line_items.c.transaction_id)
                .where(line_items.c.id == line_item_id)
            )
        ).one()
    assert (row.tx_site, row.tx_user) == (row.site_id, row.user_id)
    return int(row.value), row.site_id, row.user_id, row.api_user_id, row.merchant_id


async def test_sell_pay_top_up_reverse_at_the_chosen_site(
    web: Web, services: Services, demo: Demo, database_url: str
) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    sites = await site_ids(services, demo)
    site = sorted(sites.values())[-1]
    await web.log_in(owner.name, PASSWORD)
    chooser = await web.get("/pos")
    assert chooser.status_code == 200
    assert [f"/pos/{i}" for i in sorted(sites.values())] == re.findall(r'href="(/pos/\d+)"', chooser.text)
    card = demo.card_references[0]

    sold = await web.post(
        f"/pos/{site}/sell", {"card_reference": card, "product_id": str(demo.product_id), "amount": "25"}
    )
    assert sold.status_code == 303, text_of(sold.text)
    sale = receipt_id(sold.headers["location"])
    assert await booked(services, sale) == (2500, site, owner.id, None, None)

    paid = await web.post(f"/pos/{site}/pay", {"card_reference": card, "amount": "7.50"})
    assert paid.status_code == 303, text_of(paid.text)
    payment = receipt_id(paid.headers["location"])
    assert await booked(services, payment) == (-750, site, owner.id, None, None)
    shown = await web.get(paid.headers["location"])
    assert "Balance now £17.50" in text_of(shown.text)

    topped = await web.post(f"/pos/{site}/top-up", {"card_reference": card, "amount": "2.50"})
    assert topped.status_code == 303, text_of(topped.text)
    assert await booked(services, receipt_id(topped.headers["location"])) == (250, site, owner.id, None, None)

    reversed_ = await web.post(f"/pos/{site}/line-items/{payment}/reverse")
    assert reversed_.status_code == 303, text_of(reversed_.text)
    assert await booked(services, receipt_id(reversed_.headers["location"])) == (750, site, owner.id, None, None)

    balance = await web.post(f"/pos/{site}/balance", {"card_reference": card})
    assert "Balance £27.50" in text_of(balance.text)


async def test_refusals_change_nothing(web: Web, services: Services, demo: Demo, database_url: str) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    sites = await site_ids(services, demo)
    site = min(sites.values())
    card = demo.card_references[1]
    await sell(services, await till(services, demo), demo, card, 1000)
    # a card past its expiry (its breakage not yet run) and a blocked one: the till's own refusals
    expired, blocked = demo.card_references[3], demo.card_references[4]
    for number in (expired, blocked):
        await sell(services, await till(services, demo), demo, number, 1000)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(cards)
            .where(cards.c.account_id == demo.account_id, cards.c.card_reference == expired)
            .values(expiry_time=datetime.now(UTC) - timedelta(minutes=1))
        )
        await conn.execute(
            update(cards)
            .where(cards.c.account_id == demo.account_id, cards.c.card_reference == blocked)
            .values(blocked_reason="stolen", blocked_at=datetime.now(UTC))
        )
    await web.log_in(staff.name, PASSWORD)
    before = off_loop(snapshot, database_url, demo.account_id)

    for number, said in ((expired, validity.EXPIRED), (blocked, validity.BLOCKED)):
        refused_card = await web.post(f"/pos/{site}/pay", {"card_reference": number, "amount": "1"})
        assert refused_card.status_code == 409, number
        assert said in text_of(refused_card.text)
    page = await web.get(f"/pos/{site}")
    assert page.status_code == 200
    assert "Sell a card" not in page.text and "Top up" not in text_of(page.text)
    # no permission: Front of House Staff only redeem
    sold = await web.post(
        f"/pos/{site}/sell",
        {"card_reference": demo.card_references[2], "product_id": str(demo.product_id), "amount": "5"},
    )
    assert sold.status_code == 403
    topped = await web.post(f"/pos/{site}/top-up", {"card_reference": card, "amount": "5"})
    assert topped.status_code == 403
    # insufficient balance
    over = await web.post(f"/pos/{site}/pay", {"card_reference": card, "amount": "10.01"})
    assert over.status_code == 409
    assert "The card's balance is less than this amount. Nothing was taken." in text_of(over.text)
    # a card that is not there
    missing = await web.post(f"/pos/{site}/pay", {"card_reference": card_numbers.generate(), "amount": "1"})
    assert missing.status_code == 404
    assert "No card found with this number or alias in this account." in text_of(missing.text)
    # a site that is not the account's
    other = await web.post("/pos/999999999/pay", {"card_reference": card, "amount": "1"})
    assert other.status_code == 404
    assert "This site is not one of this account's sites." in text_of(other.text)
    assert (await web.get("/pos/999999999")).status_code == 404
    assert off_loop(snapshot, database_url, demo.account_id) == before

    paid = await web.post(f"/pos/{site}/pay", {"card_reference": card, "amount": "10"})
    assert paid.status_code == 303
    shown = await web.get(paid.headers["location"])
    assert "Reverse this" not in shown.text  # staff may not reverse
    before = off_loop(snapshot, database_url, demo.account_id)
    refused = await web.post(f"{paid.headers['location']}/reverse")
    assert refused.status_code == 403
    assert off_loop(snapshot, database_url, demo.account_id) == before


async def test_what_cannot_be_read_is_said_next_to_its_field(
    web: Web, services: Services, demo: Demo, database_url: str
) -> None:
    manager = await person(services, demo, Role.FOH_MANAGER)
    site = min((await site_ids(services, demo)).values())
    await web.log_in(manager.name, PASSWORD)
    before = off_loop(snapshot, database_url, demo.account_id)
    sold = await web.post(
        f"/pos/{site}/sell", {"card_reference": demo.card_references[3], "product_id": "", "amount": "12.345"}
    )
    assert sold.status_code == 400
    assert field_error(sold.text, "amount") == "Enter an amount in pounds, like 12.50."
    assert field_error(sold.text, "product_id") == "This field is required"
    paid = await web.post(f"/pos/{site}/pay", {"card_reference": "", "amount": ""})
    assert paid.status_code == 400
    assert field_error(paid.text, "amount") == "This field is required"
    assert field_error(paid.text, "card_reference") == "This field is required"
    assert off_loop(snapshot, database_url, demo.account_id) == before


async def test_only_a_team_member_names_the_site(services: Services, demo: Demo, database_url: str) -> None:
    """A till reaches a site through its POS merchant's site mapping only: naming a site is POS Mode's."""
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    site = min((await site_ids(services, demo)).values())
    card = demo.card_references[4]
    sold = await sell(services, pos, demo, card, 500)
    before = off_loop(snapshot, database_url, demo.account_id)
    pay = AdjustmentRequest(card, -100, "GBP", None, None, None, site_id=site)
    with pytest.raises(ValidationFailed) as refused:
        await adjust_balance(services, pos, pay)
    assert refused.value.fields == {"site_id": [NOT_EXPECTED]}
    back = ReversalRequest([ReversalItem(sold.line_items[0].item.id)], None, None, None, site_id=site)
    with pytest.raises(ValidationFailed) as refused:
        await reverse_line_items(services, pos, back)
    assert refused.value.fields == {"site_id": [NOT_EXPECTED]}
    with pytest.raises(ValidationFailed) as refused:  # a team member names the site, not a POS merchant too
        await adjust_balance(services, owner, AdjustmentRequest(card, -100, "GBP", None, POINTONE, None, site_id=site))
    assert refused.value.fields == {"merchant_id": [NOT_EXPECTED]}
    assert off_loop(snapshot, database_url, demo.account_id) == before


async def test_a_sale_shows_its_generated_pin_once(web: Web, services: Services, demo: Demo) -> None:
    """A product that generates a PIN: the sale's reply is the receipt with the PIN (the stored hash verifies it);
    the receipt's own page, and every later page, never shows it."""
    owner = await person(services, demo, Role.STORE_OWNER)
    await card_pins.set_product_pin_digits(services, operator(demo.account_id), demo.product_id, 6)
    site = sorted((await site_ids(services, demo)).values())[0]
    await web.log_in(owner.name, PASSWORD)
    card = demo.card_references[1]

    sold = await web.post(
        f"/pos/{site}/sell", {"card_reference": card, "product_id": str(demo.product_id), "amount": "20"}
    )
    assert sold.status_code == 200, text_of(sold.text)
    assert sold.headers["cache-control"] == "no-store"
    [pin] = re.findall(r'data-testid="pos-pin">(\d+)<', sold.text)
    assert len(pin) == 6
    assert "it is shown only now and cannot be shown again" in text_of(sold.text)
    async with services.db.read() as conn:
        row = (
            await conn.execute(
                select(cards.c.id, cards.c.pin_hash, cards.c.balance).where(
                    cards.c.account_id == demo.account_id, cards.c.card_reference == card
                )
            )
        ).one()
        [sale] = (
            await conn.execute(
                select(line_items.c.id).where(
                    line_items.c.account_id == demo.account_id, line_items.c.card_id == row.id
                )
            )
        ).scalars()
    assert row.balance == 2000
    assert card_pins.hasher(services).verify(row.pin_hash, demo.account_id, card, pin)
    assert await booked(services, sale) == (2000, site, owner.id, None, None)

    again = await web.get(f"/pos/{site}/line-items/{sale}")
    assert again.status_code == 200
    assert "Balance now £20.00" in text_of(again.text)
    assert 'data-testid="pos-pin"' not in again.text and pin not in again.text
