"""What a GraphQL request costs, for the per-caller budget (`services.throttle`) and `extensions.cost`.

- Every field that returns an object (or a list of objects) costs 1 per object; scalar fields cost nothing.
- A list multiplies the cost of what is selected in it by its size: the `limit` argument of the field that
  pages it (`Cards(limit: 5) { data {...} }`: 5; no `limit`: 15, the default page; at most 100; a `limit`
  of 100.0 is 100, as GraphQL's Int reads it), the most a list can hold where the ledger bounds it (an
  order's or a reversal's `LineItems`: 100), or 10 for the other lists that are not paged (`Products`,
  `PriceModifiers`, ...).
- Each mutation costs 10 on top of what it returns; `__schema` and `__type` cost 10 each, whatever they
  select (their size is bounded by the schema and by the introspection nesting limit); `__typename` is free.
- Every request costs at least 1.

The requested cost is this estimate, charged before the request runs; the actual cost counts the objects
the reply really holds (same weights), and the difference is settled afterwards: given back when the reply
cost less, charged when it cost more (an unbounded list longer than its estimate), so a caller is always
charged exactly the actual cost. Fields are merged by response key
as GraphQL merges them, so repeating a fragment costs nothing extra."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_composite_type,
)

MUTATION_COST = 10
INTROSPECTION_COST = 10
UNPAGED_LIST_SIZE = 10
# Unpaged lists the ledger bounds: an order sells at most 100 cards, a reversal undoes at most 100 line items.
LIST_BOUNDS = {("Order", "LineItems"): 100, ("Reversal", "LineItems"): 100}
DEFAULT_PAGE = 15
MAX_PAGE = 100
MINIMUM_COST = 1
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})

Fields = dict[str, list[FieldNode]]


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def collect(selection_sets: Iterable[SelectionSetNode], fragments: Mapping[str, FragmentDefinitionNode]) -> Fields:
    """Fields by response key, fragments expanded once each (as GraphQL's own field collection does)."""
    fields: Fields = {}
    visited: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields.setdefault((selection.alias or selection.name).value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in visited:
                    visited.add(name)
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return fields


def _unwrap(type_: GraphQLOutputType) -> tuple[Any, bool]:
    is_list = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, is_list


def _page(value: Any) -> int:
    """The page size a `limit` of `value` comes to (GraphQL's Int takes a float with no fraction: 100.0 is 100)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, min(value, MAX_PAGE))
    return DEFAULT_PAGE


def _limit(node: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in node.arguments or ():  # None when there are none (graphql-core 3.3)
        if argument.name.value != "limit":
            continue
        value: Any = None
        if isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value)
        return _page(value)
    return DEFAULT_PAGE


def _selection_cost(
    parent: Any,
    selection_sets: list[SelectionSetNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    page: int | None,
) -> int:
    if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return 0
    total = 0
    for nodes in collect(selection_sets, fragments).values():
        name = nodes[0].name.value
        if name in INTROSPECTION_FIELDS:
            total += INTROSPECTION_COST
            continue
        field = parent.fields.get(name)
        if field is None:
            continue
        named, is_list = _unwrap(field.type)
        if not is_composite_type(named):
            continue
        paged = _limit(nodes[0], variables) if "limit" in field.args else None
        size = 1
        if is_list:
            bound = LIST_BOUNDS.get((parent.name, name), UNPAGED_LIST_SIZE)
            size = paged if paged is not None else page if page is not None else bound
        children = [n.selection_set for n in nodes if n.selection_set is not None]
        total += size * (1 + _selection_cost(named, children, fragments, variables, paged))
    return total


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation: OperationDefinitionNode | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """The most this request can cost (charged before it runs)."""
    if document is None or operation is None:
        return MINIMUM_COST
    fragments = fragments_of(document)
    root = schema.mutation_type if operation.operation is OperationType.MUTATION else schema.query_type
    total = _selection_cost(root, [operation.selection_set], fragments, variables or {}, None)
    if operation.operation is OperationType.MUTATION:
        total += MUTATION_COST * len(collect([operation.selection_set], fragments))
    return max(MINIMUM_COST, total)


_PRICES_KEPT = 128  # requested costs kept per operation, by the page sizes its variables ask for


@dataclass(frozen=True)
class Analysis:
    """What pricing one operation needs, worked out once per parsed document (the endpoint keeps it beside
    the cached document: api/execution.Prepared)."""

    operation: OperationDefinitionNode
    fields: Fields  # the root fields, by response key
    requested: int | None  # the requested cost, unless a `limit` argument takes its value from a variable
    limit_variables: tuple[str, ...] = ()  # the variables `limit` arguments take their values from
    _prices: dict[tuple[int, ...], int] = field(default_factory=dict, compare=False, repr=False)

    def requested_cost(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]) -> int:
        """`requested_cost` for these variables: the cost depends on them only through the page size each
        `limit` variable comes to, so it is worked out once per set of page sizes (a bounded number kept)."""
        if self.requested is not None:
            return self.requested
        pages = tuple(_page(variables.get(name)) for name in self.limit_variables)
        price = self._prices.get(pages)
        if price is None:
            price = requested_cost(schema, document, self.operation, variables)
            if len(self._prices) < _PRICES_KEPT:
                self._prices[pages] = price
        return price


def analyse(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> Analysis:
    fields = collect([operation.selection_set], fragments_of(document))
    limit_variables: set[str] = set()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            _limit_variables(definition.selection_set, limit_variables)
    if limit_variables:
        return Analysis(operation, fields, None, tuple(sorted(limit_variables)))
    return Analysis(operation, fields, requested_cost(schema, document, operation, None))


def _limit_variables(selection_set: SelectionSetNode | None, found: set[str]) -> None:
    """Adds to `found` the variables that `limit` arguments in `selection_set` take their values from."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.update(
                a.value.name.value
                for a in selection.arguments or ()
                if a.name.value == "limit" and isinstance(a.value, VariableNode)
            )
        if isinstance(selection, FieldNode | InlineFragmentNode):
            _limit_variables(selection.selection_set, found)


def _objects(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0


def actual_cost(
    document: DocumentNode | None, operation: OperationDefinitionNode | None, data: Any, fields: Fields | None = None
) -> int:
    """What the reply really cost: the objects it holds, plus the mutation and introspection charges.
    `fields`: the operation's root fields, when already collected (`Analysis.fields`)."""
    if document is None or operation is None:
        return MINIMUM_COST
    total = 0
    mutation = operation.operation is OperationType.MUTATION
    if fields is None:
        fields = collect([operation.selection_set], fragments_of(document))
    for key, nodes in fields.items():
        if nodes[0].name.value in INTROSPECTION_FIELDS:
            total += INTROSPECTION_COST
            continue
        if mutation:
            total += MUTATION_COST
        if isinstance(data, dict):
            total += _objects(data.get(key))
    return max(MINIMUM_COST, total)
