"""Sessions, the team and the settings pages' permissions, on both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from giftledger.domain.catalogue import POINTONE, POLARIS
from giftledger.domain.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from giftledger.domain.permissions import TEAM_ROLES, Role
from giftledger.services import account_settings, dashboard_sessions, invitations, setup, team
from giftledger.services.access import LOGIN_REFUSED
from giftledger.services.context import Services, operator
from giftledger.storage.clock import utcnow
from giftledger.storage.sessions import dashboard_sessions as sessions_table
from giftledger.storage.tables import users
from tests.dashboard.browser import off_loop
from tests.dashboard.helpers import PASSWORD, invitation_path, person
from tests.support import Demo, new_demo


async def sign_in(services: Services, email: str, password: str = PASSWORD) -> str:
    return await dashboard_sessions.start_session(services, email=email, password=password, client_address="browser")


async def test_a_session_acts_as_its_membership_and_ends_when_it_goes(services: Services, demo: Demo) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    token = await sign_in(services, staff.name.upper())
    session = await dashboard_sessions.open_session(services, token)
    assert session is not None
    assert (session.principal.kind, session.principal.id, session.principal.account_id) == (
        "user",
        staff.id,
        demo.account_id,
    )
    assert (session.principal.role, session.user_name, session.accounts) == (
        Role.FOH_STAFF,
        "Front of House Staff",
        {demo.account_id: session.account_name},
    )
    assert len(session.csrf_token) >= 40

    # a role change is a credential event: the session ends; signed in again, the person acts in the new role
    owner = await person(services, demo, Role.STORE_OWNER)
    await team.change_role(services, owner, staff.id, Role.FOH_MANAGER.value)
    assert await dashboard_sessions.open_session(services, token) is None
    token = await sign_in(services, staff.name)
    again = await dashboard_sessions.open_session(services, token)
    assert again is not None and again.principal.role is Role.FOH_MANAGER and again.csrf_token != session.csrf_token

    # removed from the account: the session ends
    await team.remove_member(services, owner, staff.id)
    assert await dashboard_sessions.open_session(services, token) is None
    assert await dashboard_sessions.open_session(services, "") is None
    assert await dashboard_sessions.open_session(services, "made-up") is None


async def test_deleted_user_rotated_version_or_expired_session_ends(services: Services, demo: Demo) -> None:
    first = await person(services, demo, Role.STORE_MANAGER)
    second = await person(services, demo, Role.GUEST_SERVICE)
    third = await person(services, demo, Role.FINANCIAL_MANAGER)
    tokens = [await sign_in(services, p.name) for p in (first, second, third)]
    async with services.db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == first.id).values(deleted_at=utcnow()))
        await conn.execute(update(users).where(users.c.id == second.id).values(token_version=users.c.token_version + 1))
        await conn.execute(
            update(sessions_table)
            .where(sessions_table.c.user_id == third.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for token in tokens:
        assert await dashboard_sessions.open_session(services, token) is None


async def test_wrong_password_and_unknown_email_are_refused_alike(services: Services, demo: Demo) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    refusals = []
    for email, password in ((staff.name, PASSWORD + "x"), ("nobody-" + staff.name, PASSWORD), (staff.name, "")):
        with pytest.raises(Unauthorized) as error:
            await dashboard_sessions.start_session(services, email=email, password=password, client_address="x")
        refusals.append(error.value.message)
    assert refusals == [LOGIN_REFUSED] * 3
    with pytest.raises(Unauthorized):  # an API user cannot use the dashboard
        await dashboard_sessions.start_session(
            services, email=demo.api_username, password=demo.api_password, client_address="x"
        )


async def test_a_person_in_several_accounts_chooses_one(services: Services, demo: Demo, database_url: str) -> None:
    other: Demo = off_loop(new_demo, database_url)
    manager = await person(services, demo, Role.STORE_MANAGER)
    await setup.add_team_member(
        services, setup.operator(other.account_id), email=manager.name, name="ignored", role="foh_staff", password=""
    )
    stranger = off_loop(new_demo, database_url)
    token = await sign_in(services, manager.name)
    # signed in, but acting on no account until one is chosen (never "the lowest id")
    assert await dashboard_sessions.open_session(services, token) is None
    choice = await dashboard_sessions.account_choice(services, token)
    assert choice is not None
    assert (choice.user_id, choice.chosen, sorted(choice.accounts), choice.invitations) == (
        manager.id,
        None,
        sorted([demo.account_id, other.account_id]),
        [],
    )

    with pytest.raises(Forbidden):
        await dashboard_sessions.choose_account(services, choice.session_id, manager.id, stranger.account_id)
    assert await dashboard_sessions.open_session(services, token) is None

    await dashboard_sessions.choose_account(services, choice.session_id, manager.id, other.account_id)
    switched = await dashboard_sessions.open_session(services, token)
    assert switched is not None
    assert (switched.principal.account_id, switched.principal.role) == (other.account_id, Role.FOH_STAFF)
    with pytest.raises(Forbidden):
        await dashboard_sessions.choose_account(services, switched.session_id, manager.id, stranger.account_id)
    unchanged = await dashboard_sessions.open_session(services, token)
    assert unchanged is not None and unchanged.principal.account_id == other.account_id
    await dashboard_sessions.choose_account(services, switched.session_id, manager.id, demo.account_id)
    back = await dashboard_sessions.open_session(services, token)
    assert back is not None and (back.principal.account_id, back.principal.role) == (
        demo.account_id,
        Role.STORE_MANAGER,
    )
    await dashboard_sessions.end_session(services, back)
    assert await dashboard_sessions.open_session(services, token) is None
    assert await dashboard_sessions.account_choice(services, token) is None


async def test_changing_password_ends_the_other_sessions(services: Services, demo: Demo) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    here, elsewhere = await sign_in(services, staff.name), await sign_in(services, staff.name)
    session = await dashboard_sessions.open_session(services, here)
    assert session is not None
    with pytest.raises(ValidationFailed) as error:
        await dashboard_sessions.change_password(services, session, current="wrong", new="short")
    assert error.value.fields == {
        "new_password": ["Must be at least 10 characters."],
        "current_password": [dashboard_sessions.WRONG_CURRENT_PASSWORD],
    }
    assert await dashboard_sessions.open_session(services, elsewhere) is not None
    await dashboard_sessions.change_password(services, session, current=PASSWORD, new="a-brand-new-password")
    assert await dashboard_sessions.open_session(services, here) is not None
    assert await dashboard_sessions.open_session(services, elsewhere) is None
    with pytest.raises(Unauthorized):
        await sign_in(services, staff.name)
    assert await sign_in(services, staff.name, "a-brand-new-password")


async def test_inviting_people_with_each_role(services: Services, demo: Demo, database_url: str) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    for role in TEAM_ROLES:
        email = f"new-{role.value}-{owner.id}@Example.com"
        invitation = await team.invite_member(services, owner, email=email, name=f"New {role.label}", role=role.value)
        assert (invitation.email, invitation.name, invitation.role) == (email.lower(), f"New {role.label}", role)
        link_token = (await invitation_path(services, demo.account_id, email)).removeprefix("/invitations/")
        joined = await invitations.accept_by_link(
            services, link_token, password="chosen-by-them", name="Their Name", client_address="browser"
        )
        session = await dashboard_sessions.open_session(services, joined.session_token)
        assert session is not None and (session.principal.role, session.user_name) == (role, "Their Name")
        assert await sign_in(services, email, "chosen-by-them")
    members = await team.team_members(services, owner)
    assert sorted(m.role.value for m in members) == sorted([Role.STORE_OWNER.value] * 2 + [r.value for r in TEAM_ROLES])
    assert await team.pending_invitations(services, owner) == []

    other: Demo = off_loop(new_demo, database_url)
    existing = await person(services, other, Role.STORE_OWNER)
    await team.invite_member(services, owner, email=existing.name, name="Pending", role="guest_service")
    with pytest.raises(Conflict):  # a member of this account already
        await team.invite_member(services, owner, email=members[0].email, name="Again", role="foh_staff")
    with pytest.raises(ValidationFailed) as error:
        await team.invite_member(services, owner, email="not-an-email", name=" ", role="api_user")
    assert error.value.fields == {
        "email": ["This field is not of an expected value"],
        "name": ["This field is required"],
        "role": ["This field is not of an expected value"],
    }
    for role in (r for r in TEAM_ROLES if r is not Role.STORE_OWNER):
        principal = await person(services, demo, role)
        with pytest.raises(Forbidden):
            await team.invite_member(services, principal, email="x@example.com", name="X", role="foh_staff")
        with pytest.raises(Forbidden):
            await team.team_members(services, principal)
        with pytest.raises(Forbidden):
            await team.change_role(services, principal, principal.id, "store_owner")
        with pytest.raises(Forbidden):
            await team.remove_member(services, principal, owner.id)
    assert len(await team.team_members(services, owner)) == len(members) + 5
    assert [(i.email, i.name) for i in await team.pending_invitations(services, owner)] == [(existing.name, "Pending")]


async def test_the_account_keeps_a_store_owner(services: Services, demo: Demo) -> None:
    async def owners() -> list[int]:
        listed = await team.team_members(services, operator(demo.account_id))
        return [m.user_id for m in listed if m.role is Role.STORE_OWNER]

    first = await person(services, demo, Role.STORE_OWNER)
    demo_owner = next(i for i in await owners() if i != first.id)
    await team.remove_member(services, first, demo_owner)
    assert await owners() == [first.id]
    with pytest.raises(Conflict) as error:
        await team.change_role(services, first, first.id, "store_manager")
    assert error.value.message == team.LAST_OWNER
    with pytest.raises(Conflict):
        await team.remove_member(services, first, first.id)
    assert await owners() == [first.id]
    second = await person(services, demo, Role.STORE_MANAGER)
    await team.change_role(services, first, second.id, "store_owner")
    await team.change_role(services, first, first.id, "foh_staff")
    assert await owners() == [second.id]
    # a role change revokes the person's sessions: signed in again, their session says
    promoted = replace(second, role=Role.STORE_OWNER, token_version=second.token_version + 1)
    with pytest.raises(NotFound):
        await team.change_role(services, promoted, 10**12, "foh_staff")
    with pytest.raises(ValidationFailed):
        await team.change_role(services, promoted, first.id, "api_user")


async def test_settings_pages_ask_for_the_permission_their_forms_need(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    tiles = await account_settings.integrations(services, owner)
    assert [(t.merchant_id, t.name, t.api_users, t.mapped_sites) for t in tiles if t.merchant_id in (60, 61)] == [
        (POINTONE, "PointOne", 1, 2),
        (POLARIS, "Polaris", 0, 0),
    ]
    assert len(tiles) == 9
    view = await account_settings.integration(services, owner, POINTONE)
    assert [u.username for u in view.api_users] == [demo.api_username]
    assert sorted(view.mapping.values()) == sorted(demo.unit_epos_references)
    with pytest.raises(NotFound):
        await account_settings.integration(services, owner, 999)
    gift = await account_settings.in_store_gift(services, owner)
    assert (gift.product.id, [m.id for m in gift.price_modifiers]) == (demo.product_id, demo.price_modifier_ids)

    manager = await person(services, demo, Role.STORE_MANAGER)
    assert [s.name for s in await account_settings.site_settings(services, manager)] == ["Soho", "Leeds"]
    for principal in (manager, await person(services, demo, Role.FOH_STAFF)):
        with pytest.raises(Forbidden):
            await account_settings.integrations(services, principal)
        with pytest.raises(Forbidden):
            await account_settings.integration(services, principal, POINTONE)
    staff = await person(services, demo, Role.FOH_STAFF)
    with pytest.raises(Forbidden):
        await account_settings.site_settings(services, staff)
    with pytest.raises(Forbidden):
        await account_settings.in_store_gift(services, staff)
