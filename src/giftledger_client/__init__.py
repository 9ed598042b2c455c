"""giftledger_client: a POS library for Toggle-compatible gift card endpoints (GraphQL over HTTP).

Build `TerminalSettings`, then a `GiftCardClient`, and call its operations::

    settings = TerminalSettings(endpoint="https://api.mytoggle.io/graphql", account_id=1, username="till",
                                password="...", site_reference="till-1", merchant_id=26, product_id=244)
    with GiftCardClient(settings) as client:
        redemption = client.redeem("6301190060337576946", bill=2000)

Everything raised is a `GiftLedgerError`; see `errors` for the tree.
"""

from .card_numbers import check_card_number, luhn_check_digit
from .client import GiftCardClient
from .errors import (
    AlreadyReversed,
    AuthenticationFailed,
    CardNotFound,
    ConfigurationError,
    DuplicateReference,
    GiftLedgerError,
    InsufficientBalance,
    IntegrationDisabled,
    InvalidCardNumber,
    ServerError,
    SiteNotRecognised,
    Throttled,
    TransactionNotFound,
    TransportError,
    ValidationFailed,
)
from .reconciliation import new_reference
from .results import (
    Adjustment,
    Balance,
    LineItem,
    PriceModifier,
    Product,
    Redemption,
    Reversal,
    Sale,
    ValueSplit,
)
from .settings import TerminalSettings

__version__ = "0.1.0"

__all__ = [
    "Adjustment",
    "AlreadyReversed",
    "AuthenticationFailed",
    "Balance",
    "CardNotFound",
    "ConfigurationError",
    "DuplicateReference",
    "GiftCardClient",
    "GiftLedgerError",
    "InsufficientBalance",
    "IntegrationDisabled",
    "InvalidCardNumber",
    "LineItem",
    "PriceModifier",
    "Product",
    "Redemption",
    "Reversal",
    "Sale",
    "ServerError",
    "SiteNotRecognised",
    "TerminalSettings",
    "Throttled",
    "TransactionNotFound",
    "TransportError",
    "ValidationFailed",
    "ValueSplit",
    "check_card_number",
    "luhn_check_digit",
    "new_reference",
]
