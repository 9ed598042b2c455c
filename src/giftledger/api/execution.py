"""Running a validated operation with graphql-core, with two per-request costs taken off its hot path
(docs/performance.md, item 15). Everything else is graphql-core's own executor.

- **Variables.** graphql-core resolves each variable's type from the document and coerces each value on
  every request. An operation's variables are read once here (`Variables`, kept beside the cached
  document), and a request whose values are exactly what the built-in scalars accept unchanged (a string
  for `String` or `ID`, an integer in 32-bit range for `Int`, a finite float for `Float`, a boolean for
  `Boolean`, null where the type allows it, a default where a value is left out) is taken as is: the same
  values graphql-core's coercion gives. Anything else (an input object, a list, an `Int` sent as `1.0`, a
  required variable left out, ...) goes through graphql-core's coercion, so its errors are graphql-core's
  (`tests/api/test_execution.py` holds the two to the same answers).
- **One awaitable root field.** For a query graphql-core awaits the root fields' results through
  `asyncio.gather`, which wraps each in a Task of its own; a till's query has one root field, so its
  resolver is awaited directly (the same result, one Task and loop turn fewer per request)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionContext,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    execute,
    type_from_ast,
    value_from_ast,
)
from graphql.execution.execute import CollectedErrors, default_field_resolver, default_type_resolver
from graphql.pyutils import AwaitableOrValue, Path

from giftledger.api import cost

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_ABSENT = object()

# What each built-in scalar's coercion returns unchanged.
_UNCHANGED: dict[Any, Callable[[Any], bool]] = {
    GraphQLString: lambda v: type(v) is str,
    GraphQLID: lambda v: type(v) is str,
    GraphQLInt: lambda v: type(v) is int and _INT_MIN <= v <= _INT_MAX,
    GraphQLFloat: lambda v: type(v) is float and math.isfinite(v),
    GraphQLBoolean: lambda v: type(v) is bool,
}


@dataclass(frozen=True)
class _Variable:
    name: str
    unchanged: Callable[[Any], bool]
    required: bool
    default: Any  # _ABSENT: none


@dataclass(frozen=True)
class Variables:
    """An operation's variable definitions, read once."""

    variables: tuple[_Variable, ...] | None  # None: a variable of a type that always goes to graphql-core

    @classmethod
    def of(cls, schema: GraphQLSchema, operation: OperationDefinitionNode) -> Variables:
        variables: list[_Variable] = []
        for definition in operation.variable_definitions or ():
            graphql_type = type_from_ast(schema, definition.type)
            required = isinstance(graphql_type, GraphQLNonNull)
            named = graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type
            unchanged = _UNCHANGED.get(named)
            if unchanged is None:  # a list, an input object, an enum (or, in an invalid document, no type)
                return cls(None)
            default: Any = _ABSENT
            if definition.default_value is not None:
                default = value_from_ast(definition.default_value, graphql_type)  # type: ignore[arg-type]
                if default is Undefined:
                    return cls(None)
            variables.append(_Variable(definition.variable.name.value, unchanged, required, default))
        return cls(tuple(variables))

    def coerced(self, raw: dict[str, Any] | None) -> dict[str, Any] | None:
        """The coerced values when every one is taken as is, else None (graphql-core must coerce them)."""
        if self.variables is None:
            return None
        raw = raw or {}
        values: dict[str, Any] = {}
        for variable in self.variables:
            value = raw.get(variable.name, _ABSENT)
            if value is _ABSENT:
                if variable.default is not _ABSENT:
                    values[variable.name] = variable.default
                elif variable.required:
                    return None
            elif value is None:
                if variable.required:
                    return None
                values[variable.name] = None
            elif variable.unchanged(value):
                values[variable.name] = value
            else:
                return None
        return values


@dataclass(frozen=True)
class Prepared:
    """What one operation of a cached document needs on every request, read once: its fragments and
    variables to run it, and its cost analysis for the guard (api/guard.py)."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    variables: Variables
    analysis: cost.Analysis

    @classmethod
    def of(cls, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> Prepared:
        variables, analysis = Variables.of(schema, operation), cost.analyse(schema, document, operation)
        return cls(document, operation, cost.fragments_of(document), variables, analysis)


class _Execution(ExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[Any]],
    ) -> AwaitableOrValue[dict[str, Any]]:
        if path is not None or len(fields) != 1:
            return super().execute_fields(parent_type, source_value, path, fields)
        ((name, nodes),) = fields.items()
        result = self.execute_field(parent_type, source_value, nodes, Path(path, name, parent_type.name))
        if result is Undefined:
            return {}
        if not self.is_awaitable(result):
            return {name: result}

        async def awaited() -> dict[str, Any]:
            return {name: await result}

        return awaited()


def run(
    schema: GraphQLSchema,
    prepared: Prepared,
    raw_variables: dict[str, Any] | None,
    context_value: Any,
) -> AwaitableOrValue[ExecutionResult]:
    """Execute `prepared` as graphql-core's `execute` would (the same data and errors)."""
    values = prepared.variables.coerced(raw_variables)
    operation = prepared.operation
    if values is None:
        return execute(
            schema,
            prepared.document,
            variable_values=raw_variables,
            operation_name=operation.name.value if operation.name else None,
            context_value=context_value,
            execution_context_class=_Execution,
        )
    errors = CollectedErrors()
    context = _Execution(
        schema,
        prepared.fragments,
        None,
        context_value,
        operation,
        values,
        default_field_resolver,
        default_type_resolver,
        default_field_resolver,
        errors,
        None,
        None,
    )
    try:
        result: Any = context.execute_operation(operation, None)
    except GraphQLError as error:
        errors.add(error, None)
        return context.build_response(None, errors.errors)
    if not context.is_awaitable(result):
        return context.build_response(result, errors.errors)

    async def awaited() -> ExecutionResult:
        try:
            data = await result
        except GraphQLError as error:
            errors.add(error, None)
            return context.build_response(None, errors.errors)
        return context.build_response(data, errors.errors)

    return awaited()
