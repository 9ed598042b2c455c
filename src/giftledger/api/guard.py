"""What every GraphQL request goes through around its execution, in one place:

- before it runs (`admit`): when the cost budget is on, who is calling, the request's cost estimate charged
  to the caller's budget (from this process's lease, or through the caller's row, whose statement confirms
  the caller for the resolvers: services/throttle.py), and a refusal (HTTP 429, code THROTTLED) when the
  budget is short;
- after it ran (`settle`): who called (confirmed by then, by a resolver or a till's own statement, or now),
  credits the request did not use given back (a request whose caller turned out revoked gets its whole charge
  back, and is charged to its client address instead), `extensions.cost` added to the reply, "Did you mean" hints
  removed for callers without a valid token, and one audit record per mutation (written behind the
  request, in batches: `services.audit.AuditQueue`), and the request's log line told the operation, the
  account and the outcome (request_log.py).

The rules live in `services` (budget, audit); this module only reads the request and the reply."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableValues,
    get_argument_values,
)
from starlette.responses import Response

from giftledger import request_log
from giftledger.api import cost, limits
from giftledger.api.audit import request_facts
from giftledger.api.context import RequestContext
from giftledger.api.execution import Prepared
from giftledger.domain.errors import Retryable, Unauthorized
from giftledger.services import audit, throttle
from giftledger.services.context import Principal, Services
from giftledger.services.throttle import BudgetStatus

log = logging.getLogger("giftledger.api")

THROTTLED_CODE = "THROTTLED"


@dataclass
class Ticket:
    """One request's admission: who, what it may cost, what it was charged."""

    context: RequestContext
    principal: Principal | None
    prepared: Prepared | None  # None: no document, or no operation to run
    variables: dict[str, Any]
    requested: int
    budget: BudgetStatus | None = None  # None: the budget is off, or could not be reached
    refusal: Response | None = None

    @property
    def operation(self) -> OperationDefinitionNode | None:
        return self.prepared.operation if self.prepared is not None else None

    @property
    def analysis(self) -> cost.Analysis | None:
        return self.prepared.analysis if self.prepared is not None else None


