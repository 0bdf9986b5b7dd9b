-- wrk script of bench/bench_settlements.py: replays PRE-SIGNED settlement requests.
--
-- The benchmark writes one file per wrk thread, "$BENCH_REQUESTS-<thread>.bin": a sequence of
-- complete HTTP requests, each preceded by a line with its length in bytes. Every request is
-- sent once (a signature's nonce is good for one request only); a thread that runs out of
-- requests sends GET /api/v1/bench-pool-exhausted instead (404) and counts it, so an exhausted
-- pool shows in the results instead of replaying nonces.
--
-- done() prints one line "BENCH_JSON {...}": duration, requests, socket errors, latency
-- percentiles (microseconds), HTTP statuses, and the settlement outcomes ("status/reason" of
-- each 200 answer).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = os.getenv("BENCH_REQUESTS")
  pool = assert(io.open(prefix .. "-" .. id .. ".bin", "rb"))
  statuses = {}
  outcomes = {}
  sent = 0
  exhausted = 0
  fallback = wrk.format("GET", "/api/v1/bench-pool-exhausted")
end

function request()
  local header = pool:read("*l")
  if header == nil then
    exhausted = exhausted + 1
    return fallback
  end
  sent = sent + 1
  return pool:read(tonumber(header))
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 200 then
    -- Top-level fields come first, in the schema's order: setl_id, status, product, benefit,
    -- reason, explanation.
    local outcome = body:match('"status"%s*:%s*"([%w_]+)"') or "?"
    local reason = body:match('"benefit"%s*:%s*"[^"]*"%s*,%s*"reason"%s*:%s*"([%w_]+)"')
    if reason ~= nil then
      outcome = outcome .. "/" .. reason
    end
    outcomes[outcome] = (outcomes[outcome] or 0) + 1
  end
end

local function encode(map)
  local parts = {}
  for k, v in pairs(map) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function add(into, map)
  for k, v in pairs(map) do
    into[k] = (into[k] or 0) + v
  end
end

function done(summary, latency, requests)
  local all_statuses, all_outcomes = {}, {}
  local total_sent, total_exhausted = 0, 0
  for _, thread in ipairs(threads) do
    add(all_statuses, thread:get("statuses"))
    add(all_outcomes, thread:get("outcomes"))
    total_sent = total_sent + thread:get("sent")
    total_exhausted = total_exhausted + thread:get("exhausted")
  end
  local errors = summary.errors
  local percentiles = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(percentiles, string.format('"%s": %d', tostring(p), latency:percentile(p)))
  end
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "sent": %d, "exhausted": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "stdev": %.1f, '
      .. '"percentiles": {%s}}, "statuses": %s, "outcomes": %s}\n',
    summary.duration, summary.requests, total_sent, total_exhausted,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(percentiles, ", "),
    encode(all_statuses), encode(all_outcomes)))
end
