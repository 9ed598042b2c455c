"""The account's team, as a Store Owner manages it: invite a person with a role, change roles, remove.

No email is sent. Inviting a person who has no login yet creates one with a generated initial password
that the inviter sees once and hands over; the person changes it after signing in. A person who already
has a login (in another account) just gains this account and signs in with their own password.
The account always keeps at least one Store Owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from giftledger.auth.passwords import generate_password, verify_password
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, Conflict, NotFound, ValidationFailed
from giftledger.domain.permissions import TEAM_ROLES, Permission, Role
from giftledger.services import setup
from giftledger.services.context import Principal, Services
from giftledger.storage.members import Members
from giftledger.storage.people import Directory

INITIAL_PASSWORD_LENGTH = 16
LAST_OWNER = "The account must keep at least one Store Owner."


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    name: str
    role: Role
    joined_at: datetime


@dataclass(frozen=True)
class Invitation:
    user_id: int
    email: str
    name: str
    role: Role
    initial_password: str | None  # None: the person already had a login and keeps their own password


async def team_members(services: Services, principal: Principal) -> list[Member]:
    principal.require(Permission.TEAM_MANAGE)
    async with services.unit_of_work(principal) as uow:
        rows = await Members(uow.conn, principal.account_id).all()
    return [Member(r.user_id, r.email, r.name, Role(r.role), r.joined_at) for r in rows]


async def invite_member(services: Services, principal: Principal, *, email: str, name: str, role: str) -> Invitation:
    """Add a person with one of the six roles (only a Store Owner may)."""
    principal.require(Permission.TEAM_MANAGE)
    password = generate_password(INITIAL_PASSWORD_LENGTH)
    try:
        user_id = await setup.add_team_member(services, principal, email=email, name=name, role=role, password=password)
    except ValidationFailed as error:
        if not role.strip() and "role" in error.fields:
            error.fields["role"] = [REQUIRED]  # nothing chosen, rather than an unknown role
        raise
    async with services.db.transaction() as conn:
        user = await Directory(conn).user(user_id)
    assert user is not None
    # The password was set only if this invitation created the login: check rather than assume.
    fresh = verify_password(user.password_hash, password)
    return Invitation(user.id, user.email, user.name, Role(role), password if fresh else None)


async def change_role(services: Services, principal: Principal, user_id: int, role: str) -> None:
    principal.require(Permission.TEAM_MANAGE)
    if role not in {r.value for r in TEAM_ROLES}:
        raise ValidationFailed.one("role", NOT_EXPECTED)
    async with services.unit_of_work(principal) as uow:
        members = Members(uow.conn, principal.account_id)
        current = await members.role_of(user_id, lock=True)
        if current is None:
            raise NotFound("No such team member.")
        if (
            current == Role.STORE_OWNER
            and role != Role.STORE_OWNER
            and await members.count_with_role(Role.STORE_OWNER, lock=True) <= 1
        ):
            raise Conflict(LAST_OWNER)
        await members.set_role(user_id, role)


async def remove_member(services: Services, principal: Principal, user_id: int) -> None:
    """Take a person out of this account: their sessions on it end at once. Their login stays for any
    other account they belong to."""
    principal.require(Permission.TEAM_MANAGE)
    async with services.unit_of_work(principal) as uow:
        members = Members(uow.conn, principal.account_id)
        current = await members.role_of(user_id, lock=True)
        if current is None:
            raise NotFound("No such team member.")
        if current == Role.STORE_OWNER and await members.count_with_role(Role.STORE_OWNER, lock=True) <= 1:
            raise Conflict(LAST_OWNER)
        await members.remove(user_id)
