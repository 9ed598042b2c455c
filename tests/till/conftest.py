"""Fixtures for the till simulator tests: a loopback proxy in front of the live server, and a configured
terminal (settings file written by `giftledger till configure`) that reaches the server through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Demo, LiveServer
from tests.till.proxy import LoopbackProxy
from tests.till.terminal import Terminal


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[LoopbackProxy]:
    loopback = LoopbackProxy(server.graphql_url)
    yield loopback
    loopback.close()


@pytest.fixture
def terminal(demo: Demo, proxy: LoopbackProxy, tmp_path: Path) -> Terminal:
    """The demo account's PointOne till, configured through the CLI, talking through `proxy`."""
    till = Terminal(tmp_path / "till" / "till.json", demo, proxy.url)
    till.configure()
    assert proxy.exchanges == []
    return till
