"""HTTP framing: content types, malformed bodies, GET mutations, unknown fields, size limits."""

from __future__ import annotations

import httpx

from tests.api import documents
from tests.api.till import adjustment_variables, sold
from tests.support import Api, Demo, LiveServer, unchanged


def test_mutation_on_get_is_refused(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo)
    import json

    with unchanged(server.database_url, demo.account_id):
        response = httpx.get(
            server.graphql_url,
            params={"query": documents.ADJUSTMENT, "variables": json.dumps(adjustment_variables(demo, card, -100))},
            headers={"Authorization": f"Bearer {api.token}"},
        )
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_form_posts_are_refused(server: LiveServer, demo: Demo, api: Api) -> None:
    with unchanged(server.database_url, demo.account_id):
        response = httpx.post(
            server.graphql_url, data={"query": documents.ADJUSTMENT}, headers={"Authorization": f"Bearer {api.token}"}
        )
    assert response.status_code == 415
    assert response.json() == {
        "errors": [
            {
                "message": "Send the request as application/json.",
                "customer_facing": False,
                "extensions": {"code": "UNSUPPORTED_MEDIA_TYPE"},
            }
        ],
        "data": None,
    }


def test_malformed_json_and_bad_envelopes(server: LiveServer) -> None:
    headers = {"Content-Type": "application/json"}
    assert httpx.post(server.graphql_url, content=b"{nope", headers=headers).status_code == 400
    assert httpx.post(server.graphql_url, content=b"[1,2]", headers=headers).status_code == 400
    assert httpx.post(server.graphql_url, content=b'{"query": 5}', headers=headers).status_code == 400
    response = httpx.post(
        server.graphql_url, content=b'{"query": "{ Cards { data { id } } }", "variables": 3}', headers=headers
    )
    assert response.status_code == 400


def test_oversized_body_is_refused(server: LiveServer) -> None:
    body = '{"query": "' + "x" * 70_000 + '"}'
    response = httpx.post(server.graphql_url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_syntax_errors_and_unknown_fields_have_the_contract_shape(server: LiveServer, api: Api) -> None:
    syntax = api.call("{ Cards(limit: 1 { data { id } } }")
    assert syntax["data"] is None
    assert syntax["errors"][0]["extensions"]["code"] == "GRAPHQL"
    assert syntax["errors"][0]["customer_facing"] is False
    unknown = api.call("{ Cards(limit: 1) { data { nope } } }")
    assert unknown["data"] == {"Cards": None}
    assert "nope" in unknown["errors"][0]["message"]


def test_missing_required_variable_is_a_validation_error(server: LiveServer, demo: Demo, api: Api) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = api.call(
            documents.ADJUSTMENT,
            {"value": -100, "unit_epos_reference": demo.epos, "merchant_id": demo.merchant_id, "currency": "GBP"},
        )
    assert body["data"] == {"createBalanceAdjustment": None}
    [error] = body["errors"]
    assert error["message"] == "validation"
    assert error["validation"] == {"card_reference": ["This field is required"]}


def test_requests_without_a_token_are_unauthorized(server: LiveServer, demo: Demo) -> None:
    body = Api(server).call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert body["data"] == {"Products": None}
    assert body["errors"][0]["message"] == "Unauthorized"
    assert body["errors"][0]["locations"] == [{"line": 2, "column": 2}]
