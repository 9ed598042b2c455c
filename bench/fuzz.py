"""GraphQL fuzzing: requests generated from the schema (right and wrong argument types, extreme values,
hostile strings, broken syntax, junk bodies) against a live server. Any 500, any reply that is not the
contract's error shape, or a ledger that fails `ledger verify` afterwards is a failure.

    python bench/fuzz.py [--requests 10000] [--seed 1] [--database-url URL] [--concurrency 8]

Starts its own `giftledger serve` on a fresh database, created and dropped, on the PostgreSQL server named by
--database-url (default: TEST_DATABASE_URL, else the local postgresql://postgres@127.0.0.1:5432/test), with a
demo account and a logged-in till. The test suite runs a few hundred of the same requests
(tests/safety/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import string
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    get_named_type,
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

if TYPE_CHECKING:
    from tests.support import Demo

HOSTILE_STRINGS = [
    "",
    " ",
    "GBP",
    "gbp",
    "1",
    "test",
    "\x00",
    "a\x00b",
    "'; DROP TABLE line_items; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "../../etc/passwd",
    "\u202e\u0041\u0042",  # right-to-left override
    "\uff16\uff13\uff10\uff11",  # fullwidth digits
    "\ud7ff\ue000\U0001f600",
    "null",
    "NaN",
    "-0",
    "9" * 19,
    "6301190000000000000",
    "x" * 1000,
    "y" * 10_240,
]
INTS: list[Any] = [0, 1, -1, 2, 3, 60, 61, 100, -100, 2500, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 10**30, -(10**30)]
WRONG: list[Any] = [None, True, False, 1.5, -0.5, 1e300, "12", "abc", [], [1], {}, {"a": 1}]


@dataclass
class Context:
    """Real values of the fuzzed account, so some requests get past validation into the ledger."""

    account_id: int
    merchant_id: int
    product_id: int
    epos: str
    cards: list[str]
    line_item_ids: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, demo: Demo, sold: list[tuple[str, int]]) -> Context:
        """The demo account's values, with the cards `sold` (each with its sale's line item) among its cards."""
        return cls(
            demo.account_id,
            demo.merchant_id,
            demo.product_id,
            demo.epos,
            [card for card, _ in sold] + demo.card_references,
            [line_item for _, line_item in sold],
        )


class Fuzzer:
    def __init__(self, schema: GraphQLSchema, context: Context, rng: random.Random) -> None:
        self.schema = schema
        self.context = context
        self.rng = rng
        # A clean document keeps to the schema's types (hostile values, but no type errors), so it gets
        # past GraphQL validation into the resolvers, the services and the ledger.
        self.clean = False

    def _chance(self, p: float) -> bool:
        return not self.clean and self.rng.random() < p

    # values -------------------------------------------------------------------------------------------

    def _string(self, name: str) -> Any:
        r = self.rng.random()
        c = self.context
        known = {
            "card_reference": c.cards,
            "unit_epos_reference": [c.epos, "test"],
            "currency": ["GBP", "1", "USD"],
            "merchant_transaction_reference": [f"fz-{self.rng.getrandbits(48):x}"],
        }
        if name in known and r < 0.6:
            return self.rng.choice(known[name])
        if r < 0.85:
            return self.rng.choice(HOSTILE_STRINGS)
        alphabet = string.printable + "äßπ漢字\u200b"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 40)))

    def _int(self, name: str) -> Any:
        c = self.context
        known = {
            "account_id": [c.account_id],
            "merchant_id": [c.merchant_id, 26],
            "product_id": [c.product_id],
            "sales_channel_id": [3, 5, 7],
            "fulfilment_method_id": [1, 3, 8],
            "line_item_id": c.line_item_ids or [1],
            "limit": [1, 15, 100],
            "page": [1, 2],
            "value": [-1, -50, 25, 100],
            "custom_price_modifier_value": [100, 2500],
            "total": [100, 2500],
            "discount_type_id": [1, 3],
        }
        if name in known and self.rng.random() < 0.6:
            return self.rng.choice(known[name])
        if self.clean:
            return self.rng.choice([i for i in INTS if -(2**31) <= i < 2**31])
        return self.rng.choice(INTS)

    def value(self, type_: GraphQLType, name: str, depth: int = 0) -> Any:
        """A JSON value for an input of `type_`: usually of the right type, sometimes wrong."""
        if self._chance(0.08):
            return self.rng.choice(WRONG)
        if isinstance(type_, GraphQLNonNull):
            value = self.value(type_.of_type, name, depth)
            while self.clean and value is None:
                value = self.value(type_.of_type, name, depth)
            return value
        if isinstance(type_, GraphQLList):
            if self._chance(0.1):
                return self.value(type_.of_type, name, depth + 1)  # a single item where a list goes
            return [self.value(type_.of_type, name, depth + 1) for _ in range(self.rng.choice([0, 1, 1, 2, 3]))]
        if isinstance(type_, GraphQLInputObjectType):
            if depth > 4:
                return None
            obj = {
                fname: self.value(f.type, fname, depth + 1)
                for fname, f in type_.fields.items()
                if isinstance(f.type, GraphQLNonNull) or self.rng.random() < 0.8
            }
            if self._chance(0.05):
                obj["unknown_field"] = 1
            return obj
        assert isinstance(type_, GraphQLScalarType)
        if type_.name == "Int":
            return self._int(name)
        if type_.name == "Boolean":
            return self.rng.choice([True, False, True, None] if self.clean else [True, False, None, "true", 1])
        if type_.name == "ID":
            return self.rng.choice([1, "1", "abc", None])
        return self._string(name)

    @staticmethod
    def literal(value: Any) -> str:
        """A JSON value written as a GraphQL literal."""
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int | float):
            return repr(value) if isinstance(value, int) else json.dumps(value)
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + ", ".join(Fuzzer.literal(v) for v in value) + "]"
        return "{" + ", ".join(f"{k}: {Fuzzer.literal(v)}" for k, v in value.items()) + "}"

    # documents ----------------------------------------------------------------------------------------

    def selection(self, type_: GraphQLNamedType, depth: int, variables: dict[str, tuple[str, Any]]) -> str:
        if not isinstance(type_, GraphQLObjectType):
            return ""
        fields = list(type_.fields.items())
        chosen = self.rng.sample(fields, k=min(len(fields), self.rng.randint(1, 6)))
        parts = []
        for fname, f in chosen:
            inner = get_named_type(f.type)
            if isinstance(inner, GraphQLObjectType):
                if depth >= 3:
                    continue
                args = self.arguments(f, variables) if f.args and self.rng.random() < 0.5 else ""
                parts.append(f"{fname}{args} {{ {self.selection(inner, depth + 1, variables) or '__typename'} }}")
            else:
                parts.append(fname)
        if self._chance(0.05):
            parts.append("no_such_field")
        if self.rng.random() < 0.05:
            parts.append("__typename")
        return " ".join(parts) or "__typename"

    def arguments(self, f: GraphQLField, variables: dict[str, tuple[str, Any]]) -> str:
        parts = []
        for aname, arg in f.args.items():
            if self._chance(0.1) or (
                self.clean and not isinstance(arg.type, GraphQLNonNull) and self.rng.random() < 0.2
            ):
                continue  # leave it out (in a clean document: only optional ones)
            value = self.value(arg.type, aname)
            if self.rng.random() < 0.5:
                var = f"v{len(variables)}"
                declared = str(arg.type) if not self._chance(0.1) else self.rng.choice(["String", "Int!", "[Int]"])
                variables[var] = (declared, value)
                parts.append(f"{aname}: ${var}")
            else:
                parts.append(f"{aname}: {self.literal(value)}")
        if self._chance(0.03):
            parts.append("bogus_argument: 1")
        return "(" + ", ".join(parts) + ")" if parts else ""

    def document(self) -> dict[str, Any]:
        mutation = self.rng.random() < 0.5
        root = self.schema.mutation_type if mutation else self.schema.query_type
        assert root is not None
        name, f = self.rng.choice(list(root.fields.items()))
        variables: dict[str, tuple[str, Any]] = {}
        args = self.arguments(f, variables)
        selection = self.selection(get_named_type(f.type), 1, variables)
        body = f"{name}{args}"
        if isinstance(get_named_type(f.type), GraphQLObjectType):
            body += f" {{ {selection} }}"
        declared = ", ".join(f"${k}: {t}" for k, (t, _) in variables.items())
        head = ("mutation" if mutation else "query") + (f"({declared})" if declared else "")
        query = f"{head} {{ {body} }}"
        payload: dict[str, Any] = {"query": query, "variables": {k: v for k, (_, v) in variables.items()}}
        if variables and self._chance(0.05):
            del payload["variables"][self.rng.choice(list(variables))]  # a declared variable left out
        return payload

    def mangle(self, text: str) -> str:
        chars = list(text)
        for _ in range(self.rng.randint(1, 4)):
            if not chars:
                break
            i = self.rng.randrange(len(chars))
            op = self.rng.random()
            if op < 0.4:
                del chars[i]
            elif op < 0.7:
                chars.insert(i, self.rng.choice('{}()[]:$!@#"\\,. \n\x00é'))
            else:
                chars[i] = self.rng.choice(string.printable)
        return "".join(chars)

    def request(self) -> tuple[bytes, str]:
        """A request body and its content type."""
        r = self.rng.random()
        self.clean = r < 0.45
        if r < 0.7:
            payload = self.document()
        elif r < 0.9:
            payload = self.document()
            payload["query"] = self.mangle(payload["query"])
        elif r < 0.95:
            payload = {
                "query": self.rng.choice(
                    ["{ __schema { types { name } } }", '{ __type(name: "Card") { name fields { name } } }']
                )
            }
        else:
            junk = self.rng.choice(
                [
                    b"",
                    b"{",
                    b"[]",
                    b"null",
                    b'{"query": 1}',
                    b'{"query": "{ Merchants { id } }", "variables": "x"}',
                    bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 200))),
                ]
            )
            return junk, self.rng.choice(["application/json", "application/json", "text/plain"])
        return json.dumps(payload).encode(), "application/json"


@dataclass
class Outcome:
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def check_reply(status: int, content: bytes, request: bytes, outcome: Outcome) -> None:
    """No 500; a JSON body in the contract's shape."""
    outcome.statuses[status] += 1
    problem = None
    try:
        body = json.loads(content)
    except ValueError:
        body = None
        problem = "reply is not JSON"
    if status >= 500 and status != 503:
        problem = f"HTTP {status}"
    if body is not None and problem is None:
        if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
            problem = "no data and no errors"
        elif not body.get("errors"):
            outcome.codes["(no error)"] += 1
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            outcome.codes[str(code)] += 1
            if code == "INTERNAL":
                problem = "internal error"
            if not isinstance(error.get("message"), str) or error.get("customer_facing") not in (True, False):
                problem = f"error not in the contract's shape: {error}"
    if problem is not None:
        outcome.failures.append(f"{problem}: {request[:300]!r} -> {status} {content[:300]!r}")


