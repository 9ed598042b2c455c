"""Who is calling, and the dependencies every use case is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from sqlalchemy.exc import IntegrityError

from giftledger.auth.tokens import TokenIssuer
from giftledger.config import Settings
from giftledger.domain.errors import Forbidden, Unauthorized
from giftledger.domain.permissions import Permission, Role, allows
from giftledger.storage.database import Database
from giftledger.storage.tills import PendingCaller
from giftledger.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Principal:
    """An authenticated caller acting on one account."""

    kind: str  # "api_user" or "user"
    id: int
    account_id: int
    role: Role
    merchant_id: int | None  # an API user's POS merchant; None for a dashboard user
    name: str
    client_address: str | None = None  # where the request came from (audit, card-guessing counts)
    # Set on an API user whose token the database has not confirmed yet in this request: the token version
    # the till's statement must still find, live, for it to act (storage/tills.py). None once confirmed.
    pending_version: int | None = None

    @property
    def api_user_id(self) -> int | None:
        return self.id if self.kind == "api_user" else None

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == "user" else None

    @property
    def pending(self) -> PendingCaller | None:
        """What a statement must find to confirm this caller's token (None: confirmed already)."""
        if self.pending_version is None:
            return None
        return PendingCaller(self.account_id, self.id, self.pending_version)

    def require(self, permission: Permission) -> None:
        if not allows(self.role, permission):
            raise Forbidden()

    def require_confirmed(self) -> None:
        """For a use case with no statement of its own to confirm the token: only a till's statement can
        (api/resolvers.py), so a pending caller reaching any other is refused."""
        if self.pending_version is not None:
            raise Unauthorized()


class KnownApiUsers:
    """The API users this process has confirmed, by id: what never changes about one (its account, POS
    merchant and username), so that a till's request can be confirmed by its own statement instead of a
    token check of its own (`api.context.RequestContext.till_caller`). Whether it is still live and its
    tokens unrevoked is never remembered. Bounded: emptied when full."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: dict[int, Principal] = {}

    def remember(self, principal: Principal) -> None:
        if principal.kind != "api_user":
            return
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[principal.id] = replace(principal, client_address=None, pending_version=None)

    def get(self, api_user_id: int) -> Principal | None:
        return self._known.get(api_user_id)


@dataclass(frozen=True)
class Services:
    """The composition root's hand-off to every use case."""

    db: Database
    settings: Settings
    tokens: TokenIssuer
    api_users: KnownApiUsers = field(default_factory=KnownApiUsers)

    @asynccontextmanager
    async def unit_of_work(self, account_id: int) -> AsyncIterator[UnitOfWork]:
        async with self.db.transaction() as conn:
            yield UnitOfWork(conn, account_id)


def constraint_of(error: IntegrityError) -> str:
    """The name of the constraint an IntegrityError broke, as far as the driver tells it."""
    orig = error.orig
    name = getattr(orig, "constraint_name", None) or getattr(getattr(orig, "__cause__", None), "constraint_name", None)
    return str(name) if name else str(orig)


def broke(error: IntegrityError, name: str, sqlite_columns: str) -> bool:
    """True when `error` is a violation of constraint `name` (PostgreSQL names it; SQLite names columns)."""
    text = constraint_of(error)
    return name in text or sqlite_columns in text
