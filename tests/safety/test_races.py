"""Many tills at once, over real HTTP against a live server: the counts are exact,
no till ever sees "database is locked", and `ledger verify` passes afterwards (the `account` fixture)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.safety.helpers import DUPLICATE, NEGATIVE, Reply, execute_sql, post_concurrently
from tests.safety.tills import adjustment, balance, new_card, reversal, sale, sell_new, send
from tests.support import Api, Demo, LiveServer, snapshot, unchanged

ROUNDS = 4  # in the suite (its time budget); bench/race_soak.py runs the same race for as many as asked (200)
CARDS_AT_ONCE = 4


def _no_lock_errors(replies: list[Reply]) -> None:
    for reply in replies:
        assert reply.status == 200, reply
        assert "locked" not in str(reply.body).lower(), reply


def test_64_redemptions_of_1p_on_a_50p_card_exactly_50_succeed(
    safety_server: LiveServer, account: Demo, till: Api
) -> None:
    """20 rounds, run CARDS_AT_ONCE at a time: 64 redemptions race on each card, and the cards race each other."""
    for first in range(0, ROUNDS, CARDS_AT_ONCE):
        cards = [sell_new(till, account, 50)[0] for _ in range(CARDS_AT_ONCE)]
        requests = [adjustment(account, card, -1) for card in cards for _ in range(64)]
        replies = post_concurrently(safety_server, till.token or "", requests)
        _no_lock_errors(replies)
        for index, card in enumerate(cards):
            mine = replies[64 * index : 64 * (index + 1)]
            outcomes = Counter("ok" if r.ok else r.code for r in mine)
            assert outcomes == {"ok": 50, "NEGATIVE_BALANCE": 14}, (first + index, outcomes)
            refused = [r for r in mine if not r.ok]
            assert {r.body["errors"][0]["message"] for r in refused} == {NEGATIVE}
            assert all(r.body["data"] == {"createBalanceAdjustment": None} for r in refused)
            balances_seen = sorted(
                r.body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] for r in mine if r.ok
            )
            assert balances_seen == list(range(50)), first + index  # each success saw its own balance
            assert balance(till, card) == 0


def test_200_top_ups_and_200_redemptions_at_once_end_at_1400p(
    safety_server: LiveServer, account: Demo, till: Api
) -> None:
    card, _ = sell_new(till, account, 1000)
    requests = [adjustment(account, card, 7) for _ in range(200)] + [adjustment(account, card, -5) for _ in range(200)]
    random.Random(5).shuffle(requests)
    replies = post_concurrently(safety_server, till.token or "", requests)
    _no_lock_errors(replies)
    assert [r.code for r in replies if not r.ok] == []
    assert balance(till, card) == 1000 + 200 * 7 - 200 * 5 == 1400


@pytest.mark.parametrize("value", [-300, 300], ids=["redemption", "top-up"])
def test_16_concurrent_reversals_of_one_line_item_exactly_one_succeeds(
    safety_server: LiveServer, account: Demo, till: Api, value: int
) -> None:
    card, _ = sell_new(till, account, 1000)
    body = send(till, adjustment(account, card, value))
    line_item_id = body["data"]["createBalanceAdjustment"]["LineItem"]["id"]
    replies = post_concurrently(safety_server, till.token or "", [reversal(account, [line_item_id]) for _ in range(16)])
    _no_lock_errors(replies)
    succeeded = [r for r in replies if r.ok]
    assert len(succeeded) == 1
    [item] = succeeded[0].body["data"]["createReversal"]["LineItems"]
    assert (item["value"], item["reverses_line_item_id"], item["Card"]["balance"]) == (-value, line_item_id, 1000)
    refused = [r for r in replies if not r.ok]
    assert [r.code for r in refused] == ["ALREADY_REVERSED"] * 15
    assert {r.body["errors"][0]["message"] for r in refused} == {f"Line item {line_item_id} has already been reversed."}
    assert balance(till, card) == 1000


def _inject_fault(database_url: str, card: str, how: str) -> tuple[str, str]:
    """DDL that makes activating `card` fail inside the sale's transaction, and the DDL that undoes it."""
    action = (
        "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW;"
        if how == "connection lost"
        else "RAISE EXCEPTION 'injected fault';"
    )
    create = (
        "CREATE FUNCTION inject_fault() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.card_reference = '{card}' AND NEW.status = 'active' THEN {action} END IF; RETURN NEW; "
        "END; $$ LANGUAGE plpgsql; "
        "CREATE TRIGGER inject_fault BEFORE UPDATE OF status ON cards FOR EACH ROW EXECUTE FUNCTION inject_fault()"
    )
    return create, "DROP TRIGGER inject_fault ON cards; DROP FUNCTION inject_fault()"


