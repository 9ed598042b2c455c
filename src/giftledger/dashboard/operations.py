"""The Audit Trail's operations in words: the one mapping from an audit record's operation (the API's mutation,
the dashboard form's name) to what the Store Owner reads and picks from the filter's list. A record whose
operation is not listed here shows its name as recorded."""

from __future__ import annotations

from types import MappingProxyType

OPERATIONS = MappingProxyType(
    {
        "createOrder": "Till: sell cards",
        "createBalanceAdjustment": "Till: redeem or top up",
        "createReversal": "Till: reverse",
        "dashboard.pos.sell": "POS Mode: sell a card",
        "dashboard.pos.pay": "POS Mode: take a payment",
        "dashboard.pos.top_up": "POS Mode: top up",
        "dashboard.pos.reverse": "POS Mode: reverse",
        "dashboard.card.adjust": "Adjust a card's balance",
        "dashboard.card.reverse": "Reverse a line item",
        "dashboard.card.resend": "Send a digital copy",
        "dashboard.card.block": "Block a card",
        "dashboard.card.unblock": "Unblock a card",
        "dashboard.card.expiry": "Change a card's expiry",
        "dashboard.card.replace": "Replace a card",
        "dashboard.cards.expiry": "Change expiry in bulk",
        "dashboard.cards.import": "Import cards",
        "dashboard.export.queue": "Request a data export",
        "dashboard.export.download": "Download a data export",
        "dashboard.product.pin": "Set a product's PIN rule",
        "dashboard.product.validity": "Set a product's validity",
        "dashboard.webhook.add": "Add a webhook endpoint",
        "dashboard.webhook.disable": "Disable a webhook endpoint",
        "dashboard.webhook.enable": "Enable a webhook endpoint",
        "dashboard.webhook.redeliver": "Redeliver a webhook event",
        "dashboard.webhook.rotate": "Rotate a webhook secret",
        "dashboard.webhook.test": "Send a test webhook event",
        "dashboard.login": "Log in",
        "dashboard.logout": "Log out",
        "dashboard.account.switch": "Switch account",
        "dashboard.invitation.accept": "Accept an invitation",
        "dashboard.password.change": "Change password",
        "dashboard.site.add": "Add a site",
        "dashboard.site.edit": "Edit a site",
        "dashboard.site.delete": "Delete a site",
        "dashboard.api_user.create": "Create an API user",
        "dashboard.api_user.delete": "Delete an API user",
        "dashboard.site_mapping.save": "Save a site mapping",
        "dashboard.price_modifier.add": "Add a price modifier",
        "dashboard.price_modifier.edit": "Edit a price modifier",
        "dashboard.price_modifier.remove": "Remove a price modifier",
        "dashboard.team.invite": "Invite a team member",
        "dashboard.team.cancel_invitation": "Cancel an invitation",
        "dashboard.team.change_role": "Change a team member's role",
        "dashboard.team.remove": "Remove a team member",
        "dashboard.branding.save": "Save branding",
        "dashboard.branding.remove_logo": "Remove the logo",
        "dashboard.time_zone.save": "Set the time zone",
        "security.card_lookups_paused": "Card look-ups paused (guessing)",
    }
)


def in_words(operation: str) -> str:
    return OPERATIONS.get(operation, operation)


def choices() -> list[tuple[str, str]]:
    """(operation, words) for the filter's list, sorted by the words."""
    return sorted(OPERATIONS.items(), key=lambda pair: pair[1])
