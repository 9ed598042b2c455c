-- The guide's balance check: Cards(card_reference:...) on a random card.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = "query($card_reference:String!,$page:Int!,$limit:Int!,$id:Int){Cards(card_reference:$card_reference,"
  .. "limit:$limit,page:$page,id:$id){data{card_reference,balance,initial_balance,created_at,updated_at}}}"

function request()
  local body = string.format('{"query":"%s","variables":{"card_reference":"%s","page":1,"limit":1}}',
    query, card_reference(math.random(cards)))
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end
