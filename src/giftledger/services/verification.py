"""`ledger verify`: prove an account's ledger keeps its invariants, and name every row that does not.

The invariants: a card's balance (and its tender and discount parts) is the sum of its line items; no
balance is negative and unsold stock holds nothing; a line item's value is non-zero and is its tender
plus its discount; every reversal points at exactly one reversible line item of the same card and undoes
its value, and a line item is reversed at most once; a merchant_transaction_reference is used once per
account and merchant; an order's totals are those of its sales, and it is cancelled exactly when every
sale is reversed; balance transfers pair up (a replacement's out and in, summing to zero) or are an import's
opening balances; a breakage is an expiry run's debit of an expired card's whole balance; every site, merchant,
API user, user, product, price modifier, order and transaction a transaction, line item or audit record names,
and every webhook endpoint an outbox message names, exists, and is of its account where it is an account's
(references with no foreign key: storage/tables.py, storage/outbox.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from giftledger.domain.errors import NotFound
from giftledger.services.context import Services
from giftledger.storage.people import Directory
from giftledger.storage.verification import Finding, LedgerAudit


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    examined: int
    violations: list[str]


@dataclass(frozen=True)
class AccountReport:
    account_id: int
    checks: list[CheckResult]

    @property
    def violations(self) -> list[str]:
        return [f"{check.name}: {v}" for check in self.checks for v in check.violations]


@dataclass(frozen=True)
class VerificationReport:
    accounts: list[AccountReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(account.violations for account in self.accounts)

    @property
    def violations(self) -> list[str]:
        return [f"account {a.account_id}: {v}" for a in self.accounts for v in a.violations]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "accounts": [
                {
                    "account_id": a.account_id,
                    "checks": [
                        {
                            "name": c.name,
                            "description": c.description,
                            "examined": c.examined,
                            "violations": c.violations,
                        }
                        for c in a.checks
                    ],
                }
                for a in self.accounts
            ],
        }


def _card(row: dict[str, Any]) -> str:
    return f"card {row['card_reference']} (id {row['id']})"


def _card_sum(row: dict[str, Any]) -> str:
    return (
        f"{_card(row)} holds {row['balance']} (tender {row['tender_balance']}, discount {row['discount_balance']}) "
        f"but its line items sum to {row['sum_value']} (tender {row['sum_tender']}, discount {row['sum_discount']})"
    )


def _negative(row: dict[str, Any]) -> str:
    return (
        f"{_card(row)} is negative: balance {row['balance']}, tender {row['tender_balance']}, "
        f"discount {row['discount_balance']}"
    )


def _stock(row: dict[str, Any]) -> str:
    return f"{_card(row)} is unsold stock but holds {row['balance']}"


def _split(row: dict[str, Any]) -> str:
    return f"line item {row['id']} has value {row['value']} = tender {row['tender']} + discount {row['discount']}?"


def _reversal(row: dict[str, Any]) -> str:
    return (
        f"line item {row['id']} (type {row['type_id']}, value {row['value']}) {row['problem']}"
        f" (reverses {row['reverses_line_item_id']}, whose value is {row['target_value']})"
    )


def _twice(row: dict[str, Any]) -> str:
    return f"line item {row['line_item_id']} is reversed {row['reversals']} times"


def _reference(row: dict[str, Any]) -> str:
    return (
        f"merchant_transaction_reference {row['merchant_transaction_reference']!r} of merchant {row['merchant_id']}"
        f" is used by {row['transactions']} transactions"
    )


def _order(row: dict[str, Any]) -> str:
    return (
        f"order {row['id']} (total {row['total']}, discount_total {row['discount_total']}, status {row['status']}) "
        f"has {row['sales']} sales with tender {row['sum_tender']} and discount {row['sum_discount']}, "
        f"{row['reversed']} of them reversed"
    )


def _transfer(row: dict[str, Any]) -> str:
    return (
        f"transaction {row['transaction_id']} ({row['kind']}) holds {row['outbound']} transfer(s) out and "
        f"{row['inbound']} in (and {row['others']} other line items) on {row['cards']} card(s), summing to "
        f"{row['value']} (tender {row['tender']}, discount {row['discount']})"
    )


def _named(row: dict[str, Any]) -> str:
    return f"{row['kind']} {row['id']} names {row['problem']}: id {row['named']}"


def _breakage(row: dict[str, Any]) -> str:
    return (
        f"breakage line item {row['id']} (value {row['value']}) on card id {row['card_id']} "
        f"(expiry {row['expiry_time']}) {row['problem']}"
    )


Check = tuple[str, str, Callable[[LedgerAudit], Awaitable[Finding]], Callable[[dict[str, Any]], str]]

CHECKS: tuple[Check, ...] = (
    ("card_balances", "each card's balance equals the sum of its line items", LedgerAudit.card_sums, _card_sum),
    (
        "non_negative",
        "no balance (nor its tender or discount part) is negative",
        LedgerAudit.negative_balances,
        _negative,
    ),
    ("stock_empty", "unsold stock cards hold nothing", LedgerAudit.stock_holding_value, _stock),
    (
        "line_item_values",
        "each line item's value is non-zero and tender + discount",
        LedgerAudit.line_item_splits,
        _split,
    ),
    (
        "reversal_links",
        "each reversal points at exactly one line item of its card and undoes it",
        LedgerAudit.reversal_links,
        _reversal,
    ),
    ("reversed_once", "each line item is reversed at most once", LedgerAudit.reversed_twice, _twice),
    (
        "unique_references",
        "no merchant_transaction_reference is used twice per account and merchant",
        LedgerAudit.reused_references,
        _reference,
    ),
    ("order_totals", "each order's totals and status match its line items", LedgerAudit.order_totals, _order),
    (
        "balance_transfers",
        "each transfer out pairs with one transfer in on another card, summing to zero; a transfer in alone is an"
        " import's opening balance",
        LedgerAudit.transfer_pairs,
        _transfer,
    ),
    (
        "breakage",
        "each breakage is an expiry run's debit of a card's whole balance, after its expiry",
        LedgerAudit.breakages,
        _breakage,
    ),
    (
        "references",
        "each site, merchant, API user, user, product, price modifier, order and transaction a transaction, line item"
        " or audit record names, and each webhook endpoint an outbox message names, exists, and is of its account",
        LedgerAudit.references,
        _named,
    ),
)


async def verify_account(services: Services, account_id: int) -> AccountReport:
    async with services.db.transaction() as conn:
        audit = LedgerAudit(conn, account_id)
        results = []
        for name, description, run, describe in CHECKS:
            finding = await run(audit)
            results.append(CheckResult(name, description, finding.examined, [describe(r) for r in finding.rows]))
    return AccountReport(account_id, results)


async def verify_ledger(services: Services, account_id: int | None = None) -> VerificationReport:
    """Run every check on one account (it must exist) or on every account, one account at a time."""
    async with services.db.transaction() as conn:
        known = await Directory(conn).account_ids()
    if account_id is not None:
        if account_id not in known:
            raise NotFound(f"There is no account {account_id}.")
        known = [account_id]
    return VerificationReport([await verify_account(services, a) for a in known])
