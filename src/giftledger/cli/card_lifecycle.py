"""`giftledger cards import`, `giftledger cards replace` and `giftledger product pin`: imported cards,
replacement cards and PINs on sale, over the same services as the dashboard. Each prints one JSON object; a
refused import or replacement exits 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from giftledger.cli.running import run_with_services
from giftledger.services import card_admin, card_import, card_pins, card_replacement
from giftledger.services.context import Services, operator


def _echo(data: Any) -> None:
    click.echo(json.dumps(data))


def import_result(report: card_import.ImportReport) -> dict[str, Any]:
    result: dict[str, Any] = {
        "file": report.file_name,
        "sha256": report.file_sha256,
        "dry_run": report.dry_run,
        "ok": report.ok,
        "imported": report.imported,
        "cards": report.cards,
        "total": report.total,
        "aliases": report.aliases,
        "problems": [{"row": p.row, "column": p.column, "message": p.message} for p in report.problems],
    }
    if report.earlier is not None:
        result["already_imported"] = {
            "card_import_id": report.earlier.id,
            "at": report.earlier.created_at.isoformat(),
            "cards": report.earlier.cards,
        }
    return result


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account-id", type=int, required=True, help="the account to import into")
@click.option("--dry-run", is_flag=True, help="check every row and list every problem; write nothing")
@click.pass_context
def cards_import(ctx: click.Context, file: Path, account_id: int, dry_run: bool) -> None:
    """Import cards with their balances from a CSV file (columns: docs/card-import.md): the whole file or
    nothing. The same file imported again changes nothing."""
    data = file.read_bytes()

    async def work(s: Services) -> card_import.ImportReport:
        return await card_import.import_cards(s, operator(account_id), data, file.name, dry_run=dry_run)

    report = run_with_services(ctx, work)
    _echo(import_result(report))
    if report.earlier is not None:
        when = f"{report.earlier.created_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{file.name} was imported on {when}: nothing changed", err=True)
    elif report.problems:
        for p in report.problems:
            click.echo(f"row {p.row}, {p.column}: {p.message}", err=True)
        raise click.ClickException(f"{len(report.problems)} problem(s): nothing was imported")


@click.command("replace")
@click.argument("card_number")
@click.option("--account-id", type=int, required=True, help="the card's account")
@click.option("--reason", type=click.Choice(card_replacement.REASONS), required=True)
@click.option("--stock-number", default=None, help="an unsold stock card to replace it with (default: a new number)")
@click.pass_context
def cards_replace(ctx: click.Context, card_number: str, account_id: int, reason: str, stock_number: str | None) -> None:
    """Move a card's whole balance to a new card and block it as replaced."""

    async def work(s: Services) -> card_replacement.Replacement:
        principal = operator(account_id)
        card_id = await card_admin.find_card(s, principal, card_number)
        return await card_replacement.replace_card(s, principal, card_id, reason, stock_number=stock_number)

    done = run_with_services(ctx, work)
    _echo(
        {
            "old_card_id": done.old_card_id,
            "new_card_id": done.new_card_id,
            "new_card_reference": done.new_card_reference,
            "transaction_id": done.transaction_id,
            "value": done.value,
            "tender": done.tender,
            "discount": done.discount,
        }
    )


@click.command("pin")
@click.option("--account-id", type=int, required=True, help="the product's account")
@click.option("--product-id", type=int, required=True)
@click.option("--digits", type=click.IntRange(4, 8), default=None, help="a PIN of this many digits on each sale")
@click.option("--none", "no_pin", is_flag=True, help="no PIN on sales of this product")
@click.pass_context
def product_pin(ctx: click.Context, account_id: int, product_id: int, digits: int | None, no_pin: bool) -> None:
    """Ask for a PIN (4 to 8 digits) generated on every sale of a product, or for none."""
    if (digits is None) == (not no_pin):
        raise click.UsageError("give either --digits N or --none")
    run_with_services(ctx, lambda s: card_pins.set_product_pin_digits(s, operator(account_id), product_id, digits))
    _echo({"product_id": product_id, "pin_digits": digits})


def register(cards: click.Group, product: click.Group) -> None:
    cards.add_command(cards_import)
    cards.add_command(cards_replace)
    product.add_command(product_pin)
