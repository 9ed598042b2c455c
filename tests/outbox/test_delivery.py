"""The outbox end to end in one process: a sale queues its e-gift and receipt in its own transaction, the
sender delivers them to a real SMTP server, and the e-gift's QR code decodes to the card number."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from giftledger.app import build_services, mailer_for
from giftledger.config import ConfigurationError, load_settings
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import ValidationFailed
from giftledger.outbound.mailers import DirectoryMailer, SmtpMailer
from giftledger.services import outbox
from giftledger.services.access import log_in
from giftledger.services.context import Principal, Services
from giftledger.services.sales import OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.people import Directory
from tests.outbox.smtp import smtp_server
from tests.support import SECRET, Demo, fresh_database, new_demo, run, test_settings


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    """A database of its own: no other test's server sends its messages."""
    with fresh_database(pg_base_url) as url:
        yield url


def qr_text(part: EmailMessage) -> str:
    image = Image.open(io.BytesIO(part.get_content()))
    [found] = zxingcpp.read_barcodes(image)
    return str(found.text)


async def till(services: Services, demo: Demo) -> Principal:
    login = await log_in(
        services, username=demo.api_username, email=None, password=demo.api_password, client_address="till"
    )
    return login.principal


def order(demo: Demo, *items: OrderItem, receipt: str | None = None, reference: str = "sale-1") -> OrderRequest:
    return OrderRequest(
        account_id=demo.account_id,
        merchant_id=POINTONE,
        order_items=list(items),
        currency="GBP",
        total=sum(i.custom_price_modifier_value or 0 for i in items),
        sales_channel_id=3,
        unit_epos_reference=demo.epos,
        merchant_transaction_reference=reference,
        receipt_contact=ReceiptContact(receipt, first_name="Rita") if receipt else None,
    )


def emailed(demo: Demo, value: int, to: str | None, message: str | None = None) -> OrderItem:
    return OrderItem(
        product_id=demo.product_id,
        custom_price_modifier_value=value,
        fulfilment_method_id=1,
        fulfilment_email=to,
        message=message,
        generate_card_reference=True,
    )


async def count(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox_messages))).scalar_one())


def test_a_sale_sends_its_e_gift_and_receipt_once(isolated: str) -> None:
    demo = new_demo(isolated)
    with smtp_server() as (inbox, url):

        async def work() -> None:
            services = build_services(test_settings(isolated, mail_from="cards@giftledger.test"))
            try:
                pos = await till(services, demo)
                sold = await sell_cards(
                    services,
                    pos,
                    order(
                        demo,
                        emailed(demo, 2500, "ann@example.com", "Happy birthday, Ann!"),
                        receipt="rita@example.com",
                    ),
                )
                assert await count(services) == 2
                mailer = SmtpMailer(url)
                assert await outbox.deliver_due(services, mailer) == 2
                assert await outbox.deliver_due(services, mailer) == 0  # nothing twice
                card = sold.line_items[0].card.card
                gift, receipt = sorted(inbox.received, key=lambda r: r.recipients[0])
                assert (gift.sender, gift.recipients, receipt.recipients) == (
                    "cards@giftledger.test",
                    ["ann@example.com"],
                    ["rita@example.com"],
                )
                message = gift.message
                async with services.db.read() as conn:
                    name = await Directory(conn).account_name(demo.account_id)
                assert message["Subject"] == f"Your £25.00 {name} gift card"
                text = message.get_body(preferencelist=("plain",))
                html = message.get_body(preferencelist=("html",))
                assert text is not None and html is not None
                number = " ".join(card.card_reference[i : i + 4] for i in range(0, len(card.card_reference), 4))
                assert number in text.get_content() and "Happy birthday, Ann!" in text.get_content()
                assert number in html.get_content()
                [qr] = [p for p in message.walk() if p.get_content_type() == "image/png"]
                assert qr_text(qr) == card.card_reference
                assert "/c/" in text.get_content()
                assert "£25.00" in receipt.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            finally:
                await services.db.dispose()

        run(work())


def test_a_refused_sale_queues_nothing(isolated: str) -> None:
    demo = new_demo(isolated)

    async def work() -> None:
        services = build_services(test_settings(isolated))
        try:
            pos = await till(services, demo)
            for bad in (emailed(demo, 1000, None), emailed(demo, 1000, "not an email")):
                with pytest.raises(ValidationFailed) as refused:
                    await sell_cards(services, pos, order(demo, bad))
                assert list(refused.value.fields) == ["order_items.0.fulfilment_email"]
            with pytest.raises(ValidationFailed):
                await sell_cards(services, pos, order(demo, emailed(demo, 1000, "a@example.com"), receipt="nope"))
            assert await count(services) == 0
        finally:
            await services.db.dispose()

    run(work())


def test_mail_settings_are_checked_and_production_needs_smtp() -> None:
    base = {"GIFTLEDGER_SECRET_KEY": SECRET}
    development = load_settings({**base, "GIFTLEDGER_ENV": "development"})
    assert (development.smtp_url, development.mail_from, development.public_url) == (
        None,
        "giftledger@localhost",
        "http://127.0.0.1:8000",
    )
    assert isinstance(mailer_for(development), DirectoryMailer)
    production = {
        **base,
        "GIFTLEDGER_ENV": "production",
        "GIFTLEDGER_SMTP_URL": "smtps://cards%40shop.example:p%2Fss@mail.example:465",
        "GIFTLEDGER_MAIL_FROM": "cards@shop.example",
        "GIFTLEDGER_PUBLIC_URL": "https://gift.shop.example/",
    }
    settings = load_settings(production)
    assert (settings.smtp_url, settings.mail_from, settings.public_url) == (
        "smtps://cards%40shop.example:p%2Fss@mail.example:465",
        "cards@shop.example",
        "https://gift.shop.example",
    )
    mailer = mailer_for(settings)
    assert isinstance(mailer, SmtpMailer) and mailer.describe() == "smtps://mail.example:465"  # no password
    refusals = {
        "GIFTLEDGER_SMTP_URL": ("", "must be set in production"),
        "GIFTLEDGER_MAIL_FROM": ("", "must be set in production"),
    }
    for name, (value, message) in refusals.items():
        with pytest.raises(ConfigurationError, match=message):
            load_settings({**production, name: value})
    for name, value, message in (
        ("GIFTLEDGER_SMTP_URL", "http://mail.example", "must be smtp://"),
        ("GIFTLEDGER_MAIL_FROM", "not an address", "must be an email address"),
        ("GIFTLEDGER_PUBLIC_URL", "gift.shop.example", "must be an http"),
        ("GIFTLEDGER_MAIL_MAX_ATTEMPTS", "0", "at least 1"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            load_settings({**production, name: value})
