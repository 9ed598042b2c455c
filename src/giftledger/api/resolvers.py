"""Resolvers: parse arguments, call one use case, shape the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from graphql import GraphQLSchema

from giftledger.api import shapes
from giftledger.api.audit import accepted
from giftledger.api.context import RequestContext
from giftledger.services import queries
from giftledger.services.access import log_in
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Principal
from giftledger.services.reversals import ReversalItem, ReversalRequest, reverse_line_items
from giftledger.services.sales import Discount, OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.services.views import CardView, LineItemView, Page

Resolver = Callable[..., Awaitable[Any]]


class Info(Protocol):
    """What a resolver reads of graphql-core's `GraphQLResolveInfo`: the request's context. (The class is
    generic in graphql-core 3.3 and not in 3.2, so no annotation of it type-checks against both.)"""

    @property
    def context(self) -> Any: ...


def _ctx(info: Info) -> RequestContext:
    context: RequestContext = info.context
    return context


async def login_user(
    _: Any,
    info: Info,
    password: str,
    email: str | None = None,
    username: str | None = None,
    account_id: int | None = None,
) -> shapes.Shape:
    ctx = _ctx(info)
    login = await log_in(
        ctx.services,
        username=username,
        email=email,
        password=password,
        client_address=ctx.client_address,
        account_id=account_id,
    )
    ctx.issued_token = login.token
    p = login.principal
    return {
        "id": p.id,
        "email": p.name if p.kind == "user" else None,
        "username": p.name if p.kind == "api_user" else None,
    }


async def products(_: Any, info: Info, account_id: int) -> list[shapes.Shape]:
    ctx = _ctx(info)
    views = await ctx.act(lambda principal: queries.list_products(ctx.services, principal, account_id))
    return [shapes.product(v) for v in views]


async def cards(
    _: Any,
    info: Info,
    card_reference: str | None = None,
    limit: int | None = None,
    page: int | None = None,
    id: int | None = None,
) -> shapes.Shape:
    ctx = _ctx(info)

    async def find(principal: Principal) -> Page[CardView]:
        return await queries.find_cards(
            ctx.services, principal, card_reference=card_reference, card_id=id, limit=limit, page=page
        )

    return shapes.page(await ctx.act(find), shapes.card)


async def line_items(
    _: Any,
    info: Info,
    page: int | None = None,
    limit: int | None = None,
    merchant_transaction_reference: str | None = None,
) -> shapes.Shape:
    ctx = _ctx(info)

    async def find(principal: Principal) -> Page[LineItemView]:
        return await queries.find_line_items(
            ctx.services,
            principal,
            merchant_transaction_reference=merchant_transaction_reference,
            limit=limit,
            page=page,
        )

    return shapes.page(await ctx.act(find), shapes.line_item)


async def orders(_: Any, info: Info, limit: int | None = None, page: int | None = None) -> shapes.Shape:
    ctx = _ctx(info)
    result = await ctx.act(lambda principal: queries.list_orders(ctx.services, principal, limit=limit, page=page))
    return shapes.page(result, shapes.order)


async def consents(
    contact: shapes.Shape, info: Info, limit: int | None = None, page: int | None = None
) -> shapes.Shape:
    ctx = _ctx(info)
    result = await ctx.act(
        lambda principal: queries.list_consents(ctx.services, principal, int(contact["id"]), limit=limit, page=page)
    )
    return shapes.page(result, shapes.consent)


async def merchants(_: Any, info: Info) -> list[shapes.Shape]:
    ctx = _ctx(info)
    return shapes.named(await ctx.act(lambda principal: queries.list_merchants(ctx.services, principal)))


async def sales_channels(_: Any, info: Info) -> list[shapes.Shape]:
    ctx = _ctx(info)
    return shapes.named(await ctx.act(lambda principal: queries.sales_channels(ctx.services, principal)))


async def fulfilment_methods(_: Any, info: Info) -> list[shapes.Shape]:
    ctx = _ctx(info)
    return shapes.named(await ctx.act(lambda principal: queries.fulfilment_methods(ctx.services, principal)))


async def accounts(_: Any, info: Info) -> list[shapes.Shape]:
    ctx = _ctx(info)
    return shapes.named(await ctx.act(lambda principal: queries.list_accounts(ctx.services, principal)))


def _order_item(raw: dict[str, Any] | None) -> OrderItem | None:
    if raw is None:
        return None
    return OrderItem(
        product_id=raw.get("product_id"),
        price_modifier_id=raw.get("price_modifier_id"),
        custom_price_modifier_value=raw.get("custom_price_modifier_value"),
        fulfilment_method_id=raw.get("fulfilment_method_id"),
        fulfilment_email=raw.get("fulfilment_email"),
        message=raw.get("message"),
        card_reference=raw.get("card_reference"),
        generate_card_reference=bool(raw.get("generate_card_reference")),
        discounts=[
            Discount(d.get("discount_type_id"), d.get("value")) if d is not None else Discount(None, None)
            for d in raw.get("discounts") or []
        ],
        validity_rules=raw.get("validity_rules"),
        expiry_config=raw.get("expiry_config"),
    )


async def create_order(_: Any, info: Info, **args: Any) -> shapes.Shape:
    ctx = _ctx(info)
    contact = args.get("receipt_contact")
    request = OrderRequest(
        account_id=args["account_id"],
        merchant_id=args["merchant_id"],
        order_items=[_order_item(item) for item in args["order_items"]],
        currency=args["currency"],
        total=args["total"],
        sales_channel_id=args["sales_channel_id"],
        unit_epos_reference=args.get("unit_epos_reference"),
        merchant_transaction_reference=args.get("merchant_transaction_reference"),
        note=args.get("note"),
        receipt_contact=ReceiptContact(
            contact.get("email"), contact.get("first_name"), contact.get("last_name"), contact.get("consent_copy")
        )
        if contact
        else None,
    )
    record = accepted("createOrder", args)
    return shapes.order(await ctx.act(lambda principal: sell_cards(ctx.services, principal, request, audit=record)))


async def create_balance_adjustment(_: Any, info: Info, **args: Any) -> shapes.Shape:
    ctx = _ctx(info)
    request = AdjustmentRequest(
        card_reference=args["card_reference"],
        value=args.get("value"),
        currency=args.get("currency"),
        unit_epos_reference=args["unit_epos_reference"],
        merchant_id=args["merchant_id"],
        merchant_transaction_reference=args.get("merchant_transaction_reference"),
    )
    record = accepted("createBalanceAdjustment", args)
    return shapes.adjustment(
        await ctx.act(lambda principal: adjust_balance(ctx.services, principal, request, audit=record))
    )


async def create_reversal(_: Any, info: Info, **args: Any) -> shapes.Shape:
    ctx = _ctx(info)
    request = ReversalRequest(
        items=[
            ReversalItem(i.get("line_item_id"), bool(i.get("shipping_refund"))) if i is not None else None
            for i in args["ReversalItems"]
        ],
        merchant_transaction_reference=args.get("merchant_transaction_reference"),
        unit_epos_reference=args["unit_epos_reference"],
        merchant_id=args["merchant_id"],
    )
    record = accepted("createReversal", args)
    return shapes.reversal(
        await ctx.act(lambda principal: reverse_line_items(ctx.services, principal, request, audit=record))
    )


ROOT_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Query": {
        "loginUser": login_user,
        "Products": products,
        "Cards": cards,
        "LineItems": line_items,
        "Orders": orders,
        "Merchants": merchants,
        "SalesChannels": sales_channels,
        "FulfilmentMethods": fulfilment_methods,
        "Accounts": accounts,
    },
    "Mutation": {
        "createOrder": create_order,
        "createBalanceAdjustment": create_balance_adjustment,
        "createReversal": create_reversal,
    },
    "Contact": {"Consents": consents},
}


def attach(schema: GraphQLSchema) -> None:
    for type_name, fields in ROOT_RESOLVERS.items():
        graphql_type = schema.get_type(type_name)
        for field_name, resolver in fields.items():
            graphql_type.fields[field_name].resolve = resolver  # type: ignore[union-attr]
