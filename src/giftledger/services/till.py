"""Checks every till-facing money operation shares: merchant, currency, site, reference."""

from __future__ import annotations

from giftledger.domain.catalogue import currency_code
from giftledger.domain.errors import (
    NOT_EXPECTED,
    REQUIRED,
    SiteNotRecognised,
)
from giftledger.domain.validation import Problems
from giftledger.services.context import Principal, Services
from giftledger.services.ledger import duplicate_reference
from giftledger.storage.ledger import Actor
from giftledger.storage.people import Directory
from giftledger.storage.unit_of_work import UnitOfWork


async def check_merchant(
    services: Services,
    principal: Principal,
    merchant_id: int | None,
    problems: Problems,
    uow: UnitOfWork | None = None,
) -> None:
    """An API user may only act as its own POS merchant; a dashboard user as any known merchant (read in
    `uow` when given, else in a read of its own)."""
    if merchant_id is None:
        problems.add("merchant_id", REQUIRED)
    elif principal.merchant_id is not None:
        if merchant_id != principal.merchant_id:
            problems.add("merchant_id", NOT_EXPECTED)
    elif merchant_id not in await _merchants(services, uow):
        problems.add("merchant_id", NOT_EXPECTED)


async def _merchants(services: Services, uow: UnitOfWork | None) -> dict[int, str]:
    if uow is not None:
        return await uow.directory.merchants()
    async with services.db.read() as conn:
        return await Directory(conn).merchants()


def check_currency(value: str | None, problems: Problems) -> str | None:
    if value is None or not str(value).strip():
        problems.add("currency", REQUIRED)
        return None
    code = currency_code(value)
    if code is None:
        problems.add("currency", NOT_EXPECTED)
    return code


async def open_till(
    uow: UnitOfWork, principal: Principal, merchant_id: int, epos_reference: str, reference: str | None
) -> Actor:
    """The actor for a till request, in one round trip: the EPOS reference must be mapped to a live site of
    this account, and the till's merchant_transaction_reference must be new for its merchant."""
    site_id, used = await uow.sites.till_context(merchant_id, epos_reference, reference)
    if site_id is None:
        raise SiteNotRecognised()
    if used and reference is not None:
        raise await duplicate_reference(uow, merchant_id, reference)
    return Actor(api_user_id=principal.api_user_id, user_id=principal.user_id, merchant_id=merchant_id, site_id=site_id)
