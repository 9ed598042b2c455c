"""What every `giftledger` command shares: its settings (with a database) and running a piece of work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from giftledger.app import build_services, migrate_database, with_database
from giftledger.config import ConfigurationError, Settings, load_settings
from giftledger.domain.errors import DomainError, ValidationFailed
from giftledger.services.context import Services

T = TypeVar("T")


def settings_from(ctx: click.Context) -> Settings:
    """The settings, with a database: the embedded server, held until the command exits, when no URL is set."""
    try:
        return with_database(load_settings(database_url=ctx.obj.get("database_url")))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def run_with_services(ctx: click.Context, work: Callable[[Services], Awaitable[T]]) -> T:
    """Migrate if needed, run one piece of work against the services, close the database (and the replica's)."""
    settings = settings_from(ctx)

    async def _main() -> T:
        services = build_services(settings)
        try:
            await migrate_database(services)
            return await work(services)
        finally:
            await services.dispose()

    try:
        return asyncio.run(_main())
    except ValidationFailed as exc:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
        raise click.ClickException(details) from exc
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
