"""The card's own page, Settings > Branding and the e-gift email in a real browser (headless chromium): on a
phone (375 px wide) nothing is wider than the screen, the merchant's colour and logo show under the page's
policy with no violation, and the e-gift's HTML (as a mail client shows it, its images inline) fits a phone too.
Screenshots go to artifacts/screenshots/cardholder-*.png."""

from __future__ import annotations

import base64
import email
import email.policy
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, FilePayload, Page, ViewportSize

from giftledger.outbound import emails
from giftledger.services import branding
from giftledger.services.context import Services, operator
from giftledger.storage.outbox import AccountOutbox
from tests.api import documents
from tests.dashboard.browser import Dashboard, new_demo, signed_in, with_services
from tests.dashboard.helpers import redeem, till, till_reverse
from tests.support import Demo, LiveServer

PHONE = ViewportSize(width=375, height=812)
DESKTOP = ViewportSize(width=1280, height=900)
LINK = re.compile(r"/c/([A-Za-z0-9_-]+)")
# Every element that reaches past the viewport's right or left edge (nothing may: no sideways scrolling).
TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll("body *")]
    .filter((e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5);
    })
    .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
}"""


@pytest.fixture
def dashboard(server: LiveServer, browser: Browser) -> Iterator[Dashboard]:
    board = Dashboard(browser, server.url, "cardholder")
    yield board
    board.close()


def logo_png() -> bytes:
    """A wide logo with something to see: a dark badge with a light ring, on white."""
    picture = Image.new("RGB", (360, 108), "#ffffff")
    draw = ImageDraw.Draw(picture)
    draw.rounded_rectangle((6, 6, 354, 102), radius=18, fill="#1f2a44")
    draw.ellipse((22, 18, 94, 90), outline="#f2c14e", width=10)
    draw.rectangle((116, 34, 330, 50), fill="#f2c14e")
    draw.rectangle((116, 62, 270, 74), fill="#9fb3d9")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def e_gift_sale(server: LiveServer, demo: Demo, value: int) -> tuple[str, str]:
    """Sell a card by email through the API, as a till does; its number and the token of its page's link."""
    api = signed_in(server, demo)
    item = {
        "fulfilment_method_id": 1,
        "fulfilment_email": "ann@example.com",
        "message": "Happy birthday, Ann! Have a lovely afternoon tea on us.\nLove, Rita",
        "product_id": demo.product_id,
        "custom_price_modifier_value": value,
        "generate_card_reference": True,
    }
    body = api.call(
        documents.CREATE_ORDER,
        {
            "account_id": demo.account_id,
            "merchant_id": 60,
            "order_items": [item],
            "currency": "GBP",
            "group_fulfilment": True,
            "total": value,
            "sales_channel_id": 3,
            "unit_epos_reference": demo.epos,
            "merchant_transaction_reference": f"sale-{uuid.uuid4().hex[:10]}",
        },
    )
    assert "errors" not in body, body
    [line] = body["data"]["createOrder"]["LineItems"]
    card_id = int(line["Card"]["id"])

    async def link(services: Services) -> tuple[str, str]:
        async with services.db.read() as conn:
            outbox = AccountOutbox(conn, demo.account_id)
            [message] = await outbox.listed(card_id=card_id)
            content = await outbox.content(message.id)
        assert content is not None
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        assert isinstance(text, EmailMessage)
        async with services.unit_of_work(operator(demo.account_id)) as uow:
            card = await uow.cards.get(card_id)
        assert card is not None
        [token] = LINK.findall(text.get_content())
        return card.card_reference, token

    found: tuple[str, str] = with_services(server.database_url, link)
    return found


def inline_images(message: EmailMessage) -> str:
    """The HTML part of an email with its `cid:` images as `data:` URLs, as a mail client shows it."""
    html = message.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    text: str = html.get_content()
    for part in message.walk():
        cid = part.get("Content-ID")
        if cid and isinstance(part, EmailMessage):
            data = base64.b64encode(part.get_content()).decode()
            text = text.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    assert "cid:" not in text
    return text


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(TOO_WIDE) == []


