"""The one mapping from errors to the contract's error shape:
`{message, locations, validation?, customer_facing, extensions{code,...}}` plus `data: {field: null}`."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError

from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, DomainError, Retryable, ValidationFailed

log = logging.getLogger("giftledger.api")

_VARIABLE = re.compile(r"^Variable '\$(\w+)'")


class Outcome:
    """What the errors of one request add up to for the HTTP status."""

    def __init__(self) -> None:
        self.internal = False
        self.retryable = False


def format_error(error: GraphQLError, outcome: Outcome, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`variables`: the request's variable values, when `error` comes from running it (a value graphql-core
    refused to coerce is reported as a validation error of that variable)."""
    shaped: dict[str, Any] = {"message": error.message}
    if error.locations:
        shaped["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        shaped["path"] = list(error.path)
    original = error.original_error
    if isinstance(original, DomainError):
        shaped["message"] = original.message
        if isinstance(original, ValidationFailed):
            shaped["validation"] = original.fields
        shaped["customer_facing"] = original.customer_facing
        shaped["extensions"] = {"code": original.code, **original.details()}
        outcome.retryable = outcome.retryable or isinstance(original, Retryable)
        return shaped
    match = _VARIABLE.match(error.message)
    if match:
        # Left out or null: "This field is required". Read from the request, not from graphql-core's wording,
        # which differs between its versions ("was not provided" in 3.2, "to be provided" in 3.3).
        missing = variables is not None and variables.get(match.group(1)) is None
        shaped["message"] = "validation"
        shaped["validation"] = {match.group(1): [REQUIRED if missing else NOT_EXPECTED]}
        shaped["customer_facing"] = False
        shaped["extensions"] = {"code": "VALIDATION", "detail": error.message}
        return shaped
    if original is not None:
        log.error("internal error in %s", error.path, exc_info=original)
        outcome.internal = True
        shaped["message"] = "Internal server error"
        shaped["customer_facing"] = False
        shaped["extensions"] = {"code": "INTERNAL"}
        return shaped
    shaped["customer_facing"] = False
    shaped["extensions"] = {"code": "GRAPHQL"}
    return shaped


def request_error(message: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    """An error about the HTTP request itself (no document to point into)."""
    return {"message": message, "customer_facing": False, "extensions": {"code": code}}
