"""The server's log (logs.py, request_log.py): one JSON object per line, a request id in every response and on
its lines, the operation, the account, the outcome and the duration of each request; and never a card number,
a password, a token or a secret, over a whole till workflow and a dashboard sign-in."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from giftledger.domain.card_numbers import mask_card
from giftledger.logs import json_formatter, scrub
from giftledger.request_log import RequestLog, request_id_from
from tests.api import documents
from tests.api.till import balance, line_item_ids, order_variables, reverse
from tests.support import SECRET, Api, Demo, LiveServer, start_server

KEYS = {"event", "level", "logger", "timestamp"}
CARD = "6301190060337576946"
PAGE = {"page": 1, "limit": 1}
REQUEST_KEYS = KEYS | {"request_id", "method", "path", "status", "duration_ms"}


def _lines(server: LiveServer) -> list[dict[str, Any]]:
    text = server.log_path.read_text(errors="replace")
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict) and set(record) >= KEYS, line
        records.append(record)
    return records


def _requests(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {r["request_id"]: r for r in records if r["event"] == "request"}
    for record in found.values():
        assert set(record) >= REQUEST_KEYS and record["logger"] == "giftledger.request", record
    return found


def _dashboard_sign_in(server: LiveServer, email: str, password: str) -> tuple[httpx.Response, list[str]]:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert match, form.text
        signed_in = browser.post("/login", data={"csrf_token": match.group(1), "email": email, "password": password})
        assert signed_in.status_code == 303, signed_in.text
        assert browser.get("/").status_code == 200
        return signed_in, [match.group(1), *(v for v in browser.cookies.values() if v)]


def test_a_till_workflow_logs_json_lines_with_request_ids_and_no_secrets(
    database_url: str, account: Demo, tmp_path: Path
) -> None:
    # Other tests' refused logins from 127.0.0.1 are in the session database too: lift the per-address limit, as
    # the session's own server does, so this test's one refused login cannot tip it into throttling.
    server = start_server(database_url, tmp_path, {"GIFTLEDGER_LOGIN_ADDRESS_FAILURE_LIMIT": "1000000"})
    try:
        till = Api(server)
        wrong = f"wrong-{uuid.uuid4().hex}"
        refused_login = till.login(account.api_username, wrong)
        assert refused_login.status_code == 200 and "errors" in refused_login.json()
        login = till.login(account.api_username, account.api_password)
        assert login.status_code == 200 and till.token
        sold_card, stock_card = account.card_references[-1], account.card_references[-2]

        balance(till, sold_card)  # a balance check
        sale_variables = order_variables(account, sold_card, 2500)
        sale = till.post(documents.CREATE_ORDER, sale_variables)
        assert sale.status_code == 200 and "errors" not in sale.json(), sale.text
        redemption = _adjustment(account, sold_card)
        redeemed = till.call(documents.ADJUSTMENT, {**redemption, "value": -700})
        assert "errors" not in redeemed, redeemed
        reversed_ = reverse(till, account, line_item_ids(till, redemption["merchant_transaction_reference"]))
        assert "errors" not in reversed_, reversed_
        too_much = till.post(documents.ADJUSTMENT, {**_adjustment(account, stock_card), "value": -(10**6)})
        code = too_much.json()["errors"][0]["extensions"]["code"]
        # a card number in a query string (GET /graphql) and in a caller's request id
        query = httpx.get(
            server.graphql_url,
            params={"query": documents.CARD_BALANCE, "variables": json.dumps({"card_reference": stock_card, **PAGE})},
            headers={"Authorization": f"Bearer {till.token}", "X-Request-Id": stock_card},
        )
        assert query.status_code == 200 and query.headers["X-Request-Id"] != stock_card
        own = httpx.get(f"{server.url}/healthz", headers={"X-Request-Id": "till-7.check:42"})
        assert own.headers["X-Request-Id"] == "till-7.check:42"
        missing = httpx.get(f"{server.url}/no-such-page")
        assert missing.status_code == 404 and missing.headers["X-Request-Id"]
        signed_in, dashboard_secrets = _dashboard_sign_in(server, account.owner_email, account.owner_password)
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as raw:
            raw.sendall(b"NOT HTTP\r\n\r\n")  # uvicorn's own warning, as JSON too
            raw.recv(1024)
    finally:
        server.stop()

    records = _lines(server)
    requests = _requests(records)
    assert any(r["logger"].startswith("uvicorn") for r in records), records

    def line_of(response: httpx.Response) -> dict[str, Any]:
        request_id = response.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id) or request_id == "till-7.check:42"
        record = requests[request_id]
        assert record["status"] == response.status_code and record["duration_ms"] >= 0
        return record

    assert {k: line_of(sale)[k] for k in ("method", "path", "operation", "account_id", "outcome")} == {
        "method": "POST",
        "path": "/graphql",
        "operation": "createOrder",
        "account_id": account.account_id,
        "outcome": "accepted",
    }
    assert line_of(login)["operation"] == "loginUser" and line_of(login)["outcome"] == "accepted"
    assert line_of(refused_login)["outcome"] == "refused"
    refusal = line_of(too_much)
    assert (refusal["operation"], refusal["outcome"], refusal["code"]) == ("createBalanceAdjustment", "refused", code)
    assert refusal["account_id"] == account.account_id
    read = line_of(query)
    assert (read["path"], read["method"], read["outcome"]) == ("/graphql", "GET", "accepted")
    assert line_of(own)["path"] == "/healthz" and line_of(missing)["status"] == 404
    assert line_of(signed_in)["path"] == "/login"

    log = server.log_path.read_text(errors="replace")
    secrets = [
        *account.card_references,
        wrong,
        account.api_password,
        account.owner_password,
        till.token,
        SECRET,
        *dashboard_secrets,
    ]
    for secret in secrets:
        assert secret and secret not in log, secret
    assert "?" not in "".join(r["path"] for r in requests.values())


def _adjustment(account: Demo, card: str) -> dict[str, Any]:
    return {
        "currency": "GBP",
        "card_reference": card,
        "unit_epos_reference": account.epos,
        "merchant_id": account.merchant_id,
        "merchant_transaction_reference": f"adj-{uuid.uuid4().hex[:12]}",
    }


def test_the_log_masks_anything_like_a_card_number_or_a_token() -> None:
    card = CARD
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert scrub(f"card {card}, token {token}") == f"card {mask_card(card)}, token [redacted]"
    assert scrub("order 12345 at 2024-01-01 12:00:00") == "order 12345 at 2024-01-01 12:00:00"
    assert scrub("1" * 20) == "1" * 20  # longer than any card number: an id, not a card


def test_a_callers_request_id_is_kept_only_when_it_is_a_short_plain_token() -> None:
    assert request_id_from("till-7.check:42") == "till-7.check:42"
    for bad in (None, "", "x" * 65, "a b", "é", "6301190060337576946", "id-6301190060337576946"):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id_from(bad)), bad


async def test_an_unhandled_error_is_logged_with_its_request_id_and_answered_with_it() -> None:
    async def fails(_: Request) -> Response:
        raise RuntimeError(f"card {CARD} failed")

    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("giftledger.request")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # not `logger.level = ...`, which would keep the logger's cached answers
    try:
        app = RequestLog(Starlette(routes=[Route("/fails", fails)]))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.get("/fails", headers={"X-Request-Id": "req-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert response.status_code == 500 and response.headers["X-Request-Id"] == "req-1"
    error, request = (json.loads(line) for line in lines.getvalue().splitlines())
    assert (error["event"], error["request_id"], error["level"]) == ("unhandled error", "req-1", "error")
    assert "RuntimeError" in error["exception"] and mask_card(CARD) in error["exception"]
    assert CARD not in lines.getvalue()
    assert (request["request_id"], request["status"], request["path"]) == ("req-1", 500, "/fails")
