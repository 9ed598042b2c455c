"""The six dashboard roles and API users against the one permission table (`domain.permissions.PERMISSIONS`):
one generated test per (role, permission) cell, calling the service that needs that permission. An allowed
cell gets past the permission check (to a harmless read or a validation refusal); a refused cell gets
Forbidden. Nothing changes either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import DomainError, Forbidden, Unauthorized
from giftledger.domain.permissions import PERMISSIONS, TEAM_ROLES, Permission, Role, allows
from giftledger.services import audit, card_admin, card_lifecycle, dashboard_sessions, queries, reports, setup, team
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Principal, Services
from giftledger.services.reversals import ReversalRequest, reverse_line_items
from giftledger.services.sales import OrderRequest, sell_cards
from giftledger.storage.tables import cards, line_items, memberships, orders, products, sites, transactions
from tests.security.helpers import operator, run_services
from tests.support import Demo, new_demo

NOWHERE = 987_654_321
CARD = "6301190000554511994"
PASSWORD = "role-password-0123456789"

Probe = Callable[[Services, Principal, Demo], Awaitable[Any]]


def _adjust(value: int) -> Probe:
    async def probe(services: Services, principal: Principal, demo: Demo) -> Any:
        request = AdjustmentRequest(CARD, value, "GBP", demo.epos, NOWHERE, None)
        return await adjust_balance(services, principal, request)

    return probe


async def _dashboard(services: Services, principal: Principal, demo: Demo) -> Any:
    """Opening a dashboard session: a team member signs in with their own email and password."""
    email = principal.name if principal.kind == "user" else demo.api_username
    return await dashboard_sessions.start_session(
        services, email=email, password=PASSWORD, client_address=f"192.0.2.{principal.id % 250}"
    )


PROBES: dict[Permission, Probe] = {
    Permission.CARD_READ: lambda s, p, d: queries.find_cards(s, p, card_reference=None, card_id=None, limit=1, page=1),
    Permission.CARD_SELL: lambda s, p, d: sell_cards(
        s, p, OrderRequest(p.account_id, NOWHERE, [], None, None, None, None)
    ),
    Permission.CARD_REDEEM: _adjust(-1),
    Permission.CARD_TOP_UP: _adjust(1),
    Permission.CARD_ADJUST: lambda s, p, d: card_admin.adjustment_sites(s, p),
    Permission.CARD_BLOCK: lambda s, p, d: card_lifecycle.block_card(s, p, NOWHERE, "lost"),
    Permission.CARD_EXPIRY: lambda s, p, d: card_lifecycle.change_card_expiry(
        s, p, NOWHERE, card_lifecycle.ExpiryInput("remove")
    ),
    Permission.LINE_ITEM_REVERSE: lambda s, p, d: reverse_line_items(s, p, ReversalRequest([], None, None, None)),
    Permission.ORDER_READ: lambda s, p, d: queries.list_orders(s, p, limit=1, page=1),
    Permission.PRODUCT_READ: lambda s, p, d: queries.list_products(s, p, p.account_id),
    Permission.PRODUCT_MANAGE: lambda s, p, d: setup.add_price_modifier(s, p, NOWHERE, None, None),
    Permission.SITE_MANAGE: lambda s, p, d: setup.update_site(s, p, NOWHERE, setup.SiteInput("")),
    Permission.INTEGRATION_MANAGE: lambda s, p, d: setup.list_api_users(s, p),
    Permission.TEAM_MANAGE: lambda s, p, d: team.team_members(s, p),
    Permission.REPORT_READ: lambda s, p, d: reports.outstanding_balance(s, p),
    Permission.AUDIT_READ: lambda s, p, d: audit.list_events(s, p, limit=1),
    Permission.DASHBOARD: _dashboard,
}

CELLS = [(role, permission) for role in Role for permission in Permission]


def test_every_permission_has_a_probe() -> None:
    assert set(PROBES) == set(Permission)


def test_the_table_itself() -> None:
    assert set(PERMISSIONS) == set(Role)
    assert PERMISSIONS[Role.STORE_OWNER] == frozenset(Permission)
    assert all(Permission.DASHBOARD in PERMISSIONS[role] for role in TEAM_ROLES)
    assert Permission.DASHBOARD not in PERMISSIONS[Role.API_USER]
    only_owner = {Permission.TEAM_MANAGE, Permission.INTEGRATION_MANAGE, Permission.AUDIT_READ}
    assert {role for role in Role if only_owner & PERMISSIONS[role]} == {Role.STORE_OWNER}


@pytest.fixture(scope="module")
def table_demo(database_url: str) -> tuple[Demo, dict[Role, Principal]]:
    """One account with a team member of every role (signing in with PASSWORD) and its API user."""
    demo = new_demo(database_url)

    async def work(services: Services) -> dict[Role, Principal]:
        people: dict[Role, Principal] = {}
        for role in TEAM_ROLES:
            email = f"{role.value}-{demo.account_id}@example.com"
            user_id = await setup.add_team_member(
                services, operator(demo.account_id), email=email, name=role.label, role=role.value, password=PASSWORD
            )
            people[role] = Principal("user", user_id, demo.account_id, role, None, email)
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        await setup.reset_api_user_password(services, operator(demo.account_id), row.id)
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)  # its new token version
        people[Role.API_USER] = Principal(
            "api_user", row.id, demo.account_id, Role.API_USER, POINTONE, row.username, token_version=row.token_version
        )
        return people

    return demo, run_services(database_url, work)


async def _counts(services: Services, account_id: int) -> list[int]:
    async with services.db.transaction() as conn:
        found = []
        for table in (cards, line_items, transactions, orders, products, sites, memberships):
            result = await conn.execute(select(func.count()).select_from(table).where(table.c.account_id == account_id))
            found.append(int(result.scalar_one()))
        total = await conn.execute(select(func.sum(cards.c.balance)).where(cards.c.account_id == account_id))
        found.append(int(total.scalar_one() or 0))
        return found


@pytest.mark.parametrize(("role", "permission"), CELLS, ids=[f"{r.value}-{p.value}" for r, p in CELLS])
def test_cell(
    database_url: str, table_demo: tuple[Demo, dict[Role, Principal]], role: Role, permission: Permission
) -> None:
    demo, people = table_demo
    principal = people[role]

    async def work(services: Services) -> tuple[str, list[int], list[int]]:
        before = await _counts(services, demo.account_id)
        try:
            await PROBES[permission](services, principal, demo)
            outcome = "allowed"
        except Forbidden:
            outcome = "forbidden"
        except Unauthorized:
            outcome = "unauthorized"
        except DomainError:
            outcome = "allowed"  # past the permission check, refused for its (deliberately bad) arguments
        return outcome, before, await _counts(services, demo.account_id)

    outcome, before, after = run_services(database_url, work)
    if allows(role, permission):
        assert outcome == "allowed"
    elif permission is Permission.DASHBOARD:
        assert outcome == "unauthorized"  # an API user has no dashboard login at all
    else:
        assert outcome == "forbidden"
    assert after == before
