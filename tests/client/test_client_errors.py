"""Server errors mapped onto the exception tree, with the server's exact messages."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fake_toggle_server import (
    CARD_NOT_FOUND,
    DUPLICATE_REFERENCE,
    NEGATIVE_BALANCE,
    NOT_EXPECTED,
    SITE_NOT_RECOGNISED,
    VALID_CARD,
    FakeToggle,
    card_number,
    make_client,
    make_settings,
)

from giftledger_client import (
    AlreadyReversed,
    AuthenticationFailed,
    CardNotFound,
    ConfigurationError,
    DuplicateReference,
    GiftCardClient,
    GiftLedgerError,
    InsufficientBalance,
    ServerError,
    SiteNotRecognised,
    Throttled,
    ValidationFailed,
)

UNKNOWN_CARD = card_number(2)


@pytest.fixture(params=[True, False], ids=["with-code", "message-only"])
def server(request: pytest.FixtureRequest) -> FakeToggle:
    """The fake, once with `extensions.code` on errors and once without (like Toggle itself)."""
    fake = FakeToggle(send_codes=request.param)
    fake.add_card(VALID_CARD, 5000)
    return fake


def test_validation_error_names_the_fields(server: FakeToggle) -> None:
    with make_client(server, merchant_id=99) as client, pytest.raises(ValidationFailed) as caught:
        client.top_up(VALID_CARD, 1000, reference="v-1")
    error = caught.value
    assert str(error) == "merchant_id: This field is not of an expected value"
    assert error.message == "merchant_id: This field is not of an expected value"
    assert error.validation == {"merchant_id": [NOT_EXPECTED]}
    assert error.code == "VALIDATION"
    assert error.customer_facing is False
    assert error.reference == "v-1"


def test_card_not_found(server: FakeToggle) -> None:
    with make_client(server) as client, pytest.raises(CardNotFound) as caught:
        client.top_up(UNKNOWN_CARD, 1000)
    assert str(caught.value) == CARD_NOT_FOUND
    assert caught.value.code == "CARD_NOT_FOUND"
    assert caught.value.customer_facing is True


def test_site_not_recognised(server: FakeToggle) -> None:
    with make_client(server, site_reference="till-9") as client, pytest.raises(SiteNotRecognised) as caught:
        client.top_up(VALID_CARD, 1000)
    assert str(caught.value) == SITE_NOT_RECOGNISED
    assert server.line_items == []


def test_negative_balance(server: FakeToggle) -> None:
    with make_client(server) as client:
        client.top_up(VALID_CARD, 1000, reference="t-1")
        client.redeem(VALID_CARD, 6000)
        with pytest.raises(InsufficientBalance) as caught:
            client.reverse("t-1")  # the top-up was spent: reversing it would go below zero
    assert str(caught.value) == NEGATIVE_BALANCE
    assert server.cards[VALID_CARD].balance == 0


def test_duplicate_reference_on_a_first_attempt(server: FakeToggle) -> None:
    with make_client(server) as client:
        client.top_up(VALID_CARD, 1000, reference="dup-1")
        with pytest.raises(DuplicateReference) as caught:
            client.top_up(VALID_CARD, 1000, reference="dup-1")
    assert str(caught.value) == DUPLICATE_REFERENCE
    assert caught.value.reference == "dup-1"
    assert caught.value.line_item_ids == ((101,) if server.send_codes else ())
    assert len(server.line_items) == 1
    assert server.cards[VALID_CARD].balance == 6000


def test_already_reversed(server: FakeToggle) -> None:
    with make_client(server) as client:
        client.top_up(VALID_CARD, 1000, reference="r-1")
        client.reverse("r-1")
        with pytest.raises(GiftLedgerError) as caught:
            client.reverse("r-1", reversal_reference="r-1-b")
    assert str(caught.value) == "Line item 101 has already been reversed."
    # Without a code the message is not one of Toggle's documented ones: the base class carries it.
    assert type(caught.value) is (AlreadyReversed if server.send_codes else GiftLedgerError)


def test_forbidden_is_not_retried_with_a_new_login(fake: FakeToggle) -> None:
    with make_client(fake, account_id=8) as client, pytest.raises(AuthenticationFailed) as caught:
        client.products()
    assert str(caught.value) == "You do not have access to this account."
    assert caught.value.code == "FORBIDDEN"
    assert fake.fields_called() == ["loginUser", "Products"]


# -- replies scripted by hand, for shapes the fake never sends ------------------------------------------


def scripted_client(*answers: httpx.Response | Exception) -> tuple[GiftCardClient, list[dict[str, Any]]]:
    """A client whose login succeeds and whose other requests get `answers` in turn (the last repeats)."""
    queue = list(answers)
    seen: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "loginUser" in body["query"]:
            return httpx.Response(200, json={"data": {"loginUser": {"id": 1}}}, headers={"X-Authorization": "Bearer t"})
        seen.append(body)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = GiftCardClient(make_settings(), transport=httpx.MockTransport(handle), sleep=lambda _: None)
    return client, seen


def graphql_error(message: str, data_field: str = "createBalanceAdjustment", **extra: Any) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "locations": [{"line": 2, "column": 29}], "customer_facing": False}
    error.update(extra)
    return httpx.Response(200, json={"errors": [error], "data": {data_field: None}})


def test_toggles_documented_validation_reply() -> None:
    client, _ = scripted_client(graphql_error("validation", validation={"currency": ["This field is required"]}))
    with client, pytest.raises(ValidationFailed) as caught:
        client.top_up(VALID_CARD, 1000)
    assert str(caught.value) == "currency: This field is required"
    assert caught.value.validation == {"currency": ["This field is required"]}


def test_several_validation_messages_are_joined() -> None:
    validation = {"currency": ["This field is required"], "value": ["Must be a number.", "Must not be zero."]}
    client, _ = scripted_client(graphql_error("validation", validation=validation, extensions={"code": "VALIDATION"}))
    with client, pytest.raises(ValidationFailed) as caught:
        client.top_up(VALID_CARD, 1000)
    assert str(caught.value) == ("currency: This field is required; value: Must be a number.; value: Must not be zero.")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("THROTTLED", Throttled), ("GRAPHQL", ServerError), ("INTERNAL", ServerError)],
)
def test_refusals_that_are_not_retried(code: str, expected: type[GiftLedgerError]) -> None:
    client, seen = scripted_client(graphql_error("Something went wrong.", extensions={"code": code}))
    with client, pytest.raises(expected) as caught:
        client.top_up(VALID_CARD, 1000)
    assert type(caught.value) is expected
    assert str(caught.value) == "Something went wrong."
    assert caught.value.code == code
    assert len(seen) == 1


def test_an_unknown_code_keeps_the_message_and_code() -> None:
    client, _ = scripted_client(graphql_error("Card expired.", extensions={"code": "CARD_EXPIRED"}))
    with client, pytest.raises(GiftLedgerError) as caught:
        client.top_up(VALID_CARD, 1000)
    assert type(caught.value) is GiftLedgerError
    assert (str(caught.value), caught.value.code) == ("Card expired.", "CARD_EXPIRED")


def test_duplicate_reference_carries_the_original_line_items() -> None:
    extensions = {"code": "DUPLICATE_REFERENCE", "merchant_transaction_reference": "x-1", "line_item_ids": [12, 13]}
    client, _ = scripted_client(graphql_error(DUPLICATE_REFERENCE, extensions=extensions))
    with client, pytest.raises(DuplicateReference) as caught:
        client.top_up(VALID_CARD, 1000, reference="x-1")
    assert caught.value.line_item_ids == (12, 13)
    assert caught.value.reference == "x-1"


def test_http_429_is_throttled() -> None:
    client, seen = scripted_client(httpx.Response(429, text="slow down"))
    with client, pytest.raises(Throttled) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == "Too many requests. Try again later."
    assert len(seen) == 1


def test_http_500_on_a_query_is_retried_then_raised() -> None:
    client, seen = scripted_client(httpx.Response(500, text="oops"))
    with client, pytest.raises(ServerError) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == "The gift card server failed (HTTP 500)."
    assert caught.value.retryable is True
    assert len(seen) == 3


def test_a_query_recovers_after_a_temporary_failure() -> None:
    card = {
        "card_reference": VALID_CARD,
        "balance": 10,
        "initial_balance": 10,
        "created_at": None,
        "updated_at": None,
        "ValueSplit": None,
    }
    ok = httpx.Response(200, json={"data": {"Cards": {"data": [card]}}})
    client, seen = scripted_client(httpx.ConnectError("refused"), ok)
    with client:
        assert client.check_balance(VALID_CARD).balance == 10
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(404, text="Not Found"), "No GraphQL endpoint at https://toggle.test/graphql (HTTP 404)."),
        (
            httpx.Response(301, headers={"Location": "https://api.toggle.test/graphql"}),
            "The endpoint redirects to https://api.toggle.test/graphql: set the endpoint to that URL.",
        ),
    ],
)
def test_a_wrong_endpoint_is_a_configuration_error(response: httpx.Response, message: str) -> None:
    client, _ = scripted_client(response)
    with client, pytest.raises(ConfigurationError) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == message


def test_a_reply_of_the_wrong_shape_is_a_server_error() -> None:
    client, _ = scripted_client(httpx.Response(200, json={"data": {"Cards": {"data": [{"balance": "lots"}]}}}))
    with client, pytest.raises(ServerError) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == "Unexpected reply from the gift card server: missing card_reference."


def test_unauthorized_http_status_logs_in_again() -> None:
    card = {"card_reference": VALID_CARD, "balance": 10, "initial_balance": 10}
    ok = httpx.Response(200, json={"data": {"Cards": {"data": [card]}}})
    client, seen = scripted_client(httpx.Response(401), ok)
    with client:
        assert client.check_balance(VALID_CARD).balance == 10
    assert len(seen) == 2


def test_http_503_with_an_unrecognised_graphql_error_is_temporary() -> None:
    """A 5xx whose body is GraphQL-shaped but names no known refusal (a proxy's or a framework's error page)
    says nothing about the outcome: retried for a query, reconciled for a mutation, never a final refusal."""
    unavailable = httpx.Response(503, json={"errors": [{"message": "Service unavailable"}]})
    card = {"card_reference": VALID_CARD, "balance": 10, "initial_balance": 10}
    ok = httpx.Response(200, json={"data": {"Cards": {"data": [card]}}})
    client, seen = scripted_client(unavailable, ok)
    with client:
        assert client.check_balance(VALID_CARD).balance == 10
    assert len(seen) == 2
    client, seen = scripted_client(unavailable)
    with client, pytest.raises(ServerError) as caught:
        client.check_balance(VALID_CARD)
    assert (str(caught.value), caught.value.retryable, len(seen)) == ("Service unavailable", True, 3)
