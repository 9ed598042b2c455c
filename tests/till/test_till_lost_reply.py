"""Never charge twice: the server commits, the reply is lost on the way back (a loopback proxy forwards the
request, reads the committed reply, and drops the connection). The till reconciles through `LineItems` by the
reference it chose before the first attempt, and only resends when nothing was recorded."""

from __future__ import annotations

import json

from tests.support import Demo, LiveServer, ledger_sums, snapshot
from tests.till.proxy import LoopbackProxy, Rule
from tests.till.terminal import Terminal


def _ledger_is_whole(server: LiveServer, demo: Demo) -> None:
    assert all(stored == summed for stored, summed in ledger_sums(server.database_url, demo.account_id).values())


def test_redeem_reply_lost_after_commit_charges_once(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "5000")
    before = snapshot(server.database_url, demo.account_id)
    proxy.reset()
    proxy.add(Rule("createBalanceAdjustment", "drop_after_commit"))

    paid = terminal.json("redeem", card, "1800", "--reference", "lost-reply-redeem")

    assert proxy.fields == ["loginUser", "Cards", "createBalanceAdjustment", "LineItems"]
    dropped, lookup = proxy.exchanges[2], proxy.exchanges[3]
    assert dropped.action == "drop_after_commit" and dropped.status == 200  # the server committed
    committed = dropped.reply["data"]["createBalanceAdjustment"] if dropped.reply else {}
    assert lookup.variables["merchant_transaction_reference"] == "lost-reply-redeem"
    assert paid == {
        "reference": "lost-reply-redeem",
        "card_reference": card,
        "bill": 1800,
        "taken": 1800,
        "remaining_to_pay": 0,
        "balance": 3200,
        "line_item_id": committed["LineItem"]["id"],
        "value_split": {"tender": -1800, "discount": 0},
    }
    after = snapshot(server.database_url, demo.account_id)
    assert after.line_items == before.line_items + 1
    assert after.transactions == before.transactions + 1
    assert after.balances[card] == 3200
    looked_up = terminal.json("lookup", "lost-reply-redeem")["line_items"]
    assert [(item["id"], item["value"]) for item in looked_up] == [(committed["LineItem"]["id"], -1800)]
    _ledger_is_whole(server, demo)


def test_sale_reply_lost_after_commit_is_confirmed_by_its_reference(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    proxy.add(Rule("createOrder", "drop_after_commit"))
    with terminal.client() as client:
        sale = client.sell_card(card, 2500, reference="lost-reply-sale")
    assert proxy.fields == ["loginUser", "createOrder", "LineItems"]
    committed = proxy.exchanges[1].reply["data"]["createOrder"] if proxy.exchanges[1].reply else {}
    assert (sale.reference, sale.order_id, sale.line_item_id) == (
        "lost-reply-sale",
        None,
        committed["LineItems"][0]["id"],
    )
    assert (sale.card_reference, sale.amount, sale.balance) == (card, 2500, 2500)
    after = snapshot(server.database_url, demo.account_id)
    assert (after.orders, after.line_items, after.balances[card]) == (1, 1, 2500)


def test_top_up_that_never_reached_the_server_is_resent_with_the_same_reference(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "1000")
    proxy.reset()
    proxy.add(Rule("createBalanceAdjustment", "drop_before_forward"))
    with terminal.client() as client:
        topped = client.top_up(card, 400)
    assert proxy.fields == ["loginUser", "createBalanceAdjustment", "LineItems", "createBalanceAdjustment"]
    first, lookup, resent = proxy.exchanges[1], proxy.exchanges[2], proxy.exchanges[3]
    assert first.status is None  # never forwarded
    assert lookup.reply is not None and lookup.reply["data"] == {"LineItems": {"data": []}}
    assert first.variables == resent.variables  # same reference, same everything
    assert first.variables["merchant_transaction_reference"] == topped.reference
    assert (topped.amount, topped.balance) == (400, 1400)
    after = snapshot(server.database_url, demo.account_id)
    assert (after.line_items, after.balances[card]) == (2, 1400)
    _ledger_is_whole(server, demo)


def test_reversal_reply_lost_and_lookup_unavailable_settles_on_the_duplicate_reference(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    """Reply lost, then the look-up fails too: the resend is refused as a duplicate, which proves an earlier
    attempt was applied; the till reads the result back instead of reporting a failure."""
    card = demo.card_references[0]
    terminal.ok("sell", card, "3000")
    terminal.ok("redeem", card, "1000", "--reference", "to-reverse")
    proxy.reset()
    proxy.add(Rule("createReversal", "drop_after_commit"), Rule("LineItems", "unavailable", skip=1))
    reversed_ = terminal.json("reverse", "to-reverse")
    assert proxy.fields == [
        "loginUser",
        "LineItems",  # the line items of to-reverse
        "createReversal",  # applied; reply dropped
        "LineItems",  # HTTP 503: still unknown
        "createReversal",  # resent: "Duplicate reference supplied"
        "LineItems",  # the reversal's line items: applied once
    ]
    refusal = proxy.exchanges[4].reply
    assert refusal is not None and refusal["errors"][0]["message"] == "Duplicate reference supplied"
    assert proxy.exchanges[2].variables == proxy.exchanges[4].variables
    committed = proxy.exchanges[2].reply["data"]["createReversal"]["LineItems"][0] if proxy.exchanges[2].reply else {}
    assert reversed_["reference"] == "to-reverse-REVERSAL"
    assert reversed_["original_reference"] == "to-reverse"
    assert [(item["id"], item["value"], item["card_balance"]) for item in reversed_["line_items"]] == [
        (committed["id"], 1000, 3000)
    ]
    after = snapshot(server.database_url, demo.account_id)
    assert (after.line_items, after.balances[card]) == (3, 3000)
    _ledger_is_whole(server, demo)


def test_outcome_still_unknown_names_the_reference_to_check(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    """Every attempt lost and every look-up failing: exit 3 and the reference, never a second charge."""
    card = demo.card_references[0]
    terminal.ok("sell", card, "3000")
    proxy.reset()
    proxy.add(Rule("createBalanceAdjustment", "drop_after_commit", times=3), Rule("LineItems", "unavailable", times=3))
    result = terminal.run("redeem", card, "700", "--reference", "unknown-outcome", "--json")
    assert result.exit_code == 3
    assert proxy.fields.count("createBalanceAdjustment") == 3
    sent = [e.variables for e in proxy.exchanges if e.field == "createBalanceAdjustment"]
    assert all(variables == sent[0] for variables in sent)
    # Only the first attempt was applied: the server refused the resends as duplicates.
    refused = [e.reply["errors"][0]["message"] for e in proxy.exchanges[3:] if e.field != "LineItems" and e.reply]
    assert refused == ["Duplicate reference supplied", "Duplicate reference supplied"]
    error = json.loads(result.stdout)["error"]
    assert (error["type"], error["code"], error["reference"]) == ("TransportError", "TRANSPORT", "unknown-outcome")
    assert result.stderr.splitlines()[1] == (
        "It may have been applied. Check with `giftledger till lookup unknown-outcome` before trying again; "
        "`giftledger till reverse unknown-outcome` cancels it."
    )
    after = snapshot(server.database_url, demo.account_id)
    assert (after.line_items, after.balances[card]) == (2, 2300)
    proxy.reset()
    assert [item["value"] for item in terminal.json("lookup", "unknown-outcome")["line_items"]] == [-700]
