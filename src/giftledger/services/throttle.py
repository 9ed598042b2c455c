"""The GraphQL cost budget, like Toggle's: each caller holds up to `cost_maximum` credits, spends a query's
cost on every request, and gets `cost_restore` credits back every `cost_restore_seconds`. With too few
credits left for a request, it is refused (nothing runs) until enough have come back.

Callers: an API user or a dashboard user once authenticated, otherwise the client address."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from giftledger.domain.errors import Unauthorized
from giftledger.services.context import Principal, Services
from giftledger.storage.throttle import Buckets


@dataclass(frozen=True)
class BudgetStatus:
    subject: str
    charged: bool  # False: refused, nothing taken
    cost: int
    available: float  # after this request
    maximum: int
    restore_per_second: float

    @property
    def currently_available(self) -> int:
        return max(0, math.floor(self.available))

    @property
    def retry_after_seconds(self) -> int:
        """How long until this request's cost is available again (0 when it was charged)."""
        if self.charged:
            return 0
        return max(1, math.ceil((self.cost - self.available) / self.restore_per_second))


def enabled(services: Services) -> bool:
    return services.settings.cost_maximum > 0


def subject_of(principal: Principal | None, client_address: str) -> str:
    return f"{principal.kind}:{principal.id}" if principal is not None else f"addr:{client_address}"


def _rate(services: Services) -> float:
    settings = services.settings
    return settings.cost_restore / settings.cost_restore_seconds


async def spend(
    services: Services, subject: str, cost: int, *, now: float | None = None, caller: Principal | None = None
) -> BudgetStatus:
    """Take `cost` credits from the caller's budget if it holds that many (after refilling it). The spend
    checks `caller`'s credential, and raises Unauthorized, spending nothing, when it is revoked."""
    maximum = services.settings.cost_maximum
    at = time.time() if now is None else now
    result = await Buckets(services.db).spend(
        subject,
        cost,
        maximum=maximum,
        per_second=_rate(services),
        now=at,
        credential=caller.credential if caller is not None else None,
    )
    if result is None:
        raise Unauthorized()
    return BudgetStatus(subject, result.charged, cost, result.available, maximum, _rate(services))


async def settle(services: Services, status: BudgetStatus, actual: int) -> BudgetStatus:
    """Make the request's charge its actual cost: give back what its estimate took beyond it, or take what the
    reply cost beyond its estimate (the budget may then go below zero: later requests wait for it to refill)."""
    if actual < status.cost:
        return await refund(services, status, status.cost - actual)
    if actual == status.cost or not status.charged:
        return status
    available = await Buckets(services.db).add(status.subject, status.cost - actual, maximum=status.maximum)
    if available is None:
        return status
    return BudgetStatus(status.subject, True, actual, available, status.maximum, status.restore_per_second)


async def refund(services: Services, status: BudgetStatus, unused: int) -> BudgetStatus:
    """Give back the part of a charged request's cost it did not use (its estimate was above its actual cost)."""
    if unused <= 0 or not status.charged:
        return status
    available = await Buckets(services.db).add(status.subject, unused, maximum=status.maximum)
    if available is None:
        return status
    return BudgetStatus(
        status.subject, True, status.cost - unused, available, status.maximum, status.restore_per_second
    )
