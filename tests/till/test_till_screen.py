"""`giftledger till screen`, the interactive till, driven by a scripted keyboard: a real process, its stdin and
stdout pipes, each answer typed only once the prompt for it is on the screen."""

from __future__ import annotations

import os
import re
import sys

from tests.support import Demo, LiveServer, ledger_sums, snapshot, unchanged
from tests.till.keyboard import ScriptedKeyboard
from tests.till.proxy import LoopbackProxy
from tests.till.terminal import Terminal

MENU = (
    "\n"
    "  1  Check balance\n"
    "  2  Sell a card\n"
    "  3  Sell a digital card\n"
    "  4  Top up a card\n"
    "  5  Redeem: pay a bill with a card\n"
    "  6  Reverse a transaction\n"
    "  7  Products\n"
    "  0  Quit\n"
    "Choose 0-7: "
)
CARD_PROMPT = "Card number (swipe or type; Enter to cancel): "
RULE = "-" * 42
HEADER = f"{RULE}\n            GIFT CARD RECEIPT\nSite: test\nDate: <printed>\n{RULE}\n"
NOT_FOUND = "No card has been found for this account for the card ref supplied. Transaction not applied."


def _receipt(seen: str) -> tuple[str, str]:
    """The receipt at the end of `seen` (its print time blanked out) and the reference it quotes."""
    printed = seen[seen.rindex(RULE, 0, seen.rindex(RULE, 0, seen.rindex(RULE))) :]
    assert re.search(r"^Date: \d{4}-\d{2}-\d{2} \d{2}:\d{2}$", printed, flags=re.M), printed
    reference = re.findall(r"^Reference\n  (\S+)$", printed, flags=re.M)[-1]
    return re.sub(r"^Date: .*$", "Date: <printed>", printed, flags=re.M), reference


