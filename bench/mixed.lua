-- wrk script for bench/mixed.py: browse the catalog paths in MIXED_PATHS (one per line) in turn,
-- count the page cache's answers from its X-Catalog-Cache header (hit / miss / none), and print
-- one machine-readable summary line.
local paths = {}
for p in string.gmatch(os.getenv("MIXED_PATHS") or "/", "[^\n]+") do
  table.insert(paths, p)
end

local threads = {}
function setup(thread)
  thread:set("offset", #threads * 7)
  table.insert(threads, thread)
end

-- Globals: done() reads them from each thread with thread:get().
hits, misses, uncached, failed = 0, 0, 0, 0
local prepared, n = {}, 0

function init(args)
  for i, p in ipairs(paths) do
    prepared[i] = wrk.format("GET", p)
  end
  n = offset or 0
end

function request()
  n = n + 1
  return prepared[(n % #prepared) + 1]
end

function response(status, headers, body)
  local answer = headers["X-Catalog-Cache"]
  if answer == "hit" then
    hits = hits + 1
  elseif answer == "miss" then
    misses = misses + 1
  else
    uncached = uncached + 1
  end
  if status ~= 200 then failed = failed + 1 end
end

function done(summary, latency, requests)
  local h, m, u, f = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    h = h + thread:get("hits")
    m = m + thread:get("misses")
    u = u + thread:get("uncached")
    f = f + thread:get("failed")
  end
  io.write(string.format(
    'MIXED_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"hits": %d, "misses": %d, "uncached": %d, "not_200": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "errors_status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    h, m, u, f, summary.errors.connect, summary.errors.read, summary.errors.timeout,
    summary.errors.status))
end
