"""GraphQL abuse limits: depth 10, aliases 15, 2000 tokens per document, a 64 kB body, list `limit` 100,
no batched arrays, input lists capped, no "Did you mean" hints for callers without a valid token, mutations
only by JSON POST. Introspection stays open, as the guide requires. Every refusal changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import GraphQLError, get_introspection_query

from giftledger.api.endpoint import load_schema
from giftledger.api.limits import BATCH_REFUSED, QueryLimitExceeded, QueryLimits
from giftledger.services.context import Services
from giftledger.storage.guessing import card_lookup_misses
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables, ref, sold
from tests.security.helpers import run_services
from tests.support import Api, Demo, LiveServer, unchanged

NOT_EXPECTED = "This field is not of an expected value"
UNKNOWN_CARD = "6301190000554511994"
SCHEMA = load_schema()


def nested(levels: int) -> str:
    """A valid document `levels` deep: directive args -> type -> fields -> args -> type ... (introspection
    lists nest at most twice, so this goes through `args`, which graphql-core does not limit)."""
    assert 5 <= levels <= 12
    chain = ["directives", "args", "type", "fields", "args", "type", "fields", "args", "type", "name"]
    body = "name"
    for field in reversed(chain[: levels - 2]):
        body = f"{field} {{ {body} }}"
    return f"{{ __schema {{ {body} }} }}"


def depth_of(levels: int) -> list[GraphQLError]:
    limits = QueryLimits()
    return limits.validate(SCHEMA, limits.parse(nested(levels)))


def test_depth_ten_passes_and_eleven_is_refused() -> None:
    assert depth_of(10) == []
    [error] = depth_of(11)
    assert error.message == "The operation nests fields 11 levels deep; the limit is 10."
    assert isinstance(error.original_error, QueryLimitExceeded)
    assert error.original_error.details() == {"limit": "depth", "maximum": 10, "found": 11}


def test_the_full_introspection_query_is_within_the_limits() -> None:
    limits = QueryLimits()
    for query in (
        get_introspection_query(descriptions=True),
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        ),
        documents.SCHEMA_TYPES,
        documents.CARD_TYPE,
    ):
        assert limits.validate(SCHEMA, limits.parse(query)) == []


def test_introspection_lists_may_not_nest_three_deep() -> None:
    limits = QueryLimits()
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert [e.message for e in limits.validate(SCHEMA, limits.parse(query))] == ["Maximum introspection depth exceeded"]


def aliases(count: int, field: str = "SalesChannels { id }") -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


def test_fifteen_aliases_pass_and_sixteen_are_refused() -> None:
    limits = QueryLimits()
    assert limits.validate(SCHEMA, limits.parse(aliases(15))) == []
    [error] = limits.validate(SCHEMA, limits.parse(aliases(16)))
    assert error.message == "The operation uses 16 aliases; the limit is 15."


def test_aliases_inside_fragments_count_each_time_they_are_spread() -> None:
    limits = QueryLimits()
    fragment = "fragment F on Card { " + " ".join(f"x{i}: id" for i in range(8)) + " }"
    query = fragment + " query Twice { Cards { data { ...F } } Orders { data { LineItems { Card { ...F } } } } }"
    [error] = limits.validate(SCHEMA, limits.parse(query))
    assert error.message == "Operation 'Twice' uses 16 aliases; the limit is 15."


def test_a_fragment_bomb_is_measured_without_expanding_it() -> None:
    limits = QueryLimits()
    chain = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    query = "\n".join([*chain, "fragment F40 on Query { a: SalesChannels { id } }", "{ ...F0 }"])
    [error] = limits.validate(SCHEMA, limits.parse(query))
    assert error.message == f"The operation uses {2**40} aliases; the limit is 15."


def test_more_than_2000_tokens_are_refused_while_parsing() -> None:
    limits = QueryLimits()
    limits.parse("{ " + "__typename " * 1998 + "}")  # 2000 tokens
    with pytest.raises(GraphQLError) as caught:
        limits.parse("{ " + "__typename " * 1999 + "}")
    assert caught.value.message == "The document has more than 2000 tokens, the most one request may have."
    assert isinstance(caught.value.original_error, QueryLimitExceeded)


# --- over HTTP ----------------------------------------------------------------------------------------


def misses(database_url: str, account_id: int) -> int:
    async def work(services: Services) -> int:
        async with services.db.transaction() as conn:
            rows = await conn.execute(card_lookup_misses.select().where(card_lookup_misses.c.account_id == account_id))
            return len(rows.all())

    return run_services(database_url, work)


def limit_error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    assert error["customer_facing"] is False
    assert error["extensions"]["code"] == "QUERY_LIMIT"
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


def test_too_deep_over_http(server: LiveServer, api: Api) -> None:
    body = api.call(nested(11))
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 1}]
    assert limit_error(body) == {
        "message": "The operation nests fields 11 levels deep; the limit is 10.",
        "code": "QUERY_LIMIT",
        "limit": "depth",
        "maximum": 10,
        "found": 11,
    }
    assert body["data"] == {"__schema": None}
    assert "errors" not in api.call(nested(10))


def test_too_many_aliases_over_http_looks_nothing_up(server: LiveServer, demo: Demo, api: Api) -> None:
    query = aliases(16, f'Cards(card_reference: "{UNKNOWN_CARD}") {{ total }}')
    with unchanged(server.database_url, demo.account_id):
        body = api.call(query)
    assert limit_error(body)["found"] == 16
    assert body["data"] == {f"a{i}": None for i in range(16)}
    assert misses(server.database_url, demo.account_id) == 0  # nothing ran


def test_too_many_tokens_over_http(server: LiveServer, api: Api) -> None:
    body = api.call("{ " + "__typename " * 1999 + "}")
    assert limit_error(body) == {
        "message": "The document has more than 2000 tokens, the most one request may have.",
        "code": "QUERY_LIMIT",
        "limit": "tokens",
        "maximum": 2000,
    }
    assert body["data"] is None


def test_a_body_over_64_kb_is_refused_and_changes_nothing(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo)
    variables = adjustment_variables(demo, card, -100)
    body = json.dumps({"query": documents.ADJUSTMENT, "variables": variables})
    padding = 65_536 - len(body) - len(', "extensions": {"pad": ""}')
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    too_big = body[:-1] + ', "extensions": {"pad": "' + "x" * (padding + 1) + '"}}'
    assert len(too_big.encode()) == 65_537
    with unchanged(server.database_url, demo.account_id):
        response = httpx.post(server.graphql_url, content=too_big, headers=headers)
    assert response.status_code == 413
    assert response.json()["errors"][0] == {
        "message": "The request body is too large.",
        "customer_facing": False,
        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
    }
    just_fits = body[:-1] + ', "extensions": {"pad": "' + "x" * padding + '"}}'
    assert len(just_fits.encode()) == 65_536
    response = httpx.post(server.graphql_url, content=just_fits, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 2400


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (documents.CARD_BALANCE, {"card_reference": UNKNOWN_CARD, "page": 1, "limit": 101}),
        (documents.LINE_ITEMS, {"merchant_transaction_reference": "x", "page": 1, "limit": 101}),
        (documents.ORDER_CUSTOMERS, {"limit": 101, "page": 1, "consents_limit": 1, "consents_page": 1}),
        (documents.CARD_CUSTOMERS, {"limit": 101, "page": 1, "consents_limit": 1, "consents_page": 1}),
    ],
    ids=["Cards", "LineItems", "Orders", "Cards-customers"],
)
def test_list_limit_above_100_is_a_validation_error(api: Api, query: str, variables: dict[str, Any]) -> None:
    body = api.call(query, variables)
    [error] = body["errors"]
    assert (error["message"], error["validation"]) == ("validation", {"limit": [NOT_EXPECTED]})
    assert "errors" not in api.call(query, {**variables, "limit": 100})


def test_nested_consents_limit_above_100_is_refused(api: Api, demo: Demo) -> None:
    """Consents are resolved for an order's receipt contact: sell one with a contact, then page them."""
    variables = order_variables(demo, demo.card_references.pop(), 1000)
    variables["receipt_contact"] = {"email": "guest@example.com", "consent_copy": "Yes please"}
    query = documents.CREATE_ORDER.replace(
        "$merchant_transaction_reference:String",
        "$merchant_transaction_reference:String, $receipt_contact:ReceiptContactInput",
    ).replace(
        "merchant_transaction_reference : $merchant_transaction_reference",
        "merchant_transaction_reference : $merchant_transaction_reference, receipt_contact: $receipt_contact",
    )
    assert "errors" not in api.call(query, variables)
    fine = api.call(documents.ORDER_CUSTOMERS, {"limit": 1, "page": 1, "consents_limit": 100, "consents_page": 1})
    [order] = fine["data"]["Orders"]["data"]
    assert [c["consent_copy"] for c in order["ReceiptEmail"]["Consents"]["data"]] == ["Yes please"]
    body = api.call(documents.ORDER_CUSTOMERS, {"limit": 1, "page": 1, "consents_limit": 101, "consents_page": 1})
    [error] = body["errors"]
    assert error["path"][-1] == "Consents" and error["validation"] == {"limit": [NOT_EXPECTED]}


