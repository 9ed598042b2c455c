"""Settings > Branding: the colour and logo of an account's e-gift emails and card pages (Store Owner only:
the permission that gates the account's other settings for its people, Team).

A change is checked whole before anything is written: a colour that is not `#rrggbb`, or a logo that is not a
PNG or JPEG by its bytes, or larger than `MAX_LOGO_BYTES`, is refused and nothing changes. Emails already
queued keep the branding they were built with; card pages show the current one."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain import branding
from giftledger.domain.errors import NotFound
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import Branding
from giftledger.storage.people import Directory

PERMISSION = Permission.TEAM_MANAGE
NO_LOGO = "This account has no logo."


@dataclass(frozen=True)
class BrandingView:
    account_name: str
    colour: str
    ink: str  # the text colour on `colour`
    logo_type: str | None
    logo_bytes: int  # 0: no logo


@dataclass(frozen=True)
class Saved:
    colour: str
    logo_type: str | None  # the new logo's type; None when the logo was left as it was
    logo_bytes: int


async def branding_settings(services: Services, principal: Principal) -> BrandingView:
    principal.require(PERMISSION)
    async with services.unit_of_work(principal) as uow:
        name = await Directory(uow.conn).account_name(uow.account_id) or ""
        row = await Branding(uow.conn, uow.account_id).get()
    if row is None:
        return BrandingView(name, branding.DEFAULT_COLOUR, branding.ink_on(branding.DEFAULT_COLOUR), None, 0)
    logo_type = row.logo_type if row.logo else None
    return BrandingView(name, row.colour, branding.ink_on(row.colour), logo_type, len(row.logo or b""))


async def logo(services: Services, principal: Principal) -> tuple[bytes, str]:
    """The account's logo and its content type (for the page's preview)."""
    principal.require(PERMISSION)
    async with services.unit_of_work(principal) as uow:
        row = await Branding(uow.conn, uow.account_id).get()
    if row is None or row.logo is None or row.logo_type is None:
        raise NotFound(NO_LOGO)
    return row.logo, row.logo_type


def check_logo(data: bytes, problems: Problems) -> str | None:
    """The type of an uploaded logo, or None with the reason added to `problems` under "logo"."""
    if not data:
        problems.add("logo", branding.LOGO_EMPTY)
        return None
    if len(data) > branding.MAX_LOGO_BYTES:
        problems.add("logo", branding.LOGO_TOO_LARGE)
        return None
    found = branding.logo_type(data)
    if found is None:
        problems.add("logo", branding.LOGO_NOT_AN_IMAGE)
    return found


async def save_branding(services: Services, principal: Principal, *, colour: str, logo: bytes | None) -> Saved:
    """Set the colour and, when one is given, replace the logo: both or neither."""
    principal.require(PERMISSION)
    problems = Problems()
    clean = branding.colour(colour)
    if clean is None:
        problems.add("colour", branding.COLOUR_HINT)
    logo_type = check_logo(logo, problems) if logo is not None else None
    if problems:
        await services.refuse(principal, problems.error())
    assert clean is not None
    now = utcnow()
    async with services.unit_of_work(principal) as uow:
        stored = Branding(uow.conn, uow.account_id)
        await stored.set_colour(clean, now)
        if logo is not None:
            await stored.set_logo(logo, logo_type, default_colour=clean, now=now)
    return Saved(clean, logo_type, len(logo or b""))


async def remove_logo(services: Services, principal: Principal) -> bool:
    """Remove the logo (emails and card pages show the account's name alone); False when there was none."""
    principal.require(PERMISSION)
    async with services.unit_of_work(principal) as uow:
        stored = Branding(uow.conn, uow.account_id)
        row = await stored.get()
        if row is None or row.logo is None:
            return False
        await stored.set_logo(None, None, default_colour=row.colour, now=utcnow())
        return True
