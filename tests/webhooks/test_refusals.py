"""Webhooks in process: the URL rules and the server-side request forgery guard (checked after DNS
resolution), a rotation's two signatures, the "send test event", an endpoint disabled after failing for long,
and refusals by the dashboard and the command line that change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from giftledger.app import create_app
from giftledger.cli.main import cli
from giftledger.cli.webhooks import register
from giftledger.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from giftledger.domain.permissions import Role
from giftledger.domain.webhooks import url_problem
from giftledger.outbound import webhooks as outbound_webhooks
from giftledger.outbound.webhooks import AttemptFailed, Refused, WebhookPoster, resolve
from giftledger.services import expiry, webhook_sender, webhooks
from giftledger.services.context import Services, operator
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.tables import cards
from giftledger.storage.webhooks import WebhookQueue, webhook_endpoints
from tests import support
from tests.dashboard.helpers import PASSWORD, person, sell, till
from tests.dashboard.web import Web, field_error, rows, text_of
from tests.support import SECRET, Demo, new_demo
from tests.webhooks.receiver import Receiver, receiver

PRODUCTION = "production"


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as got:
        yield got


@pytest.fixture
def account(database: str) -> Demo:
    return new_demo(database)


async def endpoint_rows(services: Services, account_id: int) -> int:
    async with services.db.read() as conn:
        found = await conn.execute(
            select(func.count()).select_from(webhook_endpoints).where(webhook_endpoints.c.account_id == account_id)
        )
        return int(found.scalar_one())


@pytest.mark.parametrize(
    ("url", "production", "problem"),
    [
        ("https://crm.example.com/hooks", True, None),
        ("https://93.184.216.34/hooks", True, None),
        ("http://crm.example.com/hooks", True, "The URL must use https://."),
        ("http://127.0.0.1:9000/hooks", True, "The URL must use https://."),
        ("https://localhost/hooks", True, "The URL must name a public host, not this machine."),
        *(
            (
                f"https://{host}/hooks",
                True,
                "The URL must name a public address, not a private, loopback or link-local one.",
            )
            for host in (
                "10.1.2.3",
                "192.168.0.10",
                "169.254.169.254",
                "127.0.0.1",
                "[::1]",
                "[::ffff:127.0.0.1]",
                "100.64.0.1",
                "[fe80::1]",
                "0.0.0.0",
            )
        ),
        ("http://127.0.0.1:9000/hooks", False, None),
        ("http://localhost:9000/hooks", False, None),
        ("https://crm.example.com/hooks", False, None),
        (
            "http://crm.example.com/hooks",
            False,
            "The URL must use https:// (http:// is allowed only to this machine, in development).",
        ),
        ("https://user:pw@crm.example.com/hooks", True, "The URL must not carry a user name or password."),
        ("ftp://crm.example.com/", True, "The URL must start with https:// and name a host."),
        ("https://crm.example.com:99999/", True, "This is not a URL."),
        ("", True, "Enter the receiver's URL (at most 300 characters), like https://crm.example.com/hooks."),
    ],
)
def test_endpoint_urls(url: str, production: bool, problem: str | None) -> None:
    assert url_problem(url, production=production) == problem


async def test_in_production_a_host_resolving_to_a_non_public_address_is_refused_and_nothing_is_sent(
    hooks: Receiver,
) -> None:
    for host in ("localhost", "127.0.0.1", "::1"):
        with pytest.raises(Refused, match="non-public address"):
            await resolve(host, 443, production=True)  # checked after resolution: localhost is 127.0.0.1
    assert await resolve("localhost", 80, production=False) in ("127.0.0.1", "::1")
    hooks.secret = "s"
    poster = WebhookPoster(production=True)
    try:
        with pytest.raises(Refused):
            await poster.post(hooks.url.replace("127.0.0.1", "localhost"), b"{}", secret="s")
        with pytest.raises(AttemptFailed, match="could not be resolved"):
            await poster.post("https://no-such-host.invalid/hooks", b"{}", secret="s")
    finally:
        await poster.close()
    assert hooks.received() == []


async def test_a_hosts_checked_address_is_kept_a_few_seconds_and_a_refusal_is_not(
    hooks: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three posts to one host within `RESOLVED_TTL_S` look it up once; a host refused is looked up at every
    attempt (and nothing is sent to it)."""
    looked_up: list[tuple[str, int, bool]] = []

    async def counted(host: str, port: int, *, production: bool) -> str:
        looked_up.append((host, port, production))
        return await resolve(host, port, production=production)

    monkeypatch.setattr(outbound_webhooks, "resolve", counted)
    hooks.secret = "s"
    port = int(hooks.url.split(":")[2].split("/")[0])
    poster = WebhookPoster(production=False)
    try:
        for _ in range(3):
            assert (await poster.post(f"http://localhost:{port}/hooks", b"{}", secret="s")).status == 200
    finally:
        await poster.close()
    assert looked_up == [("localhost", port, False)]
    assert len(hooks.received()) == 3

    looked_up.clear()
    refusing = WebhookPoster(production=True)
    try:
        for _ in range(2):
            with pytest.raises(Refused):
                await refusing.post(f"https://localhost:{port}/hooks", b"{}", secret="s")
    finally:
        await refusing.close()
    assert looked_up == [("localhost", port, True)] * 2
    assert len(hooks.received()) == 3  # nothing more was sent


