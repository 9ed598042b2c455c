"""The dashboard in chromium against a live server, with data: every page of the navigation fits its viewport
at 1280 px and at 375 px (a card with many line items, a long audit trail), and POS Mode sells, takes a
payment and reverses it from the keyboard, while its refusals (no permission, a site not the account's, too
little balance) change nothing. One browser and one server for the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from giftledger.domain.permissions import Role
from giftledger.services import audit
from giftledger.services.context import Services
from tests.dashboard.browser import SCREENSHOTS, Dashboard, new_demo, off_loop, unchanged, with_services
from tests.dashboard.helpers import PASSWORD, person, redeem, sell, site_ids, till
from tests.support import Demo, LiveServer, snapshot

WIDTHS = (1280, 375)
REDEMPTIONS = 40  # line items on one card
AUDIT_RECORDS = 60


@dataclass(frozen=True)
class Data:
    demo: Demo
    owner: str  # emails
    staff: str
    busy_card_id: int
    order_id: int
    site_id: int


def prepare(database_url: str) -> Data:
    demo = new_demo(database_url)

    async def work(services: Services) -> Data:
        owner = await person(services, demo, Role.STORE_OWNER)
        staff = await person(services, demo, Role.FOH_STAFF)
        pos = await till(services, demo)
        card = demo.card_references[0]
        order = await sell(
            services, pos, demo, card, 100_000, receipt_email="a.very.long.receipt.address.for.wrapping@example.com"
        )
        for _ in range(REDEMPTIONS):
            await redeem(services, pos, demo, card, 125)
        for index in range(AUDIT_RECORDS):
            await audit.record_change(
                services,
                owner,
                operation="dashboard.site.edit",
                outcome=audit.ACCEPTED,
                client_address="203.0.113.250",
                detail={"name": f"A rather long site name for row {index}", "reference": f"REF-{index:04d}"},
            )
        sites = await site_ids(services, demo)
        return Data(demo, owner.name, staff.name, order.line_items[0].item.card_id, order.order.id, min(sites.values()))

    data: Data = with_services(database_url, work)
    return data


@pytest.fixture(scope="module")
def data(server: LiveServer) -> Data:
    return prepare(server.database_url)


@pytest.fixture
def owner(browser: Browser, server: LiveServer, data: Data) -> Iterator[Dashboard]:
    board = Dashboard(browser, server.url, "daily")
    board.log_in(data.owner, PASSWORD)
    yield board
    board.close()


def first_screen(board: Dashboard, name: str) -> None:
    """A screenshot of what the viewport shows (artifacts/screenshots/, to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    board.page.screenshot(path=str(SCREENSHOTS / f"{board.label}-{name}.png"))


# The page's width, and (when it is wider than the viewport) the first elements that stick out, to say why.
OVERFLOW = """() => {
  const out = e => e.getBoundingClientRect().right > innerWidth + 1;
  const culprits = [...document.querySelectorAll("body *")].filter(e => out(e) && !out(e.parentElement));
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "");
  return [document.documentElement.scrollWidth, innerWidth, culprits.slice(0, 6).map(name)];
}"""


def test_every_page_fits_at_1280_and_375(owner: Dashboard, data: Data) -> None:
    page = owner.page
    links = page.locator('nav[aria-label="Main"] a').evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "/pos" in links and "/settings/time-zone" in links and "/settings/audit" in links
    extra = [
        f"/cards/{data.busy_card_id}",
        f"/orders/{data.order_id}",
        f"/pos/{data.site_id}",
        "/settings/integrations/60",
        "/account/password",
        "/accounts",
    ]
    too_wide = []
    for path in [*links, *extra]:
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        page.goto(path, wait_until="domcontentloaded")
        for width in WIDTHS:  # the same page, laid out again at each width
            page.set_viewport_size({"width": width, "height": 900})
            scroll, inner, sticking_out = page.evaluate(OVERFLOW)
            if scroll > inner:
                too_wide.append((width, path, scroll, sticking_out))
    assert too_wide == []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in (("card", f"/cards/{data.busy_card_id}"), ("audit", "/settings/audit")):
            page.goto(path, wait_until="domcontentloaded")
            first_screen(owner, f"{name}-{width}")
    page.goto("/")  # on a phone the first screen is the page's content, the menu one link away
    assert page.get_by_role("heading", level=1).bounding_box()["y"] < 200  # type: ignore[index]
    page.get_by_role("link", name="Menu").click()
    assert page.get_by_role("navigation", name="Main").is_visible()


def test_copy_buttons_beside_a_password_shown_once(owner: Dashboard) -> None:
    """Progressive enhancement: the script adds a Copy button beside the username and the password (the page
    shows both without it: tests/dashboard/test_http.py reads them from the HTML alone)."""
    owner.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = owner.page
    page.goto("/settings/integrations/61")
    page.get_by_role("button", name="Create new user").click()
    password = page.get_by_test_id("api-password").inner_text()
    copy = page.get_by_role("button", name="Copy the password")
    copy.click()
    expect(page.get_by_role("button", name="Copy the password copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == password
    assert page.get_by_role("button", name="Copy the username").count() == 1


def test_pos_mode_sells_takes_a_payment_and_reverses_it(owner: Dashboard, data: Data, server: LiveServer) -> None:
    page = owner.page
    page.set_viewport_size({"width": 1024, "height": 768})  # a tablet held sideways
    card = data.demo.card_references[1]
    page.goto("/pos")
    first_site = page.locator(f'a[href="/pos/{data.site_id}"]')
    expect(first_site).to_be_focused()  # the first site has the focus: Enter opens its till
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/pos/{data.site_id}")
    sell_form = page.locator(f'form[action="/pos/{data.site_id}/sell"]')
    sell_form.get_by_label("Card number").fill(card)
    sell_form.get_by_label("Value (£)").fill("25")
    sell_form.get_by_label("Value (£)").press("Enter")
    receipt = page.get_by_test_id("pos-receipt")
    assert receipt.get_by_role("heading").inner_text() == "Done: Sale of £25.00"
    assert page.get_by_test_id("pos-balance").inner_text() == "£25.00"
    owner.shot("pos-sold")

    page.get_by_role("link", name="Next customer").click()
    expect(page.locator("#balance-card")).to_be_focused()  # ready for the next card
    pay_form = page.locator(f'form[action="/pos/{data.site_id}/pay"]')
    pay_form.get_by_label("Card number").fill(card)
    pay_form.get_by_label("Amount to take (£)").fill("7.50")
    pay_form.get_by_label("Amount to take (£)").press("Enter")
    assert receipt.get_by_role("heading").inner_text() == "Done: Redemption of £7.50"
    assert page.get_by_test_id("pos-balance").inner_text() == "£17.50"

    page.get_by_role("button", name="Reverse this redemption").click()
    assert receipt.get_by_role("heading").inner_text() == "Done: Reversal of £7.50"
    assert page.get_by_test_id("pos-balance").inner_text() == "£25.00"
    assert page.get_by_role("button", name="Reverse this reversal").count() == 0
    owner.shot("pos-reversed")
    after = off_loop(snapshot, server.database_url, data.demo.account_id)
    assert (after.balances[card], after.statuses[card]) == (2500, "active")


def test_pos_mode_refusals_change_nothing(browser: Browser, server: LiveServer, data: Data) -> None:
    staff = Dashboard(browser, server.url, "daily-staff")
    try:
        staff.log_in(data.staff, PASSWORD)
        page = staff.page
        page.set_viewport_size({"width": 375, "height": 800})
        card = data.demo.card_references[0]  # £950.00 left: £1,000 sold, 40 payments of £1.25
        with unchanged(server.database_url, data.demo.account_id):
            page.goto(f"/pos/{data.site_id}")
            assert page.get_by_role("heading", name="Sell a card").count() == 0  # Front of House Staff redeem only
            assert page.get_by_role("heading", name="Top up").count() == 0
            token = staff.csrf_token()
            refused = page.request.post(
                f"/pos/{data.site_id}/sell",
                form={
                    "csrf_token": token,
                    "card_reference": data.demo.card_references[2],
                    "product_id": "1",
                    "amount": "5",
                },
                max_redirects=0,
            )
            assert refused.status == 403
            pay_form = page.locator(f'form[action="/pos/{data.site_id}/pay"]')
            pay_form.get_by_label("Card number").fill(card)
            pay_form.get_by_label("Amount to take (£)").fill("950.01")
            pay_form.get_by_label("Amount to take (£)").press("Enter")
            assert page.get_by_test_id("pos-refusal").locator("p").all_inner_texts() == [
                "The card's balance is less than this amount. Nothing was taken."
            ]
            first_screen(staff, "pos-refused")
            page.goto("/pos/999999999")
            assert "This site is not one of this account's sites." in page.locator("main").inner_text()
            wrong_site = page.request.post(
                "/pos/999999999/pay", form={"csrf_token": token, "card_reference": card, "amount": "1"}
            )
            assert wrong_site.status == 404
    finally:
        staff.close()
