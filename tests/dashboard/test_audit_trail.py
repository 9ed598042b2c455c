"""The dashboard's audit trail over HTTP on both databases: every form a signed-in person sends writes exactly
one audit record (who, account, site, operation, masked card, outcome, time, client address; no secret),
accepted or refused, and a refused one changes nothing else; the Store Owner's Audit Trail page (filters,
pages, CSV, failed logins, paused card look-ups) and nobody else's; the card search counting misses."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Route

from giftledger.app import create_app
from giftledger.dashboard import dashboard_routes, operations
from giftledger.domain import card_numbers
from giftledger.domain.catalogue import POINTONE, POLARIS
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import TEAM_ROLES, Role
from giftledger.services import account_settings, audit, guessing, setup, team
from giftledger.services.context import Principal, Services, operator
from giftledger.services.guessing import CARD_LOOKUPS_THROTTLED
from giftledger.storage.audit import AuditEventRow, AuditFilter, AuditLog, audit_events
from giftledger.storage.guessing import card_lookup_misses
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.helpers import PASSWORD, invitation_path, person, redeem, sell, site_ids, till
from tests.dashboard.test_http import settings_state
from tests.dashboard.web import Web, field_error, rows, text_of
from tests.security.helpers import record
from tests.support import Demo, new_demo
from tests.support import test_settings as settings_for

FORBIDDEN = "You do not have permission to do this."
NO_CARD_FOUND = "No card found with this number or alias in this account."  # the dashboard's words, not a till's
MISS_LIMIT = 3


def masked(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


async def latest_id(services: Services) -> int:
    async with services.db.transaction() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(audit_events.c.id), 0)))).scalar_one())


async def records(services: Services, account_id: int, after: int = 0) -> list[AuditEventRow]:
    """The account's audit records after record `after`, oldest first."""
    async with services.db.transaction() as conn:
        return await AuditLog(conn, account_id).after(AuditFilter(), after, 1000)


def detail(event: AuditEventRow) -> dict[str, Any] | None:
    return json.loads(event.detail) if event.detail else None


def summary(event: AuditEventRow) -> tuple[Any, ...]:
    return (event.operation, event.outcome, event.error_code, event.site_id, event.card, detail(event))


async def team_of(services: Services, demo: Demo) -> list[tuple[int, str]]:
    return [(m.user_id, m.email) for m in await team.team_members(services, setup.operator(demo.account_id))]


async def line_items_of(services: Services, demo: Demo, card_id: int) -> list[Any]:
    async with services.unit_of_work(operator(demo.account_id)) as uow:
        return await uow.ledger.for_card(card_id)


@dataclass
class Signed:
    web: Web
    principal: Principal


async def signed_in(app: Starlette, services: Services, demo: Demo, role: Role = Role.STORE_OWNER) -> Signed:
    web = Web(app)
    principal = await person(services, demo, role)
    response = await web.log_in(principal.name, PASSWORD)
    assert response.status_code == 303, response.text
    return Signed(web, principal)


def assert_by(events: list[AuditEventRow], who: Signed, account_id: int, since: datetime) -> None:
    """Every record is this person's, on this account, from their browser's address, timed now (UTC)."""
    for event in events:
        assert (event.account_id, event.actor_kind, event.actor_id, event.actor_name, event.client_address) == (
            account_id,
            "user",
            who.principal.id,
            who.principal.name,
            who.web.address,
        ), event
        assert event.created_at.utcoffset() == timedelta(0)
        assert since - timedelta(seconds=1) <= event.created_at <= datetime.now(UTC) + timedelta(seconds=1)


