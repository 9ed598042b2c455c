"""The dashboard's card import (upload, check, import, the same file again), its card search finding a card by
its alias, and replacing a card from its page: each over HTTP in-process, each refusal changing nothing."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from giftledger.auth.pins import PinHasher
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import Forbidden, ValidationFailed
from giftledger.domain.permissions import Role
from giftledger.services import card_admin, card_import, card_pins
from giftledger.services.context import Services
from giftledger.storage.card_pins import CardPins
from giftledger.storage.outbox import outbox_messages
from tests.api import documents
from tests.dashboard.browser import unchanged
from tests.dashboard.helpers import PASSWORD, person, sell, till
from tests.dashboard.web import Web, text_of
from tests.support import Demo

GOOD = b"Card Number,PIN,Balance,Discount,Expiry Date,Notes\nPAGE-00001,4321,12.50,2.50,2030-01-31,first\n"
BAD = b"card_number,balance\nPAGE00002,lots\n,5\n"


async def signed_in(app: Starlette, services: Services, demo: Demo, role: Role = Role.STORE_OWNER) -> Web:
    web = Web(app)
    principal = await person(services, demo, role)
    response = await web.log_in(principal.name, PASSWORD)
    assert response.status_code == 303, response.text
    return web


async def upload(web: Web, data: bytes, action: str, name: str = "cards.csv") -> tuple[int, str]:
    await web.get("/cards/import")
    assert web.csrf is not None
    response = await web.http.post(
        "/cards/import",
        data={"csrf_token": web.csrf, "action": action},
        files={"file": (name, data, "text/csv")},
    )
    return response.status_code, text_of(response.text)


def database_url_of(services: Services) -> str:
    return services.settings.database_url or ""


async def test_upload_checks_imports_once_and_the_alias_finds_the_card(
    app: Starlette, services: Services, demo: Demo
) -> None:
    web = await signed_in(app, services, demo)
    with unchanged(database_url_of(services), demo.account_id):
        status, page = await upload(web, BAD, "import")
        assert status == 400
        assert "2 problems: nothing was imported" in page
        assert "2 balance An amount in pounds, such as 25 or 25.50." in page
        assert "3 card_number This field is required." in page
        status, page = await upload(web, GOOD, "check")
        assert status == 200
        assert "No problems: 1 card holding £12.50 (1 would keep their old number as an alias)" in page
    status, page = await upload(web, GOOD, "import")
    assert status == 200
    assert "Imported 1 card holding £12.50 (1 kept their old number as an alias" in page
    with unchanged(database_url_of(services), demo.account_id):
        status, page = await upload(web, GOOD, "import", name="again.csv")
        assert status == 200
        assert "This file was already imported on" in page and "(1 cards): nothing changed." in page

    found = await web.post("/cards", {"card_reference": "page-0000 1".upper()})
    assert found.status_code == 303
    card_id = int(found.headers["location"].rsplit("/", 1)[1])
    card = text_of((await web.get(f"/cards/{card_id}")).text)
    assert "Alias PAGE00001" in card and "£12.50" in card

    staff = await signed_in(app, services, demo, Role.FOH_STAFF)
    with unchanged(database_url_of(services), demo.account_id):
        assert (await staff.get("/cards/import")).status_code == 403
        status, _ = await upload(staff, GOOD.replace(b"PAGE-00001", b"PAGE-00009"), "import")
        assert status == 403


async def test_replace_a_card_from_its_page(app: Starlette, services: Services, demo: Demo) -> None:
    pos = await till(services, demo)
    owner = await person(services, demo, Role.STORE_OWNER)
    card = demo.card_references[0]
    await sell(services, pos, demo, card, 4000, discount=1000)
    card_id = await card_admin.find_card(services, owner, card)
    web = await signed_in(app, services, demo)
    page = text_of((await web.get(f"/cards/{card_id}")).text)
    assert "Replace card" in page

    with unchanged(database_url_of(services), demo.account_id):
        refused = await web.post(f"/cards/{card_id}/replace", {"reason": "stolen"})
        assert refused.status_code == 400
        assert "Nothing changed" in text_of(refused.text)
        staff = await signed_in(app, services, demo, Role.FOH_STAFF)
        assert (await staff.post(f"/cards/{card_id}/replace", {"reason": "lost"})).status_code == 403

    done = await web.post(f"/cards/{card_id}/replace", {"reason": "damaged", "stock_number": ""})
    assert done.status_code == 303
    new_id = int(re.match(r"/cards/(\d+)", done.headers["location"]).group(1))  # type: ignore[union-attr]
    new_page = text_of((await web.get(done.headers["location"])).text)
    assert "Card replaced: this is the new card" in new_page and f"A replacement for card {card} ." in new_page
    assert "£40.00" in new_page
    assert "Inbound Balance Transfer Replacement (damaged) £40.00 £30.00 £10.00" in new_page
    assert "Reverse" not in new_page  # a transfer is never reversed (half of it would make or lose value)
    old_page = text_of((await web.get(f"/cards/{card_id}")).text)
    new_number = (await card_admin.card_history(services, owner, new_id)).card.card_reference
    assert f"Replaced by card {new_number} : its balance moved there." in old_page
    assert "Replace card" not in old_page


ALIAS_BALANCE = """query($card_reference:String!){
  Cards(card_reference:$card_reference, limit:10, page:1){
    data{ card_reference card_alias_card_reference balance } total
  }
}"""


async def graphql(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_alias_finds_the_card_in_the_api_and_replies_carry_it(
    app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    data = b"card_number,balance,discount\nTILL-ALIAS-7,20,5\n"
    imported = await card_import.import_cards(services, owner, data, "till.csv", dry_run=False)
    assert imported.imported
    card_id = await card_admin.find_card(services, owner, "TILLALIAS7")
    history = await card_admin.card_history(services, owner, card_id)
    number, opening = history.card.card_reference, history.line_items[0]
    transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        login = await http.post(
            "/graphql",
            json={
                "query": documents.LOGIN,
                "variables": {"username": demo.api_username, "password": demo.api_password},
            },
        )
        token = login.headers["X-Authorization"].removeprefix("Bearer ")
        shown = {"card_reference": number, "card_alias_card_reference": "TILLALIAS7"}
        found = await graphql(http, token, ALIAS_BALANCE, {"card_reference": "TILLALIAS7"})
        assert found["data"]["Cards"] == {"data": [{**shown, "balance": 2000}], "total": 1}
        by_number = await graphql(http, token, ALIAS_BALANCE, {"card_reference": number})
        assert by_number["data"]["Cards"] == {"data": [{**shown, "balance": 2000}], "total": 1}
        redeemed = await graphql(
            http,
            token,
            documents.ADJUSTMENT,
            {
                "currency": "GBP",
                "card_reference": "TILLALIAS7",
                "value": -800,
                "unit_epos_reference": demo.epos,
                "merchant_id": POINTONE,
                "merchant_transaction_reference": "alias-redeem-1",
            },
        )
        card = redeemed["data"]["createBalanceAdjustment"]["LineItem"]["Card"]
        assert {k: card[k] for k in ("card_reference", "card_alias_card_reference", "balance", "initial_balance")} == {
            **shown,
            "balance": 1200,
            "initial_balance": 2000,
        }
        reversed_ = await graphql(
            http,
            token,
            documents.REVERSAL,
            {
                "merchant_id": POINTONE,
                "unit_epos_reference": demo.epos,
                "merchant_transaction_reference": "alias-redeem-1-REVERSAL",
                "ReversalItems": [{"line_item_id": redeemed["data"]["createBalanceAdjustment"]["id"]}],
            },
        )
        [line] = reversed_["data"]["createReversal"]["LineItems"]
        assert (line["value"], line["Card"]["card_alias_card_reference"], line["Card"]["balance"]) == (
            800,
            "TILLALIAS7",
            2000,
        )
        # the opening balance (an inbound transfer) is never reversed: refused, nothing changed
        with unchanged(database_url_of(services), demo.account_id):
            refused = await graphql(
                http,
                token,
                documents.REVERSAL,
                {
                    "merchant_id": POINTONE,
                    "unit_epos_reference": demo.epos,
                    "merchant_transaction_reference": "alias-opening-REVERSAL",
                    "ReversalItems": [{"line_item_id": opening.id}],
                },
            )
            assert refused["data"] == {"createReversal": None}
            assert refused["errors"][0]["validation"] == {
                "ReversalItems.0.line_item_id": ["This field is not of an expected value"]
            }


SELL_WITH_PIN = """mutation($account_id:Int!, $merchant_id:Int!, $order_items:[OrderItemInput]!, $total:Int!,
                   $unit_epos_reference:String!, $merchant_transaction_reference:String){
  createOrder(account_id:$account_id, merchant_id:$merchant_id, order_items:$order_items, currency:"GBP",
              group_fulfilment:false, auto_fulfil_group_fulfilment:false, total:$total, sales_channel_id:3,
              unit_epos_reference:$unit_epos_reference, merchant_transaction_reference:$merchant_transaction_reference){
    LineItems{ Card{ id card_reference pin } }
  }
}"""
PIN_OF = """query($card_reference:String!){ Cards(card_reference:$card_reference){ data{ card_reference pin } } }"""


async def test_a_pin_is_generated_on_sale_when_the_product_asks_and_shown_once(
    app: Starlette, services: Services, demo: Demo
) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    manager = await person(services, demo, Role.FOH_MANAGER)
    with unchanged(database_url_of(services), demo.account_id):
        with pytest.raises(ValidationFailed) as too_short:
            await card_pins.set_product_pin_digits(services, owner, demo.product_id, 3)
        assert too_short.value.fields == {"pin_digits": ["This field is not of an expected value"]}
        with pytest.raises(Forbidden):
            await card_pins.set_product_pin_digits(services, manager, demo.product_id, 6)
    await card_pins.set_product_pin_digits(services, owner, demo.product_id, 6)
    item = {
        "product_id": demo.product_id,
        "custom_price_modifier_value": 1500,
        "fulfilment_method_id": 1,
        "fulfilment_email": "holder@example.com",
        "generate_card_reference": True,
    }
    transport = httpx.ASGITransport(app=app, client=("10.9.9.8", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        login = await http.post(
            "/graphql",
            json={
                "query": documents.LOGIN,
                "variables": {"username": demo.api_username, "password": demo.api_password},
            },
        )
        token = login.headers["X-Authorization"].removeprefix("Bearer ")
        sold = await graphql(
            http,
            token,
            SELL_WITH_PIN,
            {
                "account_id": demo.account_id,
                "merchant_id": POINTONE,
                "order_items": [item],
                "total": 1500,
                "unit_epos_reference": demo.epos,
                "merchant_transaction_reference": "pin-sale-1",
            },
        )
        [line] = sold["data"]["createOrder"]["LineItems"]
        card, pin = line["Card"], line["Card"]["pin"]
        assert pin is not None and len(pin) == 6 and pin.isdigit()
        again = await graphql(http, token, PIN_OF, {"card_reference": card["card_reference"]})
        assert again["data"]["Cards"]["data"] == [{"card_reference": card["card_reference"], "pin": None}]
    async with services.db.transaction() as conn:
        stored = await CardPins(conn, demo.account_id).stored_hash(card["id"])
        content = (
            await conn.execute(select(outbox_messages.c.content).where(outbox_messages.c.card_id == card["id"]))
        ).scalar_one()
    assert stored is not None and pin not in stored
    keyed = PinHasher(services.settings.secret_key, services.settings.previous_secret_keys)
    assert keyed.verify(stored, demo.account_id, card["card_reference"], pin)
    assert not keyed.verify(stored, demo.account_id, card["card_reference"], str((int(pin) + 1) % 1_000_000).zfill(6))
    assert f"PIN: {pin}".encode() in content
    await card_pins.set_product_pin_digits(services, owner, demo.product_id, None)
    plain = await sell(services, await till(services, demo), demo, demo.card_references[0], 1000)
    assert plain.line_items[0].card.pin is None


async def test_the_product_page_sets_the_pin_on_sale(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await person(services, demo, Role.STORE_OWNER)
    web = await signed_in(app, services, demo)
    assert "Cards sold get no PIN." in text_of((await web.get("/shop/in-store-gift")).text)
    saved = await web.post("/shop/in-store-gift/pin", {"pin_digits": "6"})
    assert (saved.status_code, saved.headers["location"]) == (303, "/shop/in-store-gift?done=pin-saved#pin")
    page = text_of((await web.get(saved.headers["location"])).text)
    assert "PIN setting saved" in page and "Each card sold gets a PIN of 6 digits" in page
    for refused, who in (("3", web), ("six", web), ("4", await signed_in(app, services, demo, Role.FOH_MANAGER))):
        response = await who.post("/shop/in-store-gift/pin", {"pin_digits": refused})
        assert response.status_code == (403 if who is not web else 400)
        assert await card_pins.product_pin_digits(services, owner, demo.product_id) == 6
    assert (await web.post("/shop/in-store-gift/pin", {"pin_digits": ""})).status_code == 303
    assert await card_pins.product_pin_digits(services, owner, demo.product_id) is None
