"""Service-level set-up for the dashboard tests: a till principal, sales and redemptions, team members."""

from __future__ import annotations

import email as email_parser
import email.policy as email_policy
import re
import uuid
from email.message import EmailMessage

from sqlalchemy import func, select

from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services import setup
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Principal, Services
from giftledger.services.reversals import ReversalItem, ReversalRequest, reverse_line_items
from giftledger.services.sales import Discount, OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.services.views import AdjustmentView, OrderView, ReversalView
from giftledger.storage.outbox import outbox_messages
from tests.support import Demo, api_user_principal, hashed_once


def ref(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def till(services: Services, demo: Demo) -> Principal:
    """The demo account's PointOne API user, as a till signed in with it (tests/support.py signed_in)."""
    return await api_user_principal(services, demo)


async def sell(
    services: Services,
    till: Principal,
    demo: Demo,
    card: str,
    value: int,
    *,
    discount: int = 0,
    epos: str | None = None,
    receipt_email: str | None = None,
) -> OrderView:
    item = OrderItem(
        product_id=demo.product_id,
        custom_price_modifier_value=value,
        fulfilment_method_id=3,
        card_reference=card,
        discounts=[Discount(1, discount)] if discount else [],
    )
    request = OrderRequest(
        account_id=demo.account_id,
        merchant_id=POINTONE,
        order_items=[item],
        currency="GBP",
        total=value - discount,
        sales_channel_id=3,
        unit_epos_reference=epos or demo.epos,
        merchant_transaction_reference=ref("sale"),
        receipt_contact=ReceiptContact(receipt_email) if receipt_email else None,
    )
    return await sell_cards(services, till, request)


async def redeem(
    services: Services, till: Principal, demo: Demo, card: str, value: int, *, epos: str | None = None
) -> AdjustmentView:
    request = AdjustmentRequest(card, -value, "GBP", epos or demo.epos, POINTONE, ref("redeem"))
    return await adjust_balance(services, till, request)


async def till_reverse(
    services: Services, till: Principal, demo: Demo, line_item_id: int, *, epos: str | None = None
) -> ReversalView:
    request = ReversalRequest([ReversalItem(line_item_id)], ref("reverse"), epos or demo.epos, POINTONE)
    return await reverse_line_items(services, till, request)


async def person(services: Services, demo: Demo, role: Role, *, account_id: int | None = None) -> Principal:
    """A new team member with `role` on the demo account (or `account_id`), as a dashboard principal."""
    account = account_id or demo.account_id
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    with hashed_once(PASSWORD):
        user_id = await setup.add_team_member(
            services, setup.operator(account), email=email, name=role.label, role=role.value, password=PASSWORD
        )
    return Principal("user", user_id, account, role, None, email)


PASSWORD = "correct-horse-battery"


async def site_ids(services: Services, demo: Demo) -> dict[str, int]:
    return {s.name: s.id for s in await setup.list_sites(services, setup.operator(demo.account_id))}


async def invitation_path(services: Services, account_id: int, email: str) -> str:
    """The path of the newest invitation link emailed to `email` by this account (read from the outbox)."""
    async with services.db.read() as conn:
        content = (
            await conn.execute(
                select(outbox_messages.c.content)
                .where(
                    outbox_messages.c.account_id == account_id,
                    outbox_messages.c.kind == "team.invitation",
                    func.lower(outbox_messages.c.recipient) == email.lower(),
                )
                .order_by(outbox_messages.c.id.desc())
                .limit(1)
            )
        ).scalar_one()
    message = email_parser.message_from_bytes(bytes(content), policy=email_policy.default)
    text = message.get_body(preferencelist=("plain",))
    assert isinstance(text, EmailMessage)
    found = re.search(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]{43})\b", text.get_content())
    assert found, text.get_content()
    return found.group(1)
