"""`giftledger expire` (the expiry run, by hand) and `giftledger product validity` (a product's validity and
expiry rules). Each prints one JSON object."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Any

import click

from giftledger.cli.running import run_with_services
from giftledger.domain.validity import ACTIVATION_DELAYS, ExpiryKind, ValidityRules
from giftledger.services import card_lifecycle
from giftledger.services.context import Services, operator
from giftledger.services.expiry import BATCH, run_expiry

_DELAY_DAYS = {seconds // 86_400: seconds for seconds in ACTIVATION_DELAYS}


def _rules(rules: ValidityRules) -> dict[str, Any]:
    shown = asdict(rules)
    shown["expiry_kind"] = rules.expiry_kind.value
    for key in ("valid_after", "expiry_date"):
        shown[key] = shown[key].isoformat() if shown[key] is not None else None
    shown["summary"] = rules.describe()
    return shown


@click.command("expire")
@click.option("--batch", type=click.IntRange(1, 100_000), default=BATCH, show_default=True, help="cards per statement")
@click.pass_context
def expire(ctx: click.Context, batch: int) -> None:
    """Run the expiry now: break every card whose expiry has come, queue the reminders that are due."""

    async def work(services: Services) -> dict[str, int]:
        done = await run_expiry(services, batch=batch)
        return {"expired": done.expired, "reminded": done.reminded}

    click.echo(json.dumps(run_with_services(ctx, work)))


@click.command("validity")
@click.option("--account-id", type=int, required=True, help="the account to act on")
@click.option("--product-id", type=int, required=True)
@click.option(
    "--active-after-days",
    type=click.Choice([str(d) for d in _DELAY_DAYS]),
    default=None,
    help="cards become active this many days after purchase (0: immediately)",
)
@click.option("--valid-after", type=click.DateTime(["%Y-%m-%d"]), default=None, help="not usable before this date")
@click.option("--expires", type=click.Choice([k.value for k in ExpiryKind]), default=None)
@click.option("--expiry-days", type=int, default=None, help="with --expires period: days after purchase")
@click.option("--expiry-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="with --expires date")
@click.option("--reminder-days", type=int, default=None, help="email the recipient this many days before expiry")
@click.pass_context
def validity(
    ctx: click.Context,
    account_id: int,
    product_id: int,
    active_after_days: str | None,
    valid_after: Any,
    expires: str | None,
    expiry_days: int | None,
    expiry_date: Any,
    reminder_days: int | None,
) -> None:
    """Show a product's validity and expiry rules, or set them (every rule not given is reset: never
    expires, active immediately)."""
    principal = operator(account_id)
    setting = any(
        v is not None for v in (active_after_days, valid_after, expires, expiry_days, expiry_date, reminder_days)
    )

    async def work(services: Services) -> dict[str, Any]:
        if not setting:
            return _rules(await card_lifecycle.product_rules(services, principal, product_id))
        typed = card_lifecycle.RulesInput(
            activation_delay_seconds=_DELAY_DAYS[int(active_after_days)] if active_after_days else 0,
            valid_after=_day(valid_after),
            expiry_kind=expires or ("date" if expiry_date else "period" if expiry_days else "never"),
            expiry_period_days=expiry_days,
            expiry_date=_day(expiry_date),
            reminder_days=reminder_days,
        )
        return _rules(await card_lifecycle.set_product_rules(services, principal, product_id, typed))

    click.echo(json.dumps(run_with_services(ctx, work)))


def _day(value: Any) -> date | None:
    return value.date() if value is not None else None


def register(group: click.Group, product: click.Group) -> None:
    group.add_command(expire)
    product.add_command(validity)
