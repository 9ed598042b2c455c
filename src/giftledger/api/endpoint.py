"""POST /graphql and GET /graphql: framing, authentication headers, the document cache, execution."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from importlib import resources
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute,
)
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from giftledger.api import execution
from giftledger.api.context import RequestContext
from giftledger.api.errors import Outcome, format_error, request_error
from giftledger.api.execution import Prepared
from giftledger.api.graphiql import Explorer
from giftledger.api.guard import Guard
from giftledger.api.idempotency import IdempotencyGuard
from giftledger.api.limits import QueryLimits, batch_refusal
from giftledger.api.resolvers import attach
from giftledger.services.context import Services

JSON = "application/json"


def load_schema() -> GraphQLSchema:
    sdl = resources.files("giftledger.api").joinpath("schema.graphql").read_text()
    schema = build_schema(sdl)
    attach(schema)
    return schema


class Cached:
    """One query text: its document (None when it does not parse), its validation errors, and each of its
    operations prepared once, when first asked for (api/execution.Prepared)."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode | None, errors: list[GraphQLError]) -> None:
        self._schema = schema
        self.document = document
        self.errors = errors
        self._prepared: dict[str | None, Prepared | None] = {}

    def prepared(self, operation_name: str | None) -> Prepared | None:
        """The operation this request names (or the only one), prepared; None when there is none."""
        if operation_name in self._prepared:
            return self._prepared[operation_name]
        document = self.document
        operation = _operation(document, operation_name) if document is not None else None
        found = Prepared.of(self._schema, document, operation) if document and operation else None
        if len(self._prepared) < _OPERATIONS_KEPT:  # names are the caller's to choose
            self._prepared[operation_name] = found
        return found


_OPERATIONS_KEPT = 16


