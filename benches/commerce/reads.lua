-- wrk script for benches/commerce/run.sh and benches/recs/run.sh: each request GETs a path drawn
-- at random from the file named by $PATHS (one path a line; a single line = the same URL every
-- time), and `done` prints one JSON line: requests/s, p50/p90/p99/max latency (ms), errors
-- (connect/read/write/timeout, and responses >= 400 as "status").
-- With $TOKEN set, every request carries it as a bearer token (recs: the admin token reads any
-- shopper's for-you list).
local token = os.getenv("TOKEN")
local headers = token and {["Authorization"] = "Bearer " .. token} or nil
local paths = {}
local file = assert(io.open(os.getenv("PATHS"), "r"))
for line in file:lines() do
  if line ~= "" then paths[#paths + 1] = line end
end
file:close()

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"label": "%s", "requests": %d, "seconds": %.2f, "rps": %.0f, "p50_ms": %.2f, "p90_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "bytes_per_request": %.0f, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "status": %d}}\n',
    os.getenv("LABEL") or "", summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.bytes / math.max(1, summary.requests),
    e.connect, e.read, e.write, e.timeout, e.status))
end