async def fuzz(url: str, token: str, fuzzer: Fuzzer, requests: int, concurrency: int = 8) -> Outcome:
    outcome = Outcome()
    queue: asyncio.Queue[tuple[bytes, str] | None] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(fuzzer.request())
    for _ in range(concurrency):
        queue.put_nowait(None)

    async def worker(client: httpx.AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            body, content_type = item
            headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
            response = await client.post(url, content=body, headers=headers)
            check_reply(response.status_code, response.content, body, outcome)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return outcome


def main() -> int:
    from tests.safety.helpers import NO_THROTTLES, verify_ledger
    from tests.safety.tills import sell_new
    from tests.support import (
        fresh_database,
        logged_in,
        new_demo,
        server_url_option,
        start_server,
    )

    from giftledger.api.endpoint import load_schema

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    server_url_option(parser)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="giftledger-fuzz-"))
    with fresh_database(options.database_url) as url:
        server = None
        try:
            server = start_server(url, work, NO_THROTTLES)
            demo = new_demo(url)
            till = logged_in(server, demo)
            sold = [sell_new(till, demo, 100_000) for _ in range(3)]
            fuzzer = Fuzzer(load_schema(), Context.of(demo, sold), random.Random(options.seed))
            began = time.monotonic()
            outcome = asyncio.run(
                fuzz(server.graphql_url, till.token or "", fuzzer, options.requests, options.concurrency)
            )
            took = time.monotonic() - began
            verify_ledger(url, demo.account_id)
            print(f"{options.requests} requests in {took:.1f}s ({options.requests / took:.0f}/s), seed {options.seed}")
            print("HTTP statuses:", dict(sorted(outcome.statuses.items())))
            print("replies by error code:", dict(outcome.codes.most_common()))
            print("ledger verify: OK")
            for failure in outcome.failures[:20]:
                print("FAILURE", failure)
            print(f"{len(outcome.failures)} failure(s)")
            return 1 if outcome.failures else 0
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    sys.exit(main())
