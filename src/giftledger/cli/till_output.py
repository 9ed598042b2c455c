"""What the till simulator prints: money, tables for people, receipts, and JSON for scripts.

Only `giftledger_client` results come in here; nothing from the server package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from giftledger_client import (
    Adjustment,
    Balance,
    GiftLedgerError,
    LineItem,
    Product,
    Redemption,
    Reversal,
    Sale,
    TerminalSettings,
    ValueSplit,
)

RECEIPT_WIDTH = 42
_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(pence: int, currency: str = "GBP") -> str:
    """`2500` -> `£25.00`; `-1000` -> `-£10.00`; unknown currencies print their code (`CHF 25.00`)."""
    symbol = _SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if pence < 0 else ""
    whole, cents = divmod(abs(pence), 100)
    return f"{sign}{symbol}{whole:,}.{cents:02d}"


def split_text(split: ValueSplit | None, currency: str) -> str:
    if split is None:
        return "-"
    return f"{money(split.tender, currency)} / {money(split.discount, currency)}"


def table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A titled two-column table: labels left, values after them, aligned."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title, *(f"  {label.ljust(width)}  {value}" for label, value in rows)]
    return "\n".join(lines)


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table with a header line and aligned columns."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)])


# -- tables for people ----------------------------------------------------------------------------------


def balance_rows(balance: Balance, currency: str) -> list[tuple[str, str]]:
    return [
        ("Card", balance.card_reference),
        ("Balance", money(balance.balance, currency)),
        ("Initial balance", money(balance.initial_balance, currency)),
        ("Tender / discount", split_text(balance.value_split, currency)),
    ]


def sale_rows(sale: Sale, currency: str) -> list[tuple[str, str]]:
    return [
        ("Reference", sale.reference),
        ("Card", sale.card_reference),
        ("Amount", money(sale.amount, currency)),
        ("Balance", money(sale.balance, currency)),
        ("Order", str(sale.order_id) if sale.order_id is not None else "(confirmed by reference)"),
        ("Line item", str(sale.line_item_id)),
    ]


def adjustment_rows(adjustment: Adjustment, currency: str) -> list[tuple[str, str]]:
    return [
        ("Reference", adjustment.reference),
        ("Card", adjustment.card_reference),
        ("Amount", money(adjustment.amount, currency)),
        ("Balance", money(adjustment.balance, currency)),
        ("Tender / discount", split_text(adjustment.value_split, currency)),
        ("Line item", str(adjustment.line_item_id)),
    ]


def redemption_rows(redemption: Redemption, currency: str) -> list[tuple[str, str]]:
    return [
        ("Reference", redemption.reference or "(nothing taken, nothing sent)"),
        ("Card", redemption.card_reference),
        ("Bill", money(redemption.bill, currency)),
        ("Paid by card", money(redemption.taken, currency)),
        ("Still to pay", money(redemption.remaining_to_pay, currency)),
        ("Balance", money(redemption.balance, currency)),
        ("Tender / discount", split_text(redemption.value_split, currency)),
        ("Line item", str(redemption.line_item_id) if redemption.line_item_id is not None else "-"),
    ]


def reversal_rows(reversal: Reversal, currency: str) -> list[tuple[str, str]]:
    rows = [
        ("Reference", reversal.reference),
        ("Reversed", reversal.original_reference),
        ("Reversed line items", ", ".join(str(item_id) for item_id in reversal.reversed_line_item_ids)),
    ]
    for item in reversal.line_items:
        rows.append(("Card", item.card_reference or "-"))
        rows.append(("  Amount", money(item.value, currency)))
        if item.card_balance is not None:
            rows.append(("  Balance", money(item.card_balance, currency)))
    return rows


def line_items_grid(items: Sequence[LineItem], currency: str) -> str:
    rows = [
        [
            str(item.id),
            item.card_reference or "-",
            money(item.value, currency),
            money(item.card_balance, currency) if item.card_balance is not None else "-",
            item.created_at.strftime("%Y-%m-%d %H:%M:%S") if item.created_at else "-",
        ]
        for item in items
    ]
    return grid(["Line item", "Card", "Amount", "Card balance now", "Created (UTC)"], rows)


def products_grid(products: Sequence[Product], currency: str) -> str:
    rows: list[list[str]] = []
    for product in products:
        if not product.price_modifiers:
            rows.append([str(product.id), product.name, "-", "-", ""])
        for modifier in product.price_modifiers:
            rows.append(
                [
                    str(product.id),
                    product.name,
                    str(modifier.id),
                    money(modifier.price, currency),
                    modifier.description or "",
                ]
            )
    return grid(["Product ID", "Product", "Price modifier ID", "Price", "Description"], rows)


def settings_rows(settings: TerminalSettings, path: str) -> list[tuple[str, str]]:
    return [
        ("Settings file", path),
        ("Endpoint", settings.endpoint),
        ("Account ID", str(settings.account_id)),
        ("Merchant ID", str(settings.merchant_id)),
        ("Username", settings.username),
        ("Password", "(saved)"),
        ("Site reference", settings.site_reference),
        ("Product ID", str(settings.product_id) if settings.product_id is not None else "(not set: cannot sell)"),
        (
            "Validate card number",
            f"on ({settings.card_length} digits starting {settings.card_prefix}, Luhn check digit)"
            if settings.validate_card_number
            else "off",
        ),
        ("Integration", "enabled" if settings.enabled else "disabled"),
        ("Currency", settings.currency),
    ]


# -- JSON -----------------------------------------------------------------------------------------------


def to_json(value: object) -> Any:
    """A result dataclass (or list of them) as JSON-ready values; datetimes as ISO 8601 UTC."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_json(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def settings_json(settings: TerminalSettings, path: str) -> dict[str, Any]:
    """The saved settings without the password."""
    data = settings.to_dict()
    del data["password"]
    return {"config": path, **data}


def error_json(error: GiftLedgerError) -> dict[str, Any]:
    return {
        "error": {
            "type": type(error).__name__,
            "code": error.code,
            "message": error.message,
            "validation": error.validation,
            "customer_facing": error.customer_facing,
            "reference": error.reference,
        }
    }


# -- receipts -------------------------------------------------------------------------------------------


def masked(card_reference: str) -> str:
    """All but the last four digits hidden, for receipts of an existing card."""
    if len(card_reference) <= 4:
        return card_reference
    return "*" * (len(card_reference) - 4) + card_reference[-4:]


def receipt(title: str, site: str, printed_at: datetime, rows: Sequence[tuple[str, str]], reference: str | None) -> str:
    """A till receipt: header, what happened (label left, value right), and the reference to quote."""
    rule = "-" * RECEIPT_WIDTH
    lines = [rule, "GIFT CARD RECEIPT".center(RECEIPT_WIDTH).rstrip(), f"Site: {site}"]
    lines.append(f"Date: {printed_at.strftime('%Y-%m-%d %H:%M')}")
    lines.append(rule)
    lines.append(title.upper())
    for label, value in rows:
        gap = RECEIPT_WIDTH - len(label) - len(value)
        lines.append(f"{label}{' ' * gap}{value}" if gap >= 1 else f"{label}\n  {value}")
    if reference:
        lines.append("Reference")
        lines.append(f"  {reference}")
    lines.append(rule)
    return "\n".join(lines)
