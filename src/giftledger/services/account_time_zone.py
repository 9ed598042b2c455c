"""The account's time zone (domain/time_zones.py): every time the dashboard shows is in it. The Store Owner
sets it, with the account's other settings for its people (the Team permission, as Branding)."""

from __future__ import annotations

from giftledger.domain import time_zones
from giftledger.domain.errors import NotFound, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.services.context import Principal, Services

NOT_A_TIME_ZONE = "Choose a time zone from the list."


async def zone_of(services: Services, principal: Principal) -> str:
    """The zone of `principal`'s account, once its credential is checked (every use case that shows or takes
    the account's days reads it here; each asks for its own permission first)."""
    async with services.unit_of_work(principal) as uow:
        found = await uow.directory.account_time_zone(principal.account_id)
    if found is None:
        raise NotFound(f"There is no account {principal.account_id}.")
    return found


async def time_zone(services: Services, principal: Principal) -> str:
    principal.require(Permission.TEAM_MANAGE)
    return await zone_of(services, principal)


async def set_time_zone(services: Services, principal: Principal, name: str) -> str:
    """Set the account's zone to `name`, an IANA zone (`Europe/London`); anything else changes nothing."""
    principal.require(Permission.TEAM_MANAGE)
    chosen = name.strip()
    if not time_zones.is_time_zone(chosen):
        await services.refuse(principal, ValidationFailed.one("time_zone", NOT_A_TIME_ZONE))
    async with services.unit_of_work(principal) as uow:
        await uow.directory.set_account_time_zone(principal.account_id, chosen)
    return chosen
