"""Dashboard sessions: signing in with email and password, the account a browser acts on, signing out.

A session is a server-side row found by the hash of a random id (the browser keeps the id in a cookie).
Every request re-reads the user, its token version and its membership: a credential event (a password changed
or reset, a role changed, removal from the account: storage/people.py and members.py raise the token version)
ends the session on its next page."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from giftledger.auth.passwords import hash_password, verify_password
from giftledger.domain.errors import Forbidden, ValidationFailed
from giftledger.domain.permissions import Permission, Role, allows
from giftledger.services.access import log_in
from giftledger.services.context import Principal, Services
from giftledger.services.setup import MIN_PASSWORD_LENGTH
from giftledger.storage.clock import utcnow
from giftledger.storage.people import Directory
from giftledger.storage.sessions import Sessions

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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(expected: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())


async def start_session(services: Services, *, email: str, password: str, client_address: str) -> str:
    """Check the credentials (throttled, and the same answer whether or not the email exists) and open a
    session on the user's first account. Returns the secret session id for the cookie."""
    login = await log_in(services, username=None, email=email, password=password, client_address=client_address)
    principal = login.principal
    principal.require(Permission.DASHBOARD)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with services.db.transaction() as conn:
        user = await Directory(conn).user(principal.id)
        assert user is not None
        sessions = Sessions(conn)
        await sessions.remove_expired(user.id, now)
        await sessions.add(
            token_hash=_hash(token),
            user_id=user.id,
            account_id=principal.account_id,
            csrf_token=secrets.token_urlsafe(32),
            token_version=user.token_version,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    return token


async def open_session(
    services: Services, token: str | None, *, client_address: str | None = None
) -> DashboardSession | None:
    """The session a cookie names, or None when it is unknown, expired, or its user may no longer act on
    the session's account (deleted, removed from the account, token version rotated). The principal
    carries `client_address` (where this request came from: audit records and card-miss counts)."""
    if not token:
        return None
    async with services.db.transaction() as conn:
        sessions = Sessions(conn)
        row = await sessions.by_token_hash(_hash(token))
        if row is None:
            return None
        directory = Directory(conn)
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
        current = next((m for m in memberships if m.account_id == row.account_id), None)
        if current is None:
            await sessions.remove(row.id)
            return None
        principal = Principal("user", user.id, current.account_id, Role(current.role), None, user.email, client_address)
        if not allows(principal.role, Permission.DASHBOARD):
            return None
        return DashboardSession(
            session_id=row.id,
            principal=principal,
            user_name=user.name,
            account_name=current.account_name,
            accounts={m.account_id: m.account_name for m in memberships},
            csrf_token=row.csrf_token,
        )


async def switch_account(services: Services, session: DashboardSession, account_id: int) -> None:
    """Act on another account the user belongs to."""
    async with services.db.transaction() as conn:
        user_id = session.principal.id
        if account_id not in {m.account_id for m in await Directory(conn).memberships(user_id)}:
            raise Forbidden("You are not a member of that account.")
        await Sessions(conn).set_account(session.session_id, account_id)


async def end_session(services: Services, session: DashboardSession) -> None:
    async with services.db.transaction() as conn:
        await Sessions(conn).remove(session.session_id)


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
