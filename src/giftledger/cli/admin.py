"""Operator commands for setting accounts up from a shell. Each prints one JSON object."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from giftledger.cli.running import run_with_services
from giftledger.domain.permissions import TEAM_ROLES
from giftledger.services import queries, setup
from giftledger.services.context import Principal, Services, operator


def _echo(data: Any) -> None:
    click.echo(json.dumps(data))


def _op(account_id: int) -> Principal:
    return operator(account_id)


account_option = click.option("--account-id", type=int, required=True, help="the account to act on")


@click.group("account")
def account() -> None:
    """Accounts."""


@account.command("create")
@click.argument("name")
@click.pass_context
def account_create(ctx: click.Context, name: str) -> None:
    """Create an account (with its In-Store Gift product)."""

    async def work(s: Services) -> dict[str, Any]:
        account_id = await setup.create_account(s, name)
        products = await queries.list_products(s, _op(account_id), account_id)
        return {"account_id": account_id, "product_id": products[0].product.id}

    _echo(run_with_services(ctx, work))


@click.group("user")
def user() -> None:
    """Dashboard users."""


@user.command("add")
@account_option
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([r.value for r in TEAM_ROLES]), default="store_owner", show_default=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def user_add(ctx: click.Context, account_id: int, email: str, name: str, role: str, password_stdin: bool) -> None:
    """Add a team member (the password is read from standard input or prompted for)."""
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    )
    user_id = run_with_services(
        ctx, lambda s: setup.add_team_member(s, _op(account_id), email=email, name=name, role=role, password=password)
    )
    _echo({"user_id": user_id, "account_id": account_id, "email": email.lower(), "role": role})


@click.group("site")
def site() -> None:
    """Sites (units)."""


@site.command("add")
@account_option
@click.option("--name", required=True)
@click.option("--address", default="")
@click.option("--reference", default="")
@click.pass_context
def site_add(ctx: click.Context, account_id: int, name: str, address: str, reference: str) -> None:
    site_id = run_with_services(
        ctx, lambda s: setup.add_site(s, _op(account_id), setup.SiteInput(name, address, reference))
    )
    _echo({"site_id": site_id, "account_id": account_id})


@site.command("map")
@account_option
@click.option("--merchant-id", type=int, required=True)
@click.argument("mappings", nargs=-1, required=True, metavar="SITE_ID=EPOS_REFERENCE...")
@click.pass_context
def site_map(ctx: click.Context, account_id: int, merchant_id: int, mappings: tuple[str, ...]) -> None:
    """Set the EPOS references (store IDs) of the account's sites for one POS merchant, all together."""
    references: dict[int, str] = {}
    for pair in mappings:
        site_id, sep, reference = pair.partition("=")
        if not sep or not site_id.isdigit():
            raise click.BadParameter(f"{pair!r} is not SITE_ID=EPOS_REFERENCE")
        references[int(site_id)] = reference
    run_with_services(ctx, lambda s: setup.set_site_mapping(s, _op(account_id), merchant_id, references))
    _echo({"account_id": account_id, "merchant_id": merchant_id, "mapping": {str(k): v for k, v in references.items()}})


@click.group("api-user")
def api_user() -> None:
    """API users: one per POS integration."""


@api_user.command("create")
@account_option
@click.option("--merchant-id", type=int, required=True)
@click.pass_context
def api_user_create(ctx: click.Context, account_id: int, merchant_id: int) -> None:
    """Create an API user; its password is printed once and never again."""
    new = run_with_services(ctx, lambda s: setup.create_api_user(s, _op(account_id), merchant_id))
    _echo({"api_user_id": new.id, "username": new.username, "password": new.password, "merchant_id": merchant_id})


@api_user.command("delete")
@account_option
@click.argument("api_user_id", type=int)
@click.pass_context
def api_user_delete(ctx: click.Context, account_id: int, api_user_id: int) -> None:
    """Delete an API user: its tokens stop working at once."""
    run_with_services(ctx, lambda s: setup.delete_api_user(s, _op(account_id), api_user_id))
    _echo({"deleted": api_user_id})


@click.group("product")
def product() -> None:
    """Products and price modifiers."""


@product.command("add")
@account_option
@click.option("--name", required=True)
@click.pass_context
def product_add(ctx: click.Context, account_id: int, name: str) -> None:
    product_id = run_with_services(ctx, lambda s: setup.add_product(s, _op(account_id), name))
    _echo({"product_id": product_id})


@product.command("add-price")
@account_option
@click.option("--product-id", type=int, required=True)
@click.option("--price", type=int, required=True, help="pence")
@click.option("--description", default=None)
@click.pass_context
def product_add_price(
    ctx: click.Context, account_id: int, product_id: int, price: int, description: str | None
) -> None:
    """Add a price modifier (a preset value, in pence) to a product."""
    modifier_id = run_with_services(
        ctx, lambda s: setup.add_price_modifier(s, _op(account_id), product_id, price, description)
    )
    _echo({"price_modifier_id": modifier_id})


@click.group("cards")
def cards() -> None:
    """Card stock."""


@cards.command("stock")
@account_option
@click.option("--count", type=int, default=0, help="generate this many new 19-digit numbers")
@click.option("--number", "numbers", multiple=True, help="add this number (imported stock); repeatable")
@click.pass_context
def cards_stock(ctx: click.Context, account_id: int, count: int, numbers: tuple[str, ...]) -> None:
    """Add blank (unsold) card numbers for physical cards."""
    added = run_with_services(
        ctx, lambda s: setup.add_card_stock(s, _op(account_id), count=count, references=list(numbers))
    )
    _echo({"added": added})


@click.command("merchants")
@click.pass_context
def merchants(ctx: click.Context) -> None:
    """List the POS merchants and their ids."""
    found = run_with_services(ctx, lambda services: queries.list_merchants(services, operator(0)))
    _echo({str(k): v for k, v in found.items()})


def register(group: click.Group) -> None:
    for command in (account, user, site, api_user, product, cards, merchants):
        group.add_command(command)
