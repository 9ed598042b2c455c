"""Never charge twice: bounded retries for queries, and reconcile-before-resend for mutations.

Every mutation carries a `merchant_transaction_reference` chosen before the first attempt and kept on every
attempt. When an attempt's outcome is unknown (timeout, dropped connection, HTTP 5xx, `RETRYABLE`, an
unreadable reply) the line items recorded under that reference are looked up first: if there are any, the
mutation was applied and its result is rebuilt from them; if there are none, the same request (same
reference) is sent again. A resend that is refused (typically "Duplicate reference supplied") is looked up
the same way before the refusal is raised: an earlier attempt may have been applied. A reply carrying both
errors and the mutation's data means it ran: it is looked up, never resent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import DuplicateReference, GiftLedgerError, ServerError, TransportError
from .responses import UNEXPECTED_RESPONSE
from .results import LineItem

logger = logging.getLogger("giftledger_client")

T = TypeVar("T")


def new_reference() -> str:
    """A fresh `merchant_transaction_reference` (32 hex digits from uuid4).

    A till that wants crash safety can create it, store it with the sale, then pass it as `reference=`.
    """
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try (`max_attempts` sends) and how long to wait between tries (`delays`, seconds)."""

    max_attempts: int = 3
    delays: tuple[float, ...] = (0.25, 1.0)
    sleep: Callable[[float], None] = time.sleep

    def pause(self, attempt: int) -> None:
        """Wait after failed attempt number `attempt` (1-based)."""
        if self.delays:
            self.sleep(self.delays[min(attempt, len(self.delays)) - 1])


@dataclass(frozen=True)
class Mutation(Generic[T]):
    """One mutation to apply exactly once.

    `send` posts it (same reference every time) and reads the reply; `lookup` lists the line items
    recorded under the reference; `settle` rebuilds the result from those line items, or returns None
    when they are not what this mutation would have created (the reference belongs to something else).
    """

    name: str
    reference: str
    send: Callable[[], T]
    lookup: Callable[[], list[LineItem]]
    settle: Callable[[Sequence[LineItem]], T | None]


def may_be_temporary(error: GiftLedgerError) -> bool:
    """True for failures worth another try: network trouble, HTTP 5xx, `RETRYABLE`."""
    return isinstance(error, TransportError) or (isinstance(error, ServerError) and error.retryable)


def may_have_been_applied(error: GiftLedgerError) -> bool:
    """False only when the request provably never reached the server."""
    return not (isinstance(error, TransportError) and not error.request_sent)


def run_query(policy: RetryPolicy, call: Callable[[], T]) -> T:
    """Run a read-only request, retrying temporary failures up to `policy.max_attempts` times."""
    attempt = 1
    while True:
        try:
            return call()
        except GiftLedgerError as exc:
            if attempt >= policy.max_attempts or not may_be_temporary(exc):
                raise
            logger.warning("giftledger_client: query failed (%s); retrying", exc.code)
            policy.pause(attempt)
            attempt += 1


class _LookupFailed(Exception):
    """The line items could not be listed just now (the outcome stays unknown)."""


def run_mutation(policy: RetryPolicy, mutation: Mutation[T]) -> T:
    """Apply `mutation` at most once, retrying and reconciling as the module docstring describes.

    Errors raised from here carry `mutation.reference` in their `reference` attribute.
    """
    try:
        return _run(policy, mutation)
    except GiftLedgerError as exc:
        if exc.reference is None:
            exc.reference = mutation.reference
        raise


def _run(policy: RetryPolicy, mutation: Mutation[T]) -> T:
    uncertain = False  # an earlier attempt may have been applied
    last_error: GiftLedgerError | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if uncertain:
            try:
                settled = _settle(mutation)
            except _LookupFailed:
                settled = None  # a resend is still safe: the server refuses a reference twice
            if settled is not None:
                return settled
        try:
            return mutation.send()
        except GiftLedgerError as exc:
            if isinstance(exc, ServerError) and exc.code == UNEXPECTED_RESPONSE:
                # The server ran it but the reply is unreadable: look it up, never resend.
                return _settle_or_raise(mutation, exc)
            if not may_be_temporary(exc):
                if uncertain:
                    # A refusal of a resend ("Duplicate reference", "already reversed", even "negative
                    # balance" if the server checks that first) may only mean an earlier attempt was applied.
                    return _settle_or_raise(mutation, exc)
                raise
            last_error = exc
        uncertain = uncertain or may_have_been_applied(last_error)
        logger.warning(
            "giftledger_client: %s %s attempt %d failed (%s)%s",
            mutation.name,
            mutation.reference,
            attempt,
            last_error.code,
            "; reconciling" if uncertain else "",
        )
        if attempt < policy.max_attempts:
            policy.pause(attempt)
    assert last_error is not None
    if uncertain:
        try:
            settled = _settle(mutation)
        except _LookupFailed:
            settled = None
        if settled is not None:
            return settled
    raise last_error


def _settle(mutation: Mutation[T], only_ids: Sequence[int] = ()) -> T | None:
    """The committed result, if line items under the reference show the mutation was applied."""
    try:
        found = mutation.lookup()
    except GiftLedgerError as exc:
        if may_be_temporary(exc):
            raise _LookupFailed from exc
        raise
    if only_ids:
        found = [item for item in found if item.id in only_ids] or found
    if not found:
        return None
    settled = mutation.settle(found)
    if settled is None:
        raise DuplicateReference(line_item_ids=[item.id for item in found], reference=mutation.reference)
    logger.warning("giftledger_client: %s %s was applied; result rebuilt", mutation.name, mutation.reference)
    return settled


def _settle_or_raise(mutation: Mutation[T], error: GiftLedgerError) -> T:
    only_ids = error.line_item_ids if isinstance(error, DuplicateReference) else ()
    try:
        settled = _settle(mutation, only_ids)
    except _LookupFailed:
        settled = None
    if settled is None:
        raise error
    return settled
