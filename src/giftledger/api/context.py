"""Per-request state for resolvers: who is calling, and the token to hand back.

The caller is the principal its bearer token names (`caller`). Whether its credential is still live is not
checked here: every use case checks it in the first statement that acts for the caller (a till's one
statement, a unit of work, the cost budget's spend), and raises `Unauthorized` when it is revoked, before any
other refusal (services/context.py). So a use case that returned, or refused for any other reason, has
confirmed the caller: `act` records that, and hands back a refreshed token when the old one is near its end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from giftledger.auth.tokens import TokenClaims
from giftledger.domain.errors import DomainError, Retryable, Unauthorized
from giftledger.services.access import caller_for
from giftledger.services.context import Principal, Services

T = TypeVar("T")


@dataclass
class RequestContext:
    services: Services
    bearer_token: str | None
    client_address: str
    issued_token: str | None = None  # set by loginUser or by a refresh; sent back in response headers
    _caller: Principal | None = field(default=None, repr=False)
    _claims: TokenClaims | None = field(default=None, repr=False)
    _refused: bool = field(default=False, repr=False)  # a statement found the credential revoked
    _confirmed: bool = field(default=False, repr=False)  # a statement found it live

    def _verified(self) -> TokenClaims:
        if self._claims is None:
            claims = self.services.tokens.verify(self.bearer_token) if self.bearer_token else None
            if claims is None:
                raise Unauthorized()
            self._claims = claims
        return self._claims

    async def caller(self) -> Principal:
        """The principal the token names (looked up once per request at most)."""
        if self._refused:
            raise Unauthorized()
        if self._caller is None:
            try:
                self._caller = await caller_for(self.services, self._verified(), client_address=self.client_address)
            except Unauthorized:
                self._refused = True
                raise
        return self._caller

    async def act(self, use: Callable[[Principal], Awaitable[T]]) -> T:
        """Run a use case for the caller, and note what it found of the caller's credential."""
        principal = await self.caller()
        try:
            result = await use(principal)
        except Unauthorized:
            self._refused = True
            raise
        except Retryable:
            raise  # the database could not say
        except DomainError:
            self._confirm(principal)
            raise
        self._confirm(principal)
        return result

    async def budget_caller(self) -> Principal | None:
        """Who the cost budget is charged to (its spend checks the credential: `spent`), or None without a
        valid token."""
        if not self.bearer_token:
            return None
        try:
            return await self.caller()
        except DomainError:
            return None

    def spent(self, principal: Principal, *, live: bool) -> None:
        """The budget's spend found `principal`'s credential live, or revoked."""
        if live:
            self._confirm(principal)
        else:
            self._refused = True

    async def settled_caller(self) -> Principal | None:
        """After execution: the confirmed caller, or None (no token, a bad or revoked one, or the database
        could not say). Confirms it now if nothing in the request did."""
        if not self.bearer_token or self._refused:
            return None
        if self._confirmed:
            return self._caller
        try:
            await self.act(self.services.confirm)
        except DomainError:
            return None
        return self._caller

    def _confirm(self, principal: Principal) -> None:
        if self._confirmed:
            return
        self._confirmed = True
        claims = self._verified()
        if self.services.tokens.needs_refresh(claims):
            self.issued_token = self.services.tokens.issue(
                principal.kind, principal.id, principal.account_id, claims.version
            )