async def test_the_request_goes_to_the_resolved_address_with_the_urls_host_and_toggles_signature(
    hooks: Receiver,
) -> None:
    hooks.secret = "secret-1"
    port = hooks.url.split(":")[2].split("/")[0]
    poster = WebhookPoster(production=False)
    try:
        reply = await poster.post(f"http://localhost:{port}/hooks?x=1", b'{"id": 1}', secret="secret-1")
    finally:
        await poster.close()
    [got] = hooks.received()
    assert (reply.status, reply.excerpt) == (200, '{"ok": true}')
    assert (got.path, got.headers["Host"], got.verified, got.body) == (
        "/hooks?x=1",
        f"localhost:{port}",
        True,
        b'{"id": 1}',
    )
    assert got.headers["Toggle-Signature"] == hmac.new(b"secret-1", b'{"id": 1}', hashlib.sha256).hexdigest()


async def test_a_rotated_endpoint_signs_with_the_new_secret_and_the_previous_during_the_overlap(
    services: Services, account: Demo, hooks: Receiver
) -> None:
    owner = operator(account.account_id)
    created = await webhooks.add_endpoint(services, owner, hooks.url, ["order.created"])
    rotated = await webhooks.rotate_secret(services, owner, created.id)
    assert rotated.secret != created.secret and rotated.previous_valid_until is not None
    assert timedelta(hours=23, minutes=59) < rotated.previous_valid_until - utcnow() <= timedelta(hours=24)
    hooks.secret = rotated.secret
    event_id = await webhooks.send_test_event(services, owner, created.id)  # though it chose order.created only
    sender = webhook_sender.WebhookSender(services)
    sender.start()
    try:
        [got] = await asyncio.to_thread(hooks.wait_for, lambda g: len(g) == 1, what="the test event")
    finally:
        await sender.stop()
    assert got.verified
    previous = hmac.new(created.secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["Toggle-Signature-Previous"] == previous
    assert got.event["id"] == event_id and got.event["type"] == "webhook.test"
    assert got.event["data"]["object"] == {"object": "webhook_endpoint", "id": created.id, "url": hooks.url}
    [delivery] = (await webhooks.endpoint_log(services, owner, created.id)).deliveries
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("sent", 1, 200)


async def test_an_endpoint_failing_for_three_days_is_disabled_with_its_queued_deliveries_failed(
    services: Services, account: Demo, hooks: Receiver
) -> None:
    owner = operator(account.account_id)
    created = await webhooks.add_endpoint(services, owner, hooks.url, [])
    await webhooks.send_test_event(services, owner, created.id)
    await webhooks.send_test_event(services, owner, created.id)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == created.id)
            .values(failing_since=utcnow() - timedelta(days=3, minutes=1))
        )
        [first] = await WebhookQueue(conn).claim(  # the older one; the other stays queued
            utcnow(),
            timedelta(seconds=60),
            1,
            in_flight_endpoints={},
            in_flight_accounts={},
            per_endpoint=4,
            per_account=8,
        )
    production = replace(services, settings=replace(services.settings, environment=PRODUCTION))
    poster = WebhookPoster(production=True)  # the receiver is on 127.0.0.1: refused, nothing sent
    try:
        assert await webhook_sender.deliver(production, poster, first) is False
    finally:
        await poster.close()
    assert hooks.received() == []
    log = await webhooks.endpoint_log(services, owner, created.id)
    assert not log.endpoint.enabled and log.endpoint.disabled_reason is not None
    assert log.endpoint.disabled_reason.startswith("Disabled automatically: every delivery failed from ")
    assert [(d.state, d.attempts) for d in log.deliveries] == [("failed", 0), ("failed", 1)]
    assert "non-public address" in (log.deliveries[1].last_error or "")
    with pytest.raises(Conflict):
        await webhooks.send_test_event(services, owner, created.id)
    await webhooks.set_enabled(services, owner, created.id, True)
    await webhooks.redeliver(services, owner, created.id, log.deliveries[0].id)
    again = await webhooks.endpoint_log(services, owner, created.id)
    assert again.endpoint.enabled and again.endpoint.failing_since is None
    assert [(d.state, d.attempts) for d in again.deliveries] == [("queued", 0), ("failed", 1)]


