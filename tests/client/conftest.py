"""Fixtures for the giftledger_client tests: a fake Toggle server and a client wired to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_toggle_server import VALID_CARD, FakeToggle, make_client

from giftledger_client import GiftCardClient


@pytest.fixture
def fake() -> FakeToggle:
    server = FakeToggle()
    server.add_card(VALID_CARD, 5000)
    return server


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause the client asked for (tests never really sleep)."""
    return []


@pytest.fixture
def client(fake: FakeToggle, sleeps: list[float]) -> Iterator[GiftCardClient]:
    with make_client(fake, sleeps) as gift_cards:
        yield gift_cards
