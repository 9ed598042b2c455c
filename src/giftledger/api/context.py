"""Per-request state for resolvers: who is calling (confirmed once), and the token to hand back.

A caller is confirmed against the database once per request (`principal`): the user still exists and the
token's version is still its current one, so deleting a user or resetting its credentials revokes its
tokens at once. A till's balance check, redemption or `LineItems` look-up on PostgreSQL need not pay for
that check as a round trip of its own: `till_caller` gives an API user this process already knows with
the token's version pending, and the request's first statement confirms it: the till's one statement
(storage/tills.py), or, with the cost budget on, the budget's spend (storage/throttle.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.exc import SQLAlchemyError

from giftledger.auth.tokens import TokenClaims
from giftledger.domain.errors import DomainError, Unauthorized
from giftledger.services.access import principal_for
from giftledger.services.context import Principal, Services


@dataclass
class RequestContext:
    services: Services
    bearer_token: str | None
    client_address: str
    issued_token: str | None = None  # set by loginUser or by a refresh; sent back in response headers
    _principal: Principal | None = field(default=None, repr=False)  # confirmed
    _claims: TokenClaims | None = field(default=None, repr=False)
    _refused: bool = field(default=False, repr=False)  # the database found the token revoked

    def _verified(self) -> TokenClaims:
        if self._claims is None:
            claims = self.services.tokens.verify(self.bearer_token) if self.bearer_token else None
            if claims is None:
                raise Unauthorized()
            self._claims = claims
        return self._claims

    async def principal(self) -> Principal:
        """The caller, confirmed against the database (once per request)."""
        if self._principal is None:
            if self._refused:
                raise Unauthorized()
            claims = self._verified()
            try:
                recognised = await principal_for(self.services, claims)
            except Unauthorized:
                self._refused = True
                raise
            self.services.api_users.remember(recognised)
            self._confirm(replace(recognised, client_address=self.client_address), claims)
        assert self._principal is not None
        return self._principal

    async def till_caller(self) -> Principal:
        """The caller for a till statement that confirms the token itself: on PostgreSQL, an API user this
        process knows comes back with `pending_version` set, and whoever runs that statement must call
        `confirmed` or `refused` with what it found (`api.resolvers`, and the cost budget's spend in
        `api.guard`). Anyone else is confirmed here, as by `principal`."""
        if self._principal is not None or self._refused or self.services.db.native is None:
            return await self.principal()
        claims = self._verified()
        known = self.services.api_users.get(claims.subject_id) if claims.subject_kind == "api_user" else None
        if known is None or known.account_id != claims.account_id:
            return await self.principal()
        return replace(known, client_address=self.client_address, pending_version=claims.version)

    async def budget_caller(self) -> Principal | None:
        """Who the cost budget is charged to, as `till_caller` gives it (the spend's statement confirms a
        pending one: api/guard.py), or None without a valid token."""
        if not self.bearer_token:
            return None
        try:
            return await self.till_caller()
        except (DomainError, SQLAlchemyError):
            return None

    def confirmed(self, principal: Principal) -> None:
        """A till statement found `principal` (from `till_caller`) live with its token's version."""
        if self._principal is None and principal.pending_version is not None:
            self._confirm(replace(principal, pending_version=None), self._verified())

    def refused(self) -> None:
        """A till statement found the token revoked (or its user gone): nothing else in this request acts."""
        if self._principal is None:
            self._refused = True

    async def settled_caller(self) -> Principal | None:
        """After execution: the confirmed caller, or None (no token, a bad or revoked one, or the database
        could not say). Confirms it now if nothing in the request did."""
        if not self.bearer_token or self._refused:
            return None
        try:
            return await self.principal()
        except (DomainError, SQLAlchemyError):
            return None

    def _confirm(self, principal: Principal, claims: TokenClaims) -> None:
        self._principal = principal
        if self.services.tokens.needs_refresh(claims):
            self.issued_token = self.services.tokens.issue(
                principal.kind, principal.id, principal.account_id, claims.version
            )
