"""`giftledger till ...` against a live server (both databases), through a recording loopback proxy: the seeds'
step 5 till test end to end, wrong password, disabled integration, card-number validation on and off, and
what the terminal settings file holds. Every refused request leaves the account untouched."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from giftledger.services import setup
from tests.support import Demo, LiveServer, ledger_sums, snapshot, unchanged, with_services
from tests.till.proxy import LoopbackProxy
from tests.till.terminal import DISABLED, Terminal

NOT_FOUND = "No card has been found for this account for the card ref supplied. Transaction not applied."


def _without_times(card: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(card.pop("created_at"), str) and isinstance(card.pop("updated_at"), str)
    return card


def _last_reply(proxy: LoopbackProxy, field: str) -> dict[str, Any]:
    exchange = [e for e in proxy.exchanges if e.field == field][-1]
    assert exchange.reply is not None
    data: dict[str, Any] = exchange.reply["data"][field]
    return data


def test_the_seeds_till_test_balance_sale_redeem_reverse(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    assert terminal.ok("login").stdout == f"Logged in to {proxy.url} as {demo.api_username}.\n"

    # An unsold stock card is not a card yet.
    with unchanged(server.database_url, demo.account_id):
        refused = terminal.run("balance", card)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (1, "", f"Error: {NOT_FOUND}\n")

    sold = terminal.ok("sell", card, "2500", "--reference", "till-sale-1")
    order = _last_reply(proxy, "createOrder")
    assert sold.stdout == (
        "Sale\n"
        "  Reference  till-sale-1\n"
        f"  Card       {card}\n"
        "  Amount     £25.00\n"
        "  Balance    £25.00\n"
        f"  Order      {order['id']}\n"
        f"  Line item  {order['LineItems'][0]['id']}\n"
    )
    assert _without_times(terminal.json("balance", card)) == {
        "card_reference": card,
        "balance": 2500,
        "initial_balance": 2500,
        "value_split": {"tender": 2500, "discount": 0},
    }

    first = terminal.json("redeem", card, "1000", "--reference", "till-redeem-1")
    assert first == {
        "reference": "till-redeem-1",
        "card_reference": card,
        "bill": 1000,
        "taken": 1000,
        "remaining_to_pay": 0,
        "balance": 1500,
        "line_item_id": first["line_item_id"],
        "value_split": {"tender": -1000, "discount": 0},
    }
    # The bill is bigger than the balance: the card pays what it has, the guest the rest.
    proxy.reset()
    second = terminal.ok("redeem", card, "2000", "--reference", "till-redeem-2")
    assert proxy.fields == ["loginUser", "Cards", "createBalanceAdjustment"]
    assert proxy.exchanges[2].variables["value"] == -1500
    assert second.stdout == (
        "Redemption\n"
        "  Reference          till-redeem-2\n"
        f"  Card               {card}\n"
        "  Bill               £20.00\n"
        "  Paid by card       £15.00\n"
        "  Still to pay       £5.00\n"
        "  Balance            £0.00\n"
        "  Tender / discount  -£15.00 / £0.00\n"
        f"  Line item          {_last_reply(proxy, 'createBalanceAdjustment')['LineItem']['id']}\n"
    )
    # An empty card: nothing is taken and no adjustment is sent.
    proxy.reset()
    with unchanged(server.database_url, demo.account_id):
        empty = terminal.json("redeem", card, "500")
    assert proxy.fields == ["loginUser", "Cards"]
    assert empty == {
        "reference": None,
        "card_reference": card,
        "bill": 500,
        "taken": 0,
        "remaining_to_pay": 500,
        "balance": 0,
        "line_item_id": None,
        "value_split": None,
    }

    reversed_ = terminal.ok("reverse", "till-redeem-1")
    reversal = _last_reply(proxy, "createReversal")
    assert reversed_.stdout == (
        "Reversal\n"
        "  Reference            till-redeem-1-REVERSAL\n"
        "  Reversed             till-redeem-1\n"
        f"  Reversed line items  {first['line_item_id']}\n"
        f"  Card                 {card}\n"
        "    Amount             £10.00\n"
        "    Balance            £10.00\n"
    )
    assert reversal["LineItems"][0]["value"] == 1000
    looked_up = terminal.json("lookup", "till-redeem-1")
    assert [(item["id"], item["value"], item["reference"]) for item in looked_up["line_items"]] == [
        (first["line_item_id"], -1000, "till-redeem-1")
    ]
    with unchanged(server.database_url, demo.account_id):
        again = terminal.run("reverse", "till-redeem-1")
    assert (again.exit_code, again.stderr) == (1, "Error: Duplicate reference supplied\n")
    with unchanged(server.database_url, demo.account_id):
        unknown = terminal.run("reverse", "never-used", "--json")
    assert unknown.exit_code == 1
    assert unknown.stderr == "Error: No transaction has the reference never-used.\n"
    assert json.loads(unknown.stdout) == {
        "error": {
            "type": "TransactionNotFound",
            "code": "TRANSACTION_NOT_FOUND",
            "message": "No transaction has the reference never-used.",
            "validation": {},
            "customer_facing": False,
            "reference": "never-used",
        }
    }

    assert terminal.json("balance", card)["balance"] == 1000
    after = snapshot(server.database_url, demo.account_id)
    assert (after.orders, after.line_items, after.balances[card]) == (1, 4, 1000)
    assert all(stored == summed for stored, summed in ledger_sums(server.database_url, demo.account_id).values())


def test_top_up_digital_sale_and_products(server: LiveServer, demo: Demo, terminal: Terminal) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "1000")
    topped = terminal.json("topup", card, "750", "--reference", "till-topup-1")
    assert topped == {
        "reference": "till-topup-1",
        "line_item_id": topped["line_item_id"],
        "card_reference": card,
        "amount": 750,
        "balance": 1750,
        "value_split": {"tender": 750, "discount": 0},
    }
    digital = terminal.json("sell", "--generate", "2000", "--email", "guest@example.com")
    assert digital["amount"] == 2000 and digital["balance"] == 2000
    assert digital["card_reference"].startswith("63011900") and len(digital["card_reference"]) == 19
    assert terminal.json("balance", digital["card_reference"])["balance"] == 2000
    assert terminal.json("products") == {
        "products": [
            {
                "id": demo.product_id,
                "name": "In-Store Gift",
                "price_modifiers": [
                    {"id": demo.price_modifier_ids[0], "price": 0, "description": "Blank card"},
                    {"id": demo.price_modifier_ids[1], "price": 1000, "description": "£10"},
                    {"id": demo.price_modifier_ids[2], "price": 2500, "description": "£25"},
                    {"id": demo.price_modifier_ids[3], "price": 5000, "description": "£50"},
                ],
            }
        ]
    }
    p, (blank, ten, twenty_five, fifty) = demo.product_id, demo.price_modifier_ids
    rows = [
        (str(p), "In-Store Gift", str(blank), "£0.00 ", "Blank card"),
        (str(p), "In-Store Gift", str(ten), "£10.00", "£10"),
        (str(p), "In-Store Gift", str(twenty_five), "£25.00", "£25"),
        (str(p), "In-Store Gift", str(fifty), "£50.00", "£50"),
    ]
    id_width = max(len("Product ID"), len(str(p)))
    modifier_width = max(len("Price modifier ID"), *(len(str(m)) for m in demo.price_modifier_ids))
    lines = [
        f"{'Product ID'.ljust(id_width)}  Product        {'Price modifier ID'.ljust(modifier_width)}"
        "  Price   Description",
        f"{'-' * id_width}  -------------  {'-' * modifier_width}  ------  -----------",
        *(f"{a.ljust(id_width)}  {b}  {c.ljust(modifier_width)}  {d}  {e}" for a, b, c, d, e in rows),
    ]
    assert terminal.ok("products").stdout == "\n".join(lines) + "\n"
    after = snapshot(server.database_url, demo.account_id)
    assert (after.orders, after.line_items) == (2, 3)


def test_wrong_password_is_refused_with_the_servers_message(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    terminal.configure(password=demo.api_password + "x")
    card = demo.card_references[0]
    with unchanged(server.database_url, demo.account_id):
        for args in (["login"], ["balance", card], ["sell", card, "2500"], ["redeem", card, "100"]):
            proxy.reset()
            result = terminal.run(*args)
            assert (result.exit_code, result.stdout, result.stderr) == (1, "", "Error: Unauthorized\n"), args
            assert proxy.fields == ["loginUser"], args  # no second try with the same wrong password
        result = terminal.run("balance", card, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "type": "AuthenticationFailed",
        "code": "UNAUTHENTICATED",
        "message": "Unauthorized",
        "validation": {},
        "customer_facing": False,
        "reference": None,
    }
    terminal.configure()  # the right password again
    assert terminal.ok("login").stdout == f"Logged in to {proxy.url} as {demo.api_username}.\n"


def test_disabled_integration_is_refused_on_the_till_and_sends_nothing(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    terminal.ok("sell", card, "2500", "--reference", "before-disabling")
    assert "  Integration           disabled\n" in terminal.ok("configure", "--disabled").stdout
    assert json.loads(terminal.config.read_text())["enabled"] is False
    proxy.reset()
    commands = [
        ["login"],
        ["balance", card],
        ["sell", demo.card_references[1], "2500"],
        ["sell", "--generate", "2500", "--email", "guest@example.com"],
        ["topup", card, "500"],
        ["redeem", card, "500"],
        ["reverse", "before-disabling"],
        ["lookup", "before-disabling"],
        ["products"],
    ]
    with unchanged(server.database_url, demo.account_id):
        for args in commands:
            result = terminal.run(*args)
            assert (result.exit_code, result.stdout, result.stderr) == (1, "", DISABLED), args
    assert proxy.exchanges == []
    terminal.ok("configure", "--enabled")
    assert terminal.json("balance", card)["balance"] == 2500


def test_card_number_validation_on_checks_before_sending(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    card = demo.card_references[0]
    wrong_check_digit = card[:-1] + str((int(card[-1]) + 1) % 10)
    wrong_prefix = "4" + card[1:]
    imported = "9900123412341234"
    with_services(
        server.database_url,
        lambda s: setup.add_card_stock(s, setup.operator(demo.account_id), references=[imported]),
    )
    refusals = {
        "123": "The card number must be 19 digits long.",
        "6301190012A45678901": "The card number must contain digits only.",
        wrong_check_digit: "The card number is not valid: its check digit is wrong.",
        wrong_prefix: "The card number must start with 63011900.",
        imported: "The card number must be 19 digits long.",
    }
    with unchanged(server.database_url, demo.account_id):
        for number, message in refusals.items():
            for args in (["balance", number], ["sell", number, "2500"], ["redeem", number, "100"]):
                result = terminal.run(*args)
                assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {message}\n"), args
    assert proxy.exchanges == []
    assert terminal.json("sell", f" {card}\n", "2500")["card_reference"] == card  # a scanner's newline is fine


def test_card_number_validation_off_takes_cards_from_another_supplier(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    imported = "9900123412341234"
    with_services(
        server.database_url,
        lambda s: setup.add_card_stock(s, setup.operator(demo.account_id), references=[imported]),
    )
    assert "  Validate card number  off\n" in terminal.ok("configure", "--no-validate-card-number").stdout
    sold = terminal.json("sell", imported, "3000")
    assert (sold["card_reference"], sold["amount"], sold["balance"]) == (imported, 3000, 3000)
    paid = terminal.json("redeem", imported, "1200")
    assert (paid["taken"], paid["remaining_to_pay"], paid["balance"]) == (1200, 0, 1800)
    assert terminal.json("balance", imported)["balance"] == 1800
    # Off, nothing is checked on the till: the server judges the number and its message is shown.
    card = demo.card_references[0]
    wrong_check_digit = card[:-1] + str((int(card[-1]) + 1) % 10)
    proxy.reset()
    with unchanged(server.database_url, demo.account_id):
        result = terminal.run("balance", wrong_check_digit)
    assert proxy.fields == ["loginUser", "Cards"]
    assert proxy.exchanges[1].variables["card_reference"] == wrong_check_digit
    reply = proxy.exchanges[1].reply
    assert reply is not None and reply["errors"][0]["validation"] == {
        "card_reference": ["Must be a valid card reference."]
    }
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error: card_reference: Must be a valid card reference.\n"
    after = snapshot(server.database_url, demo.account_id)
    assert (after.line_items, after.balances[imported]) == (2, 1800)


def test_configure_keeps_the_password_out_of_argv_and_the_file_private(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "new" / "till.json"
    till = Terminal(path, demo, "http://127.0.0.1:9/graphql")
    missing = till.run("configure", "--endpoint", "http://127.0.0.1:9/graphql", "--password-stdin", input="pw\n")
    assert missing.exit_code == 2
    assert missing.stderr == (
        "Error: Missing --account-id, --merchant-id, --username, --site-reference "
        f"(no terminal settings at {path} yet).\n"
    )
    assert not path.exists()
    empty = till.run("configure", "--password-stdin", input="\n")
    assert (empty.exit_code, empty.stderr) == (2, "Error: --password-stdin read an empty password.\n")
    no_settings = till.run("balance", demo.card_references[0])
    assert no_settings.exit_code == 2
    assert no_settings.stderr == f"Error: No terminal settings at {path}: run `giftledger till configure` first.\n"

    till.configure()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored == {
        "endpoint": "http://127.0.0.1:9/graphql",
        "account_id": demo.account_id,
        "username": demo.api_username,
        "password": demo.api_password,
        "site_reference": demo.epos,
        "merchant_id": demo.merchant_id,
        "product_id": demo.product_id,
        "validate_card_number": True,
        "card_prefix": "63011900",
        "card_length": 19,
        "enabled": True,
        "currency": "GBP",
        "timeout": 10.0,
    }
    # Later runs change what they name and keep the rest, the password included.
    shown = till.json("configure", "--site-reference", "other-till", "--card-prefix", "6301")
    assert shown == {"config": str(path), **{k: v for k, v in stored.items() if k != "password"}} | {
        "site_reference": "other-till",
        "card_prefix": "6301",
    }
    assert json.loads(path.read_text())["password"] == demo.api_password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    no_product = Terminal(tmp_path / "no-product.json", demo, "http://127.0.0.1:9/graphql")
    no_product.config.write_text(json.dumps({**stored, "product_id": None}))
    refused = no_product.run("sell", demo.card_references[0], "2500")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "Error: Set product_id in the terminal settings to sell gift cards.\n",
    )
    broken = Terminal(tmp_path / "broken.json", demo, "http://127.0.0.1:9/graphql")
    broken.config.write_text("{not json")
    unreadable = broken.run("balance", demo.card_references[0])
    assert (unreadable.exit_code, unreadable.stderr) == (
        2,
        f"Error: The terminal settings at {broken.config} are not JSON: run `giftledger till configure` again.\n",
    )
    assert broken.configure().stderr == (
        f"The terminal settings at {broken.config} are not JSON: run `giftledger till configure` again. "
        "Writing new ones.\n"
    )
    assert json.loads(broken.config.read_text()) == stored
    wrong = till.run("configure", "--endpoint", "ftp://example.com/graphql")
    assert wrong.exit_code == 2
    assert wrong.stderr == "Error: endpoint must be an http(s) URL, for example https://api.mytoggle.io/graphql.\n"
    assert json.loads(path.read_text())["endpoint"] == "http://127.0.0.1:9/graphql"


def test_amounts_are_whole_pence(server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy) -> None:
    card = demo.card_references[0]
    with unchanged(server.database_url, demo.account_id):
        for args, message in [
            (["sell", card, "25.00"], "AMOUNT: '25.00' is not an amount in pence: write 2500 for 25.00."),
            (["sell", card, "0"], "AMOUNT: the amount must be greater than zero."),
            (
                ["redeem", card, "--", "-5"],
                "Invalid value for 'AMOUNT': '-5' is not an amount in pence: write 2500 for 25.00.",
            ),
            (
                ["topup", card, "£5"],
                "Invalid value for 'AMOUNT': '£5' is not an amount in pence: write 2500 for 25.00.",
            ),
            (["sell", "--generate", "2500"], "--generate needs --email: the customer's address for the digital card."),
            (["sell", card], "Give the CARD number and the AMOUNT in pence: sell CARD AMOUNT."),
        ]:
            result = terminal.run(*args)
            assert result.exit_code == 2, args
            assert result.stderr.endswith(f"Error: {message}\n"), (args, result.stderr)
    assert proxy.exchanges == []


def test_a_real_till_process_with_the_default_settings_file(server: LiveServer, demo: Demo, tmp_path: Path) -> None:
    """`giftledger till` as a separate process: settings in the user's config directory, password on stdin."""
    environment = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    environment.pop("GIFTLEDGER_TILL_CONFIG", None)
    command = [sys.executable, "-m", "giftledger", "till"]
    arguments = [
        "configure",
        "--endpoint",
        server.graphql_url,
        "--account-id",
        str(demo.account_id),
        "--merchant-id",
        str(demo.merchant_id),
        "--username",
        demo.api_username,
        "--password-stdin",
        "--site-reference",
        demo.epos,
        "--json",
    ]
    assert demo.api_password not in arguments
    configured = subprocess.run(
        [*command, *arguments], input=demo.api_password + "\n", capture_output=True, text=True, env=environment
    )
    assert configured.returncode == 0, configured.stderr
    path = tmp_path / "config" / "giftledger" / "till.json"
    assert json.loads(configured.stdout)["config"] == str(path)
    assert "password" not in json.loads(configured.stdout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    card = demo.card_references[0]
    refused = subprocess.run([*command, "balance", card], capture_output=True, text=True, env=environment)
    assert (refused.returncode, refused.stdout, refused.stderr) == (1, "", f"Error: {NOT_FOUND}\n")
    assert snapshot(server.database_url, demo.account_id).line_items == 0


def test_a_till_set_up_wrongly_shows_the_servers_explanation(
    server: LiveServer, demo: Demo, terminal: Terminal, proxy: LoopbackProxy
) -> None:
    """The troubleshooting table of README.md ("Connect a till"): a site reference that is not mapped, and the
    merchant ID of another POS."""
    card = demo.card_references[0]
    terminal.ok("sell", card, "2500")
    terminal.ok("configure", "--site-reference", "not-mapped")
    with unchanged(server.database_url, demo.account_id):
        for args in (["sell", demo.card_references[1], "2500"], ["topup", card, "100"], ["redeem", card, "100"]):
            result = terminal.run(*args)
            assert (result.exit_code, result.stdout) == (1, ""), args
            assert result.stderr == "Error: The external_site_id supplied was not recognised for this account.\n"
    terminal.ok("configure", "--site-reference", demo.epos, "--merchant-id", "61")
    with unchanged(server.database_url, demo.account_id):
        result = terminal.run("redeem", card, "100")
    assert (result.exit_code, result.stderr) == (1, "Error: merchant_id: This field is not of an expected value\n")
