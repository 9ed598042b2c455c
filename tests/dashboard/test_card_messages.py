"""Issue 16 on the merchant's side, over HTTP in-process: the messages of a card and of an order with their exact
states; "Send digital copy" (a new e-gift to the same or another address, its refusals changing nothing and
audited as refused); and the development mail page, which exists only in development and test, for Store Owners,
and reads only the files its directory lists.

The module has a database of its own: a live server another module starts (`server`) runs an outbox sender that
would otherwise deliver these messages while the tests look at them queued."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from giftledger.app import create_app
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import NotFound
from giftledger.domain.permissions import Role
from giftledger.domain.validation import is_email
from giftledger.outbound.mailers import DeliveryFailed, DirectoryMailer
from giftledger.services import card_messages, dev_mail, outbox
from giftledger.services.context import Principal, Services
from giftledger.services.sales import OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.services.views import OrderView
from giftledger.storage.outbox import AccountOutbox, MessageRow, card_pages, outbox_messages
from tests.dashboard.helpers import PASSWORD, person, redeem, ref, till
from tests.dashboard.test_audit_trail import detail, latest_id, masked, records
from tests.dashboard.web import Web, field_error, rows, text_of
from tests.support import Demo, fresh_database
from tests.support import test_settings as settings_for

FORBIDDEN = "You do not have permission to do this."
EXPIRED = "This form has expired. Go back, reload the page and try again."
NO_SUCH_PAGE = "No such page."


@pytest.fixture(scope="module")
def database_url(pg_base_url: str) -> Iterator[str]:
    """This module's own database (see the module's docstring)."""
    with fresh_database(pg_base_url) as url:
        yield url


def when(moment: datetime | None) -> str:
    assert moment is not None
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Mailer:
    """A mailer that answers per recipient: accepts, or refuses with a reply (permanent for 5xx)."""

    def __init__(self, refusals: dict[str, str] | None = None) -> None:
        self.refusals = refusals or {}
        self.delivered: list[str] = []

    def describe(self) -> str:
        return "test mailer"

    async def deliver(self, content: bytes, *, sender: str, recipient: str, message_id: str) -> None:
        reply = self.refusals.get(recipient)
        if reply is not None:
            raise DeliveryFailed(reply, permanent=reply.startswith("5"))
        self.delivered.append(recipient)


async def sell_e_gifts(
    services: Services,
    pos: Principal,
    demo: Demo,
    cards: list[tuple[str, int, str]],
    *,
    receipt: str | None = None,
    message: str | None = None,
) -> OrderView:
    """One sale of (card number, value, e-gift address) lines, each fulfilled by email (method 1)."""
    items = [
        OrderItem(
            product_id=demo.product_id,
            custom_price_modifier_value=value,
            fulfilment_method_id=1,
            fulfilment_email=to,
            message=message,
            card_reference=number,
        )
        for number, value, to in cards
    ]
    request = OrderRequest(
        account_id=demo.account_id,
        merchant_id=POINTONE,
        order_items=list(items),
        currency="GBP",
        total=sum(value for _, value, _ in cards),
        sales_channel_id=3,
        unit_epos_reference=demo.epos,
        merchant_transaction_reference=ref("sale"),
        receipt_contact=ReceiptContact(receipt) if receipt else None,
    )
    return await sell_cards(services, pos, request)


async def drain(services: Services) -> None:
    """Deliver (to nowhere) whatever the module's earlier tests left queued and due."""
    while await outbox.deliver_due(services, Mailer()):
        pass


async def listed(services: Services, demo: Demo, **where: int) -> list[MessageRow]:
    async with services.db.read() as conn:
        return await AccountOutbox(conn, demo.account_id).listed(**where)


async def content_of(services: Services, demo: Demo, message_id: int) -> EmailMessage:
    async with services.db.read() as conn:
        raw = await AccountOutbox(conn, demo.account_id).content(message_id)
    assert raw is not None
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


