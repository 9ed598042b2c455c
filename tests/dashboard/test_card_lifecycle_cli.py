"""`giftledger cards import`, `cards replace` and `product pin` at the command line: JSON on standard output,
problems listed by row and column, exit 1 (2 for bad usage) with nothing changed when refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from giftledger.cli import admin, card_lifecycle
from giftledger.cli.main import cli
from tests.support import SECRET, Demo, unchanged


def run(database_url: str, *args: str) -> tuple[int, str, str]:
    admin.register(cli)
    card_lifecycle.register(admin.cards, admin.product)
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    result = CliRunner(env=env).invoke(cli, ["--database-url", database_url, *args], obj={})
    return result.exit_code, result.stdout, result.stderr


def last_json(output: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return data


def test_import_replace_and_pin_at_the_command_line(database_url: str, demo: Demo, tmp_path: Path) -> None:
    account = str(demo.account_id)
    bad = tmp_path / "bad.csv"
    bad.write_text("card_number,balance,pin\nCLI00001,ten,12\n")
    good = tmp_path / "good.csv"
    good.write_text("card_number,balance,discount\nCLI-00002,30,10\n")
    with unchanged(database_url, demo.account_id):
        code, out, err = run(database_url, "cards", "import", str(bad), "--account-id", account)
        assert code == 1
        assert last_json(out)["problems"] == [
            {"row": 2, "column": "balance", "message": "An amount in pounds, such as 25 or 25.50."},
            {"row": 2, "column": "pin", "message": "A PIN is 4 to 8 digits."},
        ]
        assert "row 2, balance: An amount in pounds, such as 25 or 25.50." in err
        assert "2 problem(s): nothing was imported" in err
        code, out, _ = run(database_url, "cards", "import", str(good), "--account-id", account, "--dry-run")
        assert code == 0
        checked = last_json(out)
        assert (checked["ok"], checked["imported"], checked["cards"], checked["total"]) == (True, False, 1, 3000)

    code, out, _ = run(database_url, "cards", "import", str(good), "--account-id", account)
    assert code == 0 and last_json(out)["imported"] is True
    with unchanged(database_url, demo.account_id):
        code, out, err = run(database_url, "cards", "import", str(good), "--account-id", account)
        assert code == 0 and last_json(out)["imported"] is False
        assert last_json(out)["already_imported"]["cards"] == 1
        assert "good.csv was imported on" in err and "nothing changed" in err

    code, out, _ = run(database_url, "cards", "replace", "CLI00002", "--account-id", account, "--reason", "lost")
    assert code == 0
    replaced = last_json(out)
    assert (replaced["value"], replaced["tender"], replaced["discount"]) == (3000, 2000, 1000)
    assert len(replaced["new_card_reference"]) == 19
    with unchanged(database_url, demo.account_id):
        code, _, err = run(database_url, "cards", "replace", "CLI00002", "--account-id", account, "--reason", "lost")
        assert code == 1 and "This card is blocked" in err
        code, _, _ = run(database_url, "product", "pin", "--account-id", account, "--product-id", "1", "--digits", "3")
        assert code == 2
    code, out, _ = run(
        database_url, "product", "pin", "--account-id", account, "--product-id", str(demo.product_id), "--digits", "4"
    )
    assert (code, last_json(out)) == (0, {"product_id": demo.product_id, "pin_digits": 4})
