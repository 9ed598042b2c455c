"""The exception tree: one base class, and one subclass per situation a till handles differently.

Everything this library raises is a `GiftLedgerError`. `str(error)` is the text to show the operator: the
server's own message, or, for a validation refusal, the field messages joined
(`"currency: This field is required"`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The messages a Toggle-compatible server sends (Toggle's troubleshooting guide). Used only when the server
# sends no `extensions.code`, as Toggle itself does not.
UNAUTHORIZED_MESSAGE = "Unauthorized"
VALIDATION_MESSAGE = "validation"
NEGATIVE_BALANCE_MESSAGE = (
    "Applying this transaction would have resulted in a negative balance. Transaction not applied."
)
DUPLICATE_REFERENCE_MESSAGE = "Duplicate reference supplied"
CARD_NOT_FOUND_MESSAGE = "No card has been found for this account for the card ref supplied. Transaction not applied."
SITE_NOT_RECOGNISED_MESSAGE = "The external_site_id supplied was not recognised for this account."


class GiftLedgerError(Exception):
    """Base of every error raised by `giftledger_client`.

    Attributes:
        message: the text to show; also what `str()` returns.
        code: the server's `extensions.code` when it sent one, otherwise the class's own code
            (for example `"INVALID_CARD_NUMBER"`), or None.
        validation: field name -> messages, as the server sent them (empty when not a validation error).
        customer_facing: the server's flag saying the message may be shown to the guest.
        reference: the `merchant_transaction_reference` of the operation that failed, when there was one.
            After a `TransportError` or `ServerError` on a sale, top-up, redemption or reversal, the
            outcome on the server may be unknown: `GiftCardClient.line_items(reference)` tells.
    """

    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        validation: Mapping[str, Sequence[str]] | None = None,
        customer_facing: bool = False,
        reference: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.validation: dict[str, list[str]] = {
            field: list(messages) for field, messages in (validation or {}).items()
        }
        self.customer_facing = customer_facing
        self.reference = reference

    def __str__(self) -> str:
        return self.message


class ConfigurationError(GiftLedgerError):
    """The terminal settings are incomplete or wrong (checked before anything is sent)."""

    default_code = "CONFIGURATION"


class IntegrationDisabled(GiftLedgerError):
    """The terminal's gift card integration is switched off; nothing was sent."""

    default_code = "INTEGRATION_DISABLED"


class InvalidCardNumber(GiftLedgerError):
    """The card number failed the terminal's check (digits, length, prefix, check digit); nothing was sent."""

    default_code = "INVALID_CARD_NUMBER"


class AuthenticationFailed(GiftLedgerError):
    """The API username or password was refused, or the server refused the token twice in a row."""

    default_code = "UNAUTHENTICATED"


class ValidationFailed(GiftLedgerError):
    """An argument was missing or malformed; `validation` maps each field to its messages."""

    default_code = "VALIDATION"


class CardNotFound(GiftLedgerError):
    """No card with that number exists for this account."""

    default_code = "CARD_NOT_FOUND"


class InsufficientBalance(GiftLedgerError):
    """The card's balance does not cover the debit; nothing was applied."""

    default_code = "NEGATIVE_BALANCE"


class SiteNotRecognised(GiftLedgerError):
    """The terminal's site reference is not configured as an EPOS reference on the account."""

    default_code = "SITE_NOT_RECOGNISED"


class DuplicateReference(GiftLedgerError):
    """The `merchant_transaction_reference` was used before.

    `line_item_ids` are the line items the first request with that reference created (when the server says).
    """

    default_code = "DUPLICATE_REFERENCE"

    def __init__(
        self,
        message: str = DUPLICATE_REFERENCE_MESSAGE,
        *,
        line_item_ids: Sequence[int] = (),
        code: str | None = None,
        validation: Mapping[str, Sequence[str]] | None = None,
        customer_facing: bool = False,
        reference: str | None = None,
    ) -> None:
        super().__init__(
            message, code=code, validation=validation, customer_facing=customer_facing, reference=reference
        )
        self.line_item_ids: tuple[int, ...] = tuple(line_item_ids)


class TransactionNotFound(GiftLedgerError):
    """No line items carry the given `merchant_transaction_reference`."""

    default_code = "TRANSACTION_NOT_FOUND"


class AlreadyReversed(GiftLedgerError):
    """The transaction (or one of its line items) has already been reversed."""

    default_code = "ALREADY_REVERSED"


class Throttled(GiftLedgerError):
    """The server is rate-limiting this API user; try again later."""

    default_code = "THROTTLED"