async def state(services: Services, demo: Demo) -> tuple[object, ...]:
    """Everything sending a copy could change: the account's messages and its card-page links."""
    async with services.db.read() as conn:
        pages = await conn.execute(
            select(func.count()).select_from(card_pages).where(card_pages.c.account_id == demo.account_id)
        )
        count = await conn.execute(
            select(func.count()).select_from(outbox_messages).where(outbox_messages.c.account_id == demo.account_id)
        )
        return int(count.scalar_one()), int(pages.scalar_one()), await AccountOutbox(conn, demo.account_id).listed()


async def signed_in(app: Starlette, services: Services, demo: Demo, role: Role = Role.STORE_OWNER) -> Web:
    web = Web(app)
    principal = await person(services, demo, role)
    response = await web.log_in(principal.name, PASSWORD)
    assert response.status_code == 303, response.text
    return web


def input_value(body: str, name: str) -> str | None:
    found = re.search(rf'<input id="{name}" name="{name}" type="[a-z]+" value="([^"]*)"', body)
    return found.group(1) if found else None


async def test_a_card_and_its_order_list_their_messages_with_exact_states(
    app: Starlette, services: Services, demo: Demo
) -> None:
    await drain(services)
    pos = await till(services, demo)
    first, second, stock = demo.card_references[:3]
    order = await sell_e_gifts(
        services,
        pos,
        demo,
        [(first, 2500, "ann@example.com"), (second, 1000, "bob@example.com")],
        receipt="payer@example.com",
    )
    first_id, second_id = (line.card.card.id for line in order.line_items)
    queued = await listed(services, demo, order_id=order.order.id)
    assert [(m.kind, m.recipient, m.card_id, m.state, m.attempts) for m in queued] == [
        ("card.e_gift", "ann@example.com", first_id, "queued", 0),
        ("card.e_gift", "bob@example.com", second_id, "queued", 0),
        ("order.receipt", "payer@example.com", None, "queued", 0),
    ]
    web = await signed_in(app, services, demo)

    page = await web.get(f"/cards/{first_id}")
    assert page.status_code == 200
    assert rows(page.text, "card-messages") == [
        [f"E-gift email {queued[0].subject}", "ann@example.com", "Queued", when(queued[0].created_at)]
    ]

    mailer = Mailer({"bob@example.com": "451 4.3.0 mailbox busy", "payer@example.com": "550 5.1.1 no such user"})
    assert await outbox.deliver_due(services, mailer) == 3
    assert mailer.delivered == ["ann@example.com"]
    done = await listed(services, demo, order_id=order.order.id)
    assert [(m.id, m.state, m.attempts, m.last_error) for m in done] == [
        (queued[0].id, "sent", 1, None),
        (queued[1].id, "queued", 1, "451 4.3.0 mailbox busy"),
        (queued[2].id, "failed", 1, "550 5.1.1 no such user"),
    ]
    sent, retrying, failed = done
    assert sent.sent_at is not None and retrying.next_attempt_at > retrying.created_at

    expected = {
        "ann": [f"E-gift email {sent.subject}", "ann@example.com", f"Sent at {when(sent.sent_at)}"],
        "bob": [
            f"E-gift email {retrying.subject}",
            "bob@example.com",
            f"Queued: retrying at {when(retrying.next_attempt_at)}, attempt 2 of 8"
            " Last attempt: 451 4.3.0 mailbox busy",
        ],
        "payer": [f"Receipt email {failed.subject}", "payer@example.com", "Failed: 550 5.1.1 no such user"],
    }
    created = {"ann": when(sent.created_at), "bob": when(retrying.created_at), "payer": when(failed.created_at)}
    page = await web.get(f"/cards/{first_id}")
    assert rows(page.text, "card-messages") == [expected["ann"] + [created["ann"]]]
    page = await web.get(f"/cards/{second_id}")
    assert rows(page.text, "card-messages") == [expected["bob"] + [created["bob"]]]
    page = await web.get(f"/orders/{order.order.id}")
    assert page.status_code == 200
    assert rows(page.text, "order-messages") == [expected[k] + [created[k]] for k in ("ann", "bob", "payer")]

    unsold = await web.post("/cards", {"card_reference": stock})
    page = await web.get(unsold.headers["location"])
    assert "No email has been sent for this card." in text_of(page.text)
    assert 'action="/cards/' not in page.text.split('id="messages"')[1].split("</section>")[0]  # no copy form

    # anyone who may see the card sees its messages; the copy form needs "See orders" (not Front of House Staff)
    staff = await signed_in(app, services, demo, Role.FOH_STAFF)
    page = await staff.get(f"/cards/{first_id}")
    assert rows(page.text, "card-messages") == [expected["ann"] + [created["ann"]]]
    assert "Send digital copy" not in page.text
    assert (await staff.get(f"/orders/{order.order.id}")).status_code == 403


