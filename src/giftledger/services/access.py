"""Logging in and recognising callers: API users (tills) by username, dashboard users by email."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from giftledger import metrics
from giftledger.auth.passwords import check_password
from giftledger.auth.tokens import TokenClaims
from giftledger.domain.errors import Forbidden, Throttled, Unauthorized
from giftledger.domain.permissions import Role
from giftledger.domain.records import ApiUserRow, MembershipRow, UserRow
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


@dataclass(frozen=True)
class Person:
    """A team member whose email and password were right: their login and the accounts they belong to."""

    user: UserRow
    memberships: list[MembershipRow]


SEVERAL_ACCOUNTS = "This login belongs to several accounts: name the account to sign in to (account_id)."
NOT_A_MEMBER = "This login is not a member of that account."


async def check_credentials(
    services: Services, *, username: str | None, email: str | None, password: str, client_address: str
) -> ApiUserRow | Person:
    """Who the credentials name: an API user, or a team member with every account they belong to.
    Throttled per login name and per client address after repeated failures; every attempt is recorded;
    the refusal never tells whether the name exists."""
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
                metrics.login_failed("throttled")
                raise Throttled(LOGIN_THROTTLED)
    # Who the name is, read first; the password is checked outside any transaction, off the event loop
    # (argon2id takes ~30 ms of CPU: `check_password`), then the attempt is recorded.
    found: ApiUserRow | Person | None = None
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
            found = api_user
        elif user is not None and user.deleted_at is None:
            found = Person(user, memberships)
    async with services.db.transaction() as conn:
        await Directory(conn).record_login(subjects, found is not None)
    if found is None:
        metrics.login_failed("credentials")
        raise Unauthorized(LOGIN_REFUSED)
    return found


def membership_in(person: Person, account_id: int | None) -> MembershipRow:
    """The account a team member signs in to: the one named, or their only one. A person in several accounts
    always chooses (never "the first"); one in none is refused like a wrong password."""
    if account_id is None:
        if len(person.memberships) > 1:
            raise Forbidden(SEVERAL_ACCOUNTS)
        if not person.memberships:
            raise Unauthorized(LOGIN_REFUSED)
        return person.memberships[0]
    for membership in person.memberships:
        if membership.account_id == account_id:
            return membership
    raise Forbidden(NOT_A_MEMBER)


def user_principal(user: UserRow, membership: MembershipRow, client_address: str | None = None) -> Principal:
    return Principal(
        "user",
        user.id,
        membership.account_id,
        Role(membership.role),
        None,
        user.email,
        client_address,
        user.token_version,
    )


async def log_in(
    services: Services,
    *,
    username: str | None,
    email: str | None,
    password: str,
    client_address: str,
    account_id: int | None = None,
) -> Login:
    """Check credentials (`check_credentials`) and issue a token for the account they act on: an API user's
    own, or the account a team member names (`membership_in`)."""
    found = await check_credentials(
        services, username=username, email=email, password=password, client_address=client_address
    )
    if isinstance(found, Person):
        principal = user_principal(found.user, membership_in(found, account_id))
    else:
        principal = _api_user_principal(found, found.token_version)
    version = principal.token_version
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
                return user_principal(user, membership, client_address)
    raise Unauthorized()
