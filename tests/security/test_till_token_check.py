"""A till's balance check, redemption and `LineItems` look-up check the caller's token inside their own
statement once the server knows the API user (services/access.py, storage/tills.py): one round trip per
request, with the cost budget off and with it on once the process holds a lease of the API user's budget (the
spend that takes the lease checks the token too; a spend from it has no statement: services/throttle.py). A
token revoked after that is still refused at once by each of them, with nothing read, written, counted, spent, refreshed
or attributed to the revoked API user."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import event, func, select

from giftledger.app import create_app
from giftledger.domain import card_numbers
from giftledger.domain.catalogue import POINTONE
from giftledger.services import setup
from giftledger.services.context import Services
from giftledger.storage import tills
from giftledger.storage.audit import _ADD_EVENTS, audit_events
from giftledger.storage.callers import _IS_LIVE
from giftledger.storage.guessing import card_lookup_misses
from giftledger.storage.throttle import _TAKE, throttle_buckets
from tests.api import documents
from tests.api.till import adjustment_variables, only_error, order_variables, ref, sold
from tests.security.helpers import isolated_server, operator, run_services, wait_for
from tests.support import LOGIN, SECRET, Api, Demo, LiveServer, new_demo, signed_in, unchanged
from tests.support import test_settings as settings_for

BUDGETS = {"budget off": {"GIFTLEDGER_COST_MAXIMUM": "0"}, "budget on": {}}


@pytest.fixture(scope="module", params=list(BUDGETS))
def tills_server(
    request: pytest.FixtureRequest, database_url: str, pg_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log_dir = Path(tmp_path_factory.mktemp("tills"))
    with isolated_server(database_url, pg_base_url, log_dir, BUDGETS[request.param]) as server:
        yield server


@pytest.fixture
def till(tills_server: LiveServer) -> tuple[LiveServer, Demo, Api]:
    demo = new_demo(tills_server.database_url)
    return tills_server, demo, signed_in(tills_server, demo)


def _api_user_id(database_url: str, demo: Demo) -> int:
    async def work(services: Services) -> int:
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        return row.id

    return run_services(database_url, work)


def _revoke(database_url: str, demo: Demo, how: str) -> None:
    api_user_id = _api_user_id(database_url, demo)

    async def work(services: Services) -> None:
        if how == "reset":
            await setup.reset_api_user_password(services, operator(demo.account_id), api_user_id)
        else:
            await setup.delete_api_user(services, operator(demo.account_id), api_user_id)

    run_services(database_url, work)


def _misses(database_url: str) -> int:
    async def work(services: Services) -> int:
        async with services.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(card_lookup_misses))).scalar_one())

    return run_services(database_url, work)


def _bucket(database_url: str, api_user_id: int) -> float | None:
    """What the API user's cost budget holds (None: never charged)."""
    buckets = throttle_buckets

    async def work(services: Services) -> float | None:
        async with services.db.engine.connect() as conn:
            query = select(buckets.c.available).where(buckets.c.subject == f"api_user:{api_user_id}")
            value = (await conn.execute(query)).scalar_one_or_none()
            return float(value) if value is not None else None

    return run_services(database_url, work)


