"""The landing page: the account's details (with its Account ID) and, for those who may see reports,
what the account owes card holders now."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.permissions import Permission, allows
from giftledger.services import reports


def routes(dashboard: Dashboard) -> list[Route]:
    async def overview(page: Page) -> Response:
        liability = None
        if allows(page.principal.role, Permission.REPORT_READ):
            liability = await reports.outstanding_balance(page.services, page.principal)
        return page.render("overview.html", liability=liability)

    return [Route("/", dashboard.page(overview), methods=["GET"])]