async def test_every_kind_of_accepted_change_writes_one_exact_record(
    app: Starlette, services: Services, demo: Demo
) -> None:
    started = datetime.now(UTC)
    marker = await latest_id(services)
    pos = await till(services, demo)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 2000)
    redemption = (await redeem(services, pos, demo, card, 500)).line_item.item
    owner = await signed_in(app, services, demo)
    web = owner.web
    sites = await site_ids(services, demo)
    soho, leeds = sites["Soho"], sites["Leeds"]

    assert (
        await web.post("/settings/sites", {"name": "Bath", "address": "4 Abbey Green", "reference": "BTH"})
    ).status_code == 303
    bath = (await site_ids(services, demo))["Bath"]
    await web.post(f"/settings/sites/{bath}", {"name": "Bath Spa", "address": "4 Abbey Green", "reference": "BTH"})
    await web.post(f"/settings/integrations/{POLARIS}/site-mapping", {f"site_{bath}": "POL-9"})
    await web.post(f"/settings/sites/{bath}/delete")

    created = await web.post(f"/settings/integrations/{POLARIS}/api-users")
    api_username = re.search(r'data-testid="api-username">([^<]+)<', created.text)
    api_password = re.search(r'data-testid="api-password">([^<]+)<', created.text)
    assert api_username and api_password
    [api_user] = await setup.list_api_users(services, setup.operator(demo.account_id), POLARIS)
    await web.post(f"/settings/integrations/{POLARIS}/api-users/{api_user.id}/delete")

    await web.post("/shop/in-store-gift/price-modifiers", {"price": "£7.50", "description": "Seven fifty"})
    gift = await account_settings.in_store_gift(services, setup.operator(demo.account_id))
    [modifier] = [m.id for m in gift.price_modifiers if m.description == "Seven fifty"]
    await web.post(f"/shop/in-store-gift/price-modifiers/{modifier}", {"price": "12.5", "description": "£12.50"})
    await web.post(f"/shop/in-store-gift/price-modifiers/{modifier}/delete")

    gina_email = f"gina-{uuid.uuid4().hex[:8]}@example.com"  # logins are global: a fresh person
    invited = await web.post("/settings/team", {"name": "Gina", "email": gina_email, "role": "guest_service"})
    assert invited.status_code == 200
    link_path = await invitation_path(services, demo.account_id, gina_email)
    [invitation] = await team.pending_invitations(services, setup.operator(demo.account_id))
    gina_web = Web(app)
    await gina_web.get(link_path)
    accepted = await gina_web.post(link_path, {"password": "gina-chose-this", "name": "Gina"})
    assert accepted.status_code == 303
    gina = next(m for m in await team_of(services, demo) if m[1] == gina_email)[0]
    await web.post(f"/settings/team/{gina}/role", {"role": "foh_staff"})
    await web.post(f"/settings/team/{gina}/remove")

    card_path = (await web.post("/cards", {"card_reference": card})).headers["location"]
    card_id = int(card_path.rsplit("/", 1)[1])
    adjusted = await web.post(
        card_path + "/adjust", {"direction": "debit", "value": "2.50", "site_id": str(leeds), "reason": "Spilt drink"}
    )
    assert adjusted.status_code == 303
    reversed_ = await web.post(f"{card_path}/line-items/{redemption.id}/reverse")
    assert reversed_.status_code == 303
    new_password = "a-brand-new-password"
    changed = await web.post("/account/password", {"current_password": PASSWORD, "new_password": new_password})
    assert changed.status_code == 303
    assert (await web.post("/logout")).status_code == 303

    events = await records(services, demo.account_id, marker)
    items = {i.type_id: i.id for i in await line_items_of(services, demo, card_id)}
    adjustment_id, reversal_id = items[LineItemType.MANUAL_ADJUSTMENT], items[LineItemType.REVERSAL]
    assert [summary(e) for e in events] == [
        ("dashboard.login", "accepted", None, None, None, None),
        (
            "dashboard.site.add",
            "accepted",
            None,
            bath,
            None,
            {"name": "Bath", "address": "4 Abbey Green", "reference": "BTH"},
        ),
        (
            "dashboard.site.edit",
            "accepted",
            None,
            bath,
            None,
            {"name": "Bath Spa", "address": "4 Abbey Green", "reference": "BTH"},
        ),
        (
            "dashboard.site_mapping.save",
            "accepted",
            None,
            None,
            None,
            {"merchant_id": POLARIS, "epos_references": [f"{bath}=POL-9"]},
        ),
        ("dashboard.site.delete", "accepted", None, bath, None, None),
        (
            "dashboard.api_user.create",
            "accepted",
            None,
            None,
            None,
            {"merchant_id": POLARIS, "api_user_id": api_user.id, "username": api_username.group(1)},
        ),
        (
            "dashboard.api_user.delete",
            "accepted",
            None,
            None,
            None,
            {"merchant_id": POLARIS, "api_user_id": api_user.id, "username": api_username.group(1)},
        ),
        (
            "dashboard.price_modifier.add",
            "accepted",
            None,
            None,
            None,
            {"price": 750, "description": "Seven fifty", "product_id": demo.product_id, "price_modifier_id": modifier},
        ),
        (
            "dashboard.price_modifier.edit",
            "accepted",
            None,
            None,
            None,
            {"price_modifier_id": modifier, "price": 1250, "description": "£12.50"},
        ),
        ("dashboard.price_modifier.remove", "accepted", None, None, None, {"price_modifier_id": modifier}),
        (
            "dashboard.team.invite",
            "accepted",
            None,
            None,
            None,
            {"email": gina_email, "name": "Gina", "role": "guest_service", "invitation_id": invitation.id},
        ),
        ("dashboard.invitation.accept", "accepted", None, None, None, None),
        (
            "dashboard.team.change_role",
            "accepted",
            None,
            None,
            None,
            {"role": "foh_staff", "user_id": gina, "email": gina_email, "previous_role": "guest_service"},
        ),
        ("dashboard.team.remove", "accepted", None, None, None, {"user_id": gina, "email": gina_email}),
        (
            "dashboard.card.adjust",
            "accepted",
            None,
            leeds,
            masked(card),
            {
                "amount": "2.50",
                "direction": "debit",
                "reason": "Spilt drink",
                "credit_as": "tender",
                "value": -250,
                "line_item_id": adjustment_id,
            },
        ),
        (
            "dashboard.card.reverse",
            "accepted",
            None,
            soho,
            masked(card),
            {"line_item_id": redemption.id, "reversal_line_item_id": reversal_id},
        ),
        ("dashboard.password.change", "accepted", None, None, None, None),
        ("dashboard.logout", "accepted", None, None, None, None),
    ]
    [joining] = [e for e in events if e.operation == "dashboard.invitation.accept"]
    assert (joining.actor_kind, joining.actor_id, joining.actor_name, joining.client_address) == (
        "user",
        gina,
        gina_email,
        gina_web.address,
    )
    assert_by([e for e in events if e is not joining], owner, demo.account_id, started)
    everything = repr(events)
    for secret in (PASSWORD, new_password, api_password.group(1), link_path.rsplit("/", 1)[1], card, web.csrf or "?"):
        assert secret not in everything


