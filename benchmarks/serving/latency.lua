-- wrk script of the serving benchmark: POSTs the body in wrk.body and records each request's
-- measured latency (request written -> response parsed) with a monotonic clock, so that the
-- report can quote measured percentiles beside wrk's own, which add synthetic samples for
-- stalls (coordinated-omission correction). Needs one connection per wrk thread (-t N -c N):
-- a thread then has one request in flight at a time.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

local prepared, started = nil, 0
samples = {}
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  prepared = wrk.format()
end
function request() started = now_us(); return prepared end
function response(status, headers, body) samples[#samples + 1] = now_us() - started end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("samples")) do all[#all + 1] = v end
  end
  table.sort(all)
  local function pct(p) return all[math.max(1, math.ceil(#all * p / 100))] / 1000 end
  if #all > 0 then
    io.write(string.format("MEASURED count=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
      #all, pct(50), pct(99), pct(99.9), all[#all] / 1000))
  end
end
