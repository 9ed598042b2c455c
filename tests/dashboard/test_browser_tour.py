"""The rest of the dashboard in a real browser: the back office a Store Owner uses after set-up
(manual adjustment, reversal, orders, reports export, team, switching accounts), on both databases."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from giftledger.services import setup
from giftledger.services.context import Services
from tests.api import documents
from tests.dashboard.browser import TIMESTAMP, Dashboard, new_demo, signed_in, unchanged, with_services
from tests.dashboard.helpers import invitation_path
from tests.support import Api, LiveServer


@pytest.fixture
def dashboard(server: LiveServer, browser: Browser) -> Iterator[Dashboard]:
    board = Dashboard(browser, server.url, "tour")
    yield board
    board.close()


def sell(api: Api, account_id: int, product_id: int, epos: str, card: str, value: int) -> None:
    item = {
        "fulfilment_method_id": 3,
        "product_id": product_id,
        "card_reference": card,
        "custom_price_modifier_value": value,
    }
    body = api.call(
        documents.CREATE_ORDER,
        {
            "account_id": account_id,
            "merchant_id": 60,
            "order_items": [item],
            "currency": "GBP",
            "group_fulfilment": True,
            "total": value,
            "sales_channel_id": 3,
            "unit_epos_reference": epos,
            "merchant_transaction_reference": f"sale-{uuid.uuid4().hex[:10]}",
        },
    )
    assert "errors" not in body, body


def test_back_office_tour(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    other = new_demo(server.database_url)

    async def join_other(services: Services) -> None:
        await setup.add_team_member(
            services,
            setup.operator(other.account_id),
            email=demo.owner_email,
            name="x",
            role="store_manager",
            password="",
        )

    with_services(server.database_url, join_other)
    till = signed_in(server, demo)
    card = demo.card_references[0]
    sell(till, demo.account_id, demo.product_id, demo.epos, card, 4000)
    page = dashboard.page

    page.goto("/login")
    dashboard.shot("login")
    page.get_by_label("Email").fill(demo.owner_email)
    page.get_by_label("Password").fill(demo.owner_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/accounts\?next=%2F$"))  # in two accounts: the owner chooses one
    dashboard.shot("choose-account")
    page.locator(f'button[data-account-id="{demo.account_id}"]').click()
    page.wait_for_url(re.compile(r".*/$"))
    assert dashboard.account_id() == demo.account_id

    # Cards: find the card, take £12.50 off by hand with a reason, at Leeds.
    dashboard.nav("Cards")
    page.get_by_label("Card number or alias").fill("0000")
    page.get_by_role("button", name="Find card").click()
    assert page.locator("#card_reference-error").inner_text() == (
        "No card found with this number or alias in this account."
    )
    dashboard.shot("cards-not-found")
    page.get_by_label("Card number or alias").fill(card)
    page.get_by_role("button", name="Find card").click()
    page.get_by_label("Take value off (debit)").check()
    page.get_by_label("Amount (£)").fill("12.50")
    page.get_by_label("Site").select_option(label="Leeds")
    # (the block and replace forms have a Reason list too)
    page.get_by_role("textbox", name="Reason").fill("Voucher torn; part refunded in cash")
    page.get_by_role("button", name="Adjust balance").click()
    assert dashboard.notice() == "Balance adjusted."
    assert page.get_by_test_id("balance").inner_text() == "£27.50"
    rows = dashboard.rows("#line-items")
    assert all(TIMESTAMP.match(row[8]) for row in rows)
    assert [row[1:8] for row in rows] == [
        ["Sale", "£40.00", "£40.00", "£0.00", "Soho", "PointOne", rows[0][7]],
        [
            "Manual Adjustment\nVoucher torn; part refunded in cash",
            "-£12.50",
            "-£12.50",
            "£0.00",
            "Leeds",
            "Dashboard",
            "—",
        ],
    ]
    assert rows[1][9] == demo.owner_email
    dashboard.shot("card-adjusted")

    # Reverse the manual adjustment after confirming; the page then marks it reversed.
    page.get_by_role("link", name=f"Reverse line item {rows[1][0]}").click()
    dashboard.shot("reverse-confirm")
    page.get_by_role("button", name="Reverse line item").click()
    assert dashboard.notice() == "Line item reversed."
    assert page.get_by_test_id("balance").inner_text() == "£40.00"
    after = dashboard.rows("#line-items")
    assert after[1][-1] == f"Reversed by {after[2][0]}"
    assert [after[2][1], after[2][2], after[2][5]] == [f"Reversal of {rows[1][0]}", "£12.50", "Leeds"]

    # Orders: the till's order with its line item.
    dashboard.nav("Orders")
    [order] = dashboard.rows("#orders")
    assert order[2:8] == ["Soho", "PointOne", order[4], "1", "£40.00", "Completed"]
    dashboard.shot("orders")
    page.get_by_role("link", name=order[0]).click()
    assert [row[1:4] for row in dashboard.rows("#order-line-items")] == [["Sale", card, "£40.00"]]
    dashboard.shot("order")

    # Reports: the export downloads as a CSV with every line item.
    dashboard.nav("Reports")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download balance adjustments (CSV)").click()
    content = Path(download.value.path()).read_text(encoding="utf-8")
    table = list(csv.reader(io.StringIO(content)))
    assert table[0][:5] == ["Card ID", "Card Unique Code", "Line Item ID", "Line Item Type", "Value"]
    assert [(row[1], row[3], row[4]) for row in table[1:]] == [
        (card, "Sale", "40.00"),
        (card, "Manual Adjustment", "-12.50"),
        (card, "Reversal", "12.50"),
    ]
    assert re.fullmatch(
        r"balance-adjustments-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.csv", download.value.suggested_filename
    )

    # Team: invite a Front of House manager; the link is shown once and the person joins through it.
    dashboard.nav("Team")
    page.get_by_role("button", name="Invite").click()
    assert page.locator("#name-error").inner_text() == "This field is required"
    assert page.locator("#role-error").inner_text() == "This field is required"
    dashboard.shot("team-invalid")
    email = f"fohm-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Name").fill("Fran Floor")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Role", exact=True).select_option(label="Front of House manager")
    page.get_by_role("button", name="Invite").click()
    assert page.get_by_test_id("invite-email").inner_text() == email
    dashboard.shot("team-invited")
    link = with_services(server.database_url, lambda s: invitation_path(s, demo.account_id, email))  # emailed
    page.get_by_role("link", name="Back to the team").click()
    assert [r[:2] for r in dashboard.rows("#members")] == [["Demo Owner You", demo.owner_email]]
    assert [r[:3] for r in dashboard.rows("#invitations")] == [["Fran Floor", email, "Front of House manager"]]
    dashboard.shot("team")

    # Switch to the other account this owner belongs to (as Store Manager there).
    page.get_by_label("Switch account").select_option(value=str(other.account_id))
    page.get_by_role("button", name="Switch").click()
    assert dashboard.notice() == "Switched account."
    assert dashboard.account_id() == other.account_id
    nav = page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts()
    assert "Integrations" not in nav and "Team" not in nav and "Site Settings" in nav
    dashboard.shot("switched-account")

    # The new manager opens the link, chooses a password, joins, and later changes the password.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    page.goto(link)
    dashboard.shot("invitation")
    password = "fran-chose-this"
    page.get_by_label("Password").fill(password)
    page.get_by_label("Your name").fill("Fran Floor")
    page.get_by_role("button", name="Accept and sign in").click()
    assert dashboard.notice() == "Invitation accepted: you are now a member of this account."
    assert dashboard.account_id() == demo.account_id
    assert page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts() == [
        "Overview",
        "POS Mode",
        "Cards",
        "Orders",
        "In-Store Gift",
    ]
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password").fill("short")
    with unchanged(server.database_url, demo.account_id):
        page.get_by_role("button", name="Change password").click()
    assert page.locator("#new_password-error").inner_text() == "Must be at least 10 characters."
    dashboard.shot("password-invalid")
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password").fill("fran-floor-2026")
    page.get_by_role("button", name="Change password").click()
    assert dashboard.notice() == "Password changed. Your other sessions have ended."
