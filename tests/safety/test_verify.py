"""`giftledger ledger verify` itself: it passes a healthy ledger, and it names every kind of violation
(planted by hand in a scratch database of this module's own), exiting non-zero. Also: line items are
append-only in the database itself."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner

from giftledger.cli import ledger as ledger_cli
from giftledger.cli.main import cli
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Principal, Services
from giftledger.services.reversals import ReversalItem, ReversalRequest, reverse_line_items
from giftledger.services.sales import OrderItem, OrderRequest, sell_cards
from giftledger.storage.people import Directory
from tests.support import (
    SECRET,
    Demo,
    create_postgres_database,
    drop_postgres_database,
    fresh_database,
    new_demo,
    with_services,
)


@pytest.fixture(scope="module")
def scratch_url(pg_base_url: str) -> Iterator[str]:
    """A database of this module's own: the tests below break its constraints on purpose."""
    with fresh_database(pg_base_url) as url:
        yield url


def execute(url: str, *statements: str) -> None:
    """Raw SQL on its own connection, past the application."""
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def run_verify(url: str, *extra: str) -> tuple[int, str]:
    ledger_cli.register(cli)
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    result = CliRunner(env=env).invoke(cli, ["--database-url", url, "ledger", "verify", *extra], obj={})
    return result.exit_code, result.output


def report(url: str, account_id: int) -> dict[str, list[str]]:
    code, output = run_verify(url, "--account-id", str(account_id), "--json")
    data = json.loads(output)
    [account] = data["accounts"]
    found = {c["name"]: c["violations"] for c in account["checks"] if c["violations"]}
    assert code == (1 if found else 0) and data["ok"] is (not found), output
    return found


def populate(url: str) -> tuple[Demo, dict[str, Any]]:
    """An account with a two-card order, a redemption, a top-up and a reversal (through the services)."""
    demo = new_demo(url)

    async def work(services: Services) -> dict[str, Any]:
        async with services.db.transaction() as conn:
            api_user = await Directory(conn).api_user_by_username(demo.api_username)
        assert api_user is not None
        till = Principal("api_user", api_user.id, demo.account_id, Role.API_USER, POINTONE, api_user.username)
        first, second = demo.card_references[:2]
        items: list[OrderItem | None] = [
            OrderItem(
                product_id=demo.product_id, custom_price_modifier_value=v, fulfilment_method_id=3, card_reference=c
            )
            for c, v in ((first, 2500), (second, 1000))
        ]
        order = await sell_cards(
            services,
            till,
            OrderRequest(demo.account_id, POINTONE, items, "GBP", 3500, 3, demo.epos, "order-1"),
        )

        async def adjust(value: int, reference: str) -> int:
            request = AdjustmentRequest(first, value, "GBP", demo.epos, POINTONE, reference)
            return (await adjust_balance(services, till, request)).line_item.item.id

        redemption = await adjust(-700, "redeem-1")
        top_up = await adjust(300, "top-up-1")
        reversal = await reverse_line_items(
            services, till, ReversalRequest([ReversalItem(redemption)], "reverse-1", demo.epos, POINTONE)
        )
        return {
            "order": order.order.id,
            "sales": [v.item.id for v in order.line_items],
            "cards": {v.card.card.card_reference: v.card.card.id for v in order.line_items},
            "redemption": redemption,
            "top_up": top_up,
            "reversal": reversal.line_items[0].item.id,
            "transaction": order.order.transaction_id,
        }

    return demo, with_services(url, work)


def test_a_healthy_ledger_passes_and_says_what_it_checked(scratch_url: str) -> None:
    demo, _ = populate(scratch_url)
    code, output = run_verify(scratch_url, "--account-id", str(demo.account_id))
    assert code == 0, output
    assert output.splitlines() == [
        f"account {demo.account_id}",
        "  card_balances: each card's balance equals the sum of its line items: 10 examined, ok",
        "  non_negative: no balance (nor its tender or discount part) is negative: 10 examined, ok",
        "  stock_empty: unsold stock cards hold nothing: 8 examined, ok",
        "  line_item_values: each line item's value is non-zero and tender + discount: 5 examined, ok",
        "  reversal_links: each reversal points at exactly one line item of its card and undoes it: 1 examined, ok",
        "  reversed_once: each line item is reversed at most once: 1 examined, ok",
        "  unique_references: no merchant_transaction_reference is used twice per account and merchant: 4 examined, ok",
        "  order_totals: each order's totals and status match its line items: 1 examined, ok",
        "  balance_transfers: each transfer out pairs with one transfer in on another card, summing to zero; a"
        " transfer in alone is an import's opening balance: 0 examined, ok",
        "  breakage: each breakage is an expiry run's debit of a card's whole balance, after its expiry: 0 examined,"
        " ok",
        "  references: each site, merchant, API user, user, product, price modifier, order and transaction a"
        " transaction, line item or audit record names, and each webhook endpoint an outbox message names, exists,"
        " and is of its account: 9 examined, ok",
        "1 account(s) checked: ledger OK",
    ]


