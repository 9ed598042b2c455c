"""`giftledger ledger verify`: check the ledger's invariants, print what was checked and every violation,
and exit 1 when there is any (2 when the check itself could not run: click's usage-error code)."""

from __future__ import annotations

import asyncio
import json

import click

from giftledger.app import build_services, schema_revisions
from giftledger.cli.running import settings_from
from giftledger.domain.errors import DomainError
from giftledger.services.verification import VerificationReport, verify_ledger


class CannotVerify(click.ClickException):
    """The verification could not run (no schema, unknown account): exit 2, apart from violations' 1."""

    exit_code = 2


@click.group("ledger")
def ledger() -> None:
    """The ledger: integrity checks."""


def _run(ctx: click.Context, account_id: int | None) -> VerificationReport:
    """Runs against the database as it is: verification never migrates or writes anything."""
    settings = settings_from(ctx)

    async def _main() -> VerificationReport:
        services = build_services(settings)
        try:
            revision, head = await schema_revisions(services)
            if revision is None:
                raise CannotVerify("this database has no giftledger schema (run `giftledger migrate`)")
            if revision != head:
                click.echo(f"warning: database at revision {revision}, code at {head}", err=True)
            return await verify_ledger(services, account_id)
        finally:
            await services.db.dispose()

    try:
        return asyncio.run(_main())
    except DomainError as exc:
        raise CannotVerify(exc.message) from exc


def _print(report: VerificationReport) -> None:
    for account in report.accounts:
        click.echo(f"account {account.account_id}")
        for check in account.checks:
            status = "ok" if not check.violations else f"{len(check.violations)} VIOLATION(S)"
            click.echo(f"  {check.name}: {check.description}: {check.examined} examined, {status}")
            for violation in check.violations:
                click.echo(f"    - {violation}")
    count = len(report.violations)
    verdict = "ledger OK" if report.ok else f"ledger BROKEN: {count} violation(s)"
    click.echo(f"{len(report.accounts)} account(s) checked: {verdict}")


@ledger.command("verify")
@click.option("--account-id", type=int, default=None, help="check one account (default: every account)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
@click.pass_context
def verify(ctx: click.Context, account_id: int | None, as_json: bool) -> None:
    """Check balances against line items, negative balances, reversals, references and order totals."""
    report = _run(ctx, account_id)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(ledger)
