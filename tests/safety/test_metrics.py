"""/metrics (metrics.py): who may read it, what a known run of till requests leaves in its counters, and
the counters of a two-worker server adding up both workers'."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from giftledger import metrics
from giftledger.app import create_app
from giftledger.config import ConfigurationError, load_settings
from giftledger.request_log import RequestLog
from tests import support
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables, ref
from tests.support import Demo, snapshot, start_server, tls

TOKEN = "metrics-token-" + "m" * 20
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What changed between two scrapes, for the samples whose name starts with `prefix` (counters' totals)."""
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if key[0].startswith(prefix) and key[0].endswith("_total") and value != before.get(key, 0.0)
    }


def app_with(database_url: str, **overrides: Any) -> tuple[RequestLog, Starlette]:
    inner = create_app(replace(support.test_settings(database_url), cost_maximum=0, **overrides))
    return RequestLog(inner, observe=metrics.observe_request), inner


def client(app: RequestLog, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://t.test")


@pytest.fixture
async def open_app(database_url: str) -> AsyncIterator[tuple[RequestLog, Starlette]]:
    app, inner = app_with(database_url)
    yield app, inner
    await inner.state.services.dispose()


async def test_without_a_token_metrics_answer_loopback_clients_only(open_app: tuple[RequestLog, Starlette]) -> None:
    app, _ = open_app
    for address in ("127.0.0.1", "::1"):
        async with client(app, address) as http:
            page = await http.get("/metrics")
        assert (page.status_code, page.headers["content-type"]) == (200, "text/plain; version=1.0.0; charset=utf-8")
        assert "giftledger_requests_total" in page.text and "giftledger_outbox_backlog " in page.text
    for address in ("10.1.2.3", "192.168.0.9"):
        async with client(app, address) as http:
            refused = await http.get("/metrics")
        assert (refused.status_code, refused.text) == (
            403,
            "Metrics are served to this machine only (or set GIFTLEDGER_METRICS_TOKEN).",
        )


async def test_with_a_token_metrics_need_it_from_everywhere(database_url: str) -> None:
    app, inner = app_with(database_url, metrics_token=TOKEN)
    try:
        answers = {}
        for name, address, headers in [
            ("none, loopback", "127.0.0.1", {}),
            ("wrong", "10.1.2.3", {"Authorization": "Bearer " + TOKEN[:-1] + "x"}),
            ("prefix", "10.1.2.3", {"Authorization": "Bearer " + TOKEN[:-1]}),
            ("basic", "10.1.2.3", {"Authorization": "Basic " + TOKEN}),
            ("right, remote", "10.1.2.3", {"Authorization": "Bearer " + TOKEN}),
            ("right, loopback", "127.0.0.1", {"Authorization": "Bearer " + TOKEN}),
        ]:
            async with client(app, address) as http:
                answers[name] = await http.get("/metrics", headers=headers)
    finally:
        await inner.state.services.dispose()
    for name in ("none, loopback", "wrong", "prefix", "basic"):
        refused = answers[name]
        assert (refused.status_code, refused.text, refused.headers["www-authenticate"]) == (
            401,
            "A metrics token is required.",
            "Bearer",
        ), name
    for name in ("right, remote", "right, loopback"):
        assert answers[name].status_code == 200 and "giftledger_requests_total" in answers[name].text, name


async def test_counters_show_exactly_the_till_requests_refusals_and_money_moved(database_url: str, demo: Demo) -> None:
    app, inner = app_with(database_url, card_miss_limit=2)
    services = inner.state.services
    card, unknown = demo.card_references[0], "6301190000554511994"
    try:
        async with client(app, "10.20.30.40") as till, client(app, "127.0.0.1") as scraper:
            before = samples((await scraper.get("/metrics")).text)

            async def call(query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                reply = await till.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
                body: dict[str, Any] = reply.json()
                return body

            wrong = await call(documents.LOGIN, {"username": demo.api_username, "password": "not-it"})
            login = await till.post(
                "/graphql",
                json={
                    "query": documents.LOGIN,
                    "variables": {"username": demo.api_username, "password": demo.api_password},
                },
            )
            token = login.headers["X-Authorization"].removeprefix("Bearer ")
            sale = await call(documents.CREATE_ORDER, order_variables(demo, card, 2500), token)
            redeemed = await call(documents.ADJUSTMENT, adjustment_variables(demo, card, -700), token)
            topped_up = await call(documents.ADJUSTMENT, adjustment_variables(demo, card, 300), token)
            unchanged = await asyncio.to_thread(snapshot, database_url, demo.account_id)
            too_much = await call(documents.ADJUSTMENT, adjustment_variables(demo, card, -5000), token)
            misses = [
                await call(documents.ADJUSTMENT, adjustment_variables(demo, unknown, -1), token) for _ in range(3)
            ]
            assert await asyncio.to_thread(snapshot, database_url, demo.account_id) == unchanged
            items = await call(
                documents.LINE_ITEMS, {"merchant_transaction_reference": ref("none"), "page": 1, "limit": 1}, token
            )
            # the refused requests' audit records are written in the background: written now, so that no
            # connection of the audit writer's is out while the pool's gauges are sampled
            await inner.state.graphql.guard.audit.flush()
            after = samples((await scraper.get("/metrics")).text)
            async with services.db.transaction():  # a connection out of the pool, seen in the gauge
                held = samples((await scraper.get("/metrics")).text)
    finally:
        await services.dispose()
    assert wrong["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and login.status_code == 200
    assert "errors" not in sale and "errors" not in redeemed and "errors" not in topped_up, (sale, redeemed)
    assert too_much["errors"][0]["extensions"]["code"] == "NEGATIVE_BALANCE"
    assert [m["errors"][0]["extensions"]["code"] for m in misses] == ["CARD_NOT_FOUND", "CARD_NOT_FOUND", "THROTTLED"]
    assert "errors" not in items, items
    requests = "giftledger_requests_total"
    assert delta(before, after, "giftledger_") == {
        (requests, (("operation", "loginUser"), ("outcome", "refused"))): 1,
        (requests, (("operation", "loginUser"), ("outcome", "accepted"))): 1,
        (requests, (("operation", "createOrder"), ("outcome", "accepted"))): 1,
        (requests, (("operation", "createBalanceAdjustment"), ("outcome", "accepted"))): 2,
        (requests, (("operation", "createBalanceAdjustment"), ("outcome", "refused"))): 4,
        (requests, (("operation", "LineItems"), ("outcome", "accepted"))): 1,
        ("giftledger_refusals_total", (("code", "UNAUTHENTICATED"),)): 1,
        ("giftledger_refusals_total", (("code", "NEGATIVE_BALANCE"),)): 1,
        ("giftledger_refusals_total", (("code", "CARD_NOT_FOUND"),)): 2,
        ("giftledger_refusals_total", (("code", "THROTTLED"),)): 1,
        ("giftledger_money_movements_total", (("kind", "sale"),)): 1,
        ("giftledger_money_movements_total", (("kind", "redemption"),)): 1,
        ("giftledger_money_movements_total", (("kind", "top_up"),)): 1,
        ("giftledger_money_moved_pence_total", (("kind", "sale"),)): 2500,
        ("giftledger_money_moved_pence_total", (("kind", "redemption"),)): 700,
        ("giftledger_money_moved_pence_total", (("kind", "top_up"),)): 300,
        ("giftledger_card_lookup_pauses_total", ()): 1,
        ("giftledger_login_failures_total", (("reason", "credentials"),)): 1,
        ("giftledger_http_responses_total", (("status", "2xx"),)): 11,  # the 10 till requests and one scrape
    }
    histogram = "giftledger_request_duration_seconds_count"
    assert (
        after[(histogram, (("operation", "createBalanceAdjustment"),))]
        - before.get((histogram, (("operation", "createBalanceAdjustment"),)), 0)
        == 6
    )
    # the pool gauges are the process's, and this test process runs many tests' event loops (a connection an
    # earlier loop closed without checking it back in stays counted): what this test changes is measured
    pool, waiting = ("giftledger_db_pool_in_use", ()), ("giftledger_db_pool_waiting", ())
    assert (held[pool] - after[pool], after[waiting] - before.get(waiting, 0)) == (1, 0)


def test_two_workers_counters_add_up(database_url: str, demo: Demo, tmp_path: Path) -> None:
    """Each worker writes its own counters; any worker's /metrics adds up both."""
    server = start_server(database_url, tmp_path, {"GIFTLEDGER_COST_MAXIMUM": "0"}, workers=2)
    try:
        login = httpx.post(
            server.graphql_url,
            json={
                "query": documents.LOGIN,
                "variables": {"username": demo.api_username, "password": demo.api_password},
            },
        )
        headers = {"Authorization": login.headers["X-Authorization"], "Connection": "close"}
        body = {"query": documents.PRODUCTS, "variables": {"account_id": demo.account_id}}

        def products(_: int) -> int:  # a connection each, so that both workers take some
            return httpx.post(server.graphql_url, json=body, headers=headers, timeout=30, verify=tls()).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(products, range(32))) == {200}
        scrape = httpx.get(f"{server.url}/metrics", timeout=30)
        run_directory = next((tmp_path / "var" / "metrics").iterdir())
        per_worker = _per_worker(run_directory, tmp_path / "split")
    finally:
        server.stop()
    assert scrape.status_code == 200, scrape.text
    total = samples(scrape.text)
    key = ("giftledger_requests_total", (("operation", "Products"), ("outcome", "accepted")))
    assert total[key] == 32
    assert total[("giftledger_requests_total", (("operation", "loginUser"), ("outcome", "accepted")))] == 1
    assert len(per_worker) == 2 and sum(w.get(key, 0) for w in per_worker) == 32
    assert all(w.get(key, 0) > 0 for w in per_worker), per_worker  # both served some
    assert not run_directory.exists()  # removed when the server stopped


def _per_worker(directory: Path, scratch: Path) -> list[Samples]:
    """Each worker's own counters: its files alone, read as prometheus-client reads a directory."""
    found = []
    pids = {f.stem.rsplit("_", 1)[1] for f in directory.glob("counter_*.db")}
    for pid in sorted(pids):
        alone = scratch / pid / uuid.uuid4().hex
        alone.mkdir(parents=True)
        for f in directory.glob(f"*_{pid}.db"):
            shutil.copy(f, alone / f.name)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        found.append(
            {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in registry.collect()
                for s in family.samples
            }
        )
    return found


def test_the_metrics_token_is_read_from_the_environment_and_checked() -> None:
    base = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": support.SECRET}
    assert load_settings(base).metrics_token is None
    assert load_settings({**base, "GIFTLEDGER_METRICS_TOKEN": f" {TOKEN} "}).metrics_token == TOKEN
    for weak in ("short", "é" * 20):
        with pytest.raises(ConfigurationError) as refused:
            load_settings({**base, "GIFTLEDGER_METRICS_TOKEN": weak})
        assert str(refused.value) == "GIFTLEDGER_METRICS_TOKEN must be at least 16 ASCII characters"


def test_serve_gives_each_run_an_empty_directory_of_its_own(tmp_path: Path) -> None:
    root = tmp_path / "metrics"
    dead, live, stray = root / "999999999", root / "1", root / "not-a-run"  # pid 1 is alive wherever this runs
    for directory in (dead, live, stray):
        directory.mkdir(parents=True)
        (directory / "counter_5.db").write_bytes(b"old")
    mine = root / str(os.getpid())
    mine.mkdir()
    (mine / "counter_7.db").write_bytes(b"left by a run whose pid this process now has")
    with metrics.worker_directory(tmp_path) as directory:
        assert directory == mine.resolve() and os.environ[metrics.DIRECTORY_VARIABLE] == str(directory)
        assert list(directory.iterdir()) == []
        assert sorted(p.name for p in root.iterdir()) == sorted(["1", str(os.getpid())])
    assert metrics.DIRECTORY_VARIABLE not in os.environ
    assert [p.name for p in root.iterdir()] == ["1"]
