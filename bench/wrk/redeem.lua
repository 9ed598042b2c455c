-- createBalanceAdjustment(-1) on a random card with a fresh merchant_transaction_reference per request.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = redeem_query

function request()
  counter = counter + 1
  local body = string.format(
    '{"query":"%s","variables":{"currency":"GBP","value":-1,"card_reference":"%s","unit_epos_reference":"%s",'
      .. '"merchant_id":%s,"merchant_transaction_reference":"w%d-%d-%d"}}',
    query, card_reference(math.random(cards)), epos, merchant, id, os.time(), counter)
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end
