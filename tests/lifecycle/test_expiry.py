"""Expiry on the dashboard and in the expiry run: the product's settings page, breakage (once, tender and
discount parts), reversing a breakage to reactivate a card, changing expiry (one card and in bulk), blocking,
the reminder email. Forms go through the dashboard in-process (each one audited); every refusal leaves the
account as it was."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from starlette.applications import Starlette

from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Role
from giftledger.domain.time_zones import zone
from giftledger.domain.validity import ExpiryKind, ValidityRules, expires_at, shown_expiry_date
from giftledger.services import card_lifecycle, reports, setup
from giftledger.services.context import Services, operator
from giftledger.services.expiry import EXPIRY_REMINDER, expire_due, remind_due, run_expiry
from giftledger.services.verification import verify_ledger
from giftledger.storage.audit import audit_events
from giftledger.storage.clock import utcnow
from giftledger.storage.lifecycle import Lifecycle
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.people import Directory
from tests.dashboard.helpers import PASSWORD, person
from tests.dashboard.web import Web, field_error, text_of
from tests.lifecycle.helpers import Till, line_item_types, refusal, set_card, state
from tests.support import Demo

BREAKAGE, REVERSAL, SALE = int(LineItemType.BREAKAGE), int(LineItemType.REVERSAL), int(LineItemType.SALE)


async def _signed_in(app: Starlette, services: Services, demo: Demo, role: Role) -> Web:
    member = await person(services, demo, role)
    web = Web(app)
    await web.log_in(member.name, PASSWORD)
    return web


async def _operations(services: Services, account_id: int) -> list[tuple[str, str, str | None]]:
    async with services.db.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_events.c.operation, audit_events.c.outcome, audit_events.c.error_code)
            .where(audit_events.c.account_id == account_id, audit_events.c.operation.like("dashboard.%"))
            .order_by(audit_events.c.id)
        )
        return [(r.operation, r.outcome, r.error_code) for r in rows if r.operation != "dashboard.login"]


async def test_the_product_page_sets_validity_and_refuses_bad_settings_unchanged(
    app: Starlette, services: Services, demo: Demo, till: Till
) -> None:
    web = await _signed_in(app, services, demo, Role.STORE_MANAGER)
    held = await state(services, demo.account_id)
    bad = {"activation_delay_seconds": "0", "expiry_kind": "period", "expiry_period_days": "", "reminder_days": "x"}
    page = await web.post("/shop/in-store-gift/validity", bad)
    assert page.status_code == 400
    assert field_error(page.text, "expiry_period_days") == "Enter the number of days after purchase."
    assert field_error(page.text, "reminder_days") == "Enter a whole number."
    assert await state(services, demo.account_id) == held
    good = {"activation_delay_seconds": "86400", "valid_after": "", "expiry_kind": "period",
            "expiry_period_days": "30", "expiry_date": "", "reminder_days": "7"}  # fmt: skip
    page = await web.post("/shop/in-store-gift/validity", good)
    assert (page.status_code, page.headers["location"]) == (303, "/shop/in-store-gift?done=validity-saved#validity")
    shown = text_of((await web.get("/shop/in-store-gift")).text)
    assert "Card becomes active 1 day after purchase Expires 30 days after purchase Reminder email 7 days" in shown
    before = utcnow().astimezone(zone("Europe/London")).date()
    card = (await till.sell(1000))["Card"]
    after = utcnow().astimezone(zone("Europe/London")).date()  # a sale across midnight is either day's
    assert card["expiry_time"] in {
        expires_at(bought + timedelta(days=30), "Europe/London").strftime("%Y-%m-%d %H:%M:%S")
        for bought in (before, after)
    }
    assert await _operations(services, demo.account_id) == [
        ("dashboard.product.validity", "refused", "VALIDATION"),
        ("dashboard.product.validity", "accepted", None),
    ]
    await web.close()


async def test_breakage_moves_the_whole_balance_once_and_reversing_it_reactivates_the_card(
    app: Starlette, services: Services, demo: Demo, till: Till
) -> None:
    sold = (await till.sell(3000, discount=900))["Card"]
    card = sold["card_reference"]
    assert (await till.adjust(card, -1000))["data"]["createBalanceAdjustment"]["value"] == -1000
    await set_card(services, demo.account_id, card, expiry_time=utcnow() - timedelta(minutes=1))
    assert await expire_due(services) >= 1
    assert await expire_due(services) == 0  # once: nothing left to break
    # 3000 = 2100 tender + 900 discount; the redemption took 700 + 300; the breakage takes the rest, 1400 + 600
    assert await line_item_types(services, demo.account_id, card) == [
        (SALE, 3000, 2100, 900), (2, -1000, -700, -300), (BREAKAGE, -2000, -1400, -600),
    ]  # fmt: skip
    assert (await till.balance(card))["balance"] == 0
    assert (await verify_ledger(services, demo.account_id)).ok
    # the balance adjustments report (CSV) lists it: type, value, tender, discount
    today = utcnow().date()  # and yesterday: the breakage may have come just before midnight
    _, rows = await reports.balance_adjustments(services, operator(demo.account_id), today - timedelta(days=1), today)
    assert [r[3:7] for r in rows if r[1] == card][-1] == ["Breakage", "-20.00", "-14.00", "-6.00"]
    # Reverse on the dashboard's card page: the balance comes back and the card no longer expires
    web = await _signed_in(app, services, demo, Role.STORE_MANAGER)
    page = (await web.get(f"/cards/{sold['id']}")).text
    assert "Expired" in text_of(page)
    breakage_id = re.search(r'/line-items/(\d+)/reverse" aria-label="Reverse line item \1"', page.split("Breakage")[1])
    assert breakage_id is not None
    reversed_ = await web.post(f"/cards/{sold['id']}/line-items/{breakage_id.group(1)}/reverse")
    assert reversed_.status_code == 303
    shown = await till.balance(card)
    assert (shown["balance"], shown["ValueSplit"], shown["state"], shown["expiry_time"]) == (
        2000, {"tender": 1400, "discount": 600}, "active", None,
    )  # fmt: skip
    assert await expire_due(services) == 0
    assert (await till.adjust(card, -2000))["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 0
    assert (await verify_ledger(services, demo.account_id)).ok
    await web.close()


async def test_changing_one_cards_expiry_by_days_to_a_date_or_removing_it(
    app: Starlette, services: Services, demo: Demo, till: Till
) -> None:
    sold = (await till.sell(1000))["Card"]
    web = await _signed_in(app, services, demo, Role.STORE_OWNER)
    path = f"/cards/{sold['id']}/expiry"
    # a card that never expires cannot be extended; a date in the past is refused; nothing changes
    held = await state(services, demo.account_id)
    assert (await web.post(path, {"change": "extend", "days": "10"})).status_code == 400
    assert (await web.post(path, {"change": "date", "expiry_date": "2001-01-01"})).status_code == 400
    assert (await web.post(path, {"change": "sideways"})).status_code == 400
    assert await state(services, demo.account_id) == held
    assert (await web.post(path, {"change": "date", "expiry_date": "2040-06-30"})).status_code == 303
    assert (await till.balance(sold["card_reference"]))["expiry_time"] == "2040-07-01 02:00:00"  # 03:00 BST
    assert (await web.post(path, {"change": "extend", "days": "1"})).status_code == 303
    assert (await till.balance(sold["card_reference"]))["expiry_time"] == "2040-07-02 02:00:00"
    assert "2040-07-01 (at 2040-07-02 03:00:00)" in text_of((await web.get(f"/cards/{sold['id']}")).text)
    assert (await web.post(path, {"change": "remove"})).status_code == 303
    assert (await till.balance(sold["card_reference"]))["expiry_time"] is None
    # an expired card's expiry cannot change: its breakage must be reversed first
    await set_card(services, demo.account_id, sold["card_reference"], expiry_time=utcnow() - timedelta(seconds=5))
    held = await state(services, demo.account_id)
    refused = await web.post(path, {"change": "remove"})
    assert refused.status_code == 409 and card_lifecycle.EXPIRED_ALREADY in text_of(refused.text)
    assert await state(services, demo.account_id) == held
    # Front of House Staff may not change expiry
    staff = await _signed_in(app, services, demo, Role.FOH_STAFF)
    assert (await staff.post(f"/cards/{sold['id']}/expiry", {"change": "remove"})).status_code == 403
    assert await state(services, demo.account_id) == held
    operations = [op for op in await _operations(services, demo.account_id) if op[0] == "dashboard.card.expiry"]
    assert [o[1:] for o in operations] == [
        ("refused", "VALIDATION"), ("refused", "VALIDATION"), ("refused", "VALIDATION"), ("accepted", None),
        ("accepted", None), ("accepted", None), ("refused", "CONFLICT"), ("refused", "FORBIDDEN"),
    ]  # fmt: skip
    await web.close()
    await staff.close()


async def test_bulk_change_of_expiry_by_product_or_creation_dates(
    app: Starlette, services: Services, demo: Demo, till: Till
) -> None:
    product = await setup.add_product(services, operator(demo.account_id), f"Bulk {utcnow().timestamp()}")
    cards = [(await till.sell(500, product_id=product))["Card"]["card_reference"] for _ in range(3)]
    await set_card(services, demo.account_id, cards[0], expiry_time=utcnow() + timedelta(days=3))
    await set_card(services, demo.account_id, cards[1], expiry_time=utcnow() - timedelta(days=1))  # expired
    web = await _signed_in(app, services, demo, Role.STORE_MANAGER)
    held = await state(services, demo.account_id)
    page = await web.post("/cards/expiry", {"change": "extend", "days": "5"})  # no selection
    assert page.status_code == 400
    assert field_error(page.text, "product_id") == "Choose a product or a creation date range."
    page = await web.post("/cards/expiry", {"created_from": "2026-02-30", "change": "remove"})
    assert (page.status_code, field_error(page.text, "created_from")) == (400, "Enter a date as YYYY-MM-DD.")
    assert await state(services, demo.account_id) == held
    page = await web.post("/cards/expiry", {"product_id": str(product), "change": "extend", "days": "5"})
    assert "Expiry changed on 1 card." in text_of(page.text)  # the expired one and the one without expiry: left
    today = utcnow().date()
    yesterday, tomorrow = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    created_before = {"created_from": "2020-01-01", "created_to": "2020-12-31"}
    page = await web.post("/cards/expiry", {"product_id": str(product), **created_before, "change": "remove"})
    assert "Expiry changed on 0 cards." in text_of(page.text)
    page = await web.post(
        "/cards/expiry",
        {"product_id": str(product), "created_from": yesterday, "created_to": tomorrow, "change": "date",
         "expiry_date": "2041-01-15"},
    )  # fmt: skip
    assert "Expiry changed on 2 cards." in text_of(page.text)
    expiries = [(await till.balance(c))["expiry_time"] for c in cards]
    assert expiries[0] == expiries[2] == "2041-01-16 03:00:00"
    assert expiries[1] != expiries[0]
    await web.close()


async def test_block_and_unblock_from_the_card_page_with_a_reason(
    app: Starlette, services: Services, demo: Demo, till: Till
) -> None:
    sold = (await till.sell(800))["Card"]
    web = await _signed_in(app, services, demo, Role.STORE_MANAGER)
    held = await state(services, demo.account_id)
    assert (await web.post(f"/cards/{sold['id']}/block", {"reason": "bored"})).status_code == 400
    staff = await _signed_in(app, services, demo, Role.FOH_MANAGER)
    assert (await staff.post(f"/cards/{sold['id']}/block", {"reason": "lost"})).status_code == 403
    assert await state(services, demo.account_id) == held
    assert (await web.post(f"/cards/{sold['id']}/block", {"reason": "lost"})).status_code == 303
    page = text_of((await web.get(f"/cards/{sold['id']}")).text)
    assert "State Blocked (lost, since" in page
    assert refusal(await till.adjust(sold["card_reference"], -100), "createBalanceAdjustment")[0] == "CARD_BLOCKED"
    assert (await web.post(f"/cards/{sold['id']}/block", {"reason": "fraud"})).status_code == 409
    assert (await web.post(f"/cards/{sold['id']}/unblock")).status_code == 303
    assert (await till.balance(sold["card_reference"]))["state"] == "active"
    operations = [op for op in await _operations(services, demo.account_id) if "block" in op[0]]
    assert operations == [
        ("dashboard.card.block", "refused", "VALIDATION"), ("dashboard.card.block", "refused", "FORBIDDEN"),
        ("dashboard.card.block", "accepted", None), ("dashboard.card.block", "refused", "CONFLICT"),
        ("dashboard.card.unblock", "accepted", None),
    ]  # fmt: skip
    await web.close()
    await staff.close()


async def test_the_reminder_email_is_queued_once_per_card_and_expiry(
    services: Services, demo: Demo, till: Till
) -> None:
    line = await till.sell(
        1500,
        fulfilment_method_id=1,
        fulfilment_email="holder@example.com",
        expiry_config={"seconds_valid_for": 5 * 86_400, "send_expiry_alert_days_before": 7},
    )
    card = line["Card"]

    async def reminders() -> list[tuple[str, str]]:
        async with services.db.engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_messages.c.recipient, outbox_messages.c.subject).where(
                    outbox_messages.c.account_id == demo.account_id, outbox_messages.c.kind == EXPIRY_REMINDER
                )
            )
            return [(r.recipient, r.subject) for r in rows]

    expiry = datetime.strptime(card["expiry_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    shown = shown_expiry_date(expiry, "Europe/London").strftime("%-d %B %Y")
    async with services.db.engine.connect() as conn:
        name = await Directory(conn).account_name(demo.account_id)
    assert await remind_due(services) >= 1
    assert await reminders() == [("holder@example.com", f"Your {name} gift card expires on {shown}")]
    assert (await run_expiry(services)).reminded == 0
    assert len(await reminders()) == 1
    # a new expiry is reminded again
    await card_lifecycle.change_card_expiry(
        services, await person(services, demo, Role.STORE_OWNER), card["id"],
        card_lifecycle.ExpiryInput("extend", days=1),
    )  # fmt: skip
    assert await remind_due(services) >= 1
    assert len(await reminders()) == 2


async def test_the_e_gift_shows_the_date_the_card_is_shown_as_expiring_on(
    services: Services, demo: Demo, till: Till
) -> None:
    async with services.db.transaction() as conn:
        rules = ValidityRules(expiry_kind=ExpiryKind.DATE, expiry_date=date(2040, 1, 31))
        await Lifecycle(conn, demo.account_id).set_rules(demo.product_id, rules)
    card = (await till.sell(1000, fulfilment_method_id=1, fulfilment_email="gift@example.com"))["Card"]
    assert card["expiry_time"] == "2040-02-01 03:00:00"
    async with services.db.engine.connect() as conn:
        content = (
            await conn.execute(
                select(outbox_messages.c.content).where(
                    outbox_messages.c.account_id == demo.account_id,
                    outbox_messages.c.card_id == card["id"],
                    outbox_messages.c.kind == "card.e_gift",
                )
            )
        ).scalar_one()
    message = email.message_from_bytes(content, policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None and "Valid until: 31 January 2040" in body.get_content()


async def test_ledger_verify_names_a_breakage_that_no_expiry_run_wrote(
    services: Services, demo: Demo, till: Till
) -> None:
    sold = (await till.sell(1000))["Card"]
    async with services.db.transaction() as conn:  # by hand: a "breakage" of part of a card that never expires
        await conn.exec_driver_sql(
            "WITH tx AS (INSERT INTO transactions (account_id, kind, created_at) VALUES ($1, 'manual', now())"
            " RETURNING id) INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender,"
            " discount, created_at) SELECT $1, $2, tx.id, 3, -400, -400, 0, now() FROM tx",
            (demo.account_id, sold["id"]),
        )
        await conn.exec_driver_sql(
            "UPDATE cards SET balance = 600, tender_balance = 600 WHERE account_id = $1 AND id = $2",
            (demo.account_id, sold["id"]),
        )
    report = await verify_ledger(services, demo.account_id)
    assert [v.rsplit(") ", 1)[1] for v in report.violations] == ["is not in an expiry run's transaction"]
    async with services.db.transaction() as conn:  # the same in an expiry run's transaction: still not one
        await conn.exec_driver_sql(
            "UPDATE transactions SET kind = 'expiry' WHERE account_id = $1 AND kind = 'manual'", (demo.account_id,)
        )
    report = await verify_ledger(services, demo.account_id)
    assert [v.rsplit(") ", 1)[1] for v in report.violations] == ["does not leave its card at zero"]
