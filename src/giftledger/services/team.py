"""The account's team, as a Store Owner manages it: invite a person with a role, change roles, remove.

Inviting never reads or changes another account's person: it creates a pending invitation with a secret
link (valid for `INVITATION_LIFETIME`) that is emailed to the address invited, through the outbox in the same
transaction; the inviter never sees the link, and the page reads the same whether or not the address already
has a login. The person joins only by accepting (services/invitations.py): signed in with their own password
if they have a login, or choosing one if they do not.
The account always keeps at least one Store Owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from giftledger.auth.handed_out import new_secret, stored_hash
from giftledger.domain.errors import NOT_EXPECTED, Conflict, NotFound, ValidationFailed
from giftledger.domain.permissions import TEAM_ROLES, Permission, Role
from giftledger.outbound import emails
from giftledger.services import messages, outbox, setup
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.invitations import AccountInvitations
from giftledger.storage.members import Members

INVITATION_LIFETIME = timedelta(days=7)
LAST_OWNER = "The account must keep at least one Store Owner."
ALREADY_A_MEMBER = "This person is already a member of the account."
INVITATION_EMAIL = "team.invitation"


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    name: str
    role: Role
    joined_at: datetime


@dataclass(frozen=True)
class Invitation:
    """A pending invitation (its link goes only to the address invited, by email)."""

    id: int
    email: str
    name: str  # as the inviter typed it
    role: Role
    expires_at: datetime


async def team_members(services: Services, principal: Principal) -> list[Member]:
    principal.require(Permission.TEAM_MANAGE)
    async with services.unit_of_work(principal) as uow:
        rows = await Members(uow.conn, principal.account_id).all()
    return [Member(r.user_id, r.email, r.name, Role(r.role), r.joined_at) for r in rows]


async def pending_invitations(services: Services, principal: Principal) -> list[Invitation]:
    principal.require(Permission.TEAM_MANAGE)
    async with services.unit_of_work(principal) as uow:
        rows = await AccountInvitations(uow.conn, principal.account_id).pending(utcnow())
    return [Invitation(r.id, r.email, r.name, Role(r.role), r.expires_at) for r in rows]


async def invite_member(services: Services, principal: Principal, *, email: str, name: str, role: str) -> Invitation:
    """Invite a person with one of the six roles (only a Store Owner may). Inviting the same address again
    replaces the earlier invitation (its link stops working)."""
    principal.require(Permission.TEAM_MANAGE)
    clean_email, clean_name = setup.member_input(email, name, role)
    link_token = new_secret()
    now = utcnow()
    async with services.unit_of_work(principal) as uow:
        if await Members(uow.conn, principal.account_id).has_email(clean_email):
            raise Conflict(ALREADY_A_MEMBER)
        invitation_id = await AccountInvitations(uow.conn, principal.account_id).replace(
            email=clean_email,
            name=clean_name,
            role=role,
            token_hash=stored_hash(link_token),
            invited_by=principal.user_id,
            now=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        invited = emails.TeamInvitation(
            name=clean_name,
            role=Role(role).label,
            link=f"{services.settings.public_url}/invitations/{link_token}",
            expires_at=now + INVITATION_LIFETIME,
        )
        built = emails.invitation(
            await messages.brand_of(uow), invited, sender=services.settings.mail_from, recipient=clean_email, now=now
        )
        await outbox.queue(uow, built, kind=INVITATION_EMAIL, recipient=clean_email)
    return Invitation(invitation_id, clean_email.lower(), clean_name, Role(role), now + INVITATION_LIFETIME)


async def cancel_invitation(services: Services, principal: Principal, invitation_id: int) -> None:
    principal.require(Permission.TEAM_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if not await AccountInvitations(uow.conn, principal.account_id).cancel(invitation_id):
            raise NotFound("No such invitation.")


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
