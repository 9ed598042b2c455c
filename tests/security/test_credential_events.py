"""Every credential event revokes that principal's tokens at once, for team members as for API users: a token
issued before it is refused on its next request (nothing read or changed), and one near its end is not renewed.
The events: a team member changes their own password, the operator resets it, their role changes, they are
removed from the account; an API user's password is reset, the API user is deleted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from giftledger.auth.tokens import TokenIssuer
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services import dashboard_sessions, setup, team
from giftledger.services.context import Services
from giftledger.storage.tables import api_users, users
from tests.api import documents
from tests.security.helpers import operator, run_services
from tests.support import LOGIN, SECRET, Api, Demo, LiveServer, unchanged

PASSWORD = "a-long-enough-password"


@dataclass(frozen=True)
class Subject:
    kind: str  # "user" or "api_user"
    id: int
    login: dict[str, str]  # loginUser's variables


Event = Callable[[Services, Demo, Subject], Awaitable[object]]


async def _changes_own_password(services: Services, demo: Demo, subject: Subject) -> None:
    token = await dashboard_sessions.start_session(
        services, email=subject.login["email"], password=PASSWORD, client_address="192.0.2.50"
    )
    session = await dashboard_sessions.open_session(services, token)
    assert session is not None
    await dashboard_sessions.change_password(services, session, current=PASSWORD, new=PASSWORD + "-new")
    assert await dashboard_sessions.open_session(services, token) is not None  # the session that changed it goes on


async def _password_reset(services: Services, demo: Demo, subject: Subject) -> None:
    await setup.set_user_password(services, subject.login["email"], PASSWORD + "-reset")


async def _role_changed(services: Services, demo: Demo, subject: Subject) -> None:
    await team.change_role(services, operator(demo.account_id), subject.id, Role.STORE_MANAGER.value)


async def _removed(services: Services, demo: Demo, subject: Subject) -> None:
    await team.remove_member(services, operator(demo.account_id), subject.id)


async def _api_password_reset(services: Services, demo: Demo, subject: Subject) -> str:
    return await setup.reset_api_user_password(services, operator(demo.account_id), subject.id)


async def _api_user_deleted(services: Services, demo: Demo, subject: Subject) -> None:
    await setup.delete_api_user(services, operator(demo.account_id), subject.id)


EVENTS: dict[str, tuple[str, Event]] = {
    "a team member changes their own password": ("user", _changes_own_password),
    "the operator resets a team member's password": ("user", _password_reset),
    "a team member's role changes": ("user", _role_changed),
    "a team member is removed from the account": ("user", _removed),
    "an API user's password is reset": ("api_user", _api_password_reset),
    "an API user is deleted": ("api_user", _api_user_deleted),
}


def _subject(server: LiveServer, demo: Demo, kind: str) -> Subject:
    async def work(services: Services) -> Subject:
        if kind == "api_user":
            [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
            return Subject(kind, row.id, {"username": demo.api_username, "password": demo.api_password})
        email = f"member-{uuid.uuid4().hex[:8]}@example.com"
        role = Role.FOH_MANAGER.value
        user_id = await setup.add_team_member(
            services, operator(demo.account_id), email=email, name="Member", role=role, password=PASSWORD
        )
        return Subject(kind, user_id, {"email": email, "password": PASSWORD})

    return run_services(server.database_url, work)


def _near_its_end(demo: Demo, subject: Subject, version: int) -> str:
    """A token for `subject` 5 minutes from expiry: inside the 10-minute window in which a request renews it."""
    issuer = TokenIssuer(SECRET, lifetime_seconds=300, refresh_window_seconds=600)
    return issuer.issue(subject.kind, subject.id, demo.account_id, version)


def _version(server: LiveServer, subject: Subject) -> int:
    table = api_users if subject.kind == "api_user" else users

    async def work(services: Services) -> int:
        async with services.db.transaction() as conn:
            found = await conn.execute(select(table.c.token_version).where(table.c.id == subject.id))
            return int(found.scalar_one())

    return run_services(server.database_url, work)


@pytest.mark.parametrize("event", list(EVENTS))
def test_a_credential_event_revokes_every_token_at_once(server: LiveServer, demo: Demo, event: str) -> None:
    kind, act = EVENTS[event]
    subject = _subject(server, demo, kind)
    caller = Api(server)
    response = caller.post(LOGIN, subject.login)
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    caller.token = response.headers["X-Authorization"].removeprefix("Bearer ")
    ending = Api(server, _near_its_end(demo, subject, _version(server, subject)))
    balance = {"card_reference": demo.card_references[0], "page": 1, "limit": 1}
    assert "errors" not in caller.call(documents.CARD_BALANCE, balance)
    renewed = ending.post(documents.CARD_BALANCE, balance)
    assert "errors" not in renewed.json() and renewed.headers["X-Authorization"].startswith("Bearer ")

    run_services(server.database_url, lambda services: act(services, demo, subject))

    with unchanged(server.database_url, demo.account_id):
        for token in (caller.token, ending.token):
            reply = Api(server, token).post(documents.CARD_BALANCE, balance)
            body = reply.json()
            assert (body["errors"][0]["message"], body["data"]) == ("Unauthorized", {"Cards": None}), event
            assert "X-Authorization" not in reply.headers and "Authorization" not in reply.headers
            order = Api(server, token).post(documents.PRODUCTS, {"account_id": demo.account_id})
            assert order.json()["errors"][0]["message"] == "Unauthorized"