@pytest.fixture
def other(database: str) -> Demo:
    return new_demo(database)


async def test_refused_changes_change_nothing(services: Services, account: Demo, other: Demo) -> None:
    owner = operator(account.account_id)
    manager = await person(services, account, Role.STORE_MANAGER)
    with pytest.raises(Forbidden):
        await webhooks.add_endpoint(services, manager, "https://crm.example.com/hooks", [])
    with pytest.raises(ValidationFailed) as refused:
        await webhooks.add_endpoint(services, owner, "https://crm.example.com/hooks", ["card.exploded"])
    assert refused.value.fields == {"events": ["Not an event giftledger sends: card.exploded."]}
    theirs = await webhooks.add_endpoint(services, operator(other.account_id), "https://crm.example.com/x", [])
    for action in (
        webhooks.rotate_secret(services, owner, theirs.id),
        webhooks.send_test_event(services, owner, theirs.id),
        webhooks.set_enabled(services, owner, theirs.id, False),
        webhooks.redeliver(services, owner, theirs.id, 1),
    ):
        with pytest.raises(NotFound):
            await action
    assert await endpoint_rows(services, account.account_id) == 0
    [untouched] = await webhooks.endpoints(services, operator(other.account_id))
    assert (untouched.enabled, untouched.previous_secret_until) == (True, None)


@pytest.fixture
async def app(database: str) -> AsyncIterator[Starlette]:
    application = create_app(support.test_settings(database))
    yield application
    await application.state.services.db.dispose()


async def test_the_dashboard_page_is_the_store_owners_and_its_refusals_change_nothing(
    app: Starlette, services: Services, account: Demo
) -> None:
    manager = await person(services, account, Role.STORE_MANAGER)
    web = Web(app)
    await web.log_in(manager.name, PASSWORD)
    assert (await web.get("/settings/webhooks")).status_code == 403
    assert (await web.post("/settings/webhooks", {"url": "https://crm.example.com/hooks"})).status_code == 403

    owner = await person(services, account, Role.STORE_OWNER)
    web = Web(app)
    await web.log_in(owner.name, PASSWORD)
    refused = await web.post("/settings/webhooks", {"url": "http://crm.example.com/hooks"})
    assert refused.status_code == 400
    assert field_error(refused.text, "url") == (
        "The URL must use https:// (http:// is allowed only to this machine, in development)."
    )
    assert await endpoint_rows(services, account.account_id) == 0

    added = await web.post("/settings/webhooks", {"url": "https://crm.example.com/hooks", "event": "order.created"})
    assert added.status_code == 200
    [endpoint] = await webhooks.endpoints(services, operator(account.account_id))
    assert (endpoint.url, endpoint.events) == ("https://crm.example.com/hooks", ["order.created"])
    secret = text_of(added.text).split("Secret ")[1].split(" ")[0]
    assert len(secret) == 64
    listing = await web.get("/settings/webhooks")
    assert secret not in listing.text
    assert rows(listing.text, "endpoints") == [
        ["https://crm.example.com/hooks", "order.created", "Enabled", rows(listing.text, "endpoints")[0][3]]
    ]

    tested = await web.post(f"/settings/webhooks/{endpoint.id}/test")
    assert tested.status_code == 303
    page = await web.get(f"/settings/webhooks/{endpoint.id}")
    assert [r[1:5] for r in rows(page.text, "deliveries")] == [
        ["webhook.test", rows(page.text, "deliveries")[0][2], "Queued", "0"]
    ]
    assert (await web.post(f"/settings/webhooks/{endpoint.id}/disable")).status_code == 303
    assert (await web.post(f"/settings/webhooks/{endpoint.id}/disable")).status_code == 409
    page = await web.get("/settings/webhooks")
    assert "is disabled: Disabled by" in text_of(page.text)
    assert (await web.post(f"/settings/webhooks/{endpoint.id + 1000}/rotate")).status_code == 404
    await web.close()