def test_input_lists_are_capped_at_100(server: LiveServer, demo: Demo, api: Api) -> None:
    item = {"fulfilment_method_id": 3, "product_id": demo.product_id, "generate_card_reference": True}
    item["custom_price_modifier_value"] = 100
    variables = order_variables(demo, None, 100 * 101)
    variables["order_items"] = [item] * 101
    reversal = {
        "ReversalItems": [{"line_item_id": i + 1, "shipping_refund": False} for i in range(101)],
        "merchant_transaction_reference": ref("rev"),
        "merchant_id": demo.merchant_id,
        "unit_epos_reference": demo.epos,
    }
    with unchanged(server.database_url, demo.account_id):
        order = api.call(documents.CREATE_ORDER, variables)
        undo = api.call(documents.REVERSAL, reversal)
    assert order["errors"][0]["validation"] == {"order_items": [NOT_EXPECTED]}
    assert undo["errors"][0]["validation"] == {"ReversalItems": [NOT_EXPECTED]}


def test_batched_arrays_are_refused_and_run_nothing(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo)
    batch = [{"query": documents.ADJUSTMENT, "variables": adjustment_variables(demo, card, -100)}] * 2
    with unchanged(server.database_url, demo.account_id):
        response = httpx.post(server.graphql_url, json=batch, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": BATCH_REFUSED,
                "customer_facing": False,
                "extensions": {"code": "QUERY_LIMIT", "limit": "batch"},
            }
        ],
        "data": None,
    }


