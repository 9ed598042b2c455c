"""The pgbench script for the limit: the server's own redemption statement, text for text.

A till's redemption on PostgreSQL is one statement (`storage.tills._ADJUST`), committing on its own, which
also confirms the till's token (its API user still live with the token's version: `CALLER`), as it does
for every request once the server has seen the till (api/context.py). This module takes it from the
server's code and binds each `$n` to a pgbench variable holding what the server binds for
`createBalanceAdjustment(-1)` on a random loaded card with a fresh `merchant_transaction_reference`, so that
pgbench (`-M prepared`) prepares and runs the same statements with the same parameters and cannot drift
from the server. (Only `now()` and a NULL user id are written in: pgbench variables cannot be NULL, and
the server's `now` is its clock.) Not included: the audit record, which the server writes behind the
request, many attempts to a statement (`storage.audit._ADD_EVENTS`)."""

from __future__ import annotations

import re

from giftledger.domain.catalogue import POINTONE
from giftledger.domain.ledger import LineItemType
from giftledger.storage import tills


def _bind(sql: str, values: dict[int, str]) -> str:
    """`sql` with each `$n` replaced by `values[n]` (parenthesised), on one line for pgbench."""
    bound = re.sub(r"\$(\d+)\b", lambda m: f"({values[int(m.group(1))]})", sql)
    return " ".join(bound.split())


def script(
    *, account_id: int, api_user_id: int, epos: str, miss_limit: int, miss_address_limit: int, token_version: int = 0
) -> tuple[str, dict[str, str]]:
    """The script, and the `-D` variables it needs besides `cards`."""
    variables = {
        "account": str(account_id),
        "merchant": str(POINTONE),
        "epos": epos,
        "currency": "GBP",
        "value": "-1",
        "type": str(int(LineItemType.REDEMPTION)),
        "api_user": str(api_user_id),
        "subject": f"api_user:{api_user_id}",
        "address": "127.0.0.1",
        "miss_limit": str(miss_limit),
        "miss_address_limit": str(miss_address_limit),
        "token_version": str(token_version),
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
        17: ":token_version",
    }
    text = "\n".join(
        [
            "\\set n random(1, :cards)",
            "\\set r random(1, 9000000000000000)",
            _bind(tills._ADJUST, adjust) + ";",
            "",
        ]
    )
    return text, variables


def plans_sql(*, account_id: int, api_user_id: int, epos: str, card: int) -> dict[str, str]:
    """The hot statements bound to one loaded card, for EXPLAIN (the redemption in a rolled-back transaction)."""
    number = f"'B{card:012d}'"
    caller = (f"'api_user:{api_user_id}'", "'127.0.0.1'", "now() - interval '10 minutes'")
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
                8: str(api_user_id),
                9: "0",
            },
        ),
        "LineItems by merchant_transaction_reference": _bind(
            tills._LINE_ITEMS_OF_MERCHANT,
            {1: str(account_id), 2: str(POINTONE), 3: f"'L{card}'", 4: "1", 5: "0", 6: str(api_user_id), 7: "0"},
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
                17: "0",
            },
        ),
        "token check": _bind(tills._API_USER, {1: str(api_user_id)}),
    }
