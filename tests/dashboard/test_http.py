"""The dashboard over HTTP on both databases: cookies, CSRF, login refusals and throttling, permissions on
every form, validation messages next to their fields, and what the pages show."""

from __future__ import annotations

import html
import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from giftledger.dashboard import dashboard_routes
from giftledger.domain.catalogue import POINTONE, POLARIS
from giftledger.domain.permissions import Role
from giftledger.security_headers import DASHBOARD_HEADERS
from giftledger.services import account_settings, card_admin, setup
from giftledger.services.access import LOGIN_THROTTLED, log_in
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Services, operator
from tests.api import documents
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.helpers import PASSWORD, invitation_path, person, redeem, sell, site_ids, till
from tests.dashboard.web import Web, cookie_header, field_error, rows, text_of
from tests.support import LOGIN, Demo, new_demo

WRONG = "The email or password is incorrect."
EXPIRED = "This form has expired. Go back, reload the page and try again."
FORBIDDEN = "You do not have permission to do this."


async def owner_web(app: Starlette, services: Services, demo: Demo, role: Role = Role.STORE_OWNER) -> Web:
    web = Web(app)
    principal = await person(services, demo, role)
    response = await web.log_in(principal.name, PASSWORD)
    assert response.status_code == 303, response.text
    return web


async def settings_state(services: Services, demo: Demo) -> tuple[object, ...]:
    """Everything the settings forms can change, for checking that a refused post changed nothing."""
    op = setup.operator(demo.account_id)
    async with services.unit_of_work(operator(demo.account_id)) as uow:
        modifiers = await uow.catalogue.price_modifiers([demo.product_id])
    return (
        [(s.id, s.name, s.address, s.reference) for s in await setup.list_sites(services, op)],
        [(u.id, u.username) for u in await setup.list_api_users(services, op)],
        await setup.site_mapping(services, op, POINTONE),
        await setup.site_mapping(services, op, POLARIS),
        [(m.id, m.price, m.description) for m in modifiers],
    )


async def test_login_sets_a_hardened_session_cookie(app: Starlette, services: Services, demo: Demo) -> None:
    web = Web(app)
    page = await web.get("/login")
    assert page.status_code == 200
    login_cookie = cookie_header(page, "gl_login_csrf")
    assert "HttpOnly" in login_cookie and "SameSite=lax" in login_cookie and "Secure" not in login_cookie
    response = await web.post("/login", {"email": demo.owner_email, "password": demo.owner_password})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    session = cookie_header(response, "gl_session")
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
    assert "Secure" not in session  # plain http (development): a Secure cookie would never come back
    overview = await web.get("/")
    assert overview.status_code == 200
    for header, value in {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }.items():
        assert overview.headers[header] == value
    assert "default-src 'none'" in overview.headers["content-security-policy"]
    assert "script-src" not in overview.headers["content-security-policy"]  # no script may run at all
    assert "<script" not in overview.text

    secure = Web(app, https=True)
    await secure.get("/login")
    response = await secure.post("/login", {"email": demo.owner_email, "password": demo.owner_password})
    assert "Secure" in cookie_header(response, "gl_session")


async def test_every_dashboard_response_carries_its_policy(app: Starlette, services: Services, demo: Demo) -> None:
    """Every page a signed-in person can open without an id in its path, and the login page, redirects, a
    refused form and a missing page: each carries the dashboard's Content-Security-Policy (no script at all) and
    the other hardening headers, and no page holds a script (tests/security/test_content_security.py checks
    the templates themselves)."""
    pages = sorted(
        route.path
        for route in dashboard_routes(services)
        if isinstance(route, Route) and "GET" in (route.methods or ()) and "{" not in route.path
    )
    assert {"/", "/cards", "/reports", "/settings/sites", "/login"} <= set(pages)
    anonymous = Web(app)
    responses = {"GET /login": await anonymous.get("/login"), "GET /cards signed out": await anonymous.get("/cards")}
    web = await owner_web(app, services, demo)
    for path in pages:
        responses[f"GET {path}"] = await web.get(path)
    responses["GET a missing card"] = await web.get("/cards/999999999")
    responses["POST without its CSRF token"] = await web.post("/settings/sites", {"name": "x"}, csrf=False)
    responses["POST /logout"] = await web.post("/logout")
    assert responses["GET a missing card"].status_code == 404
    assert responses["POST without its CSRF token"].status_code == 403
    for label, response in responses.items():
        assert response.status_code < 500, label
        for name, value in DASHBOARD_HEADERS.items():
            assert response.headers.get(name) == value, f"{label}: {name}"
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "<script" not in response.text, label


