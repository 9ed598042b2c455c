"""The set-up guides in a real browser (headless chromium):

1. PointOne: add a site, create an API user, map the site, then sell and redeem over GraphQL with the
   credentials read from the page; the card's history and the site report show both.
2. Polaris: read the product ID and the Account ID from the pages, create an API user, enter store IDs,
   then balance check, redeem and reverse over GraphQL.
3. Front of House Staff cannot reach Settings > Integrations: the page and the form posts both refuse.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from giftledger.domain.catalogue import POINTONE, POLARIS
from giftledger.services import setup
from giftledger.services.context import Services
from tests.api import documents
from tests.dashboard.browser import TIMESTAMP, Dashboard, new_demo, unchanged, with_services
from tests.support import Api, Demo, LiveServer

FORBIDDEN = "You do not have permission to do this."


@pytest.fixture
def dashboard(server: LiveServer, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Dashboard]:
    name = request.node.name.split("[")[0].removeprefix("test_")
    board = Dashboard(browser, server.url, name)
    yield board
    board.close()


def ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_api_user(board: Dashboard, merchant: str) -> tuple[str, str]:
    """Settings > Integrations > merchant > Create new user; returns the username and password shown once."""
    page = board.page
    board.nav("Integrations")
    page.get_by_role("link", name=merchant).click()
    page.get_by_role("heading", name=merchant, level=1).wait_for()
    page.get_by_role("button", name="Create new user").click()
    username = page.get_by_test_id("api-username").inner_text()
    password = page.get_by_test_id("api-password").inner_text()
    board.shot(f"api-user-created-{merchant.lower()}")
    page.get_by_label("I have noted this password").check()
    page.get_by_role("button", name="Done").click()
    assert board.notice() == "API user created."
    return username, password


def sell(api: Api, *, account_id: int, product_id: int, merchant_id: int, epos: str, card: str, value: int) -> Any:
    return api.call(
        documents.CREATE_ORDER,
        {
            "account_id": account_id,
            "merchant_id": merchant_id,
            "order_items": [
                {
                    "fulfilment_method_id": 3,
                    "product_id": product_id,
                    "card_reference": card,
                    "custom_price_modifier_value": value,
                }
            ],
            "currency": "GBP",
            "group_fulfilment": True,
            "total": value,
            "sales_channel_id": 3,
            "unit_epos_reference": epos,
            "merchant_transaction_reference": ref("sale"),
        },
    )


def adjust(api: Api, *, merchant_id: int, epos: str, card: str, value: int, reference: str) -> Any:
    return api.call(
        documents.ADJUSTMENT,
        {
            "currency": "GBP",
            "card_reference": card,
            "value": value,
            "unit_epos_reference": epos,
            "merchant_id": merchant_id,
            "merchant_transaction_reference": reference,
        },
    )


def balance(api: Api, card: str) -> int:
    body = api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    assert "errors" not in body, body
    [found] = body["data"]["Cards"]["data"]
    value: int = found["balance"]
    return value


def logged_in_api(server: LiveServer, username: str, password: str) -> Api:
    api = Api(server)
    response = api.login(username, password)
    assert response.status_code == 200 and api.token, response.text
    return api


def find_card(board: Dashboard, number: str) -> None:
    board.nav("Cards")
    board.page.get_by_label("Card number or alias").fill(number)
    board.page.get_by_role("button", name="Find card").click()
    board.page.get_by_role("heading", name=f"Card {number}").wait_for()


def history(board: Dashboard) -> list[list[str]]:
    rows = board.rows("#line-items")
    for row in rows:
        assert TIMESTAMP.match(row[8]), row
    # leave out the time column: never assert wall-clock times
    return [row[:8] + row[9:] for row in rows]


def test_pointone_set_up(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    page = dashboard.page
    dashboard.log_in(demo.owner_email, demo.owner_password)
    assert dashboard.account_id() == demo.account_id
    dashboard.shot("overview")

    # Step 1: Settings > Site Settings, add the site's name, address and reference, click Add.
    dashboard.nav("Site Settings")
    page.get_by_label("Site name").fill("Brighton")
    page.get_by_label("Address").fill("3 North Street, Brighton")
    page.get_by_label("Reference").fill("BTN-01")
    page.get_by_role("button", name="Add", exact=True).click()
    assert dashboard.notice() == "Site added."
    sites = dashboard.rows("#sites")
    assert [row[:3] for row in sites] == [
        ["Soho", "1 Dean Street, London", "SOHO"],
        ["Leeds", "2 Briggate, Leeds", "LEEDS"],
        ["Brighton", "3 North Street, Brighton", "BTN-01"],
    ]
    dashboard.shot("site-settings")

    # Step 2: Settings > Integrations > PointOne > Create new user.
    username, password = create_api_user(dashboard, "PointOne")
    assert username.startswith("pointone-") and len(password) == 24
    listed = dashboard.rows("#api-users")
    assert [row[0] for row in listed] == [demo.api_username, username]
    assert all(TIMESTAMP.match(row[1]) for row in listed)
    assert page.get_by_test_id("api-password").count() == 0  # never shown again

    # Step 3: Site Mapping: a unique reference per site, saved together.
    assert page.get_by_label("Soho").input_value() == "test"
    page.get_by_label("Brighton").fill("pointone-brighton")
    page.get_by_role("button", name="Save changes").click()
    assert dashboard.notice() == "Site mapping saved."
    assert [page.get_by_label(name).input_value() for name in ("Soho", "Leeds", "Brighton")] == [
        "test",
        demo.unit_epos_references[1],
        "pointone-brighton",
    ]
    dashboard.shot("integration-pointone")

    # Steps 4 and 5: the till, configured with those details, sells a card and redeems part of it.
    till = logged_in_api(server, username, password)
    card = demo.card_references[0]
    sold = sell(
        till,
        account_id=dashboard.account_id(),
        product_id=demo.product_id,
        merchant_id=POINTONE,
        epos="pointone-brighton",
        card=card,
        value=2500,
    )
    assert "errors" not in sold, sold
    [sale] = sold["data"]["createOrder"]["LineItems"]
    redemption_ref = ref("redeem")
    redeemed = adjust(
        till, merchant_id=POINTONE, epos="pointone-brighton", card=card, value=-1000, reference=redemption_ref
    )
    assert "errors" not in redeemed, redeemed
    assert redeemed["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 1500
    redemption_id = redeemed["data"]["createBalanceAdjustment"]["id"]
    sale_ref = sale["Transaction"]["merchant_transaction_reference"]

    # The card's history in the dashboard shows both, at Brighton, by PointOne, with the till's references.
    find_card(dashboard, card)
    assert page.get_by_test_id("balance").inner_text() == "£15.00"
    assert page.get_by_test_id("tender").inner_text() == "£15.00"
    assert page.get_by_test_id("discount").inner_text() == "£0.00"
    assert history(dashboard) == [
        [str(sale["id"]), "Sale", "£25.00", "£25.00", "£0.00", "Brighton", "PointOne", sale_ref, username, "Reverse"],
        [
            str(redemption_id),
            "Redemption",
            "-£10.00",
            "-£10.00",
            "£0.00",
            "Brighton",
            "PointOne",
            redemption_ref,
            username,
            "Reverse",
        ],
    ]
    dashboard.shot("card-history")

    # The site report (today is inside the default range) shows the sale and the redemption at Brighton.
    dashboard.nav("Reports")
    report = dashboard.rows("#site-report")
    assert report == [
        ["Brighton", "1", "£25.00", "1", "£10.00"],
        ["Leeds", "0", "£0.00", "0", "£0.00"],
        ["Soho", "0", "£0.00", "0", "£0.00"],
    ]
    assert dashboard.rows("#site-report", "tfoot") == [["Total", "1", "£25.00", "1", "£10.00"]]
    assert page.get_by_test_id("liability").inner_text() == "£15.00"
    assert page.locator("svg.bar-chart rect.bar").count() == 6
    dashboard.shot("reports")


def test_polaris_set_up(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    page = dashboard.page
    dashboard.log_in(demo.owner_email, demo.owner_password)

    # Step 2: the product ID from Shop > In-Store Gift and the Account ID from the sidebar.
    dashboard.nav("In-Store Gift")
    product_id = int(page.get_by_test_id("product-id").inner_text())
    account_id = dashboard.account_id()
    assert (product_id, account_id) == (demo.product_id, demo.account_id)
    assert [row[0] for row in dashboard.rows("#price-modifiers")] == [str(i) for i in demo.price_modifier_ids]
    dashboard.shot("in-store-gift")
    username, password = create_api_user(dashboard, "Polaris")
    assert username.startswith("polaris-")

    # Step 4: paste in each store ID to its site, and save.
    page.get_by_label("Soho").fill("POL-1001")
    page.get_by_label("Leeds").fill("POL-1002")
    page.get_by_role("button", name="Save changes").click()
    assert dashboard.notice() == "Site mapping saved."
    dashboard.shot("integration-polaris")

    # Step 5: redeem, reverse and check the balance from a Polaris till.
    till = logged_in_api(server, username, password)
    card = demo.card_references[0]
    sold = sell(
        till, account_id=account_id, product_id=product_id, merchant_id=POLARIS, epos="POL-1001", card=card, value=5000
    )
    assert "errors" not in sold, sold
    assert balance(till, card) == 5000
    redemption_ref = ref("polaris")
    redeemed = adjust(till, merchant_id=POLARIS, epos="POL-1002", card=card, value=-2000, reference=redemption_ref)
    assert "errors" not in redeemed, redeemed
    redemption_id = redeemed["data"]["createBalanceAdjustment"]["id"]
    assert balance(till, card) == 3000
    reversal_ref = redemption_ref + "-REVERSAL"
    reversed_ = till.call(
        documents.REVERSAL,
        {
            "ReversalItems": [{"line_item_id": redemption_id, "shipping_refund": False}],
            "merchant_transaction_reference": reversal_ref,
            "merchant_id": POLARIS,
            "unit_epos_reference": "POL-1002",
        },
    )
    assert "errors" not in reversed_, reversed_
    assert [i["value"] for i in reversed_["data"]["createReversal"]["LineItems"]] == [2000]
    assert balance(till, card) == 5000

    # The dashboard shows the three line items at the mapped sites, the redemption marked reversed.
    find_card(dashboard, card)
    rows = history(dashboard)
    assert [row[1:8] for row in rows] == [
        ["Sale", "£50.00", "£50.00", "£0.00", "Soho", "Polaris", rows[0][7]],
        ["Redemption", "-£20.00", "-£20.00", "£0.00", "Leeds", "Polaris", redemption_ref],
        [f"Reversal of {redemption_id}", "£20.00", "£20.00", "£0.00", "Leeds", "Polaris", reversal_ref],
    ]
    assert rows[1][-1] == f"Reversed by {rows[2][0]}"
    assert page.get_by_test_id("balance").inner_text() == "£50.00"


def add_staff(server: LiveServer, demo: Demo, role: str) -> tuple[str, str]:
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    password = "staff-password-" + uuid.uuid4().hex[:8]

    async def work(services: Services) -> None:
        await setup.add_team_member(
            services, setup.operator(demo.account_id), email=email, name="Sam Staff", role=role, password=password
        )

    with_services(server.database_url, work)
    return email, password


def api_users(server: LiveServer, demo: Demo) -> list[tuple[int, str]]:
    async def work(services: Services) -> list[tuple[int, str]]:
        rows = await setup.list_api_users(services, setup.operator(demo.account_id))
        return [(r.merchant_id, r.username) for r in rows]

    result: list[tuple[int, str]] = with_services(server.database_url, work)
    return result


def mapping(server: LiveServer, demo: Demo, merchant_id: int) -> dict[int, str]:
    async def work(services: Services) -> dict[int, str]:
        return await setup.site_mapping(services, setup.operator(demo.account_id), merchant_id)

    result: dict[int, str] = with_services(server.database_url, work)
    return result


def test_front_of_house_staff_cannot_reach_integrations(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    email, password = add_staff(server, demo, "foh_staff")
    page = dashboard.page
    dashboard.log_in(email, password)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link").all_inner_texts() == ["Overview", "POS Mode", "Cards"]
    dashboard.shot("front-of-house-overview")

    for path in ("/settings/integrations", f"/settings/integrations/{POINTONE}"):
        response = page.goto(path)
        assert response is not None and response.status == 403
        assert page.get_by_test_id("error-message").inner_text() == FORBIDDEN
    dashboard.shot("front-of-house-refused")

    # The forms refuse too, even with a valid session and CSRF token.
    token = dashboard.csrf_token()
    users_before = api_users(server, demo)
    mapping_before = mapping(server, demo, POINTONE)
    site_id = next(iter(mapping_before))
    posts: list[tuple[str, dict[str, str | float | bool]]] = [
        (f"/settings/integrations/{POINTONE}/api-users", {"csrf_token": token}),
        (f"/settings/integrations/{POINTONE}/site-mapping", {"csrf_token": token, f"site_{site_id}": "stolen"}),
        (f"/settings/integrations/{POINTONE}/api-users/noted", {"csrf_token": token, "noted": "yes"}),
    ]
    with unchanged(server.database_url, demo.account_id):
        for path, form in posts:
            reply = page.request.post(path, form=form, max_redirects=0)
            assert reply.status == 403, path
            assert FORBIDDEN in reply.text()
    assert api_users(server, demo) == users_before
    assert mapping(server, demo, POINTONE) == mapping_before
