"""Webhooks' rules: the events giftledger sends (Toggle's names), which addresses an endpoint may have, and the
delivery schedule. Pure: no I/O (the address check after DNS resolution is outbound/webhooks.py's, with
`address_allowed` from here)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from types import MappingProxyType
from urllib.parse import urlsplit

BALANCE_ADJUSTED = "card.balance_adjusted"
SEND_RECIPIENT_EMAIL = "card.send_recipient_email"
RESEND_RECIPIENT_EMAIL = "card.resend_recipient_email"
EXPIRY_REMINDER = "card.expiry_reminder"
CARD_REFERENCE_UPDATED = "card.card_reference_updated"
ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
SEND_RECEIPT_EMAIL = "order.send_receipt_email"
TEST = "webhook.test"  # "Send test event": giftledger's own, to one endpoint

# The events an endpoint may choose, in the order the dashboard lists them, with what causes each.
EVENTS = MappingProxyType(
    {
        BALANCE_ADJUSTED: "A card's balance changed: a redemption, top-up, reversal or manual adjustment",
        ORDER_CREATED: "An order was created (cards sold)",
        ORDER_CANCELLED: "Every card sale of an order was reversed",
        SEND_RECIPIENT_EMAIL: "A sold card's e-gift email was queued to its recipient",
        RESEND_RECIPIENT_EMAIL: "A card's e-gift email was sent again from the dashboard",
        SEND_RECEIPT_EMAIL: "An order's receipt email was queued",
        EXPIRY_REMINDER: "A card's expiry reminder was queued",
        CARD_REFERENCE_UPDATED: "A card was replaced by a new number",
    }
)

API_VERSION = "3.10"
WEBHOOK_VERSION = "1.0"
MAX_URL_LENGTH = 300
SECRET_BYTES = 32  # of randomness in a new secret (64 hex characters)
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret's signature is sent this long after a rotation
TIMEOUT_S = 10.0  # one delivery attempt, DNS resolution included
RESPONSE_EXCERPT = 500  # characters of a response body kept in the delivery log
DISABLE_AFTER = timedelta(days=3)  # an endpoint failing (no 2xx) for this long is disabled


def event_list(chosen: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The events chosen, in `EVENTS`' order (none chosen: all of them), and the names that are not events."""
    unknown = [name for name in chosen if name not in EVENTS]
    wanted = set(chosen) or set(EVENTS)
    return [name for name in EVENTS if name in wanted], unknown


def address_allowed(address: str, *, production: bool) -> bool:
    """Whether a webhook may be sent to this IP address: in production only to a global (public) one, never a
    private, loopback, link-local, multicast, reserved or unspecified address (server-side request forgery);
    in development and test anywhere (a receiver on this machine)."""
    if not production:
        return True
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, *, production: bool) -> str | None:
    """What is wrong with an endpoint's URL (None: nothing). https always in production; in development and
    test http too, but only to this machine (localhost, 127.0.0.0/8, ::1). A production URL naming an IP
    address must name a public one (a host name is checked when it is resolved, at each delivery)."""
    if not url or len(url) > MAX_URL_LENGTH:
        return f"Enter the receiver's URL (at most {MAX_URL_LENGTH} characters), like https://crm.example.com/hooks."
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "The URL must not contain spaces."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError when the port is not a number)
    except ValueError:
        return "This is not a URL."
    if parts.scheme not in ("https", "http") or not host:
        return "The URL must start with https:// and name a host."
    if parts.username is not None or parts.password is not None:
        return "The URL must not carry a user name or password."
    if parts.fragment:
        return "The URL must not have a #fragment."
    if parts.scheme == "http" and (production or not _is_loopback_host(host)):
        return "The URL must use https://" + (
            "." if production else " (http:// is allowed only to this machine, in development)."
        )
    if production:
        if host == "localhost":
            return "The URL must name a public host, not this machine."
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return None
        if not address_allowed(str(literal), production=True):
            return "The URL must name a public address, not a private, loopback or link-local one."
    return None


def retry_delay(first: timedelta, attempts: int, max_attempts: int, cap: timedelta) -> timedelta | None:
    """The delay after the `attempts`-th failed attempt (None: no more): `first`, doubling each time, up to `cap`."""
    if attempts >= max_attempts:
        return None
    delay: timedelta = first * 2 ** (attempts - 1)
    return min(delay, cap)