async def test_login_refusals_do_not_say_whether_the_email_exists(app: Starlette, demo: Demo) -> None:
    replies = []
    for email, password in ((demo.owner_email, "wrong-password"), ("nobody@nowhere.example", demo.owner_password)):
        web = Web(app)
        await web.get("/login")
        response = await web.post("/login", {"email": email, "password": password})
        assert "gl_session" not in response.headers.get("set-cookie", "")
        found = re.search(r'<div class="error-summary" role="alert"><p>(.*?)</p>', response.text)
        assert found is not None
        replies.append((response.status_code, found.group(1)))
    assert replies == [(200, WRONG), (200, WRONG)]


async def test_login_form_needs_its_csrf_token(app: Starlette, demo: Demo) -> None:
    web = Web(app)
    response = await web.post("/login", {"email": demo.owner_email, "password": demo.owner_password}, csrf=False)
    assert response.status_code == 403 and EXPIRED in text_of(response.text)
    assert "gl_session" not in response.headers.get("set-cookie", "")
    await web.get("/login")
    forged = await web.post("/login", {"email": demo.owner_email, "password": demo.owner_password, "csrf_token": "x"})
    assert forged.status_code == 403 and "gl_session" not in forged.headers.get("set-cookie", "")


async def test_repeated_failures_throttle_logins(app: Starlette, services: Services, demo: Demo) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    web = Web(app)
    await web.get("/login")
    for _ in range(services.settings.login_failure_limit):
        response = await web.post("/login", {"email": staff.name, "password": "guess"})
        assert response.status_code == 200 and WRONG in response.text
    response = await web.post("/login", {"email": staff.name, "password": PASSWORD})
    assert response.status_code == 429 and LOGIN_THROTTLED in text_of(response.text)
    assert "gl_session" not in response.headers.get("set-cookie", "")


async def test_every_form_needs_the_session_csrf_token(app: Starlette, services: Services, demo: Demo) -> None:
    web = await owner_web(app, services, demo)
    before = await settings_state(services, demo)
    for token in (None, "forged", ""):
        data = {"name": "Forged site"} | ({"csrf_token": token} if token is not None else {})
        response = await web.post("/settings/sites", data, csrf=False)
        assert response.status_code == 403 and EXPIRED in text_of(response.text)
    assert await settings_state(services, demo) == before
    added = await web.post("/settings/sites", {"name": "Real site"})
    assert (added.status_code, added.headers["location"]) == (303, "/settings/sites?done=site-added")


