"""Lost replies: a till whose reply is dropped after the server committed sends the same mutation again.
The first attempt's work is the only work; every later attempt is told "Duplicate reference supplied"
with the first attempt's line items, so the till can reconcile."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.safety.helpers import DUPLICATE
from tests.safety.lossy_proxy import LossyProxy
from tests.safety.tills import adjustment, new_card, reversal, sale, sell_new, send
from tests.support import Api, Demo, LiveServer, snapshot, tls

ATTEMPTS = 5


def _mutation(kind: str, till: Api, account: Demo) -> tuple[dict[str, Any], str]:
    if kind == "createOrder":
        return sale(account, {new_card(): 1500, new_card(): 2500}), kind
    card, _ = sell_new(till, account, 1000)
    if kind == "createBalanceAdjustment":
        return adjustment(account, card, -250), kind
    redeemed = send(till, adjustment(account, card, -100))
    line_item_id = redeemed["data"]["createBalanceAdjustment"]["LineItem"]["id"]
    return reversal(account, [line_item_id]), kind


def _line_item_ids(body: dict[str, Any], kind: str) -> list[int]:
    data = body["data"][kind]
    if kind == "createBalanceAdjustment":
        return [data["LineItem"]["id"]]
    return [item["id"] for item in data["LineItems"]]


@pytest.mark.parametrize("kind", ["createOrder", "createBalanceAdjustment", "createReversal"])
def test_the_same_mutation_sent_5_times_with_every_reply_lost_applies_once(
    safety_server: LiveServer, account: Demo, till: Api, kind: str
) -> None:
    request, operation = _mutation(kind, till, account)
    reference = request["variables"]["merchant_transaction_reference"]
    proxy = LossyProxy(urlparse(safety_server.url).port or 0)
    before_first = snapshot(safety_server.database_url, account.account_id)
    after_first = None
    try:
        for attempt in range(ATTEMPTS):
            with pytest.raises(httpx.TransportError):
                httpx.post(
                    proxy.url,
                    json={"query": request["query"], "variables": request["variables"]},
                    headers={"Authorization": f"Bearer {till.token}"},
                    timeout=30,
                    verify=tls(),
                )
            assert len(proxy.replies) == attempt + 1  # the server answered; the till never heard it
            now = snapshot(safety_server.database_url, account.account_id)
            if attempt == 0:
                assert now != before_first
                after_first = now
            else:
                assert now == after_first  # later attempts changed nothing
    finally:
        proxy.close()
    first, *later = proxy.replies
    assert first.status == 200 and "errors" not in first.body, first
    ids = _line_item_ids(first.body, operation)
    assert len(ids) == {"createOrder": 2, "createBalanceAdjustment": 1, "createReversal": 1}[operation]
    for reply in later:
        assert reply.status == 200
        assert reply.body["data"] == {operation: None}
        [error] = reply.body["errors"]
        assert error["message"] == DUPLICATE
        assert error["extensions"] == {
            "code": "DUPLICATE_REFERENCE",
            "merchant_transaction_reference": reference,
            "line_item_ids": ids,
        }
    # the till reconciles by reference: exactly the first attempt's line items exist
    found = till.call(
        "query($r:String!){LineItems(page:1,limit:10,merchant_transaction_reference:$r){data{id} total}}",
        {"r": reference},
    )
    assert found["data"]["LineItems"] == {"data": [{"id": i} for i in ids], "total": len(ids)}
