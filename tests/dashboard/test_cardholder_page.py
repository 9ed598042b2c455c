"""The card's own page (`/c/<token>`, the e-gift's secret link) and Settings > Branding, over HTTP in-process:
exact balances and history, the QR code, unknown and malformed links, a reversed sale, the merchant's colour and
logo; and the branding form's refusals, each changing nothing and each audited."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from starlette.applications import Starlette

from giftledger.auth.handed_out import stored_hash
from giftledger.domain import time_zones
from giftledger.domain.branding import DEFAULT_COLOUR
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.outbound.emails import qr_png
from giftledger.security_headers import DASHBOARD_CSP
from giftledger.services import account_time_zone
from giftledger.services.context import Principal, Services, operator
from giftledger.services.sales import OrderItem, OrderRequest, sell_cards
from giftledger.services.views import OrderView
from giftledger.storage.audit import AuditEventRow, AuditFilter, AuditLog, audit_events
from giftledger.storage.outbox import AccountOutbox, Branding, BrandingRow, card_pages, outbox_messages
from giftledger.storage.people import Directory
from tests.dashboard.browser import unchanged
from tests.dashboard.helpers import PASSWORD, person, redeem, ref, till, till_reverse
from tests.dashboard.web import Web, field_error, rows, text_of
from tests.support import Demo, qr_text

LINK = re.compile(r"/c/([A-Za-z0-9_-]+)")
NOT_FOUND = "This link does not lead to a gift card. Check that you opened the whole link from your email."
COLOUR_HINT = "Enter a colour as # and six hexadecimal digits, like #1b7f3b."
NOT_AN_IMAGE = "The logo must be a PNG or JPEG image."
TOO_LARGE = "The logo must be at most 200 kB."
FORBIDDEN = "You do not have permission to do this."


# Set-up -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gift:
    order: OrderView
    token: str

    @property
    def card(self) -> Any:
        return self.order.line_items[0].card.card

    @property
    def sale(self) -> Any:
        return self.order.line_items[0].item


async def e_gift_sale(
    services: Services, pos: Principal, demo: Demo, value: int, *, card_reference: str | None = None
) -> Gift:
    """Sell one card with fulfilment method 1 (Email); the link to its page, read from the queued e-gift."""
    item = OrderItem(
        product_id=demo.product_id,
        custom_price_modifier_value=value,
        fulfilment_method_id=1,
        fulfilment_email="ann@example.com",
        message="Happy birthday!",
        card_reference=card_reference,
        generate_card_reference=card_reference is None,
    )
    request = OrderRequest(
        account_id=demo.account_id,
        merchant_id=POINTONE,
        order_items=[item],
        currency="GBP",
        total=value,
        sales_channel_id=3,
        unit_epos_reference=demo.epos,
        merchant_transaction_reference=ref("sale"),
    )
    order = await sell_cards(services, pos, request)
    card_id = order.line_items[0].card.card.id
    async with services.db.read() as conn:
        outbox = AccountOutbox(conn, demo.account_id)
        [message] = [m for m in await outbox.listed(card_id=card_id) if m.order_id == order.order.id]
        content = await outbox.content(message.id)
    assert content is not None
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain",))
    assert isinstance(text, EmailMessage)
    [token] = LINK.findall(text.get_content())
    return Gift(order, token)


async def signed_in(app: Starlette, services: Services, demo: Demo, role: Role = Role.STORE_OWNER) -> Web:
    web = Web(app)
    principal = await person(services, demo, role)
    response = await web.log_in(principal.name, PASSWORD)
    assert response.status_code == 303, response.text
    return web


async def upload(web: Web, colour: str, logo: tuple[str, bytes, str] | None = None) -> httpx.Response:
    """Post the branding form as a browser does (multipart, with the CSRF token), with or without a file."""
    if web.csrf is None:
        await web.get("/settings/branding")
    assert web.csrf is not None
    files = {"logo": logo or ("", b"", "application/octet-stream")}
    return await web.http.post("/settings/branding", data={"csrf_token": web.csrf, "colour": colour}, files=files)


def png(width: int = 120, height: int = 40, colour: str = "#ffffff") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 30), "#123456").save(out, format=kind)
    return out.getvalue()


async def branding_row(services: Services, account_id: int) -> BrandingRow | None:
    async with services.db.read() as conn:
        return await Branding(conn, account_id).get()


async def page_count(services: Services) -> tuple[int, int]:
    """How many card pages and outbound messages there are (across accounts)."""
    async with services.db.read() as conn:
        pages = (await conn.execute(select(func.count()).select_from(card_pages))).scalar_one()
        messages = (await conn.execute(select(func.count()).select_from(outbox_messages))).scalar_one()
    return int(pages), int(messages)


async def latest_audit_id(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(audit_events.c.id), 0)))).scalar_one())


async def audit_since(services: Services, account_id: int, after: int) -> list[AuditEventRow]:
    async with services.db.transaction() as conn:
        return await AuditLog(conn, account_id).after(AuditFilter(), after, 1000)


def summary(event: AuditEventRow) -> tuple[Any, ...]:
    return (event.operation, event.outcome, event.error_code, json.loads(event.detail) if event.detail else None)


def when(at: datetime, zone: str = DEFAULT_TIME_ZONE) -> str:
    """How the page shows a time: in the account's zone (the demo's: Europe/London)."""
    at = time_zones.local(at, zone)
    return f"{at.strftime('%-d %b %Y')} {at.strftime('%H:%M')}"


def shown(body: str, name: str) -> str | None:
    found = re.search(rf'<(\w+)[^>]*data-testid="{re.escape(name)}"[^>]*>(.*?)</\1>', body, flags=re.S)
    return text_of(found.group(2)) if found else None


def assert_private(response: httpx.Response) -> None:
    """The hardening headers of the dashboard, and a secret URL's: never sent on, never indexed, never kept."""
    assert response.headers["content-security-policy"] == DASHBOARD_CSP
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-robots-tag"] == "noindex, nofollow"


