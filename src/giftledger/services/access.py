"""Logging in and recognising callers: API users (tills) by username, dashboard users by email."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from giftledger.auth.passwords import check_password
from giftledger.auth.tokens import TokenClaims
from giftledger.domain.errors import Throttled, Unauthorized
from giftledger.domain.permissions import Role
from giftledger.domain.records import ApiUserRow
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.people import Directory

LOGIN_REFUSED = "Unauthorized"
LOGIN_THROTTLED = "Too many failed login attempts. Try again later."
MAX_LOGIN_NAME = 320  # the longest email address


@dataclass(frozen=True)
class Login:
    token: str
    principal: Principal


async def log_in(
    services: Services, *, username: str | None, email: str | None, password: str, client_address: str
) -> Login:
    """Check credentials; throttled per login name and per client address after repeated failures.
    The reply never tells whether the name exists."""
    name = (username or email or "").strip()
    # No account has a name this long or with control characters: such a login is refused like a wrong
    # password, without looking it up or storing it (PostgreSQL refuses NUL bytes; subjects are bounded).
    well_formed = len(name) <= MAX_LOGIN_NAME and name.isprintable()
    subjects = [f"name:{name.lower()}" if well_formed else "name:(malformed)", f"addr:{client_address}"]
    settings = services.settings
    since = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    async with services.db.transaction() as conn:
        directory = Directory(conn)
        limits = (settings.login_failure_limit, settings.login_address_failure_limit)
        for subject, limit in zip(subjects, limits, strict=True):
            if await directory.recent_failures(subject, since) >= limit:
                raise Throttled(LOGIN_THROTTLED)
    # Who the name is, read first; the password is checked outside any transaction, off the event loop
    # (argon2id takes ~30 ms of CPU: `check_password`), then the attempt is recorded.
    principal = None
    version = 0
    async with services.db.read() as conn:
        directory = Directory(conn)
        api_user = user = None
        memberships = []
        if username and username.strip() and well_formed:
            api_user = await directory.api_user_by_username(name)
        elif email and email.strip() and well_formed:
            user = await directory.user_by_email(name)
            memberships = await directory.memberships(user.id) if user else []
    stored_hash = api_user.password_hash if api_user else user.password_hash if user else None
    if await check_password(stored_hash, password):
        if api_user is not None and api_user.deleted_at is None:
            principal = _api_user_principal(api_user, api_user.token_version)
            version = api_user.token_version
        elif user is not None and user.deleted_at is None and memberships:
            first = memberships[0]
            principal = Principal(
                "user", user.id, first.account_id, Role(first.role), None, user.email, token_version=user.token_version
            )
            version = user.token_version
    async with services.db.transaction() as conn:
        await Directory(conn).record_login(subjects, principal is not None)
    if principal is None:
        raise Unauthorized(LOGIN_REFUSED)
    token = services.tokens.issue(principal.kind, principal.id, principal.account_id, version)
    return Login(token, principal)


async def recognise(services: Services, token: str, *, client_address: str | None = None) -> Principal:
    """The principal a bearer token names (see `caller_for`)."""
    claims = services.tokens.verify(token)
    if claims is None:
        raise Unauthorized()
    return await caller_for(services, claims, client_address=client_address)


def _api_user_principal(api_user: ApiUserRow, version: int) -> Principal:
    return Principal(
        "api_user",
        api_user.id,
        api_user.account_id,
        Role.API_USER,
        api_user.merchant_id,
        api_user.username,
        token_version=version,
    )


async def caller_for(services: Services, claims: TokenClaims, *, client_address: str | None = None) -> Principal:
    """The principal a token's verified claims name. An API user this process has recognised before costs no
    look-up: what never changes about it is remembered (`KnownApiUsers`), and whether its credential is still
    live is checked by the statement that acts for it, as for every principal (services/context.py). Anyone
    else is looked up now, and refused when no longer live."""
    if claims.subject_kind == "api_user":
        known = services.api_users.get(claims.subject_id)
        if known is None or known.account_id != claims.account_id:
            async with services.db.read() as conn:
                api_user = await Directory(conn).api_user(claims.subject_id)
            if api_user is None or api_user.deleted_at is not None or api_user.token_version != claims.version:
                raise Unauthorized()
            known = _api_user_principal(api_user, claims.version)
            services.api_users.remember(known)
        if known.account_id != claims.account_id:
            raise Unauthorized()
        return replace(known, client_address=client_address, token_version=claims.version)
    async with services.db.read() as conn:
        directory = Directory(conn)
        user = await directory.user(claims.subject_id)
        if user is None or user.deleted_at is not None or user.token_version != claims.version:
            raise Unauthorized()
        for membership in await directory.memberships(user.id):
            if membership.account_id == claims.account_id:
                role = Role(membership.role)
                return Principal(
                    "user", user.id, membership.account_id, role, None, user.email, client_address, claims.version
                )
    raise Unauthorized()
