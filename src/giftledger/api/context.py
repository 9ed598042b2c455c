"""Per-request state for resolvers: who is calling (looked up once), and the token to hand back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from giftledger.domain.errors import Unauthorized
from giftledger.services.access import principal_for
from giftledger.services.context import Principal, Services


@dataclass
class RequestContext:
    services: Services
    bearer_token: str | None
    client_address: str
    issued_token: str | None = None  # set by loginUser or by a refresh; sent back in response headers
    _principal: Principal | None = field(default=None, repr=False)

    async def principal(self) -> Principal:
        if self._principal is None:
            if not self.bearer_token:
                raise Unauthorized()
            claims = self.services.tokens.verify(self.bearer_token)
            if claims is None:
                raise Unauthorized()
            recognised = await principal_for(self.services, claims)
            self._principal = replace(recognised, client_address=self.client_address)
            if self.services.tokens.needs_refresh(claims):
                p = self._principal
                self.issued_token = self.services.tokens.issue(p.kind, p.id, p.account_id, claims.version)
        return self._principal
