-- wrk script: POST the JSON body in $PYEXEC_BODY_FILE to /execute, and print a one-line
-- summary the bench driver parses: requests/s, p50 and p99 latency in ms, errors.
local f = assert(io.open(os.getenv("PYEXEC_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local bad = 0
response = function(status, headers, body)
  -- Anything but a 200 whose body carries a result is a failed request for the benchmark.
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    bad = bad + 1
  end
end

-- Each thread counts its own failures; summed in done().
local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local failures = 0
  for _, t in ipairs(threads) do failures = failures + (t:get("bad") or 0) end
  io.write(string.format("BENCH rps=%.2f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d non_2xx=%d failures=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, failures))
end
