"""The outbox end to end in one process: a sale queues its e-gift and receipt in its own transaction, the
sender delivers them to a real SMTP server, and the e-gift's QR code decodes to the card number."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from giftledger.app import build_services, mailer_for
from giftledger.config import ConfigurationError, load_settings
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import ValidationFailed
from giftledger.outbound import emails
from giftledger.outbound.mailers import DeliveryFailed, DirectoryMailer, Mailer, SmtpMailer
from giftledger.services import outbox
from giftledger.services.access import log_in
from giftledger.services.context import Principal, Services
from giftledger.services.sales import OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.people import Directory
from tests.outbox.smtp import smtp_server
from tests.support import SECRET, Demo, fresh_database, new_demo, qr_text, run
from tests.support import test_settings as settings_for  # (not collected as a test)


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    """A database of its own: no other test's server sends its messages."""
    with fresh_database(pg_base_url) as url:
        yield url


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
            services = build_services(settings_for(isolated, mail_from="cards@giftledger.test"))
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
                assert qr_text(qr.get_content()) == card.card_reference
                assert "/c/" in text.get_content()
                assert "£25.00" in receipt.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            finally:
                await services.db.dispose()

        run(work())


def test_a_refused_sale_queues_nothing(isolated: str) -> None:
    demo = new_demo(isolated)

    async def work() -> None:
        services = build_services(settings_for(isolated))
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
    assert development.mail_lease_seconds == 120  # a sender's hold on a message it sends: 2 minutes
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
        ("GIFTLEDGER_MAIL_LEASE_SECONDS", "0", "at least 1"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            load_settings({**production, name: value})


def test_an_address_beyond_ascii_goes_by_smtputf8_and_fails_for_good_where_the_server_lacks_it() -> None:
    """The API takes josé@example.com; aiosmtplib, unless asked for SMTPUTF8, fails to encode such an address
    (UnicodeEncodeError), which no retry mends."""
    gift = emails.EGift("6280390000000011", 1000, None, None, "https://gift.example.test/c/token")
    built = emails.e_gift(
        emails.Brand("Shop"), gift, sender="cards@giftledger.test", recipient="josé@example.com", now=utcnow()
    )

    async def send(url: str) -> None:
        await SmtpMailer(url).deliver(
            built.content, sender="cards@giftledger.test", recipient="josé@example.com", message_id=built.message_id
        )

    with smtp_server(utf8=True) as (inbox, url):
        run(send(url))
        [got] = inbox.snapshot()
        assert (got.recipients, got.message_id) == (["josé@example.com"], built.message_id)
    with smtp_server() as (inbox, url):
        with pytest.raises(DeliveryFailed) as failed:
            run(send(url))
        assert failed.value.permanent and "SMTPUTF8" in failed.value.reason and inbox.snapshot() == []


class Unforeseen:
    """A mailer that fails in a way it does not foresee (not `DeliveryFailed`) for one recipient."""

    def __init__(self, inner: Mailer, recipient: str) -> None:
        self.inner = inner
        self.recipient = recipient

    def describe(self) -> str:
        return "unforeseen"

    async def deliver(self, content: bytes, *, sender: str, recipient: str, message_id: str) -> None:
        if recipient == self.recipient:
            raise RuntimeError("something nobody foresaw")
        await self.inner.deliver(content, sender=sender, recipient=recipient, message_id=message_id)


def test_an_unexpected_mailer_error_is_a_failed_attempt_with_its_reason_not_a_message_left_leased(
    isolated: str,
) -> None:
    demo = new_demo(isolated)
    with smtp_server() as (inbox, url):

        async def work() -> None:
            services = build_services(settings_for(isolated, mail_retry_seconds=60))
            try:
                pos = await till(services, demo)
                items = [emailed(demo, 1000, to) for to in ("a@example.com", "boom@example.com", "c@example.com")]
                await sell_cards(services, pos, order(demo, *items))
                mailer = Unforeseen(SmtpMailer(url), "boom@example.com")
                assert await outbox.deliver_due(services, mailer) == 3
                async with services.db.read() as conn:
                    rows = (
                        await conn.execute(
                            select(
                                outbox_messages.c.recipient,
                                outbox_messages.c.state,
                                outbox_messages.c.attempts,
                                outbox_messages.c.last_error,
                                outbox_messages.c.locked_until,
                                outbox_messages.c.next_attempt_at > func.now(),
                            ).order_by(outbox_messages.c.id)
                        )
                    ).all()
                assert [tuple(r) for r in rows] == [
                    ("a@example.com", "sent", 1, None, None, False),
                    # tried again in a minute (and failed for good after the last attempt), not in two
                    ("boom@example.com", "queued", 1, "RuntimeError: something nobody foresaw", None, True),
                    ("c@example.com", "sent", 1, None, None, False),
                ]
                assert sorted(r.recipients[0] for r in inbox.snapshot()) == ["a@example.com", "c@example.com"]
            finally:
                await services.db.dispose()

        run(work())
