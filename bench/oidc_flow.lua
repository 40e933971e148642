-- wrk script for the single-sign-on figures (bench/identity.py runs it).
-- Each wrk thread drives one connection through a state machine:
--   mode "flow":    authorize (signed-in browser) -> token -> userinfo, again and again
--   mode "refresh": one code flow for a first refresh token, then refresh after refresh
-- Arguments: mode, session cookie, client id, redirect URI (encoded), PKCE verifier, challenge.
-- Every completed flow or refresh is counted; any unexpected answer counts as a failure.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode, cookie, client_id, redirect, verifier, challenge = args[1], args[2], args[3], args[4], args[5], args[6]
  count, failures, state = 0, 0, "authorize"
  code, access, refresh = nil, nil, nil
  form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
  if state == "authorize" then
    local path = "/oidc/authorize?response_type=code&scope=openid%20profile&client_id=" .. client_id
      .. "&redirect_uri=" .. redirect .. "&code_challenge=" .. challenge .. "&code_challenge_method=S256"
    return wrk.format("GET", path, { ["Cookie"] = cookie })
  elseif state == "token" then
    local body = "grant_type=authorization_code&code=" .. code .. "&client_id=" .. client_id
      .. "&redirect_uri=" .. redirect .. "&code_verifier=" .. verifier
    return wrk.format("POST", "/oidc/token", form, body)
  elseif state == "userinfo" then
    return wrk.format("GET", "/oidc/userinfo", { ["Authorization"] = "Bearer " .. access })
  else -- refresh
    local body = "grant_type=refresh_token&refresh_token=" .. refresh .. "&client_id=" .. client_id
    return wrk.format("POST", "/oidc/token", form, body)
  end
end

local function failed()
  failures = failures + 1
  state = "authorize"
end

function response(status, headers, body)
  if state == "authorize" then
    local location = headers["location"] or headers["Location"] or ""
    code = location:match("[?&]code=([^&]+)")
    if status ~= 302 or not code then return failed() end
    state = "token"
  elseif state == "token" then
    access = body:match('"access_token"%s*:%s*"([^"]+)"')
    refresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if status ~= 200 or not access or not body:find('"id_token"') then return failed() end
    state = (mode == "flow") and "userinfo" or "refresh"
  elseif state == "userinfo" then
    if status ~= 200 then return failed() end
    count = count + 1
    state = "authorize"
  else
    refresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if status ~= 200 or not refresh then return failed() end
    count = count + 1
  end
end

function done(summary, latency, requests)
  local total, failed_total = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("count")
    failed_total = failed_total + thread:get("failures")
  end
  io.write(string.format("completed=%d failures=%d seconds=%.3f\n",
    total, failed_total, summary.duration / 1e6))
end