# The card page ------------------------------------------------------------------------------------------------


async def test_a_sale_by_email_makes_a_page_with_the_exact_balance_and_history(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    gift = await e_gift_sale(services, pos, demo, 2550)
    async with services.db.read() as conn:
        stored = (await conn.execute(select(card_pages.c.token_hash, card_pages.c.card_id))).all()
    assert (stored_hash(gift.token), gift.card.id) in [tuple(r) for r in stored]
    assert gift.token not in repr(stored)  # only its hash is kept

    visitor = Web(app)  # no session: the link is the key
    with unchanged(database_url, demo.account_id):
        page = await visitor.get(f"/c/{gift.token}")
    assert page.status_code == 200, page.text
    assert_private(page)
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert "<script" not in page.text and " style=" not in page.text
    assert shown(page.text, "merchant") == (await demo_name(services, demo))
    assert shown(page.text, "balance") == "£25.50"
    number = gift.card.card_reference
    assert shown(page.text, "card-number") == " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert f'href="/c/{gift.token}/brand.css"' in page.text and f'src="/c/{gift.token}/qr.png"' in page.text
    site = gift.sale.site_name
    assert rows(page.text, "history") == [[when(gift.sale.created_at), f"Gift card purchase at {site}", "+£25.50"]]
    assert shown(page.text, "invalid") is None

    # spending £10.05 at the till: the page shows the new balance and the payment first
    payment = (await redeem(services, pos, demo, number, 1005)).line_item
    page = await visitor.get(f"/c/{gift.token}")
    assert shown(page.text, "balance") == "£15.45"
    assert rows(page.text, "history") == [
        [when(payment.item.created_at), f"Payment at {payment.item.site_name}", "-£10.05"],
        [when(gift.sale.created_at), f"Gift card purchase at {site}", "+£25.50"],
    ]

    # the payment reversed at the till: its cancellation, and the payment marked as cancelled
    undone = await till_reverse(services, pos, demo, payment.item.id)
    [cancel] = undone.line_items
    page = await visitor.get(f"/c/{gift.token}")
    assert shown(page.text, "balance") == "£25.50"
    assert rows(page.text, "history") == [
        [when(cancel.item.created_at), f"Cancelled payment at {cancel.item.site_name}", "+£10.05"],
        [when(payment.item.created_at), f"Payment at {payment.item.site_name} cancelled", "-£10.05"],
        [when(gift.sale.created_at), f"Gift card purchase at {site}", "+£25.50"],
    ]


async def test_times_are_in_the_accounts_time_zone(app: Starlette, services: Services, demo: Demo) -> None:
    """The history's times are the merchant's wall-clock times, and the page says which zone they are in."""
    await account_time_zone.set_time_zone(services, operator(demo.account_id), "America/New_York")
    gift = await e_gift_sale(services, await till(services, demo), demo, 1200)
    page = await Web(app).get(f"/c/{gift.token}")
    assert page.status_code == 200, page.text
    local = time_zones.local(gift.sale.created_at, "America/New_York")
    assert local.utcoffset() != gift.sale.created_at.utcoffset()  # a zone that is not UTC today
    assert rows(page.text, "history") == [
        [f"{local:%-d %b %Y} {local:%H:%M}", f"Gift card purchase at {gift.sale.site_name}", "+£12.00"]
    ]
    assert f'<time datetime="{local.isoformat(timespec="seconds")}">' in page.text
    assert shown(page.text, "time-zone") == "Times are in America/New_York time."


async def demo_name(services: Services, demo: Demo) -> str:
    async with services.db.read() as conn:
        return await Directory(conn).account_name(demo.account_id) or ""


async def test_the_qr_code_decodes_to_the_card_number(app: Starlette, services: Services, demo: Demo) -> None:
    gift = await e_gift_sale(services, await till(services, demo), demo, 1000)
    response = await Web(app).get(f"/c/{gift.token}/qr.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert_private(response)
    assert qr_text(response.content) == gift.card.card_reference
    assert response.content == qr_png(gift.card.card_reference)


MALFORMED = [
    "short",
    "x" * 129,
    "%00" * 20,
    "not%20a%20token%20at%20all%20really",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%C3%A9" * 20,
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "'%20OR%201%3D1%20--%20aaaaaaaaaaaaaaaa",
]


async def test_unknown_and_malformed_links_are_a_styled_404_and_change_nothing(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    gift = await e_gift_sale(services, await till(services, demo), demo, 1000)
    visitor = Web(app)
    unknown = secrets.token_urlsafe(24)
    paths = [f"/c/{unknown}", f"/c/{unknown}/qr.png", f"/c/{unknown}/logo", f"/c/{unknown}/brand.css"]
    paths += [f"/c/{token}" for token in MALFORMED] + [f"/c/{token}/qr.png" for token in MALFORMED]
    paths += ["/c/", f"/c/{gift.token}/", f"/c/{gift.token}/other", f"/c/{gift.token}x", f"/c/{gift.token[:-1]}"]
    paths += [f"/c/{gift.token}/qr.png/more", f"/c/{gift.token.upper()}", f"/c/{gift.token}/logo"]  # it has no logo
    before = await page_count(services)
    with unchanged(database_url, demo.account_id):
        for path in paths:
            response = await visitor.get(path)
            assert response.status_code == 404, path
            assert_private(response)
            assert response.headers["content-type"].startswith("text/html"), path
            assert shown(response.text, "title") == "Gift card not found", path
            assert shown(response.text, "message") == NOT_FOUND, path
            assert '<link rel="stylesheet" href="/static/card_page.css">' in response.text
            assert gift.card.card_reference not in response.text
    assert await page_count(services) == before
    assert (await visitor.get(f"/c/{gift.token}")).status_code == 200  # the real one still works


async def test_a_reversed_sale_says_the_card_is_no_longer_valid(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    pos = await till(services, demo)
    gift = await e_gift_sale(services, pos, demo, 3000)
    undone = await till_reverse(services, pos, demo, gift.sale.id)
    [cancel] = undone.line_items
    visitor = Web(app)
    page = await visitor.get(f"/c/{gift.token}")
    assert page.status_code == 200
    assert shown(page.text, "invalid") == (
        "This gift card is no longer valid Its purchase was cancelled, so it cannot be used to pay. "
        f"If you think this is a mistake, ask {await demo_name(services, demo)}."
    )
    number = gift.card.card_reference
    for gone in ("balance", "card-number"):
        assert shown(page.text, gone) is None
    assert number not in page.text and "qr.png" not in page.text
    site = gift.sale.site_name
    assert rows(page.text, "history") == [
        [when(cancel.item.created_at), f"Cancelled gift card purchase at {site}", "-£30.00"],
        [when(gift.sale.created_at), f"Gift card purchase at {site} cancelled", "+£30.00"],
    ]
    assert (await visitor.get(f"/c/{gift.token}/qr.png")).status_code == 404

    # the card, back in stock, is sold again to someone else: the old link shows none of it
    again = await e_gift_sale(services, pos, demo, 4000, card_reference=number)
    assert again.card.id == gift.card.id and again.token != gift.token
    old = await visitor.get(f"/c/{gift.token}")
    assert shown(old.text, "invalid") is not None and "£40.00" not in old.text
    assert [r[1] for r in rows(old.text, "history")] == [
        f"Cancelled gift card purchase at {site}",
        f"Gift card purchase at {site} cancelled",
    ]
    new = await visitor.get(f"/c/{again.token}")
    assert shown(new.text, "balance") == "£40.00" and shown(new.text, "invalid") is None
    assert rows(new.text, "history") == [[when(again.sale.created_at), f"Gift card purchase at {site}", "+£40.00"]]
    with unchanged(database_url, demo.account_id):
        assert (await visitor.get(f"/c/{gift.token}/qr.png")).status_code == 404


async def test_the_page_wears_the_merchants_colour_and_logo(app: Starlette, services: Services, demo: Demo) -> None:
    gift = await e_gift_sale(services, await till(services, demo), demo, 1000)
    visitor = Web(app)
    css = await visitor.get(f"/c/{gift.token}/brand.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.text == f":root {{ --merchant: {DEFAULT_COLOUR}; --on-merchant: #ffffff; }}\n"
    assert_private(css)
    page = await visitor.get(f"/c/{gift.token}")
    assert "/logo" not in page.text  # no logo yet

    owner = await signed_in(app, services, demo)
    logo = png()
    assert (await upload(owner, "#F5D90A", ("brand.png", logo, "image/png"))).status_code == 303
    css = await visitor.get(f"/c/{gift.token}/brand.css")
    assert css.text == ":root { --merchant: #f5d90a; --on-merchant: #1d2430; }\n"  # dark text on a light colour
    page = await visitor.get(f"/c/{gift.token}")
    assert f'<img class="cp-logo" src="/c/{gift.token}/logo" alt="">' in page.text
    served = await visitor.get(f"/c/{gift.token}/logo")
    assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/png", logo)
    assert_private(served)

    jpeg = image("JPEG")
    assert (await upload(owner, "#102030", ("photo.txt", jpeg, "text/plain"))).status_code == 303
    served = await visitor.get(f"/c/{gift.token}/logo")
    assert (served.headers["content-type"], served.content) == ("image/jpeg", jpeg)  # by its bytes, not its name
    assert (await visitor.get(f"/c/{gift.token}/brand.css")).text == (
        ":root { --merchant: #102030; --on-merchant: #ffffff; }\n"
    )

    # the next e-gift is built with the new branding
    later = await e_gift_sale(services, await till(services, demo), demo, 500)
    async with services.db.read() as conn:
        outbox = AccountOutbox(conn, demo.account_id)
        [message] = await outbox.listed(card_id=later.card.id)
        content = await outbox.content(message.id)
    assert content is not None
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    html = parsed.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage) and "background:#102030" in html.get_content()
    [attached] = [p for p in parsed.walk() if p.get_content_type() == "image/jpeg"]
    assert isinstance(attached, EmailMessage) and attached.get_content() == jpeg


# Settings > Branding ------------------------------------------------------------------------------------------


async def test_the_store_owner_saves_a_colour_and_a_logo_and_removes_it(
    app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await signed_in(app, services, demo)
    page = await owner.get("/settings/branding")
    assert page.status_code == 200
    assert 'href="/settings/branding" aria-current="page"' in page.text
    assert "at most 200 kB" in text_of(page.text)
    assert 'enctype="multipart/form-data"' in page.text and f'value="{DEFAULT_COLOUR}"' in page.text
    assert shown(page.text, "current-logo") == "No logo: emails and card pages show the account's name alone."
    assert await branding_row(services, demo.account_id) is None

    marker = await latest_audit_id(services)
    logo = png()
    saved = await upload(owner, "#AA3300", ("logo.png", logo, "image/png"))
    assert (saved.status_code, saved.headers["location"]) == (303, "/settings/branding?done=branding-saved")
    assert await branding_row(services, demo.account_id) == BrandingRow("#aa3300", logo, "image/png")
    page = await owner.get("/settings/branding?done=branding-saved")
    assert "Branding saved." in text_of(page.text)
    assert 'value="#aa3300"' in page.text
    assert shown(page.text, "current-logo") == f"PNG, {len(logo) / 1000:.1f} kB."
    assert '<link rel="stylesheet" href="/settings/branding/brand.css">' in page.text
    assert '<img class="brand-preview-logo" src="/settings/branding/logo" alt="Your logo">' in page.text
    css = await owner.get("/settings/branding/brand.css")
    assert css.text == ":root { --merchant: #aa3300; --on-merchant: #ffffff; }\n"
    preview = await owner.get("/settings/branding/logo")
    assert (preview.status_code, preview.headers["content-type"], preview.content) == (200, "image/png", logo)
    assert preview.headers["x-content-type-options"] == "nosniff"

    # a colour alone keeps the logo; a logo of exactly 200 kB is accepted
    assert (await upload(owner, "#00aa33")).status_code == 303
    assert await branding_row(services, demo.account_id) == BrandingRow("#00aa33", logo, "image/png")
    largest = logo + b"\0" * (200_000 - len(logo))
    assert (await upload(owner, "#00aa33", ("big.png", largest, "image/png"))).status_code == 303
    assert await branding_row(services, demo.account_id) == BrandingRow("#00aa33", largest, "image/png")

    removed = await owner.post("/settings/branding/logo/remove")
    assert (removed.status_code, removed.headers["location"]) == (303, "/settings/branding?done=logo-removed")
    assert await branding_row(services, demo.account_id) == BrandingRow("#00aa33", None, None)
    assert (await owner.get("/settings/branding/logo")).status_code == 404
    again = await owner.post("/settings/branding/logo/remove")  # nothing left to remove: no notice
    assert (again.status_code, again.headers["location"]) == (303, "/settings/branding")

    events = await audit_since(services, demo.account_id, marker)
    assert [summary(e) for e in events] == [
        (
            "dashboard.branding.save",
            "accepted",
            None,
            {"colour": "#AA3300", "logo_bytes": len(logo), "logo_type": "image/png"},
        ),
        ("dashboard.branding.save", "accepted", None, {"colour": "#00aa33"}),
        (
            "dashboard.branding.save",
            "accepted",
            None,
            {"colour": "#00aa33", "logo_bytes": 200_000, "logo_type": "image/png"},
        ),
        ("dashboard.branding.remove_logo", "accepted", None, {"removed": True}),
        ("dashboard.branding.remove_logo", "accepted", None, {"removed": False}),
    ]


REFUSED_UPLOADS = [
    ("#123456", ("logo.png", b"This is a text file, not a picture.\n", "image/png"), "logo", NOT_AN_IMAGE),
    ("#123456", ("logo.gif", "GIF", "image/gif"), "logo", NOT_AN_IMAGE),
    ("#123456", ("logo.png", "201kB", "image/png"), "logo", TOO_LARGE),
    ("#123456", ("logo.png", b"", "image/png"), "logo", "The chosen file is empty."),
    ("#123456", ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"), "logo", NOT_AN_IMAGE),
    ("#12345g", None, "colour", COLOUR_HINT),
    ("red", None, "colour", COLOUR_HINT),
    ("", None, "colour", COLOUR_HINT),
    ("#1234567", None, "colour", COLOUR_HINT),
    ("#12345g", ("logo.png", "PNG", "image/png"), "colour", COLOUR_HINT),  # both or neither: the logo waits too
]


def upload_file(spec: tuple[str, bytes | str, str] | None) -> tuple[str, bytes, str] | None:
    if spec is None:
        return None
    name, data, kind = spec
    if data == "GIF":
        return name, image("GIF"), kind
    if data == "PNG":
        return name, png(), kind
    if data == "201kB":
        real = png()
        return name, real + b"\0" * (201_000 - len(real)), kind
    assert isinstance(data, bytes)
    return name, data, kind


@pytest.mark.parametrize(("colour", "logo", "field", "message"), REFUSED_UPLOADS)
async def test_refused_branding_changes_nothing_and_says_why(
    app: Starlette,
    services: Services,
    demo: Demo,
    colour: str,
    logo: tuple[str, bytes | str, str] | None,
    field: str,
    message: str,
) -> None:
    owner = await signed_in(app, services, demo)
    first = png(60, 20)
    assert (await upload(owner, "#0a0b0c", ("first.png", first, "image/png"))).status_code == 303
    before = await branding_row(services, demo.account_id)
    marker = await latest_audit_id(services)
    response = await upload(owner, colour, upload_file(logo))
    assert response.status_code == 400
    assert field_error(response.text, field) == message
    assert "Please check the form" in text_of(response.text)
    assert await branding_row(services, demo.account_id) == before == BrandingRow("#0a0b0c", first, "image/png")
    [event] = await audit_since(services, demo.account_id, marker)
    assert (event.operation, event.outcome, event.error_code) == ("dashboard.branding.save", "refused", "VALIDATION")


async def test_a_body_larger_than_the_logo_bound_is_refused_unread(
    app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await signed_in(app, services, demo)
    marker = await latest_audit_id(services)
    huge = png() + b"\0" * 300_000
    response = await upload(owner, "#123456", ("logo.png", huge, "image/png"))
    assert response.status_code == 413
    assert shown(response.text, "error-message") == (
        "This file is too large: at most 200 kB. Go back and choose a smaller one."
    )
    assert await branding_row(services, demo.account_id) is None
    [event] = await audit_since(services, demo.account_id, marker)
    assert (event.operation, event.outcome, event.error_code) == ("dashboard.branding.save", "refused", "TOO_LARGE")

    # sent in chunks with no length declared: refused as soon as what arrived is too large
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 8192

    marker = await latest_audit_id(services)
    response = await owner.http.post(
        "/settings/branding", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert await branding_row(services, demo.account_id) is None
    [event] = await audit_since(services, demo.account_id, marker)
    assert event.error_code == "TOO_LARGE"

    # the other dashboard forms take no file at all
    marker = await latest_audit_id(services)
    files = {"logo": ("logo.png", png(), "image/png")}
    response = await owner.http.post("/settings/team", data={"csrf_token": owner.csrf or ""}, files=files)
    assert response.status_code == 400
    [event] = await audit_since(services, demo.account_id, marker)
    assert (event.operation, event.error_code) == ("dashboard.team.invite", "BAD_FORM")


async def test_an_upload_without_its_csrf_token_is_refused(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await signed_in(app, services, demo)
    files = {"logo": ("logo.png", png(), "image/png")}
    response = await owner.http.post("/settings/branding", data={"colour": "#123456"}, files=files)
    assert response.status_code == 403
    assert await branding_row(services, demo.account_id) is None


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.STORE_OWNER, Role.API_USER)])
async def test_only_the_store_owner_sees_or_changes_branding(
    app: Starlette, services: Services, demo: Demo, role: Role
) -> None:
    owner = await signed_in(app, services, demo)
    logo = png()
    assert (await upload(owner, "#334455", ("logo.png", logo, "image/png"))).status_code == 303
    before = await branding_row(services, demo.account_id)
    other = await signed_in(app, services, demo, role)
    overview = await other.get("/")
    assert "/settings/branding" not in overview.text
    for path in ("/settings/branding", "/settings/branding/brand.css", "/settings/branding/logo"):
        response = await other.get(path)
        assert response.status_code == 403, path
        assert FORBIDDEN in response.text
    marker = await latest_audit_id(services)
    saved = await upload(other, "#000000", ("logo.png", png(10, 10), "image/png"))
    removed = await other.post("/settings/branding/logo/remove")
    assert (saved.status_code, removed.status_code) == (403, 403)
    assert await branding_row(services, demo.account_id) == before == BrandingRow("#334455", logo, "image/png")
    events = await audit_since(services, demo.account_id, marker)
    assert [(e.operation, e.outcome, e.error_code) for e in events] == [
        ("dashboard.branding.save", "refused", "FORBIDDEN"),
        ("dashboard.branding.remove_logo", "refused", "FORBIDDEN"),
    ]