class TransportError(GiftLedgerError):
    """The server could not be reached, or its reply was lost (timeout, dropped connection).

    `request_sent` is False only when the request provably never left (the connection was never made).
    """

    default_code = "TRANSPORT"

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool = True,
        code: str | None = None,
        reference: str | None = None,
    ) -> None:
        super().__init__(message, code=code, reference=reference)
        self.request_sent = request_sent


class ServerError(GiftLedgerError):
    """The server failed (HTTP 5xx, an internal error, or a reply this client cannot read).

    `retryable` is True when the server said it was busy or unavailable (HTTP 5xx, `RETRYABLE`).
    """

    default_code = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        code: str | None = None,
        customer_facing: bool = False,
        reference: str | None = None,
    ) -> None:
        super().__init__(message, code=code, customer_facing=customer_facing, reference=reference)
        self.retryable = retryable


def describe_validation(validation: Mapping[str, Sequence[str]]) -> str:
    """`{"currency": ["This field is required"]}` -> `"currency: This field is required"` (joined by "; ")."""
    return "; ".join(f"{field}: {message}" for field, messages in validation.items() for message in messages)


_BY_CODE: dict[str, type[GiftLedgerError]] = {
    "UNAUTHENTICATED": AuthenticationFailed,
    "FORBIDDEN": AuthenticationFailed,
    "VALIDATION": ValidationFailed,
    "NEGATIVE_BALANCE": InsufficientBalance,
    "CARD_NOT_FOUND": CardNotFound,
    "SITE_NOT_RECOGNISED": SiteNotRecognised,
    "DUPLICATE_REFERENCE": DuplicateReference,
    "ALREADY_REVERSED": AlreadyReversed,
    "THROTTLED": Throttled,
    "RETRYABLE": ServerError,
    "GRAPHQL": ServerError,
    "INTERNAL": ServerError,
}

_BY_MESSAGE: dict[str, type[GiftLedgerError]] = {
    UNAUTHORIZED_MESSAGE: AuthenticationFailed,
    NEGATIVE_BALANCE_MESSAGE: InsufficientBalance,
    DUPLICATE_REFERENCE_MESSAGE: DuplicateReference,
    CARD_NOT_FOUND_MESSAGE: CardNotFound,
    SITE_NOT_RECOGNISED_MESSAGE: SiteNotRecognised,
}


def error_from_graphql(error: object) -> GiftLedgerError:
    """Map one entry of a GraphQL response's `errors` list to the exception tree.

    `extensions.code` decides when present and known; otherwise the exact message does (Toggle sends no
    codes); a non-empty `validation` object means `ValidationFailed`; anything else is a plain
    `GiftLedgerError` carrying the server's message.
    """
    entry = error if isinstance(error, Mapping) else {}
    raw_message = entry.get("message")
    message = raw_message if isinstance(raw_message, str) and raw_message else "The server reported an error."
    extensions = entry.get("extensions")
    extensions = extensions if isinstance(extensions, Mapping) else {}
    raw_code = extensions.get("code")
    code = raw_code if isinstance(raw_code, str) else None
    validation = _read_validation(entry.get("validation"))
    customer_facing = entry.get("customer_facing") is True

    cls = _BY_CODE.get(code) if code is not None else None
    if cls is None:
        cls = _BY_MESSAGE.get(message)
    if cls is None and validation:
        cls = ValidationFailed
    if cls is None:
        cls = GiftLedgerError
    if validation:
        message = describe_validation(validation)

    if cls is DuplicateReference:
        ids = extensions.get("line_item_ids", entry.get("line_item_ids"))
        key = "merchant_transaction_reference"
        reference = extensions.get(key) or entry.get(key)
        return DuplicateReference(
            message,
            line_item_ids=_read_ids(ids),
            code=code,
            validation=validation,
            customer_facing=customer_facing,
            reference=reference if isinstance(reference, str) else None,
        )
    if cls is ServerError:
        return ServerError(message, retryable=code == "RETRYABLE", code=code, customer_facing=customer_facing)
    return cls(message, code=code, validation=validation, customer_facing=customer_facing)


def _read_validation(value: object) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    fields: dict[str, list[str]] = {}
    for field, messages in value.items():
        if isinstance(messages, str):
            fields[str(field)] = [messages]
        elif isinstance(messages, Sequence):
            fields[str(field)] = [str(message) for message in messages]
    return fields


def _read_ids(value: object) -> list[int]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    ids: list[int] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        elif isinstance(item, str) and item.isascii() and item.isdigit():
            ids.append(int(item))
    return ids
