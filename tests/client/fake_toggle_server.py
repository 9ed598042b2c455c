"""An in-memory Toggle-compatible server for the client tests, plugged in with `httpx.MockTransport`.

It executes the client's real GraphQL documents with graphql-core against a Toggle-shaped schema, so a
malformed document or a variable of the wrong type fails the test (AssertionError) instead of passing
unnoticed. Ledger: cards, line items, orders, references, tokens. Faults can be scheduled per root field
to simulate lost replies and unreachable servers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import graphql
import httpx

from giftledger_client import GiftCardClient, TerminalSettings, luhn_check_digit

SDL = """
type Query {
  loginUser(email: String, username: String, password: String!): User
  Products(account_id: Int!): [Product]
  Cards(card_reference: String, id: Int, limit: Int, page: Int): CardPage
  LineItems(page: Int!, limit: Int!, merchant_transaction_reference: String!): LineItemPage
}

type Mutation {
  createOrder(
    account_id: Int!, merchant_id: Int!, order_items: [OrderItemInput]!, currency: String!,
    group_fulfilment: Boolean!, total: Int!, sales_channel_id: Int!, unit_epos_reference: String!,
    merchant_transaction_reference: String
  ): Order
  createBalanceAdjustment(
    currency: String, value: Int, card_reference: String!, unit_epos_reference: String!, merchant_id: Int!,
    merchant_transaction_reference: String
  ): BalanceAdjustment
  createReversal(
    ReversalItems: [ReversalItemInput]!, merchant_transaction_reference: String,
    unit_epos_reference: String!, merchant_id: Int!
  ): Reversal
}

input OrderItemInput {
  product_id: Int
  price_modifier_id: Int
  custom_price_modifier_value: Int
  fulfilment_method_id: Int
  fulfilment_email: String
  card_reference: String
  generate_card_reference: Boolean
  message: String
}

input ReversalItemInput { line_item_id: Int!, shipping_refund: Boolean }

