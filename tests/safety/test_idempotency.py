"""The Idempotency-Key header (an extension beyond the guide): a retry gets the stored reply byte for byte,
a different request under the same key is refused, a retry while the first still runs is told to retry,
and keys belong to one account."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import orjson
import pytest

from giftledger.services import setup
from giftledger.storage.people import Directory
from tests.safety.helpers import HeldLock, wait_for
from tests.safety.tills import adjustment, balance, new_card, sale, sell_new
from tests.support import Api, Demo, LiveServer, new_demo, signed_in, snapshot, tls, unchanged, with_services


def _post(server: LiveServer, token: str | None, body: bytes, key: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(server.graphql_url, content=body, headers=headers, timeout=60, verify=tls())


def _body(request: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": request["query"], "variables": request["variables"]})


def test_a_retry_with_the_same_key_and_body_gets_the_stored_reply_byte_for_byte(
    safety_server: LiveServer, account: Demo, till: Api
) -> None:
    card, _ = sell_new(till, account, 1000)
    key = f"till-7-{uuid.uuid4()}"
    request = adjustment(account, card, -300)
    first = _post(safety_server, till.token, _body(request), key)
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    assert "Idempotent-Replayed" not in first.headers
    reordered = orjson.dumps({"variables": request["variables"], "query": request["query"]})  # same request
    with unchanged(safety_server.database_url, account.account_id):
        for body in (_body(request), reordered, _body(request)):
            again = _post(safety_server, till.token, body, key)
            assert again.status_code == 200
            assert again.content == first.content
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.headers["content-type"] == "application/json"
    assert balance(till, card) == 700


def test_a_stored_refusal_is_replayed_too(safety_server: LiveServer, account: Demo, till: Api) -> None:
    card, _ = sell_new(till, account, 100)
    key = str(uuid.uuid4())
    request = _body(adjustment(account, card, -500))
    first = _post(safety_server, till.token, request, key)
    assert first.json()["errors"][0]["extensions"]["code"] == "NEGATIVE_BALANCE"
    with unchanged(safety_server.database_url, account.account_id):
        assert _post(safety_server, till.token, request, key).content == first.content


def test_the_same_key_with_a_different_body_is_refused(safety_server: LiveServer, account: Demo, till: Api) -> None:
    card, _ = sell_new(till, account, 1000)
    key = str(uuid.uuid4())
    request = adjustment(account, card, -300)
    assert "errors" not in _post(safety_server, till.token, _body(request), key).json()
    changed = {**request, "variables": {**request["variables"], "value": -301}}
    with unchanged(safety_server.database_url, account.account_id):
        refused = _post(safety_server, till.token, _body(changed), key)
    assert refused.status_code == 422
    assert refused.json() == {
        "errors": [
            {
                "message": "This Idempotency-Key was already used for a different request. Nothing was applied.",
                "customer_facing": False,
                "extensions": {"code": "IDEMPOTENCY_KEY_REUSED"},
            }
        ],
        "data": None,
    }
    assert balance(till, card) == 700


def test_a_retry_while_the_first_is_still_running_is_told_to_retry(
    safety_server: LiveServer, account: Demo, till: Api
) -> None:
    card, _ = sell_new(till, account, 1000)
    key = str(uuid.uuid4())
    body = _body(adjustment(account, card, -300))
    replies: list[httpx.Response] = []

    def send() -> None:
        replies.append(_post(safety_server, till.token, body, key))

    with HeldLock(safety_server.database_url, card) as lock:
        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(replies) == 1, 8, "the second attempt to be answered while the first waits")
        [busy] = replies
        assert busy.status_code == 409
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["errors"][0]["extensions"] == {"code": "IDEMPOTENCY_IN_PROGRESS"}
        assert busy.json()["errors"][0]["message"] == (
            "A request with this Idempotency-Key is still being processed. Retry shortly."
        )
        lock.release()
        for thread in threads:
            thread.join(30)
    done = replies[1]
    assert done.status_code == 200 and "errors" not in done.json(), done.text
    replay = _post(safety_server, till.token, body, key)
    assert replay.content == done.content
    assert balance(till, card) == 700


def test_keys_belong_to_one_account(safety_server: LiveServer, account: Demo, till: Api, database_url: str) -> None:
    other = new_demo(database_url)
    other_till = signed_in(safety_server, other)
    key = "shared-key-1"
    mine = _post(safety_server, till.token, _body(sale(account, {new_card(): 1200})), key)
    theirs = _post(safety_server, other_till.token, _body(sale(other, {new_card(): 3400})), key)
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["data"]["createOrder"]["LineItems"][0]["value"] == 1200
    assert theirs.json()["data"]["createOrder"]["LineItems"][0]["value"] == 3400
    assert "Idempotent-Replayed" not in theirs.headers
    assert snapshot(database_url, other.account_id).orders == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "na\u00efve-key", "two words"], ids=["empty", "256", "utf-8", "space"])
def test_a_malformed_key_is_refused(safety_server: LiveServer, account: Demo, till: Api, key: str) -> None:
    card, _ = sell_new(till, account, 1000)
    headers = {
        b"Content-Type": b"application/json",
        b"Authorization": f"Bearer {till.token}".encode(),
        b"Idempotency-Key": key.encode(),  # raw UTF-8 bytes on the wire
    }
    with unchanged(safety_server.database_url, account.account_id):
        response = httpx.post(safety_server.graphql_url, content=_body(adjustment(account, card, -1)), headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "IDEMPOTENCY_KEY_INVALID"}


def test_without_a_valid_token_the_key_is_not_remembered(safety_server: LiveServer, account: Demo, till: Api) -> None:
    card, _ = sell_new(till, account, 1000)
    key = str(uuid.uuid4())
    body = _body(adjustment(account, card, -300))
    with unchanged(safety_server.database_url, account.account_id):
        refused = _post(safety_server, "not-a-token", body, key)
    assert refused.json()["errors"][0]["message"] == "Unauthorized"
    applied = _post(safety_server, till.token, body, key)
    assert "errors" not in applied.json() and "Idempotent-Replayed" not in applied.headers
    assert balance(till, card) == 700


def test_a_revoked_token_gets_no_stored_reply(
    safety_server: LiveServer, account: Demo, till: Api, database_url: str
) -> None:
    card, _ = sell_new(till, account, 1000)
    key = str(uuid.uuid4())
    body = _body(adjustment(account, card, -300))
    assert "errors" not in _post(safety_server, till.token, body, key).json()

    async def revoke(services: Any) -> None:
        async with services.db.transaction() as conn:
            api_user = await Directory(conn).api_user_by_username(account.api_username)
        assert api_user is not None
        await setup.delete_api_user(services, setup.operator(account.account_id), api_user.id)

    with_services(database_url, revoke)
    with unchanged(safety_server.database_url, account.account_id):
        refused = _post(safety_server, till.token, body, key)
    assert refused.json()["errors"][0]["message"] == "Unauthorized"
    assert "Idempotent-Replayed" not in refused.headers
