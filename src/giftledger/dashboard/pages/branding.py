"""Settings > Branding: the colour and logo of the account's e-gift emails and card pages, with a preview of
the e-gift's header (Store Owner only; services/branding.py). The logo form is the dashboard's one upload:
one file of at most `MAX_LOGO_BYTES` (`Dashboard.change(max_upload=...)`)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.pages.cardholder import stylesheet
from giftledger.dashboard.web import Dashboard, Page, harden
from giftledger.domain.branding import LOGO_LIMIT_TEXT, MAX_LOGO_BYTES
from giftledger.domain.branding import colour as parse_colour
from giftledger.domain.errors import ValidationFailed
from giftledger.services import branding

PAGE = "/settings/branding"


def routes(dashboard: Dashboard) -> list[Route]:
    async def _page(
        page: Page, *, status: int = 200, errors: dict[str, list[str]] | None = None, colour: str | None = None
    ) -> Response:
        """The page; after a refused save, with its problems and the colour typed (when it is one: a colour
        input shows nothing else, so the saved colour is shown instead)."""
        view = await branding.branding_settings(page.services, page.principal)
        return page.render(
            "branding.html",
            status=status,
            brand=view,
            limit=LOGO_LIMIT_TEXT,
            errors=errors or {},
            values={"colour": colour or view.colour},
        )

    async def show(page: Page) -> Response:
        return await _page(page)

    async def save(page: Page) -> Response:
        colour = page.field("colour")
        logo = await page.file("logo")
        page.note(colour=colour)
        if logo is not None:
            page.note(logo_bytes=len(logo))
        try:
            saved = await branding.save_branding(page.services, page.principal, colour=colour, logo=logo)
        except ValidationFailed as error:
            return await _page(page, status=400, errors=error.fields, colour=parse_colour(colour))
        if saved.logo_type is not None:
            page.note(logo_type=saved.logo_type)
        return page.redirect(PAGE, "branding-saved")

    async def remove_logo(page: Page) -> Response:
        removed = await branding.remove_logo(page.services, page.principal)
        page.note(removed=removed)
        return page.redirect(PAGE, "logo-removed" if removed else None)

    async def colours(page: Page) -> Response:
        view = await branding.branding_settings(page.services, page.principal)
        return harden(Response(stylesheet(view.colour, view.ink), media_type="text/css"))

    async def logo(page: Page) -> Response:
        data, content_type = await branding.logo(page.services, page.principal)
        return harden(Response(data, media_type=content_type))

    p, c = dashboard.page, dashboard.change
    return [
        Route(PAGE, p(show), methods=["GET"]),
        Route(PAGE, c("dashboard.branding.save", save, max_upload=MAX_LOGO_BYTES), methods=["POST"]),
        Route(PAGE + "/logo/remove", c("dashboard.branding.remove_logo", remove_logo), methods=["POST"]),
        Route(PAGE + "/brand.css", p(colours), methods=["GET"]),
        Route(PAGE + "/logo", p(logo), methods=["GET"]),
    ]
