"""The query cost budget, like Toggle's: `extensions.cost` on every reply, credits spent per request and
refilled over time, requests refused (HTTP 429, THROTTLED, nothing applied) while the budget is short."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse

from giftledger.api.cost import actual_cost, analyse, requested_cost
from giftledger.api.endpoint import _operation, load_schema
from giftledger.services import throttle
from giftledger.services.context import Services
from giftledger.services.throttle import Budget, BudgetStatus
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables
from tests.security.helpers import events_after, isolated_server, run_services, wait_for
from tests.support import Api, LiveServer, logged_in, new_demo, snapshot

SCHEMA = load_schema()
PAGING = {"limit": 1, "page": 1, "consents_limit": 10, "consents_page": 1}


@pytest.mark.parametrize(
    ("name", "cost"),
    [
        ("LOGIN", 1),
        ("PRODUCTS", 10),
        ("PRICE_MODIFIERS", 110),
        ("CREATE_ORDER", 311),  # priced for the most an order holds: 100 cards
        ("ADJUSTMENT", 14),
        ("REVERSAL", 211),  # priced for the most a reversal undoes: 100 line items
        ("LINE_ITEMS", 2),
        ("CARD_BALANCE", 2),
        ("CARD_CUSTOMERS", 14),
        ("ORDER_CUSTOMERS", 14),
        ("SCHEMA_TYPES", 10),
        ("CARD_TYPE", 10),
    ],
)
def test_requested_cost_of_the_guides_documents(name: str, cost: int) -> None:
    document = parse(getattr(documents, name))
    assert requested_cost(SCHEMA, document, _operation(document, None), PAGING) == cost


def test_limit_sizes_the_page_and_repeated_fragments_cost_nothing_more() -> None:
    def cost(query: str, variables: dict[str, Any] | None = None) -> int:
        document = parse(query)
        return requested_cost(SCHEMA, document, _operation(document, None), variables)

    assert cost("{ Cards(limit: 5) { data { id } } }") == 1 + 5
    assert cost("{ Cards { data { id } } }") == 1 + 15  # the default page
    assert cost("query($n:Int){ Cards(limit: $n) { data { id } } }", {"n": 1000}) == 1 + 100  # at most 100
    assert cost("{ Cards(limit: 2) { data { Email { id } } } }") == 1 + 2 * (1 + 1)
    assert cost("{ __typename }") == 1  # every request costs at least 1
    fragment = "fragment F on CardPaginator { data { id } }"
    assert cost(fragment + " { Cards(limit: 3) { ...F ...F data { id } } }") == 1 + 3


def test_the_analysis_keeps_the_cost_only_when_no_variable_can_change_it() -> None:
    """The guard prices a cached document once, unless a `limit` takes a variable (then every request)."""
    fixed = parse(documents.ADJUSTMENT)
    analysis = analyse(SCHEMA, fixed, _operation(fixed, None))
    assert analysis.requested == requested_cost(SCHEMA, fixed, _operation(fixed, None), None) == 14
    assert list(analysis.fields) == ["createBalanceAdjustment"]
    for query in (
        "query($n:Int){ Cards(limit: $n) { data { id } } }",
        "query($n:Int){ ...F } fragment F on Query { Cards(limit: $n) { data { id } } }",
        "query($n:Int){ ... on Query { Cards { data { id Consents(limit: $n) { data { id } } } } } }",
    ):
        document = parse(query)
        assert analyse(SCHEMA, document, _operation(document, None)).requested is None, query
    literal = parse("{ Cards(limit: 5) { data { id } } }")
    assert analyse(SCHEMA, literal, _operation(literal, None)).requested == 1 + 5


def test_actual_cost_counts_what_the_reply_holds() -> None:
    document = parse(documents.ADJUSTMENT)
    operation = _operation(document, None)
    applied = {"createBalanceAdjustment": {"id": 1, "LineItem": {"Transaction": {}, "Card": {"id": 2}}}}
    assert actual_cost(document, operation, applied) == 10 + 4
    assert actual_cost(document, operation, {"createBalanceAdjustment": None}) == 10
    balance = parse(documents.CARD_BALANCE)
    empty = {"Cards": {"data": [], "total": 0, "per_page": 1}}
    assert actual_cost(balance, _operation(balance, None), empty) == 1


# --- the budget itself, with the clock in hand ---------------------------------------------------------


def test_spending_refilling_and_refusing(database_url: str) -> None:
    subject = f"test:{id(object())}-{database_url[-8:]}"

    async def work(services: Services) -> list[BudgetStatus]:
        budget = Budget(services, refresh_seconds=None)
        seen = [await budget.spend(subject, 14, now=1000.0)]  # a new caller starts full
        seen.append(await budget.spend(subject, 7986, now=1000.0))  # down to nothing
        seen.append(await budget.spend(subject, 1, now=1000.0))  # refused at zero
        seen.append(await budget.spend(subject, 1, now=1000.6))  # 0.6 s restore 5 credits
        seen.append(await budget.spend(subject, 1, now=999.0))  # a clock behind gives nothing
        seen.append(await budget.spend(subject, 100, now=1000.6 + 6000))  # refilled to the cap
        seen.append(budget.refund(seen[-1], 60))
        seen.append(budget.refund(seen[-1], 0))
        return seen

    seen = run_services(database_url, work)
    assert [(s.charged, s.currently_available, s.retry_after_seconds) for s in seen] == [
        (True, 7986, 0),
        (True, 0, 0),
        (False, 0, 1),
        (True, 4, 0),
        (True, 3, 0),
        (True, 7900, 0),
        (True, 7960, 0),
        (True, 7960, 0),
    ]
    assert seen[3].available == pytest.approx(4.0)
    assert (seen[0].maximum, round(seen[0].restore_per_second, 4)) == (8000, 8.3333)


def test_refunds_never_exceed_the_maximum(database_url: str) -> None:
    subject = f"test-cap:{id(object())}-{database_url[-8:]}"

    async def work(services: Services) -> tuple[float, float]:
        budget = Budget(services, refresh_seconds=None)
        spent = await budget.spend(subject, 10, now=50.0)
        available = budget.refund(spent, 500).available
        await budget.refresh(now=50.0)  # the lease given back: the row holds no more than the maximum
        return available, await _row(services, subject)

    assert run_services(database_url, work) == (8000.0, 8000.0)


def test_concurrent_requests_never_spend_the_same_credits(database_url: str) -> None:
    subject = f"test-race:{id(object())}-{database_url[-8:]}"

    async def work(services: Services) -> list[BudgetStatus]:
        budget = Budget(services, refresh_seconds=None)
        return list(await asyncio.gather(*(budget.spend(subject, 300, now=77.0) for _ in range(40))))

    seen = run_services(database_url, work, database_pool_size=10)
    assert sum(s.charged for s in seen) == 26  # 26 * 300 = 7800 <= 8000 < 27 * 300
    assert min(s.currently_available for s in seen if s.charged) == 200


def test_a_spend_leaves_its_connection_committing_durably(database_url: str) -> None:
    """The row's statement commits without waiting for the disk (storage/throttle.py), for its own transaction
    only: the next statement on the same pooled connection (a redemption, say) is durable again."""
    subject = f"test-durable:{id(object())}"

    async def work(services: Services) -> tuple[bool, bool, str]:
        spent = await Budget(services, refresh_seconds=None).spend(subject, 5, now=10.0)
        row = await services.db.fetchrow("SELECT current_setting('synchronous_commit') AS setting")
        assert row is not None
        return spent.charged, spent.checked, str(row["setting"])

    assert run_services(database_url, work, database_pool_size=1) == (True, True, "on")


async def _row(services: Services, subject: str) -> float:
    row = await services.db.fetchrow("SELECT available FROM throttle_buckets WHERE subject = $1", subject)
    assert row is not None
    return float(row["available"])


def test_the_budget_can_be_turned_off(database_url: str) -> None:
    async def work(services: Services) -> bool:
        return throttle.enabled(services)

    assert run_services(database_url, work, cost_maximum=0) is False
    assert run_services(database_url, work) is True


# --- over HTTP, on a server with a small budget ---------------------------------------------------------

BUDGET = {
    "GIFTLEDGER_COST_MAXIMUM": "320",  # room for one sale: priced for 100 cards, 311
    "GIFTLEDGER_COST_RESTORE": "50",
    "GIFTLEDGER_COST_RESTORE_SECONDS": "5",  # 10 credits a second
}


@pytest.fixture(scope="module")
def small_budget(database_url: str, pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_dir = Path(tmp_path_factory.mktemp("budget"))
    with isolated_server(database_url, pg_base_url, log_dir, BUDGET) as server:
        yield server


def test_every_reply_carries_its_cost(small_budget: LiveServer) -> None:
    demo = new_demo(small_budget.database_url)
    till = Api(small_budget)
    login = till.login(demo.api_username, demo.api_password).json()
    assert login["extensions"]["cost"]["actualQueryCost"] == 1
    assert login["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 320
    sale = till.post(documents.CREATE_ORDER, order_variables(demo, demo.card_references[0], 2500)).json()
    assert "errors" not in sale
    # a new caller starts full (320), is charged the estimate (311) and given back what the reply did not use
    assert sale["extensions"] == {
        "cost": {
            "requestedQueryCost": 311,
            "actualQueryCost": 14,
            "throttleStatus": {"maximumAvailable": 320, "currentlyAvailable": 306, "restoreRate": 10.0},
        }
    }
    invalid = till.post("{ Cards { data { balanc } } }").json()
    assert invalid["extensions"]["cost"]["actualQueryCost"] == 1
    balance = till.post(documents.CARD_BALANCE, {"card_reference": demo.card_references[0], "page": 1, "limit": 1})
    assert balance.json()["extensions"]["cost"]["actualQueryCost"] == 2


def test_a_short_budget_refuses_requests_until_credits_return(small_budget: LiveServer) -> None:
    demo = new_demo(small_budget.database_url)
    till = logged_in(small_budget, demo)
    card = demo.card_references[0]
    assert "errors" not in till.call(documents.CREATE_ORDER, order_variables(demo, card, 5000))
    accepted = 0
    refused: httpx.Response | None = None
    for _ in range(60):
        before = snapshot(small_budget.database_url, demo.account_id)
        response = till.post(documents.ADJUSTMENT, adjustment_variables(demo, card, -10))
        if response.status_code == 429:
            refused = response
            assert snapshot(small_budget.database_url, demo.account_id) == before  # nothing applied
            break
        assert response.json()["data"]["createBalanceAdjustment"]["value"] == -10
        accepted += 1
    assert refused is not None and accepted >= 5
    body = refused.json()
    [error] = body["errors"]
    wait = error["extensions"]["retry_after_seconds"]
    assert error["extensions"] == {"code": "THROTTLED", "reason": "cost", "retry_after_seconds": wait}
    assert 1 <= wait <= 2 and refused.headers["Retry-After"] == str(wait)
    assert error["message"].startswith("Throttled: this request costs 14 and the query cost budget holds ")
    assert body["data"] == {"createBalanceAdjustment": None}
    assert body["extensions"]["cost"]["actualQueryCost"] == 0
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 14
    events = events_after(small_budget.database_url, demo.account_id, accepted + 1, "createBalanceAdjustment")
    assert [(e.outcome, e.error_code) for e in events] == [("accepted", None)] * accepted + [("refused", "THROTTLED")]

    # drained to nothing, even the cheapest request is refused ...
    statuses = [till.post("{ __typename }").status_code for _ in range(200)]
    assert 429 in statuses
    # ... until credits come back
    wait_for(lambda: till.post(documents.ADJUSTMENT, adjustment_variables(demo, card, -10)).status_code == 200)
    assert snapshot(small_budget.database_url, demo.account_id).balances[card] == 5000 - 10 * (accepted + 1)


def test_each_caller_has_a_budget_of_its_own(small_budget: LiveServer) -> None:
    first, second = new_demo(small_budget.database_url), new_demo(small_budget.database_url)
    one, two = logged_in(small_budget, first), logged_in(small_budget, second)
    refused = adjustment_variables(first, first.card_references[0], -10, merchant_id=9999)  # costs 10, changes nothing
    statuses = [one.post(documents.ADJUSTMENT, refused).status_code for _ in range(90)]
    assert 429 in statuses
    reply = two.post(documents.PRODUCTS, {"account_id": second.account_id})
    assert reply.status_code == 200 and reply.json()["data"]["Products"][0]["name"] == "In-Store Gift"