async def test_refused_changes_are_recorded_and_change_nothing_else(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 1500)
    owner = await signed_in(app, services, demo)
    web = owner.web
    card_path = (await web.post("/cards", {"card_reference": card})).headers["location"]
    redemption = (await redeem(services, pos, demo, card, 100)).line_item.item
    reverse = f"{card_path}/line-items/{redemption.id}/reverse"
    assert (await web.post(reverse)).status_code == 303  # reversed once: the next attempt is refused
    leeds = (await site_ids(services, demo))["Leeds"]
    started = datetime.now(UTC)
    marker = await latest_id(services)
    before = await settings_state(services, demo)
    members = await team_of(services, demo)

    with unchanged(database_url, demo.account_id):
        blank = await web.post("/settings/sites", {"name": "  ", "address": "1 High St"})
        assert blank.status_code == 400 and field_error(blank.text, "name") == "This field is required"
        too_much = await web.post(
            card_path + "/adjust", {"direction": "debit", "value": "15.01", "site_id": str(leeds), "reason": "x"}
        )
        assert too_much.status_code == 409
        unreadable = await web.post(card_path + "/adjust", {"direction": "up", "value": "1,0.0.0", "reason": ""})
        assert unreadable.status_code == 400
        nowhere = await web.post(
            card_path + "/adjust", {"direction": "credit", "value": "1", "site_id": "987654321", "reason": "x"}
        )
        assert nowhere.status_code == 400
        again = await web.post(reverse)
        assert again.status_code == 409 and f"Line item {redemption.id} has already been reversed." in text_of(
            again.text
        )
        duplicate = await web.post("/settings/team", {"name": "Me", "email": owner.principal.name, "role": "foh_staff"})
        assert duplicate.status_code == 409
        missing = await web.post("/settings/team/987654321/remove")
        assert missing.status_code == 404
        forged = await web.post("/settings/sites", {"name": "Forged", "csrf_token": "forged"}, csrf=False)
        assert forged.status_code == 403
        assert web.csrf is not None
        with_file = await web.http.post(
            "/settings/sites", data={"name": "Filed", "csrf_token": web.csrf}, files={"f": ("a.txt", b"x")}
        )
        assert with_file.status_code == 400
        assert "This form could not be read." in text_of(with_file.text)
        wrong = await web.post("/account/password", {"current_password": "not-it-xyz", "new_password": "tiny-pw9"})
        assert wrong.status_code == 400

    assert await settings_state(services, demo) == before
    assert await team_of(services, demo) == members
    events = await records(services, demo.account_id, marker)
    assert [summary(e) for e in events] == [
        (
            "dashboard.site.add",
            "refused",
            "VALIDATION",
            None,
            None,
            {"name": "  ", "address": "1 High St", "reference": ""},
        ),
        (
            "dashboard.card.adjust",
            "refused",
            "NEGATIVE_BALANCE",
            leeds,
            masked(card),
            {"amount": "15.01", "direction": "debit", "reason": "x", "credit_as": "tender", "value": -1501},
        ),
        (
            "dashboard.card.adjust",
            "refused",
            "VALIDATION",
            None,
            masked(card),
            {"amount": "1,0.0.0", "direction": "up", "reason": "", "credit_as": "tender"},
        ),
        (
            "dashboard.card.adjust",
            "refused",
            "VALIDATION",
            None,  # not one of the account's sites: named in the details only
            masked(card),
            {
                "amount": "1",
                "direction": "credit",
                "reason": "x",
                "credit_as": "tender",
                "value": 100,
                "site_id": 987654321,
            },
        ),
        (
            "dashboard.card.reverse",
            "refused",
            "ALREADY_REVERSED",
            redemption.site_id,
            masked(card),
            {"line_item_id": redemption.id},
        ),
        (
            "dashboard.team.invite",
            "refused",
            "CONFLICT",
            None,
            None,
            {"email": owner.principal.name, "name": "Me", "role": "foh_staff"},
        ),
        ("dashboard.team.remove", "refused", "NOT_FOUND", None, None, {"user_id": 987654321}),
        ("dashboard.site.add", "refused", "CSRF", None, None, None),
        ("dashboard.site.add", "refused", "BAD_FORM", None, None, None),
        ("dashboard.password.change", "refused", "VALIDATION", None, None, None),
    ]
    assert_by(events, owner, demo.account_id, started)
    assert "not-it-xyz" not in repr(events) and "tiny-pw9" not in repr(events)


