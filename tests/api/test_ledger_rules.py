"""The ledger rules of createOrder / createBalanceAdjustment / createReversal beyond the checklist."""

from __future__ import annotations

from tests.api import documents
from tests.api.till import adjust, line_item_ids, only_error, order_variables, ref, reverse, sell, sold, validation
from tests.support import Api, Demo, LiveServer, ledger_sums, new_demo, unchanged

SPLIT_ADJUSTMENT = documents.ADJUSTMENT.replace(
    "id,\n                                value,", "id, value, ValueSplit { tender discount },", 1
)
SPLIT_CARD = "query($c:String!){Cards(card_reference:$c,limit:1,page:1){data{balance ValueSplit{tender discount}}}}"


def test_selling_a_sold_card_is_refused(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 1000)
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, card, 2500)
    assert validation(body, "createOrder") == {"order_items.0.card_reference": ["This card has already been sold."]}


def test_total_must_match_the_items(server: LiveServer, demo: Demo, api: Api) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, total=2000)
    assert validation(body, "createOrder") == {
        "total": ["The total must equal the sum of the order items less their discounts."]
    }


def test_an_order_is_all_or_nothing(server: LiveServer, demo: Demo, api: Api) -> None:
    taken = sold(api, demo, 1000)
    variables = order_variables(demo, demo.card_references[0], 1000, total=2000)
    variables["order_items"].append({**variables["order_items"][0], "card_reference": taken})
    with unchanged(server.database_url, demo.account_id):
        body = api.call(documents.CREATE_ORDER, variables)
    assert validation(body, "createOrder") == {"order_items.1.card_reference": ["This card has already been sold."]}


def test_a_new_well_formed_number_can_be_sold(api: Api, demo: Demo) -> None:
    body = sell(api, demo, "IMPORTED12345", 1500)
    assert body["data"]["createOrder"]["LineItems"][0]["Card"]["card_reference"] == "IMPORTED12345"


def test_mixed_card_redeems_tender_and_discount_in_proportion(api: Api, demo: Demo) -> None:
    # buy £10, get £5 free: a £15 card of £10 tender and £5 discount
    item = {"discounts": [{"discount_type_id": 3, "value": 500}]}
    card = demo.card_references[0]
    body = sell(api, demo, card, 1500, total=1000, item=item)
    assert body["data"]["createOrder"]["LineItems"][0]["Card"]["balance"] == 1500
    first = api.call(
        SPLIT_ADJUSTMENT,
        {
            "currency": "GBP",
            "card_reference": card,
            "value": -1000,
            "unit_epos_reference": demo.epos,
            "merchant_id": demo.merchant_id,
            "merchant_transaction_reference": ref(),
        },
    )
    assert first["data"]["createBalanceAdjustment"]["ValueSplit"] == {"tender": -667, "discount": -333}
    remaining = api.call(SPLIT_CARD, {"c": card})["data"]["Cards"]["data"][0]
    assert remaining == {"balance": 500, "ValueSplit": {"tender": 333, "discount": 167}}
    last = api.call(
        SPLIT_ADJUSTMENT,
        {
            "currency": "GBP",
            "card_reference": card,
            "value": -500,
            "unit_epos_reference": demo.epos,
            "merchant_id": demo.merchant_id,
            "merchant_transaction_reference": ref(),
        },
    )
    assert last["data"]["createBalanceAdjustment"]["ValueSplit"] == {"tender": -333, "discount": -167}
    assert api.call(SPLIT_CARD, {"c": card})["data"]["Cards"]["data"][0] == {
        "balance": 0,
        "ValueSplit": {"tender": 0, "discount": 0},
    }


def test_zero_value_adjustment_is_refused(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, 0)
    assert validation(body, "createBalanceAdjustment") == {"value": ["This field is not of an expected value"]}


def test_unknown_card_adjustment(server: LiveServer, demo: Demo, api: Api) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, "6301190000554511994", -100)
        stock = adjust(api, demo, demo.card_references[0], 500)
    for refused in (body, stock):
        error = only_error(refused, "createBalanceAdjustment")
        assert error["message"] == (
            "No card has been found for this account for the card ref supplied. Transaction not applied."
        )


def test_a_line_item_is_reversed_once(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref()
    adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    [item] = line_item_ids(api, reference)
    reverse(api, demo, [item])
    with unchanged(server.database_url, demo.account_id):
        body = reverse(api, demo, [item])
    error = only_error(body, "createReversal")
    assert error["message"] == f"Line item {item} has already been reversed."
    assert error["extensions"]["code"] == "ALREADY_REVERSED"


def test_reversing_a_credit_never_goes_below_zero(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 1000)
    reference = ref()
    adjust(api, demo, card, 500, merchant_transaction_reference=reference)
    adjust(api, demo, card, -1200)
    with unchanged(server.database_url, demo.account_id):
        body = reverse(api, demo, line_item_ids(api, reference))
    assert only_error(body, "createReversal")["message"].startswith("Applying this transaction would have")


def test_a_reversal_needs_its_own_new_reference(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 1000)
    reference = ref()
    adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    items = line_item_ids(api, reference)
    with unchanged(server.database_url, demo.account_id):
        missing = reverse(api, demo, items, merchant_transaction_reference=None)
        reused = reverse(api, demo, items, merchant_transaction_reference=reference)
    assert validation(missing, "createReversal") == {"merchant_transaction_reference": ["This field is required"]}
    assert only_error(reused, "createReversal")["message"] == "Duplicate reference supplied"


def test_the_same_reference_is_free_for_another_merchant_only(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 1000)
    reference = ref()
    adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    other = new_demo(server.database_url)
    other_api = Api(server)
    other_api.login(other.api_username, other.api_password)
    other_card = sold(other_api, other, 1000)
    body = adjust(other_api, other, other_card, -100, merchant_transaction_reference=reference)
    assert body["data"]["createBalanceAdjustment"]["value"] == -100


def test_balances_equal_the_sum_of_line_items(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    adjust(api, demo, card, -700)
    adjust(api, demo, card, 300)
    sums = ledger_sums(server.database_url, demo.account_id)
    assert sums[card] == (2100, 2100)
    assert all(stored == summed for stored, summed in sums.values())


def test_another_accounts_card_behaves_like_a_missing_one(server: LiveServer, demo: Demo, api: Api) -> None:
    other = new_demo(server.database_url)
    other_api = Api(server)
    other_api.login(other.api_username, other.api_password)
    theirs = sold(other_api, other, 1000)
    with unchanged(server.database_url, other.account_id):
        redeem = adjust(api, demo, theirs, -100)
        lookup = api.call(documents.CARD_BALANCE, {"card_reference": theirs, "page": 1, "limit": 1})
        products = api.call(documents.PRODUCTS, {"account_id": other.account_id})
    assert only_error(redeem, "createBalanceAdjustment")["extensions"]["code"] == "CARD_NOT_FOUND"
    assert lookup == {"data": {"Cards": {"data": [], "total": 0, "per_page": 1}}}
    assert validation(products, "Products") == {"account_id": ["This field is not of an expected value"]}