class Guard:
    def __init__(self, services: Services, schema: GraphQLSchema) -> None:
        self.services = services
        self.schema = schema
        self.audit = audit.AuditQueue(services)
        self.budget = throttle.Budget(services)  # this process's leases of callers' budgets

    async def close(self) -> None:
        """Give back the budget's leases and write the audit records still waiting (on shutdown)."""
        await self.budget.close()
        await self.audit.close()

    async def admit(
        self, context: RequestContext, prepared: Prepared | None, variables: dict[str, Any] | None
    ) -> Ticket:
        """`prepared`: the request's operation (None when its document did not parse or names none)."""
        variables = variables or {}
        requested = (
            prepared.analysis.requested_cost(self.schema, prepared.document, variables)
            if prepared is not None
            else cost.MINIMUM_COST
        )
        # Who called is settled afterwards (`settle`), unless the budget confirms it first.
        ticket = Ticket(context, None, prepared, variables, requested)
        if not throttle.enabled(self.services):
            return ticket
        try:
            ticket.budget, ticket.principal = await self._spend(context, ticket.requested)
        except Retryable as error:  # the budget fails open: the request fails on its own
            log.warning("cost budget unavailable: %s", type(error).__name__)
            return ticket
        if not ticket.budget.charged:
            ticket.refusal = self._refuse(ticket, ticket.budget)
        return ticket

    async def _spend(self, context: RequestContext, cost: int) -> tuple[BudgetStatus, Principal | None]:
        """Charge the request to its caller, or to its client address when it has no valid (or a revoked)
        token. The caller is confirmed when the spend's statement checked its credential (a spend from the
        lease checks nothing: the request's own statements do)."""
        caller = await context.budget_caller()
        if caller is not None:
            subject = throttle.subject_of(caller, context.client_address)
            try:
                status = await self.budget.spend(subject, cost, caller=caller)
            except Unauthorized:
                context.spent(caller, live=False)
            else:
                if not status.checked:
                    return status, None
                context.spent(caller, live=True)
                return status, caller
        return await self.budget.spend(throttle.subject_of(None, context.client_address), cost), None

    async def settle(self, ticket: Ticket, body: dict[str, Any]) -> None:
        """Finish a reply that ran (or was refused by validation): in place on `body`."""
        ticket.principal = await ticket.context.settled_caller()
        errors = body.get("errors")
        if ticket.principal is None and isinstance(errors, list):
            limits.without_suggestions(errors)
        prepared = ticket.prepared
        actual = (
            cost.actual_cost(prepared.document, prepared.operation, body.get("data"), prepared.analysis.fields)
            if prepared is not None
            else cost.MINIMUM_COST
        )
        if ticket.budget is not None:
            ticket.budget = await self._settle_budget(ticket, ticket.budget, actual)
        body["extensions"] = {**(body.get("extensions") or {}), "cost": _cost(ticket, actual)}
        self._audit(ticket, body)
        _note(ticket, body)

    async def _settle_budget(self, ticket: Ticket, status: BudgetStatus, actual: int) -> BudgetStatus | None:
        """The request's charge made its actual cost. Charged to a caller whose credential the request found
        revoked (or could not confirm), it spends nothing of the caller's budget and is charged to its client
        address, as a revoked token's request is."""
        if status.credential is None or ticket.principal is not None:
            return self.budget.settle(status, actual)
        self.budget.revoked(status)
        try:
            return await self.budget.spend(throttle.subject_of(None, ticket.context.client_address), actual)
        except Retryable as error:
            log.warning("cost budget unavailable: %s", type(error).__name__)
            return None

    def _refuse(self, ticket: Ticket, budget: BudgetStatus) -> Response:
        wait = budget.retry_after_seconds
        message = f"Throttled: this request costs {budget.cost} and the query cost budget holds "
        message += f"{budget.currently_available}. Try again in {wait} seconds."
        body: dict[str, Any] = {
            "errors": [
                {
                    "message": message,
                    "customer_facing": False,
                    "extensions": {"code": THROTTLED_CODE, "reason": "cost", "retry_after_seconds": wait},
                }
            ],
            "data": _null_data(ticket),
            "extensions": {"cost": _cost(ticket, 0)},
        }
        self._audit(ticket, body)
        _note(ticket, body)
        return Response(
            orjson.dumps(body),
            status_code=429,
            media_type="application/json",
            headers={"Retry-After": str(wait)},
        )

    def _audit(self, ticket: Ticket, body: dict[str, Any]) -> None:
        """One record per refused mutation field (its result is null). An accepted one was recorded by its use
        case, in the change's own transaction (api/audit.py, services/audit/recording.py)."""
        operation, analysis = ticket.operation, ticket.analysis
        if operation is None or analysis is None or operation.operation is not OperationType.MUTATION:
            return
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        mutation_type = self.schema.mutation_type
        variable_values = _as_sent(ticket.variables)
        for key, nodes in analysis.fields.items():
            if data.get(key) is not None:
                continue
            related = [e for e in errors if not e.get("path") or e["path"][0] == key] or errors
            code = str((related[0].get("extensions") or {}).get("code", "")) if related else None
            field = mutation_type.fields.get(nodes[0].name.value) if mutation_type else None
            facts = request_facts(_arguments(field, nodes[0], variable_values))
            self.audit.put(
                audit.Attempt(
                    ticket.principal,
                    nodes[0].name.value,
                    audit.REFUSED,
                    datetime.now(UTC),
                    where=facts.where,
                    card_references=facts.card_references,
                    line_item_ids=facts.line_item_ids,
                    error_code=code or None,
                    client_address=ticket.context.client_address,
                    detail=facts.detail or None,
                )
            )


def _note(ticket: Ticket, body: dict[str, Any]) -> None:
    """The request's log line: its root fields (the schema's names, never the caller's text), the account it
    acted for, and the outcome (the first error's code when refused)."""
    fields: dict[str, Any] = {}
    if ticket.analysis is not None:
        fields["operation"] = ",".join(nodes[0].name.value for nodes in ticket.analysis.fields.values())
    if ticket.principal is not None:
        fields["account_id"] = ticket.principal.account_id
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if errors:
        fields["outcome"] = audit.REFUSED
        if code := (errors[0].get("extensions") or {}).get("code"):
            fields["code"] = str(code)
    else:
        fields["outcome"] = audit.ACCEPTED
    request_log.note(**fields)


def _null_data(ticket: Ticket) -> dict[str, None] | None:
    if ticket.analysis is None:
        return None
    return dict.fromkeys(ticket.analysis.fields) or None


def _cost(ticket: Ticket, actual: int) -> dict[str, Any]:
    facts: dict[str, Any] = {"requestedQueryCost": ticket.requested, "actualQueryCost": actual}
    if ticket.budget is not None:
        facts["throttleStatus"] = {
            "maximumAvailable": ticket.budget.maximum,
            "currentlyAvailable": ticket.budget.currently_available,
            "restoreRate": round(ticket.budget.restore_per_second, 4),
        }
    return facts


def _as_sent(variables: dict[str, Any]) -> VariableValues:
    """The request's variable values as `get_argument_values` takes them, not coerced: the audit records what
    a request asked for, also when its values did not coerce, and coercing them again after the execution did
    would cost a mutation ~25 us."""
    return VariableValues(sources={}, coerced=variables)


def _arguments(field: Any, node: FieldNode, variable_values: Any) -> dict[str, Any]:
    if field is None:
        return {}
    try:
        return get_argument_values(field, node, variable_values)
    except (GraphQLError, TypeError, ValueError):
        return {}