def post_routes(services: Services) -> list[str]:
    return [
        route.path
        for route in dashboard_routes(services)
        if isinstance(route, Route) and route.methods and "POST" in route.methods
    ]


# POST forms that change nothing: finding a card (its misses are counted, and a pause is recorded, by the
# guessing throttle) and confirming one noted an API user's password; and the forms of a browser that acts on
# no account yet, which name no account to record in: logging in, choosing an account (here an empty form) and
# accepting an invitation (here an unknown link), each tested on its own.
READS = {
    "/cards",
    "/settings/integrations/{merchant_id}/api-users/noted",
    "/accounts",
    "/invitations/{link}",
    "/pos/{site_id}/balance",  # a balance check in POS Mode (a look-up by number, as a till's)
}
ADJUSTMENT = {"direction": "credit", "value": "5.00", "site_id": "1", "reason": "x"}


async def test_every_form_writes_exactly_one_record_even_when_refused(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    order = await sell(services, pos, demo, demo.card_references[0], 1000)
    staff = await signed_in(app, services, demo, Role.FOH_STAFF)
    values = {
        "site_id": (await site_ids(services, demo))["Soho"],
        "merchant_id": POINTONE,
        "api_user_id": (await setup.list_api_users(services, setup.operator(demo.account_id)))[0].id,
        "user_id": staff.principal.id,
        "modifier_id": demo.price_modifier_ids[0],
        "card_id": order.line_items[0].card.card.id,
        "line_item_id": order.line_items[0].item.id,
        "invitation_id": 987654321,
        "link": "no-such-link",
        "endpoint_id": 987654321,
    }
    paths = post_routes(services)
    assert "/login" in paths and "/logout" in paths and len(paths) == 47
    before = await settings_state(services, demo)
    seen: dict[str, list[tuple[str, str, str | None]]] = {}
    with unchanged(database_url, demo.account_id):
        for template in sorted(set(paths) - {"/login"}, key=lambda p: (p == "/logout", p)):  # signing out last
            path = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)
            marker = await latest_id(services)
            response = await staff.web.post(path, ADJUSTMENT if template.endswith("/adjust") else {})
            events = await records(services, demo.account_id, marker)
            assert_by(events, staff, demo.account_id, datetime.now(UTC) - timedelta(seconds=30))
            seen[template] = [(e.operation, e.outcome, e.error_code) for e in events]
            if template in READS:
                assert events == [], template
            else:
                assert len(events) == 1, (template, response.status_code, events)
    assert await settings_state(services, demo) == before
    # every form's operation is named in words on the Audit Trail (dashboard/operations.py)
    assert {op for records in seen.values() for op, _, _ in records} - set(operations.OPERATIONS) == set()
    assert {k: v for k, v in seen.items() if v} == {
        "/logout": [("dashboard.logout", "accepted", None)],
        "/account": [("dashboard.account.switch", "refused", "FORBIDDEN")],
        "/account/password": [("dashboard.password.change", "refused", "VALIDATION")],
        "/cards/{card_id}/adjust": [("dashboard.card.adjust", "refused", "FORBIDDEN")],
        "/cards/{card_id}/send": [("dashboard.card.resend", "refused", "FORBIDDEN")],
        "/cards/{card_id}/line-items/{line_item_id}/reverse": [("dashboard.card.reverse", "refused", "FORBIDDEN")],
        "/cards/{card_id}/block": [("dashboard.card.block", "refused", "FORBIDDEN")],
        "/cards/{card_id}/unblock": [("dashboard.card.unblock", "refused", "FORBIDDEN")],
        "/cards/{card_id}/expiry": [("dashboard.card.expiry", "refused", "FORBIDDEN")],
        "/cards/{card_id}/replace": [("dashboard.card.replace", "refused", "FORBIDDEN")],
        "/cards/expiry": [("dashboard.cards.expiry", "refused", "FORBIDDEN")],
        "/cards/import": [("dashboard.cards.import", "refused", "FORBIDDEN")],
        "/data/exports": [("dashboard.export.queue", "refused", "FORBIDDEN")],
        "/shop/in-store-gift/pin": [("dashboard.product.pin", "refused", "FORBIDDEN")],
        "/shop/in-store-gift/validity": [("dashboard.product.validity", "refused", "FORBIDDEN")],
        "/shop/in-store-gift/price-modifiers": [("dashboard.price_modifier.add", "refused", "FORBIDDEN")],
        "/shop/in-store-gift/price-modifiers/{modifier_id}": [
            ("dashboard.price_modifier.edit", "refused", "FORBIDDEN")
        ],
        "/shop/in-store-gift/price-modifiers/{modifier_id}/delete": [
            ("dashboard.price_modifier.remove", "refused", "FORBIDDEN")
        ],
        "/settings/sites": [("dashboard.site.add", "refused", "FORBIDDEN")],
        "/settings/sites/{site_id}": [("dashboard.site.edit", "refused", "FORBIDDEN")],
        "/settings/sites/{site_id}/delete": [("dashboard.site.delete", "refused", "FORBIDDEN")],
        "/settings/integrations/{merchant_id}/api-users": [("dashboard.api_user.create", "refused", "FORBIDDEN")],
        "/settings/integrations/{merchant_id}/api-users/{api_user_id}/delete": [
            ("dashboard.api_user.delete", "refused", "FORBIDDEN")
        ],
        "/settings/integrations/{merchant_id}/site-mapping": [("dashboard.site_mapping.save", "refused", "FORBIDDEN")],
        "/settings/team": [("dashboard.team.invite", "refused", "FORBIDDEN")],
        "/settings/team/invitations/{invitation_id}/cancel": [
            ("dashboard.team.cancel_invitation", "refused", "FORBIDDEN")
        ],
        "/settings/team/{user_id}/role": [("dashboard.team.change_role", "refused", "FORBIDDEN")],
        "/settings/team/{user_id}/remove": [("dashboard.team.remove", "refused", "FORBIDDEN")],
        "/settings/branding": [("dashboard.branding.save", "refused", "FORBIDDEN")],
        "/settings/branding/logo/remove": [("dashboard.branding.remove_logo", "refused", "FORBIDDEN")],
        "/settings/time-zone": [("dashboard.time_zone.save", "refused", "FORBIDDEN")],
        "/settings/webhooks": [("dashboard.webhook.add", "refused", "FORBIDDEN")],
        "/settings/webhooks/{endpoint_id}/test": [("dashboard.webhook.test", "refused", "FORBIDDEN")],
        "/settings/webhooks/{endpoint_id}/rotate": [("dashboard.webhook.rotate", "refused", "FORBIDDEN")],
        "/settings/webhooks/{endpoint_id}/disable": [("dashboard.webhook.disable", "refused", "FORBIDDEN")],
        "/settings/webhooks/{endpoint_id}/enable": [("dashboard.webhook.enable", "refused", "FORBIDDEN")],
        "/settings/webhooks/{endpoint_id}/redeliver": [("dashboard.webhook.redeliver", "refused", "FORBIDDEN")],
        # POS Mode: Front of House Staff may take a payment (here with no amount: refused as a till's would be)
        "/pos/{site_id}/pay": [("dashboard.pos.pay", "refused", "VALIDATION")],
        "/pos/{site_id}/top-up": [("dashboard.pos.top_up", "refused", "VALIDATION")],
        "/pos/{site_id}/sell": [("dashboard.pos.sell", "refused", "FORBIDDEN")],
        "/pos/{site_id}/line-items/{line_item_id}/reverse": [("dashboard.pos.reverse", "refused", "FORBIDDEN")],
    }

    # a form posted without a session names nobody: the browser is sent to log in, and nothing is written
    marker = await latest_id(services)
    signed_out = await staff.web.post("/settings/sites", {"name": "x", "csrf_token": "x"}, csrf=False)
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/login")
    assert await latest_id(services) == marker


