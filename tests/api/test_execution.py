"""api/execution.py runs an operation as graphql-core's `execute` would: the variables it takes as they are
are exactly graphql-core's coerced values, everything else is left to graphql-core, and a query's one
awaitable root field gives the same data and errors without asyncio.gather. The pricing an operation
keeps per page size is `requested_cost`'s answer."""

from __future__ import annotations

import asyncio
import math
from inspect import isawaitable
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
)
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from giftledger.api import cost
from giftledger.api.endpoint import _operation, load_schema
from giftledger.api.execution import Prepared, Variables, run
from tests.api import documents

SCHEMA = load_schema()

TOY = build_schema(
    """
    type Query { one: Thing, sync: Thing, strict: Thing!, two: Thing, broken: Thing, echo(n: Int!): Int,
                 scalars(f: Float, id: ID, b: Boolean): Int }
    type Thing { name: String!, size: Int, fail: String, missing: String! }
    type Mutation { make(n: Int!): Thing }
    """
)


# Every kind of variable definition: the built-in scalars, required or not, with and without defaults,
# and the kinds that always go to graphql-core (lists, input objects).
DEFINITIONS = (
    "$s: String, $rs: String!, $i: Int, $ri: Int!, $d: Int = 7, $id: ID, $f: Float, $b: Boolean, "
    '$ds: String = "x", $dn: Int = null'
)
PLAIN = parse(f"query({DEFINITIONS}) {{ __typename }}")
NAMES = ("s", "rs", "i", "ri", "d", "id", "f", "b", "ds", "dn")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 0, 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1.0, -3.0, 0.5])
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)
raw_variables = st.dictionaries(st.sampled_from(NAMES), json_values, max_size=len(NAMES))


def _only_operation(document: DocumentNode) -> OperationDefinitionNode:
    operation = _operation(document, None)
    assert operation is not None
    return operation


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (graphql-core refuses NaN, so it never reaches here as a value)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(raw_variables)
def test_variables_taken_as_they_are_are_graphql_cores_coerced_values(raw: dict[str, Any]) -> None:
    operation = _only_operation(PLAIN)
    ours = Variables.of(TOY, operation).coerced(raw)
    theirs = get_variable_values(TOY, operation.variable_definitions, raw)
    if ours is None:
        return  # graphql-core coerces these (and reports their errors) itself (taken as they are: below)
    assert isinstance(theirs, dict), theirs
    assert ours.keys() == theirs.keys()
    assert all(_same(ours[k], theirs[k]) for k in ours)


well_typed = st.fixed_dictionaries(
    {"rs": st.text(max_size=5), "ri": st.integers(-(2**31), 2**31 - 1)},
    optional={
        "s": st.none() | st.text(max_size=5),
        "i": st.none() | st.integers(-(2**31), 2**31 - 1),
        "d": st.none() | st.integers(-(2**31), 2**31 - 1),
        "id": st.none() | st.text(max_size=5),
        "f": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "b": st.none() | st.booleans(),
        "ds": st.none() | st.text(max_size=5),
    },
)


@settings(max_examples=200, deadline=None)
@given(well_typed)
def test_well_typed_variables_are_taken_as_they_are(raw: dict[str, Any]) -> None:
    operation = _only_operation(PLAIN)
    ours = Variables.of(TOY, operation).coerced(raw)
    assert ours is not None
    assert ours == get_variable_values(TOY, operation.variable_definitions, raw)


@pytest.mark.parametrize(
    ("raw", "taken"),
    [
        ({"rs": "a", "ri": 1}, {"rs": "a", "ri": 1, "d": 7, "ds": "x", "dn": None}),
        ({"rs": "a", "ri": 1, "d": None, "s": None, "b": False, "f": 2.5, "id": "9"}, None),
        ({"ri": 1}, "graphql-core"),  # a required variable left out
        ({"rs": "a", "ri": 1.0}, "graphql-core"),  # Int sent as a float
        ({"rs": "a", "ri": True}, "graphql-core"),  # a boolean is not an Int
        ({"rs": "a", "ri": 2**31}, "graphql-core"),  # out of Int's range
        ({"rs": "a", "ri": 1, "id": 5}, "graphql-core"),  # an ID sent as a number (graphql-core makes it "5")
        ({"rs": "a", "ri": 1, "f": 3}, "graphql-core"),  # a Float sent as an integer (graphql-core makes it 3.0)
        ({"rs": "a", "ri": 1, "f": math.inf}, "graphql-core"),
        ({"rs": None, "ri": 1}, "graphql-core"),  # null for a required variable
    ],
)
def test_which_variables_are_taken_as_they_are(raw: dict[str, Any], taken: Any) -> None:
    operation = _only_operation(PLAIN)
    ours = Variables.of(TOY, operation).coerced(raw)
    if taken == "graphql-core":
        assert ours is None
        return
    expected = taken if taken is not None else {**raw, "ds": "x", "dn": None}
    assert ours == expected
    assert ours == get_variable_values(TOY, operation.variable_definitions, raw)


