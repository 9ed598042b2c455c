"""`giftledger till screen`: an interactive till for a person at a keyboard.

A numbered menu, prompts for the card number and amounts (typed in pounds and pence: `25`, `25.00` or
`£25.50`), and a receipt after each transaction. It reads lines from standard input and writes to standard
output, flushing after every prompt, so a script (or a test) can drive it through pipes. An empty answer
cancels the current step; end of input quits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from giftledger.cli import till_output as out
from giftledger_client import (
    AuthenticationFailed,
    ConfigurationError,
    GiftCardClient,
    GiftLedgerError,
    IntegrationDisabled,
    ServerError,
    TransportError,
)

MENU = (
    ("1", "Check balance"),
    ("2", "Sell a card"),
    ("3", "Sell a digital card"),
    ("4", "Top up a card"),
    ("5", "Redeem: pay a bill with a card"),
    ("6", "Reverse a transaction"),
    ("7", "Products"),
    ("0", "Quit"),
)
MENU_PROMPT = "Choose 0-7: "
AMOUNT_HINT = "in pounds and pence, e.g. 25.00"
_POUNDS = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


class _Cancelled(Exception):
    """The operator left a prompt empty: back to the menu."""


class _EndOfInput(Exception):
    """Standard input is closed: the till shuts down."""


def parse_pounds(text: str) -> int | None:
    """`"25"` -> 2500, `"25.5"` -> 2550, `"£1,000.00"` -> 100000; None if it is not a positive amount."""
    candidate = text.strip().removeprefix("£").replace(",", "")
    match = _POUNDS.match(candidate)
    if match is None:
        return None
    pounds, pence = match.group(1), (match.group(2) or "0").ljust(2, "0")
    amount = int(pounds) * 100 + int(pence)
    return amount if amount > 0 else None


def _local_now() -> datetime:
    return datetime.now().astimezone()


class TillScreen:
    """The menu loop. `run()` returns the process exit code (0 after Quit or end of input)."""

    def __init__(
        self,
        client: GiftCardClient,
        stdin: TextIO,
        stdout: TextIO,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        self._client = client
        self._stdin = stdin
        self._stdout = stdout
        self._now = now
        self._currency = client.settings.currency
        self._site = client.settings.site_reference
        self._last_reference: str | None = None
        self._actions: dict[str, Callable[[], None]] = {
            "1": self._balance,
            "2": self._sell,
            "3": self._sell_digital,
            "4": self._top_up,
            "5": self._redeem,
            "6": self._reverse,
            "7": self._products,
        }

    # -- loop -------------------------------------------------------------------------------------------

    def run(self) -> int:
        settings = self._client.settings
        self._say(f"giftledger till: site {settings.site_reference}, account {settings.account_id}")
        self._say(f"Endpoint {settings.endpoint}")
        if not self._connect():
            return 1
        try:
            while True:
                self._menu()
                choice = self._ask(MENU_PROMPT).strip().lower()
                if choice in ("0", "q", "quit"):
                    break
                action = self._actions.get(choice)
                if action is None:
                    self._say("Choose a number from the menu.")
                    continue
                try:
                    action()
                except _Cancelled:
                    self._say("Cancelled.")
                except GiftLedgerError as exc:
                    self._refused(exc)
        except _EndOfInput:
            pass
        self._say("Till closed.")
        return 0

    def _connect(self) -> bool:
        try:
            self._client.log_in()
        except (AuthenticationFailed, ConfigurationError, IntegrationDisabled) as exc:
            self._say(f"*** Cannot use gift cards: {exc}")
            return False
        except GiftLedgerError as exc:
            self._say(f"*** The gift card server is not answering now ({exc}); carrying on.")
            return True
        self._say(f"Logged in as {self._client.settings.username}.")
        return True

    def _menu(self) -> None:
        self._say("")
        for key, label in MENU:
            self._say(f"  {key}  {label}")

    def _refused(self, error: GiftLedgerError) -> None:
        unknown = error.reference is not None and (
            (isinstance(error, TransportError) and error.request_sent) or isinstance(error, ServerError)
        )
        if unknown:
            self._say(f"*** NOT CONFIRMED: {error}")
            self._say(f"*** Reference {error.reference} may have been applied: look it up before trying again.")
            self._last_reference = error.reference
        else:
            self._say(f"*** REFUSED: {error}")

    # -- actions ----------------------------------------------------------------------------------------

    def _balance(self) -> None:
        card = self._card()
        result = self._client.check_balance(card)
        self._say(out.table("Balance", out.balance_rows(result, self._currency)))

    def _sell(self) -> None:
        card = self._card()
        amount = self._amount(f"Amount to load, {AMOUNT_HINT}: ")
        sale = self._client.sell_card(card, amount)
        self._last_reference = sale.reference
        rows = [("Card", sale.card_reference), ("Amount", self._money(sale.amount))]
        self._receipt("Gift card sold", [*rows, ("Card balance", self._money(sale.balance))], sale.reference)

    def _sell_digital(self) -> None:
        amount = self._amount(f"Amount to load, {AMOUNT_HINT}: ")
        email = self._text("Email the card to: ")
        sale = self._client.sell_digital_card(amount, email)
        self._last_reference = sale.reference
        rows = [("Card", sale.card_reference), ("Email", email), ("Amount", self._money(sale.amount))]
        self._receipt("Digital gift card sold", [*rows, ("Card balance", self._money(sale.balance))], sale.reference)

    def _top_up(self) -> None:
        card = self._card()
        amount = self._amount(f"Amount to add, {AMOUNT_HINT}: ")
        adjustment = self._client.top_up(card, amount)
        self._last_reference = adjustment.reference
        rows = [
            ("Card", out.masked(adjustment.card_reference)),
            ("Top-up", self._money(adjustment.amount)),
            ("Card balance", self._money(adjustment.balance)),
        ]
        self._receipt("Top-up", rows, adjustment.reference)

    def _redeem(self) -> None:
        card = self._card()
        bill = self._amount(f"Bill to pay, {AMOUNT_HINT}: ")
        paid = self._client.redeem(card, bill)
        if paid.reference is None:
            self._say(f"The card is empty: nothing taken. Still to pay {self._money(paid.remaining_to_pay)}.")
            return
        self._last_reference = paid.reference
        rows = [
            ("Card", out.masked(paid.card_reference)),
            ("Bill", self._money(paid.bill)),
            ("Paid by gift card", self._money(paid.taken)),
            ("Still to pay", self._money(paid.remaining_to_pay)),
            ("Card balance", self._money(paid.balance)),
        ]
        self._receipt("Redemption", rows, paid.reference)

    def _reverse(self) -> None:
        last = self._last_reference
        prompt = f"Reference to reverse (Enter for the last one, {last}): " if last else "Reference to reverse: "
        answer = self._ask(prompt).strip()
        reference = answer or last
        if not reference:
            raise _Cancelled
        if self._ask(f"Reverse {reference}? Type y to confirm: ").strip().lower() not in ("y", "yes"):
            raise _Cancelled
        reversal = self._client.reverse(reference)
        if reference == last:
            self._last_reference = None
        rows: list[tuple[str, str]] = [("Reverses", reversal.original_reference)]
        for item in reversal.line_items:
            rows.append(("Card", out.masked(item.card_reference or "-")))
            rows.append(("Amount", self._money(item.value)))
            if item.card_balance is not None:
                rows.append(("Card balance", self._money(item.card_balance)))
        self._receipt("Reversal", rows, reversal.reference)

    def _products(self) -> None:
        self._say(out.products_grid(self._client.products(), self._currency))

    # -- prompts and printing ---------------------------------------------------------------------------

    def _ask(self, prompt: str) -> str:
        self._stdout.write(prompt)
        self._stdout.flush()
        line = self._stdin.readline()
        if not line:
            self._say("")
            raise _EndOfInput
        return line.rstrip("\r\n")

    def _text(self, prompt: str) -> str:
        answer = self._ask(prompt).strip()
        if not answer:
            raise _Cancelled
        return answer

    def _card(self) -> str:
        return self._text("Card number (swipe or type; Enter to cancel): ")

    def _amount(self, prompt: str) -> int:
        while True:
            answer = self._ask(prompt).strip()
            if not answer:
                raise _Cancelled
            amount = parse_pounds(answer)
            if amount is not None:
                return amount
            self._say(f"Not an amount: type it {AMOUNT_HINT} (more than zero).")

    def _money(self, pence: int) -> str:
        return out.money(pence, self._currency)

    def _receipt(self, title: str, rows: list[tuple[str, str]], reference: str | None) -> None:
        self._say(out.receipt(title, self._site, self._now(), rows, reference))

    def _say(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()