def _requests(demo: Demo, card: str, used_reference: str) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Each hot till request: (document, variables, root field)."""
    return {
        "balance check": (documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1}, "Cards"),
        "balance check of an unknown card": (
            documents.CARD_BALANCE,
            {"card_reference": card_numbers.generate(), "page": 1, "limit": 1},
            "Cards",
        ),
        "redemption": (documents.ADJUSTMENT, adjustment_variables(demo, card, -100), "createBalanceAdjustment"),
        "LineItems": (
            documents.LINE_ITEMS,
            {"page": 1, "limit": 10, "merchant_transaction_reference": used_reference},
            "LineItems",
        ),
    }


REQUESTS = ["balance check", "balance check of an unknown card", "redemption", "LineItems"]


@pytest.mark.parametrize("how", ["reset", "delete"])
@pytest.mark.parametrize("request_name", REQUESTS)
def test_a_token_revoked_after_the_server_knew_its_till_is_refused_and_changes_nothing(
    till: tuple[LiveServer, Demo, Api], how: str, request_name: str
) -> None:
    server, demo, api = till
    card = sold(api, demo)
    used = adjustment_variables(demo, card, -50)
    assert "errors" not in api.call(documents.ADJUSTMENT, used)
    document, variables, field = _requests(demo, card, used["merchant_transaction_reference"])[request_name]
    assert "errors" not in api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    api_user_id = _api_user_id(server.database_url, demo)
    _revoke(server.database_url, demo, how)
    misses, spent = _misses(server.database_url), _bucket(server.database_url, api_user_id)
    with unchanged(server.database_url, demo.account_id):
        response = api.post(document, variables)
        error = only_error(response.json(), field)
    assert (error["message"], error["extensions"]["code"]) == ("Unauthorized", "UNAUTHENTICATED")
    assert "Authorization" not in response.headers and "X-Authorization" not in response.headers
    assert _misses(server.database_url) == misses
    assert _bucket(server.database_url, api_user_id) == spent  # the revoked API user's budget: nothing spent
    if field == "createBalanceAdjustment":  # audited as an anonymous attempt, as any revoked token's is
        [event] = wait_for(lambda: _attempts(server.database_url, variables["merchant_transaction_reference"]))
        assert (event.actor_kind, event.actor_id, event.account_id, event.outcome, event.error_code) == (
            "anonymous",
            None,
            None,
            "refused",
            "UNAUTHENTICATED",
        )


def _attempts(database_url: str, reference: str) -> list[Any] | None:
    async def work(services: Services) -> list[Any]:
        async with services.db.engine.connect() as conn:
            rows = await conn.execute(select(*audit_events.c).where(audit_events.c.detail.contains(reference)))
            return list(rows)

    return run_services(database_url, work) or None


def _expiring_token(api_user_id: int, account_id: int, version: int) -> str:
    now = int(time.time())
    claims = {
        "sub": f"api_user:{api_user_id}",
        "acc": account_id,
        "ver": version,
        "iat": now - 3000,
        "nbf": now - 3000,
        "exp": now + 300,
        "iss": "giftledger",
        "aud": "giftledger-api",
    }
    kid = hashlib.sha256(SECRET.encode()).hexdigest()[:16]
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": kid})


def test_a_till_token_in_its_last_minutes_is_refreshed_by_a_balance_check(till: tuple[LiveServer, Demo, Api]) -> None:
    server, demo, api = till
    card = sold(api, demo)
    token = _expiring_token(_api_user_id(server.database_url, demo), demo.account_id, 0)
    balance = {"card_reference": card, "page": 1, "limit": 1}
    for _ in range(2):  # the first confirms the till on its own, the second in the balance check's statement
        response = Api(server, token).post(documents.CARD_BALANCE, balance)
        assert response.json()["data"]["Cards"]["data"][0]["balance"] == 2500
        fresh = response.headers["X-Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(fresh, SECRET, algorithms=["HS256"], audience="giftledger-api")
        assert claims["exp"] - int(time.time()) > 3500 and claims["ver"] == 0


def test_a_revoked_till_token_in_its_last_minutes_is_not_refreshed(till: tuple[LiveServer, Demo, Api]) -> None:
    server, demo, api = till
    card = sold(api, demo)
    token = _expiring_token(_api_user_id(server.database_url, demo), demo.account_id, 0)
    balance = {"card_reference": card, "page": 1, "limit": 1}
    assert "X-Authorization" in Api(server, token).post(documents.CARD_BALANCE, balance).headers
    _revoke(server.database_url, demo, "reset")
    with unchanged(server.database_url, demo.account_id):
        response = Api(server, token).post(documents.CARD_BALANCE, balance)
    assert only_error(response.json(), "Cards")["message"] == "Unauthorized"
    assert "X-Authorization" not in response.headers and "Authorization" not in response.headers


@pytest.mark.parametrize("budget", [0, 8000], ids=["budget off", "budget on"])
async def test_each_till_request_is_one_statement_once_its_api_user_is_known(
    database_url: str, demo: Demo, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    app = create_app(settings_for(database_url, cost_maximum=budget))
    spend = [_TAKE] if budget else []  # with the budget on, its first spend takes a lease and checks the token too
    monkeypatch.setattr(app.state.graphql.guard.budget, "refresh_seconds", None)  # no refresh task in the count
    services: Services = app.state.services
    db = services.db
    statements: list[str] = []

    def counted(method: Callable[..., Any]) -> Callable[..., Any]:
        async def call(sql: str, *args: Any) -> Any:
            if sql != _ADD_EVENTS:  # the audit batch, written behind the requests, is no request's own
                statements.append(sql)
            return await method(sql, *args)

        return call

    def through_sqlalchemy(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    monkeypatch.setattr(db, "fetch", counted(db.fetch))  # fetchrow runs through fetch
    event.listen(db.engine.sync_engine, "before_cursor_execute", through_sqlalchemy)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://till.test") as http:

            async def call(document: str, variables: dict[str, Any]) -> dict[str, Any]:
                statements.clear()
                response = await http.post(
                    "/graphql", json={"query": document, "variables": variables}, headers=headers
                )
                body: dict[str, Any] = response.json()
                assert "errors" not in body, body
                return body

            headers: dict[str, str] = {}
            login = await http.post(
                "/graphql",
                json={"query": LOGIN, "variables": {"username": demo.api_username, "password": demo.api_password}},
            )
            headers["Authorization"] = login.headers["X-Authorization"]
            card = demo.card_references[0]
            await call(documents.CREATE_ORDER, order_variables(demo, card, 2500))  # not a till statement
            assert statements[0].startswith("SELECT api_users.id")  # looked up once; now the till is known
            assert statements[1 : len(spend) + 1] == spend
            balance = {"card_reference": card, "page": 1, "limit": 1}
            await call(documents.CARD_BALANCE, balance)
            assert statements == [tills._FIND_CARD]  # its cost spent from the lease
            redemption = adjustment_variables(demo, card, -100, merchant_transaction_reference=ref("one"))
            await call(documents.ADJUSTMENT, redemption)
            assert statements == [tills._ADJUST]
            reference = redemption["merchant_transaction_reference"]
            await call(documents.LINE_ITEMS, {"page": 1, "limit": 10, "merchant_transaction_reference": reference})
            # priced at a page of 10 line items, it costs less: the unused credits go back to the lease
            assert statements == [tills._LINE_ITEMS_OF_MERCHANT]
            await call(documents.PRODUCTS, {"account_id": demo.account_id})
            assert statements[0] == _IS_LIVE  # a unit of work checks the token first
    finally:
        await services.db.dispose()
