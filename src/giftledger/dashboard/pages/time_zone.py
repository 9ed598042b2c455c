"""Settings > Time Zone: the account's IANA time zone, in which every dashboard page shows its times (Store
Owner only; services/account_time_zone.py)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain import time_zones
from giftledger.domain.errors import ValidationFailed
from giftledger.services import account_time_zone

PAGE = "/settings/time-zone"


def routes(dashboard: Dashboard) -> list[Route]:
    async def show(page: Page) -> Response:
        current = await account_time_zone.time_zone(page.services, page.principal)
        return page.render("time_zone.html", current=current, choices=time_zones.choices(), values={})

    async def save(page: Page) -> Response:
        chosen = page.field("time_zone")
        page.note(time_zone=chosen)
        try:
            await account_time_zone.set_time_zone(page.services, page.principal, chosen)
        except ValidationFailed as error:
            current = await account_time_zone.time_zone(page.services, page.principal)
            return page.render(
                "time_zone.html", status=400, current=current, choices=time_zones.choices(), errors=error.fields
            )
        return page.redirect(PAGE, "time-zone-saved")

    return [
        Route(PAGE, dashboard.page(show), methods=["GET"]),
        Route(PAGE, dashboard.change("dashboard.time_zone.save", save), methods=["POST"]),
    ]
