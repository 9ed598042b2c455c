"""The audit log: one record per mutation attempt (accepted or refused, authenticated or not) and per
dashboard change, with who, account, site, operation, masked card, outcome, time and client address, and no
secrets; listed and exported for the Store Owner only."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import Forbidden
from giftledger.domain.permissions import Role
from giftledger.services import audit, card_admin, setup
from giftledger.services.audit import Attempt, AuditQueue, Where, batching, mask_card
from giftledger.services.context import Principal, Services
from giftledger.services.reports import spreadsheet_text
from giftledger.storage.audit import AuditEventRow, audit_events
from tests.api import documents
from tests.api.till import adjust, adjustment_variables, line_item_ids, order_variables, ref, reverse, sell, sold
from tests.security.helpers import api_user, events_after, operator, record, run_services, wait_for
from tests.support import LOGIN, Api, Demo, LiveServer, unchanged


def site_ids(database_url: str, demo: Demo) -> dict[str, int]:
    """EPOS reference -> site id for the demo's PointOne mapping."""

    async def work(services: Services) -> dict[str, int]:
        mapping = await setup.site_mapping(services, operator(demo.account_id), POINTONE)
        return {reference: site_id for site_id, reference in mapping.items()}

    return run_services(database_url, work)


def detail(event: AuditEventRow) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(event.detail) if event.detail else {}
    return found


def test_masking() -> None:
    assert mask_card("6301190060337576946") == "630119*********6946"
    assert mask_card("ABCD12345678") == "********5678"
    assert mask_card("1234") == "****"


