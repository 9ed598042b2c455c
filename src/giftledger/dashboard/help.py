"""The permission table as people read it: rendered from `domain.permissions.PERMISSIONS`, the one
table every transport obeys, for the Team page and for docs/dashboard.md."""

from __future__ import annotations

from types import MappingProxyType

from giftledger.domain.permissions import PERMISSIONS, TEAM_ROLES, Permission, Role

PERMISSION_LABELS = MappingProxyType(
    {
        Permission.DASHBOARD: "Use the dashboard",
        Permission.CARD_READ: "Find cards, see balances and history",
        Permission.CARD_SELL: "Sell cards",
        Permission.CARD_REDEEM: "Redeem cards",
        Permission.CARD_TOP_UP: "Top up cards",
        Permission.CARD_ADJUST: "Adjust a card's balance by hand; replace a card; import cards",
        Permission.CARD_BLOCK: "Block and unblock a card",
        Permission.CARD_EXPIRY: "Change cards' expiry (one card or in bulk)",
        Permission.LINE_ITEM_REVERSE: "Reverse line items",
        Permission.ORDER_READ: "See orders; send a card's e-gift again",
        Permission.PRODUCT_READ: "See products (In-Store Gift)",
        Permission.PRODUCT_MANAGE: "Change products and price modifiers",
        Permission.SITE_MANAGE: "Add, edit and delete sites",
        Permission.INTEGRATION_MANAGE: "Create and delete API users; site mapping",
        Permission.TEAM_MANAGE: "Invite, change and remove team members",
        Permission.REPORT_READ: "See reports and download exports",
        Permission.AUDIT_READ: "Read the audit trail",
    }
)


def permission_rows(roles: tuple[Role, ...] = TEAM_ROLES) -> list[tuple[str, list[bool]]]:
    """One row per permission: its label and, per role, whether the role holds it."""
    return [(PERMISSION_LABELS[p], [p in PERMISSIONS[r] for r in roles]) for p in Permission]


def permission_table_markdown(roles: tuple[Role, ...] = TEAM_ROLES) -> str:
    header = "| Permission | " + " | ".join(r.label for r in roles) + " |"
    rule = "| --- |" + " :---: |" * len(roles)
    body = [
        f"| {label} | " + " | ".join("yes" if held else "" for held in marks) + " |"
        for label, marks in permission_rows(roles)
    ]
    return "\n".join([header, rule, *body])