def test_the_card_page_and_the_e_gift_fit_a_phone(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    logo = logo_png()

    async def brand(services: Services) -> None:
        await branding.save_branding(services, operator(demo.account_id), colour="#7a1f3d", logo=logo)

    with_services(server.database_url, brand)
    number, token = e_gift_sale(server, demo, 2550)

    async def spend(services: Services) -> None:
        await redeem(services, await till(services, demo), demo, number, 1005)

    with_services(server.database_url, spend)
    page = dashboard.page
    problems: list[str] = []  # policy violations, script errors, and anything the page asked for but did not get
    page.on("console", lambda message: problems.append(message.text) if "Content Security" in message.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda answer: (
            problems.append(f"{answer.status} {answer.url}")
            if answer.status >= 400 and answer.request.resource_type != "document" and "favicon" not in answer.url
            else None
        ),
    )

    page.set_viewport_size(PHONE)
    response = page.goto(f"/c/{token}", wait_until="networkidle")
    assert response is not None and response.status == 200
    assert page.get_by_test_id("balance").inner_text() == "£15.45"
    assert page.get_by_test_id("card-number").inner_text() == " ".join(re.findall(".{1,4}", number))
    assert page.locator("#history tbody tr").count() == 2
    for image in (".cp-logo", ".cp-qr"):  # both images loaded under the page's policy
        assert page.evaluate(f"document.querySelector('{image}').naturalWidth") > 0, image
    header = page.evaluate("getComputedStyle(document.querySelector('.cp-header')).backgroundColor")
    assert header == "rgb(122, 31, 61)"  # #7a1f3d, from /c/<token>/brand.css
    fits(page)
    dashboard.shot("card-page-phone")
    page.set_viewport_size(DESKTOP)
    dashboard.shot("card-page-desktop")

    # a card whose sale was reversed: no longer valid, and nothing to pay with
    cancelled_number, cancelled = e_gift_sale(server, demo, 1200)

    async def reverse(services: Services) -> None:
        async with services.unit_of_work(operator(demo.account_id)) as uow:
            card = await uow.cards.find(cancelled_number)
            assert card is not None
            [sale] = await uow.ledger.for_card(card.id)
        await till_reverse(services, await till(services, demo), demo, sale.id)

    with_services(server.database_url, reverse)
    page.set_viewport_size(PHONE)
    page.goto(f"/c/{cancelled}")
    assert page.get_by_role("alert").get_by_role("heading").inner_text() == "This gift card is no longer valid"
    assert page.locator(".cp-qr").count() == 0 and page.get_by_test_id("balance").count() == 0
    fits(page)
    dashboard.shot("card-page-no-longer-valid-phone")

    page.goto(f"/c/{'x' * 32}")
    assert page.get_by_test_id("title").inner_text() == "Gift card not found"
    fits(page)
    dashboard.shot("card-page-not-found-phone")
    assert problems == [], problems  # no policy violation, no failed load

    # The e-gift as its recipient sees it on a phone: the brand's colour and logo in the header.
    sent = emails.e_gift(
        emails.Brand("The Grand Old Duke of York Tea Rooms", "#7a1f3d", logo, "image/png"),
        emails.EGift(
            number,
            2550,
            "Happy birthday, Ann!\nLove, Rita",
            datetime(2027, 12, 7, tzinfo=UTC),
            f"{server.url}/c/{token}",
        ),
        sender="cards@giftledger.test",
        recipient="ann@example.com",
        now=datetime.now(UTC),
    )
    message = email.message_from_bytes(sent.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    page.goto("about:blank")  # no policy of ours: a mail client shows the email's inline styles
    page.set_content(inline_images(message))
    assert page.get_by_test_id("value").inner_text() == "£25.50"
    header = page.evaluate("getComputedStyle(document.querySelector('td[bgcolor]')).backgroundColor")
    assert header == "rgb(122, 31, 61)"  # the brand's colour, under the brand's logo
    assert page.evaluate("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    fits(page)
    dashboard.shot("e-gift-phone")
    page.set_viewport_size(DESKTOP)
    dashboard.shot("e-gift-desktop")


def test_the_store_owner_brands_the_account(dashboard: Dashboard, server: LiveServer) -> None:
    demo = new_demo(server.database_url)
    dashboard.log_in(demo.owner_email, demo.owner_password)
    page = dashboard.page
    dashboard.nav("Branding")
    assert page.get_by_test_id("current-logo").inner_text() == (
        "No logo: emails and card pages show the account's name alone."
    )
    page.locator("#colour").fill("#2b59c3")
    page.get_by_label("New logo").set_input_files(
        files=[FilePayload(name="logo.png", mimeType="image/png", buffer=logo_png())]
    )
    page.get_by_role("button", name="Save").click()
    assert dashboard.notice() == "Branding saved."
    page.wait_for_load_state()  # the preview follows the brand's stylesheet, which holds the page until it loads
    header = page.locator(".brand-preview-header").evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert header == "rgb(43, 89, 195)"
    assert page.locator(".brand-preview-logo").evaluate("(e) => e.naturalWidth") == 360
    dashboard.shot("branding")

    # a GIF is refused, next to the field, and the saved branding stays
    gif = io.BytesIO()
    Image.new("RGB", (20, 20), "#ff0000").save(gif, format="GIF")
    page.get_by_label("New logo").set_input_files(
        files=[FilePayload(name="logo.png", mimeType="image/png", buffer=gif.getvalue())]
    )
    page.get_by_role("button", name="Save").click()
    assert page.locator("#logo-error").inner_text() == "The logo must be a PNG or JPEG image."
    page.wait_for_load_state()
    assert page.locator(".brand-preview-logo").evaluate("(e) => e.naturalWidth") == 360
    dashboard.shot("branding-refused")

    page.get_by_role("button", name="Remove logo").click()
    assert dashboard.notice() == "Logo removed."
    page.wait_for_load_state()
    assert page.locator(".brand-preview-header").count() == 1 and page.locator(".brand-preview-logo").count() == 0
    page.set_viewport_size(PHONE)
    dashboard.shot("branding-phone")
