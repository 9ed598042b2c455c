"""api/execution.py runs an operation through graphql-core's public API only: a prepared operation gives
exactly what graphql-core's `execute` gives on the same document, whatever variables come with it, and the
API imports no name graphql-core does not export. The pricing an operation keeps per page size is
`requested_cost`'s answer."""

from __future__ import annotations

import ast
import asyncio
import importlib
from collections.abc import Iterator
from inspect import isawaitable
from pathlib import Path
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
from hypothesis import given, settings
from hypothesis import strategies as st

import giftledger
from giftledger.api import cost
from giftledger.api.endpoint import _operation, load_schema
from giftledger.api.execution import Prepared, run

SCHEMA = load_schema()

TOY = build_schema(
    """
    type Query { one: Thing, sync: Thing, strict: Thing!, two: Thing, broken: Thing, echo(n: Int!): Int,
                 scalars(f: Float, id: ID, b: Boolean): Int,
                 args(s: String, rs: String!, i: Int, ri: Int!, d: Int, id: ID, f: Float, b: Boolean, ds: String,
                      dn: Int, l: [Int]): String }
    type Thing { name: String!, size: Int, fail: String, missing: String! }
    type Mutation { make(n: Int!): Thing }
    """
)


# Every kind of variable definition: the built-in scalars, required or not, with and without defaults, and a
# list; `args` answers with the values graphql-core handed its resolver.
DEFINITIONS = (
    "$s: String, $rs: String!, $i: Int, $ri: Int!, $d: Int = 7, $id: ID, $f: Float, $b: Boolean, "
    '$ds: String = "x", $dn: Int = null, $l: [Int]'
)
NAMES = ("s", "rs", "i", "ri", "d", "id", "f", "b", "ds", "dn", "l")
ARGS = parse(f"query({DEFINITIONS}) {{ args({', '.join(f'{n}: ${n}' for n in NAMES)}) }}")

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
well_typed = st.fixed_dictionaries(
    {"rs": st.text(max_size=5), "ri": st.integers(-(2**31), 2**31 - 1)},
    optional={
        "s": st.none() | st.text(max_size=5),
        "i": st.none() | st.integers(-(2**31), 2**31 - 1),
        "d": st.none() | st.integers(-(2**31), 2**31 - 1),
        "id": st.none() | st.text(max_size=5) | st.integers(-(2**31), 2**31 - 1),
        "f": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**31), 2**31 - 1),
        "b": st.none() | st.booleans(),
        "ds": st.none() | st.text(max_size=5),
        "l": st.none() | st.integers(-(2**31), 2**31 - 1) | st.lists(st.none() | st.integers(-5, 5), max_size=3),
    },
)


def _only_operation(document: DocumentNode) -> OperationDefinitionNode:
    operation = _operation(document, None)
    assert operation is not None
    return operation


def _run_both(
    schema: GraphQLSchema, document: DocumentNode, prepared: Prepared, variables: dict[str, Any] | None
) -> tuple[ExecutionResult, ExecutionResult]:
    """`run` on `prepared` and graphql-core's `execute` on its document, each in an event loop of its own."""

    async def both() -> tuple[ExecutionResult, ExecutionResult]:
        ours = await _result(run(schema, prepared, variables, None))
        theirs = await _result(execute(schema, document, variable_values=variables))
        return ours, theirs

    return asyncio.run(both())


@settings(max_examples=400, deadline=None)
@given(raw_variables)
def test_any_variables_give_what_graphql_cores_execute_gives(raw: dict[str, Any]) -> None:
    prepared = Prepared.of(TOY, ARGS, _only_operation(ARGS))
    ours, theirs = _run_both(TOY, ARGS, prepared, raw)
    assert ours.formatted == theirs.formatted


@settings(max_examples=200, deadline=None)
@given(well_typed)
def test_well_typed_variables_reach_the_resolver_coerced(raw: dict[str, Any]) -> None:
    prepared = Prepared.of(TOY, ARGS, _only_operation(ARGS))
    ours, theirs = _run_both(TOY, ARGS, prepared, raw)
    assert ours.errors is None
    assert ours.formatted == theirs.formatted


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        ({"rs": "a", "ri": 1}, {"rs": "a", "ri": 1, "d": 7, "ds": "x", "dn": None}),
        ({"rs": "a", "ri": 1, "d": None, "s": None}, {"rs": "a", "ri": 1, "d": None, "s": None, "ds": "x", "dn": None}),
        ({"rs": "a", "ri": 1, "id": 5, "f": 3, "l": 4}, {"rs": "a", "ri": 1, "id": "5", "f": 3.0, "l": [4]}),
        ({"rs": "a", "ri": 1, "b": False, "f": 2.5}, {"rs": "a", "ri": 1, "b": False, "f": 2.5}),
    ],
)
def test_what_the_resolver_gets(raw: dict[str, Any], answer: dict[str, Any]) -> None:
    """graphql-core's coercion, spelled out: an ID sent as a number becomes a string, an integer for a Float a
    float, one value for a list a list of one, and defaults fill what was left out."""
    prepared = Prepared.of(TOY, ARGS, _only_operation(ARGS))
    result = asyncio.run(_result(run(TOY, prepared, raw, None)))
    expected = {"d": 7, "ds": "x", "dn": None, **answer}
    assert result.formatted == {"data": {"args": repr(sorted(expected.items()))}}


