"""Card-number guessing: balance checks and adjustments that name a card that does not exist are "misses".

Past `card_miss_limit` misses of one API user (or dashboard user) or `card_miss_address_limit` misses
from one client address within `card_miss_window_seconds`, card look-ups by number are refused until
enough misses have aged out of the window. The moment a caller is paused is written to the audit log.
Each aliased or batched look-up counts on its own: every one of them calls these functions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from giftledger import metrics
from giftledger.config import Settings
from giftledger.domain.errors import Throttled
from giftledger.services.audit.recording import PAUSED, REFUSED, add_event
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.guessing import CardMisses, MissCount
from giftledger.storage.tills import Caller
from giftledger.storage.unit_of_work import UnitOfWork

CARD_LOOKUPS_THROTTLED = (
    "Too many look-ups of card numbers that do not exist. Card look-ups are paused; try again later."
)


class CardLookupsThrottled(Throttled):
    """Card look-ups by number are paused for this caller or client address."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(CARD_LOOKUPS_THROTTLED)
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> dict[str, object]:
        return {"reason": "card_lookups", "retry_after_seconds": self.retry_after_seconds}


def _subject(principal: Principal) -> str | None:
    """The caller misses are counted for; None for the operator at the command line (never limited)."""
    return f"{principal.kind}:{principal.id}" if principal.kind in ("api_user", "user") else None


def _retry_after(found: MissCount, settings: Settings, now: datetime) -> int:
    assert found.oldest is not None
    until = found.oldest + timedelta(seconds=settings.card_miss_window_seconds)
    return max(1, math.ceil((until - now).total_seconds()))


def caller(settings: Settings, principal: Principal, now: datetime) -> Caller:
    """Who looks a card up: the credential its statement checks, whose misses count and their limits."""
    return Caller(
        credential=principal.credential,
        subject=_subject(principal),
        client_address=principal.client_address or None,
        misses_since=now - timedelta(seconds=settings.card_miss_window_seconds),
        caller_limit=settings.card_miss_limit,
        address_limit=settings.card_miss_address_limit,
    )


def pause_seconds(
    settings: Settings, principal: Principal, by_subject: MissCount, by_address: MissCount, now: datetime
) -> int | None:
    """Seconds until look-ups resume for this caller, given its misses and its address's; None: allowed."""
    if _subject(principal) is None:
        return None
    waits: list[int] = []
    if by_subject.count >= settings.card_miss_limit:
        waits.append(_retry_after(by_subject, settings, now))
    if principal.client_address and by_address.count >= settings.card_miss_address_limit:
        waits.append(_retry_after(by_address, settings, now))
    return max(waits) if waits else None


def ensure_not_paused(
    settings: Settings, principal: Principal, misses: tuple[MissCount, MissCount], now: datetime
) -> None:
    """Refuse a look-up whose statement counted these misses (of the caller, of its address) when paused."""
    wait = pause_seconds(settings, principal, *misses, now)
    if wait is not None:
        raise CardLookupsThrottled(wait)


async def _paused(misses: CardMisses, settings: Settings, principal: Principal, now: datetime) -> int | None:
    """Seconds until look-ups resume, or None when they are allowed."""
    who = caller(settings, principal, now)
    if who.subject is None:
        return None
    by_subject, by_address = await misses.counts(who.subject, principal.client_address, who.misses_since)
    return pause_seconds(settings, principal, by_subject, by_address, now)


async def record_miss(services: Services, principal: Principal, *, now: datetime | None = None) -> bool:
    """Count one look-up of a card that does not exist (in a transaction of its own, since the request's
    own transaction is being rolled back). True when this miss pauses the caller (and was audited)."""
    subject = _subject(principal)
    if subject is None:
        return False
    settings = services.settings
    at = now or utcnow()
    async with services.db.transaction() as conn:
        misses = CardMisses(conn)
        await misses.forget_before(
            subject, principal.client_address, at - timedelta(seconds=settings.card_miss_window_seconds)
        )
        was_paused = await _paused(misses, settings, principal, at) is not None
        await misses.add(principal.account_id, subject, principal.client_address, at)
        paused = await _paused(misses, settings, principal, at)
        if paused is None or was_paused:
            return False
        await add_event(
            UnitOfWork(conn, principal.account_id),
            principal,
            operation=PAUSED,
            outcome=REFUSED,
            error_code="THROTTLED",
            detail={
                "misses_window_seconds": settings.card_miss_window_seconds,
                "caller_limit": settings.card_miss_limit,
                "address_limit": settings.card_miss_address_limit,
                "retry_after_seconds": paused,
            },
            at=at,
        )
    metrics.card_lookups_paused()  # committed
    return True
