"""Mail (development): the messages this server wrote as `.eml` files instead of sending them, newest first,
and one message read back (headers, plain text, images; the file itself to open in a mail client). Only in
development and test, for Store Owners (services/dev_mail.py); elsewhere the routes do not exist."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, Page, harden
from giftledger.services import dev_mail

PAGE = "/dev/mail"


def routes(dashboard: Dashboard) -> list[Route]:
    if not dev_mail.enabled(dashboard.services.settings):
        return []

    def _name(page: Page) -> str:
        return str(page.request.path_params.get("name", ""))

    async def listing(page: Page) -> Response:
        files, total = await dev_mail.listed(page.services, page.principal)
        settings = page.services.settings
        return page.render(
            "dev_mail.html",
            files=files,
            total=total,
            directory=settings.mail_directory,
            smtp=settings.smtp_url is not None,
            shown=dev_mail.MAX_LISTED,
        )

    async def message(page: Page) -> Response:
        view = await dev_mail.opened(page.services, page.principal, _name(page))
        return page.render("dev_mail_message.html", view=view)

    async def image(page: Page) -> Response:
        data, media_type = await dev_mail.image(page.services, page.principal, _name(page), page.path_int("number"))
        return harden(Response(data, media_type=media_type))

    async def download(page: Page) -> Response:
        name = _name(page)
        data = await dev_mail.raw(page.services, page.principal, name)
        # `name` is one the directory listed, and such names hold only letters, digits, ".", "_" and "-".
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return harden(Response(data, media_type="message/rfc822", headers=headers))

    p = dashboard.page
    return [
        Route(PAGE, p(listing), methods=["GET"]),
        Route(PAGE + "/{name}", p(message), methods=["GET"]),
        Route(PAGE + "/{name}/part/{number}", p(image), methods=["GET"]),
        Route(PAGE + "/{name}/download", p(download), methods=["GET"]),
    ]