@pytest.mark.parametrize("how", ["server error", "connection lost"])
def test_a_sale_of_10_cards_failing_after_the_7th_leaves_nothing_and_its_retry_sells_all_10(
    safety_server: LiveServer, account: Demo, till: Api, how: str
) -> None:
    cards = {number: 500 + 100 * index for index, number in enumerate(account.card_references)}
    assert len(cards) == 10
    eighth = list(cards)[7]
    request = sale(account, cards)
    create, drop = _inject_fault(safety_server.database_url, eighth, how)
    execute_sql(safety_server.database_url, create)
    try:
        with unchanged(safety_server.database_url, account.account_id):
            response = till.post(request["query"], request["variables"])
    finally:
        execute_sql(safety_server.database_url, drop)
    expected = (503, "RETRYABLE") if how == "connection lost" else (500, "INTERNAL")
    assert (response.status_code, response.json()["errors"][0]["extensions"]["code"]) == expected
    assert response.json()["data"] == {"createOrder": None}
    assert set(snapshot(safety_server.database_url, account.account_id).statuses.values()) == {"stock"}

    retried = send(till, request)
    assert "errors" not in retried, retried
    items = retried["data"]["createOrder"]["LineItems"]
    assert {i["Card"]["card_reference"]: (i["value"], i["Card"]["balance"]) for i in items} == {
        card: (value, value) for card, value in cards.items()
    }
    assert all(balance(till, card) == value for card, value in cards.items())


def _concurrent_new_card_sales(account: Demo, count: int) -> list[dict[str, Any]]:
    return [sale(account, {new_card(): 100}) for _ in range(count)]


def test_concurrent_sales_of_different_cards_all_succeed(safety_server: LiveServer, account: Demo, till: Api) -> None:
    replies = post_concurrently(safety_server, till.token or "", _concurrent_new_card_sales(account, 40))
    _no_lock_errors(replies)
    assert [r.code for r in replies] == [None] * 40


def test_concurrent_sales_of_the_same_stock_card_sell_it_once(
    safety_server: LiveServer, account: Demo, till: Api
) -> None:
    card = account.card_references[0]
    replies = post_concurrently(safety_server, till.token or "", [sale(account, {card: 100}) for _ in range(12)])
    _no_lock_errors(replies)
    assert sorted(str(r.code) for r in replies) == ["None"] + ["VALIDATION"] * 11
    refused = [r for r in replies if not r.ok]
    assert {str(r.body["errors"][0]["validation"]) for r in refused} == {
        str({"order_items.0.card_reference": ["This card has already been sold."]})
    }
    assert balance(till, card) == 100


@pytest.mark.parametrize("value", [-400, 300], ids=["redemption", "top-up"])
def test_a_reference_another_request_takes_while_an_adjustment_runs_is_refused_as_a_duplicate(
    safety_server: LiveServer, account: Demo, till: Api, value: int
) -> None:
    """Another request inserts the same merchant_transaction_reference after the adjustment's statement
    checked it and before it inserts its own: the statement waits on the other, then the unique constraint
    refuses it. The till gets the reply a plain reused reference gets, and the card is untouched."""
    card, _ = sell_new(till, account, 1000)
    reference = f"race-{new_card()}"
    request = adjustment(account, card, value, reference)
    before = snapshot(safety_server.database_url, account.account_id)

    async def race() -> httpx.Response:
        other = await asyncpg.connect(safety_server.database_url, timeout=5)
        watcher = await asyncpg.connect(safety_server.database_url, timeout=5)  # outside `other`'s transaction,
        try:  # whose view of pg_stat_activity stays as it was when first read
            taking = other.transaction()
            await taking.start()
            await other.execute(
                "INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind,"
                " created_at) VALUES ($1, $2, $3, 'adjustment', now())",
                account.account_id,
                account.merchant_id,
                reference,
            )
            headers = {"Authorization": f"Bearer {till.token}"}
            async with httpx.AsyncClient(timeout=30, headers=headers) as client:
                reply = asyncio.create_task(client.post(safety_server.graphql_url, json=request))
                for _ in range(400):  # until the adjustment waits on the other request's reference
                    waiting = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                        other.get_server_pid(),
                    )
                    if waiting or reply.done():
                        break
                    await asyncio.sleep(0.025)
                assert waiting == 1, "the adjustment never waited on the other request's reference"
                await taking.commit()
                return await reply
        finally:
            await other.close()
            await watcher.close()

    response = asyncio.run(race())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"createBalanceAdjustment": None}
    [error] = body["errors"]
    assert error["message"] == DUPLICATE
    assert error["extensions"] == {
        "code": "DUPLICATE_REFERENCE",
        "merchant_transaction_reference": reference,
        "line_item_ids": [],  # the other request's transaction has no line items
    }
    assert send(till, request) == body  # the same reply as a reference reused once the other had committed
    assert snapshot(safety_server.database_url, account.account_id) == replace(
        before, transactions=before.transactions + 1
    )  # the other request's transaction only
    assert balance(till, card) == 1000
