-- The guide's LineItems lookup by merchant_transaction_reference (references loaded with the cards).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = "query($page:Int!,$limit:Int!,$merchant_transaction_reference:String!){LineItems(page:$page,"
  .. "limit:$limit,merchant_transaction_reference:$merchant_transaction_reference){data{id}}}"

function request()
  local body = string.format('{"query":"%s","variables":{"merchant_transaction_reference":"L%d","page":1,"limit":1}}',
    query, math.random(cards))
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end
