"""The emails giftledger sends, each built whole (headers, a plain-text part, an HTML part and its images) so
the outbox can keep it as it will be sent.

The HTML is written for mail clients: one centred column at most 560 px wide, tables for layout, inline styles
(mail clients drop style sheets), and every image attached (no remote content)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from pathlib import Path

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape

from giftledger.domain.branding import DEFAULT_COLOUR, ink_on

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["pounds"] = lambda pence: f"£{pence // 100:,}.{pence % 100:02d}"


@dataclass(frozen=True)
class Brand:
    name: str  # the merchant's (account's) name
    colour: str = DEFAULT_COLOUR
    logo: bytes | None = None
    logo_type: str | None = None  # image/png, image/jpeg

    @property
    def ink(self) -> str:
        """The text colour on the brand colour (white, or near-black on a light colour)."""
        return ink_on(self.colour)


@dataclass(frozen=True)
class EGift:
    card_reference: str
    value: int  # pence
    message: str | None
    expires_at: datetime | None
    card_page_url: str


@dataclass(frozen=True)
class ReceiptLine:
    description: str
    card_reference: str
    value: int
    discount: int
    recipient: str | None  # the e-gift's address, when the card was emailed


@dataclass(frozen=True)
class Receipt:
    order_id: int
    first_name: str | None
    lines: list[ReceiptLine]
    total: int
    currency: str
    ordered_at: datetime


@dataclass(frozen=True)
class Built:
    subject: str
    message_id: str
    content: bytes


def qr_png(text: str, *, scale: int = 8) -> bytes:
    """A QR code of `text` as PNG (error correction M, a quiet zone of 4 modules)."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def group_digits(card_reference: str) -> str:
    """A card number as it is printed: groups of four."""
    return " ".join(card_reference[i : i + 4] for i in range(0, len(card_reference), 4))


def _message(*, brand: Brand, sender: str, recipient: str, subject: str, now: datetime) -> EmailMessage:
    # An address that is not ASCII is written as it is (the mailer then asks the server for SMTPUTF8): the
    # SMTP policy would turn its local part into an encoded word, which is not an address.
    message = EmailMessage(policy=SMTP if (sender + recipient).isascii() else SMTPUTF8)
    message["Subject"] = subject
    message["From"] = f"{brand.name} <{sender}>" if brand.name.isprintable() else sender
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "giftledger.local")
    return message


def _attach_images(message: EmailMessage, images: dict[str, tuple[bytes, str]]) -> None:
    html = message.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    for cid, (data, mime) in images.items():
        maintype, _, subtype = mime.partition("/")
        html.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>", filename=f"{cid}.{subtype}")


def _images(brand: Brand) -> dict[str, tuple[bytes, str]]:
    if brand.logo and brand.logo_type:
        return {"logo": (brand.logo, brand.logo_type)}
    return {}


def e_gift(brand: Brand, card: EGift, *, sender: str, recipient: str, now: datetime) -> Built:
    subject = f"Your {_env.filters['pounds'](card.value)} {brand.name} gift card"
    message = _message(brand=brand, sender=sender, recipient=recipient, subject=subject, now=now)
    context = {
        "brand": brand,
        "card": card,
        "number": group_digits(card.card_reference),
        "has_logo": bool(brand.logo and brand.logo_type),
    }
    message.set_content(_env.get_template("e_gift.txt").render(**context))
    message.add_alternative(_env.get_template("e_gift.html").render(**context), subtype="html")
    _attach_images(message, {**_images(brand), "qr": (qr_png(card.card_reference), "image/png")})
    return Built(subject, str(message["Message-ID"]), message.as_bytes())


def receipt(brand: Brand, order: Receipt, *, sender: str, recipient: str, now: datetime) -> Built:
    subject = f"Your {brand.name} receipt (order {order.order_id})"
    message = _message(brand=brand, sender=sender, recipient=recipient, subject=subject, now=now)
    context = {"brand": brand, "order": order, "has_logo": bool(brand.logo and brand.logo_type), "group": group_digits}
    message.set_content(_env.get_template("receipt.txt").render(**context))
    message.add_alternative(_env.get_template("receipt.html").render(**context), subtype="html")
    _attach_images(message, _images(brand))
    return Built(subject, str(message["Message-ID"]), message.as_bytes())


@dataclass(frozen=True)
class TeamInvitation:
    name: str  # as the inviter typed it
    role: str  # the role's label
    link: str
    expires_at: datetime


def invitation(brand: Brand, invited: TeamInvitation, *, sender: str, recipient: str, now: datetime) -> Built:
    """An invitation to join an account's team, with its link (the only place the link is shown)."""
    subject = f"Join {brand.name} on giftledger"
    message = _message(brand=brand, sender=sender, recipient=recipient, subject=subject, now=now)
    context = {"brand": brand, "invited": invited, "has_logo": bool(brand.logo and brand.logo_type)}
    message.set_content(_env.get_template("invitation.txt").render(**context))
    message.add_alternative(_env.get_template("invitation.html").render(**context), subtype="html")
    _attach_images(message, _images(brand))
    return Built(subject, str(message["Message-ID"]), message.as_bytes())
