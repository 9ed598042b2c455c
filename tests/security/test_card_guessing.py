"""Card-number guessing: look-ups naming a card that does not exist are counted per caller and per client
address; past the limit, look-ups by number are refused for a while (THROTTLED, nothing applied), the moment
is written to the audit log, and aliased look-ups count one by one."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from giftledger.domain import card_numbers
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import Throttled
from giftledger.domain.permissions import Role
from giftledger.services import guessing, queries, setup
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Principal, Services
from giftledger.services.guessing import CARD_LOOKUPS_THROTTLED, CardLookupsThrottled
from giftledger.storage.guessing import CardMisses
from tests.api import documents
from tests.api.till import adjustment_variables, only_error, sold
from tests.security.helpers import api_user, audit_events, events_after, isolated_server, operator, run_services
from tests.support import Demo, LiveServer, new_demo, signed_in, unchanged

LIMIT = 5
GUESSING = {
    "GIFTLEDGER_CARD_MISS_LIMIT": str(LIMIT),
    "GIFTLEDGER_CARD_MISS_ADDRESS_LIMIT": "100000",  # every test here comes from 127.0.0.1
    "GIFTLEDGER_CARD_MISS_WINDOW_SECONDS": "600",
}


def unknown() -> str:
    return card_numbers.generate()


def balance_check(number: str) -> dict[str, object]:
    return {"card_reference": number, "page": 1, "limit": 1}


@pytest.fixture(scope="module")
def guarded(database_url: str, pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_dir = Path(tmp_path_factory.mktemp("guessing"))
    with isolated_server(database_url, pg_base_url, log_dir, GUESSING) as server:
        yield server


def assert_paused(error: dict[str, object]) -> None:
    assert error["message"] == CARD_LOOKUPS_THROTTLED
    assert error["customer_facing"] is False
    extensions = error["extensions"]
    assert isinstance(extensions, dict)
    assert extensions["code"] == "THROTTLED" and extensions["reason"] == "card_lookups"
    assert 590 <= extensions["retry_after_seconds"] <= 600


def test_misses_pause_card_lookups_for_the_caller(guarded: LiveServer) -> None:
    demo, bystander = new_demo(guarded.database_url), new_demo(guarded.database_url)
    till = signed_in(guarded, demo)
    card = sold(till, demo, 2500)
    for _ in range(LIMIT):
        body = till.call(documents.CARD_BALANCE, balance_check(unknown()))
        assert body == {"data": {"Cards": {"data": [], "total": 0, "per_page": 1}}}
    with unchanged(guarded.database_url, demo.account_id):
        known = till.call(documents.CARD_BALANCE, balance_check(card))  # even a real card, now
        debit = till.call(documents.ADJUSTMENT, adjustment_variables(demo, card, -100))
    assert_paused(only_error(known, "Cards"))
    assert_paused(only_error(debit, "createBalanceAdjustment"))
    # what does not look a number up still works, and other callers are not affected
    listing = till.call("{ Cards(limit: 5) { data { card_reference balance } } }")
    assert listing["data"]["Cards"]["data"] == [{"card_reference": card, "balance": 2500}]
    other = signed_in(guarded, bystander)
    assert other.call(documents.CARD_BALANCE, balance_check(unknown()))["data"]["Cards"]["total"] == 0

    [paused] = events_after(guarded.database_url, demo.account_id, 1, operation=guessing.PAUSED)
    principal = api_user(guarded.database_url, demo)
    assert (paused.actor_kind, paused.actor_id, paused.actor_name) == ("api_user", principal.id, demo.api_username)
    assert (paused.outcome, paused.error_code, paused.client_address, paused.card) == (
        "refused",
        "THROTTLED",
        "127.0.0.1",
        None,
    )
    assert json.loads(paused.detail or "") == {
        "address_limit": 100000,
        "caller_limit": LIMIT,
        "misses_window_seconds": 600,
        "retry_after_seconds": 600,
    }
    assert audit_events(guarded.database_url, bystander.account_id, guessing.PAUSED) == []


def test_aliased_look_ups_count_one_by_one(guarded: LiveServer) -> None:
    demo = new_demo(guarded.database_url)
    till = signed_in(guarded, demo)
    query = "{ " + " ".join(f'c{i}: Cards(card_reference: "{unknown()}") {{ total }}' for i in range(LIMIT)) + " }"
    assert till.call(query) == {"data": {f"c{i}": {"total": 0} for i in range(LIMIT)}}
    assert_paused(only_error(till.call(documents.CARD_BALANCE, balance_check(unknown())), "Cards"))


def test_adjustments_naming_missing_cards_count_too(guarded: LiveServer) -> None:
    demo = new_demo(guarded.database_url)
    till = signed_in(guarded, demo)
    fields = []
    for i in range(LIMIT + 1):
        arguments = (
            f'currency: "GBP", card_reference: "{unknown()}", value: -100, unit_epos_reference: "{demo.epos}", '
            f'merchant_id: {demo.merchant_id}, merchant_transaction_reference: "guess-{i}-{demo.account_id}"'
        )
        fields.append(f"a{i}: createBalanceAdjustment({arguments}) {{ id }}")
    with unchanged(guarded.database_url, demo.account_id):
        body = till.call("mutation { " + " ".join(fields) + " }")
    assert body["data"] == {f"a{i}": None for i in range(LIMIT + 1)}
    codes = [e["extensions"]["code"] for e in sorted(body["errors"], key=lambda e: int(e["path"][0][1:]))]
    assert codes == ["CARD_NOT_FOUND"] * LIMIT + ["THROTTLED"]


def test_a_dashboard_user_is_counted_on_its_own(guarded: LiveServer) -> None:
    demo = new_demo(guarded.database_url)
    till = signed_in(guarded, demo)
    for _ in range(LIMIT):
        till.call(documents.CARD_BALANCE, balance_check(unknown()))
    owner = signed_in(guarded, demo)
    response = owner.post(
        "query($email:String,$password:String!){ loginUser(email:$email, password:$password) { id } }",
        {"email": demo.owner_email, "password": demo.owner_password},
    )
    owner.token = response.headers["X-Authorization"].removeprefix("Bearer ")
    assert owner.call(documents.CARD_BALANCE, balance_check(unknown()))["data"]["Cards"]["total"] == 0
    assert "errors" in till.call(documents.CARD_BALANCE, balance_check(unknown()))


# --- the service, with its defaults and the clock in hand ----------------------------------------------


def _address() -> str:
    """A client address no other test has used (misses are counted per address, across tests)."""
    return f"198.51.100.{uuid.uuid4().hex[:16]}"


def test_the_default_is_30_misses_per_api_user(database_url: str, demo: Demo) -> None:
    principal = api_user(database_url, demo, _address())

    async def work(services: Services) -> int:
        assert services.settings.card_miss_limit == 30
        for _ in range(30):
            page = await queries.find_cards(
                services, principal, card_reference=unknown(), card_id=None, limit=1, page=1
            )
            assert page.total == 0
        with pytest.raises(CardLookupsThrottled) as caught:
            await queries.find_cards(services, principal, card_reference=unknown(), card_id=None, limit=1, page=1)
        with pytest.raises(CardLookupsThrottled):
            await adjust_balance(
                services,
                principal,
                AdjustmentRequest(demo.card_references[0], -1, "GBP", demo.epos, POINTONE, None),
            )
        listed = await queries.find_cards(services, principal, card_reference=None, card_id=None, limit=1, page=1)
        assert listed.total == 0  # listing does not name a number: not paused
        return caught.value.retry_after_seconds

    assert 590 <= run_services(database_url, work) <= 600


def test_misses_age_out_of_the_window(database_url: str, demo: Demo) -> None:
    principal = api_user(database_url, demo, _address())
    start = datetime(2030, 1, 1, tzinfo=UTC)

    async def allowed(services: Services, at: datetime) -> int | None:
        """Seconds until look-ups resume at `at` (None: allowed), from the misses as a look-up counts them."""
        who = guessing.caller(services.settings, principal, at)
        assert who.subject is not None
        async with services.unit_of_work(operator(demo.account_id)) as uow:
            counts = await CardMisses(uow.conn).counts(who.subject, principal.client_address, who.misses_since)
        return guessing.pause_seconds(services.settings, principal, *counts, at)

    async def work(services: Services) -> list[object]:
        starts = [await guessing.record_miss(services, principal, now=start + timedelta(seconds=i)) for i in range(5)]
        return [
            starts,
            await allowed(services, start + timedelta(seconds=10)),
            await allowed(services, start + timedelta(seconds=599)),
            await allowed(services, start + timedelta(seconds=600)),
            await allowed(services, start + timedelta(seconds=601)),
        ]

    seen = run_services(database_url, work, card_miss_limit=5)
    assert seen == [[False, False, False, False, True], 590, 1, 1, None]


def test_one_address_guessing_with_several_callers_is_paused(database_url: str, demo: Demo) -> None:
    address = _address()
    first = api_user(database_url, demo, address)

    async def second_api_user(services: Services) -> Principal:
        new = await setup.create_api_user(services, operator(demo.account_id), POINTONE)
        return Principal("api_user", new.id, demo.account_id, Role.API_USER, POINTONE, new.username, address)

    second = run_services(database_url, second_api_user)

    async def look(services: Services, principal: Principal) -> str:
        try:
            await queries.find_cards(services, principal, card_reference=unknown(), card_id=None, limit=1, page=1)
        except Throttled as refused:
            return refused.code
        return "looked"

    async def work(services: Services) -> list[str]:
        seen = [await look(services, first), await look(services, first), await look(services, second)]
        seen += [await look(services, first), await look(services, second)]
        elsewhere = Principal(first.kind, first.id, first.account_id, first.role, POINTONE, first.name, _address())
        return [*seen, await look(services, elsewhere)]

    seen = run_services(database_url, work, card_miss_address_limit=3, card_miss_limit=100)
    assert seen == ["looked", "looked", "looked", "THROTTLED", "THROTTLED", "looked"]


def test_the_operator_at_the_command_line_is_never_paused(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> int:
        for _ in range(8):
            await queries.find_cards(
                services, operator(demo.account_id), card_reference=unknown(), card_id=None, limit=1, page=1
            )
        return (
            await queries.find_cards(
                services, operator(demo.account_id), card_reference=unknown(), card_id=None, limit=1, page=1
            )
        ).total

    assert run_services(database_url, work, card_miss_limit=3) == 0


def test_concurrent_misses_are_all_counted(database_url: str, demo: Demo) -> None:
    principal = api_user(database_url, demo, _address())

    async def work(services: Services) -> str:
        async def one() -> None:
            await queries.find_cards(services, principal, card_reference=unknown(), card_id=None, limit=1, page=1)

        await asyncio.gather(*(one() for _ in range(6)))
        try:
            await one()
        except Throttled as refused:
            return refused.code
        return "looked"

    assert run_services(database_url, work, card_miss_limit=6) == "THROTTLED"
