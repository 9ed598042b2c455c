"""Fixed reference data that the contract names by id: sales channels, fulfilment methods, currencies,
discount types, and the POS merchants (seeded by a migration with these ids)."""

from __future__ import annotations

from types import MappingProxyType

SALES_CHANNELS = MappingProxyType({3: "In store", 5: "B2B", 7: "Guest Gratuity"})
IN_STORE = 3
GUEST_GRATUITY = 7

FULFILMENT_METHODS = MappingProxyType(
    {1: "Email", 2: "Postal", 3: "In venue", 7: "Printed on receipt", 8: "Third party"}
)
EMAIL_FULFILMENT = 1

# currency code -> (currency id, name, minor units per major unit)
CURRENCIES = MappingProxyType({"GBP": (1, "Sterling", 100)})
CURRENCY_IDS = MappingProxyType({1: "GBP"})

DISCOUNT_TYPES = MappingProxyType({1: "FOC", 3: "Promotion"})

# POS companies with the ids Toggle's partner guides give; PointOne and Polaris have ids of our own.
MERCHANTS = MappingProxyType(
    {
        6: "Access",
        12: "Centegra",
        13: "Jigsaw",
        19: "Vita Mojo",
        26: "Other (third party)",
        32: "Cunninghams",
        41: "iiko / Syrve",
        60: "PointOne",
        61: "Polaris",
    }
)
POINTONE = 60
POLARIS = 61


def currency_code(value: str | int | None) -> str | None:
    """The ISO code for a currency given as "GBP" or as its id (1 or "1"); None when unknown."""
    if value is None:
        return None
    text = str(value).strip().upper()
    if text in CURRENCIES:
        return text
    if text.isdigit():
        return CURRENCY_IDS.get(int(text))
    return None
