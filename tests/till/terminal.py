"""Driving `giftledger till` in-process (click's CliRunner) for one configured terminal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from giftledger.cli.till import till
from giftledger_client import GiftCardClient, TerminalSettings
from tests.support import Demo

DISABLED = "Error: The gift card integration is disabled on this terminal.\n"


@dataclass
class Terminal:
    config: Path
    demo: Demo
    endpoint: str

    def run(self, *args: str, input: str | None = None) -> Result:
        """`giftledger till --config CONFIG ARGS...` in this process."""
        return CliRunner().invoke(till, ["--config", str(self.config), *args], input=input, catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        return result

    def json(self, *args: str) -> Any:
        """Run a command with --json; it must succeed and print exactly one JSON object."""
        result = self.ok(*args, "--json")
        return json.loads(result.stdout)

    def configure(self, *extra: str, password: str | None = None) -> Result:
        demo = self.demo
        result = self.run(
            "configure",
            "--endpoint",
            self.endpoint,
            "--account-id",
            str(demo.account_id),
            "--merchant-id",
            str(demo.merchant_id),
            "--username",
            demo.api_username,
            "--password-stdin",
            "--site-reference",
            demo.epos,
            "--product-id",
            str(demo.product_id),
            *extra,
            input=(password if password is not None else demo.api_password) + "\n",
        )
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def settings(self) -> TerminalSettings:
        return TerminalSettings.from_dict(json.loads(self.config.read_text()))

    def client(self) -> GiftCardClient:
        """A library client with this terminal's settings that does not pause between attempts."""
        return GiftCardClient(self.settings(), retry_delays=(0.0,))