class DocumentCache:
    """Documents by query text (bounded, least recently used out first), parsed and validated once.
    Tills send the same few documents millions of times; parsing and validating costs ~2 ms each."""

    def __init__(self, schema: GraphQLSchema, size: int, limits: QueryLimits | None = None) -> None:
        self._schema = schema
        self._size = size
        self._limits = limits or QueryLimits()  # tokens, depth, aliases: checked once per document text
        self._entries: OrderedDict[str, Cached] = OrderedDict()

    def get(self, query: str) -> Cached:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            return entry
        try:
            document: DocumentNode | None = self._limits.parse(query)
        except GraphQLError as error:
            entry = Cached(self._schema, None, [error])
        else:
            assert document is not None
            entry = Cached(self._schema, document, self._limits.validate(self._schema, document))
        self._entries[query] = entry
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return entry


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def _null_data(operation: OperationDefinitionNode | None) -> dict[str, None] | None:
    """`{field: null}` for each root field, as the contract's error examples show."""
    if operation is None:
        return None
    keys = [(s.alias or s.name).value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    return dict.fromkeys(keys) or None


class GraphQLEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.schema = load_schema()
        limits = QueryLimits.from_settings(services.settings)
        self.documents = DocumentCache(self.schema, services.settings.document_cache_size, limits)
        self.guard = Guard(services, self.schema)  # cost budget, extensions.cost, audit (api/guard.py)
        self.idempotency = IdempotencyGuard(services)
        self.explorer = Explorer()  # GraphiQL: the page a browser gets on GET, and its files (api/graphiql.py)

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._get(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            return _reply(
                {
                    "errors": [request_error("Send the request as application/json.", "UNSUPPORTED_MEDIA_TYPE")],
                    "data": None,
                },
                415,
            )
        try:
            body = await _read_body(request, self.services.settings.max_body_bytes)
        except ClientDisconnect:  # gone (or timed out: cli/request_bounds.py) before its body arrived
            return _reply({"errors": [request_error("The request body did not arrive whole.")], "data": None}, 400)
        if body is None:
            return _reply(
                {"errors": [request_error("The request body is too large.", "PAYLOAD_TOO_LARGE")], "data": None}, 413
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _reply({"errors": [request_error("The request body is not valid JSON.")], "data": None}, 400)
        run = partial(self._run, request, payload, allow_mutations=True)
        if not self._is_mutation(payload):
            return await run()  # an Idempotency-Key is for a change: a query is answered afresh
        return await self.idempotency.guard(request, payload, run, _bearer(request))

    def _is_mutation(self, payload: Any) -> bool:
        """Whether the request's operation is a mutation (the document cache parses it once either way)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return False
        name = payload.get("operationName")
        prepared = self.documents.get(payload["query"]).prepared(name if isinstance(name, str) else None)
        return prepared is not None and prepared.operation.operation is OperationType.MUTATION

    async def _get(self, request: Request) -> Response:
        params = request.query_params
        if "query" not in params:
            if "text/html" in request.headers.get("accept", ""):
                return self.explorer.response()
            return _reply({"errors": [request_error("Missing query.")], "data": None}, 400)
        payload: dict[str, Any] = {"query": params["query"], "operationName": params.get("operationName")}
        if params.get("variables"):
            try:
                payload["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                return _reply({"errors": [request_error("variables is not valid JSON.")], "data": None}, 400)
        return await self._run(request, payload, allow_mutations=False)

    async def _run(self, request: Request, payload: Any, *, allow_mutations: bool) -> Response:
        if (batched := batch_refusal(payload)) is not None:
            return _reply({"errors": [batched], "data": None}, 400)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _reply(
                {"errors": [request_error("The body must be a JSON object with a query string.")], "data": None}, 400
            )
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            return _reply({"errors": [request_error("variables must be a JSON object.")], "data": None}, 400)
        if operation_name is not None and not isinstance(operation_name, str):
            return _reply({"errors": [request_error("operationName must be a string.")], "data": None}, 400)
        outcome = Outcome()
        cached = self.documents.get(payload["query"])
        document, errors, prepared = cached.document, cached.errors, cached.prepared(operation_name)
        operation = prepared.operation if prepared is not None else None
        context = RequestContext(
            services=self.services,
            bearer_token=_bearer(request),
            client_address=request.client.host if request.client else "unknown",
        )
        ticket = await self.guard.admit(context, prepared, variables)
        if ticket.refusal is not None:
            return ticket.refusal
        if errors or document is None:
            invalid = {"errors": [format_error(e, outcome) for e in errors], "data": _null_data(operation)}
            await self.guard.settle(ticket, invalid)
            return _reply(invalid, 200)
        if operation is not None and operation.operation is OperationType.MUTATION and not allow_mutations:
            post_only = request_error("Mutations must be sent with POST.", "METHOD_NOT_ALLOWED")
            refused: dict[str, Any] = {"errors": [post_only], "data": None}
            await self.guard.settle(ticket, refused)
            return _reply(refused, 405)
        if prepared is not None:
            outcome_or_awaitable = execution.run(self.schema, prepared, variables, context)
        else:  # no operation to run: graphql-core says why
            outcome_or_awaitable = execute(
                self.schema, document, variable_values=variables, operation_name=operation_name, context_value=context
            )
        result: ExecutionResult = (
            await outcome_or_awaitable if isawaitable(outcome_or_awaitable) else outcome_or_awaitable
        )
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [format_error(e, outcome, variables or {}) for e in result.errors]
        body["data"] = result.data if result.data is not None else _null_data(operation)
        await self.guard.settle(ticket, body)
        status = 500 if outcome.internal else 503 if outcome.retryable else 200
        response = _reply(body, status)
        if context.issued_token:
            response.headers["Authorization"] = f"Bearer {context.issued_token}"
            response.headers["X-Authorization"] = f"Bearer {context.issued_token}"
        return response


def _bearer(request: Request) -> str | None:
    for header in ("authorization", "x-authorization"):
        value = request.headers.get(header, "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)
