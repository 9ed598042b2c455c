"""`giftledger till ...`: a till simulator for the seeds' step 5 (redeem, reverse, check balance at the till).

It speaks only the documented EPOS GraphQL API, through `giftledger_client`, so it works against a giftledger
server or any Toggle-compatible endpoint; it never imports the server's services. The terminal settings (the
PointOne "Toggle" tab) live in a JSON file, mode 0600; the password is read from standard input (or a hidden
prompt), never from the command line.

Every command prints a table for people, or exactly one JSON object with `--json`. Exit codes: 0 done;
1 refused (the server's message, or a check the terminal makes before sending: card number, integration
disabled); 2 usage or terminal settings wrong; 3 the server could not be reached or the outcome is unknown
(a mutation's reference is printed: `lookup` tells whether it was applied).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from giftledger.cli import till_output as out
from giftledger_client import (
    ConfigurationError,
    GiftCardClient,
    GiftLedgerError,
    ServerError,
    TerminalSettings,
    Throttled,
    TransportError,
)

T = TypeVar("T")

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
CONFIG_ENV = "GIFTLEDGER_TILL_CONFIG"
CONFIG_FILE = "till.json"

# configure's options: name -> (option, required when there is no settings file yet)
_SETTING_OPTIONS: dict[str, tuple[str, bool]] = {
    "endpoint": ("--endpoint", True),
    "account_id": ("--account-id", True),
    "merchant_id": ("--merchant-id", True),
    "username": ("--username", True),
    "site_reference": ("--site-reference", True),
    "product_id": ("--product-id", False),
    "validate_card_number": ("--validate-card-number/--no-validate-card-number", False),
    "card_prefix": ("--card-prefix", False),
    "card_length": ("--card-length", False),
    "enabled": ("--enabled/--disabled", False),
    "currency": ("--currency", False),
    "timeout": ("--timeout", False),
}


def default_config_path() -> Path:
    """`<user config dir>/giftledger/till.json` (e.g. `~/.config/giftledger/till.json` on Linux)."""
    return Path(click.get_app_dir("giftledger")) / CONFIG_FILE


@dataclass(frozen=True)
class TillState:
    config_path: Path


pass_state = click.make_pass_decorator(TillState)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
reference_option = click.option(
    "--reference",
    default=None,
    help="merchant_transaction_reference to use (default: a new one). Kept on every retry.",
)


def pence(text: str) -> int:
    """A whole number of pence greater than zero (2500 means 25.00), or `click.BadParameter`."""
    candidate = text.strip()
    if not (candidate.isascii() and candidate.isdigit()):
        raise click.BadParameter(f"{text!r} is not an amount in pence: write 2500 for 25.00.")
    number = int(candidate)
    if number <= 0:
        raise click.BadParameter("the amount must be greater than zero.")
    return number


def _amount_value(text: str, ctx: click.Context) -> int:
    try:
        return pence(text)
    except click.BadParameter as exc:
        raise click.UsageError(f"AMOUNT: {exc.message}", ctx) from exc


def _pence_argument(ctx: click.Context, param: click.Parameter, value: str) -> int:
    return pence(value)


# -- terminal settings file -----------------------------------------------------------------------------


class SettingsUnreadable(Exception):
    """The terminal settings file is missing or cannot be read; the message says what to do."""


def read_settings_file(path: Path) -> dict[str, object]:
    """The stored settings as a dict, or `SettingsUnreadable`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SettingsUnreadable(f"No terminal settings at {path}: run `giftledger till configure` first.") from exc
    except OSError as exc:
        raise SettingsUnreadable(f"Cannot read the terminal settings at {path}: {exc.strerror}.") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SettingsUnreadable(
            f"The terminal settings at {path} are not JSON: run `giftledger till configure` again."
        ) from exc
    if not isinstance(data, dict):
        raise SettingsUnreadable(f"The terminal settings at {path} are not a JSON object.")
    return data


def load_settings(path: Path) -> TerminalSettings:
    """The terminal settings; a missing or wrong file is a usage error (exit 2)."""
    try:
        return TerminalSettings.from_dict(read_settings_file(path))
    except SettingsUnreadable as exc:
        usage_error(str(exc))
    except ConfigurationError as exc:
        usage_error(f"The terminal settings at {path} are wrong: {exc}")