def test_every_account_is_checked_by_default(scratch_url: str) -> None:
    first, _ = populate(scratch_url)
    second, _ = populate(scratch_url)
    code, output = run_verify(scratch_url, "--json")
    assert code == 0, output
    checked = [a["account_id"] for a in json.loads(output)["accounts"]]
    assert {first.account_id, second.account_id} <= set(checked)
    assert checked == sorted(checked)


def test_an_unknown_account_or_an_empty_database_cannot_be_verified(scratch_url: str, pg_base_url: str) -> None:
    assert run_verify(scratch_url, "--account-id", "987654321") == (2, "Error: There is no account 987654321.\n")
    empty = create_postgres_database(pg_base_url)
    try:
        code, output = run_verify(empty)
    finally:
        drop_postgres_database(pg_base_url, empty)
    assert (code, output) == (2, "Error: this database has no giftledger schema (run `giftledger migrate`)\n")


def test_the_installed_command_exits_1_and_prints_each_violation(scratch_url: str, tmp_path: Path) -> None:
    demo, ids = populate(scratch_url)
    card, card_id = next(iter(ids["cards"].items()))
    execute(
        scratch_url, f"UPDATE cards SET balance = balance + 5, tender_balance = tender_balance + 5 WHERE id = {card_id}"
    )
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "giftledger",
            "--database-url",
            scratch_url,
            "ledger",
            "verify",
            "--account-id",
            str(demo.account_id),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert (
        "  card_balances: each card's balance equals the sum of its line items: 10 examined, 1 VIOLATION(S)"
        in done.stdout
    )
    assert (
        f"    - card {card} (id {card_id}) holds 2805 (tender 2805, discount 0) but its line items sum to 2800"
        " (tender 2800, discount 0)"
    ) in done.stdout
    assert done.stdout.endswith("1 account(s) checked: ledger BROKEN: 1 violation(s)\n")


