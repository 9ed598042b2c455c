"""Fixtures for the security tests (the shared `server`, `demo`, `api` fixtures come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Api, Demo, LiveServer, new_demo, signed_in


@pytest.fixture
def other(database_url: str) -> Demo:
    """A second fresh demo account: "account B" of the tenant-isolation tests."""
    return new_demo(database_url)


@pytest.fixture
def other_api(server: LiveServer, other: Demo) -> Iterator[Api]:
    yield signed_in(server, other)
