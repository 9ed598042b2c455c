"""The pgbench script for the limit: the server's own redemption statement, text for text.

A till's redemption on PostgreSQL is one statement (`storage.tills._ADJUST`), committing on its own, which
also checks the till's credential (its API user still live with the token's version: `storage.callers.CALLER`),
as every statement that acts for a caller does. This module takes it from the server's code and binds each
`$n` to a pgbench variable holding what the server binds for `createBalanceAdjustment(-1)` on a random
loaded card with a fresh `merchant_transaction_reference`, so that pgbench (`-M prepared`) prepares and runs
the same statements with the same parameters and cannot drift from the server (a statement whose parameters
changed fails `_bind`). (Only `now()` and a NULL user id are written in: pgbench variables cannot be NULL,
and the server's `now` is its clock.) When the statement also writes the accepted redemption's audit record
(its parameters after the credential's), they are bound as the server binds them for this request (the
operation, the API user's name, the masked card, the client address and the detail's JSON); an audit record
the server writes behind the request (`storage.audit`), many to a statement, is not included."""

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
    bound = re.sub(r"\$(\d+)\b", lambda m: f"({values[int(m.group(1))]})", sql)
    return " ".join(bound.split())


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The parameters of `_ADJUST` after the caller's credential ($17-$19), when it takes them: the accepted
# movement's audit record (storage/tills.py: `Recorded`).
_AUDIT_FIRST = 20


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
        9: ":api_user",
        10: "NULL",
        11: "now()",
        12: ":subject",
        13: ":address",
        14: "now() - interval '10 minutes'",
        15: ":miss_limit",
        16: ":miss_address_limit",
        17: ":kind",
        18: ":api_user",
        19: ":token_version",
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
                9: str(api_user_id),
                10: "NULL",
                11: "now()",
                12: caller[0],
                13: caller[1],
                14: caller[2],
                15: "30",
                16: "100",
                17: credential[0],
                18: credential[1],
                19: credential[2],
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
        # The cost budget's spend, on every request when the budget is on (the default), at its defaults.
        "cost budget spend": _bind(
            throttle._SPEND,
            {
                1: caller[0],
                2: "8000",
                3: "extract(epoch FROM now())",
                4: str(5000 / 600),
                5: "1",
                6: "1",
                7: str(account_id),
                8: credential[0],
                9: credential[1],
                10: credential[2],
            },
        ),
    }
