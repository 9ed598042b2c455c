"""Who is calling, and the dependencies every use case is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from giftledger.auth.tokens import TokenIssuer
from giftledger.config import Settings
from giftledger.domain.errors import Forbidden
from giftledger.domain.permissions import Permission, Role, allows
from giftledger.storage.database import Database
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

    @property
    def api_user_id(self) -> int | None:
        return self.id if self.kind == "api_user" else None

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == "user" else None

    def require(self, permission: Permission) -> None:
        if not allows(self.role, permission):
            raise Forbidden()


@dataclass(frozen=True)
class Services:
    """The composition root's hand-off to every use case."""

    db: Database
    settings: Settings
    tokens: TokenIssuer

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
