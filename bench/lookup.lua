-- wrk script for the sharing look-up figure (bench/sharing.py runs it): every request is a
-- POST /api/v1/data/JC-RK-001/lookup for an ID number picked at random from the file given.
-- Arguments: access token, path of a file of ID numbers (one per line).
-- Answers other than 200 are counted and printed, so the bench can refuse to report them.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  token, keys, failures = args[1], {}, 0
  for line in io.lines(args[2]) do
    keys[#keys + 1] = line
  end
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  math.randomseed(os.time() + #threads)
end

function request()
  local key = keys[math.random(#keys)]
  return wrk.format("POST", "/api/v1/data/JC-RK-001/lookup", headers, '{"key":"' .. key .. '"}')
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("failures=%d p50_ms=%.2f p99_ms=%.2f\n", failed,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
