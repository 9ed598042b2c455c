"""TerminalSettings: defaults, checks, and the dict round trip the till simulator stores."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from fake_toggle_server import ENDPOINT, PASSWORD, make_settings

from giftledger_client import ConfigurationError, GiftCardClient, TerminalSettings


def test_defaults_follow_the_contract() -> None:
    settings = TerminalSettings(
        endpoint=ENDPOINT,
        account_id=7,
        username="till-api",
        password=PASSWORD,
        site_reference="till-1",
        merchant_id=26,
    )
    assert settings.product_id is None
    assert settings.validate_card_number is True
    assert settings.card_prefix == "63011900"
    assert settings.card_length == 19
    assert settings.enabled is True
    assert settings.currency == "GBP"
    assert settings.timeout == 10.0


def test_to_dict_and_from_dict_round_trip_with_the_password() -> None:
    settings = make_settings(validate_card_number=False, enabled=False, timeout=5)
    stored = json.loads(json.dumps(settings.to_dict()))
    assert stored == {
        "endpoint": ENDPOINT,
        "account_id": 7,
        "username": "till-api",
        "password": PASSWORD,
        "site_reference": "till-1",
        "merchant_id": 26,
        "product_id": 244,
        "validate_card_number": False,
        "card_prefix": "63011900",
        "card_length": 19,
        "enabled": False,
        "currency": "GBP",
        "timeout": 5.0,
    }
    assert TerminalSettings.from_dict(stored) == settings


def test_from_dict_fills_defaults() -> None:
    minimal = {key: value for key, value in make_settings().to_dict().items() if key != "product_id"}
    for optional in ("validate_card_number", "card_prefix", "card_length", "enabled", "currency", "timeout"):
        del minimal[optional]
    restored = TerminalSettings.from_dict(minimal)
    assert restored.product_id is None
    assert restored.card_length == 19


def test_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(make_settings())


def test_settings_are_frozen() -> None:
    settings = make_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.enabled = False  # type: ignore[misc]
    assert dataclasses.replace(settings, enabled=False).enabled is False


def test_from_dict_refuses_unknown_keys() -> None:
    data = make_settings().to_dict() | {"pasword": "typo", "colour": "red"}
    with pytest.raises(ConfigurationError) as caught:
        TerminalSettings.from_dict(data)
    assert str(caught.value) == "Unknown terminal setting(s): colour, pasword."


def test_from_dict_names_missing_keys() -> None:
    data = make_settings().to_dict()
    del data["password"]
    del data["merchant_id"]
    with pytest.raises(ConfigurationError) as caught:
        TerminalSettings.from_dict(data)
    assert str(caught.value) == "Missing terminal setting(s): password, merchant_id."


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"endpoint": "toggle.test/graphql"}, "endpoint must be an http(s) URL, for example "),
        ({"endpoint": "ftp://toggle.test/graphql"}, "endpoint must be an http(s) URL, for example "),
        ({"account_id": "7"}, "account_id must be a whole number greater than zero."),
        ({"merchant_id": 0}, "merchant_id must be a whole number greater than zero."),
        ({"merchant_id": True}, "merchant_id must be a whole number greater than zero."),
        ({"product_id": -1}, "product_id must be a whole number greater than zero, or None."),
        ({"username": " "}, "username must be non-empty text."),
        ({"password": ""}, "password must be non-empty text."),
        ({"site_reference": None}, "site_reference must be non-empty text."),
        ({"enabled": "yes"}, "enabled must be true or false."),
        ({"card_prefix": "63A"}, "card_prefix must be digits (or empty for no prefix check)."),
        ({"card_length": 8}, "card_length must be a whole number longer than card_prefix."),
        ({"timeout": 0}, "timeout must be a number of seconds between 0 and 600."),
        ({"timeout": "10"}, "timeout must be a number of seconds between 0 and 600."),
    ],
)
def test_wrong_values_raise_configuration_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_settings(**overrides)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("max_attempts", [0, -1, True])
def test_client_refuses_a_nonsense_retry_budget(max_attempts: int) -> None:
    with pytest.raises(ConfigurationError):
        GiftCardClient(
            make_settings(), transport=httpx.MockTransport(lambda r: httpx.Response(500)), max_attempts=max_attempts
        )


def test_client_exposes_its_settings() -> None:
    settings = make_settings()
    with GiftCardClient(settings, transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        assert client.settings is settings
