"""`GiftCardClient`: the operations a till performs against a Toggle-compatible endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType

import httpx

from . import documents, responses
from .card_numbers import check_card_number
from .errors import (
    ConfigurationError,
    IntegrationDisabled,
    TransactionNotFound,
    ValidationFailed,
    describe_validation,
)
from .reconciliation import Mutation, RetryPolicy, new_reference, run_mutation, run_query
from .results import Adjustment, Balance, LineItem, Product, Redemption, Reversal, Sale, ValueSplit
from .settings import TerminalSettings
from .transport import GraphQLSession


class GiftCardClient:
    """A till's gift card client. Synchronous; one instance per terminal (not for concurrent use).

    Logs in on the first operation. Every sale, top-up, redemption and reversal carries a
    `merchant_transaction_reference` (yours via `reference=`, else a new uuid4 hex) and is applied at most
    once, even when a reply is lost: see `reconciliation`.

    Args:
        settings: the terminal's settings.
        transport: an httpx transport (tests pass `httpx.MockTransport`); default: real HTTP.
        max_attempts: how many times a request may be sent when the server is unreachable or busy.
        retry_delays: seconds to wait after the 1st, 2nd, ... failed attempt (the last value repeats).
        sleep: the function used to wait (tests pass a no-op).
    """

    def __init__(
        self,
        settings: TerminalSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = 3,
        retry_delays: Sequence[float] = (0.25, 1.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(settings, TerminalSettings):
            raise ConfigurationError("settings must be a TerminalSettings.")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigurationError("max_attempts must be a whole number of at least 1.")
        delays = tuple(float(delay) for delay in retry_delays)
        if any(delay < 0 for delay in delays):
            raise ConfigurationError("retry_delays must not be negative.")
        self._settings = settings
        self._policy = RetryPolicy(max_attempts=max_attempts, delays=delays, sleep=sleep)
        self._session = GraphQLSession(settings, transport=transport)

    @property
    def settings(self) -> TerminalSettings:
        """The terminal settings this client was built with."""
        return self._settings

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()

    def __enter__(self) -> GiftCardClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- operations -------------------------------------------------------------------------------------

    def log_in(self) -> None:
        """Log in now (a till's "test connection"); operations otherwise log in when first needed."""
        self._require_enabled()
        run_query(self._policy, self._session.log_in)

    def check_balance(self, card: str) -> Balance:
        """The card's balance. Raises `CardNotFound` when the account has no such card."""
        self._require_enabled()
        card_reference = self._card_number(card)
        return self._balance(card_reference)

    def products(self) -> list[Product]:
        """The account's products with their price modifiers (preset values)."""
        self._require_enabled()
        data = run_query(
            self._policy,
            lambda: self._session.execute(documents.PRODUCTS, {"account_id": self._settings.account_id}),
        )
        return responses.products(data)

    def line_items(self, reference: str) -> list[LineItem]:
        """The line items recorded under a `merchant_transaction_reference` (empty if none)."""
        self._require_enabled()
        return self._line_items(_require_reference(reference, "merchant_transaction_reference"))

    def sell_card(self, card_reference: str, amount: int, *, reference: str | None = None) -> Sale:
        """Sell (activate) a physical card for `amount` pence: `createOrder`, fulfilment "in venue"."""
        self._require_enabled()
        _require_amount(amount, "amount")
        number = self._card_number(card_reference)
        product_id = self._require_product()
        item: dict[str, object] = {
            "product_id": product_id,
            "card_reference": number,
            "custom_price_modifier_value": amount,
            "fulfilment_method_id": documents.FULFILMENT_IN_VENUE,
        }
        return self._sell(item, amount, number, reference)

    def sell_digital_card(self, amount: int, email: str, *, reference: str | None = None) -> Sale:
        """Sell a digital card for `amount` pence to `email` (its fulfilment email); the server generates the number.

        The server queues the card's e-gift email to `email` in the sale's own transaction (so it exists if, and
        only if, the sale went through) and its outbox sender delivers it afterwards, retrying while it fails;
        the sale's reply does not wait for it, so a `Sale` returned means the email is queued, not yet received.
        """
        self._require_enabled()
        _require_amount(amount, "amount")
        if not isinstance(email, str) or "@" not in email.strip() or len(email.strip()) < 3:
            raise _invalid("fulfilment_email", "Must be an email address.")
        product_id = self._require_product()
        item: dict[str, object] = {
            "product_id": product_id,
            "custom_price_modifier_value": amount,
            "fulfilment_method_id": documents.FULFILMENT_EMAIL,
            "fulfilment_email": email.strip(),
            "generate_card_reference": True,
        }
        return self._sell(item, amount, None, reference)

    def top_up(self, card: str, amount: int, *, reference: str | None = None) -> Adjustment:
        """Add `amount` pence to the card (`createBalanceAdjustment` with a positive value)."""
        self._require_enabled()
        _require_amount(amount, "amount")
        number = self._card_number(card)
        return self._adjust(number, amount, _reference_or_new(reference))

    def redeem(self, card: str, bill: int, *, reference: str | None = None) -> Redemption:
        """Pay towards `bill` pence from the card: takes min(balance, bill), never more.

        Checks the balance first; an empty card sends nothing (`taken` 0). Raises `InsufficientBalance` if
        the balance fell between the check and the debit (another till); nothing is applied then.
        """
        self._require_enabled()
        _require_amount(bill, "bill")
        number = self._card_number(card)
        ref = _reference_or_new(reference)
        current = self._balance(number)
        taken = min(current.balance, bill)
        if taken <= 0:
            return Redemption(
                reference=None,
                card_reference=current.card_reference,
                bill=bill,
                taken=0,
                remaining_to_pay=bill,
                balance=current.balance,
                line_item_id=None,
                value_split=None,
            )
        adjustment = self._adjust(number, -taken, ref)
        return Redemption(
            reference=adjustment.reference,
            card_reference=adjustment.card_reference,
            bill=bill,
            taken=taken,
            remaining_to_pay=bill - taken,
            balance=adjustment.balance,
            line_item_id=adjustment.line_item_id,
            value_split=adjustment.value_split,
        )

    def reverse(self, reference: str, *, reversal_reference: str | None = None) -> Reversal:
        """Reverse every line item of the transaction `reference` (`createReversal`).

        The reversal's own reference is `reversal_reference`, default `reference + "-REVERSAL"`. Raises
        `TransactionNotFound` when no line items carry `reference`.
        """
        self._require_enabled()
        original = _require_reference(reference, "merchant_transaction_reference")
        own = (
            _require_reference(reversal_reference, "reversal_reference")
            if reversal_reference is not None
            else f"{original}-REVERSAL"
        )
        targets = self._line_items(original)
        if not targets:
            raise TransactionNotFound(f"No transaction has the reference {original}.", reference=original)
        target_ids = tuple(item.id for item in targets)
        variables: dict[str, object] = {
            "ReversalItems": [{"line_item_id": item_id, "shipping_refund": False} for item_id in target_ids],
            "merchant_transaction_reference": own,
            "unit_epos_reference": self._settings.site_reference,
            "merchant_id": self._settings.merchant_id,
        }

        def send() -> Reversal:
            data = self._session.execute(documents.CREATE_REVERSAL, variables)
            reversal = responses.obj(responses.field(data, "createReversal"), "createReversal")
            created = responses.items(responses.field(reversal, "LineItems"), "createReversal.LineItems")
            return Reversal(own, original, target_ids, tuple(responses.line_item(entry) for entry in created))

        def settle(found: Sequence[LineItem]) -> Reversal:
            return Reversal(own, original, target_ids, tuple(found))

        return run_mutation(
            self._policy,
            Mutation("createReversal", own, send, lambda: self._line_items_once(own), settle),
        )

    # -- shared steps -----------------------------------------------------------------------------------

    def _require_enabled(self) -> None:
        if not self._settings.enabled:
            raise IntegrationDisabled("The gift card integration is disabled on this terminal.")

    def _require_product(self) -> int:
        if self._settings.product_id is None:
            raise ConfigurationError("Set product_id in the terminal settings to sell gift cards.")
        return self._settings.product_id

    def _card_number(self, number: str) -> str:
        settings = self._settings
        return check_card_number(
            number,
            validate=settings.validate_card_number,
            prefix=settings.card_prefix,
            length=settings.card_length,
        )

    def _balance(self, card_reference: str) -> Balance:
        variables = {"card_reference": card_reference, "page": 1, "limit": 1}
        data = run_query(self._policy, lambda: self._session.execute(documents.CARD_BALANCE, variables))
        return responses.balance(data)

    def _line_items(self, reference: str) -> list[LineItem]:
        return run_query(self._policy, lambda: self._line_items_once(reference))

    def _line_items_once(self, reference: str) -> list[LineItem]:
        # Used as is (one attempt) while reconciling: the mutation's own loop bounds the retries.
        variables = {
            "page": 1,
            "limit": documents.LINE_ITEMS_PAGE_SIZE,
            "merchant_transaction_reference": reference,
        }
        return responses.line_items(self._session.execute(documents.LINE_ITEMS, variables))

    def _matches_card(self, item: LineItem, card_reference: str) -> bool:
        # With validation off the number may be an alias the server stores under another number.
        return not self._settings.validate_card_number or item.card_reference == card_reference

    def _sell(self, item: dict[str, object], amount: int, number: str | None, reference: str | None) -> Sale:
        ref = _reference_or_new(reference)
        settings = self._settings
        variables: dict[str, object] = {
            "account_id": settings.account_id,
            "merchant_id": settings.merchant_id,
            "order_items": [item],
            "currency": settings.currency,
            "group_fulfilment": True,
            "total": amount,
            "sales_channel_id": documents.SALES_CHANNEL_IN_STORE,
            "unit_epos_reference": settings.site_reference,
            "merchant_transaction_reference": ref,
        }

        def send() -> Sale:
            data = self._session.execute(documents.CREATE_ORDER, variables)
            order = responses.obj(responses.field(data, "createOrder"), "createOrder")
            created = responses.items(responses.field(order, "LineItems"), "createOrder.LineItems")
            if not created:
                raise responses.unexpected("createOrder returned no line items")
            sold = responses.line_item(created[0])
            return _sale(ref, responses.integer(responses.field(order, "id"), "order id"), sold)

        def settle(found: Sequence[LineItem]) -> Sale | None:
            for candidate in found:
                if candidate.value == amount and (number is None or self._matches_card(candidate, number)):
                    return _sale(ref, None, candidate)
            return None

        return run_mutation(
            self._policy, Mutation("createOrder", ref, send, lambda: self._line_items_once(ref), settle)
        )

    def _adjust(self, card_reference: str, value: int, ref: str) -> Adjustment:
        settings = self._settings
        variables: dict[str, object] = {
            "currency": settings.currency,
            "card_reference": card_reference,
            "value": value,
            "unit_epos_reference": settings.site_reference,
            "merchant_id": settings.merchant_id,
            "merchant_transaction_reference": ref,
        }

        def send() -> Adjustment:
            data = self._session.execute(documents.CREATE_BALANCE_ADJUSTMENT, variables)
            adjustment = responses.obj(responses.field(data, "createBalanceAdjustment"), "createBalanceAdjustment")
            entry = responses.line_item(responses.field(adjustment, "LineItem"))
            split = responses.value_split(adjustment.get("ValueSplit")) or entry.value_split
            amount = responses.integer(adjustment.get("value", entry.value), "adjustment value")
            return self._adjustment(ref, card_reference, amount, entry, split)

        def settle(found: Sequence[LineItem]) -> Adjustment | None:
            for candidate in found:
                if candidate.value == value and self._matches_card(candidate, card_reference):
                    return self._adjustment(ref, card_reference, value, candidate, candidate.value_split)
            return None

        return run_mutation(
            self._policy,
            Mutation("createBalanceAdjustment", ref, send, lambda: self._line_items_once(ref), settle),
        )

    def _adjustment(
        self, ref: str, card_reference: str, amount: int, entry: LineItem, split: ValueSplit | None
    ) -> Adjustment:
        balance = entry.card_balance
        if balance is None:
            balance = self._balance(card_reference).balance
        return Adjustment(
            reference=ref,
            line_item_id=entry.id,
            card_reference=entry.card_reference or card_reference,
            amount=amount,
            balance=balance,
            value_split=split,
        )


def _sale(ref: str, order_id: int | None, entry: LineItem) -> Sale:
    if entry.card_reference is None or entry.card_balance is None:
        raise responses.unexpected("the sold line item has no Card")
    return Sale(
        reference=ref,
        order_id=order_id,
        line_item_id=entry.id,
        card_reference=entry.card_reference,
        amount=entry.value,
        balance=entry.card_balance,
    )


def _invalid(field: str, message: str) -> ValidationFailed:
    validation = {field: [message]}
    return ValidationFailed(describe_validation(validation), validation=validation)


def _require_amount(amount: object, field: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise _invalid(field, "Must be a whole number of pence greater than zero.")


def _require_reference(reference: object, field: str) -> str:
    if not isinstance(reference, str) or not reference.strip():
        raise _invalid(field, "Must not be empty.")
    return reference.strip()


def _reference_or_new(reference: str | None) -> str:
    if reference is None:
        return new_reference()
    return _require_reference(reference, "merchant_transaction_reference")