TYPO = "{ Cards { data { balanc } } }"


def test_no_field_suggestions_without_a_valid_token(server: LiveServer, api: Api) -> None:
    for caller in (Api(server), Api(server, "not-a-token")):
        body = caller.call(TYPO)
        assert body["errors"][0]["message"] == "Cannot query field 'balanc' on type 'Card'."
    assert (
        api.call(TYPO)["errors"][0]["message"] == "Cannot query field 'balanc' on type 'Card'. Did you mean 'balance'?"
    )


def test_no_input_field_suggestions_without_a_valid_token(server: LiveServer, demo: Demo, api: Api) -> None:
    variables = order_variables(demo, demo.card_references[0], 2500, item={"prodct_id": demo.product_id})
    with unchanged(server.database_url, demo.account_id):
        anonymous = Api(server).post(documents.CREATE_ORDER, variables)
        known = api.post(documents.CREATE_ORDER, variables)
    assert "Did you mean" not in anonymous.text and "prodct_id" in anonymous.text
    assert "Did you mean 'product_id'?" in known.text


def test_introspection_stays_open_as_the_guide_describes(server: LiveServer) -> None:
    for query in (documents.SCHEMA_TYPES, documents.CARD_TYPE):
        response = httpx.get(server.graphql_url, params={"query": query})
        assert response.status_code == 200 and "errors" not in response.json()
    card = httpx.get(server.graphql_url, params={"query": documents.CARD_TYPE}).json()["data"]["__type"]
    assert card["name"] == "Card" and {"card_reference", "balance"} <= {f["name"] for f in card["fields"]}
    full = Api(server).call(get_introspection_query(descriptions=True))
    assert "errors" not in full and full["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/graphql"],
)
def test_mutations_need_a_json_body(server: LiveServer, demo: Demo, api: Api, content_type: str) -> None:
    card = sold(api, demo)
    body = json.dumps({"query": documents.ADJUSTMENT, "variables": adjustment_variables(demo, card, -100)})
    with unchanged(server.database_url, demo.account_id):
        response = httpx.post(
            server.graphql_url,
            content=body,
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": content_type},
        )
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE"}


def test_mutations_are_refused_on_get(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo)
    params = {"query": documents.ADJUSTMENT, "variables": json.dumps(adjustment_variables(demo, card, -100))}
    with unchanged(server.database_url, demo.account_id):
        response = httpx.get(server.graphql_url, params=params, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"] == {"code": "METHOD_NOT_ALLOWED"}
