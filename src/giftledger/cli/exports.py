"""`giftledger export KIND --account-id N --from DATE --to DATE --output FILE` (the liability: `--at DATETIME`
instead of the range): one of the dashboard's data exports, written by this command itself, a chunk at a time
(services/exports.py). Refused input (an unknown kind, a bad or missing date, an end before the start, a
liability without its moment: exit 2; an unknown account or an output folder that does not exist: exit 1) writes
nothing."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import click

from giftledger.app import build_services, migrate_database
from giftledger.cli.running import settings_from
from giftledger.domain.errors import DomainError, ValidationFailed
from giftledger.services import exports
from giftledger.services.context import operator
from giftledger.services.exports import ExportKind

OPTION_OF = {"kind": "KIND", "start": "--from", "end": "--to", "at": "--at"}


def _day(raw: str | None, option: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not a date: write it as YYYY-MM-DD.", param_hint=option) from None


@click.command("export")
@click.argument("kind", type=click.Choice([k.value for k in ExportKind]), metavar="KIND")
@click.option("--account-id", type=int, required=True, help="the account to export")
@click.option("--from", "start", metavar="DATE", help="first day (YYYY-MM-DD, in the account's time zone)")
@click.option("--to", "end", metavar="DATE", help="last day, included")
@click.option("--at", "at", metavar="DATETIME", help="the liability's moment (YYYY-MM-DD HH:MM, the account's zone)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="the CSV file")
@click.pass_context
def export(
    ctx: click.Context, kind: str, account_id: int, start: str | None, end: str | None, at: str | None, output: Path
) -> None:
    """Export KIND as CSV (times in the account's time zone, named in the heading)."""
    liability = kind == ExportKind.LIABILITY.value
    if liability and (start is not None or end is not None):
        raise click.UsageError("the liability is as of one moment: give --at, not --from/--to")
    if not liability and at is not None:
        raise click.UsageError("--at is for the liability only: give --from and --to")
    first, last = _day(start, "--from"), _day(end, "--to")
    if not output.parent.is_dir():
        raise click.ClickException(f"{output.parent} is not a folder: nothing was written")
    settings = settings_from(ctx)

    async def _main() -> int:
        services = build_services(settings)
        try:
            await migrate_database(services)
            principal = operator(account_id)
            zone_name = await exports.account_zone(services, principal)
            moment = exports.parse_moment(at, zone_name)
            if at is not None and moment is None:
                raise click.BadParameter(exports.NOT_A_MOMENT, param_hint="--at")
            request = exports.check_request(kind, first, last, moment)
            return await exports.write_export(exports.prepare(services, account_id, zone_name, request), output)
        finally:
            await services.dispose()

    try:
        rows = asyncio.run(_main())
    except ValidationFailed as refused:
        problems = "; ".join(f"{OPTION_OF.get(k, k)}: {' '.join(v)}" for k, v in refused.fields.items())
        raise click.UsageError(problems) from refused
    except DomainError as refused:
        raise click.ClickException(refused.message) from refused
    click.echo(f"{rows} row(s) written to {output}", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(export)