async def test_switching_account_is_recorded_in_the_account_switched_to(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other: Demo = off_loop(new_demo, database_url)
    stranger: Demo = off_loop(new_demo, database_url)
    manager = await person(services, demo, Role.STORE_MANAGER)
    await setup.add_team_member(
        services, setup.operator(other.account_id), email=manager.name, name="M", role="store_manager", password=""
    )
    web = Web(app)
    marker = await latest_id(services)
    await web.log_in(manager.name, PASSWORD)  # in two accounts: nothing recorded until one is chosen
    assert await records(services, demo.account_id, marker) == await records(services, other.account_id, marker) == []
    here, there = sorted((demo.account_id, other.account_id))
    chosen = await web.post("/accounts", {"action": "choose", "account_id": str(here), "next": "/"})
    assert chosen.headers["location"] == "/"
    [login] = await records(services, here, marker)
    assert (login.operation, login.outcome, login.actor_id, login.client_address) == (
        "dashboard.login",
        "accepted",
        manager.id,
        web.address,
    )
    marker = await latest_id(services)
    await web.get("/")
    refused = await web.post("/account", {"account_id": str(stranger.account_id)})
    assert refused.status_code == 403
    assert (await web.post("/account", {"account_id": str(there)})).headers["location"] == "/?done=switched"
    [refusal] = await records(services, here, marker)
    assert (refusal.operation, refusal.outcome, refusal.error_code, detail(refusal)) == (
        "dashboard.account.switch",
        "refused",
        "FORBIDDEN",
        {"to_account_id": stranger.account_id},
    )
    [switched] = await records(services, there, marker)
    assert (switched.operation, switched.outcome, switched.actor_id, switched.client_address, detail(switched)) == (
        "dashboard.account.switch",
        "accepted",
        manager.id,
        web.address,
        {"to_account_id": there},
    )
    assert await records(services, stranger.account_id, marker) == []


# --- the Audit Trail page -------------------------------------------------------------------------------


async def write(services: Services, demo: Demo, operation: str, count: int, **facts: Any) -> None:
    owner = setup.operator(demo.account_id)
    for i in range(count):
        await record(
            services,
            owner,
            operation=operation,
            outcome=audit.ACCEPTED if i % 2 == 0 else audit.REFUSED,
            error_code=None if i % 2 == 0 else "VALIDATION",
            client_address="192.0.2.7",
            detail={"n": i, **facts},
        )


async def test_the_audit_trail_page_is_the_store_owners_alone(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await signed_in(app, services, demo)
    page = await owner.web.get("/settings/audit")
    assert page.status_code == 200
    nav = re.findall(r'<nav aria-label="Main".*?</nav>', page.text, flags=re.S)[0]
    assert re.findall(r"<a [^>]*>([^<]+)</a>", nav)[-7:] == [
        "Site Settings",
        "Integrations",
        "Webhooks",
        "Team",
        "Branding",
        "Time Zone",
        "Audit Trail",
    ]
    assert 'href="/settings/audit" aria-current="page"' in nav
    [login] = rows(page.text, "audit-trail")
    assert login[1:] == [
        f"{owner.principal.name} (Team member)",
        "Log in",  # its operation in words (dashboard/operations.py)
        "—",
        "—",
        "Accepted",
        owner.web.address,
        "",
    ]
    for role in TEAM_ROLES:
        if role is Role.STORE_OWNER:
            continue
        other = await signed_in(app, services, demo, role)
        for path in ("/settings/audit", "/settings/audit/audit-trail.csv", "/settings/audit?outcome=maybe"):
            refused = await other.web.get(path)
            assert refused.status_code == 403, (role, path)
            assert FORBIDDEN in text_of(refused.text)
        menu = await other.web.get("/")
        assert "/settings/audit" not in menu.text, role


async def test_filters_and_pages(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await signed_in(app, services, demo)
    await write(services, demo, "dashboard.test.paging", 53, site="x", blank="")
    web = owner.web
    first = await web.get("/settings/audit?operation=dashboard.test.paging")
    assert re.search(r'data-testid="trail-total">53 records, newest first.<', first.text)
    listed = rows(first.text, "audit-trail")
    assert len(listed) == 50
    assert [r[2] for r in listed] == ["dashboard.test.paging"] * 50
    assert listed[0][1:] == [
        "operator (Operator)",
        "dashboard.test.paging",
        "—",
        "—",
        "Accepted",
        "192.0.2.7",
        "blank: (empty); n: 52; site: x",
    ]
    assert listed[1][5] == "Refused VALIDATION"
    assert "Page 1 of 2" in text_of(first.text)
    assert 'href="/settings/audit?operation=dashboard.test.paging&amp;page=2">Older' in first.text
    second = await web.get("/settings/audit?operation=dashboard.test.paging&page=2")
    assert [r[7] for r in rows(second.text, "audit-trail")] == [f"blank: (empty); n: {n}; site: x" for n in (2, 1, 0)]

    refused = await web.get("/settings/audit?operation=dashboard.test.paging&outcome=refused")
    assert re.search(r'data-testid="trail-total">26 records', refused.text)
    assert {r[5] for r in rows(refused.text, "audit-trail")} == {"Refused VALIDATION"}
    today = datetime.now(ZoneInfo("Europe/London")).date()  # the filter's days are the account's
    dated = await web.get(f"/settings/audit?operation=dashboard.test.paging&start={today}&end={today}")
    assert re.search(r'data-testid="trail-total">53 records', dated.text)
    past = await web.get("/settings/audit?operation=dashboard.test.paging&start=2000-01-01&end=2000-01-31")
    assert past.status_code == 200 and "No audit records match these filters." in text_of(past.text)
    assert (await web.get(f"/settings/audit?start={date.max}&end={date.max}")).status_code == 200

    bad = await web.get("/settings/audit?outcome=maybe&start=2026-13-01&end=yesterday&operation=" + "x" * 101)
    assert bad.status_code == 400
    assert field_error(bad.text, "outcome") == "This field is not of an expected value"
    assert field_error(bad.text, "operation") == "This field is not of an expected value"
    assert field_error(bad.text, "start") == "Enter a date as YYYY-MM-DD."
    assert field_error(bad.text, "end") == "Enter a date as YYYY-MM-DD."
    backwards = await web.get("/settings/audit?start=2024-02-02&end=2024-02-01")
    assert field_error(backwards.text, "end") == "The end date must not be before the start date."
    deep = await web.get("/settings/audit?page=999999999999")
    assert deep.status_code == 400 and field_error(deep.text, "page") == "This field is not of an expected value"
    csv_bad = await web.get("/settings/audit/audit-trail.csv?start=nope")
    assert csv_bad.status_code == 400 and field_error(csv_bad.text, "start") == "Enter a date as YYYY-MM-DD."


async def test_the_csv_export(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await signed_in(app, services, demo)
    formula = '=HYPERLINK("http://evil.example")@example.com'
    sneaky = Principal("user", 424242, demo.account_id, Role.STORE_OWNER, None, formula, "-1+1")
    await record(
        services,
        sneaky,
        operation="dashboard.test.csv",
        outcome=audit.ACCEPTED,
        card_references=[demo.card_references[0]],
        detail={"reason": "=1+1", "password": "never"},
    )
    await write(services, demo, "dashboard.test.csv", 2)
    response = await owner.web.get("/settings/audit/audit-trail.csv?operation=dashboard.test.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="audit-trail.csv"'
    assert response.headers["cache-control"] == "no-store"
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == list(audit.CSV_COLUMNS)
    assert [line[2:] for line in lines[1:]] == [
        ["user", "424242", "'" + formula, "", "dashboard.test.csv", masked(demo.card_references[0]), "accepted", "",
         "'-1+1", '{"reason":"=1+1"}'],
        ["system", "0", "operator", "", "dashboard.test.csv", "", "accepted", "", "192.0.2.7", '{"n":0}'],
        ["system", "0", "operator", "", "dashboard.test.csv", "", "refused", "VALIDATION", "192.0.2.7", '{"n":1}'],
    ]  # fmt: skip
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line[1]) for line in lines[1:])
    assert int(lines[1][0]) < int(lines[2][0]) < int(lines[3][0])  # oldest first
    refused_only = await owner.web.get("/settings/audit/audit-trail.csv?operation=dashboard.test.csv&outcome=refused")
    assert len(refused_only.text.splitlines()) == 2
    page = await owner.web.get("/settings/audit?operation=dashboard.test.csv")
    assert 'href="/settings/audit/audit-trail.csv?operation=dashboard.test.csv" download' in page.text


async def test_failed_logins_are_shown(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await signed_in(app, services, demo)
    staff = await person(services, demo, Role.FOH_STAFF)
    manager = await person(services, demo, Role.STORE_MANAGER)
    guesser, other = Web(app), Web(app)  # the per-address limit is as low as the per-name one
    await guesser.get("/login")
    for _ in range(services.settings.login_failure_limit):
        await guesser.post("/login", {"email": staff.name, "password": "guess"})
    await other.get("/login")
    for _ in range(2):
        await other.post("/login", {"email": manager.name.upper(), "password": "guess"})
    page = await owner.web.get("/settings/audit")
    listed = rows(page.text, "login-failures")
    assert [r[:3] + r[4:] for r in listed] == [
        [staff.name, "Team member", str(services.settings.login_failure_limit), "Refused for now"],
        [manager.name, "Team member", "2", "Allowed"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[3]) for r in listed)
    assert "in the last 15 minutes" in text_of(page.text)


# --- the card search and the guessing throttle -------------------------------------------------------------


@pytest.fixture
async def guarded_app(database_url: str) -> AsyncIterator[Starlette]:
    """The application with a small card-miss limit per caller (the address limit stays at its default)."""
    application = create_app(settings_for(database_url, card_miss_limit=MISS_LIMIT))
    yield application
    await application.state.services.db.dispose()


async def test_the_card_search_counts_misses_and_pauses(
    guarded_app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 1000)
    staff = await signed_in(guarded_app, services, demo, Role.FOH_STAFF)
    subject = f"user:{staff.principal.id}"
    marker = await latest_id(services)
    with unchanged(database_url, demo.account_id):
        for _ in range(MISS_LIMIT):
            missing = await staff.web.post("/cards", {"card_reference": card_numbers.generate()})
            assert missing.status_code == 404
            assert field_error(missing.text, "card_reference") == NO_CARD_FOUND
        paused = await staff.web.post("/cards", {"card_reference": card})  # even a real card, now
    assert paused.status_code == 429
    assert 590 <= int(paused.headers["retry-after"]) <= 600
    alert = re.search(r'data-testid="lookups-paused">(.*?)</div>', paused.text, flags=re.S)
    assert alert and text_of(alert.group(1)) == f"Card look-ups are paused {CARD_LOOKUPS_THROTTLED}"
    async with services.db.transaction() as conn:
        counted = (
            await conn.execute(
                select(card_lookup_misses.c.account_id, card_lookup_misses.c.client_address).where(
                    card_lookup_misses.c.subject == subject
                )
            )
        ).all()
    assert [tuple(r) for r in counted] == [(demo.account_id, staff.web.address)] * MISS_LIMIT

    [pause] = await records(services, demo.account_id, marker)
    assert (pause.operation, pause.outcome, pause.error_code, pause.card) == (
        guessing.PAUSED,
        "refused",
        "THROTTLED",
        None,
    )
    assert (pause.actor_kind, pause.actor_id, pause.actor_name, pause.client_address) == (
        "user",
        staff.principal.id,
        staff.principal.name,
        staff.web.address,
    )
    # someone else, from another browser, is not paused; the owner sees the pause
    owner = await signed_in(guarded_app, services, demo)
    found = await owner.web.post("/cards", {"card_reference": card})
    assert found.status_code == 303 and re.fullmatch(r"/cards/\d+", found.headers["location"])
    page = await owner.web.get("/settings/audit")
    [shown] = rows(page.text, "card-lookup-pauses")
    assert shown[1:3] == [f"{staff.principal.name} (Team member)", staff.web.address]
    assert shown[3].endswith("Paused now")
    assert datetime.strptime(shown[3][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) > datetime.now(UTC)
    trail = rows(page.text, "audit-trail")
    assert [r[2] for r in trail].count(operations.in_words(guessing.PAUSED)) == 1
