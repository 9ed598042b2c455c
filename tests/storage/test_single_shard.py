"""The schema and the hot statements stay single-shard when distributed by `account_id` (docs/scaling.md).

Read from the code, not the database: every table in SQLAlchemy's metadata (every storage module imported, so
tables declared beside their repositories count), and every statement the storage layer writes as SQL text (each
module-level string of `giftledger.storage.*` that PostgreSQL's own parser, through pglast, reads as a SELECT,
INSERT, UPDATE or DELETE) plus the outbox's claims (SQLAlchemy Core, compiled). The rules:

Tables
- A table without `account_id` is one of the few global ones, each listed below with how it is handled (one
  listed there, `dashboard_sessions`, has an `account_id` column yet is global: found by its token).
- An account-scoped table's primary key is the surrogate `id` (a global sequence: the Citus migration makes it
  (account_id, id)) or includes `account_id`; every other unique key includes `account_id`.
- A foreign key between account-scoped tables names the target's `id` (the migration makes it (account_id, x) ->
  (account_id, id)) or includes `account_id`; an account-scoped table refers to a global one only if that one
  becomes a reference table; a global table never refers to an account-scoped one.

Statements
- Every mention of an account-scoped table is filtered by `account_id`: `alias.account_id = $n` (or `= other.
  account_id`, a co-located join) among the conditions of its own query level; an INSERT names `account_id`.

What breaks a rule today is listed below with why it is single-shard anyway, or what the migration changes.
A self-check feeds the rules a bad table and bad statements and sees each refused."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pglast
from pglast import ast
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

import giftledger.storage as storage_package
from giftledger.storage import outbox
from giftledger.storage.tables import metadata

# Tables without account_id, and how each is handled when the rest is distributed by account_id.
GLOBAL_TABLES = {
    "accounts": "the distribution key itself: distributed by id, co-located with the account-scoped tables",
    "merchants": "reference table: the POS companies, a few rows, read by every till statement",
    "users": "reference table: a person may belong to several accounts; written at sign-up and password change",
    "login_attempts": "local to the coordinator: keyed by login name and address, never joined to account data",
    "throttle_buckets": "local to the coordinator: keyed by caller, never joined to account data",
    "dashboard_sessions": "local to the coordinator: found by its cookie's token, which names no account; its "
    "account_id is the account the user is working in (NULL until one is chosen), read once per request",
}
# Account-scoped tables whose account_id may be NULL, and why.
ACCOUNTLESS_ROWS = {
    "audit_events": "a refused request from a caller with no account (no valid token) is audited with no "
    "account: under Citus those rows go to a local table of their own (the migration splits them off), the rest "
    "stay with their account",
}
REFERENCE_TABLES = {"accounts", "merchants", "users"}  # what an account-scoped table may refer to

# (table, key columns) whose key lacks account_id today, and why.
KEY_EXCEPTIONS = {
    ("api_users", ("username",)): "a till logs in with its username alone: the login looks the account up by it; "
    "under Citus a small reference table (username -> account_id) serves that look-up",
    ("invitations", ("token_hash",)): "an invitation link names no account: found by its token once, at sign-up",
    ("outbox_messages", ("message_id",)): "the Message-ID is a random global name (make_msgid): unique by "
    "construction; the migration makes the constraint (account_id, message_id)",
    ("card_pages", ("token_hash",)): "a card page's public link names no account: found by its token (one row), "
    "then read by account_id; under Citus a token -> account_id look-up table, as for usernames",
    ("imported_cards", ("card_id",)): "keyed by the card it records (an account's card id): the migration makes "
    "it (account_id, card_id)",
}

# (table, statement or statements: a name, or a prefix ending in "."; "*": any) that filter an account-scoped table
# by something else, and why each is single-shard anyway or what the migration changes (docs/scaling.md).
STATEMENT_EXCEPTIONS = {
    ("card_lookup_misses", "*"): "card-guessing counts misses per caller and per client address across accounts "
    "(an address guessing at several accounts is still one guesser): under Citus the table stays on the "
    "coordinator (a local table), and the till statements that read it become a router query after a CTE the "
    "coordinator evaluates first; or the counts move out of PostgreSQL",
    ("outbox_messages", "outbox.claim"): "the e-mail sender claims due messages across accounts by design (one "
    "queue): under Citus each worker node runs a sender over its own shards, or the claim goes shard by shard",
    ("outbox_messages", "outbox.sent"): "the outcome is written by message id: `Claimed` carries the account, "
    "so the migration adds account_id to these updates",
    ("outbox_messages", "webhooks._CLAIM_SQL"): "the webhook sender's claim: across accounts, as the e-mail one",
    ("webhook_endpoints", "webhooks._CLAIM_SQL"): "read beside the claimed messages, joined by endpoint id",
    ("cards", "expiry._DUE_ACCOUNTS"): "the expiry job's list of accounts with cards due, across accounts by "
    "design (a batch job, not a till's); each account's batch then runs filtered by account_id",
    ("cards", "expiry._REMINDER_ACCOUNTS"): "the same, for expiry reminders",
    ("*", "exports."): "the exports and reports (one account's, on the replica when there is one) join an "
    "account's rows by id alone: single-account by their own account_id filter, but under Citus every join "
    "needs account_id too (a mechanical change, listed in docs/scaling.md)",
}


def _import_storage() -> None:
    for module in pkgutil.iter_modules(storage_package.__path__):
        if module.name != "migrations":
            importlib.import_module(f"giftledger.storage.{module.name}")


_import_storage()


# -- tables -----------------------------------------------------------------------------------------------


def _unique_keys(table: Table) -> list[tuple[str, ...]]:
    keys = {tuple(c.name for c in k.columns) for k in table.constraints if isinstance(k, UniqueConstraint)}
    keys |= {tuple(getattr(e, "name", None) or str(e) for e in i.expressions) for i in table.indexes if i.unique}
    keys |= {(c.name,) for c in table.columns if c.unique}
    return sorted(keys)


def table_problems(tables: MetaData) -> list[str]:
    """Every way a table breaks the rules (the module's docstring), known exceptions left out."""
    problems = []
    scoped = {t.name for t in tables.tables.values() if "account_id" in t.c} - set(GLOBAL_TABLES)
    for table in tables.tables.values():
        name = table.name
        if name not in scoped:
            if name not in GLOBAL_TABLES:
                problems.append(f"{name}: no account_id and not a known global table")
            for fk in table.foreign_keys:
                if fk.column.table.name in scoped:
                    problems.append(f"{name}: a global table refers to account-scoped {fk.column.table.name}")
            continue
        if table.c.account_id.nullable and name not in ACCOUNTLESS_ROWS:
            problems.append(f"{name}: account_id may be NULL")
        primary = tuple(c.name for c in table.primary_key.columns)
        keys = [primary] if primary != ("id",) else []
        for key in [*keys, *_unique_keys(table)]:
            if "account_id" not in key and (name, key) not in KEY_EXCEPTIONS:
                problems.append(f"{name}: unique key {key} lacks account_id")
        for constraint in table.foreign_key_constraints:
            target = constraint.referred_table.name
            columns = [e.column.name for e in constraint.elements]
            if target in scoped and target != "accounts":
                if "account_id" not in columns and columns != ["id"]:
                    problems.append(f"{name}: foreign key to {target}{columns} neither its id nor with account_id")
            elif target not in scoped and target not in REFERENCE_TABLES:
                problems.append(f"{name}: refers to global {target}, which is not a reference table")
    return problems


def test_every_table_keeps_to_the_account_rules() -> None:
    assert table_problems(metadata) == []
    # every table listed still exists, and every exception is still needed
    assert set(GLOBAL_TABLES) | set(ACCOUNTLESS_ROWS) <= set(metadata.tables)
    assert all(metadata.tables[name].c.account_id.nullable for name in ACCOUNTLESS_ROWS)
    keys = {(t.name, k) for t in metadata.tables.values() for k in _unique_keys(t)}
    keys |= {(t.name, tuple(c.name for c in t.primary_key.columns)) for t in metadata.tables.values()}
    assert set(KEY_EXCEPTIONS) <= keys


# -- statements ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    statement: str
    table: str


def _scoped_tables() -> set[str]:
    return {t.name for t in metadata.tables.values() if "account_id" in t.c} - set(GLOBAL_TABLES)


def _names(node: Any) -> tuple[str, ...]:
    return tuple(str(f.sval) for f in node.fields if isinstance(f, ast.String))


def _is_account_value(node: Any) -> bool:
    """A parameter ($n, cast or not) or some table's account_id (a co-located join)."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, ast.ParamRef) or (isinstance(node, ast.ColumnRef) and _names(node)[-1:] == ("account_id",))


def _children(node: Any) -> Iterator[Any]:
    for slot in node.__slots__:
        value = getattr(node, slot, None)
        if isinstance(value, ast.Node):
            yield value
        elif isinstance(value, list | tuple):
            yield from (v for v in value if isinstance(v, ast.Node))


def _equalities(node: Any) -> Iterator[ast.A_Expr]:
    """The `=` comparisons of one query level's conditions (not those of a query nested in them)."""
    if node is None or isinstance(node, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        return
    if isinstance(node, ast.A_Expr) and [n.sval for n in node.name or ()] == ["="]:
        yield node
    for child in _children(node):
        yield from _equalities(child)


def _from_items(items: Any) -> Iterator[tuple[ast.RangeVar, list[Any]]]:
    """The tables of a FROM list, each with the join conditions around it."""
    for item in items or ():
        if isinstance(item, ast.RangeVar):
            yield item, []
        elif isinstance(item, ast.JoinExpr):
            inner = list(_from_items([item.larg, item.rarg]))
            for table, quals in inner:
                yield table, [*quals, item.quals]


def _filtered(reference: str, conditions: list[Any], alone: bool) -> bool:
    for condition in conditions:
        for eq in _equalities(condition):
            for side, other in ((eq.lexpr, eq.rexpr), (eq.rexpr, eq.lexpr)):
                if isinstance(side, ast.ColumnRef) and _is_account_value(other):
                    names = _names(side)
                    if names == (reference, "account_id") or (alone and names == ("account_id",)):
                        return True
    return False


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _parse(sql: str) -> Any:
    """PostgreSQL's parse of `sql`, SQLAlchemy's `:name` parameters read as `$1`."""
    return pglast.parse_sql(_NAMED.sub(r"$1", sql))


def statement_mentions(name: str, sql: str) -> list[Mention]:
    """Each mention of an account-scoped table in `sql` that is not filtered by account_id."""
    scoped = _scoped_tables()
    unfiltered: list[Mention] = []
    ctes: set[str] = set()  # a CTE named like a table is not that table

    def collect(node: Any) -> None:
        if isinstance(node, ast.CommonTableExpr):
            ctes.add(str(node.ctename))
        for child in _children(node):
            collect(child)

    def visit(node: Any) -> None:
        if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
            items: list[tuple[Any, list[Any]]] = list(
                _from_items(getattr(node, "fromClause", None) or getattr(node, "usingClause", None))
            )
            if not isinstance(node, ast.SelectStmt):
                items.append((node.relation, []))
            tables = [t for t, _ in items if t.relname in scoped and t.relname not in ctes]
            for table, quals in items:
                if table.relname in scoped and table.relname not in ctes:
                    reference = str(table.alias.aliasname if table.alias else table.relname)
                    if not _filtered(reference, [node.whereClause, *quals], alone=len(tables) == 1):
                        unfiltered.append(Mention(name, str(table.relname)))
        if isinstance(node, ast.InsertStmt):
            relation: Any = node.relation
            if relation.relname in scoped and "account_id" not in [c.name for c in node.cols or ()]:
                unfiltered.append(Mention(name, str(relation.relname)))
        for child in _children(node):
            visit(child)

    for raw in _parse(sql):
        collect(raw.stmt)
    for raw in _parse(sql):
        visit(raw.stmt)
    return unfiltered


def _written_statements() -> dict[str, str]:
    """Every module-level string of the storage modules that is a SELECT, INSERT, UPDATE or DELETE."""
    found = {}
    for module_info in pkgutil.iter_modules(storage_package.__path__):
        if module_info.name == "migrations":
            continue
        module = importlib.import_module(f"giftledger.storage.{module_info.name}")
        for attribute, value in vars(module).items():
            if not isinstance(value, str):
                continue
            try:
                parsed = _parse(value)
            except pglast.parser.ParseError:
                continue
            if parsed and all(
                isinstance(r.stmt, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt) for r in parsed
            ):
                found[f"{module_info.name}.{attribute}"] = value
    return found


class _Recorder:
    """Stands in for a connection: records each statement, returns no rows."""

    def __init__(self) -> None:
        self.statements: list[ClauseElement] = []

    async def execute(self, statement: ClauseElement, *args: Any) -> list[Any]:
        self.statements.append(statement)
        return []


def _outbox_statements() -> dict[str, str]:
    recorder = _Recorder()
    queue = outbox.OutboxQueue(recorder)  # type: ignore[arg-type]
    now = datetime(2026, 1, 1, tzinfo=UTC)

    async def run() -> None:
        await queue.claim(now, timedelta(seconds=60), 10)
        await queue.sent(1, now)

    asyncio.run(run())
    dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
    claim, sent = (str(s.compile(dialect=dialect)) for s in recorder.statements)
    return {"outbox.claim": claim, "outbox.sent": sent}


def hot_statements() -> dict[str, str]:
    return {**_written_statements(), **_outbox_statements()}


def _exception(mention: Mention) -> tuple[str, str] | None:
    for table, where in STATEMENT_EXCEPTIONS:
        if table in (mention.table, "*") and (
            where in (mention.statement, "*") or (where.endswith(".") and mention.statement.startswith(where))
        ):
            return (table, where)
    return None


def test_the_till_statements_are_among_those_read() -> None:
    statements = hot_statements()
    for name in ("tills._FIND_CARD", "tills._ADJUST", "tills._LINE_ITEMS_OF_MERCHANT", "ledger._POST", "outbox.claim"):
        assert name in statements


def test_every_hot_statement_filters_account_tables_by_account_id() -> None:
    unfiltered = [m for name, sql in hot_statements().items() for m in statement_mentions(name, sql)]
    assert [m for m in unfiltered if _exception(m) is None] == []
    # every exception listed is still needed (a fixed statement leaves the list)
    assert {_exception(m) for m in unfiltered} == set(STATEMENT_EXCEPTIONS)


# -- the rules can fail -------------------------------------------------------------------------------------


def test_the_rules_refuse_a_table_or_statement_that_would_cross_shards() -> None:
    bad = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(bad)
    Table("gift_notes", bad, Column("id", Integer, primary_key=True), Column("text", String(10)))
    Table(
        "till_receipts",
        bad,
        Column("id", Integer, primary_key=True),
        Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
        Column("number", String(20), unique=True),
        Column("card_reference", String(32), ForeignKey("cards.card_reference")),
        Column("login_attempt_id", Integer, ForeignKey("login_attempts.id")),
    )
    assert sorted(table_problems(bad)) == [
        "gift_notes: no account_id and not a known global table",
        "till_receipts: foreign key to cards['card_reference'] neither its id nor with account_id",
        "till_receipts: refers to global login_attempts, which is not a reference table",
        "till_receipts: unique key ('number',) lacks account_id",
    ]
    assert statement_mentions(
        "join", "SELECT 1 FROM cards JOIN sites ON sites.id = cards.id WHERE cards.account_id = $1"
    ) == [Mention("join", "sites")]
    assert statement_mentions("all", "UPDATE cards SET balance = 0 WHERE id = $1") == [Mention("all", "cards")]
    assert statement_mentions("insert", "INSERT INTO line_items (card_id) VALUES ($1)") == [
        Mention("insert", "line_items")
    ]
    assert statement_mentions(
        "nested", "SELECT 1 FROM cards WHERE account_id = $1 AND EXISTS (SELECT 1 FROM line_items WHERE id = $2)"
    ) == [Mention("nested", "line_items")]
    assert (
        statement_mentions(
            "ok", "SELECT 1 FROM cards c JOIN sites s ON s.account_id = c.account_id WHERE c.account_id = $1"
        )
        == []
    )
    # an account-scoped table read by another column is refused, and no exception covers it
    deleted = statement_mentions("x", "DELETE FROM cards WHERE card_reference = $1")
    assert [(m.table, _exception(m)) for m in deleted] == [("cards", None)]
    # nor a new table with a global unique key
    assert any("unique key" in p for p in table_problems(bad))
