-- wrk script: send requests at a fixed total rate (open-loop schedule) and report latencies.
--
--   wrk -t1 -c50 -d10s -s bench/fixed_rate.lua http://127.0.0.1:8000 -- RATE PATHS_FILE [THREADS]
--
-- wrk itself is closed-loop. Here every request is given a slot on a fixed schedule
-- (start + i / rate per thread): after each response, delay() claims the next free slot and
-- waits for it, so the offered rate does not depend on how fast the server answers as long as
-- enough connections are idle (use several times rate x worst latency). Slots that are already
-- due are sent at once and their lateness is recorded, so a stalled schedule shows in the
-- report ("lag") instead of silently lowering the rate (coordinated omission).
-- LuaJIT's ffi gives a microsecond monotonic clock.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } fc_timespec;
  int clock_gettime(int clk_id, fc_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("fc_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local paths = {}
local interval_us = 0
local next_slot = 0
local slots = {}
local slot_head, slot_tail = 1, 0
local cursor = 1
max_lag_us = 0
late = 0
sent = 0

function init(args)
  local rate = tonumber(args[1])
  local per_thread = rate / tonumber(args[3] or 1)
  interval_us = 1000000 / per_thread
  for line in io.lines(args[2]) do
    paths[#paths + 1] = line
  end
  cursor = (id * 7919) % #paths + 1
  next_slot = now_us() + 20000 -- first slot 20 ms after start-up
end

function delay()
  local slot = next_slot
  next_slot = next_slot + interval_us
  slot_tail = slot_tail + 1
  slots[slot_tail] = slot
  local wait_ms = (slot - now_us()) / 1000
  if wait_ms < 0 then
    return 0
  end
  return math.floor(wait_ms)
end

function request()
  local t = now_us()
  if slot_head <= slot_tail then
    local lag = t - slots[slot_head]
    slots[slot_head] = nil
    slot_head = slot_head + 1
    if lag > max_lag_us then
      max_lag_us = lag
    end
    if lag > 1000 then
      late = late + 1
    end
  end
  sent = sent + 1
  local path = paths[cursor]
  cursor = cursor % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local max_lag, late_total, sent_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    local lag = thread:get("max_lag_us")
    if lag > max_lag then
      max_lag = lag
    end
    late_total = late_total + thread:get("late")
    sent_total = sent_total + thread:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    "FIXED_RATE_RESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, "
      .. "\"p99_us\": %d, \"p999_us\": %d, \"max_us\": %d, \"mean_us\": %.1f, "
      .. "\"errors\": %d, \"status_errors\": %d, \"timeouts\": %d, "
      .. "\"max_lag_us\": %.0f, \"late_over_1ms\": %d, \"sent\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status, e.timeout,
    max_lag, late_total, sent_total
  ))
end