def test_the_tills_documents_take_their_variables_as_they_are() -> None:
    """The hot documents never go through graphql-core's coercion with the variables tills send."""
    for query, raw in (
        (documents.CARD_BALANCE, {"card_reference": "6301190012345678901", "page": 1, "limit": 1}),
        (documents.LINE_ITEMS, {"merchant_transaction_reference": "T-1", "page": 1, "limit": 5}),
        (
            documents.ADJUSTMENT,
            {
                "currency": "GBP",
                "value": -150,
                "card_reference": "6301190012345678901",
                "unit_epos_reference": "till-1",
                "merchant_id": 60,
                "merchant_transaction_reference": "T-1",
            },
        ),
    ):
        operation = _only_operation(parse(query))
        assert Variables.of(SCHEMA, operation).coerced(raw) == get_variable_values(
            SCHEMA, operation.variable_definitions, raw
        )


def test_lists_and_input_objects_always_go_to_graphql_core() -> None:
    for query in (documents.CREATE_ORDER, documents.REVERSAL, "query($x: [Int]) { __typename }"):
        assert Variables.of(SCHEMA, _only_operation(parse(query))).variables is None, query


# --- running: the same data and errors as graphql-core's execute ---------------------------------------


async def _thing(*_: Any, **__: Any) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"name": "t", "size": 3, "missing": None}


async def _broken(*_: Any) -> Any:
    raise ValueError("the resolver failed")


def _failing(*_: Any) -> Any:
    raise RuntimeError("a field failed")


def _attach(schema: GraphQLSchema) -> None:
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None and mutation is not None
    query.fields["one"].resolve = _thing
    query.fields["sync"].resolve = lambda *_: {"name": "s", "size": 1}
    query.fields["strict"].resolve = _thing
    query.fields["two"].resolve = _thing
    query.fields["broken"].resolve = _broken
    query.fields["echo"].resolve = lambda _, __, n: n
    mutation.fields["make"].resolve = _thing
    thing = schema.type_map["Thing"]
    thing.fields["fail"].resolve = _failing  # type: ignore[attr-defined]


_attach(TOY)


async def _result(outcome: Any) -> ExecutionResult:
    return await outcome if isawaitable(outcome) else outcome


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ one { name size } }", None),
        ("{ sync { name } }", None),
        ("{ one { name fail } }", None),  # a field error under the one root field
        ("{ strict { name missing } }", None),  # null in a non-null field, up to the root: data null
        ("{ one { missing } }", None),  # ... up to the nullable root field
        ("{ broken { name } }", None),
        ("{ one { name } two { size } }", None),  # two root fields: graphql-core's own path
        ("{ a: one { name } b: one { name } }", None),
        ("query($n: Int!) { echo(n: $n) }", {"n": 5}),
        ("query($n: Int!) { echo(n: $n) }", {"n": "five"}),  # refused by graphql-core's coercion
        ("query($n: Int!) { echo(n: $n) }", {}),
        ("query($y: Boolean!) { one @include(if: $y) { name } sync { name } }", {"y": False}),
        ("mutation($n: Int!) { make(n: $n) { name } }", {"n": 1}),
    ],
)
def test_running_gives_what_graphql_cores_execute_gives(query: str, variables: dict[str, Any] | None) -> None:
    document = parse(query)
    prepared = Prepared.of(TOY, document, _only_operation(document))

    async def both() -> tuple[ExecutionResult, ExecutionResult]:
        ours = await _result(run(TOY, prepared, variables, None))
        theirs = await _result(execute(TOY, document, variable_values=variables))
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert ours.formatted == theirs.formatted


PAGED = parse(
    "query($a: Int, $b: Int, $c: Int) { Cards(limit: $a) { data { id Consents(limit: $b) { data { id } } } } "
    "Products(account_id: $c) { id } }"
)
PAGED_ANALYSIS = cost.analyse(SCHEMA, PAGED, _only_operation(PAGED))  # shared: its kept prices are reused


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3))
def test_the_price_kept_per_page_size_is_requested_costs(variables: dict[str, Any]) -> None:
    assert PAGED_ANALYSIS.limit_variables == ("a", "b")
    expected = cost.requested_cost(SCHEMA, PAGED, _only_operation(PAGED), variables)
    assert PAGED_ANALYSIS.requested_cost(SCHEMA, PAGED, variables) == expected
    assert PAGED_ANALYSIS.requested_cost(SCHEMA, PAGED, variables) == expected
