"""Running a prepared operation with graphql-core, through its documented API only.

Each query text is parsed and validated once (api/endpoint.DocumentCache), and each operation of a cached
document is prepared once here (`Prepared`: the operation, the name graphql-core picks it by, its cost
analysis for api/guard.py). A request then costs graphql-core's own execution of the cached document: it
coerces the request's variables (and reports their errors) and runs the operation. Nothing of graphql-core
beyond its public API is touched: no execution context built from positional arguments, none of its
internal methods overridden, no private name imported (`tests/api/test_execution.py` checks the imports),
with graphql-core 3.3.

It runs `Executor.build(...)` and its `execute_operation()`, both documented (the `Executor` class and
`execute_root_selection_set` show this use). It is the plain executor: `execute` would build an incremental
one (for `@defer` and `@stream`, which the schema does not define) and wrap its result once more: about 30 %
more CPU per execution (docs/performance.md, item 17).

Two shortcuts the earlier version took through graphql-core 3.2's internals are gone for that reason:
variable values taken as they are instead of coerced (the public way to build an execution coerces them
itself), and a query's one awaitable root field awaited without `asyncio.gather` (graphql-core 3.3 does that
itself)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from graphql import DocumentNode, ExecutionResult, Executor, GraphQLSchema, OperationDefinitionNode

from giftledger.api import cost


@dataclass(frozen=True)
class Prepared:
    """What one operation of a cached document needs on every request, read once: the operation and the
    name graphql-core picks it by, and its cost analysis for the guard (api/guard.py)."""

    document: DocumentNode
    operation: OperationDefinitionNode
    operation_name: str | None  # None: the document's only operation, anonymous
    analysis: cost.Analysis

    @classmethod
    def of(cls, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> Prepared:
        name = operation.name.value if operation.name else None
        return cls(document, operation, name, cost.analyse(schema, document, operation))


ResultOrAwaitable: TypeAlias = ExecutionResult | Awaitable[ExecutionResult]


def run(
    schema: GraphQLSchema, prepared: Prepared, raw_variables: dict[str, Any] | None, context_value: Any
) -> ResultOrAwaitable:
    """Execute `prepared` as graphql-core's `execute` would (the same data and errors): the variables as the
    request sent them (coerced here, or the errors why not), the result or an awaitable of it."""
    executor = Executor.build(
        schema,
        prepared.document,
        context_value=context_value,
        raw_variable_values=raw_variables,
        operation_name=prepared.operation_name,
    )
    if isinstance(executor, list):  # the request's errors: its variables do not coerce
        return ExecutionResult(data=None, errors=executor)
    # The plain executor gives incremental results only for @defer and @stream, which the schema does not define.
    return cast(ResultOrAwaitable, executor.execute_operation())