def test_the_command_line_adds_lists_and_refuses_changing_nothing(database: str, account: Demo) -> None:
    register(cli)
    runner = CliRunner(env={"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET})
    base = ["--database-url", database, "webhooks"]
    account_id = str(account.account_id)
    refused = runner.invoke(cli, [*base, "add", "--account-id", account_id, "--url", "http://crm.example.com/x"])
    assert refused.exit_code == 1
    assert "url: The URL must use https://" in refused.output
    unknown = runner.invoke(cli, [*base, "add", "--account-id", "999999999", "--url", "https://crm.example.com/x"])
    assert (unknown.exit_code, "No such account." in unknown.output) == (1, True)
    listed = runner.invoke(cli, [*base, "list", "--account-id", account_id])
    assert json.loads(listed.output) == {"endpoints": []}

    added = runner.invoke(
        cli,
        [
            *base,
            "add",
            "--account-id",
            account_id,
            "--url",
            "https://crm.example.com/x",
            "--event",
            "card.balance_adjusted",
            "--event",
            "order.created",
        ],
    )
    assert added.exit_code == 0, added.output
    printed = json.loads(added.output)
    assert set(printed) == {"id", "secret", "url", "events"} and len(printed["secret"]) == 64
    assert printed["events"] == ["card.balance_adjusted", "order.created"]
    rotated = json.loads(
        runner.invoke(cli, [*base, "rotate", "--account-id", account_id, "--endpoint-id", str(printed["id"])]).output
    )
    assert rotated["secret"] != printed["secret"]
    [row] = json.loads(runner.invoke(cli, [*base, "list", "--account-id", account_id]).output)["endpoints"]
    assert (row["id"], row["enabled"], "secret" in row) == (printed["id"], True, False)
    again = runner.invoke(cli, [*base, "enable", "--account-id", account_id, "--endpoint-id", str(printed["id"])])
    assert again.exit_code == 1 and "already enabled" in again.output


async def test_breakage_of_many_cards_in_one_statement_gives_one_event_per_card(
    services: Services, account: Demo
) -> None:
    owner = operator(account.account_id)
    created = await webhooks.add_endpoint(services, owner, "https://crm.example.com/hooks", ["card.balance_adjusted"])
    pos = await till(services, account)
    sold = {account.card_references[i]: 1000 + i for i in range(3)}
    for card, value in sold.items():
        await sell(services, pos, account, card, value)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(cards)
            .where(cards.c.account_id == account.account_id, cards.c.card_reference.in_(list(sold)))
            .values(expiry_time=utcnow() - timedelta(days=1))
        )
    assert await expiry.expire_due(services) >= 3
    log = await webhooks.endpoint_log(services, owner, created.id)
    async with services.db.read() as conn:
        bodies = [
            json.loads(bytes(r.content))
            for r in await conn.execute(
                select(outbox_messages.c.content)
                .where(outbox_messages.c.endpoint_id == created.id)
                .order_by(outbox_messages.c.id)
            )
        ]
    assert len(log.deliveries) == 3 and len({d.event_id for d in log.deliveries}) == 3
    assert sorted((b["data"]["object"]["card_reference"], b["data"]["line_item"]["value"]) for b in bodies) == sorted(
        (card, -value) for card, value in sold.items()
    )
    assert {b["data"]["line_item"]["line_item_type"]["name"] for b in bodies} == {"Breakage"}
    assert {b["data"]["object"]["balance"] for b in bodies} == {0}
