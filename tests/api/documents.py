"""The integration guide's operations, as a till sends them (the guide's typos corrected)."""

LOGIN = """query($email:String,$username:String, $password:String!){
 loginUser(email:$email,username:$username,password:$password) {
    id
  }
}"""

PRODUCTS = "query($account_id:Int!) {\n\tProducts(account_id:$account_id) {\n\t\tid\n\t\tname\n\t}\n}"

PRICE_MODIFIERS = (
    "query($account_id:Int!) {Products(account_id:$account_id) {id name    PriceModifiers {      id      price"
    "      description    }}}"
)

CREATE_ORDER = """mutation (
                        $account_id:Int!,
                        $merchant_id:Int!,
                        $order_items:[OrderItemInput]!,
                        $currency:String!,
                        $group_fulfilment:Boolean!,
                        $total:Int!,
                        $sales_channel_id:Int!,
                        $unit_epos_reference:String!,
                        $merchant_transaction_reference:String
                      ){
                        createOrder(
                            account_id                    : $account_id,
                            merchant_id                   : $merchant_id,
                            order_items                   : $order_items,
                            currency                      : $currency,
                            group_fulfilment              : $group_fulfilment,
                            total                         : $total,
                            sales_channel_id              : $sales_channel_id,
                            unit_epos_reference           : $unit_epos_reference,
                            merchant_transaction_reference : $merchant_transaction_reference
                        ){
                            id,
                            LineItems{
                                id,
                                value,
                                Transaction{
                                    merchant_transaction_reference
                                },
                                Card{
                                        id,
                                        card_reference,
                                        card_alias_card_reference,
                                        balance,
                                        initial_balance,
                                        created_at,
                                        updated_at
                                    }
                            }
                        }
                  }"""

ADJUSTMENT = """mutation($currency:String,$value:Int,$card_reference:String!, $unit_epos_reference:String!,
                         $merchant_id:Int!, $merchant_transaction_reference:String){
                            createBalanceAdjustment(
                                currency: $currency,
                                card_reference: $card_reference,
                                value: $value,
                                unit_epos_reference: $unit_epos_reference,
                                merchant_id: $merchant_id,
                                merchant_transaction_reference: $merchant_transaction_reference
                            )
                            {
                                id,
                                value,

                                LineItem{
                                    Transaction{
                                        merchant_transaction_reference
                                    },
                                    Card{
                                        id,
                                        card_reference,
                                        card_alias_card_reference,
                                        balance,
                                        initial_balance
                                        created_at,
                                        updated_at,
                                    }
                                }
                            }
                        }"""

REVERSAL = """mutation($merchant_id:Int!,$unit_epos_reference:String!,$merchant_transaction_reference:String,
                  $ReversalItems:[ReversalItemInput]!){
                            createReversal(
                                ReversalItems: $ReversalItems,
                                merchant_transaction_reference: $merchant_transaction_reference,
                                unit_epos_reference: $unit_epos_reference,
                                merchant_id: $merchant_id
                            )
                            {
                                merchant_transaction_reference,
                                LineItems{
                                    value,
                                    Card{
                                        id,
                                        card_reference,
                                        card_alias_card_reference,
                                        balance,
                                        initial_balance,
                                        updated_at,
                                        created_at,
                                    }
                                }
                            }
                        }"""

LINE_ITEMS = """query($page:Int!, $limit:Int!, $merchant_transaction_reference:String!){
                    LineItems(page:$page, limit:$limit, merchant_transaction_reference:$merchant_transaction_reference){
                        data{
                            id
                        }
                    }
                }"""

CARD_BALANCE = """query($card_reference:String!, $page:Int!, $limit:Int!, $id:Int)

                    {

                        Cards(card_reference:$card_reference, limit:$limit, page:$page, id:$id)

                        {

                            data{

                                card_reference,

                                balance,

                                initial_balance,

                                created_at,

                                updated_at

                            }
                            total,
                            per_page

                        }

                }"""

CARD_CUSTOMERS = """query(
$limit:Int!,
$page:Int!,
$consents_limit:Int!,
$consents_page:Int!
){
Cards(limit:$limit, page:$page){
data{
id,
Email{
id,
first_name,
last_name,
email,
      Consents(limit:$consents_limit,page:$consents_page){
        data{
          id,
          consent_copy,
          consented_at
        }

      }

  },
}
total,
per_page
},
}"""

ORDER_CUSTOMERS = """query(
$limit:Int!,
$page:Int!,
$consents_limit:Int!,
$consents_page:Int!
){
Orders(limit:$limit, page:$page){
data{
id,
ReceiptEmail{
id,
first_name,
last_name,
email,
      Consents(limit:$consents_limit,page:$consents_page){
        data{
          id,
          consent_copy,
          consented_at
        }

      }

  },
}
total,
per_page
},
}"""

SCHEMA_TYPES = """query {
  __schema {
    types {
      name
      kind
      description
      fields {
        name
      }
    }
  }
}"""

CARD_TYPE = """query {
  __type(name: "Card") {
    name
    kind
    description
    fields {
      name
    }
  }
}"""
