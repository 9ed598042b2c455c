"""Authentication: lazy login, token headers, refresh, one re-login, wrong password, disabled integration."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_toggle_server import BAD_CREDENTIALS, PASSWORD, USERNAME, VALID_CARD, FakeToggle, make_client

from giftledger_client import AuthenticationFailed, GiftCardClient, IntegrationDisabled


def test_constructing_a_client_sends_nothing(fake: FakeToggle) -> None:
    with make_client(fake):
        pass
    assert fake.calls == []


def test_logs_in_on_the_first_operation_only(client: GiftCardClient, fake: FakeToggle) -> None:
    client.check_balance(VALID_CARD)
    client.check_balance(VALID_CARD)
    assert fake.fields_called() == ["loginUser", "Cards", "Cards"]
    login = fake.calls[0]
    assert login.variables == {"username": USERNAME, "password": PASSWORD}
    assert login.authorization is None
    assert [call.authorization for call in fake.calls[1:]] == ["Bearer tok-1", "Bearer tok-1"]


def test_log_in_can_be_called_to_test_the_connection(client: GiftCardClient, fake: FakeToggle) -> None:
    client.log_in()
    assert fake.fields_called() == ["loginUser"]


def test_prefers_the_x_authorization_header() -> None:
    fake = FakeToggle(token_headers="conflicting")
    fake.add_card(VALID_CARD, 5000)
    with make_client(fake) as client:
        assert client.check_balance(VALID_CARD).balance == 5000
    assert fake.calls[1].authorization == "Bearer tok-1"


@pytest.mark.parametrize("style", ["x-only", "authorization-only"])
def test_takes_the_token_from_either_header(style: str) -> None:
    fake = FakeToggle(token_headers=style)
    fake.add_card(VALID_CARD, 5000)
    with make_client(fake) as client:
        client.check_balance(VALID_CARD)
    assert fake.calls[1].authorization == "Bearer tok-1"


def test_a_login_without_a_token_header_fails() -> None:
    fake = FakeToggle(token_headers="none")
    with make_client(fake) as client, pytest.raises(AuthenticationFailed) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == "The server accepted the login but sent no token."
    assert fake.fields_called() == ["loginUser"]


def test_adopts_a_refreshed_token_from_any_response(client: GiftCardClient, fake: FakeToggle) -> None:
    client.check_balance(VALID_CARD)
    fake.rotate_next = True  # the next reply carries tok-2 and retires tok-1
    client.check_balance(VALID_CARD)
    client.check_balance(VALID_CARD)
    assert fake.fields_called() == ["loginUser", "Cards", "Cards", "Cards"]
    assert [call.authorization for call in fake.calls[1:]] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize("send_codes", [True, False], ids=["with-code", "message-only"])
def test_logs_in_again_once_when_the_token_is_refused(send_codes: bool) -> None:
    fake = FakeToggle(send_codes=send_codes)
    fake.add_card(VALID_CARD, 5000)
    with make_client(fake) as client:
        client.check_balance(VALID_CARD)
        fake.expire_tokens()
        assert client.top_up(VALID_CARD, 700, reference="after-expiry").balance == 5700
    assert fake.fields_called() == [
        "loginUser",
        "Cards",
        "createBalanceAdjustment",
        "loginUser",
        "createBalanceAdjustment",
    ]
    assert [call.authorization for call in fake.calls_to("createBalanceAdjustment")] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert len(fake.line_items) == 1


def test_a_second_refusal_raises_authentication_failed(fake: FakeToggle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "_issue", lambda: "tok-never-valid")
    with make_client(fake) as client, pytest.raises(AuthenticationFailed) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == "Unauthorized"
    assert caught.value.code == "UNAUTHENTICATED"
    assert fake.fields_called() == ["loginUser", "Cards", "loginUser", "Cards"]


@pytest.mark.parametrize("send_codes", [True, False], ids=["with-code", "message-only"])
def test_a_wrong_password_raises_with_the_servers_message(send_codes: bool) -> None:
    fake = FakeToggle(send_codes=send_codes)
    with make_client(fake, password="wrong") as client, pytest.raises(AuthenticationFailed) as caught:
        client.check_balance(VALID_CARD)
    assert str(caught.value) == BAD_CREDENTIALS
    assert caught.value.message == BAD_CREDENTIALS
    assert fake.fields_called() == ["loginUser"]


OPERATIONS: dict[str, Callable[[GiftCardClient], object]] = {
    "log_in": lambda client: client.log_in(),
    "check_balance": lambda client: client.check_balance(VALID_CARD),
    "products": lambda client: client.products(),
    "line_items": lambda client: client.line_items("ref-1"),
    "sell_card": lambda client: client.sell_card(VALID_CARD, 1000),
    "sell_digital_card": lambda client: client.sell_digital_card(1000, "guest@example.com"),
    "top_up": lambda client: client.top_up(VALID_CARD, 1000),
    "redeem": lambda client: client.redeem(VALID_CARD, 1000),
    "reverse": lambda client: client.reverse("ref-1"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_disabled_integration_sends_nothing(fake: FakeToggle, operation: str) -> None:
    with make_client(fake, enabled=False) as client, pytest.raises(IntegrationDisabled) as caught:
        OPERATIONS[operation](client)
    assert str(caught.value) == "The gift card integration is disabled on this terminal."
    assert fake.calls == []


def test_a_disabled_integration_is_checked_before_the_card_number(fake: FakeToggle) -> None:
    with make_client(fake, enabled=False) as client, pytest.raises(IntegrationDisabled):
        client.check_balance("not a card")
    assert fake.calls == []
