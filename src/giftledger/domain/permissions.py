"""Who may do what: the one permission table for every transport (API, dashboard, CLI)."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    STORE_OWNER = "store_owner"
    STORE_MANAGER = "store_manager"
    FINANCIAL_MANAGER = "financial_manager"
    GUEST_SERVICE = "guest_service"
    FOH_MANAGER = "foh_manager"
    FOH_STAFF = "foh_staff"
    API_USER = "api_user"  # a POS integration's credentials, not a person

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = MappingProxyType(
    {
        Role.STORE_OWNER: "Store Owner",
        Role.STORE_MANAGER: "Store Manager",
        Role.FINANCIAL_MANAGER: "Financial Manager",
        Role.GUEST_SERVICE: "Guest Service",
        Role.FOH_MANAGER: "Front of House manager",
        Role.FOH_STAFF: "Front of House Staff",
        Role.API_USER: "API user (POS integration)",
    }
)
TEAM_ROLES = tuple(role for role in Role if role is not Role.API_USER)


class Permission(StrEnum):
    CARD_READ = "card.read"
    CARD_SELL = "card.sell"
    CARD_REDEEM = "card.redeem"
    CARD_TOP_UP = "card.top_up"
    CARD_ADJUST = "card.adjust"  # manual adjustment with a reason (dashboard)
    CARD_BLOCK = "card.block"  # block and unblock a card with a reason (dashboard)
    CARD_EXPIRY = "card.expiry"  # change cards' expiry, one or in bulk (dashboard)
    LINE_ITEM_REVERSE = "line_item.reverse"
    ORDER_READ = "order.read"
    PRODUCT_READ = "product.read"
    PRODUCT_MANAGE = "product.manage"
    SITE_MANAGE = "site.manage"
    INTEGRATION_MANAGE = "integration.manage"  # API users and site mapping
    TEAM_MANAGE = "team.manage"
    REPORT_READ = "report.read"
    AUDIT_READ = "audit.read"
    DASHBOARD = "dashboard"


_P = Permission
_ALL = frozenset(Permission)
PERMISSIONS: MappingProxyType[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.STORE_OWNER: _ALL,
        Role.STORE_MANAGER: _ALL - {_P.TEAM_MANAGE, _P.INTEGRATION_MANAGE, _P.AUDIT_READ},
        Role.FINANCIAL_MANAGER: frozenset({_P.DASHBOARD, _P.CARD_READ, _P.ORDER_READ, _P.PRODUCT_READ, _P.REPORT_READ}),
        Role.GUEST_SERVICE: frozenset({_P.DASHBOARD, _P.CARD_READ, _P.ORDER_READ, _P.PRODUCT_READ, _P.REPORT_READ}),
        Role.FOH_MANAGER: frozenset(
            {
                _P.DASHBOARD,
                _P.CARD_READ,
                _P.CARD_SELL,
                _P.CARD_REDEEM,
                _P.CARD_TOP_UP,
                _P.ORDER_READ,
                _P.PRODUCT_READ,
            }
        ),
        Role.FOH_STAFF: frozenset({_P.DASHBOARD, _P.CARD_READ, _P.CARD_REDEEM}),
        Role.API_USER: frozenset(
            {
                _P.CARD_READ,
                _P.CARD_SELL,
                _P.CARD_REDEEM,
                _P.CARD_TOP_UP,
                _P.LINE_ITEM_REVERSE,
                _P.ORDER_READ,
                _P.PRODUCT_READ,
            }
        ),
    }
)


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
