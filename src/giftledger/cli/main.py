"""The `giftledger` command: serve, migrate, demo, and admin commands over the same services."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from giftledger.app import build_services, migrate_database
from giftledger.cli.running import run_with_services, settings_from


@click.group()
@click.option(
    "--database-url",
    envvar="GIFTLEDGER_DATABASE_URL",
    default=None,
    help="postgresql://user@host:port/db (default: the embedded server under ./var/postgres)",
)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """giftledger: gift cards with a Toggle-compatible EPOS API."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply database migrations."""
    settings = settings_from(ctx)

    async def _main() -> str | None:
        services = build_services(settings)
        try:
            return await migrate_database(services)
        finally:
            await services.db.dispose()

    click.echo(f"database at revision {asyncio.run(_main())}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="processes (PostgreSQL only)")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Migrate if needed, then serve the API (and the dashboard). Its log: JSON lines on stderr (logs.py)."""
    import logging

    from giftledger import logs

    logs.configure()  # here too, for the lines written before uvicorn starts (it applies the same in each worker)
    settings = settings_from(ctx)

    async def _migrate() -> None:
        services = build_services(settings)
        try:
            await migrate_database(services)
        finally:
            await services.db.dispose()

    asyncio.run(_migrate())
    import os

    from giftledger.cli.request_bounds import RequestBounds
    from giftledger.cli.serving import serve as serve_http

    assert settings.database_url is not None
    os.environ["GIFTLEDGER_DATABASE_URL"] = settings.database_url
    logging.getLogger("giftledger").info(
        "serving", extra={"url": f"http://{host}:{port}/", "graphql": f"http://{host}:{port}/graphql"}
    )
    bounds = RequestBounds(settings.max_head_bytes, settings.max_headers, settings.read_timeout_seconds)
    serve_http(host, port, workers, bounds, settings.data_dir)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--print", "as_text", is_flag=True, help="print the URLs and credentials for people")
@click.option("--account-name", default="Demo Restaurants", show_default=True)
@click.pass_context
def demo(ctx: click.Context, as_json: bool, as_text: bool, account_name: str) -> None:
    """Create (if missing) the demo account and print its ids and fresh credentials."""
    from giftledger.services.demo import load_demo

    data: dict[str, Any] = run_with_services(ctx, lambda s: load_demo(s, account_name))
    if as_json or not as_text:
        click.echo(json.dumps(data))
        return
    click.echo(
        "\n".join(
            [
                "",
                f"Demo account {data['account_name']!r} (account ID {data['account_id']})",
                "  Dashboard:    http://127.0.0.1:8000/",
                "  GraphQL API:  http://127.0.0.1:8000/graphql",
                "  Mail:         http://127.0.0.1:8000/dev/mail (development: the emails written to files, not sent)",
                f"  Store Owner:  {data['owner_email']} / {data['owner_password']}",
                f"  PointOne API user (merchant {data['merchant_id']}):",
                f"                {data['api_username']} / {data['api_password']}",
                f"  In-Store Gift product ID: {data['product_id']}",
                f"  EPOS references: {', '.join(data['unit_epos_references'])}",
                f"  Unsold card numbers: {', '.join(data['card_references'][:3])} ...",
                "",
            ]
        )
    )


def main() -> None:
    from giftledger.cli import admin, card_lifecycle, expiry, exports, ledger, till, webhooks, work

    admin.register(cli)
    card_lifecycle.register(admin.cards, admin.product)
    expiry.register(cli, admin.product)
    ledger.register(cli)
    exports.register(cli)
    webhooks.register(cli)
    till.register(cli)
    work.register(cli)
    try:
        cli(obj={})
    except KeyboardInterrupt:
        sys.exit(130)
