"""Who is calling, and the dependencies every use case is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NoReturn

from giftledger import metrics
from giftledger.auth.tokens import TokenIssuer
from giftledger.config import Settings
from giftledger.domain.errors import DomainError, Forbidden, Unauthorized
from giftledger.domain.permissions import Permission, Role, allows
from giftledger.domain.validation import Problems
from giftledger.storage.callers import CallerKind, Credential, is_live
from giftledger.storage.database import Database
from giftledger.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Principal:
    """A caller acting on one account, as its token (or dashboard session) names it.

    Whether its credential is still live (the user not deleted, its token version current) is checked by
    every unit of work (`Services.unit_of_work`) and folded into every till statement: a use case either
    raises `Unauthorized` or has checked it before refusing or doing anything else."""

    kind: CallerKind
    id: int
    account_id: int
    role: Role
    merchant_id: int | None  # an API user's POS merchant; None for a dashboard user
    name: str
    client_address: str | None = None  # where the request came from (audit, card-guessing counts)
    token_version: int = 0  # the version the token (or session) was issued at

    @property
    def api_user_id(self) -> int | None:
        return self.id if self.kind == "api_user" else None

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == "user" else None

    @property
    def credential(self) -> Credential:
        return Credential(self.kind, self.id, self.account_id, self.token_version)

    def allows(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not allows(self.role, permission):
            raise Forbidden()


def operator(account_id: int) -> Principal:
    """The operator at the command line: a Store Owner of any account, never named by a token."""
    return Principal("system", 0, account_id, Role.STORE_OWNER, None, "operator")


class KnownApiUsers:
    """The API users this process has recognised, by id: what never changes about one (its account, POS
    merchant and username), so that a till's request needs no look-up of its own before its statement, which
    checks the credential itself. Whether it is still live is never remembered. Bounded: emptied when full."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: dict[int, Principal] = {}

    def remember(self, principal: Principal) -> None:
        if principal.kind != "api_user":
            return
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[principal.id] = principal

    def get(self, api_user_id: int) -> Principal | None:
        return self._known.get(api_user_id)


@dataclass(frozen=True)
class Services:
    """The composition root's hand-off to every use case."""

    db: Database
    settings: Settings
    tokens: TokenIssuer
    api_users: KnownApiUsers = field(default_factory=KnownApiUsers)
    replica: Database | None = None  # GIFTLEDGER_READ_DATABASE_URL: reports and exports only, never tills or money

    @property
    def reporting_db(self) -> Database:
        """Where reports and exports read: the read replica when one is configured, else the primary."""
        return self.replica if self.replica is not None else self.db

    async def dispose(self) -> None:
        """Close the pools (the primary's and the replica's)."""
        if self.replica is not None:
            await self.replica.dispose()
        await self.db.dispose()

    @asynccontextmanager
    async def unit_of_work(self, principal: Principal) -> AsyncIterator[UnitOfWork]:
        """One transaction acting for `principal` on its account: its credential is checked first. The money it
        moved is counted (metrics.py) once it has committed."""
        async with self.db.transaction() as conn:
            if not await is_live(conn, principal.credential):
                raise Unauthorized()
            uow = UnitOfWork(conn, principal.account_id)
            yield uow
        metrics.money_moved((entry.type.name.lower(), entry.value) for entry in uow.ledger.posted)

    async def confirm(self, principal: Principal) -> None:
        """Raise `Unauthorized` unless `principal`'s credential is live (for a use case with no statement)."""
        async with self.unit_of_work(principal):
            pass

    async def refuse(self, principal: Principal, refusal: DomainError) -> NoReturn:
        """Refuse a request before any statement ran for it: a revoked credential is told so first."""
        await self.confirm(principal)
        raise refusal

    async def check(self, principal: Principal, permission: Permission, problems: Problems) -> None:
        """Before a till statement (which checks the credential itself): the permission, then the input, each
        refused only once the credential was checked."""
        if not principal.allows(permission):
            await self.refuse(principal, Forbidden())
        if problems:
            await self.refuse(principal, problems.error())
