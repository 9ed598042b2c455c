"""What the account's settings pages read: its sites, its POS integrations (API users and site mapping per
POS merchant), and its In-Store Gift product. Each read asks for the permission that managing it needs,
so a page is refused exactly when its forms would be. The changes themselves are in `setup`."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.errors import NotFound
from giftledger.domain.permissions import Permission
from giftledger.domain.records import ApiUserRow, PriceModifierRow, ProductRow, SiteRow
from giftledger.services.context import Principal, Services
from giftledger.services.setup import IN_STORE_PRODUCT


async def site_settings(services: Services, principal: Principal) -> list[SiteRow]:
    principal.require(Permission.SITE_MANAGE)
    async with services.unit_of_work(principal) as uow:
        return await uow.sites.active()


async def site(services: Services, principal: Principal, site_id: int) -> SiteRow:
    principal.require(Permission.SITE_MANAGE)
    async with services.unit_of_work(principal) as uow:
        row = await uow.sites.get(site_id)
    if row is None or row.deleted_at is not None:
        raise NotFound("No such site.")
    return row


@dataclass(frozen=True)
class IntegrationSummary:
    merchant_id: int
    name: str
    api_users: int
    mapped_sites: int


async def integrations(services: Services, principal: Principal) -> list[IntegrationSummary]:
    """A tile per POS merchant, with how far its set-up has got."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        merchants = await uow.directory.merchants()
        users = await uow.team.api_users()
        live = {s.id for s in await uow.sites.active()}
        summaries = []
        for merchant_id, name in merchants.items():
            mapping = await uow.sites.mapping(merchant_id)
            summaries.append(
                IntegrationSummary(
                    merchant_id,
                    name,
                    sum(1 for u in users if u.merchant_id == merchant_id),
                    sum(1 for site_id in mapping if site_id in live),
                )
            )
    return summaries


@dataclass(frozen=True)
class Integration:
    merchant_id: int
    name: str
    api_users: list[ApiUserRow]
    sites: list[SiteRow]
    mapping: dict[int, str]  # site id -> EPOS reference (store ID)


async def integration(services: Services, principal: Principal, merchant_id: int) -> Integration:
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        merchants = await uow.directory.merchants()
        if merchant_id not in merchants:
            raise NotFound("No such integration.")
        return Integration(
            merchant_id,
            merchants[merchant_id],
            await uow.team.api_users(merchant_id),
            await uow.sites.active(),
            await uow.sites.mapping(merchant_id),
        )


@dataclass(frozen=True)
class InStoreGift:
    product: ProductRow
    price_modifiers: list[PriceModifierRow]


async def in_store_gift(services: Services, principal: Principal) -> InStoreGift:
    """The account's "In-Store Gift" product: its ID (tills send it as product_id) and price modifiers."""
    principal.require(Permission.PRODUCT_READ)
    async with services.unit_of_work(principal) as uow:
        product = await uow.catalogue.product_named(IN_STORE_PRODUCT)
        if product is None:
            raise NotFound("This account has no In-Store Gift product.")
        return InStoreGift(product, await uow.catalogue.price_modifiers([product.id]))