async def test_sending_a_digital_copy_queues_one_new_e_gift(app: Starlette, services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    number = demo.card_references[0]
    order = await sell_e_gifts(services, pos, demo, [(number, 2500, "ann@example.com")], message="Happy birthday!")
    card_id = order.line_items[0].card.card.id
    await redeem(services, pos, demo, number, 1000)  # the copy shows the balance now: £15.00
    [original] = await listed(services, demo, card_id=card_id)
    web = await signed_in(app, services, demo)
    page = await web.get(f"/cards/{card_id}")
    assert input_value(page.text, "email") == "ann@example.com"  # the last e-gift's address
    assert "Send digital copy" in page.text

    marker = await latest_id(services)
    response = await web.post(f"/cards/{card_id}/send", {"email": "  carla@example.org "})
    assert (response.status_code, response.headers["location"]) == (303, f"/cards/{card_id}?done=resent#messages")
    before, copy = await listed(services, demo, card_id=card_id)
    assert before == original
    assert (copy.kind, copy.recipient, copy.card_id, copy.order_id, copy.state, copy.attempts, copy.last_error) == (
        "card.e_gift",
        "carla@example.org",
        card_id,
        None,
        "queued",
        0,
        None,
    )
    assert copy.message_id != original.message_id
    account_name = original.subject.removeprefix("Your £25.00 ").removesuffix(" gift card")
    assert copy.subject == f"Your £15.00 {account_name} gift card"
    sent = await content_of(services, demo, copy.id)
    assert (sent["To"], sent["Message-ID"], sent["Subject"]) == ("carla@example.org", copy.message_id, copy.subject)
    text, first_text = text_part(sent), text_part(await content_of(services, demo, original.id))
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert f"Value: £15.00\nCard number: {grouped}\n" in text and "Value: £25.00" in first_text
    assert "Message from the sender:\nHappy birthday!" in text
    [link] = re.findall(r"http://127\.0\.0\.1:8000/c/\S+", text)
    assert link not in first_text  # a new link to the card's page; the first one keeps working

    [event] = await records(services, demo.account_id, marker)
    assert (event.operation, event.outcome, event.error_code, event.card, detail(event)) == (
        "dashboard.card.resend",
        "accepted",
        None,
        masked(number),
        {"email": "  carla@example.org ", "outbox_message_id": copy.id},
    )
    page = await web.get(response.headers["location"])
    assert "A copy of the e-gift is queued" in text_of(page.text)
    assert [r[1:3] for r in rows(page.text, "card-messages")] == [
        ["ann@example.com", "Queued"],
        ["carla@example.org", "Queued"],
    ]
    assert input_value(page.text, "email") == "carla@example.org"
    order_page = await web.get(f"/orders/{order.order.id}")  # the order lists what the sale sent
    assert [r[1] for r in rows(order_page.text, "order-messages")] == ["ann@example.com"]

    # Guest Service looks after customers: "See orders" lets them send a copy too (to the same address here)
    guest = await signed_in(app, services, demo, Role.GUEST_SERVICE)
    await guest.get(f"/cards/{card_id}")
    response = await guest.post(f"/cards/{card_id}/send", {"email": "carla@example.org"})
    assert response.status_code == 303
    assert [m.recipient for m in await listed(services, demo, card_id=card_id)] == [
        "ann@example.com",
        "carla@example.org",
        "carla@example.org",
    ]


async def test_the_form_is_prefilled_with_the_cards_contact_when_it_was_never_emailed(
    app: Starlette, services: Services, demo: Demo
) -> None:
    """A card sold in venue with an address kept as its contact (method 3 with a fulfilment email)."""
    pos = await till(services, demo)
    item = OrderItem(
        product_id=demo.product_id,
        custom_price_modifier_value=500,
        fulfilment_method_id=3,
        fulfilment_email="dee@example.com",
        card_reference=demo.card_references[0],
    )
    request = OrderRequest(demo.account_id, POINTONE, [item], "GBP", 500, 3, demo.epos, ref("sale"))
    order = await sell_cards(services, pos, request)
    card_id = order.line_items[0].card.card.id
    assert await listed(services, demo, card_id=card_id) == []
    web = await signed_in(app, services, demo)
    page = await web.get(f"/cards/{card_id}")
    assert "No email has been sent for this card." in text_of(page.text)
    assert input_value(page.text, "email") == "dee@example.com"


async def test_refused_copies_change_nothing_and_are_recorded(app: Starlette, services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    number, stock = demo.card_references[:2]
    order = await sell_e_gifts(services, pos, demo, [(number, 2500, "ann@example.com")])
    card_id = order.line_items[0].card.card.id
    web = await signed_in(app, services, demo)
    unsold = await web.post("/cards", {"card_reference": stock})
    stock_id = int(unsold.headers["location"].rsplit("/", 1)[1])
    staff = await signed_in(app, services, demo, Role.FOH_STAFF)
    await staff.get(f"/cards/{card_id}")
    await web.get(f"/cards/{card_id}")
    before = await state(services, demo)

    async def refused(
        who: Web, path: str, form: dict[str, str], status: int, code: str, *, csrf: bool = True
    ) -> tuple[str, dict[str, Any] | None, str | None]:
        marker = await latest_id(services)
        response = await who.post(path, form, csrf=csrf)
        assert response.status_code == status, (path, form, response.text)
        assert await state(services, demo) == before
        [event] = await records(services, demo.account_id, marker)
        assert (event.operation, event.outcome, event.error_code) == ("dashboard.card.resend", "refused", code)
        return response.text, detail(event), event.card

    send = f"/cards/{card_id}/send"
    for typed, message in (
        ("", "This field is required"),
        ("   ", "This field is required"),
        ("not-an-email", card_messages.EMAIL_HINT),
        ("ann@example", card_messages.EMAIL_HINT),
        ("ann @example.com", card_messages.EMAIL_HINT),
        ("ann@example.com\nBcc: eve@example.com", card_messages.EMAIL_HINT),  # no second header line
        ("ann@example.com\u2028x", card_messages.EMAIL_HINT),
        ("a" * 321 + "@example.com", "This field is not of an expected value"),
        ("ann\x00@example.com", "This field is not of an expected value"),
    ):
        body, noted, card = await refused(web, send, {"email": typed}, 400, "VALIDATION")
        assert field_error(body, "email") == message, typed
        assert input_value(body, "email") is not None and 'aria-invalid="true"' in body
        assert (noted, card) == ({"email": typed[:199] + "…" if len(typed) > 200 else typed}, masked(number))

    body, noted, card = await refused(web, f"/cards/{stock_id}/send", {"email": "ann@example.com"}, 409, "CONFLICT")
    assert card_messages.NOT_SOLD in text_of(body)
    assert (noted, card) == ({"email": "ann@example.com"}, masked(stock))

    body, noted, card = await refused(staff, send, {"email": "eve@example.com"}, 403, "FORBIDDEN")
    assert FORBIDDEN in text_of(body)
    assert (noted, card) == ({"email": "eve@example.com"}, masked(number))

    body, noted, card = await refused(web, send, {"email": "eve@example.com"}, 403, "CSRF", csrf=False)
    assert EXPIRED in text_of(body) and (noted, card) == (None, None)

    body, noted, card = await refused(web, "/cards/987654321/send", {"email": "eve@example.com"}, 404, "NOT_FOUND")
    assert (noted, card) == ({"card_ids": [987654321], "email": "eve@example.com"}, None)  # no card here: details only

    body, noted, card = await refused(web, "/cards/x1/send", {"email": "eve@example.com"}, 404, "NOT_FOUND")
    assert noted is None and card is None


def test_an_email_address_has_no_space_or_unprintable_character() -> None:
    assert is_email("ann@example.com") and is_email("a.b+c@mail.example.co.uk") and is_email("zoë@example.com")
    for bad in ("ann@example", "@example.com", "ann.example.com", "ann @example.com", "ann@example.com\r\nBcc: x"):
        assert not is_email(bad), bad
    for bad in ("ann@example.com\n", "\tann@example.com", "ann\x00@example.com", "ann@example.com\x7f", "a\u2028@b.co"):
        assert not is_email(bad), repr(bad)


# The development mail page


@pytest.fixture
async def mail_app(database_url: str, tmp_path: Path) -> AsyncIterator[Starlette]:
    """The application in test mode with a data directory of its own (so its mail/ holds only this test's)."""
    application = create_app(settings_for(database_url, data_dir=tmp_path / "data"))
    yield application
    await application.state.services.db.dispose()


async def test_the_mail_page_lists_and_shows_what_the_server_wrote(
    mail_app: Starlette, demo: Demo, tmp_path: Path
) -> None:
    services: Services = mail_app.state.services
    directory = services.settings.mail_directory
    assert directory == tmp_path / "data" / "mail"
    owner = await signed_in(mail_app, services, demo)
    empty = await owner.get("/dev/mail")
    assert empty.status_code == 200 and "No email has been written yet." in text_of(empty.text)
    assert '<a href="/dev/mail" aria-current="page">Mail (development)</a>' in empty.text

    await drain(services)
    pos = await till(services, demo)
    number = demo.card_references[0]
    order = await sell_e_gifts(services, pos, demo, [(number, 2500, "ann@example.com")], message="Enjoy!")
    [queued] = await listed(services, demo, order_id=order.order.id)
    assert await outbox.deliver_due(services, DirectoryMailer(directory)) == 1
    [name] = [p.name for p in directory.iterdir()]
    assert name == DirectoryMailer(directory).path_for(queued.message_id).name
    written = (directory / name).read_bytes()
    message = email.message_from_bytes(written, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    date = message["Date"].datetime

    listing = await owner.get("/dev/mail")
    assert rows(listing.text, "mail") == [[when(date.astimezone(UTC)), "ann@example.com", queued.subject]]
    assert f'href="/dev/mail/{name}"' in listing.text

    shown = await owner.get(f"/dev/mail/{name}")
    assert shown.status_code == 200
    page_text = text_of(shown.text)
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert f"Card number: {grouped}" in page_text and "Enjoy!" in page_text
    assert f"Message-ID {queued.message_id}" in page_text and "To ann@example.com" in page_text
    assert "<iframe" not in shown.text and "cid:" not in shown.text  # the HTML part is never handed over
    leaves = [(n, p) for n, p in enumerate(message.walk()) if not p.is_multipart()]
    [(qr_number, qr)] = [(n, p) for n, p in leaves if p.get_filename() == "qr.png"]
    assert f'<img src="/dev/mail/{name}/part/{qr_number}" alt="qr.png">' in shown.text
    assert [r[:3] for r in rows(shown.text, "mail-parts")] == [
        [str(n), p.get_content_type(), p.get_filename() or "—"] for n, p in leaves
    ]

    image = await owner.get(f"/dev/mail/{name}/part/{qr_number}")
    assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
    assert image.content == qr.get_content() and image.headers["x-content-type-options"] == "nosniff"
    download = await owner.get(f"/dev/mail/{name}/download")
    assert (download.status_code, download.content) == (200, written)
    assert download.headers["content-disposition"] == f'attachment; filename="{name}"'

    # only images are served as parts; only names the directory lists are read
    (tmp_path / "data" / "secret.eml").write_bytes(written)
    (directory / "link.eml").symlink_to(tmp_path / "data" / "secret.eml")
    (directory / "odd name.eml").write_bytes(written)
    assert [r[2] for r in rows((await owner.get("/dev/mail")).text, "mail")] == [queued.subject]
    [text_number] = [n for n, p in leaves if p.get_content_type() == "text/plain"]
    for path in (
        f"/dev/mail/{name}/part/{text_number}",
        f"/dev/mail/{name}/part/99",
        f"/dev/mail/{name}/part/x",
        "/dev/mail/nope.eml",
        "/dev/mail/link.eml",
        "/dev/mail/odd%20name.eml",
        "/dev/mail/..%2Fsecret.eml",
        "/dev/mail/..%2Fx",
        "/dev/mail/nope.eml/download",
        "/dev/mail/link.eml/download",
    ):
        response = await owner.get(path)
        assert response.status_code == 404, path
    principal = await person(services, demo, Role.STORE_OWNER)
    for bad in ("../x", "..", "../secret.eml", "link.eml", "odd name.eml", f"./{name}", f"{name}/"):
        with pytest.raises(NotFound):
            await dev_mail.opened(services, principal, bad)


async def test_the_mail_page_is_for_store_owners_only(mail_app: Starlette, demo: Demo) -> None:
    services: Services = mail_app.state.services
    directory = services.settings.mail_directory
    directory.mkdir(parents=True)
    (directory / "a.eml").write_bytes(b"To: x@example.com\r\nSubject: hello\r\n\r\nhi\r\n")
    for role in (Role.STORE_MANAGER, Role.GUEST_SERVICE, Role.FOH_STAFF):
        web = await signed_in(mail_app, services, demo, role)
        overview = await web.get("/")
        assert "Mail (development)" not in overview.text
        for path in ("/dev/mail", "/dev/mail/a.eml", "/dev/mail/a.eml/download", "/dev/mail/a.eml/part/0"):
            response = await web.get(path)
            assert response.status_code == 404, (role, path)
            assert NO_SUCH_PAGE in text_of(response.text)
    owner = await signed_in(mail_app, services, demo)
    assert (await owner.get("/dev/mail/a.eml")).status_code == 200
    signed_out = await Web(mail_app).get("/dev/mail")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/login?next=%2Fdev%2Fmail")


async def test_there_is_no_mail_page_outside_development_and_test(
    database_url: str, demo: Demo, tmp_path: Path
) -> None:
    application = create_app(replace(settings_for(database_url, data_dir=tmp_path), environment="production"))
    services: Services = application.state.services
    try:
        (tmp_path / "mail").mkdir()
        (tmp_path / "mail" / "a.eml").write_bytes(b"Subject: hello\r\n\r\nhi\r\n")
        owner = await signed_in(application, services, demo)
        assert "Mail (development)" not in (await owner.get("/")).text
        for path in ("/dev/mail", "/dev/mail/a.eml", "/dev/mail/a.eml/download"):
            assert (await owner.get(path)).status_code == 404, path
            assert (await Web(application).get(path)).status_code == 404, path
        with pytest.raises(NotFound):
            await dev_mail.listed(services, await person(services, demo, Role.STORE_OWNER))
    finally:
        await services.db.dispose()


async def test_the_mail_page_in_development(database_url: str, demo: Demo, tmp_path: Path) -> None:
    application = create_app(replace(settings_for(database_url, data_dir=tmp_path), environment="development"))
    services: Services = application.state.services
    try:
        owner = await signed_in(application, services, demo)
        page = await owner.get("/dev/mail")
        assert page.status_code == 200 and "No email has been written yet." in text_of(page.text)
    finally:
        await services.db.dispose()
