-- wrk script: POST a fixed JSON body, then print one machine-readable summary line.
-- Body and Authorization come from the environment (BENCH_BODY, BENCH_AUTH); BENCH_AUTHS
-- (comma-separated) instead sends each request with the next of those Authorization values.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local auths = os.getenv("BENCH_AUTHS")
if auths and auths ~= "" then
  local prepared, turn = {}, 0
  -- wrk sets the Host header just before it calls init: format the requests there
  function init(args)
    for value in string.gmatch(auths, "[^,]+") do
      wrk.headers["Authorization"] = value
      prepared[#prepared + 1] = wrk.format()
    end
  end
  function request()
    turn = turn % #prepared + 1
    return prepared[turn]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"status_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
