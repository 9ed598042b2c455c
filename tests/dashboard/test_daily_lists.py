"""The Cards and Orders lists with their filters (exact rows), the account's time zone (set by the Store Owner,
shown on every time), and the Audit Trail's operations in words, over HTTP in-process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from starlette.applications import Starlette

from giftledger.domain.permissions import Role
from giftledger.services.context import Services
from giftledger.storage.tables import accounts, orders
from tests.dashboard.browser import off_loop
from tests.dashboard.helpers import PASSWORD, person, sell, site_ids, till, till_reverse
from tests.dashboard.web import Web, field_error, rows
from tests.support import Demo, snapshot


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[Web]:
    browser = Web(app)
    yield browser
    await browser.close()


def card_numbers(body: str) -> list[str]:
    return [row[0] for row in rows(body, "cards")] if 'id="cards"' in body else []


def order_ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-order-id="(\d+)"', body)]


async def created_at(services: Services, order_id: int, moment: datetime) -> None:
    async with services.db.transaction() as conn:
        await conn.execute(update(orders).where(orders.c.id == order_id).values(created_at=moment))


async def test_orders_filters_and_times_in_the_account_zone(web: Web, services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    pos = await till(services, demo)
    sites = await site_ids(services, demo)
    leeds_epos = demo.unit_epos_references[1]
    first = await sell(services, pos, demo, demo.card_references[0], 1000, receipt_email="Buyer@Example.com")
    second = await sell(services, pos, demo, demo.card_references[1], 2000, epos=leeds_epos)
    third = await sell(services, pos, demo, demo.card_references[2], 3000)
    await till_reverse(services, pos, demo, third.line_items[0].item.id)  # the order is cancelled
    a, b, c = first.order.id, second.order.id, third.order.id
    await created_at(services, a, datetime(2026, 3, 1, 10, 0, tzinfo=UTC))  # GMT
    await created_at(services, b, datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 1 July, 00:30 BST
    await created_at(services, c, datetime(2026, 7, 2, 9, 0, tzinfo=UTC))
    await web.log_in(owner.name, PASSWORD)

    page = await web.get("/orders")
    assert order_ids(page.text) == [c, b, a]
    assert [(r[0], r[1]) for r in rows(page.text, "orders")] == [
        (f"#{c}", "2026-07-02 10:00:00"),
        (f"#{b}", "2026-07-01 00:30:00"),
        (f"#{a}", "2026-03-01 10:00:00"),
    ]
    assert "Created (Europe/London)" in page.text
    assert order_ids((await web.get(f"/orders?site={sites['Soho']}")).text) == [c, a]
    assert order_ids((await web.get(f"/orders?site={sites['Leeds']}")).text) == [b]
    assert order_ids((await web.get("/orders?email=buyer%40example.COM")).text) == [a]
    assert order_ids((await web.get("/orders?reversed=yes")).text) == [c]
    assert order_ids((await web.get("/orders?reversed=no")).text) == [b, a]
    assert order_ids((await web.get("/orders?from=2026-07-01&to=2026-07-01")).text) == [b]  # a London day
    assert order_ids((await web.get("/orders?channel=3")).text) == [c, b, a]
    assert order_ids((await web.get("/orders?channel=5")).text) == []
    refused = await web.get("/orders?from=2026-07-02&to=2026-07-01")
    assert (
        refused.status_code == 400 and field_error(refused.text, "from") == "The first day must not be after the last."
    )

    # The Store Owner sets the zone: every time moves with it (UTC: an hour earlier than BST).
    saved = await web.post("/settings/time-zone", {"time_zone": "UTC"})
    assert saved.status_code == 303
    page = await web.get("/orders")
    assert [(r[0], r[1]) for r in rows(page.text, "orders")][1] == (f"#{b}", "2026-06-30 23:30:00")
    assert "Created (UTC)" in page.text
    assert order_ids((await web.get("/orders?from=2026-07-01&to=2026-07-01")).text) == []


async def test_time_zone_is_the_store_owners_and_checked(
    web: Web, app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    manager = await person(services, demo, Role.STORE_MANAGER)
    await web.log_in(owner.name, PASSWORD)
    page = await web.get("/settings/time-zone")
    assert re.search(r'<option value="Europe/London" selected>', page.text)
    refused = await web.post("/settings/time-zone", {"time_zone": "Europe/Atlantis"})
    assert refused.status_code == 400
    assert field_error(refused.text, "time_zone") == "Choose a time zone from the list."
    saved = await web.post("/settings/time-zone", {"time_zone": "America/New_York"})
    assert saved.status_code == 303
    assert re.search(r'<option value="America/New_York" selected>', (await web.get(saved.headers["location"])).text)

    other = Web(app)
    try:
        await other.log_in(manager.name, PASSWORD)
        assert (await other.post("/settings/time-zone", {"time_zone": "UTC"})).status_code == 403
    finally:
        await other.close()
    async with services.db.read() as conn:
        stored = (await conn.execute(accounts.select().where(accounts.c.id == demo.account_id))).one()
    assert stored.time_zone == "America/New_York"

    trail = await web.get("/settings/audit?operation=dashboard.time_zone.save")
    assert [(r[2], r[5]) for r in rows(trail.text, "audit-trail")] == [
        ("Set the time zone", "Refused FORBIDDEN"),
        ("Set the time zone", "Accepted"),
        ("Set the time zone", "Refused VALIDATION"),
    ]
    assert '<option value="dashboard.time_zone.save" selected>Set the time zone</option>' in trail.text
    assert '<option value="createOrder">Till: sell cards</option>' in trail.text


async def test_cards_list_filters_and_sorts(web: Web, services: Services, demo: Demo, database_url: str) -> None:
    guest = await person(services, demo, Role.GUEST_SERVICE)
    pos = await till(services, demo)
    sites = await site_ids(services, demo)
    cheap, dear = demo.card_references[0], demo.card_references[1]
    await sell(services, pos, demo, cheap, 1000, receipt_email="buyer@example.com")
    await sell(services, pos, demo, dear, 3000, epos=demo.unit_epos_references[1])
    stock = [number for number in demo.card_references if number not in (cheap, dear)]
    await web.log_in(guest.name, PASSWORD)
    before = off_loop(snapshot, database_url, demo.account_id)

    assert card_numbers((await web.get("/cards?state=sold&order=balance_high")).text) == [dear, cheap]
    assert card_numbers((await web.get("/cards?state=sold&order=balance_low")).text) == [cheap, dear]
    assert card_numbers((await web.get("/cards?min_balance=20&max_balance=30")).text) == [dear]
    assert card_numbers((await web.get(f"/cards?site={sites['Soho']}")).text) == [cheap]
    assert card_numbers((await web.get("/cards?email=BUYER%40example.com")).text) == [cheap]
    assert card_numbers((await web.get(f"/cards?product={demo.product_id}&state=sold&order=oldest")).text) == [
        cheap,
        dear,
    ]
    assert card_numbers((await web.get("/cards?sold_from=2000-01-01&sold_to=2000-01-02")).text) == []
    listed = await web.get("/cards?state=stock&order=oldest")
    assert card_numbers(listed.text) == stock[:25]
    assert re.search(rf'<a href="/cards/\d+">{stock[0]}</a>', listed.text)
    refused = await web.get("/cards?min_balance=30&max_balance=20")
    assert refused.status_code == 400
    assert field_error(refused.text, "min_balance") == "The lowest balance must not be above the highest."
    assert field_error((await web.get("/cards?max_balance=12.345")).text, "max_balance") == (
        "Enter an amount in pounds, like 12.50."
    )
    assert off_loop(snapshot, database_url, demo.account_id) == before