type User { id: Int }
type Product { id: Int, name: String, PriceModifiers: [PriceModifier] }
type PriceModifier { id: Int, price: Int, description: String }
type CardPage { data: [Card], total: Int, per_page: Int }
type Card {
  id: Int
  card_reference: String
  card_alias_card_reference: String
  balance: Int
  initial_balance: Int
  created_at: String
  updated_at: String
  ValueSplit: ValueSplit
}
type ValueSplit { tender: Int, discount: Int }
type LineItemPage { data: [LineItem] }
type LineItem {
  id: Int
  value: Int
  created_at: String
  Card: Card
  ValueSplit: ValueSplit
  Transaction: Transaction
}
type Transaction { merchant_transaction_reference: String }
type Order { id: Int, LineItems: [LineItem] }
type BalanceAdjustment { id: Int, value: Int, ValueSplit: ValueSplit, LineItem: LineItem }
type Reversal { id: Int, merchant_transaction_reference: String, LineItems: [LineItem] }
"""

SCHEMA = graphql.build_schema(SDL)

USERNAME = "till-api"
PASSWORD = "correct horse"
ACCOUNT_ID = 7
MERCHANT_ID = 26
PRODUCT_ID = 244
SITE = "till-1"
ENDPOINT = "https://toggle.test/graphql"
VALID_CARD = "6301190060337576946"  # the example number in Toggle's card-number docs
CARD_CREATED_AT = "2024-05-13 13:11:47"
LINE_ITEM_CREATED_AT = "2024-06-01 12:00:00"

REQUIRED = "This field is required"
NOT_EXPECTED = "This field is not of an expected value"
NEGATIVE_BALANCE = "Applying this transaction would have resulted in a negative balance. Transaction not applied."
DUPLICATE_REFERENCE = "Duplicate reference supplied"
CARD_NOT_FOUND = "No card has been found for this account for the card ref supplied. Transaction not applied."
SITE_NOT_RECOGNISED = "The external_site_id supplied was not recognised for this account."
BAD_CREDENTIALS = "The username or password you entered is incorrect."

# Faults, scheduled per root field with FakeToggle.fail():
PASS = "pass"  # no fault: lets one request through so that a later fault hits the next one
CONNECT_ERROR = "connect_error"  # never reached the server
HTTP_503_BEFORE = "http_503_before"  # refused by a busy server, nothing applied
RETRYABLE_BEFORE = "retryable_before"  # RETRYABLE GraphQL error, nothing applied
TIMEOUT_BEFORE = "timeout_before"  # reached the server, not applied, reply never came
TIMEOUT_AFTER = "timeout_after"  # applied, then the reply was lost (read timeout)
DROP_AFTER = "drop_after"  # applied, then the connection dropped
GARBLED_AFTER = "garbled_after"  # applied, then a proxy sent an HTML page with HTTP 200
MALFORMED_AFTER = "malformed_after"  # applied, then a JSON reply of the wrong shape
PARTIAL_AFTER = "partial_after"  # applied, then the reply carries the data and an INTERNAL error


def card_number(serial: int) -> str:
    """A valid 19-digit card number: IIN prefix, 10-digit serial, Luhn check digit."""
    body = f"63011900{serial:010d}"
    return body + luhn_check_digit(body)


def make_settings(**overrides: Any) -> TerminalSettings:
    values: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "account_id": ACCOUNT_ID,
        "username": USERNAME,
        "password": PASSWORD,
        "site_reference": SITE,
        "merchant_id": MERCHANT_ID,
        "product_id": PRODUCT_ID,
    }
    values.update(overrides)
    return TerminalSettings(**values)


def make_client(fake: FakeToggle, sleeps: list[float] | None = None, **settings_overrides: Any) -> GiftCardClient:
    recorded = sleeps if sleeps is not None else []
    return GiftCardClient(
        make_settings(**settings_overrides), transport=httpx.MockTransport(fake.handle), sleep=recorded.append
    )


class FakeError(Exception):
    def __init__(
        self,
        message: str,
        code: str,
        *,
        validation: Mapping[str, list[str]] | None = None,
        customer_facing: bool = False,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.validation = dict(validation) if validation else None
        self.customer_facing = customer_facing
        self.extra = dict(extra or {})


def invalid(**fields: str) -> FakeError:
    return FakeError("validation", "VALIDATION", validation={name: [msg] for name, msg in fields.items()})


@dataclass
class FakeCard:
    reference: str
    balance: int
    tender: int
    discount: int
    initial_balance: int
    sold: bool = True


@dataclass
class FakeLineItem:
    id: int
    value: int
    card_reference: str
    reference: str | None
    tender: int
    discount: int
    reversed_by: int | None = None


@dataclass
class Call:
    """One request as the server saw it (including ones a fault then cut short)."""

    field: str
    variables: dict[str, Any]
    authorization: str | None


@dataclass
class FakeToggle:
    username: str = USERNAME
    password: str = PASSWORD
    account_id: int = ACCOUNT_ID
    merchant_id: int = MERCHANT_ID
    sites: tuple[str, ...] = (SITE,)
    send_codes: bool = True  # False: errors without `extensions`, like Toggle itself
    token_headers: str = "both"  # "both", "x-only", "authorization-only", "conflicting", "none"
    reference_checked_first: bool = True  # False: balance and card are checked before the reference
    cards: dict[str, FakeCard] = field(default_factory=dict)
    line_items: list[FakeLineItem] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    faults: list[tuple[str, str]] = field(default_factory=list)
    rotate_next: bool = False
    before_request: Callable[[Call], None] | None = None  # runs after a request is recorded, before faults
    _serials: itertools.count[int] = field(default_factory=lambda: itertools.count(900))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(101))
    _orders: itertools.count[int] = field(default_factory=lambda: itertools.count(501))
    _issued: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _response_token: str | None = None

    # -- set-up and inspection ------------------------------------------------------------------------

    def add_card(self, reference: str, balance: int, *, discount: int = 0) -> FakeCard:
        card = FakeCard(reference, balance, balance - discount, discount, balance)
        self.cards[reference] = card
        return card

    def add_blank_card(self, reference: str) -> FakeCard:
        card = FakeCard(reference, 0, 0, 0, 0, sold=False)
        self.cards[reference] = card
        return card

    def fail(self, root_field: str, kind: str) -> None:
        """Apply fault `kind` to the next request whose root field is `root_field`."""
        self.faults.append((root_field, kind))

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def calls_to(self, root_field: str) -> list[Call]:
        return [call for call in self.calls if call.field == root_field]

    def fields_called(self) -> list[str]:
        return [call.field for call in self.calls]

    def items_with_reference(self, reference: str) -> list[FakeLineItem]:
        return [item for item in self.line_items if item.reference == reference]

    # -- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST", request.method
        assert request.url == ENDPOINT, request.url
        body = json.loads(request.content)
        document = graphql.parse(body["query"])
        problems = graphql.validate(SCHEMA, document)
        assert not problems, f"invalid document: {problems}"
        operation = document.definitions[0]
        assert isinstance(operation, graphql.OperationDefinitionNode)
        first = operation.selection_set.selections[0]
        assert isinstance(first, graphql.FieldNode)
        root_field = first.name.value
        variables = body.get("variables") or {}
        authorization = request.headers.get("Authorization")
        call = Call(root_field, variables, authorization)
        self.calls.append(call)
        if self.before_request is not None:
            self.before_request(call)

        fault = self._take_fault(root_field)
        if fault == CONNECT_ERROR:
            raise httpx.ConnectError("Connection refused", request=request)
        if fault == HTTP_503_BEFORE:
            return httpx.Response(503, text="Service Unavailable")
        if fault == TIMEOUT_BEFORE:
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        if fault == RETRYABLE_BEFORE:
            error = FakeError("The service is temporarily unavailable. Nothing was applied; retry.", "RETRYABLE")
            return self._respond({"errors": [self._format(error, None)], "data": {root_field: None}})

        response = self._execute(document, variables, authorization, root_field)
        if fault == TIMEOUT_AFTER:
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        if fault == DROP_AFTER:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if fault == GARBLED_AFTER:
            return httpx.Response(200, text="<html>Gateway</html>", headers={"Content-Type": "text/html"})
        if fault == MALFORMED_AFTER:
            return self._respond({"data": {root_field: {"id": 1}}})
        if fault == PARTIAL_AFTER:
            payload = response.json()
            payload["errors"] = [self._format(FakeError("Internal server error", "INTERNAL"), None)]
            return self._respond(payload)
        return response

    def _take_fault(self, root_field: str) -> str | None:
        for index, (target, kind) in enumerate(self.faults):
            if target == root_field:
                del self.faults[index]
                return kind
        return None

    def _execute(
        self, document: graphql.DocumentNode, variables: dict[str, Any], authorization: str | None, root: str
    ) -> httpx.Response:
        self._response_token = None
        token = authorization.removeprefix("Bearer ") if authorization else None
        result = graphql.execute_sync(
            SCHEMA, document, root_value=self, variable_values=variables, context_value={"token": token}
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            formatted = []
            for error in result.errors:
                original = error.original_error
                assert isinstance(original, FakeError), f"unexpected GraphQL error: {error}"
                formatted.append(self._format(original, error))
            payload["errors"] = formatted
        headers: dict[str, str] = {}
        if self._response_token is None and self.rotate_next and token in self.tokens and not result.errors:
            self.rotate_next = False
            self.tokens.discard(token)
            self._response_token = self._issue()
        if self._response_token is not None:
            headers = self._token_headers(self._response_token)
        return self._respond(payload, headers)

    def _format(self, error: FakeError, located: graphql.GraphQLError | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"message": error.message}
        locations = located.locations if located is not None and located.locations else []
        entry["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
        if error.validation is not None:
            entry["validation"] = error.validation
        entry["customer_facing"] = error.customer_facing
        if self.send_codes:
            entry["extensions"] = {"code": error.code, **error.extra}
        return entry

    def _respond(self, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> httpx.Response:
        return httpx.Response(200, json=payload, headers=dict(headers or {}))

    def _token_headers(self, token: str) -> dict[str, str]:
        value = f"Bearer {token}"
        if self.token_headers == "both":
            return {"X-Authorization": value, "Authorization": value}
        if self.token_headers == "x-only":
            return {"X-Authorization": value}
        if self.token_headers == "authorization-only":
            return {"Authorization": value}
        if self.token_headers == "conflicting":
            return {"X-Authorization": value, "Authorization": "Bearer stale-token"}
        return {}

    def _issue(self) -> str:
        token = f"tok-{next(self._issued)}"
        self.tokens.add(token)
        return token

    # -- resolvers (graphql-core calls root fields as methods: (info, **arguments)) ------------------------

    def _authorise(self, info: graphql.GraphQLResolveInfo) -> None:
        if info.context["token"] not in self.tokens:
            raise FakeError("Unauthorized", "UNAUTHENTICATED")

    def loginUser(  # root field names are the contract's
        self, info: graphql.GraphQLResolveInfo, password: str, username: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        if username != self.username or password != self.password:
            raise FakeError(BAD_CREDENTIALS, "UNAUTHENTICATED")
        self._response_token = self._issue()
        return {"id": 1}

    def Products(self, info: graphql.GraphQLResolveInfo, account_id: int) -> list[dict[str, Any]]:
        self._authorise(info)
        if account_id != self.account_id:
            raise FakeError("You do not have access to this account.", "FORBIDDEN")
        return [
            {
                "id": PRODUCT_ID,
                "name": "In-Store Gift",
                "PriceModifiers": [
                    {"id": 975, "price": 0, "description": "Blank card"},
                    {"id": 977, "price": 2500, "description": None},
                ],
            },
            {"id": 245, "name": "Summer Promotion", "PriceModifiers": [{"id": 976, "price": 3500}]},
        ]

    def Cards(
        self,
        info: graphql.GraphQLResolveInfo,
        card_reference: str | None = None,
        id: int | None = None,
        limit: int | None = None,
        page: int | None = None,
    ) -> dict[str, Any]:
        self._authorise(info)
        card = self.cards.get(card_reference or "")
        found = [self._card(card)] if card is not None and card.sold else []
        return {"data": found, "total": len(found), "per_page": limit}

    def LineItems(
        self, info: graphql.GraphQLResolveInfo, page: int, limit: int, merchant_transaction_reference: str
    ) -> dict[str, Any]:
        self._authorise(info)
        found = self.items_with_reference(merchant_transaction_reference)
        return {"data": [self._line_item(item) for item in found[(page - 1) * limit : page * limit]]}

    def createBalanceAdjustment(
        self,
        info: graphql.GraphQLResolveInfo,
        card_reference: str,
        unit_epos_reference: str,
        merchant_id: int,
        currency: str | None = None,
        value: int | None = None,
        merchant_transaction_reference: str | None = None,
    ) -> dict[str, Any]:
        self._authorise(info)
        fields: dict[str, str] = {}
        if not currency:
            fields["currency"] = REQUIRED
        if value is None or value == 0:
            fields["value"] = REQUIRED
        if merchant_id != self.merchant_id:
            fields["merchant_id"] = NOT_EXPECTED
        if fields:
            raise invalid(**fields)
        assert value is not None
        self._check_site(unit_epos_reference)
        if self.reference_checked_first:
            self._check_reference(merchant_transaction_reference)
        card = self.cards.get(card_reference)
        if card is None or not card.sold:
            raise FakeError(CARD_NOT_FOUND, "CARD_NOT_FOUND", customer_facing=True)
        if card.balance + value < 0:
            raise FakeError(NEGATIVE_BALANCE, "NEGATIVE_BALANCE", customer_facing=True)
        self._check_reference(merchant_transaction_reference)
        if value > 0:
            tender, discount = value, 0
        else:
            discount = -((-value) * card.discount // card.balance)
            tender = value - discount
        item = self._record(card, value, tender, discount, merchant_transaction_reference)
        return {
            "id": 9000 + item.id,
            "value": value,
            "ValueSplit": {"tender": tender, "discount": discount},
            "LineItem": self._line_item(item),
        }

    def createOrder(
        self,
        info: graphql.GraphQLResolveInfo,
        account_id: int,
        merchant_id: int,
        order_items: list[dict[str, Any]],
        currency: str,
        group_fulfilment: bool,
        total: int,
        sales_channel_id: int,
        unit_epos_reference: str,
        merchant_transaction_reference: str | None = None,
    ) -> dict[str, Any]:
        self._authorise(info)
        if account_id != self.account_id:
            raise FakeError("You do not have access to this account.", "FORBIDDEN")
        if merchant_id != self.merchant_id:
            raise invalid(merchant_id=NOT_EXPECTED)
        if sales_channel_id != 3:
            raise invalid(sales_channel_id=NOT_EXPECTED)
        if not order_items or total != sum(item.get("custom_price_modifier_value") or 0 for item in order_items):
            raise invalid(total=NOT_EXPECTED)
        for item in order_items:
            if item.get("product_id") != PRODUCT_ID:
                raise invalid(product_id=NOT_EXPECTED)
            method = item.get("fulfilment_method_id")
            if method == 1 and not item.get("fulfilment_email"):
                raise invalid(fulfilment_email=REQUIRED)
            if method == 3 and not item.get("card_reference"):
                raise invalid(card_reference=REQUIRED)
            if method not in (1, 3):
                raise invalid(fulfilment_method_id=NOT_EXPECTED)
            existing = self.cards.get(item.get("card_reference") or "")
            if existing is not None and existing.sold:
                raise invalid(card_reference="This card has already been sold.")
        self._check_site(unit_epos_reference)
        self._check_reference(merchant_transaction_reference)
        created = []
        for item in order_items:
            price = item["custom_price_modifier_value"]
            number = card_number(next(self._serials)) if item.get("generate_card_reference") else item["card_reference"]
            card = self.add_card(number, price)
            created.append(self._record(card, price, price, 0, merchant_transaction_reference, adjust=False))
        return {"id": next(self._orders), "LineItems": [self._line_item(item) for item in created]}

    def createReversal(
        self,
        info: graphql.GraphQLResolveInfo,
        ReversalItems: list[dict[str, Any]],
        unit_epos_reference: str,
        merchant_id: int,
        merchant_transaction_reference: str | None = None,
    ) -> dict[str, Any]:
        self._authorise(info)
        if merchant_id != self.merchant_id:
            raise invalid(merchant_id=NOT_EXPECTED)
        self._check_site(unit_epos_reference)
        self._check_reference(merchant_transaction_reference)
        by_id = {item.id: item for item in self.line_items}
        targets = []
        for entry in ReversalItems:
            target = by_id.get(entry["line_item_id"])
            if target is None:
                raise invalid(line_item_id="Must be a valid line item.")
            if target.reversed_by is not None:
                raise FakeError(
                    f"Line item {target.id} has already been reversed.", "ALREADY_REVERSED", customer_facing=True
                )
            if self.cards[target.card_reference].balance - target.value < 0:
                raise FakeError(NEGATIVE_BALANCE, "NEGATIVE_BALANCE", customer_facing=True)
            targets.append(target)
        created = []
        for target in targets:
            card = self.cards[target.card_reference]
            reversal = self._record(
                card, -target.value, -target.tender, -target.discount, merchant_transaction_reference
            )
            target.reversed_by = reversal.id
            created.append(reversal)
        return {
            "id": 7000 + created[0].id,
            "merchant_transaction_reference": merchant_transaction_reference,
            "LineItems": [self._line_item(item) for item in created],
        }

    # -- ledger helpers ------------------------------------------------------------------------------

    def _check_site(self, site: str) -> None:
        if site not in self.sites:
            raise FakeError(SITE_NOT_RECOGNISED, "SITE_NOT_RECOGNISED", customer_facing=True)

    def _check_reference(self, reference: str | None) -> None:
        if reference is None:
            return
        previous = self.items_with_reference(reference)
        if previous:
            raise FakeError(
                DUPLICATE_REFERENCE,
                "DUPLICATE_REFERENCE",
                extra={"merchant_transaction_reference": reference, "line_item_ids": [i.id for i in previous]},
            )

    def _record(
        self,
        card: FakeCard,
        value: int,
        tender: int,
        discount: int,
        reference: str | None,
        *,
        adjust: bool = True,
    ) -> FakeLineItem:
        if adjust:
            card.balance += value
            card.tender += tender
            card.discount += discount
        item = FakeLineItem(next(self._ids), value, card.reference, reference, tender, discount)
        self.line_items.append(item)
        return item

    def _card(self, card: FakeCard) -> dict[str, Any]:
        return {
            "id": 1,
            "card_reference": card.reference,
            "balance": card.balance,
            "initial_balance": card.initial_balance,
            "created_at": CARD_CREATED_AT,
            "updated_at": CARD_CREATED_AT,
            "ValueSplit": {"tender": card.tender, "discount": card.discount},
        }

    def _line_item(self, item: FakeLineItem) -> dict[str, Any]:
        return {
            "id": item.id,
            "value": item.value,
            "created_at": LINE_ITEM_CREATED_AT,
            "Card": self._card(self.cards[item.card_reference]),
            "ValueSplit": {"tender": item.tender, "discount": item.discount},
            "Transaction": {"merchant_transaction_reference": item.reference},
        }
