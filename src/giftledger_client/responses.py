"""Reading GraphQL `data` into result objects. A reply of the wrong shape raises `ServerError`
with code `UNEXPECTED_RESPONSE`, never a KeyError or TypeError."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from .errors import CARD_NOT_FOUND_MESSAGE, CardNotFound, ServerError
from .results import Balance, LineItem, PriceModifier, Product, ValueSplit

UNEXPECTED_RESPONSE = "UNEXPECTED_RESPONSE"


def unexpected(what: str) -> ServerError:
    """The error for a reply this client cannot read."""
    return ServerError(f"Unexpected reply from the gift card server: {what}.", code=UNEXPECTED_RESPONSE)


def field(data: object, name: str) -> object:
    """`data[name]`, requiring `data` to be an object that has the key."""
    if not isinstance(data, Mapping) or name not in data:
        raise unexpected(f"missing {name}")
    return data[name]


def obj(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise unexpected(f"{what} is not an object")
    return value


def optional_obj(value: object, what: str) -> Mapping[str, object] | None:
    return None if value is None else obj(value, what)


def items(value: object, what: str) -> Sequence[object]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise unexpected(f"{what} is not a list")
    return value


def integer(value: object, what: str) -> int:
    # Toggle prints some ids as strings ("id": "156").
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
        return int(value)
    raise unexpected(f"{what} is not a whole number")


def whole_numbereger(value: object, what: str) -> int | None:
    return None if value is None else integer(value, what)


def text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise unexpected(f"{what} is not text")


def optional_text(value: object, what: str) -> str | None:
    return None if value is None else text(value, what)


def timestamp(value: object) -> datetime | None:
    """`"2019-05-13 13:11:47"` (UTC, as the contract prints it) or ISO 8601; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def value_split(value: object) -> ValueSplit | None:
    split = optional_obj(value, "ValueSplit")
    if split is None:
        return None
    return ValueSplit(
        tender=integer(split.get("tender", 0), "ValueSplit.tender"),
        discount=integer(split.get("discount", 0), "ValueSplit.discount"),
    )


def line_item(value: object) -> LineItem:
    entry = obj(value, "line item")
    card = optional_obj(entry.get("Card"), "line item Card")
    transaction = optional_obj(entry.get("Transaction"), "line item Transaction")
    return LineItem(
        id=integer(field(entry, "id"), "line item id"),
        value=integer(field(entry, "value"), "line item value"),
        reference=(
            optional_text(transaction.get("merchant_transaction_reference"), "merchant_transaction_reference")
            if transaction is not None
            else None
        ),
        card_reference=optional_text(card.get("card_reference"), "card_reference") if card else None,
        card_balance=whole_numbereger(card.get("balance"), "card balance") if card else None,
        value_split=value_split(entry.get("ValueSplit")),
        created_at=timestamp(entry.get("created_at")),
    )


def line_items(data: object) -> list[LineItem]:
    """`{"LineItems": {"data": [...]}}` -> line items."""
    page = obj(field(data, "LineItems"), "LineItems")
    return [line_item(entry) for entry in items(field(page, "data"), "LineItems.data")]


def balance(data: object) -> Balance:
    """`{"Cards": {"data": [card]}}` -> the first card; an empty list raises `CardNotFound`."""
    page = obj(field(data, "Cards"), "Cards")
    cards = items(field(page, "data"), "Cards.data")
    if not cards:
        raise CardNotFound(CARD_NOT_FOUND_MESSAGE, customer_facing=True)
    card = obj(cards[0], "card")
    return Balance(
        card_reference=text(field(card, "card_reference"), "card_reference"),
        balance=integer(field(card, "balance"), "balance"),
        initial_balance=integer(field(card, "initial_balance"), "initial_balance"),
        created_at=timestamp(card.get("created_at")),
        updated_at=timestamp(card.get("updated_at")),
        value_split=value_split(card.get("ValueSplit")),
    )


def products(data: object) -> list[Product]:
    """`{"Products": [...]}` -> products with their price modifiers."""
    found: list[Product] = []
    for entry in items(field(data, "Products"), "Products"):
        product = obj(entry, "product")
        modifiers = product.get("PriceModifiers") or []
        found.append(
            Product(
                id=integer(field(product, "id"), "product id"),
                name=text(field(product, "name"), "product name"),
                price_modifiers=tuple(
                    PriceModifier(
                        id=integer(field(modifier, "id"), "price modifier id"),
                        price=integer(field(modifier, "price"), "price"),
                        description=optional_text(obj(modifier, "price modifier").get("description"), "description"),
                    )
                    for modifier in items(modifiers, "PriceModifiers")
                ),
            )
        )
    return found