@pytest.mark.parametrize(
    "raw",
    [
        {"ri": 1},  # a required variable left out
        {"rs": "a", "ri": 1.5},  # not an integer
        {"rs": "a", "ri": 2**31},  # out of Int's range
        {"rs": None, "ri": 1},  # null for a required variable
        {"rs": "a", "ri": 1, "l": ["x"]},  # in a list
    ],
)
def test_variables_that_do_not_coerce_are_refused_with_graphql_cores_error(raw: dict[str, Any]) -> None:
    prepared = Prepared.of(TOY, ARGS, _only_operation(ARGS))
    ours, theirs = _run_both(TOY, ARGS, prepared, raw)
    assert ours.data is None and ours.errors is not None and len(ours.errors) == 1
    assert ours.formatted == theirs.formatted


def test_the_prepared_operation_is_the_one_run() -> None:
    document = parse("query A { sync { name } } query B { sync { size } }")
    named = [d for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name]
    for operation, data in zip(named, ({"sync": {"name": "s"}}, {"sync": {"size": 1}}), strict=True):
        result = asyncio.run(_result(run(TOY, Prepared.of(TOY, document, operation), None, None)))
        assert result.formatted == {"data": data}


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
    query.fields["args"].resolve = lambda _, __, **args: repr(sorted(args.items()))
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


# --- graphql-core's public surface only -------------------------------------------------------------------

PUBLIC_PACKAGES = frozenset(
    {
        "graphql",
        "graphql.error",
        "graphql.execution",
        "graphql.language",
        "graphql.pyutils",
        "graphql.type",
        "graphql.utilities",
        "graphql.validation",
    }
)


def _graphql_names(source: str) -> Iterator[tuple[str, str, bool]]:
    """(package, name, optional) for each name a module takes from graphql-core: `from graphql... import name`,
    `import graphql...` (name ""), and, where `import graphql` binds the name `graphql`, `graphql.name` and
    `getattr(graphql, "name"[, default])` (optional: with a default, for a name only some versions have)."""
    tree = ast.parse(source)
    imported = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "graphql":
            yield from ((node.module or "", alias.name, False) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, "", False) for a in node.names if a.name.split(".")[0] == "graphql")
            imported = imported or any(a.name == "graphql" and a.asname is None for a in node.names)
    if not imported:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "graphql":
            yield "graphql", node.attr, False
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            target, *rest = node.args
            if isinstance(target, ast.Name) and target.id == "graphql" and rest:
                name = rest[0].value if isinstance(rest[0], ast.Constant) else "<computed>"
                yield "graphql", str(name), len(rest) > 1


def _not_public(source: str) -> list[str]:
    """The graphql-core names `source` uses that are not its public API: a package other than `graphql` and
    its documented sub-packages (not their modules), or a name that package does not export (`__all__`; a
    name looked up with a default may be missing from the installed version)."""
    found = []
    for package, name, optional in _graphql_names(source):
        if package not in PUBLIC_PACKAGES or name.startswith("_"):
            found.append(f"{package}.{name}")
            continue
        module = importlib.import_module(package)
        if name and name not in module.__all__ and not (optional and not hasattr(module, name)):
            found.append(f"{package}.{name}")
    return found


def test_private_graphql_names_are_found() -> None:
    source = (
        "import graphql\n"
        "from graphql import execute, _private\n"
        "from graphql.execution.execute import CollectedErrors\n"
        "from graphql.pyutils import Path, _x\n"
        "import graphql.execution.values\n"
        "graphql._hidden\n"
        "getattr(graphql, '_sneaky', None)\n"
    )
    assert _not_public(source) == [
        "graphql._private",
        "graphql.execution.execute.CollectedErrors",
        "graphql.pyutils._x",
        "graphql.execution.values.",
        "graphql._hidden",
        "graphql._sneaky",
    ]


def test_giftledger_uses_only_graphql_cores_public_api() -> None:
    for path in sorted(Path(giftledger.__file__).parent.rglob("*.py")):
        assert _not_public(path.read_text()) == [], path
