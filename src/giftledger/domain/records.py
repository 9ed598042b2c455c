"""Plain rows that storage reads and services and transports show (read models: data, no rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CardRow:
    id: int
    account_id: int
    card_reference: str
    alias: str | None
    currency: str
    status: str
    balance: int
    tender_balance: int
    discount_balance: int
    initial_balance: int
    product_id: int | None
    product_name: str | None
    contact_id: int | None
    expiry_time: datetime | None
    created_at: datetime
    updated_at: datetime
    validity_start_time: datetime | None = None  # None: usable once sold (domain/validity.py)
    blocked_reason: str | None = None  # None: not blocked (domain.validity.BlockReason)
    blocked_at: datetime | None = None


@dataclass(frozen=True)
class LineItemRow:
    id: int
    account_id: int
    card_id: int
    transaction_id: int
    order_id: int | None
    type_id: int
    value: int
    tender: int
    discount: int
    site_id: int | None
    site_name: str | None
    merchant_id: int | None
    merchant_name: str | None
    merchant_transaction_reference: str | None
    reverses_line_item_id: int | None
    reversed_by_line_item_id: int | None
    note: str | None
    actor: str | None
    created_at: datetime


@dataclass(frozen=True)
class OrderRow:
    id: int
    account_id: int
    transaction_id: int
    merchant_id: int | None
    site_id: int | None
    sales_channel_id: int
    currency: str
    total: int
    discount_total: int
    note: str | None
    receipt_contact_id: int | None
    status: str
    merchant_transaction_reference: str | None
    created_at: datetime


@dataclass(frozen=True)
class ContactRow:
    id: int
    email: str
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class ConsentRow:
    id: int
    consent_copy: str
    consented_at: datetime


@dataclass(frozen=True)
class SiteRow:
    id: int
    account_id: int
    name: str
    address: str
    reference: str
    deleted_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class ProductRow:
    id: int
    name: str


@dataclass(frozen=True)
class PriceModifierRow:
    id: int
    product_id: int
    price: int
    description: str | None


@dataclass(frozen=True)
class ApiUserRow:
    id: int
    account_id: int
    merchant_id: int
    username: str
    password_hash: str
    token_version: int
    created_at: datetime
    deleted_at: datetime | None
    password_noted: bool = True  # False: created in the dashboard, and nobody ticked "I have noted this password"


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    password_hash: str
    token_version: int
    deleted_at: datetime | None


@dataclass(frozen=True)
class MembershipRow:
    account_id: int
    account_name: str
    user_id: int
    role: str
