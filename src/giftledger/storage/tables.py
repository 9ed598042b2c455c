"""Table definitions (SQLAlchemy Core). Every account-owned row carries `account_id`, and every
query of an account-owned table filters by it, so the schema can be sharded by account later.

Global tables: `merchants` (reference data: POS companies), `users` (a person may belong to several
accounts; `memberships` links them) and `login_attempts` (keyed by username and address).

Foreign keys on the ledger's hot inserts (`transactions`, `line_items`, migration 0011): a line item's card is
held by one key scoped by account, (account_id, card_id) -> cards (account_id, id), which also says the card
is the line item's account's; its transaction, order and reversed line item by theirs. Their references to
reference data that is never deleted (the account, merchant, site, API user, user, product and price modifier:
sites, API users and users are only ever soft-deleted) carry no foreign key: the statement that writes one
reads the row it names (a till's redemption reads the caller, its site and, through the site mapping, its
merchant), and `ledger verify` (storage/verification.py `LedgerAudit.references`) reports any that names a
row missing or of another account.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from giftledger.domain.ledger import MAX_BALANCE, LineItemType

Id = BigInteger
Money = BigInteger

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _account() -> Column[int]:
    return Column("account_id", Id, ForeignKey("accounts.id"), nullable=False)


def _account_unchecked() -> Column[int]:
    """`account_id` without a foreign key (the ledger's hot inserts: see the module's docstring)."""
    return Column("account_id", Id, nullable=False)


def _created() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    _created(),
    # an IANA zone: every time the dashboard shows or exports, and the 3 am expiry rule (domain/time_zones.py)
    Column("time_zone", String(64), nullable=False, server_default="Europe/London"),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("token_version", Integer, nullable=False, server_default="0"),
    _created(),
    Column("deleted_at", DateTime(timezone=True)),
)

memberships = Table(
    "memberships",
    metadata,
    _id(),
    _account(),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("role", String(40), nullable=False),
    _created(),
    UniqueConstraint("account_id", "user_id", name="uq_memberships_account_user"),
)

api_users = Table(
    "api_users",
    metadata,
    _id(),
    _account(),
    Column("merchant_id", Id, ForeignKey("merchants.id"), nullable=False),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("token_version", Integer, nullable=False, server_default="0"),
    _created(),
    Column("deleted_at", DateTime(timezone=True)),
    Column("password_noted", Boolean, nullable=False, server_default=text("true")),  # migration 0005
    Index("ix_api_users_account_merchant", "account_id", "merchant_id"),
)

sites = Table(
    "sites",
    metadata,
    _id(),
    _account(),
    Column("name", String(200), nullable=False),
    Column("address", String(500), nullable=False, server_default=""),
    Column("reference", String(100), nullable=False, server_default=""),
    _created(),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_sites_account", "account_id"),
    # two live sites of one account never share a name (ignoring case) or a non-empty reference (migration 0004)
    Index(
        "uq_sites_account_name",
        "account_id",
        func.lower(text("name")),
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index(
        "uq_sites_account_reference",
        "account_id",
        "reference",
        unique=True,
        postgresql_where=text("deleted_at IS NULL AND reference <> ''"),
    ),
)

site_mappings = Table(
    "site_mappings",
    metadata,
    _id(),
    _account(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),
    Column("merchant_id", Id, ForeignKey("merchants.id"), nullable=False),
    Column("epos_reference", String(100), nullable=False),
    UniqueConstraint("account_id", "merchant_id", "epos_reference", name="uq_site_mappings_reference"),
    UniqueConstraint("account_id", "merchant_id", "site_id", name="uq_site_mappings_site"),
)

products = Table(
    "products",
    metadata,
    _id(),
    _account(),
    Column("name", String(200), nullable=False),
    _created(),
    Column("pin_digits", Integer),  # a PIN of this many digits (4 to 8) generated on each sale; NULL: none (0008)
    # validity and expiry of the cards it sells (domain/validity.py; migration 0007)
    Column("activation_delay_seconds", Integer, nullable=False, server_default="0"),
    Column("valid_after", Date),
    Column("expiry_kind", String(10), nullable=False, server_default="never"),
    Column("expiry_period_days", Integer),
    Column("expiry_date", Date),
    Column("reminder_days", Integer),
    Index("ix_products_account", "account_id"),
    CheckConstraint("pin_digits IS NULL OR pin_digits BETWEEN 4 AND 8", name="pin_digits_range"),
    CheckConstraint(
        "activation_delay_seconds >= 0 AND expiry_kind IN ('never', 'period', 'date')"
        " AND (expiry_kind <> 'period' OR expiry_period_days > 0)"
        " AND (expiry_kind <> 'date' OR expiry_date IS NOT NULL)"
        " AND (reminder_days IS NULL OR reminder_days > 0)",
        name="validity_known",
    ),
)

price_modifiers = Table(
    "price_modifiers",
    metadata,
    _id(),
    _account(),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False),
    Column("price", Money, nullable=False),
    Column("description", String(200)),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("price >= 0", name="price_not_negative"),
    Index("ix_price_modifiers_account_product", "account_id", "product_id"),
)

contacts = Table(
    "contacts",
    metadata,
    _id(),
    _account(),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    _created(),
    Index("ix_contacts_account_email", "account_id", "email"),
)

consents = Table(
    "consents",
    metadata,
    _id(),
    _account(),
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),
    Column("consent_copy", Text, nullable=False),
    Column("consented_at", DateTime(timezone=True), nullable=False),
    Index("ix_consents_account_contact", "account_id", "contact_id"),
)

cards = Table(
    "cards",
    metadata,
    _id(),
    _account(),
    Column("card_reference", String(32), nullable=False),
    Column("alias", String(32)),
    Column("pin_hash", String(100)),  # a keyed hash of the PIN (auth/pins.py); NULL: no PIN (migration 0008)
    Column("currency", String(3), nullable=False),
    # stock: an unsold blank number; active: sold and in circulation
    Column("status", String(10), nullable=False),
    Column("balance", Money, nullable=False, server_default="0"),
    Column("tender_balance", Money, nullable=False, server_default="0"),
    Column("discount_balance", Money, nullable=False, server_default="0"),
    Column("initial_balance", Money, nullable=False, server_default="0"),
    Column("product_id", Id, ForeignKey("products.id")),
    Column("contact_id", Id, ForeignKey("contacts.id")),
    Column("message", Text),
    Column("expiry_time", DateTime(timezone=True)),
    Column("validity_start_time", DateTime(timezone=True)),  # NULL: usable once sold
    Column("blocked_reason", String(20)),  # NULL: not blocked (domain: lost, stolen, fraud, replaced)
    Column("blocked_at", DateTime(timezone=True)),
    Column("expiry_reminder_days", Integer),  # the reminder it was sold with (days before expiry; 0007)
    Column("expiry_reminded_for", DateTime(timezone=True)),  # the expiry_time its reminder was queued for
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "card_reference", name="uq_cards_account_reference"),
    # what a line item's card key refers to (migration 0011)
    UniqueConstraint("account_id", "id", name="uq_cards_account_id"),
    # an alias (an imported card's own number) names at most one card of an account (migration 0008)
    Index("uq_cards_account_alias", "account_id", "alias", unique=True, postgresql_where=text("alias IS NOT NULL")),
    CheckConstraint(
        "tender_balance >= 0 AND discount_balance >= 0 AND balance = tender_balance + discount_balance",
        name="balance_not_negative",
    ),
    CheckConstraint("status IN ('stock', 'active')", name="status_known"),
    CheckConstraint("(blocked_reason IS NULL) = (blocked_at IS NULL)", name="blocked_together"),
    Index("ix_cards_expiry", "expiry_time", postgresql_where=text("expiry_time IS NOT NULL")),  # 0007
    CheckConstraint(f"balance <= {MAX_BALANCE}", name="balance_within_limit"),
)

transactions = Table(
    "transactions",
    metadata,
    _id(),
    _account_unchecked(),
    Column("merchant_id", Id),
    Column("merchant_transaction_reference", String(100)),
    Column("kind", String(20), nullable=False),
    Column("site_id", Id),
    Column("api_user_id", Id),
    Column("user_id", Id),
    Column("note", Text),
    _created(),
    UniqueConstraint("account_id", "merchant_id", "merchant_transaction_reference", name="uq_transactions_reference"),
)

orders = Table(
    "orders",
    metadata,
    _id(),
    _account(),
    Column("transaction_id", Id, ForeignKey("transactions.id"), nullable=False),
    Column("merchant_id", Id, ForeignKey("merchants.id")),
    Column("site_id", Id, ForeignKey("sites.id")),
    Column("sales_channel_id", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Money, nullable=False),
    Column("discount_total", Money, nullable=False),
    Column("note", Text),
    Column("receipt_contact_id", Id, ForeignKey("contacts.id")),
    Column("status", String(12), nullable=False),
    _created(),
    Index("ix_orders_account_created", "account_id", "created_at"),
)

line_items = Table(
    "line_items",
    metadata,
    _id(),
    _account_unchecked(),
    Column("card_id", Id, nullable=False),
    Column("transaction_id", Id, ForeignKey("transactions.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("type_id", Integer, nullable=False),
    Column("value", Money, nullable=False),
    Column("tender", Money, nullable=False),
    Column("discount", Money, nullable=False),
    Column("site_id", Id),
    Column("merchant_id", Id),
    Column("product_id", Id),
    Column("price_modifier_id", Id),
    Column("fulfilment_method_id", Integer),
    Column("reverses_line_item_id", Id, ForeignKey("line_items.id")),
    Column("note", Text),
    Column("api_user_id", Id),
    Column("user_id", Id),
    _created(),
    ForeignKeyConstraint(["account_id", "card_id"], ["cards.account_id", "cards.id"]),
    CheckConstraint("value <> 0 AND value = tender + discount", name="value_adds_up"),
    # a line item is reversed at most once: the database refuses a second reversal (only reversals are in this
    # index: migration 0011)
    Index(
        "uq_line_items_reverses",
        "account_id",
        "reverses_line_item_id",
        unique=True,
        postgresql_where=text("reverses_line_item_id IS NOT NULL"),
    ),
    Index("ix_line_items_account_card", "account_id", "card_id"),
    # a card's sales, the latest first (its purchaser, the card list): only sales are in it (migration 0013)
    Index(
        "ix_line_items_card_sales",
        "account_id",
        "card_id",
        "id",
        postgresql_where=text(f"type_id = {int(LineItemType.SALE)}"),
    ),
    Index("ix_line_items_account_transaction", "account_id", "transaction_id"),
    Index("ix_line_items_account_created", "account_id", "created_at"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    _id(),
    Column("subject", String(400), nullable=False),  # "user:<name>" or "addr:<ip>"
    Column("succeeded", Boolean, nullable=False),
    _created(),
    Index("ix_login_attempts_subject_created", "subject", "created_at"),
)