def test_a_person_at_the_till_sells_redeems_checks_and_reverses(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card, unsold = demo.card_references[0], demo.card_references[1]
    masked = "*" * 15 + card[-4:]
    keyboard = ScriptedKeyboard(
        [sys.executable, "-m", "giftledger", "till", "--config", str(terminal.config), "screen"], dict(os.environ)
    )
    try:
        opening = keyboard.expect(MENU)
        assert opening == (
            f"giftledger till: site test, account {demo.account_id}\n"
            f"Endpoint {proxy.url}\n"
            f"Logged in as {demo.api_username}.\n" + MENU
        )
        keyboard.type("9")
        assert keyboard.expect(MENU) == "Choose a number from the menu.\n" + MENU

        # Sell the card for £25.
        keyboard.type("2")
        keyboard.expect(CARD_PROMPT)
        keyboard.type(card)
        keyboard.expect("Amount to load, in pounds and pence, e.g. 25.00: ")
        keyboard.type("25")
        receipt, sale_reference = _receipt(keyboard.expect(f"{RULE}\n" + MENU))
        assert receipt == (
            HEADER + "GIFT CARD SOLD\n"
            f"Card                   {card}\n"
            "Amount                              £25.00\n"
            "Card balance                        £25.00\n"
            f"Reference\n  {sale_reference}\n{RULE}\n" + MENU
        )

        # Pay a £10 bill with it; a mistyped amount is asked for again.
        keyboard.type("5")
        keyboard.expect(CARD_PROMPT)
        keyboard.type(card)
        keyboard.expect("Bill to pay, in pounds and pence, e.g. 25.00: ")
        keyboard.type("12.345")
        keyboard.expect("Not an amount: type it in pounds and pence, e.g. 25.00 (more than zero).\n")
        keyboard.expect("Bill to pay, in pounds and pence, e.g. 25.00: ")
        keyboard.type("£10.00")
        receipt, redemption_reference = _receipt(keyboard.expect(f"{RULE}\n" + MENU))
        assert receipt == (
            HEADER + "REDEMPTION\n"
            f"Card                   {masked}\n"
            "Bill                                £10.00\n"
            "Paid by gift card                   £10.00\n"
            "Still to pay                         £0.00\n"
            "Card balance                        £15.00\n"
            f"Reference\n  {redemption_reference}\n{RULE}\n" + MENU
        )

        keyboard.type("1")
        keyboard.expect(CARD_PROMPT)
        keyboard.type(card)
        assert keyboard.expect(MENU) == (
            "Balance\n"
            f"  Card               {card}\n"
            "  Balance            £15.00\n"
            "  Initial balance    £25.00\n"
            "  Tender / discount  £15.00 / £0.00\n" + MENU
        )

        # Refusals show the server's message (or the till's own check) and change nothing.
        with unchanged(server.database_url, demo.account_id):
            keyboard.type("5")
            keyboard.expect(CARD_PROMPT)
            keyboard.type(unsold)
            keyboard.expect("Bill to pay, in pounds and pence, e.g. 25.00: ")
            keyboard.type("5")
            assert keyboard.expect(MENU) == f"*** REFUSED: {NOT_FOUND}\n" + MENU
            keyboard.type("1")
            keyboard.expect(CARD_PROMPT)
            keyboard.type("1234")
            assert keyboard.expect(MENU) == "*** REFUSED: The card number must be 19 digits long.\n" + MENU
            keyboard.type("4")
            keyboard.expect(CARD_PROMPT)
            keyboard.type("")
            assert keyboard.expect(MENU) == "Cancelled.\n" + MENU

        # Reverse the last transaction (the redemption): Enter takes it, y confirms.
        keyboard.type("6")
        keyboard.expect(f"Reference to reverse (Enter for the last one, {redemption_reference}): ")
        keyboard.type("")
        keyboard.expect(f"Reverse {redemption_reference}? Type y to confirm: ")
        keyboard.type("y")
        receipt, reversal_reference = _receipt(keyboard.expect(f"{RULE}\n" + MENU))
        assert reversal_reference == f"{redemption_reference}-REVERSAL"
        assert receipt == (
            HEADER + "REVERSAL\n"
            f"Reverses  {redemption_reference}\n"
            f"Card                   {masked}\n"
            "Amount                              £10.00\n"
            "Card balance                        £25.00\n"
            f"Reference\n  {reversal_reference}\n{RULE}\n" + MENU
        )

        keyboard.type("7")
        assert keyboard.expect(MENU).startswith("Product ID  Product        Price modifier ID  Price   Description\n")
        keyboard.type("0")
        assert keyboard.expect("Till closed.\n") == "Till closed.\n"
        assert keyboard.finish() == 0
    finally:
        keyboard.kill()

    assert proxy.fields.count("loginUser") == 1  # one session, one login
    assert proxy.fields.count("createOrder") == 1
    assert proxy.fields.count("createBalanceAdjustment") == 1
    assert proxy.fields.count("createReversal") == 1
    after = snapshot(server.database_url, demo.account_id)
    assert (after.orders, after.line_items, after.balances[card]) == (1, 3, 2500)
    assert all(stored == summed for stored, summed in ledger_sums(server.database_url, demo.account_id).values())


def test_the_screen_refuses_to_start_with_a_wrong_password(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    terminal.configure(password="not-the-password")
    result = terminal.run("screen", input="1\n")
    assert result.exit_code == 1
    assert result.stdout.endswith("*** Cannot use gift cards: Unauthorized\n")
    assert proxy.fields == ["loginUser"]


def test_the_screen_of_a_disabled_terminal_sends_nothing(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    terminal.ok("configure", "--disabled")
    result = terminal.run("screen", input="1\n")
    assert result.exit_code == 1
    assert result.stdout.endswith(
        "*** Cannot use gift cards: The gift card integration is disabled on this terminal.\n"
    )
    assert proxy.exchanges == []


def test_the_screen_closes_when_the_keyboard_goes_away_mid_entry(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    with unchanged(server.database_url, demo.account_id):
        result = terminal.run("screen", input=f"2\n{card}\n")
    assert result.exit_code == 0
    assert result.stdout.endswith(f"{CARD_PROMPT}Amount to load, in pounds and pence, e.g. 25.00: \nTill closed.\n")
    assert proxy.fields == ["loginUser"]
