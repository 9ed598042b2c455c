"""The sidebar: which pages a role sees (the permission table decides; services enforce it again)."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.permissions import Permission, allows
from giftledger.services.context import Principal


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    permission: Permission


@dataclass(frozen=True)
class Item:
    label: str
    href: str
    current: bool


@dataclass(frozen=True)
class Section:
    label: str | None
    items: list[Item]


SECTIONS: tuple[tuple[str | None, tuple[Link, ...]], ...] = (
    (
        None,
        (
            Link("Overview", "/", Permission.DASHBOARD),
            Link("POS Mode", "/pos", Permission.CARD_REDEEM),  # every role that sells or tops up redeems too
            Link("Cards", "/cards", Permission.CARD_READ),
            Link("Orders", "/orders", Permission.ORDER_READ),
            Link("Reports", "/reports", Permission.REPORT_READ),
        ),
    ),
    (
        "Data",
        (
            Link("Exports", "/data/exports", Permission.REPORT_READ),
            Link("Liability", "/data/liability", Permission.REPORT_READ),
            Link("Reconciliation", "/data/reconciliation", Permission.REPORT_READ),
            Link("Trends", "/data/trends", Permission.REPORT_READ),
        ),
    ),
    ("Shop", (Link("In-Store Gift", "/shop/in-store-gift", Permission.PRODUCT_READ),)),
    (
        "Settings",
        (
            Link("Site Settings", "/settings/sites", Permission.SITE_MANAGE),
            Link("Integrations", "/settings/integrations", Permission.INTEGRATION_MANAGE),
            Link("Webhooks", "/settings/webhooks", Permission.INTEGRATION_MANAGE),
            Link("Team", "/settings/team", Permission.TEAM_MANAGE),
            Link("Branding", "/settings/branding", Permission.TEAM_MANAGE),
            Link("Time Zone", "/settings/time-zone", Permission.TEAM_MANAGE),
            Link("Audit Trail", "/settings/audit", Permission.AUDIT_READ),
        ),
    ),
)


def _is_current(href: str, path: str) -> bool:
    return path == href if href == "/" else path == href or path.startswith(href + "/")


# Shown in development and test, to Store Owners only (services/dev_mail.available decides).
DEV_MAIL = Link("Mail (development)", "/dev/mail", Permission.DASHBOARD)


def sections(principal: Principal, path: str, *, dev_mail: bool = False) -> list[Section]:
    result = []
    for label, links in SECTIONS:
        items = [
            Item(link.label, link.href, _is_current(link.href, path))
            for link in links
            if allows(principal.role, link.permission)
        ]
        if label is None and dev_mail:
            items.append(Item(DEV_MAIL.label, DEV_MAIL.href, _is_current(DEV_MAIL.href, path)))
        if items:
            result.append(Section(label, items))
    return result
