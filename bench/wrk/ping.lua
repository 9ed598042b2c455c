-- The bare Starlette JSON endpoint: the HTTP ceiling.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function request()
  return wrk.format("POST", "/ping", {["Content-Type"] = "application/json"}, '{"ping":1}')
end
