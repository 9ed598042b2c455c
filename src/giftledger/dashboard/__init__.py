"""The merchant dashboard: server-rendered pages over the same services as the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from giftledger.dashboard.pages import (
    audit,
    auth,
    branding,
    card_import,
    cardholder,
    cards,
    dev_mail,
    finance,
    lifecycle,
    overview,
    pos_mode,
    product_pins,
    replacement,
    reports,
    settings,
    shop,
    team,
    time_zone,
    webhooks,
)
from giftledger.dashboard.web import Dashboard
from giftledger.services.context import Services

__all__ = ["dashboard_error_handlers", "dashboard_routes"]

STATIC = Path(__file__).with_name("static")


def dashboard_routes(services: Services) -> list[BaseRoute]:
    """Every dashboard route, for the composition root to mount beside /graphql."""
    dashboard = Dashboard(services)
    routes: list[BaseRoute] = [Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    pages = (auth, overview, lifecycle, cards, pos_mode, reports, shop, settings, team, branding, time_zone, audit)
    for module in (card_import, replacement, product_pins, *pages, finance, webhooks, dev_mail, cardholder):
        routes.extend(module.routes(dashboard))
    return routes


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def dashboard_error_handlers(services: Services, *, besides: tuple[str, ...]) -> Mapping[int, ErrorHandler]:
    """Handlers for the composition root's Starlette: an unknown path (404) or a method a page does not take
    (405) answers the dashboard's styled error page, with its hardening headers, signed in or not. Paths under
    `besides` (the API's: /graphql and its neighbours) keep Starlette's plain answer, their contract's shape."""
    dashboard = Dashboard(services)

    async def unmatched(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        path = request.url.path
        if any(path == prefix or path.startswith(prefix + "/") for prefix in besides):
            return PlainTextResponse(error.detail, status_code=error.status_code, headers=error.headers)
        return await dashboard.unmatched(request, error)

    return {404: unmatched, 405: unmatched}
