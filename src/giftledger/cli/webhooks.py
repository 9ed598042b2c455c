"""`giftledger webhooks add|list|disable|enable|rotate|test`: an account's webhook endpoints from a shell (as
Settings > Webhooks in the dashboard; services/webhooks.py). Each prints one JSON object; a refusal prints its
reason on standard error, exits 1 and changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from giftledger.cli.running import run_with_services
from giftledger.domain.webhooks import EVENTS
from giftledger.services import webhooks
from giftledger.services.context import Services, operator

account_option = click.option("--account-id", type=int, required=True, help="the account to act on")
endpoint_option = click.option("--endpoint-id", type=int, required=True, help="the endpoint (from `add` or `list`)")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _echo(data: Any) -> None:
    click.echo(json.dumps(data))


@click.group("webhooks")
def group() -> None:
    """Webhook endpoints: where giftledger posts Toggle's events (docs/webhooks.md)."""


@group.command("add")
@account_option
@click.option("--url", required=True, help="https://... (development: http:// to this machine too)")
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="NAME",
    help=f"an event to send (repeat for more; none: all). One of: {', '.join(EVENTS)}",
)
@click.pass_context
def add(ctx: click.Context, account_id: int, url: str, events: tuple[str, ...]) -> None:
    """Add an endpoint; prints its id and its secret (shown this once)."""
    created = run_with_services(ctx, lambda s: webhooks.add_endpoint(s, operator(account_id), url, list(events)))
    _echo({"id": created.id, "secret": created.secret, "url": created.url, "events": created.events})


@group.command("list")
@account_option
@click.pass_context
def listed(ctx: click.Context, account_id: int) -> None:
    """The account's endpoints (never their secrets)."""
    rows = run_with_services(ctx, lambda s: webhooks.endpoints(s, operator(account_id)))
    _echo(
        {
            "endpoints": [
                {
                    "id": row.id,
                    "url": row.url,
                    "events": row.events,
                    "enabled": row.enabled,
                    "disabled_reason": row.disabled_reason,
                    "failing_since": _time(row.failing_since),
                    "created_at": _time(row.created_at),
                }
                for row in rows
            ]
        }
    )


def _switch(ctx: click.Context, account_id: int, endpoint_id: int, enabled: bool) -> None:
    async def work(s: Services) -> Any:
        return await webhooks.set_enabled(s, operator(account_id), endpoint_id, enabled)

    row = run_with_services(ctx, work)
    _echo({"id": row.id, "enabled": row.enabled})


@group.command("disable")
@account_option
@endpoint_option
@click.pass_context
def disable(ctx: click.Context, account_id: int, endpoint_id: int) -> None:
    """Stop sending to an endpoint (its queued deliveries stop as failed)."""
    _switch(ctx, account_id, endpoint_id, False)


@group.command("enable")
@account_option
@endpoint_option
@click.pass_context
def enable(ctx: click.Context, account_id: int, endpoint_id: int) -> None:
    """Send to a disabled endpoint again."""
    _switch(ctx, account_id, endpoint_id, True)


@group.command("rotate")
@account_option
@endpoint_option
@click.pass_context
def rotate(ctx: click.Context, account_id: int, endpoint_id: int) -> None:
    """A new secret (shown this once); the old one is signed with too for 24 hours."""
    rotated = run_with_services(ctx, lambda s: webhooks.rotate_secret(s, operator(account_id), endpoint_id))
    _echo({"id": rotated.id, "secret": rotated.secret, "previous_valid_until": _time(rotated.previous_valid_until)})


@group.command("test")
@account_option
@endpoint_option
@click.pass_context
def test(ctx: click.Context, account_id: int, endpoint_id: int) -> None:
    """Queue a webhook.test event to an endpoint (the server's sender posts it)."""
    event_id = run_with_services(ctx, lambda s: webhooks.send_test_event(s, operator(account_id), endpoint_id))
    _echo({"id": endpoint_id, "event_id": event_id})


def register(cli: click.Group) -> None:
    cli.add_command(group)
