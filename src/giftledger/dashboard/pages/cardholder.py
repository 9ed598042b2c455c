"""The card's own page, for the person holding it (`/c/<token>`, no sign-in): balance, QR code and number,
history, under the merchant's name, logo and colour (services/cardholder.py).

The page's URL is a secret, so every response here also says `Referrer-Policy: no-referrer` (the link is never
sent on to another site) and `X-Robots-Tag: noindex`, besides the dashboard's hardening headers. The policy
allows no inline style, so the merchant's colour comes in a stylesheet of its own, `/c/<token>/brand.css`,
written from the stored colour (`#rrggbb` by the database's CHECK, and checked again here): any colour a
merchant chooses, in two custom properties the page's fixed stylesheet uses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, harden
from giftledger.domain import branding
from giftledger.domain.errors import NotFound, Retryable
from giftledger.services import cardholder

PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


def stylesheet(colour: str, ink: str) -> str:
    """A brand's colours as CSS custom properties (`--merchant`, `--on-merchant`); anything but `#rrggbb` (which
    the database never holds) is replaced by the default."""
    clean = branding.colour(colour) or branding.DEFAULT_COLOUR
    on = branding.colour(ink) or branding.ink_on(clean)
    return f":root {{ --merchant: {clean}; --on-merchant: {on}; }}\n"


def private(response: Response) -> Response:
    harden(response)
    response.headers.update(PRIVATE_HEADERS)
    return response


def routes(dashboard: Dashboard) -> list[Route]:
    services = dashboard.services

    def message(request: Request, status: int, title: str, text: str) -> Response:
        return private(dashboard.render(request, "card_page_message.html", status=status, title=title, message=text))

    def refused(request: Request, error: NotFound | Retryable) -> Response:
        if isinstance(error, Retryable):
            return message(request, 503, "Try again", "This page cannot be shown just now. Try again in a minute.")
        return message(
            request,
            404,
            "Gift card not found",
            "This link does not lead to a gift card. Check that you opened the whole link from your email.",
        )

    async def card(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            view = await cardholder.card_page(services, token)
        except (NotFound, Retryable) as error:
            return refused(request, error)
        return private(dashboard.render(request, "card_page.html", card=view, base=f"/c/{token}"))

    async def qr(request: Request) -> Response:
        try:
            png = await cardholder.card_qr(services, request.path_params["token"])
        except (NotFound, Retryable) as error:
            return refused(request, error)
        return private(Response(png, media_type="image/png"))

    async def logo(request: Request) -> Response:
        try:
            data, content_type = await cardholder.card_logo(services, request.path_params["token"])
        except (NotFound, Retryable) as error:
            return refused(request, error)
        return private(Response(data, media_type=content_type))

    async def colours(request: Request) -> Response:
        try:
            colour, ink = await cardholder.card_colours(services, request.path_params["token"])
        except (NotFound, Retryable) as error:
            return refused(request, error)
        return private(Response(stylesheet(colour, ink), media_type="text/css"))

    async def elsewhere(request: Request) -> Response:
        return refused(request, NotFound(cardholder.NO_SUCH_CARD))

    return [
        Route("/c/{token}", card, methods=["GET"]),
        Route("/c/{token}/qr.png", qr, methods=["GET"]),
        Route("/c/{token}/logo", logo, methods=["GET"]),
        Route("/c/{token}/brand.css", colours, methods=["GET"]),
        Route("/c/{rest:path}", elsewhere, methods=["GET"]),  # any other path under /c/: the same 404
    ]