def save_settings(path: Path, settings: TerminalSettings) -> None:
    """Write the settings (password included) so that only this user can read them (mode 0600), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".till-", suffix=".json", dir=path.parent)
    try:
        os.chmod(temporary, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(settings.to_dict(), stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- running one operation ------------------------------------------------------------------------------


def usage_error(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


def exit_code(error: GiftLedgerError) -> int:
    if isinstance(error, TransportError | ServerError | Throttled):
        return EXIT_UNKNOWN
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    return EXIT_REFUSED


def outcome_unknown(error: GiftLedgerError) -> bool:
    """True when a mutation may or may not have been applied (its reference then says which)."""
    if error.reference is None:
        return False
    if isinstance(error, TransportError):
        return error.request_sent
    return isinstance(error, ServerError)


def error_lines(error: GiftLedgerError) -> list[str]:
    lines = [f"Error: {error}"]
    if outcome_unknown(error):
        reference = error.reference
        lines.append(
            f"It may have been applied. Check with `giftledger till lookup {reference}` before trying again; "
            f"`giftledger till reverse {reference}` cancels it."
        )
    return lines


def refuse(error: GiftLedgerError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps(out.error_json(error)))
    for line in error_lines(error):
        click.echo(line, err=True)
    raise click.exceptions.Exit(exit_code(error))


def run(
    state: TillState,
    as_json: bool,
    operation: Callable[[GiftCardClient], T],
    show: Callable[[T, TerminalSettings], str],
    as_data: Callable[[T, TerminalSettings], Any] = lambda result, _: out.to_json(result),
) -> None:
    """Load the settings, run one operation against the endpoint, print its result (or the refusal)."""
    settings = load_settings(state.config_path)
    try:
        with GiftCardClient(settings) as client:
            result = operation(client)
    except GiftLedgerError as exc:
        refuse(exc, as_json)
    click.echo(json.dumps(as_data(result, settings)) if as_json else show(result, settings))


# -- commands -------------------------------------------------------------------------------------------


@click.group("till")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    default=None,
    help=f"Terminal settings file (default: {CONFIG_FILE} in the user's giftledger config directory; "
    f"or ${CONFIG_ENV}).",
)
@click.pass_context
def till(ctx: click.Context, config_path: Path | None) -> None:
    """A till: balance, sell, top up, redeem, reverse and products over the EPOS API. Amounts in pence."""
    ctx.obj = TillState(config_path if config_path is not None else default_config_path())


@till.command()
@click.option("--endpoint", default=None, help="GraphQL endpoint URL, e.g. http://127.0.0.1:8000/graphql.")
@click.option("--account-id", type=click.IntRange(min=1), default=None, help="Account ID.")
@click.option("--merchant-id", type=click.IntRange(min=1), default=None, help="Merchant ID (PointOne 60, Polaris 61).")
@click.option("--username", default=None, help="API username.")
@click.option("--password-stdin", is_flag=True, help="Read the API password from the first line of standard input.")
@click.option("--site-reference", default=None, help="The site's EPOS reference (unit_epos_reference).")
@click.option("--product-id", type=click.IntRange(min=1), default=None, help="Product sold at the till (Polaris).")
@click.option(
    "--validate-card-number/--no-validate-card-number",
    default=None,
    help="Check length, prefix and check digit before sending (off for cards from another supplier). Default on.",
)
@click.option("--card-prefix", default=None, help="Prefix of a valid card number (default 63011900).")
@click.option("--card-length", type=click.IntRange(min=1), default=None, help="Digits in a card number (default 19).")
@click.option("--enabled/--disabled", default=None, help="The integration switch (default enabled).")
@click.option("--currency", default=None, help="Currency sent with sales and adjustments (default GBP).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds per request.")
@json_option
@pass_state
def configure(state: TillState, /, password_stdin: bool, as_json: bool, **given: Any) -> None:
    """Write the terminal settings. With a settings file already there, options left out keep their values.

    The password is never taken from the command line: pass --password-stdin and pipe it in, or type it at the
    hidden prompt.
    """
    path = state.config_path
    current: dict[str, object] = {}
    if path.exists():
        try:
            current = read_settings_file(path)
        except SettingsUnreadable as exc:
            click.echo(f"{exc} Writing new ones.", err=True)
    merged: dict[str, object] = {**current, **{name: value for name, value in given.items() if value is not None}}
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            usage_error("--password-stdin read an empty password.")
        merged["password"] = password
    elif not merged.get("password"):
        merged["password"] = str(click.prompt("API password", hide_input=True))
    missing = [option for name, (option, required) in _SETTING_OPTIONS.items() if required and name not in merged]
    if missing:
        usage_error(f"Missing {', '.join(missing)} (no terminal settings at {path} yet).")
    try:
        settings = TerminalSettings.from_dict(merged)
    except ConfigurationError as exc:
        usage_error(str(exc))
    save_settings(path, settings)
    if as_json:
        click.echo(json.dumps(out.settings_json(settings, str(path))))
    else:
        click.echo(out.table("Terminal settings saved", out.settings_rows(settings, str(path))))


@till.command()
@json_option
@pass_state
def login(state: TillState, as_json: bool) -> None:
    """Log in now, to test the endpoint, account and API user."""

    def show(_: None, settings: TerminalSettings) -> str:
        return f"Logged in to {settings.endpoint} as {settings.username}."

    def data(_: None, settings: TerminalSettings) -> dict[str, Any]:
        return {"logged_in": True, "endpoint": settings.endpoint, "username": settings.username}

    run(state, as_json, lambda client: client.log_in(), show, data)


@till.command()
@click.argument("card")
@json_option
@pass_state
def balance(state: TillState, card: str, as_json: bool) -> None:
    """Check a card's balance."""
    run(
        state,
        as_json,
        lambda client: client.check_balance(card),
        lambda result, settings: out.table("Balance", out.balance_rows(result, settings.currency)),
    )


