"""Accepting an invitation to an account's team, as the person invited (services/team.py sends them).

By its link: whoever holds the link signs in as the address invited (its login's password, checked and
throttled like any sign-in) or, when the address has no login yet, chooses a name and password to create
it. Signed in already: the account chooser lists the invitations for the person's own address. Either way
the person joins with the role the invitation names, and the invitation is used up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from giftledger.auth.handed_out import stored_hash
from giftledger.auth.passwords import hash_password
from giftledger.domain.errors import Conflict, NotFound, Unauthorized
from giftledger.domain.permissions import Role
from giftledger.domain.records import MembershipRow, UserRow
from giftledger.domain.validation import Problems
from giftledger.services.access import LOGIN_REFUSED, Person, check_credentials, user_principal
from giftledger.services.context import Principal, Services
from giftledger.services.dashboard_sessions import open_for
from giftledger.services.setup import MIN_PASSWORD_LENGTH
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.invitations import InvitationRow, Invitees
from giftledger.storage.people import Directory, Team
from giftledger.storage.sessions import Sessions

INVALID_LINK = (
    "This invitation link is not valid: it has expired, been used or cancelled, or a newer invitation replaced it."
)
NO_SUCH_INVITATION = "No such invitation for your address."
LOGIN_JUST_CREATED = "A login for this address was created a moment ago: enter its password."


@dataclass(frozen=True)
class InvitationView:
    account_name: str
    email: str
    name: str
    role: Role
    expires_at: datetime


@dataclass(frozen=True)
class Joined:
    """The person has joined: a dashboard session on the account (`session_token` for the cookie, when one
    was opened) and the principal they act as there."""

    principal: Principal
    session_token: str | None = None


def _view(row: InvitationRow) -> InvitationView:
    return InvitationView(row.account_name, row.email, row.name, Role(row.role), row.expires_at)


async def invitation_by_link(services: Services, link_token: str) -> InvitationView | None:
    """The invitation a link names, while it can still be accepted."""
    async with services.db.read() as conn:
        row = await Invitees(conn).by_token_hash(stored_hash(link_token), utcnow())
    return _view(row) if row else None


async def _join(invitees: Invitees, team: Team, invitation: InvitationRow, user: UserRow) -> Principal:
    """The person becomes a member with the invitation's role (unless they already are), and the invitation
    is used up."""
    role = await team.role_of(user.id)
    if role is None:
        role = invitation.role
        await team.add_membership(user.id, role)
    await invitees.remove(invitation.id)
    membership = MembershipRow(invitation.account_id, invitation.account_name, user.id, role)
    return user_principal(user, membership)


async def accept_by_link(
    services: Services, link_token: str, *, password: str, name: str, client_address: str
) -> Joined:
    """Join as the address the link invites and open a dashboard session on the account."""
    token_hash = stored_hash(link_token)
    async with services.db.read() as conn:
        invitation = await Invitees(conn).by_token_hash(token_hash, utcnow())
        existing = await Directory(conn).user_by_email(invitation.email) if invitation else None
    if invitation is None:
        raise NotFound(INVALID_LINK)
    user: UserRow | None = None
    new_name = ""
    if existing is not None:
        found = await check_credentials(
            services, username=None, email=invitation.email, password=password, client_address=client_address
        )
        if not isinstance(found, Person):
            raise Unauthorized(LOGIN_REFUSED)
        user = found.user
    else:
        problems = Problems()
        new_name = problems.required_text("name", name, max_length=200) or ""
        if len(password) < MIN_PASSWORD_LENGTH:
            problems.add("password", f"Must be at least {MIN_PASSWORD_LENGTH} characters.")
        problems.raise_if_any()
    try:
        async with services.db.transaction() as conn:
            invitees = Invitees(conn)
            locked = await invitees.by_token_hash(token_hash, utcnow(), lock=True)
            if locked is None:
                raise NotFound(INVALID_LINK)
            directory = Directory(conn)
            if user is None:
                user_id = await directory.add_user(locked.email, new_name, hash_password(password))
                user = await directory.user(user_id)
                assert user is not None
            principal = await _join(invitees, Team(conn, locked.account_id), locked, user)
            session_token = await open_for(Sessions(conn), user, locked.account_id)
    except ConstraintBroken as error:  # the address's login was created by another acceptance meanwhile
        raise Conflict(LOGIN_JUST_CREATED) from error
    return Joined(principal, session_token)


async def accept_signed_in(services: Services, session_id: int, user_id: int, invitation_id: int) -> Joined:
    """A signed-in person accepts an invitation for their own address; their session moves to that account."""
    async with services.db.transaction() as conn:
        user = await Directory(conn).user(user_id)
        invitees = Invitees(conn)
        found = await invitees.for_email(user.email, utcnow(), invitation_id=invitation_id) if user else []
        if user is None or not found:
            raise NotFound(NO_SUCH_INVITATION)
        principal = await _join(invitees, Team(conn, found[0].account_id), found[0], user)
        await Sessions(conn).set_account(session_id, principal.account_id)
    return Joined(principal)


async def decline(services: Services, user_id: int, invitation_id: int) -> None:
    """A signed-in person turns down an invitation for their own address."""
    async with services.db.transaction() as conn:
        user = await Directory(conn).user(user_id)
        invitees = Invitees(conn)
        found = await invitees.for_email(user.email, utcnow(), invitation_id=invitation_id) if user else []
        if not found:
            raise NotFound(NO_SUCH_INVITATION)
        await invitees.remove(found[0].id)
