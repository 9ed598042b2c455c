"""Dashboard sessions: signing in with email and password, the account a browser acts on, signing out.

A person who belongs to several accounts chooses the account after signing in (the session waits with no
account until then) and may switch later; the dashboard never picks one for them.

A session is a server-side row found by the hash of a random id (the browser keeps the id in a cookie).
Every request re-reads the user, its token version and its membership: a credential event (a password changed
or reset, a role changed, removal from the account: storage/people.py and members.py raise the token version)
ends the session on its next page."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from giftledger.auth.handed_out import new_secret, stored_hash
from giftledger.auth.passwords import hash_password, verify_password
from giftledger.domain.errors import Forbidden, Unauthorized, ValidationFailed
from giftledger.domain.permissions import Permission, allows
from giftledger.domain.records import MembershipRow, UserRow
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.services.access import LOGIN_REFUSED, Person, check_credentials, user_principal
from giftledger.services.context import Principal, Services
from giftledger.services.setup import MIN_PASSWORD_LENGTH
from giftledger.storage.clock import utcnow
from giftledger.storage.invitations import InvitationRow, Invitees
from giftledger.storage.people import Directory
from giftledger.storage.sessions import SessionRow, Sessions

SESSION_LIFETIME = timedelta(hours=12)
WRONG_CURRENT_PASSWORD = "This is not your current password."


@dataclass(frozen=True)
class DashboardSession:
    """A signed-in browser: who it is, the account it acts on, and the CSRF token its forms carry."""

    session_id: int
    principal: Principal
    user_name: str
    account_name: str
    accounts: dict[int, str]  # every account the user belongs to: id -> name
    csrf_token: str
    time_zone: str = DEFAULT_TIME_ZONE  # the account's: every time its pages show is in it


def csrf_matches(expected: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())


async def start_session(services: Services, *, email: str, password: str, client_address: str) -> str:
    """Check the credentials (throttled, and the same answer whether or not the email exists) and open a
    session: on the person's account when they have one, or waiting for them to choose (`account_choice`)
    when they belong to several. Returns the secret session id for the cookie."""
    found = await check_credentials(
        services, username=None, email=email, password=password, client_address=client_address
    )
    if not isinstance(found, Person) or not found.memberships:
        raise Unauthorized(LOGIN_REFUSED)
    only = found.memberships[0] if len(found.memberships) == 1 else None
    if only is not None:
        user_principal(found.user, only).require(Permission.DASHBOARD)
    async with services.db.transaction() as conn:
        return await open_for(Sessions(conn), found.user, only.account_id if only else None)


async def open_for(sessions: Sessions, user: UserRow, account_id: int | None) -> str:
    """A new session of `user` on `account_id` (None: to be chosen), in the caller's transaction."""
    token = new_secret()
    now = utcnow()
    await sessions.remove_expired(user.id, now)
    await sessions.add(
        token_hash=stored_hash(token),
        user_id=user.id,
        account_id=account_id,
        csrf_token=secrets.token_urlsafe(32),
        token_version=user.token_version,
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    return token


@dataclass(frozen=True)
class SignedIn:
    """A live session of a live user, on an account or not yet."""

    session: SessionRow
    user: UserRow
    memberships: list[MembershipRow]


async def _signed_in(sessions: Sessions, directory: Directory, token: str | None) -> SignedIn | None:
    """The session a cookie names, or None (and the row removed) when it is unknown, expired, its user is
    deleted or its token version rotated, or its account is one the user no longer belongs to."""
    if not token:
        return None
    row = await sessions.by_token_hash(stored_hash(token))
    if row is None:
        return None
    user = await directory.user(row.user_id)
    if (
        row.expires_at <= utcnow()
        or user is None
        or user.deleted_at is not None
        or user.token_version != row.token_version
    ):
        await sessions.remove(row.id)
        return None
    memberships = await directory.memberships(user.id)
    if row.account_id is not None and all(m.account_id != row.account_id for m in memberships):
        await sessions.remove(row.id)
        return None
    return SignedIn(row, user, memberships)


async def open_session(
    services: Services, token: str | None, *, client_address: str | None = None
) -> DashboardSession | None:
    """The session a cookie names, or None when it is not live (`_signed_in`), has no account chosen yet
    (`account_choice`), or its role may not use the dashboard. The principal carries `client_address` (where
    this request came from: audit records and card-miss counts)."""
    async with services.db.transaction() as conn:
        found = await _signed_in(Sessions(conn), Directory(conn), token)
        account_id = found.session.account_id if found is not None else None
        time_zone = await Directory(conn).account_time_zone(account_id) if account_id is not None else None
    if found is None or found.session.account_id is None:
        return None
    current = next(m for m in found.memberships if m.account_id == found.session.account_id)
    principal = user_principal(found.user, current, client_address)
    principal = replace(principal, token_version=found.session.token_version)
    if not allows(principal.role, Permission.DASHBOARD):
        return None
    return DashboardSession(
        session_id=found.session.id,
        principal=principal,
        user_name=found.user.name,
        account_name=current.account_name,
        accounts={m.account_id: m.account_name for m in found.memberships},
        csrf_token=found.session.csrf_token,
        time_zone=time_zone or DEFAULT_TIME_ZONE,
    )


@dataclass(frozen=True)
class AccountChoice:
    """A signed-in person choosing the account to act on, and the invitations waiting for their address."""

    session_id: int
    user_id: int
    user_name: str
    email: str
    chosen: int | None  # the account the session acts on now, if any
    accounts: dict[int, str]
    invitations: list[InvitationRow]
    csrf_token: str


async def account_choice(services: Services, token: str | None) -> AccountChoice | None:
    """What the account chooser shows a live session (None: sign in first)."""
    async with services.db.transaction() as conn:
        found = await _signed_in(Sessions(conn), Directory(conn), token)
        if found is None:
            return None
        invitations = await Invitees(conn).for_email(found.user.email, utcnow())
    return AccountChoice(
        session_id=found.session.id,
        user_id=found.user.id,
        user_name=found.user.name,
        email=found.user.email,
        chosen=found.session.account_id,
        accounts={m.account_id: m.account_name for m in found.memberships},
        invitations=invitations,
        csrf_token=found.session.csrf_token,
    )


async def choose_account(services: Services, session_id: int, user_id: int, account_id: int) -> Principal:
    """Act on one of the accounts the user belongs to, as a role that may use the dashboard."""
    async with services.db.transaction() as conn:
        directory = Directory(conn)
        user = await directory.user(user_id)
        membership = next((m for m in await directory.memberships(user_id) if m.account_id == account_id), None)
        if user is None or membership is None:
            raise Forbidden("You are not a member of that account.")
        principal = user_principal(user, membership)
        principal.require(Permission.DASHBOARD)
        await Sessions(conn).set_account(session_id, account_id)
    return principal


async def end_session(services: Services, session: DashboardSession) -> None:
    await end_session_by_id(services, session.session_id)


async def end_session_by_id(services: Services, session_id: int) -> None:
    async with services.db.transaction() as conn:
        await Sessions(conn).remove(session_id)


async def change_password(services: Services, session: DashboardSession, *, current: str, new: str) -> None:
    """A user sets their own password: every token and every other session of theirs ends at once."""
    problems: dict[str, list[str]] = {}
    if len(new) < MIN_PASSWORD_LENGTH:
        problems["new_password"] = [f"Must be at least {MIN_PASSWORD_LENGTH} characters."]
    async with services.db.transaction() as conn:
        directory = Directory(conn)
        user = await directory.user(session.principal.id)
        assert user is not None
        if not verify_password(user.password_hash, current):
            problems["current_password"] = [WRONG_CURRENT_PASSWORD]
        if problems:
            raise ValidationFailed(problems)
        version = await directory.set_user_password(user.id, hash_password(new))  # revokes every token
        await Sessions(conn).remove_for_user(user.id, keep=session.session_id, token_version=version)
