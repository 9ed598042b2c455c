"""Limits on what one GraphQL request may ask for, each refused with a clear error (code `QUERY_LIMIT`):

- tokens per document (`max_query_tokens`, default 2000): parsing stops there;
- query depth (`max_query_depth`, default 10): levels of fields, fragments expanded. `ofType` does not count:
  its chains end at a named type within three steps, so they cannot grow a reply (this keeps GraphiQL's
  introspection query, 6 levels without them, within the limit). Introspection lists (`fields`,
  `interfaces`, `possibleTypes`, `inputFields`) may nest at most twice (graphql-core's
  MaxIntrospectionDepthRule);
- aliases (`max_query_aliases`, default 15) per operation, fragments expanded;
- batched requests (a JSON array of operations) are refused: one operation per request;
- no "Did you mean ...?" suggestions in errors for callers without a valid token (`without_suggestions`).

The body size (64 kB) is checked by the endpoint before parsing; list `limit` arguments (1 to 100) and input
lists (`order_items`, `ReversalItems`: at most 100) by the services, as validation errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    parse,
    specified_rules,
    validate,
)

from giftledger.config import Settings
from giftledger.domain.errors import DomainError

CODE = "QUERY_LIMIT"
BATCH_REFUSED = "Batched requests (a JSON array of operations) are not supported: send one operation per request."
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_NOT_COUNTED_FOR_DEPTH = frozenset({"ofType"})


class QueryLimitExceeded(DomainError):
    """A request asks for more than the limits allow. Nothing ran."""

    code = CODE

    def __init__(self, limit: str, maximum: int, found: int | None, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum
        self.found = found

    def details(self) -> dict[str, object]:
        facts: dict[str, object] = {"limit": self.limit, "maximum": self.maximum}
        if self.found is not None:
            facts["found"] = self.found
        return facts


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        return cls(settings.max_query_depth, settings.max_query_aliases, settings.max_query_tokens)

    def parse(self, query: str) -> DocumentNode:
        """Parse at most `max_tokens` tokens; a longer document is refused without reading the rest."""
        try:
            return parse(query, max_tokens=self.max_tokens)
        except GraphQLSyntaxError as error:
            if "tokens" not in error.message or "Parsing aborted" not in error.message:
                raise
            raise GraphQLError(
                f"The document has more than {self.max_tokens} tokens, the most one request may have.",
                original_error=QueryLimitExceeded(
                    "tokens",
                    self.max_tokens,
                    None,
                    f"The document has more than {self.max_tokens} tokens, the most one request may have.",
                ),
            ) from error

    def rules(self) -> list[type[ASTValidationRule]]:
        return [*specified_rules, _depth_rule(self.max_depth), _alias_rule(self.max_aliases)]

    def validate(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        return list(validate(schema, document, self.rules()))


def _refusal(node: OperationDefinitionNode, limit: str, maximum: int, found: int, message: str) -> GraphQLError:
    return GraphQLError(message, node, original_error=QueryLimitExceeded(limit, maximum, found, message))


def _operation_name(node: OperationDefinitionNode) -> str:
    return f"Operation '{node.name.value}'" if node.name else "The operation"


class _Measure:
    """Walks an operation's selections with fragments expanded; each fragment is measured once."""

    def __init__(self, fragment: Callable[[str], FragmentDefinitionNode | None]) -> None:
        self._fragment = fragment
        self._depths: dict[str, int] = {}
        self._aliases: dict[str, int] = {}
        self._open: set[str] = set()  # fragments being measured (a cycle is another rule's error)

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                own = 0 if selection.name.value in _NOT_COUNTED_FOR_DEPTH else 1
                deepest = max(deepest, own + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._in_fragment(selection.name.value, self._depths, self.depth))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += (1 if selection.alias else 0) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._in_fragment(selection.name.value, self._aliases, self.aliases)
        return count

    def _in_fragment(self, name: str, memo: dict[str, int], measure: Callable[[SelectionSetNode | None], int]) -> int:
        if name in memo:
            return memo[name]
        fragment = self._fragment(name)
        if fragment is None or name in self._open:
            return 0
        self._open.add(name)
        try:
            memo[name] = measure(fragment.selection_set)
        finally:
            self._open.discard(name)
        return memo[name]


def _depth_rule(maximum: int) -> type[ASTValidationRule]:
    class MaxDepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            found = _Measure(self.context.get_fragment).depth(node.selection_set)
            if found > maximum:
                self.report_error(
                    _refusal(
                        node,
                        "depth",
                        maximum,
                        found,
                        f"{_operation_name(node)} nests fields {found} levels deep; the limit is {maximum}.",
                    )
                )

    return MaxDepthRule


def _alias_rule(maximum: int) -> type[ASTValidationRule]:
    class MaxAliasesRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            found = _Measure(self.context.get_fragment).aliases(node.selection_set)
            if found > maximum:
                self.report_error(
                    _refusal(
                        node,
                        "aliases",
                        maximum,
                        found,
                        f"{_operation_name(node)} uses {found} aliases; the limit is {maximum}.",
                    )
                )

    return MaxAliasesRule


def batch_refusal(payload: Any) -> dict[str, Any] | None:
    """The error for a batched request body (a JSON array), or None for anything else."""
    if isinstance(payload, list):
        return {"message": BATCH_REFUSED, "customer_facing": False, "extensions": {"code": CODE, "limit": "batch"}}
    return None


def without_suggestions(errors: Collection[dict[str, Any]]) -> None:
    """Remove "Did you mean ...?" hints from formatted errors (messages and details), in place."""
    for error in errors:
        if isinstance(error.get("message"), str):
            error["message"] = _SUGGESTION.sub("", error["message"])
        extensions = error.get("extensions")
        if isinstance(extensions, dict) and isinstance(extensions.get("detail"), str):
            extensions["detail"] = _SUGGESTION.sub("", extensions["detail"])
