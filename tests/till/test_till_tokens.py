"""Tokens at the till, against the live server: a token in its last ten minutes is refreshed by the server and
the till adopts the new one; an expired token makes the till log in again, once.

The loopback proxy re-signs the token the server issues at login with a shorter life (same claims, same key):
the only way to have a real till hold an old token without waiting an hour."""

from __future__ import annotations

import time
from typing import Any

import jwt

from tests.support import SECRET, Demo, LiveServer, unchanged
from tests.till.proxy import LoopbackProxy, Rule
from tests.till.terminal import Terminal


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _expiring_in(seconds: int) -> Any:
    """Re-sign the server's token so that it expires `seconds` from now (negative: already expired)."""

    def reissue(token: str) -> str:
        header = jwt.get_unverified_header(token)
        claims = _claims(token)
        now = int(time.time())
        lifetime = int(claims["exp"]) - int(claims["iat"])
        claims.update(iat=now + seconds - lifetime, nbf=now + seconds - lifetime, exp=now + seconds)
        extra = {key: value for key, value in header.items() if key not in ("alg", "typ")}
        return jwt.encode(claims, SECRET, algorithm=header["alg"], headers=extra)

    return reissue


def test_a_token_in_its_last_ten_minutes_is_refreshed_and_adopted(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "2000")
    proxy.reset()
    proxy.add(Rule("loginUser", "set_token", token=_expiring_in(300)))

    paid = terminal.json("redeem", card, "500")

    assert proxy.fields == ["loginUser", "Cards", "createBalanceAdjustment"]
    login, check, debit = proxy.exchanges
    old = login.sent_token
    assert old is not None and old != login.reply_token
    assert 0 < int(_claims(old)["exp"]) - int(time.time()) <= 300
    assert check.authorization == f"Bearer {old}"
    fresh = check.reply_token  # the server refreshed the old token in its reply
    assert fresh is not None and fresh != old
    assert (
        int(jwt.decode(fresh, SECRET, algorithms=["HS256"], audience="giftledger-api")["exp"]) - int(time.time()) > 3500
    )
    assert debit.authorization == f"Bearer {fresh}"  # adopted at once
    assert (paid["taken"], paid["balance"]) == (500, 1500)


def test_an_expired_token_means_logging_in_again_once(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "2000")
    proxy.reset()
    proxy.add(Rule("loginUser", "set_token", token=_expiring_in(-60)))

    balance = terminal.json("balance", card)

    assert proxy.fields == ["loginUser", "Cards", "loginUser", "Cards"]
    first_login, refused, second_login, retried = proxy.exchanges
    assert refused.authorization == f"Bearer {first_login.sent_token}"
    assert refused.reply is not None and refused.reply["errors"][0]["message"] == "Unauthorized"
    assert second_login.sent_token == second_login.reply_token  # untouched this time
    assert retried.authorization == f"Bearer {second_login.sent_token}"
    assert retried.variables == refused.variables
    assert balance["balance"] == 2000


def test_a_token_refused_twice_is_an_authentication_failure(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "2000")
    proxy.reset()
    proxy.add(Rule("loginUser", "set_token", times=5, token=_expiring_in(-60)))
    with unchanged(server.database_url, demo.account_id):
        result = terminal.run("redeem", card, "500")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "Error: Unauthorized\n")
    assert proxy.fields == ["loginUser", "Cards", "loginUser", "Cards"]  # one fresh login, then it gives up
