"""The demo account `make run` and the tests start from."""

from __future__ import annotations

import re
from typing import Any

from giftledger.auth.passwords import generate_password
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services import setup
from giftledger.services.context import Services, operator
from giftledger.storage.people import Directory

DEMO_ACCOUNT = "Demo Restaurants"
STOCK_SIZE = 10
PRICES = ((0, "Blank card"), (1000, "£10"), (2500, "£25"), (5000, "£50"))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "account"


async def load_demo(services: Services, account_name: str = DEMO_ACCOUNT) -> dict[str, Any]:
    """Create the demo account if missing, refresh its passwords, and describe it."""
    async with services.db.transaction() as conn:
        account_id = await Directory(conn).account_named(account_name)
    created = account_id is None
    if account_id is None:
        account_id = await setup.create_account(services, account_name)
    op = operator(account_id)
    slug = _slug(account_name)
    owner_email = f"owner@{slug}.example"
    owner_password = generate_password(16)
    if created:
        await setup.add_team_member(
            services, op, email=owner_email, name="Demo Owner", role=Role.STORE_OWNER.value, password=owner_password
        )
        first = await setup.add_site(services, op, setup.SiteInput("Soho", "1 Dean Street, London", "SOHO"))
        second = await setup.add_site(services, op, setup.SiteInput("Leeds", "2 Briggate, Leeds", "LEEDS"))
        await setup.set_site_mapping(services, op, POINTONE, {first: "test", second: f"{slug}-leeds"})
    else:
        await setup.set_user_password(services, owner_email, owner_password)
    async with services.unit_of_work(op) as uow:
        product = await uow.catalogue.product_named(setup.IN_STORE_PRODUCT)
        assert product is not None
        modifiers = await uow.catalogue.price_modifiers([product.id])
        if not modifiers:
            for price, description in PRICES:
                await uow.catalogue.add_price_modifier(product.id, price, description)
            modifiers = await uow.catalogue.price_modifiers([product.id])
        stock = await uow.cards.stock_references()
        api_users = await uow.team.api_users(POINTONE)
        mapping = await uow.sites.mapping(POINTONE)
    if len(stock) < STOCK_SIZE:
        await setup.add_card_stock(services, op, count=STOCK_SIZE - len(stock))
    if api_users:
        api_username = api_users[0].username
        api_password = await setup.reset_api_user_password(services, op, api_users[0].id)
    else:
        new = await setup.create_api_user(services, op, POINTONE)
        api_username, api_password = new.username, new.password
    async with services.unit_of_work(op) as uow:
        stock = await uow.cards.stock_references()
    return {
        "account_id": account_id,
        "account_name": account_name,
        "merchant_id": POINTONE,
        "product_id": product.id,
        "price_modifier_ids": [m.id for m in modifiers],
        "api_username": api_username,
        "api_password": api_password,
        "owner_email": owner_email,
        "owner_password": owner_password,
        "unit_epos_references": [mapping[k] for k in sorted(mapping)],
        "card_references": stock,
    }
