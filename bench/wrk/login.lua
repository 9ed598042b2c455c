-- loginUser with the bench API user's credentials.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local query = "query($email:String,$username:String,$password:String!){loginUser(email:$email,"
  .. "username:$username,password:$password){id}}"

function request()
  local body = string.format('{"query":"%s","variables":{"username":"%s","password":"%s"}}', query,
    os.getenv("BENCH_USERNAME"), os.getenv("BENCH_PASSWORD"))
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, body)
end
