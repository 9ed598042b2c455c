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


async def check_till(
    services: Services,
    principal: Principal,
    merchant_id: int | None,
    site_id: int | None,
    problems: Problems,
    uow: UnitOfWork | None = None,
) -> None:
    """Where a money operation happens. A till names its POS merchant and its EPOS reference (mapped to a
    site: `open_till`). POS Mode, the dashboard's own till, names the site itself (`site_id`) and no POS
    merchant: only a team member signed in to the dashboard may (an API user is its POS merchant's till)."""
    if site_id is None:
        await check_merchant(services, principal, merchant_id, problems, uow)
        return
    if principal.kind != "user":
        problems.add("site_id", NOT_EXPECTED)
    elif merchant_id is not None:
        problems.add("merchant_id", NOT_EXPECTED)


async def open_till(
    uow: UnitOfWork,
    principal: Principal,
    merchant_id: int | None,
    epos_reference: str | None,
    reference: str | None,
    *,
    site_id: int | None = None,
) -> Actor:
    """The actor for a till request, in one round trip: the EPOS reference must be mapped to a live site of
    this account, and the till's merchant_transaction_reference must be new for its merchant. In POS Mode
    (`site_id`, see `check_till`) the site must be a live site of this account, and there is no merchant."""
    if site_id is not None:
        site = await uow.sites.get(site_id)
        if site is None or site.deleted_at is not None:
            raise SiteNotRecognised()
        return Actor(user_id=principal.user_id, site_id=site.id)
    assert merchant_id is not None and epos_reference is not None
    site_id, used = await uow.sites.till_context(merchant_id, epos_reference, reference)
    if site_id is None:
        raise SiteNotRecognised()
    if used and reference is not None:
        raise await duplicate_reference(uow, merchant_id, reference)
    return Actor(api_user_id=principal.api_user_id, user_id=principal.user_id, merchant_id=merchant_id, site_id=site_id)
