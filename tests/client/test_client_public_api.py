"""The package's public surface: `__all__`, typing marker, documents, dependencies."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import graphql
import pytest

import giftledger_client
from giftledger_client import documents, errors

PACKAGE = Path(giftledger_client.__file__).parent
SERVER_SCHEMA = PACKAGE.parent / "giftledger" / "api" / "schema.graphql"

DOCUMENTED = {
    # client and settings
    "GiftCardClient",
    "TerminalSettings",
    # results
    "Balance",
    "Sale",
    "Adjustment",
    "Redemption",
    "Reversal",
    "LineItem",
    "Product",
    "PriceModifier",
    "ValueSplit",
    # errors
    "GiftLedgerError",
    "ConfigurationError",
    "IntegrationDisabled",
    "InvalidCardNumber",
    "AuthenticationFailed",
    "ValidationFailed",
    "CardNotFound",
    "InsufficientBalance",
    "SiteNotRecognised",
    "DuplicateReference",
    "TransactionNotFound",
    "AlreadyReversed",
    "Throttled",
    "TransportError",
    "ServerError",
    # helpers
    "check_card_number",
    "luhn_check_digit",
    "new_reference",
}

ERROR_CLASSES = {
    "ConfigurationError",
    "IntegrationDisabled",
    "InvalidCardNumber",
    "AuthenticationFailed",
    "ValidationFailed",
    "CardNotFound",
    "InsufficientBalance",
    "SiteNotRecognised",
    "DuplicateReference",
    "TransactionNotFound",
    "AlreadyReversed",
    "Throttled",
    "TransportError",
    "ServerError",
}


def test_all_is_exactly_the_documented_surface() -> None:
    assert len(giftledger_client.__all__) == len(set(giftledger_client.__all__))
    assert set(giftledger_client.__all__) == DOCUMENTED


def test_every_public_name_resolves() -> None:
    for name in giftledger_client.__all__:
        assert getattr(giftledger_client, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from giftledger_client import *", namespace)
    assert set(namespace) >= DOCUMENTED


def test_readme_names_every_public_name() -> None:
    readme = (PACKAGE / "README.md").read_text(encoding="utf-8")
    missing = [name for name in giftledger_client.__all__ if not re.search(rf"\b{name}\b", readme)]
    assert missing == []


def test_public_callables_have_docstrings() -> None:
    for name in giftledger_client.__all__:
        assert getattr(giftledger_client, name).__doc__, name
    client = giftledger_client.GiftCardClient
    for method in ("check_balance", "sell_card", "sell_digital_card", "top_up", "redeem", "reverse", "products"):
        assert getattr(client, method).__doc__, method


def test_package_is_marked_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_error_tree_has_one_root() -> None:
    subclasses = {cls.__name__ for cls in errors.GiftLedgerError.__subclasses__()}
    assert subclasses == ERROR_CLASSES
    for name in ERROR_CLASSES:
        assert issubclass(getattr(giftledger_client, name), giftledger_client.GiftLedgerError)


def test_depends_on_httpx_and_the_standard_library_only() -> None:
    allowed = set(sys.stdlib_module_names) | {"httpx"}
    for module in PACKAGE.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{module.name} imports {name}"


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_documents_are_valid_graphql(name: str) -> None:
    document = graphql.parse(documents.ALL[name])
    assert len(document.definitions) == 1


@pytest.mark.skipif(not SERVER_SCHEMA.is_file(), reason="the server's schema.graphql is not written yet")
@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_documents_validate_against_the_server_schema(name: str) -> None:
    schema = graphql.build_schema(SERVER_SCHEMA.read_text(encoding="utf-8"))
    assert graphql.validate(schema, graphql.parse(documents.ALL[name])) == []
