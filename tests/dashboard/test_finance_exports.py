"""Data exports (each kind's columns and values), the liability at past moments, and the reconciliation."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from giftledger.domain.errors import Forbidden, ValidationFailed
from giftledger.domain.ledger import LineItemType, Split
from giftledger.domain.permissions import Role
from giftledger.services import card_admin, exports, finance, reports
from giftledger.services.card_admin import ManualAdjustment
from giftledger.services.context import Principal, Services
from giftledger.services.exports import ExportKind, ExportRequest
from giftledger.services.verification import verify_account
from giftledger.storage.ledger import Actor, Entry, Ledger
from giftledger.storage.people import Directory
from giftledger.storage.tables import cards, line_items, products, transactions
from tests.dashboard.helpers import person, redeem, sell, site_ids, till, till_reverse
from tests.support import Demo

ZONE = "America/New_York"
TODAY = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
AROUND = (TODAY - timedelta(days=1), TODAY + timedelta(days=1))


@dataclass(frozen=True)
class Item:
    id: int
    card_id: int
    transaction_id: int
    reference: str | None
    created_at: datetime

    @property
    def local(self) -> str:
        return self.created_at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")


async def items(services: Services, account_id: int) -> list[Item]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(
                line_items.c.id,
                line_items.c.card_id,
                line_items.c.transaction_id,
                transactions.c.merchant_transaction_reference,
                line_items.c.created_at,
            )
            .select_from(line_items.join(transactions, transactions.c.id == line_items.c.transaction_id))
            .where(line_items.c.account_id == account_id)
            .order_by(line_items.c.created_at, line_items.c.id)
        )
        return [Item(*row) for row in rows.all()]


async def transfer(services: Services, account_id: int, user_id: int, source: int, target: int, value: int) -> None:
    """A balance transfer as the replacement of a lost card books it: outbound from one card, inbound to the
    other with the same split (written through the ledger directly)."""
    async with services.db.transaction() as conn:
        ledger = Ledger(conn, account_id)
        actor = Actor(user_id=user_id)
        transaction_id = await ledger.open_transaction("transfer", actor, None)
        out = await ledger.post(transaction_id, actor, Entry(source, LineItemType.OUTBOUND_BALANCE_TRANSFER, -value))
        assert out.before is not None and out.line_item_id is not None
        discount = value * out.before.discount // out.before.balance
        credit = Split(tender=value - discount, discount=discount)
        inbound = await ledger.post(
            transaction_id, actor, Entry(target, LineItemType.INBOUND_BALANCE_TRANSFER, value, credit=credit)
        )
        assert inbound.line_item_id is not None


async def export_rows(services: Services, principal: Principal, request: ExportRequest, tmp: Path) -> list[list[str]]:
    export = await exports.open_export(services, principal, request)
    path = tmp / export.file_name
    written = await exports.write_export(export, path)
    with path.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert written == len(table) - 1
    return table


@dataclass
class Story:
    owner: Principal
    till_name: str
    product: str
    card_a: str
    card_b: str
    a_id: int
    b_id: int
    order1: int
    order2: int
    sale1: Item
    redemption: Item
    reversal: Item
    sale2: Item
    outbound: Item
    inbound: Item
    manual: Item


async def story(services: Services, demo: Demo) -> Story:
    """Card A sold for £20 with a £5 discount (paid £15), £4 redeemed and the redemption reversed at the till;
    card B sold for £10; £3 moved from A to B; £1 taken off B by hand at Leeds."""
    async with services.db.transaction() as conn:
        await Directory(conn).set_account_time_zone(demo.account_id, ZONE)
        product = (await conn.execute(select(products.c.name).where(products.c.id == demo.product_id))).scalar_one()
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    a, b = demo.card_references[:2]
    first = await sell(services, pos, demo, a, 2000, discount=500, receipt_email="buyer@example.com")
    redeemed = await redeem(services, pos, demo, a, 400)
    await till_reverse(services, pos, demo, redeemed.line_item.item.id)
    second = await sell(services, pos, demo, b, 1000)
    a_id, b_id = first.line_items[0].card.card.id, second.line_items[0].card.card.id
    await transfer(services, demo.account_id, owner.id, a_id, b_id, 300)
    leeds = (await site_ids(services, demo))["Leeds"]
    await card_admin.adjust_card(services, owner, b_id, ManualAdjustment(-100, leeds, "=cmd|' /C calc'!A0"))
    listed = await items(services, demo.account_id)
    assert len(listed) == 7
    return Story(owner, pos.name, product, a, b, a_id, b_id, first.order.id, second.order.id, *listed)


async def test_every_export_has_its_columns_and_values(services: Services, demo: Demo, tmp_path: Path) -> None:
    s = await story(services, demo)
    sale1, redemption, reversal, sale2, outbound, inbound, manual = (
        s.sale1, s.redemption, s.reversal, s.sale2, s.outbound, s.inbound, s.manual
    )  # fmt: skip

    def ask(kind: ExportKind) -> ExportRequest:
        return exports.check_request(kind.value, *AROUND, None)

    adjustments = await export_rows(services, s.owner, ask(ExportKind.BALANCE_ADJUSTMENTS), tmp_path)
    assert adjustments[0] == exports.balance_adjustment_columns(ZONE)
    assert adjustments[0][8] == "Adjustment Date (America/New_York)"
    p, a, b = s.product, s.card_a, s.card_b
    assert adjustments[1:] == [
        [str(s.a_id), str(sale1.id), p, "", "Soho", a, "Sale", "20.00", sale1.local, "PointOne", str(s.order1),
         "In store", "In venue", "", s.till_name, str(sale1.transaction_id), sale1.reference, "15.00", "0.00",
         "5.00", "", ""],
        [str(s.a_id), str(redemption.id), p, "", "Soho", a, "Redemption", "-4.00", redemption.local, "PointOne", "",
         "", "", "", s.till_name, str(redemption.transaction_id), redemption.reference, "-4.00", "0.00", "0.00", "",
         str(reversal.id)],
        [str(s.a_id), str(reversal.id), p, "", "Soho", a, "Reversal", "4.00", reversal.local, "PointOne", "", "", "",
         "", s.till_name, str(reversal.transaction_id), reversal.reference, "4.00", "0.00", "0.00",
         str(redemption.id), ""],
        [str(s.b_id), str(sale2.id), p, "", "Soho", b, "Sale", "10.00", sale2.local, "PointOne", str(s.order2),
         "In store", "In venue", "", s.till_name, str(sale2.transaction_id), sale2.reference, "10.00", "0.00",
         "0.00", "", ""],
        [str(s.a_id), str(outbound.id), p, "", "", a, "Outbound Balance Transfer", "-3.00", outbound.local, "", "",
         "", "", "", s.owner.name, str(outbound.transaction_id), "", "0.00", "0.00", "0.00", "", ""],
        [str(s.b_id), str(inbound.id), p, "", "", b, "Inbound Balance Transfer", "3.00", inbound.local, "", "", "",
         "", "", s.owner.name, str(inbound.transaction_id), "", "0.00", "0.00", "0.00", "", ""],
        [str(s.b_id), str(manual.id), p, "", "Leeds", b, "Manual Adjustment", "-1.00", manual.local, "", "", "", "",
         "'=cmd|' /C calc'!A0", s.owner.name, str(manual.transaction_id), "", "-1.00", "0.00", "0.00", "", ""],
    ]  # fmt: skip

    paid = await export_rows(services, s.owner, ask(ExportKind.TRANSACTIONS), tmp_path)
    assert paid[0][12] == "Transaction Date (America/New_York)"
    assert paid[1:] == [
        ["External", "In store", "PointOne", sale1.reference, "20.00", str(s.order1), "20.00", "0.00", "completed",
         a, str(sale1.id), "Sale", sale1.local, "Soho"],
        ["Gift Card", "", "PointOne", redemption.reference, "-4.00", "", "", "", "", a, str(redemption.id),
         "Redemption", redemption.local, "Soho"],
        ["N/A", "", "PointOne", reversal.reference, "4.00", "", "", "", "", a, str(reversal.id), "Reversal",
         reversal.local, "Soho"],
        ["External", "In store", "PointOne", sale2.reference, "10.00", str(s.order2), "10.00", "0.00", "completed",
         b, str(sale2.id), "Sale", sale2.local, "Soho"],
        ["N/A", "", "", "", "-3.00", "", "", "", "", a, str(outbound.id), "Outbound Balance Transfer",
         outbound.local, ""],
        ["N/A", "", "", "", "3.00", "", "", "", "", b, str(inbound.id), "Inbound Balance Transfer", inbound.local, ""],
        ["N/A", "", "", "", "-1.00", "", "", "", "", b, str(manual.id), "Manual Adjustment", manual.local, "Leeds"],
    ]  # fmt: skip

    ordered = await export_rows(services, s.owner, ask(ExportKind.ORDERS), tmp_path)
    assert ordered[0] == [
        "Purchaser Name", "Purchaser Email Address", "Order ID", "Order Creation Date (America/New_York)",
        "Merchant Transaction Reference", "Merchant Name", "Total Order Value", "Postage Value", "Discount Value",
        "Sales Channel", "Status Order", "Consent Type",
    ]  # fmt: skip
    assert [row[:3] + row[4:] for row in ordered[1:]] == [
        ["", "buyer@example.com", str(s.order1), sale1.reference, "PointOne", "15.00", "0.00", "5.00", "In store",
         "completed", ""],
        ["", "", str(s.order2), sale2.reference, "PointOne", "10.00", "0.00", "0.00", "In store", "completed", ""],
    ]  # fmt: skip
    assert [row[3][:10] for row in ordered[1:]] == [sale1.local[:10], sale2.local[:10]]

    lines = await export_rows(services, s.owner, ask(ExportKind.ORDER_LINE_ITEMS), tmp_path)
    assert len(lines[0]) == 19 and lines[0][4] == "Order Created Date (America/New_York)"
    assert [row[:4] + row[5:] for row in lines[1:]] == [
        [str(s.order1), str(sale1.id), "", "buyer@example.com", "20.00", p, "", "In venue", "", "", "", "", "", "",
         "", "", "", "completed"],
        [str(s.order2), str(sale2.id), "", "", "10.00", p, "", "In venue", "", "", "", "", "", "", "", "", "",
         "completed"],
    ]  # fmt: skip

    held = await export_rows(services, s.owner, ask(ExportKind.CARDS), tmp_path)
    assert held[0][1] == "Creation Date (America/New_York)" and len(held[0]) == 20
    assert held[1:] == [
        [str(s.a_id), sale1.local, a, "", p, str(s.order1), "17.00", "", "", "20.00", "No", "Soho", redemption.local,
         "4.00", "Soho", "", "5.00", "", "5.00", ""],
        [str(s.b_id), sale2.local, b, "", p, str(s.order2), "12.00", "", "", "10.00", "No", "Soho", "", "", "", "",
         "0.00", "", "0.00", ""],
    ]  # fmt: skip

    discounted = await export_rows(services, s.owner, ask(ExportKind.DISCOUNTS), tmp_path)
    assert discounted == [
        exports.discount_columns(ZONE),
        [str(sale1.id), "5.00", "", "", "", "", str(s.order1), str(sale1.transaction_id), str(sale1.id), "",
         sale1.local],
    ]  # fmt: skip

    at = sale2.created_at  # A: 20 (15 + 5 discount); B: 10
    snapshot = await export_rows(services, s.owner, exports.check_request("liability", None, None, at), tmp_path)
    moment = at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M")
    assert snapshot[0][8:] == [
        f"Value at {moment} (America/New_York)", f"Tender Value at {moment} (America/New_York)",
        f"Discount Value at {moment} (America/New_York)", f"Breakage to {moment} (America/New_York)",
    ]  # fmt: skip
    assert snapshot[1:] == [
        [str(s.a_id), a, p, "Soho", sale1.local, "", "20.00", "5.00", "20.00", "15.00", "5.00", "0.00"],
        [str(s.b_id), b, p, "Soho", sale2.local, "", "10.00", "0.00", "10.00", "10.00", "0.00", "0.00"],
    ]

    before = exports.check_request("transactions", date(2000, 1, 1), date(2000, 1, 2), None)
    assert await export_rows(services, s.owner, before, tmp_path) == [exports.transaction_columns(ZONE)]


async def test_liability_at_three_past_moments_and_now(services: Services, demo: Demo) -> None:
    s = await story(services, demo)
    finance_manager = await person(services, demo, Role.FINANCIAL_MANAGER)

    async def totals(moment: datetime) -> tuple[int, int, int, int]:
        found = await finance.liability(services, finance_manager, moment)
        return found.total("cards"), found.total("value"), found.total("tender"), found.total("discount")

    # after the redemption: A holds 20 - 4 (split 300 tender, 100 discount off)
    assert await totals(s.redemption.created_at) == (1, 1600, 1200, 400)
    # after B's sale, the redemption reversed: A 20 (15 + 5), B 10
    assert await totals(s.sale2.created_at) == (2, 3000, 2500, 500)
    # after the transfer: A 17 (1275 + 425), B 13 (1225 + 75)
    assert await totals(s.inbound.created_at) == (2, 3000, 2500, 500)
    assert await totals(s.sale1.created_at - timedelta(microseconds=1)) == (0, 0, 0, 0)
    now = await finance.liability(services, finance_manager, datetime.now(UTC) + timedelta(seconds=1))
    [group] = now.groups
    assert (group.product_id, group.site_name, group.cards) == (demo.product_id, "Soho", 2)
    assert (group.value, group.tender, group.discount, group.breakage, group.expired) == (
        2900,
        2500 - 95,
        500 - 5,
        0,
        0,
    )
    # at "now", the liability is what the cards hold, which `ledger verify` proves is what their line items add up to
    balances = await reports.outstanding_balance(services, finance_manager)
    assert (balances.balance, balances.tender, balances.discount) == (group.value, group.tender, group.discount)
    verified = await verify_account(services, demo.account_id)
    assert [c.violations for c in verified.checks] == [[]] * len(verified.checks)
    assert {c.name: c.examined for c in verified.checks}["line_item_values"] == 7

    # A expires: its breakage takes all it holds; B's expiry time passes before its breakage is written
    async with services.db.transaction() as conn:
        ledger = Ledger(conn, demo.account_id)
        transaction_id = await ledger.open_transaction("expiry", Actor(), None)
        expired = await ledger.post(transaction_id, Actor(), Entry(s.a_id, LineItemType.BREAKAGE, -1700))
        assert expired.line_item_id is not None
        await conn.execute(
            update(cards).where(cards.c.id == s.b_id).values(expiry_time=datetime.now(UTC) - timedelta(days=1))
        )
    later = await finance.liability(services, finance_manager, datetime.now(UTC) + timedelta(seconds=1))
    [group] = later.groups
    assert (group.cards, group.value, group.tender, group.discount) == (1, 1200, 1130, 70)
    assert (group.breakage, group.expired) == (1700, 1200)
    assert (await finance.liability(services, finance_manager, s.inbound.created_at)).total("breakage") == 0


async def test_reconciliation_is_the_tills_z_report(services: Services, demo: Demo) -> None:
    s = await story(services, demo)
    report = await finance.reconciliation(services, s.owner, *AROUND)
    day = s.sale1.local[:10]
    rows = finance.reconciliation_rows(report)
    assert [row for row in rows if row[2] == "PointOne"] == [
        [day, "Soho", "PointOne", "2", "30.00", "1", "4.00", "0", "0.00", "1", "4.00"],
    ]
    assert [row for row in rows if row[2] != "PointOne"] == []  # transfers and manual adjustments are no till's
    assert report.total(LineItemType.SALE) == (2, 3000)


async def test_refusals(services: Services, demo: Demo) -> None:
    staff = await person(services, demo, Role.FOH_STAFF)
    with pytest.raises(Forbidden):
        await exports.open_export(services, staff, exports.check_request("cards", *AROUND, None))
    with pytest.raises(Forbidden):
        await finance.reconciliation(services, staff, *AROUND)
    cases: list[tuple[tuple[Any, ...], dict[str, list[str]]]] = [
        (
            ("coupons", *AROUND, None),
            {"kind": [exports.UNKNOWN_KIND.format(kinds=", ".join(k.value for k in ExportKind))]},
        ),
        (("cards", None, None, None), {"start": ["This field is required"], "end": ["This field is required"]}),
        (("cards", AROUND[1], AROUND[0], None), {"end": [reports.END_BEFORE_START]}),
        (("liability", None, None, None), {"at": [exports.AT_REQUIRED]}),
    ]
    for args, fields in cases:
        with pytest.raises(ValidationFailed) as error:
            exports.check_request(*args)
        assert error.value.fields == fields
