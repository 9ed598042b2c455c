"""Named domain errors. Transports map them to their own shapes in one place each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

REQUIRED = "This field is required"
NOT_EXPECTED = "This field is not of an expected value"
INVALID_CARD_REFERENCE = "Must be a valid card reference."
NEGATIVE_BALANCE = "Applying this transaction would have resulted in a negative balance. Transaction not applied."
DUPLICATE_REFERENCE = "Duplicate reference supplied"
CARD_NOT_FOUND = "No card has been found for this account for the card ref supplied. Transaction not applied."
SITE_NOT_RECOGNISED = "The external_site_id supplied was not recognised for this account."
BALANCE_LIMIT = "Applying this transaction would exceed the maximum card balance. Transaction not applied."


class DomainError(Exception):
    """Base of every refusal the services make. `code` is stable; `message` is what a till shows."""

    code = "DOMAIN"
    customer_facing = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, object]:
        """Extra machine-readable facts for the caller (never secrets)."""
        return {}


class ValidationFailed(DomainError):
    """One or more arguments are missing or malformed: `fields` maps argument name to messages."""

    code = "VALIDATION"

    def __init__(self, fields: Mapping[str, Sequence[str]]) -> None:
        super().__init__("validation")
        self.fields = {name: list(messages) for name, messages in fields.items()}

    @classmethod
    def one(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class Unauthorized(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message)


class Forbidden(DomainError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You do not have permission to do this.") -> None:
        super().__init__(message)


class NotFound(DomainError):
    """A record named by id does not exist in this account (or belongs to another one)."""

    code = "NOT_FOUND"


class CardNotFound(DomainError):
    code = "CARD_NOT_FOUND"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(CARD_NOT_FOUND)


class SiteNotRecognised(DomainError):
    code = "SITE_NOT_RECOGNISED"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(SITE_NOT_RECOGNISED)


class NegativeBalance(DomainError):
    code = "NEGATIVE_BALANCE"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(NEGATIVE_BALANCE)


class BalanceLimitExceeded(DomainError):
    """The card's balance would go above the most a balance may hold (`domain.ledger.MAX_BALANCE`)."""

    code = "BALANCE_LIMIT"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(BALANCE_LIMIT)


class DuplicateReference(DomainError):
    """The till's merchant_transaction_reference was used before; nothing was applied."""

    code = "DUPLICATE_REFERENCE"

    def __init__(self, reference: str, line_item_ids: Sequence[int]) -> None:
        super().__init__(DUPLICATE_REFERENCE)
        self.reference = reference
        self.line_item_ids = list(line_item_ids)

    def details(self) -> dict[str, object]:
        return {"merchant_transaction_reference": self.reference, "line_item_ids": self.line_item_ids}


class AlreadyReversed(DomainError):
    code = "ALREADY_REVERSED"
    customer_facing = True

    def __init__(self, line_item_id: int) -> None:
        super().__init__(f"Line item {line_item_id} has already been reversed.")
        self.line_item_id = line_item_id


class Conflict(DomainError):
    """A uniqueness rule of the account (a name, a reference) would be broken."""

    code = "CONFLICT"


class Throttled(DomainError):
    code = "THROTTLED"

    def __init__(self, message: str = "Too many attempts. Try again later.") -> None:
        super().__init__(message)


class Retryable(DomainError):
    """A temporary failure (database unavailable, busy): nothing was applied, safe to retry."""

    code = "RETRYABLE"

    def __init__(self, message: str = "The service is temporarily unavailable. Nothing was applied; retry.") -> None:
        super().__init__(message)
