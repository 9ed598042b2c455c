-- Shared by the giftledger wrk scripts: counts GraphQL errors in 200 replies per thread, and reports
-- them in done() so the benchmark can fail loudly.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  errors = 0
  counter = 0
  token = os.getenv("BENCH_TOKEN") or ""
  cards = tonumber(os.getenv("BENCH_CARDS") or "1000")
  epos = os.getenv("BENCH_EPOS") or "bench"
  merchant = os.getenv("BENCH_MERCHANT") or "60"
  math.randomseed(os.time() * 1000 + id)
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if errors <= 3 then io.stderr:write(body:sub(1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("errors") end
  io.write(string.format("GRAPHQL_ERRORS %d\n", total))
  for _, p in ipairs({50, 99}) do
    io.write(string.format("LATENCY_P%d_US %d\n", p, latency:percentile(p)))
  end
end

function card_reference(n)
  return string.format("B%012d", n)
end

-- createBalanceAdjustment as a till sends it (redeem.lua, redeem_group.lua)
redeem_query = "mutation($currency:String,$value:Int,$card_reference:String!,$unit_epos_reference:String!,"
  .. "$merchant_id:Int!,$merchant_transaction_reference:String){createBalanceAdjustment(currency:$currency,"
  .. "card_reference:$card_reference,value:$value,unit_epos_reference:$unit_epos_reference,"
  .. "merchant_id:$merchant_id,merchant_transaction_reference:$merchant_transaction_reference)"
  .. "{id value LineItem{Card{balance}}}}"
