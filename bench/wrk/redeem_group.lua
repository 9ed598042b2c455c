-- createBalanceAdjustment(-1) as redeem.lua, each request from one of a group's API users at its own site, chosen
-- at random: BENCH_TOKENS and BENCH_EPOS_LIST (comma-separated, in step) name them.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = redeem_query

local function split(text)
  local found = {}
  for part in string.gmatch(text or "", "[^,]+") do table.insert(found, part) end
  return found
end

local tokens = split(os.getenv("BENCH_TOKENS"))
local sites = split(os.getenv("BENCH_EPOS_LIST"))

function request()
  counter = counter + 1
  local k = math.random(#tokens)
  local body = string.format(
    '{"query":"%s","variables":{"currency":"GBP","value":-1,"card_reference":"%s","unit_epos_reference":"%s",'
      .. '"merchant_id":%s,"merchant_transaction_reference":"g%d-%d-%d"}}',
    query, card_reference(math.random(cards)), sites[k], merchant, id, os.time(), counter)
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[k]}, body)
end