async def test_signed_out_browsers_are_sent_to_log_in(app: Starlette, services: Services, demo: Demo) -> None:
    web = Web(app)
    response = await web.get("/settings/sites?x=1")
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2Fsettings%2Fsites%3Fx%3D1")
    before = await settings_state(services, demo)
    response = await web.post("/settings/sites", {"name": "x", "csrf_token": "x"}, csrf=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert await settings_state(services, demo) == before

    signed_in = await owner_web(app, services, demo)
    response = await signed_in.post("/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    again = await signed_in.get("/")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")

    # after logging in, the browser goes where it was heading (same site only)
    back = Web(app)
    await back.get("/login?next=%2Freports")
    response = await back.post(
        "/login", {"email": demo.owner_email, "password": demo.owner_password, "next": "/reports"}
    )
    assert response.headers["location"] == "/reports"
    away = Web(app)
    await away.get("/login")
    response = await away.post(
        "/login", {"email": demo.owner_email, "password": demo.owner_password, "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/"


async def test_front_of_house_staff_is_refused_every_management_page_and_form(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    order = await sell(services, pos, demo, demo.card_references[0], 1000)
    card_id = order.line_items[0].card.card.id
    line_item = order.line_items[0].item.id
    web = await owner_web(app, services, demo, Role.FOH_STAFF)
    site = (await site_ids(services, demo))["Soho"]
    modifier = demo.price_modifier_ids[0]
    owner_id = (await setup.list_api_users(services, setup.operator(demo.account_id)))[0].id
    for path in (
        "/settings/sites",
        f"/settings/sites/{site}/edit",
        f"/settings/sites/{site}/delete",
        "/settings/integrations",
        f"/settings/integrations/{POINTONE}",
        f"/settings/integrations/{POINTONE}/api-users/{owner_id}/delete",
        "/settings/team",
        "/shop/in-store-gift",
        "/reports",
        "/reports/balance-adjustments.csv",
        "/orders",
        f"/orders/{order.order.id}",
        f"/cards/{card_id}/line-items/{line_item}/reverse",
    ):
        response = await web.get(path)
        assert response.status_code == 403, path
        assert FORBIDDEN in text_of(response.text), path
    before = await settings_state(services, demo)
    posts = [
        ("/settings/sites", {"name": "Mine"}),
        (f"/settings/sites/{site}", {"name": "Renamed"}),
        (f"/settings/sites/{site}/delete", {}),
        (f"/settings/integrations/{POINTONE}/api-users", {}),
        (f"/settings/integrations/{POINTONE}/api-users/{owner_id}/delete", {}),
        (f"/settings/integrations/{POINTONE}/site-mapping", {f"site_{site}": "mine"}),
        ("/settings/team", {"email": "friend@example.com", "name": "Friend", "role": "store_owner"}),
        ("/shop/in-store-gift/price-modifiers", {"price": "5.00", "description": "x"}),
        (f"/shop/in-store-gift/price-modifiers/{modifier}", {"price": "5.00", "description": "x"}),
        (f"/shop/in-store-gift/price-modifiers/{modifier}/delete", {}),
        (f"/cards/{card_id}/adjust", {"direction": "credit", "value": "5.00", "site_id": str(site), "reason": "x"}),
        (f"/cards/{card_id}/line-items/{line_item}/reverse", {}),
    ]
    with unchanged(database_url, demo.account_id):
        for path, data in posts:
            response = await web.post(path, data)
            assert response.status_code == 403, (path, response.status_code)
            assert FORBIDDEN in text_of(response.text), path
    assert await settings_state(services, demo) == before

    # what they may do: find a card and see its history, without the adjust form or reversal links
    card = await web.get(f"/cards/{card_id}")
    assert card.status_code == 200
    assert 'id="adjust"' not in card.text and "/reverse" not in card.text
    nav = re.findall(r'<nav aria-label="Main".*?</nav>', card.text, flags=re.S)[0]
    assert re.findall(r"<a [^>]*>([^<]+)</a>", nav) == ["Overview", "POS Mode", "Cards"]


async def test_validation_messages_sit_next_to_their_fields(app: Starlette, services: Services, demo: Demo) -> None:
    web = await owner_web(app, services, demo)
    before = await settings_state(services, demo)
    response = await web.post("/settings/sites", {"name": "  ", "address": "1 High St"})
    assert response.status_code == 400
    assert field_error(response.text, "name") == "This field is required"
    assert (
        'name="name" type="text" value="  " required aria-invalid="true" aria-describedby="name-error"' in response.text
    )
    assert 'value="1 High St"' in response.text  # what was typed is kept

    response = await web.post("/shop/in-store-gift/price-modifiers", {"price": "12.345", "description": "odd"})
    assert (
        response.status_code == 400 and field_error(response.text, "price") == "Enter an amount in pounds, like 12.50."
    )

    sites = await site_ids(services, demo)
    response = await web.post(
        f"/settings/integrations/{POLARIS}/site-mapping",
        {f"site_{sites['Soho']}": "STORE-1", f"site_{sites['Leeds']}": "STORE-1"},
    )
    assert response.status_code == 400
    assert field_error(response.text, f"site_{sites['Leeds']}") == "Each site needs its own reference."
    assert field_error(response.text, f"site_{sites['Soho']}") is None
    assert await settings_state(services, demo) == before


async def test_sites_are_added_edited_and_deleted_keeping_history(
    app: Starlette, services: Services, demo: Demo
) -> None:
    web = await owner_web(app, services, demo)
    response = await web.post("/settings/sites", {"name": "Bath", "address": "4 Abbey Green", "reference": "BTH"})
    assert response.headers["location"] == "/settings/sites?done=site-added"
    bath = (await site_ids(services, demo))["Bath"]
    page = await web.get(f"/settings/sites/{bath}/edit")
    assert 'value="4 Abbey Green"' in page.text
    response = await web.post(
        f"/settings/sites/{bath}", {"name": "Bath Spa", "address": "4 Abbey Green", "reference": "BTH"}
    )
    assert response.headers["location"] == "/settings/sites?done=site-saved"
    listing = await web.get("/settings/sites?done=site-saved")
    assert "Site saved." in text_of(listing.text)
    assert [row[:4] for row in rows(listing.text, "sites")][-1] == ["Bath Spa", "4 Abbey Green", "BTH", str(bath)]

    await setup.set_site_mapping(services, setup.operator(demo.account_id), POLARIS, {bath: "POL-9"})
    pos = await till(services, demo)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 900)
    polaris = await setup.create_api_user(services, setup.operator(demo.account_id), POLARIS)
    polaris_till = (
        await log_in(services, username=polaris.username, email=None, password=polaris.password, client_address="t")
    ).principal
    await adjust_balance(services, polaris_till, AdjustmentRequest(card, -400, "GBP", "POL-9", POLARIS, "r-1"))

    confirm = await web.get(f"/settings/sites/{bath}/delete")
    assert "Delete Bath Spa?" in text_of(confirm.text)
    response = await web.post(f"/settings/sites/{bath}/delete")
    assert response.headers["location"] == "/settings/sites?done=site-deleted"
    assert "Bath" not in (await site_ids(services, demo))
    card_id = await card_admin.find_card(services, setup.operator(demo.account_id), card)
    history = await web.get(f"/cards/{card_id}")
    assert [row[1:6] for row in rows(history.text, "line-items")] == [
        ["Sale", "£9.00", "£9.00", "£0.00", "Soho"],
        ["Redemption", "-£4.00", "-£4.00", "£0.00", "Bath Spa"],
    ]
    assert "Bath Spa" not in text_of((await web.get(f"/settings/integrations/{POLARIS}")).text)


async def test_api_user_password_is_shown_once_and_deleting_revokes_it(
    app: Starlette, services: Services, demo: Demo
) -> None:
    web = await owner_web(app, services, demo)
    created = await web.post(f"/settings/integrations/{POLARIS}/api-users")
    assert created.status_code == 200
    username = re.search(r'data-testid="api-username">([^<]+)<', created.text)
    password = re.search(r'data-testid="api-password">([^<]+)<', created.text)
    assert username and password
    response = await web.post(f"/settings/integrations/{POLARIS}/api-users/noted", {})
    assert response.headers["location"] == f"/settings/integrations/{POLARIS}?done=api-user-unconfirmed"
    tile = await web.get(f"/settings/integrations/{POLARIS}")
    assert password.group(1) not in tile.text
    [[listed, created_at, _]] = rows(tile.text, "api-users")
    assert listed == username.group(1) and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", created_at)

    graphql = app_graphql(app)
    login = await graphql.post(
        "/graphql", json={"query": LOGIN, "variables": {"username": listed, "password": password.group(1)}}
    )
    token = login.headers["X-Authorization"]
    products = {"query": documents.PRODUCTS, "variables": {"account_id": demo.account_id}}
    assert "errors" not in (await graphql.post("/graphql", json=products, headers={"Authorization": token})).json()

    api_user_id = re.search(r'data-api-user-id="(\d+)"', tile.text)
    assert api_user_id
    confirm = await web.get(f"/settings/integrations/{POLARIS}/api-users/{api_user_id.group(1)}/delete")
    assert f"Delete API user {listed}?" in text_of(confirm.text)
    response = await web.post(f"/settings/integrations/{POLARIS}/api-users/{api_user_id.group(1)}/delete")
    assert response.headers["location"] == f"/settings/integrations/{POLARIS}?done=api-user-deleted"
    refused = (await graphql.post("/graphql", json=products, headers={"Authorization": token})).json()
    assert refused["errors"][0]["message"] == "Unauthorized"
    assert "No API users yet." in text_of((await web.get(f"/settings/integrations/{POLARIS}")).text)
    await graphql.aclose()


def app_graphql(app: Starlette) -> httpx.AsyncClient:
    """A till talking to the same application's /graphql."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.9.9.9", 1)), base_url="http://api.test")


async def test_adjust_and_reverse_from_the_card_page(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 2000)
    redemption = await redeem(services, pos, demo, card, 500)
    web = await owner_web(app, services, demo)
    found = await web.post("/cards", {"card_reference": card})
    card_path = found.headers["location"]
    assert re.fullmatch(r"/cards/\d+", card_path)
    leeds = (await site_ids(services, demo))["Leeds"]

    with unchanged(database_url, demo.account_id):
        refused = await web.post(
            card_path + "/adjust", {"direction": "debit", "value": "15.01", "site_id": str(leeds), "reason": "x"}
        )
        assert refused.status_code == 409
        assert field_error(refused.text, "value") == (
            "Applying this transaction would have resulted in a negative balance. Transaction not applied."
        )
        refused = await web.post(
            card_path + "/adjust", {"direction": "", "value": "1,0.0.0", "site_id": "", "reason": ""}
        )
        assert refused.status_code == 400
        assert field_error(refused.text, "direction") == "Choose whether to take value off or add it."
        assert field_error(refused.text, "value") == "Enter an amount in pounds, like 12.50."

    response = await web.post(
        card_path + "/adjust", {"direction": "debit", "value": "£2.50", "site_id": str(leeds), "reason": "Spilt drink"}
    )
    assert response.headers["location"] == card_path + "?done=adjusted#history"
    page = await web.get(card_path)
    history = rows(page.text, "line-items")
    assert [[*row[1:6], row[9]] for row in history] == [
        ["Sale", "£20.00", "£20.00", "£0.00", "Soho", demo.api_username],
        ["Redemption", "-£5.00", "-£5.00", "£0.00", "Soho", demo.api_username],
        ["Manual Adjustment Spilt drink", "-£2.50", "-£2.50", "£0.00", "Leeds", history[2][9]],
    ]
    assert history[2][6] == "Dashboard" and history[2][9].startswith("store_owner-")

    reverse = f"{card_path}/line-items/{redemption.line_item.item.id}/reverse"
    confirm = await web.get(reverse)
    assert f"Reverse line item {redemption.line_item.item.id}?" in text_of(confirm.text)
    response = await web.post(reverse)
    assert response.headers["location"] == card_path + "?done=reversed#history"
    with unchanged(database_url, demo.account_id):
        again = await web.post(reverse)
        assert again.status_code == 409
        assert f"Line item {redemption.line_item.item.id} has already been reversed." in text_of(again.text)
    page = await web.get(card_path)
    assert re.search(r'data-testid="balance">£17.50<', page.text)


async def test_orders_reports_and_export_pages(app: Starlette, services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    order = await sell(services, pos, demo, demo.card_references[0], 2500, receipt_email="guest@example.com")
    await redeem(services, pos, demo, demo.card_references[0], 1000)
    web = await owner_web(app, services, demo)
    listing = await web.get("/orders")
    [row] = rows(listing.text, "orders")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[1])
    assert row[:1] + row[2:] == [
        f"#{order.order.id}", "Soho", "PointOne", order.order.merchant_transaction_reference or "", "1", "£25.00",
        "Completed", "guest@example.com",
    ]  # fmt: skip
    detail = await web.get(f"/orders/{order.order.id}")
    assert re.search(r'data-testid="receipt-email">guest@example.com<', detail.text)
    assert [(row[1], row[2], row[3]) for row in rows(detail.text, "order-line-items")] == [
        ("Sale", demo.card_references[0], "£25.00")
    ]
    assert (await web.get("/orders/999999999")).status_code == 404

    report = await web.get("/reports")
    assert rows(report.text, "site-report") == [
        ["Leeds", "0", "£0.00", "0", "£0.00"],
        ["Soho", "1", "£25.00", "1", "£10.00"],
    ]
    assert re.search(r'data-testid="liability">£15.00<', report.text)
    bad = await web.get("/reports?start=2026-13-01&end=yesterday")
    assert bad.status_code == 400
    assert field_error(bad.text, "start") == "Enter a date as YYYY-MM-DD."
    assert field_error(bad.text, "end") == "Enter a date as YYYY-MM-DD."

    export = await web.get("/reports/balance-adjustments.csv?start=2000-01-01&end=2000-01-31")
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        export.headers["content-disposition"]
        == 'attachment; filename="balance-adjustments-2000-01-01-to-2000-01-31.csv"'
    )
    assert export.text.startswith("Card ID,Card Unique Code,Line Item ID,Line Item Type,Value,")
    assert export.text.count("\r\n") == 1


async def test_team_invitation_gives_a_link_and_the_person_joins_by_accepting(
    app: Starlette, services: Services, demo: Demo
) -> None:
    web = await owner_web(app, services, demo)
    response = await web.post(
        "/settings/team", {"name": "Gina Guest", "email": "Gina@example.com", "role": "guest_service"}
    )
    assert response.status_code == 200
    path = await invitation_path(services, demo.account_id, "gina@example.com")
    team_page = await web.get("/settings/team")
    assert path not in team_page.text
    assert "gina@example.com" not in [row[1] for row in rows(team_page.text, "members")]
    assert [row[:3] for row in rows(team_page.text, "invitations")] == [
        ["Gina Guest", "gina@example.com", "Guest Service"]
    ]
    permissions = rows(team_page.text, "permissions")
    assert permissions[0] == ["Find cards, see balances and history", "✓", "✓", "✓", "✓", "✓", "✓"]

    gina = Web(app)
    shown = await gina.get(path)
    assert shown.status_code == 200
    assert f"Join {demo_account_name(team_page.text)}" in text_of(shown.text)
    short = await gina.post(path, {"password": "short", "name": "Gina G"})
    assert (short.status_code, field_error(short.text, "password")) == (400, "Must be at least 10 characters.")
    assert await gina.get("/") and (await gina.http.get("/")).status_code == 303  # not signed in
    after_refusal = await web.get("/settings/team")
    assert rows(after_refusal.text, "invitations") == rows(team_page.text, "invitations")
    assert rows(after_refusal.text, "members") == rows(team_page.text, "members")

    await gina.get(path)
    accepted = await gina.post(path, {"password": "gina-chose-this", "name": "Gina G"})
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/?done=invitation-accepted")
    home = await gina.get("/?done=invitation-accepted")
    assert "Invitation accepted" in text_of(home.text) and "Guest Service" in text_of(home.text)
    joined = await web.get("/settings/team")
    assert ["Gina G", "gina@example.com"] in [row[:2] for row in rows(joined.text, "members")]
    assert "Pending invitations" not in joined.text
    assert (await Web(app).get(path)).status_code == 404  # used up
    assert (await Web(app).log_in("gina@example.com", "gina-chose-this")).status_code == 303

    duplicate = await web.post("/settings/team", {"name": "Gina", "email": "GINA@example.com", "role": "foh_staff"})
    assert duplicate.status_code == 409
    assert field_error(duplicate.text, "email") == "This person is already a member of the account."


def demo_account_name(page: str) -> str:
    found = re.search(r'<h2 id="account-heading" class="account-name">([^<]+)<', page)
    assert found
    return html.unescape(found.group(1))


async def test_a_member_of_two_accounts_chooses_then_switches_in_the_sidebar(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other: Demo = off_loop(new_demo, database_url)
    manager = await person(services, demo, Role.STORE_MANAGER)
    await setup.add_team_member(
        services, setup.operator(other.account_id), email=manager.name, name="x", role="store_owner", password=""
    )
    web = Web(app)
    signed_in = await web.log_in(manager.name, PASSWORD)
    assert signed_in.headers["location"] == "/accounts?next=%2F"
    for path in ("/", "/cards", "/login"):  # no account is acted on before one is chosen
        waiting = await web.http.get(path)
        assert (waiting.status_code, waiting.headers["location"].split("?")[0]) == (303, "/accounts")
    chooser = await web.get("/accounts?next=%2Fcards")
    offered = sorted(int(i) for i in re.findall(r'data-account-id="(\d+)"', chooser.text))
    assert offered == sorted([demo.account_id, other.account_id])
    stranger: Demo = off_loop(new_demo, database_url)
    refused = await web.post("/accounts", {"action": "choose", "account_id": str(stranger.account_id), "next": "/"})
    assert refused.status_code == 403
    assert (await web.http.get("/")).headers["location"] == "/accounts?next=%2F"
    chosen = await web.post("/accounts", {"action": "choose", "account_id": str(other.account_id), "next": "/cards"})
    assert chosen.headers["location"] == "/cards"
    page = await web.get("/")
    shown = re.search(r'data-testid="account-id">(\d+)<', page.text)
    assert shown and int(shown.group(1)) == other.account_id
    response = await web.post("/account", {"account_id": str(demo.account_id)})
    assert response.headers["location"] == "/?done=switched"
    page = await web.get("/")
    shown = re.search(r'data-testid="account-id">(\d+)<', page.text)
    assert shown and int(shown.group(1)) == demo.account_id
    refused = await web.post("/account", {"account_id": str(stranger.account_id)})
    assert refused.status_code == 403


async def test_price_modifiers_are_added_edited_and_removed(app: Starlette, services: Services, demo: Demo) -> None:
    web = await owner_web(app, services, demo, Role.STORE_MANAGER)
    page = await web.get("/shop/in-store-gift")
    assert re.search(rf'data-testid="product-id">{demo.product_id}<', page.text)
    response = await web.post("/shop/in-store-gift/price-modifiers", {"price": "£1,000", "description": "Big one"})
    assert response.headers["location"] == "/shop/in-store-gift?done=modifier-added"
    page = await web.get("/shop/in-store-gift")
    added = re.findall(r'data-modifier-id="(\d+)"', page.text)[-1]
    first = str(demo.price_modifier_ids[1])
    response = await web.post(
        f"/shop/in-store-gift/price-modifiers/{first}", {"price": "12.5", "description": "£12.50"}
    )
    assert response.headers["location"] == "/shop/in-store-gift?done=modifier-saved"
    bad = await web.post(f"/shop/in-store-gift/price-modifiers/{first}", {"price": "", "description": "x"})
    assert bad.status_code == 400 and field_error(bad.text, "price") == "This field is required"
    response = await web.post(f"/shop/in-store-gift/price-modifiers/{demo.price_modifier_ids[0]}/delete")
    assert response.headers["location"] == "/shop/in-store-gift?done=modifier-removed"
    gift = await account_settings.in_store_gift(services, setup.operator(demo.account_id))
    assert [(str(m.id), m.price, m.description) for m in gift.price_modifiers] == [
        (first, 1250, "£12.50"),
        (str(demo.price_modifier_ids[2]), 2500, "£25"),
        (str(demo.price_modifier_ids[3]), 5000, "£50"),
        (added, 100000, "Big one"),
    ]
    gone = await web.post(f"/shop/in-store-gift/price-modifiers/{demo.price_modifier_ids[0]}/delete")
    assert gone.status_code == 404
    viewer = await owner_web(app, services, demo, Role.FINANCIAL_MANAGER)
    page = await viewer.get("/shop/in-store-gift")
    assert page.status_code == 200 and "Add price modifier" not in page.text and "/delete" not in page.text


async def test_every_form_is_bounded_before_it_is_parsed(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    """Issue 15 F4's class on the dashboard: a form larger than 64 kB is refused with 413 before it is parsed
    (Starlette alone would hold up to 500 fields of 1 MB each), signed in or not, and changes nothing."""
    sites_before = await setup.list_sites(services, operator(demo.account_id))
    web = await owner_web(app, services, demo)
    padding = "x" * 70_000
    with unchanged(database_url, demo.account_id):
        refused = await web.post("/settings/sites", {"name": "Huge", "address": padding})
        assert refused.status_code == 413 and "This form is too large." in text_of(refused.text)
        anonymous = Web(app)
        await anonymous.get("/login")
        login = await anonymous.post("/login", {"email": demo.owner_email, "password": padding})
        assert login.status_code == 413 and "This form is too large." in text_of(login.text)
        assert "gl_session" not in login.headers.get("set-cookie", "")
        just_under = await web.post("/settings/sites", {"name": "", "address": "x" * 60_000})
        assert just_under.status_code == 400  # read and parsed: refused for its missing name
    assert await setup.list_sites(services, operator(demo.account_id)) == sites_before
