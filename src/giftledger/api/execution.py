"""Running a prepared operation with graphql-core, through its documented API only.

Each query text is parsed and validated once (api/endpoint.DocumentCache), and each operation of a cached
document is prepared once here (`Prepared`: the operation, the name graphql-core picks it by, its cost
analysis for api/guard.py). A request then costs graphql-core's own execution of the cached document: it
coerces the request's variables (and reports their errors) and runs the operation. Nothing of graphql-core
beyond its public API is touched: no execution context built from positional arguments, none of its
internal methods overridden, no private name imported (`tests/api/test_execution.py` checks the imports),
so graphql-core 3.2.3 to 3.3.x run it.

- **graphql-core 3.3**: `Executor.build(...)` and its `execute_operation()`, both documented there (the
  `Executor` class and `execute_root_selection_set` show this use). It is the plain executor: `execute`
  would build an incremental one (for `@defer` and `@stream`, which the schema does not define) and wrap
  its result once more: about 30 % more CPU per execution (docs/performance.md, item 17).
- **graphql-core 3.2**: `execute(...)`. Its `ExecutionContext.build` is for internal use only.

Two shortcuts the earlier version took through graphql-core 3.2's internals are gone for that reason:
variable values taken as they are instead of coerced (in both versions the public way to build an
execution coerces them itself), and a query's one awaitable root field awaited without `asyncio.gather`
(graphql-core 3.3 does that itself; 3.2 has no public way)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import graphql
from graphql import DocumentNode, ExecutionResult, GraphQLSchema, OperationDefinitionNode, execute

from giftledger.api import cost

_EXECUTOR: Any = getattr(graphql, "Executor", None)  # graphql-core 3.3 and later; 3.2 has none


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


def _run_with_executor(
    schema: GraphQLSchema, prepared: Prepared, raw_variables: dict[str, Any] | None, context_value: Any
) -> ResultOrAwaitable:
    """graphql-core 3.3: build the plain executor (variables coerced, or the errors why not), then run."""
    executor = _EXECUTOR.build(
        schema,
        prepared.document,
        context_value=context_value,
        raw_variable_values=raw_variables,
        operation_name=prepared.operation_name,
    )
    if isinstance(executor, list):  # the request's errors: its variables do not coerce
        return ExecutionResult(data=None, errors=executor)
    outcome: ResultOrAwaitable = executor.execute_operation()
    return outcome


def _run_with_execute(
    schema: GraphQLSchema, prepared: Prepared, raw_variables: dict[str, Any] | None, context_value: Any
) -> ResultOrAwaitable:
    """graphql-core 3.2: its `execute`."""
    return execute(
        schema,
        prepared.document,
        context_value=context_value,
        variable_values=raw_variables,
        operation_name=prepared.operation_name,
    )


_RUN: Callable[[GraphQLSchema, Prepared, dict[str, Any] | None, Any], ResultOrAwaitable] = (
    _run_with_execute if _EXECUTOR is None else _run_with_executor
)


def run(
    schema: GraphQLSchema, prepared: Prepared, raw_variables: dict[str, Any] | None, context_value: Any
) -> ResultOrAwaitable:
    """Execute `prepared` as graphql-core's `execute` would (the same data and errors): the variables as the
    request sent them, the result or an awaitable of it."""
    return _RUN(schema, prepared, raw_variables, context_value)
