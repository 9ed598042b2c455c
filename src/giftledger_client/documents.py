"""The GraphQL documents the client sends, and the contract's fixed ids. Corrected from the EPOS guide."""

from __future__ import annotations

SALES_CHANNEL_IN_STORE = 3
FULFILMENT_IN_VENUE = 3
FULFILMENT_EMAIL = 1
LINE_ITEMS_PAGE_SIZE = 100

# The fields read from every line item, wherever one appears.
_LINE_ITEM = """
    id
    value
    created_at
    Card { card_reference balance }
    ValueSplit { tender discount }
    Transaction { merchant_transaction_reference }
"""

LOG_IN = """
query LogIn($username: String!, $password: String!) {
  loginUser(username: $username, password: $password) { id }
}
"""

CARD_BALANCE = """
query CardBalance($card_reference: String!, $page: Int!, $limit: Int!) {
  Cards(card_reference: $card_reference, limit: $limit, page: $page) {
    data {
      card_reference
      balance
      initial_balance
      created_at
      updated_at
      ValueSplit { tender discount }
    }
  }
}
"""

PRODUCTS = """
query Products($account_id: Int!) {
  Products(account_id: $account_id) {
    id
    name
    PriceModifiers { id price description }
  }
}
"""

LINE_ITEMS = f"""
query LineItems($page: Int!, $limit: Int!, $merchant_transaction_reference: String!) {{
  LineItems(page: $page, limit: $limit, merchant_transaction_reference: $merchant_transaction_reference) {{
    data {{ {_LINE_ITEM} }}
  }}
}}
"""

CREATE_ORDER = f"""
mutation CreateOrder(
  $account_id: Int!,
  $merchant_id: Int!,
  $order_items: [OrderItemInput]!,
  $currency: String!,
  $group_fulfilment: Boolean!,
  $total: Int!,
  $sales_channel_id: Int!,
  $unit_epos_reference: String!,
  $merchant_transaction_reference: String
) {{
  createOrder(
    account_id: $account_id,
    merchant_id: $merchant_id,
    order_items: $order_items,
    currency: $currency,
    group_fulfilment: $group_fulfilment,
    total: $total,
    sales_channel_id: $sales_channel_id,
    unit_epos_reference: $unit_epos_reference,
    merchant_transaction_reference: $merchant_transaction_reference
  ) {{
    id
    LineItems {{ {_LINE_ITEM} }}
  }}
}}
"""

CREATE_BALANCE_ADJUSTMENT = f"""
mutation CreateBalanceAdjustment(
  $currency: String,
  $value: Int,
  $card_reference: String!,
  $unit_epos_reference: String!,
  $merchant_id: Int!,
  $merchant_transaction_reference: String
) {{
  createBalanceAdjustment(
    currency: $currency,
    card_reference: $card_reference,
    value: $value,
    unit_epos_reference: $unit_epos_reference,
    merchant_id: $merchant_id,
    merchant_transaction_reference: $merchant_transaction_reference
  ) {{
    id
    value
    ValueSplit {{ tender discount }}
    LineItem {{ {_LINE_ITEM} }}
  }}
}}
"""

CREATE_REVERSAL = f"""
mutation CreateReversal(
  $merchant_id: Int!,
  $unit_epos_reference: String!,
  $merchant_transaction_reference: String,
  $ReversalItems: [ReversalItemInput]!
) {{
  createReversal(
    ReversalItems: $ReversalItems,
    merchant_transaction_reference: $merchant_transaction_reference,
    unit_epos_reference: $unit_epos_reference,
    merchant_id: $merchant_id
  ) {{
    merchant_transaction_reference
    LineItems {{ {_LINE_ITEM} }}
  }}
}}
"""

ALL = {
    "LOG_IN": LOG_IN,
    "CARD_BALANCE": CARD_BALANCE,
    "PRODUCTS": PRODUCTS,
    "LINE_ITEMS": LINE_ITEMS,
    "CREATE_ORDER": CREATE_ORDER,
    "CREATE_BALANCE_ADJUSTMENT": CREATE_BALANCE_ADJUSTMENT,
    "CREATE_REVERSAL": CREATE_REVERSAL,
}
