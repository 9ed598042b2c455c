"""The pgbench script for the limit: the server's own redemption statement, text for text.

A till's redemption on PostgreSQL is one statement (`storage.tills._ADJUST`), committing on its own, which
also checks the till's credential (its API user still live with the token's version: `storage.callers.CALLER`),
as every statement that acts for a caller does. This module takes it from the server's code and binds each
`$n` to a pgbench variable holding what the server binds for `createBalanceAdjustment(-1)` on a random
loaded card with a fresh `merchant_transaction_reference`, so that pgbench (`-M prepared`) prepares and runs
the same statements with the same parameters and cannot drift from the server (a statement whose parameters
changed fails `_bind`). (Only `now()` is written in: the server's `now` is its clock.) When the statement
also writes the accepted redemption's audit record (its parameters after the credential's), they are bound as
the server binds them for this request (the operation, the API user's name, the masked card, the client address
and the detail's JSON); an audit record the server writes behind the request (`storage.audit`), many to a
statement, is not included. The bench account has no webhook endpoint, so the statement is the one the server
runs for such an account (`tills._ADJUST`: without the webhook event, refused if one were due).

Beside it, the lean limit (`LEAN_TABLES`, `lean_script`): the least a durable redemption can do here, as one
statement on tables of its own (schema `lean`: no foreign keys, no index but the keys): the card by number
`FOR UPDATE`, refused below zero, a transaction row with a unique reference, a line item and the balance update,
committed, under the same pgbench options. Ours against it is what our rules cost."""

from __future__ import annotations

import json
import re

from giftledger.domain.catalogue import POINTONE
from giftledger.domain.ledger import LineItemType
from giftledger.storage import throttle, tills


def _bind(sql: str, values: dict[int, str]) -> str:
    """`sql` with each `$n` replaced by `values[n]` (parenthesised), on one line for pgbench. `values` must bind
    exactly the statement's parameters: a statement that gained, lost or renumbered one fails here."""
    wanted = {int(n) for n in re.findall(r"\$(\d+)\b", sql)}
    if wanted != set(values):
        raise ValueError(f"the statement takes parameters {sorted(wanted)}, the bench binds {sorted(values)}")
    # A colon before a letter inside a string literal (a to_char format's HH24:MI:SS) would be taken by pgbench
    # for a variable: such a literal is split there into two, concatenated (the same constant once planned).
    unvaried = re.sub(r"'(?:[^']|'')*'", lambda m: re.sub(r":(?=[A-Za-z_])", ":' || '", m.group(0)), sql)
    bound = re.sub(r"\$(\d+)\b", lambda m: f"({values[int(m.group(1))]})", unvaried)
    return " ".join(bound.split())


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The parameters of `_ADJUST` after the caller's credential ($15-$17), when it takes them: the accepted
# movement's audit record (storage/tills.py: `Recorded`).
_AUDIT_FIRST = 18