def _drop_constraint(url: str, table: str, name: str) -> None:
    execute(url, f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def test_a_balance_that_drifted_from_its_line_items(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    card, card_id = list(ids["cards"].items())[1]
    execute(scratch_url, f"UPDATE cards SET discount_balance = 4, balance = balance + 4 WHERE id = {card_id}")
    assert report(scratch_url, demo.account_id) == {
        "card_balances": [
            f"card {card} (id {card_id}) holds 1004 (tender 1000, discount 4) but its line items sum to 1000"
            " (tender 1000, discount 0)"
        ]
    }


def test_a_negative_balance(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    card, card_id = list(ids["cards"].items())[1]
    _drop_constraint(scratch_url, "cards", "ck_cards_balance_not_negative")
    execute(scratch_url, f"UPDATE cards SET balance = -1, tender_balance = -1 WHERE id = {card_id}")
    found = report(scratch_url, demo.account_id)
    assert found["non_negative"] == [f"card {card} (id {card_id}) is negative: balance -1, tender -1, discount 0"]
    assert set(found) == {"non_negative", "card_balances"}


def test_unsold_stock_holding_value(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    card, card_id = list(ids["cards"].items())[1]
    execute(scratch_url, f"UPDATE cards SET status = 'stock' WHERE id = {card_id}")
    assert report(scratch_url, demo.account_id) == {
        "stock_empty": [f"card {card} (id {card_id}) is unsold stock but holds 1000"]
    }


def _copy_line_item(source: int, **values: Any) -> str:
    columns = ["account_id", "card_id", "transaction_id", "order_id", "type_id", "value", "tender", "discount",
               "reverses_line_item_id", "created_at"]  # fmt: skip
    chosen = [str(values[c]) if c in values else c for c in columns]
    return (
        f"INSERT INTO line_items ({', '.join(columns)}) SELECT {', '.join(chosen)} FROM line_items WHERE id = {source}"
    )


def test_a_line_item_whose_parts_do_not_add_up(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    _drop_constraint(scratch_url, "line_items", "ck_line_items_value_adds_up")
    execute(scratch_url, _copy_line_item(ids["top_up"], type_id=8, value=0, tender=0, discount=0))
    found = report(scratch_url, demo.account_id)
    assert [v.split(" has ")[1] for v in found.pop("line_item_values")] == ["value 0 = tender 0 + discount 0?"]
    assert found == {}  # nothing moved: only the zero value is wrong
    execute(scratch_url, _copy_line_item(ids["top_up"], type_id=8, value=6, tender=3, discount=2))
    found = report(scratch_url, demo.account_id)
    assert [v.split(" has ")[1] for v in found["line_item_values"]] == [
        "value 0 = tender 0 + discount 0?",
        "value 6 = tender 3 + discount 2?",
    ]
    assert set(found) == {"line_item_values", "card_balances"}


def test_reversals_that_point_nowhere_or_at_the_wrong_thing(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    other_sale = ids["sales"][1]  # on the second card
    execute(
        scratch_url,
        # a reversal pointing at nothing, and one whose card and value do not match what it reverses;
        # each with a balancing manual line item so the card sums stay right
        _copy_line_item(ids["top_up"], type_id=4, value=50, tender=50, reverses_line_item_id="NULL"),
        _copy_line_item(ids["top_up"], type_id=8, value=-50, tender=-50),
        _copy_line_item(ids["top_up"], type_id=4, value=-10, tender=-10, reverses_line_item_id=other_sale),
        _copy_line_item(ids["top_up"], type_id=8, value=10, tender=10),
        # a top-up pretending to reverse something
        _copy_line_item(ids["top_up"], type_id=7, value=1, tender=1, reverses_line_item_id=ids["top_up"]),
        _copy_line_item(ids["top_up"], type_id=8, value=-1, tender=-1),
    )
    found = report(scratch_url, demo.account_id)
    assert set(found) == {"reversal_links"}
    problems = [v.split(") ", 1)[1] for v in found["reversal_links"]]
    assert problems == [
        "points at no line item (reverses None, whose value is None)",
        f"is on a different card from the line item it reverses (reverses {other_sale}, whose value is 1000)",
        f"is not a reversal but points at a line item (reverses {ids['top_up']}, whose value is 300)",
    ]


def test_a_line_item_reversed_twice(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    second = _copy_line_item(ids["reversal"], type_id=8, value=-700, tender=-700, reverses_line_item_id="NULL")
    twice = _copy_line_item(ids["reversal"])
    execute(scratch_url, "DROP INDEX uq_line_items_reverses", twice, second)
    assert report(scratch_url, demo.account_id) == {
        "reversed_once": [f"line item {ids['redemption']} is reversed 2 times"]
    }


def test_a_reference_used_twice(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    copy = (
        "INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, created_at) "
        f"SELECT account_id, NULL, 'till-9', kind, created_at FROM transactions WHERE id = {ids['transaction']}"
    )
    # the unique index treats missing merchants as all different: only verify catches this one
    execute(scratch_url, copy, copy)
    assert report(scratch_url, demo.account_id) == {
        "unique_references": ["merchant_transaction_reference 'till-9' of merchant None is used by 2 transactions"]
    }


def test_references_without_a_foreign_key_to_missing_rows_or_to_another_accounts(scratch_url: str) -> None:
    """The references the database holds no foreign key for (migration 0011): each one planted wrong is named."""
    demo, ids = populate(scratch_url)
    other, other_ids = populate(scratch_url)

    def one(sql: str) -> int:
        async def run() -> int:
            conn = await asyncpg.connect(scratch_url, timeout=5)
            try:
                return int(await conn.fetchval(sql))
            finally:
                await conn.close()

        return asyncio.run(run())

    other_site = one(f"SELECT min(id) FROM sites WHERE account_id = {other.account_id}")
    other_api_user = one(f"SELECT min(id) FROM api_users WHERE account_id = {other.account_id}")
    missing = 987654321
    transaction = one(
        "INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, site_id, created_at)"
        f" VALUES ({demo.account_id}, {missing}, 'planted-1', 'adjustment', NULL, now()) RETURNING id"
    )
    other_transaction = one(
        "INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, site_id, created_at)"
        f" VALUES ({demo.account_id}, {POINTONE}, 'planted-2', 'adjustment', {other_site}, now()) RETURNING id"
    )
    columns = "account_id, card_id, transaction_id, type_id, value, tender, discount, created_at"
    planted = {
        "product_id": other.product_id,
        "price_modifier_id": other.price_modifier_ids[0],
        "api_user_id": other_api_user,
        "user_id": missing,
        "transaction_id": other_ids["transaction"],  # the other account's
    }
    items = []
    for column, value in planted.items():  # each a top-up of 1 and its reversal's worth back, so sums still hold
        chosen = {"transaction_id": ids["transaction"], column: value}
        extra = "" if column == "transaction_id" else f", {column}"
        for amount in (1, -1):
            items.append(
                one(
                    f"INSERT INTO line_items ({columns}{extra}) SELECT account_id, card_id, {chosen['transaction_id']},"
                    f" 8, {amount}, {amount}, 0, created_at{'' if not extra else f', {value}'}"
                    f" FROM line_items WHERE id = {ids['top_up']} RETURNING id"
                )
            )
    audit = one(
        "INSERT INTO audit_events (account_id, created_at, actor_kind, operation, outcome, site_id)"
        f" VALUES ({demo.account_id}, now(), 'system', 'planted', 'accepted', {other_site}) RETURNING id"
    )
    delivery = one(  # migration 0012: an outbox message's endpoint has no key either
        "INSERT INTO outbox_messages (account_id, channel, kind, recipient, subject, message_id, content, state,"
        " attempts, next_attempt_at, created_at, endpoint_id, event_id)"
        f" VALUES ({demo.account_id}, 'webhook', 'card.balance_adjusted', 'https://crm.example.com/',"
        f" 'card.balance_adjusted', 'planted-webhook', '\\x7b7d', 'queued', 0, now(), now(), {missing}, 1)"
        " RETURNING id"
    )
    found = report(scratch_url, demo.account_id)
    assert found == {
        "references": [
            f"audit record {audit} names a site of another account or none: id {other_site}",
            *(
                f"line item {item} names {problem}"
                for item, problem in zip(
                    items,
                    [
                        f"a product of another account or none: id {other.product_id}",
                        f"a product of another account or none: id {other.product_id}",
                        f"a price modifier of another account or none: id {other.price_modifier_ids[0]}",
                        f"a price modifier of another account or none: id {other.price_modifier_ids[0]}",
                        f"an API user of another account or none: id {other_api_user}",
                        f"an API user of another account or none: id {other_api_user}",
                        f"a user that does not exist: id {missing}",
                        f"a user that does not exist: id {missing}",
                        f"a transaction of another account or none: id {other_ids['transaction']}",
                        f"a transaction of another account or none: id {other_ids['transaction']}",
                    ],
                    strict=True,
                )
            ),
            f"outbox message {delivery} names a webhook endpoint of another account or none: id {missing}",
            f"transaction {transaction} names a merchant that does not exist: id {missing}",
            f"transaction {other_transaction} names a site of another account or none: id {other_site}",
        ]
    }
    assert report(scratch_url, other.account_id) == {}  # the other account's own rows are sound
    # a line item's card is still held by a key, one scoped by account: another account's card is refused
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="fk_line_items_account_id_cards"):
        execute(
            scratch_url,
            f"INSERT INTO line_items ({columns}) SELECT {demo.account_id}, card_id, {ids['transaction']}, 8, 1, 1, 0,"
            f" created_at FROM line_items WHERE id = {other_ids['top_up']}",
        )


def test_orders_whose_totals_or_status_disagree_with_their_line_items(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    execute(scratch_url, f"UPDATE orders SET total = 3499, status = 'cancelled' WHERE id = {ids['order']}")
    assert report(scratch_url, demo.account_id) == {
        "order_totals": [
            f"order {ids['order']} (total 3499, discount_total 0, status cancelled) has 2 sales with tender 3500"
            " and discount 0, 0 of them reversed"
        ]
    }


def test_line_items_are_append_only_in_the_database(scratch_url: str) -> None:
    demo, ids = populate(scratch_url)
    error = asyncpg.RestrictViolationError
    with pytest.raises(error, match="line_items are append-only: UPDATE refused"):
        execute(scratch_url, f"UPDATE line_items SET value = value + 1 WHERE id = {ids['top_up']}")
    with pytest.raises(error, match="line_items are append-only: DELETE refused"):
        execute(scratch_url, f"DELETE FROM line_items WHERE id = {ids['reversal']}")
    with pytest.raises(error, match="line_items are append-only: DELETE refused"):
        execute(scratch_url, f"DELETE FROM line_items WHERE account_id = {demo.account_id}")
    assert report(scratch_url, demo.account_id) == {}
