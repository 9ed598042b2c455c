-- createBalanceAdjustment(-1) on a random card with a fresh merchant_transaction_reference per request.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = "mutation($currency:String,$value:Int,$card_reference:String!,$unit_epos_reference:String!,"
  .. "$merchant_id:Int!,$merchant_transaction_reference:String){createBalanceAdjustment(currency:$currency,"
  .. "card_reference:$card_reference,value:$value,unit_epos_reference:$unit_epos_reference,"
  .. "merchant_id:$merchant_id,merchant_transaction_reference:$merchant_transaction_reference)"
  .. "{id value LineItem{Card{balance}}}}"

function request()
  counter = counter + 1
  local body = string.format(
    '{"query":"%s","variables":{"currency":"GBP","value":-1,"card_reference":"%s","unit_epos_reference":"%s",'
      .. '"merchant_id":%s,"merchant_transaction_reference":"w%d-%d-%d"}}',
    query, card_reference(math.random(cards)), epos, merchant, id, os.time(), counter)
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end