def test_an_accepted_redemption_is_recorded(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref("debit")
    body = adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    line_item = body["data"]["createBalanceAdjustment"]["id"]
    sale, debit = events_after(server.database_url, demo.account_id, 2)
    principal = api_user(server.database_url, demo)
    assert (sale.operation, sale.outcome, sale.card) == ("createOrder", "accepted", mask_card(card))
    assert (
        debit.account_id,
        debit.actor_kind,
        debit.actor_id,
        debit.actor_name,
        debit.site_id,
        debit.operation,
        debit.card,
        debit.outcome,
        debit.error_code,
        debit.client_address,
    ) == (
        demo.account_id,
        "api_user",
        principal.id,
        demo.api_username,
        site_ids(server.database_url, demo)["test"],
        "createBalanceAdjustment",
        card[:6] + "*********" + card[-4:],
        "accepted",
        None,
        "127.0.0.1",
    )
    assert detail(debit) == {
        "currency": "GBP",
        "merchant_id": POINTONE,
        "merchant_transaction_reference": reference,
        "result_id": line_item,
        "unit_epos_reference": "test",
        "value": -100,
    }
    assert debit.created_at.tzinfo is not None and debit.created_at.utcoffset() == UTC.utcoffset(None)


def test_refusals_are_recorded_with_their_code(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        adjust(api, demo, card, -9999)
        adjust(api, demo, card, -100, currency=None)
        adjust(api, demo, card, -100, unit_epos_reference="nowhere")
        get = httpx.get(
            server.graphql_url,
            params={"query": documents.ADJUSTMENT, "variables": json.dumps(adjustment_variables(demo, card, -1))},
            headers={"Authorization": f"Bearer {api.token}"},
        )
    assert get.status_code == 405
    events = events_after(server.database_url, demo.account_id, 5)[1:]
    assert [(e.operation, e.outcome, e.error_code, e.card) for e in events] == [
        ("createBalanceAdjustment", "refused", "NEGATIVE_BALANCE", mask_card(card)),
        ("createBalanceAdjustment", "refused", "VALIDATION", mask_card(card)),
        ("createBalanceAdjustment", "refused", "SITE_NOT_RECOGNISED", mask_card(card)),
        ("createBalanceAdjustment", "refused", "METHOD_NOT_ALLOWED", mask_card(card)),
    ]
    assert events[2].site_id is None and detail(events[2])["unit_epos_reference"] == "nowhere"


def test_sales_and_reversals_name_their_cards(server: LiveServer, demo: Demo, api: Api) -> None:
    reference = ref("sale")
    generated = order_variables(demo, None, 1000, item={"card_reference": None, "generate_card_reference": True})
    generated["merchant_transaction_reference"] = reference
    body = api.call(documents.CREATE_ORDER, generated)
    number = body["data"]["createOrder"]["LineItems"][0]["Card"]["card_reference"]
    reverse(api, demo, line_item_ids(api, reference))
    sale, reversal = events_after(server.database_url, demo.account_id, 2)
    assert (sale.operation, sale.card, detail(sale)["order_items"], detail(sale)["total"]) == (
        "createOrder",
        mask_card(number),
        1,
        1000,
    )
    assert (reversal.operation, reversal.outcome, reversal.card) == ("createReversal", "accepted", mask_card(number))
    assert detail(reversal)["line_item_ids"] == line_item_ids(api, reference)


def test_attempts_without_a_valid_token_are_recorded_without_an_account(server: LiveServer, demo: Demo) -> None:
    reference = ref("anon")
    variables = adjustment_variables(demo, demo.card_references[0], -100, merchant_transaction_reference=reference)
    with unchanged(server.database_url, demo.account_id):
        body = Api(server, "forged").call(documents.ADJUSTMENT, variables)
    assert body["errors"][0]["message"] == "Unauthorized"

    def unattributed() -> list[AuditEventRow] | None:
        async def work(services: Services) -> list[AuditEventRow]:
            async with services.db.transaction() as conn:
                rows = await conn.execute(
                    select(*audit_events.c).where(
                        audit_events.c.account_id.is_(None), audit_events.c.detail.contains(reference)
                    )
                )
                return [AuditEventRow(**r._mapping) for r in rows]

        return run_services(server.database_url, work) or None

    [event] = wait_for(unattributed)
    assert (event.actor_kind, event.actor_id, event.outcome, event.error_code, event.client_address) == (
        "anonymous",
        None,
        "refused",
        "UNAUTHENTICATED",
        "127.0.0.1",
    )
    assert event.card == mask_card(demo.card_references[0]) and event.site_id is None


def test_no_secret_reaches_the_audit_log(server: LiveServer, demo: Demo) -> None:
    till = Api(server)
    till.login(demo.api_username, demo.api_password)
    owner = Api(server)
    owner.post(LOGIN, {"email": demo.owner_email, "password": demo.owner_password})
    card = sold(till, demo, 2500)
    adjust(till, demo, card, -100)
    sell(till, demo, demo.card_references[0], 1000, merchant_id=9999)
    events = events_after(server.database_url, demo.account_id, 3)
    text = repr(events)
    for secret in (demo.api_password, demo.owner_password, till.token or "?", card):
        assert secret not in text
    assert all(e.card is None or "*" in e.card for e in events)


def test_a_dashboard_change_is_recorded_and_secrets_are_dropped(database_url: str, demo: Demo) -> None:
    owner = Principal("user", 1, demo.account_id, Role.STORE_OWNER, None, demo.owner_email, "192.0.2.4")

    async def work(services: Services) -> AuditEventRow:
        event_id = await record(
            services,
            owner,
            operation="dashboard.api_user.create",
            outcome=audit.ACCEPTED,
            site_id=None,
            detail={"merchant_id": POINTONE, "username": "pointone-1", "password": "s3cret", "api_secret": "x"},
        )
        page = await audit.list_events(services, operator(demo.account_id))
        [event] = [e for e in page.data if e.id == event_id]
        return event

    event = run_services(database_url, work)
    assert (event.actor_kind, event.actor_name, event.client_address, event.operation) == (
        "user",
        demo.owner_email,
        "192.0.2.4",
        "dashboard.api_user.create",
    )
    assert detail(event) == {"merchant_id": POINTONE, "username": "pointone-1"}


def test_outcomes_are_accepted_or_refused(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> None:
        await record(services, operator(demo.account_id), operation="x", outcome="maybe")

    with pytest.raises(ValueError, match="outcome"):
        run_services(database_url, work)


def test_only_the_store_owner_reads_and_exports(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> None:
        for role in Role:
            principal = Principal("user", 1, demo.account_id, role, None, "x")
            if role is Role.STORE_OWNER:
                await audit.list_events(services, principal)
                await audit.export_csv_text(services, principal)
                continue
            with pytest.raises(Forbidden):
                await audit.list_events(services, principal)
            with pytest.raises(Forbidden):
                await audit.export_csv_text(services, principal)

    run_services(database_url, work)


def test_listing_filters_pages_and_exports(database_url: str, demo: Demo) -> None:
    tag = uuid.uuid4().hex[:8]
    owner = operator(demo.account_id)

    async def work(services: Services) -> tuple[list[str], int, list[str], str]:
        for i in range(5):
            await record(
                services,
                owner,
                operation=f"dashboard.test.{tag}",
                outcome=audit.ACCEPTED if i % 2 == 0 else audit.REFUSED,
                card_references=["6301190060337576946"],
                error_code=None if i % 2 == 0 else "VALIDATION",
                client_address="192.0.2.9",
                detail={"n": i},
            )
        page = await audit.list_events(services, owner, limit=2, page=2, operation=f"dashboard.test.{tag}")
        refused = await audit.list_events(services, owner, operation=f"dashboard.test.{tag}", outcome="refused")
        later = await audit.list_events(services, owner, operation=f"dashboard.test.{tag}", since=datetime.now(UTC))
        csv_text = await audit.export_csv_text(services, owner, operation=f"dashboard.test.{tag}")
        return (
            [json.loads(e.detail or "{}")["n"] for e in page.data],
            page.total,
            [e.error_code or "" for e in refused.data],
            csv_text + f"|{later.total}",
        )

    numbers, total, refused, exported = run_services(database_url, work)
    assert numbers == [2, 1] and total == 5  # newest first
    assert refused == ["VALIDATION", "VALIDATION"]
    csv_text, later = exported.rsplit("|", 1)
    assert later == "0"
    lines = csv_text.splitlines()
    assert lines[0] == (
        "id,time_utc,actor_kind,actor_id,actor_name,site_id,operation,card,outcome,error_code,client_address,detail"
    )
    assert len(lines) == 6
    fields = lines[1].split(",")
    assert fields[2:5] == ["system", "0", "operator"] and fields[6:11] == [
        f"dashboard.test.{tag}",
        "630119*********6946",
        "accepted",
        "",
        "192.0.2.9",
    ]
    assert lines[1].endswith(',"{""n"":0}"')
    assert len(fields[1]) == 19  # Y-m-d H:i:s


def test_the_queue_writes_what_waits_when_it_closes(database_url: str, demo: Demo) -> None:
    tag = uuid.uuid4().hex[:8]

    async def work(services: Services) -> int:
        queue = AuditQueue(services, delay_seconds=60)  # never on its own within this test
        for i in range(3):
            queue.put(
                Attempt(
                    operator(demo.account_id),
                    f"queued.{tag}",
                    audit.ACCEPTED,
                    datetime.now(UTC),
                    where=Where(POINTONE, "test"),
                    detail={"i": i},
                )
            )
        await queue.close()
        return (await audit.list_events(services, operator(demo.account_id), operation=f"queued.{tag}")).total

    assert run_services(database_url, work) == 3


def test_records_arriving_during_a_write_wait_for_the_next_round(
    database_url: str, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load the writer takes what waits, writes it, then waits `delay_seconds` again: records
    that arrived meanwhile go in the next batch, not in a chain of tiny batches (each its own commit)."""
    tag = uuid.uuid4().hex[:8]
    delay = 0.3
    writes: list[tuple[float, float, int]] = []  # (started, finished, rows)
    real_write = batching._write_batch

    def attempt(i: int) -> Attempt:
        return Attempt(operator(demo.account_id), f"rounds.{tag}", audit.ACCEPTED, datetime.now(UTC), detail={"i": i})

    async def work(services: Services) -> int:
        loop = asyncio.get_running_loop()
        queue = AuditQueue(services, delay_seconds=delay)

        async def write(services: Services, batch: list[Attempt]) -> None:
            started = loop.time()
            if len(writes) < 2:
                queue.put(attempt(10 + len(writes)))  # arrives while this batch is being written
            await real_write(services, batch)
            writes.append((started, loop.time(), len(batch)))

        monkeypatch.setattr(batching, "_write_batch", write)
        queue.put(attempt(0))
        queue.put(attempt(1))
        await wait_until(lambda: len(writes) == 3)
        await queue.close()
        return (await audit.list_events(services, operator(demo.account_id), operation=f"rounds.{tag}")).total

    assert run_services(database_url, work) == 4
    assert [rows for _, _, rows in writes] == [2, 1, 1]
    for (_, finished, _), (started, _, _) in itertools.pairwise(writes):
        assert started - finished >= delay * 0.9  # the next round waited its delay


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_dashboard_change_never_points_at_another_accounts_rows(database_url: str, demo: Demo, other: Demo) -> None:
    """`record_change` names a site and cards by id: only the account's own are linked and masked; ids of
    another account (or made-up ones) stay in the details, so a record never points into another account."""
    owner = Principal("user", 1, demo.account_id, Role.STORE_OWNER, None, demo.owner_email, "192.0.2.5")

    async def ids(services: Services, account: Demo) -> tuple[int, int]:
        [site, *_] = await setup.list_sites(services, operator(account.account_id))
        card = await card_admin.find_card(services, operator(account.account_id), account.card_references[0])
        return site.id, card

    async def work(services: Services) -> list[AuditEventRow]:
        (my_site, my_card), (their_site, their_card) = await ids(services, demo), await ids(services, other)
        made = [
            await audit.record_change(
                services, owner, operation="dashboard.test.own", outcome=audit.ACCEPTED, site_id=my_site,
                card_ids=[my_card, my_card],
            ),
            await audit.record_change(
                services, owner, operation="dashboard.test.theirs", outcome=audit.REFUSED, error_code="NOT_FOUND",
                site_id=their_site, card_ids=[their_card, my_card], detail={"token": "x", "reason": "r"},
            ),
            await audit.record_change(
                services, None, operation="dashboard.test.nobody", outcome=audit.REFUSED, site_id=my_site,
                card_ids=[my_card], client_address="192.0.2.6",
            ),
        ]  # fmt: skip
        async with services.db.transaction() as conn:
            rows = await conn.execute(select(*audit_events.c).where(audit_events.c.id.in_(made)))
            return sorted((AuditEventRow(**r._mapping) for r in rows), key=lambda e: e.id)

    own, theirs, nobody = run_services(database_url, work)
    mine = run_services(database_url, lambda s: ids(s, demo))
    their_ids = run_services(database_url, lambda s: ids(s, other))
    assert (own.account_id, own.site_id, own.card, own.detail, own.client_address) == (
        demo.account_id,
        mine[0],
        mask_card(demo.card_references[0]),
        None,
        "192.0.2.5",
    )
    assert (theirs.account_id, theirs.site_id, theirs.card, theirs.error_code) == (
        demo.account_id,
        None,
        mask_card(demo.card_references[0]),
        "NOT_FOUND",
    )
    assert detail(theirs) == {"site_id": their_ids[0], "card_ids": [their_ids[1]], "reason": "r"}
    assert (nobody.account_id, nobody.actor_kind, nobody.site_id, nobody.card, nobody.client_address) == (
        None,
        "anonymous",
        None,
        None,
        "192.0.2.6",
    )
    assert detail(nobody) == {"site_id": mine[0], "card_ids": [mine[1]]}


def test_the_spreadsheet_export_defuses_formulas(database_url: str, demo: Demo) -> None:
    formula = "=cmd|' /C calc'!A0@example.com"
    tag = uuid.uuid4().hex[:8]

    async def work(services: Services) -> tuple[str, str]:
        sneaky = Principal("user", 7, demo.account_id, Role.STORE_OWNER, None, formula, "+1")
        await record(services, sneaky, operation=f"dashboard.test.{tag}", outcome=audit.ACCEPTED)
        owner = operator(demo.account_id)
        where = audit.TrailFilter(operation=f"dashboard.test.{tag}")
        safe = "".join([line async for line in audit.export_spreadsheet_csv(services, owner, where)])
        return safe, await audit.export_csv_text(services, owner, operation=f"dashboard.test.{tag}")

    safe, plain = run_services(database_url, work)
    [header, row] = safe.splitlines()
    assert header == plain.splitlines()[0]
    assert row.split(",")[2:5] == ["user", "7", f"'{formula}"]
    assert row.split(",")[-2:] == ["'+1", ""]
    assert plain.splitlines()[1].split(",")[4] == formula  # export_csv itself keeps the value as it is


@pytest.mark.parametrize(
    ("value", "defused"),
    [
        ("=1+1", True),
        ("+1", True),
        ("-1", True),
        ("@SUM(A1)", True),
        ("\t=1", True),
        ("\r=1", True),
        ("\uff1d1+1", True),  # a full-width equals sign: NFKC folds it to "="
        ("\uff0b1", True),
        ("\uff0d1", True),
        ("\uff20A1", True),
        ("\u200b=1", True),  # a zero-width space first
        ("\u200d\u2060+1", True),  # a zero-width joiner and a word joiner
        ("\ufeff-1", True),  # a byte-order mark
        (" =1", True),
        ("\u3000=1", True),  # an ideographic space
        ("a=1", False),
        ("Soho", False),
        ("\u200bSoho", False),
        ("", False),
        ("1-1", False),
    ],
)
def test_every_way_a_cell_could_start_a_formula_is_defused(value: str, defused: bool) -> None:
    assert spreadsheet_text(value) == ("'" + value if defused else value)
