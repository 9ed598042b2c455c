"""The merchant dashboard: server-rendered pages over the same services as the API."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from giftledger.dashboard.pages import (
    audit,
    auth,
    branding,
    cardholder,
    cards,
    dev_mail,
    overview,
    reports,
    settings,
    shop,
    team,
)
from giftledger.dashboard.web import Dashboard
from giftledger.services.context import Services

__all__ = ["dashboard_routes"]

STATIC = Path(__file__).with_name("static")


def dashboard_routes(services: Services) -> list[BaseRoute]:
    """Every dashboard route, for the composition root to mount beside /graphql."""
    dashboard = Dashboard(services)
    routes: list[BaseRoute] = [Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    for module in (auth, overview, cards, reports, shop, settings, team, branding, audit, dev_mail, cardholder):
        routes.extend(module.routes(dashboard))
    return routes