@till.command()
@click.argument("values", nargs=-1, required=True, metavar="[CARD] AMOUNT")
@click.option("--generate", is_flag=True, help="Sell a digital card: the server generates the number.")
@click.option(
    "--email",
    default=None,
    help=(
        "The customer's email for a digital card (with --generate). The server queues the card's e-gift email in "
        "the sale's own transaction and its outbox sends it moments later (by SMTP; in development without "
        "GIFTLEDGER_SMTP_URL, to an .eml file under var/mail)."
    ),
)
@reference_option
@json_option
@pass_state
def sell(
    state: TillState, values: tuple[str, ...], generate: bool, email: str | None, reference: str | None, as_json: bool
) -> None:
    """Sell a physical card (`sell CARD AMOUNT`) or a digital one (`sell --generate AMOUNT --email E`)."""
    ctx = click.get_current_context()
    if generate:
        if len(values) != 1:
            raise click.UsageError("With --generate give the AMOUNT only: sell --generate AMOUNT --email E.", ctx)
        if not email:
            raise click.UsageError("--generate needs --email: the customer's address for the digital card.", ctx)
        amount = _amount_value(values[0], ctx)
        digital_email = email
        run(
            state,
            as_json,
            lambda client: client.sell_digital_card(amount, digital_email, reference=reference),
            lambda result, settings: out.table("Sale (digital card)", out.sale_rows(result, settings.currency)),
        )
        return
    if email is not None:
        raise click.UsageError("--email goes with --generate (a digital card).", ctx)
    if len(values) != 2:
        raise click.UsageError("Give the CARD number and the AMOUNT in pence: sell CARD AMOUNT.", ctx)
    card, amount = values[0], _amount_value(values[1], ctx)
    run(
        state,
        as_json,
        lambda client: client.sell_card(card, amount, reference=reference),
        lambda result, settings: out.table("Sale", out.sale_rows(result, settings.currency)),
    )


@till.command()
@click.argument("card")
@click.argument("amount", callback=_pence_argument)
@reference_option
@json_option
@pass_state
def topup(state: TillState, card: str, amount: int, reference: str | None, as_json: bool) -> None:
    """Add AMOUNT pence to a card."""
    run(
        state,
        as_json,
        lambda client: client.top_up(card, amount, reference=reference),
        lambda result, settings: out.table("Top-up", out.adjustment_rows(result, settings.currency)),
    )


@till.command()
@click.argument("card")
@click.argument("amount", callback=_pence_argument)
@reference_option
@json_option
@pass_state
def redeem(state: TillState, card: str, amount: int, reference: str | None, as_json: bool) -> None:
    """Pay towards a bill of AMOUNT pence with a card: takes no more than the balance or the bill."""
    run(
        state,
        as_json,
        lambda client: client.redeem(card, amount, reference=reference),
        lambda result, settings: out.table("Redemption", out.redemption_rows(result, settings.currency)),
    )


@till.command()
@click.argument("reference")
@click.option("--reversal-reference", default=None, help="The reversal's own reference (default: REFERENCE-REVERSAL).")
@json_option
@pass_state
def reverse(state: TillState, reference: str, reversal_reference: str | None, as_json: bool) -> None:
    """Reverse the transaction the till made with REFERENCE (every line item it created)."""
    run(
        state,
        as_json,
        lambda client: client.reverse(reference, reversal_reference=reversal_reference),
        lambda result, settings: out.table("Reversal", out.reversal_rows(result, settings.currency)),
    )


@till.command()
@click.argument("reference")
@json_option
@pass_state
def lookup(state: TillState, reference: str, as_json: bool) -> None:
    """List the line items recorded under REFERENCE (none: it was not applied)."""

    def show(items: list[Any], settings: TerminalSettings) -> str:
        if not items:
            return f"Nothing is recorded under the reference {reference}: it was not applied."
        return f"Line items of {reference}\n" + out.line_items_grid(items, settings.currency)

    run(
        state,
        as_json,
        lambda client: client.line_items(reference),
        show,
        lambda items, _: {"reference": reference, "line_items": out.to_json(items)},
    )


@till.command()
@json_option
@pass_state
def products(state: TillState, as_json: bool) -> None:
    """List the account's products and their price modifiers (preset values)."""
    run(
        state,
        as_json,
        lambda client: client.products(),
        lambda result, settings: out.products_grid(result, settings.currency),
        lambda result, _: {"products": out.to_json(result)},
    )


@till.command()
@pass_state
def screen(state: TillState) -> None:
    """An interactive till for a person at a keyboard: menu, amount entry in pounds, receipts."""
    from giftledger.cli.till_screen import TillScreen

    settings = load_settings(state.config_path)
    with GiftCardClient(settings) as client:
        code = TillScreen(client, sys.stdin, sys.stdout).run()
    raise click.exceptions.Exit(code)


def register(group: click.Group) -> None:
    """Add `till` to the `giftledger` command."""
    group.add_command(till)