def _audit_record(
    *, sql: str, actor: str, card: str, address: str, reference: str, epos: str, currency: str, value: int
) -> dict[int, str]:
    """The audit record's parameters, as the server binds them for a till's `createBalanceAdjustment` (the
    operation, the actor's name, the masked card, the client address, the detail as compact JSON with sorted
    keys: services/audit), each a SQL expression; none when the statement does not take them. `card` and
    `reference` are SQL expressions, the card a 13-character number (masked as all but its last four)."""
    if f"${_AUDIT_FIRST}" not in sql:
        return {}
    marker = "@@reference@@"  # where the reference goes in the JSON (a string, quoted there)
    detail = json.dumps(
        {
            "currency": currency,
            "merchant_id": POINTONE,
            "merchant_transaction_reference": marker,
            "unit_epos_reference": epos,
            "value": value,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    before, after = detail.split(marker)
    values = [
        _quoted("createBalanceAdjustment"),
        actor,
        f"repeat('*', 9) || right({card}, 4)",
        address,
        f"{_quoted(before)} || {reference} || {_quoted(after)}",
    ]
    return {_AUDIT_FIRST + i: v for i, v in enumerate(values)}


def script(
    *,
    account_id: int,
    api_user_id: int,
    epos: str,
    miss_limit: int,
    miss_address_limit: int,
    token_version: int = 0,
    api_username: str = "",
) -> tuple[str, dict[str, str]]:
    """The script, and the `-D` variables it needs besides `cards`."""
    variables = {
        "account": str(account_id),
        "merchant": str(POINTONE),
        "epos": epos,
        "currency": "GBP",
        "value": "-1",
        "type": str(int(LineItemType.REDEMPTION)),
        "kind": "api_user",
        "api_user": str(api_user_id),
        "subject": f"api_user:{api_user_id}",
        "address": "127.0.0.1",
        "miss_limit": str(miss_limit),
        "miss_address_limit": str(miss_address_limit),
        "token_version": str(token_version),
        "api_username": api_username,
    }
    adjust = {
        1: ":account",
        2: ":merchant",
        3: ":epos",
        4: "'p' || :client_id || '-' || :r",
        5: "'B' || lpad(:n::text, 12, '0')",
        6: ":currency",
        7: ":value",
        8: ":type",
        9: "now()",
        10: ":subject",
        11: ":address",
        12: "now() - interval '10 minutes'",
        13: ":miss_limit",
        14: ":miss_address_limit",
        15: ":kind",
        16: ":api_user",
        17: ":token_version",
    }
    adjust |= _audit_record(
        sql=tills._ADJUST,
        actor=":api_username",
        card=adjust[5],
        address=":address",
        reference=adjust[4],
        epos=epos,
        currency=variables["currency"],
        value=int(variables["value"]),
    )
    text = "\n".join(
        [
            "\\set n random(1, :cards)",
            "\\set r random(1, 9000000000000000)",
            _bind(tills._ADJUST, adjust) + ";",
            "",
        ]
    )
    return text, variables


# The lean limit's tables (schema `lean`), and its cards loaded as the bench loads ours ($1..$2 the numbers,
# $3 each balance): "B" and the number padded to 12 digits.
LEAN_TABLES = """
CREATE SCHEMA lean;
CREATE TABLE lean.cards (
    id bigserial PRIMARY KEY, number text NOT NULL UNIQUE, balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE lean.transactions (
    id bigserial PRIMARY KEY, reference text NOT NULL UNIQUE, created_at timestamptz NOT NULL
);
CREATE TABLE lean.line_items (
    id bigserial PRIMARY KEY, card_id bigint NOT NULL, transaction_id bigint NOT NULL, value bigint NOT NULL,
    created_at timestamptz NOT NULL
)"""
LEAN_CARDS = """
INSERT INTO lean.cards (number, balance)
SELECT 'B' || lpad(n::text, 12, '0'), $3 FROM generate_series($1::bigint, $2::bigint) AS n"""

# The lean redemption of :value (< 0) from card :n, with a fresh reference, in one statement.
_LEAN = """
WITH card AS (
    SELECT id, balance FROM lean.cards WHERE number = 'B' || lpad(:n::text, 12, '0') FOR UPDATE
),
moved AS (
    UPDATE lean.cards SET balance = lean.cards.balance + :value
    FROM card WHERE lean.cards.id = card.id AND card.balance + :value >= 0
    RETURNING lean.cards.id
),
tx AS (
    INSERT INTO lean.transactions (reference, created_at)
    SELECT 'p' || :client_id || '-' || :r, now() FROM moved
    RETURNING id
)
INSERT INTO lean.line_items (card_id, transaction_id, value, created_at)
SELECT moved.id, tx.id, :value, now() FROM moved, tx"""


def lean_script() -> tuple[str, dict[str, str]]:
    """The lean limit's script, and the `-D` variables it needs besides `cards`."""
    text = "\n".join(
        ["\\set n random(1, :cards)", "\\set r random(1, 9000000000000000)", " ".join(_LEAN.split()) + ";", ""]
    )
    return text, {"value": "-1"}


def plans_sql(*, account_id: int, api_user_id: int, epos: str, card: int, api_username: str = "") -> dict[str, str]:
    """The hot statements bound to one loaded card, for EXPLAIN (the redemption in a rolled-back transaction)."""
    number = f"'B{card:012d}'"
    caller = (f"'api_user:{api_user_id}'", "'127.0.0.1'", "now() - interval '10 minutes'")
    credential = ("'api_user'", str(api_user_id), "0")  # CALLER's kind, id and token version
    return {
        "balance check (Cards by card_reference)": _bind(
            tills._FIND_CARD,
            {
                1: str(account_id),
                2: number,
                3: caller[0],
                4: caller[1],
                5: caller[2],
                6: "1",
                7: "0",
                8: credential[0],
                9: credential[1],
                10: credential[2],
                11: "false",
            },
        ),
        "LineItems by merchant_transaction_reference": _bind(
            tills._LINE_ITEMS_OF_MERCHANT,
            {
                1: str(account_id),
                2: str(POINTONE),
                3: f"'L{card}'",
                4: "1",
                5: "0",
                6: credential[0],
                7: credential[1],
                8: credential[2],
            },
        ),
        "redemption (createBalanceAdjustment)": _bind(
            tills._ADJUST,
            {
                1: str(account_id),
                2: str(POINTONE),
                3: f"'{epos}'",
                4: "'explain-1'",
                5: number,
                6: "'GBP'",
                7: "-1",
                8: str(int(LineItemType.REDEMPTION)),
                9: "now()",
                10: caller[0],
                11: caller[1],
                12: caller[2],
                13: "30",
                14: "100",
                15: credential[0],
                16: credential[1],
                17: credential[2],
            }
            | _audit_record(
                sql=tills._ADJUST,
                actor=_quoted(api_username),
                card=number,
                address=caller[1],
                reference="'explain-1'",
                epos=epos,
                currency="GBP",
                value=-1,
            ),
        ),
        # The cost budget's statement on a caller's row (services/throttle.py: a lease given back and taken
        # again, at most every 0.2 s per caller and process, or when it runs short), at its defaults.
        "cost budget lease": _bind(
            throttle._TAKE,
            {
                1: caller[0],
                2: "8000",
                3: "extract(epoch FROM now())",
                4: str(5000 / 600),
                5: "0",
                6: "1",
                7: "125",
                8: str(account_id),
                9: credential[0],
                10: credential[1],
                11: credential[2],
            },
        ),
    }
