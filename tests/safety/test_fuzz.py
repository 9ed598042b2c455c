"""A small run of bench/fuzz.py (10,000+ requests there): requests generated from the schema against the
live server find no 500 and no reply outside the contract's error shape; `ledger verify` passes."""

from __future__ import annotations

import asyncio
import random

from bench.fuzz import Context, Fuzzer, fuzz

from giftledger.api.endpoint import load_schema
from tests.safety.tills import sell_new
from tests.support import Api, Demo, LiveServer

REQUESTS = 400


def test_generated_requests_never_get_a_500(safety_server: LiveServer, account: Demo, till: Api) -> None:
    sold = [sell_new(till, account, 100_000) for _ in range(2)]
    fuzzer = Fuzzer(load_schema(), Context.of(account, sold), random.Random(20261122))
    outcome = asyncio.run(fuzz(safety_server.graphql_url, till.token or "", fuzzer, REQUESTS, concurrency=4))
    assert outcome.failures == []
    assert sum(outcome.statuses.values()) == REQUESTS
    assert outcome.codes["(no error)"] >= REQUESTS // 10  # a good share got through to the ledger
