"""Reports on both databases: per-site figures, the outstanding balance, and the reconciliation export."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from giftledger.domain.errors import Forbidden, ValidationFailed
from giftledger.domain.permissions import Role
from giftledger.services import card_admin, reports, setup
from giftledger.services.card_admin import ManualAdjustment
from giftledger.services.context import Services
from giftledger.services.reports import EXPORT_COLUMNS, SiteFigures
from tests.dashboard.browser import TIMESTAMP
from tests.dashboard.helpers import person, redeem, sell, site_ids, till, till_reverse
from tests.support import Demo

# A range around today (never asserting what the clock says): yesterday to tomorrow, UTC.
TODAY = datetime.now(UTC).date()
AROUND = (TODAY - timedelta(days=1), TODAY + timedelta(days=1))


async def test_site_report_counts_unreversed_sales_and_redemptions(services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    finance = await person(services, demo, Role.FINANCIAL_MANAGER)
    soho, leeds = demo.unit_epos_references
    a, b, c, d = demo.card_references[:4]
    await sell(services, pos, demo, a, 2500, epos=soho)
    await sell(services, pos, demo, b, 1000, epos=leeds)
    await redeem(services, pos, demo, a, 700, epos=soho)
    voided = await sell(services, pos, demo, c, 4000, epos=soho)
    await till_reverse(services, pos, demo, voided.line_items[0].item.id, epos=soho)
    cancelled = await redeem(services, pos, demo, b, 300, epos=leeds)
    await till_reverse(services, pos, demo, cancelled.line_item.item.id, epos=leeds)
    await sell(services, pos, demo, d, 1200, discount=200, epos=leeds)
    closed = await setup.add_site(services, setup.operator(demo.account_id), setup.SiteInput("Pop-up"))
    await setup.set_site_mapping(
        services, setup.operator(demo.account_id), 60, {**(await ids(services, demo)), closed: "popup"}
    )
    await redeem(services, pos, demo, d, 100, epos="popup")
    await setup.delete_site(services, setup.operator(demo.account_id), closed)

    sites = await site_ids(services, demo)
    report = await reports.site_report(services, finance, *AROUND)
    assert report.sites == [
        SiteFigures(sites["Leeds"], "Leeds", 2, 2200, 0, 0),
        SiteFigures(closed, "Pop-up", 0, 0, 1, 100),
        SiteFigures(sites["Soho"], "Soho", 1, 2500, 1, 700),
    ]
    assert report.total == SiteFigures(None, "Total", 3, 4700, 2, 800)

    quiet = await reports.site_report(services, finance, date(2000, 1, 1), date(2000, 1, 31))
    assert [(s.site_name, s.cards_sold, s.value_sold, s.redemptions, s.value_redeemed) for s in quiet.sites] == [
        ("Leeds", 0, 0, 0, 0),
        ("Soho", 0, 0, 0, 0),
    ]

    liability = await reports.outstanding_balance(services, finance)
    # a: 2500-700, b: 1000, c: reversed to 0, d: 1000 tender + 200 discount less 84 + 16 (in proportion)
    assert (liability.cards_with_balance, liability.balance) == (3, 1800 + 1000 + 1100)
    assert (liability.tender, liability.discount) == (1800 + 1000 + 916, 184)


async def ids(services: Services, demo: Demo) -> dict[int, str]:
    return await setup.site_mapping(services, setup.operator(demo.account_id), 60)


async def test_report_periods_and_permissions(services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    cases = [
        ((None, None), {"start": ["This field is required"], "end": ["This field is required"]}),
        ((date(2026, 2, 1), date(2026, 1, 31)), {"end": [reports.END_BEFORE_START]}),
        ((date(2025, 1, 1), date(2026, 1, 2)), {"end": [reports.RANGE_TOO_LONG]}),
    ]
    for (start, end), fields in cases:
        with pytest.raises(ValidationFailed) as error:
            await reports.site_report(services, owner, start, end)
        assert error.value.fields == fields
    full_year = await reports.site_report(services, owner, date(2024, 1, 1), date(2024, 12, 31))  # 366 days
    assert full_year.period.starts_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert full_year.period.ends_before == datetime(2025, 1, 1, tzinfo=UTC)
    # the account's days: London's summer day starts at 23:00 UTC the day before
    summer = await reports.site_report(services, owner, date(2024, 7, 1), date(2024, 7, 1))
    assert (summer.period.starts_at, summer.period.ends_before) == (
        datetime(2024, 6, 30, 23, tzinfo=UTC),
        datetime(2024, 7, 1, 23, tzinfo=UTC),
    )
    last_days = await reports.site_report(services, owner, date.max - timedelta(days=1), date.max)  # no 500
    assert (last_days.total.cards_sold, last_days.period.ends_before) == (0, datetime.max.replace(tzinfo=UTC))
    for role in (Role.FOH_STAFF, Role.FOH_MANAGER):
        principal = await person(services, demo, role)
        with pytest.raises(Forbidden):
            await reports.site_report(services, principal, *AROUND)
        with pytest.raises(Forbidden):
            await reports.outstanding_balance(services, principal)
        with pytest.raises(Forbidden):
            await reports.balance_adjustments(services, principal, *AROUND)


async def test_balance_adjustments_export_has_what_a_till_reconciles(services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card = demo.card_references[0]
    order = await sell(services, pos, demo, card, 2000)
    redemption = await redeem(services, pos, demo, card, 550)
    card_id = order.line_items[0].card.card.id
    leeds = (await site_ids(services, demo))["Leeds"]
    manual = await card_admin.adjust_card(
        services, owner, card_id, ManualAdjustment(-100, leeds, '=HYPERLINK("http://x")')
    )
    reversal = await card_admin.reverse_line_item(services, owner, redemption.line_item.item.id)
    sale = order.line_items[0].item

    period, rows = await reports.balance_adjustments(services, owner, *AROUND)
    assert period.start == AROUND[0]
    assert len(EXPORT_COLUMNS) == 17 and all(len(row) == 17 for row in rows)
    when = EXPORT_COLUMNS.index("Adjustment Date")
    assert reports.export_columns(period)[when] == "Adjustment Date (Europe/London)"
    assert all(TIMESTAMP.match(row[when]) for row in rows)
    assert [row[:when] + row[when + 1 :] for row in rows] == [
        [str(card_id), card, str(sale.id), "Sale", "20.00", "20.00", "0.00", "GBP", "Soho", "PointOne",
         sale.merchant_transaction_reference, str(order.order.id), "", pos.name, "", ""],
        [str(card_id), card, str(redemption.line_item.item.id), "Redemption", "-5.50", "-5.50", "0.00", "GBP", "Soho",
         "PointOne", redemption.line_item.item.merchant_transaction_reference, "", "", pos.name, "", str(reversal.id)],
        [str(card_id), card, str(manual.id), "Manual Adjustment", "-1.00", "-1.00", "0.00", "GBP", "Leeds", "", "",
         "", "'=HYPERLINK(\"http://x\")", owner.name, "", ""],
        [str(card_id), card, str(reversal.id), "Reversal", "5.50", "5.50", "0.00", "GBP", "Soho", "", "", "", "",
         owner.name, str(redemption.line_item.item.id), ""],
    ]  # fmt: skip
    _, old = await reports.balance_adjustments(services, owner, date(2000, 1, 1), date(2000, 1, 2))
    assert old == []
