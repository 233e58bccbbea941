-- wrk script for bench/http_rates.py: every purchase is a distinct buyer.
--
-- Configured by environment variables (wrk loads this file in its main Lua
-- state and once per thread; every state reads the same environment):
--   BUYERS_MODE     "post" (default): POST {"user_id": ..., "quantity": 1} as JSON;
--                   "get": GET BUYERS_PATH (a ceiling);
--                   "list": GETs read from the file BUYERS_LIST, one a line: the path, then
--                   tab-separated "Name: value" headers (a buyer's cookie, If-None-Match); each
--                   thread goes round the list, one line per request, from its own place in it
--   BUYERS_PATH     the request path (default /api/drops/1/purchases)
--   BUYERS_PREFIX   user_id prefix, distinct per wrk run (default "u"): user_id is
--                   <prefix>-<thread>-<n>, n counting up in each thread
--   BUYERS_RATE     when set: a paced load of this many requests/s in total, through
--                   wrk's delay() (wrk has no rate flag); BUYERS_THREADS must be wrk's -t
--
-- The response() hook counts statuses per thread (wrk only counts non-2xx/3xx);
-- done() prints one line per status: "status <code> <count>", then "sent <n>" (requests
-- made: those not answered were in flight when wrk stopped), then "paced ..." when pacing. bench/harness/wrk.py parses both.

local mode = os.getenv("BUYERS_MODE") or "post"
local path = os.getenv("BUYERS_PATH") or "/api/drops/1/purchases"
local prefix = os.getenv("BUYERS_PREFIX") or "u"
local rate = tonumber(os.getenv("BUYERS_RATE") or "")
local nthreads = tonumber(os.getenv("BUYERS_THREADS") or "1")

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   sent = 0
   statuses = {}
   late = 0
   if mode == "get" then
      fixed = wrk.format("GET", path)
   elseif mode == "list" then
      fixed = nil
      listed = {}
      for line in io.lines(os.getenv("BUYERS_LIST")) do
         local fields = {}
         for field in string.gmatch(line, "[^\t]+") do
            table.insert(fields, field)
         end
         local extra = {}
         for i = 2, #fields do
            local name, value = string.match(fields[i], "^([^:]+):%s*(.*)$")
            extra[name] = value
         end
         table.insert(listed, wrk.format("GET", fields[1], extra))
      end
      place = math.floor(#listed * tid / nthreads)
   else
      fixed = nil
      headers = {["Content-Type"] = "application/json"}
      head = '{"user_id":"' .. prefix .. "-" .. tid .. "-"
   end
end

function request()
   sent = sent + 1
   if fixed then
      return fixed
   end
   if listed then
      return listed[(place + sent) % #listed + 1]
   end
   return wrk.format("POST", path, headers, head .. sent .. '","quantity":1}')
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

if rate then
   -- Each thread hands out send slots 1/(rate/threads) s apart to whichever of its
   -- connections asks next: the thread sends at its share of the rate however its
   -- connections interleave. wrk's timer has millisecond resolution, so requests
   -- leave in small bunches each millisecond (burstier than a smooth clock, less
   -- than Poisson arrivals). A thread that falls more than 10 ms behind drops the
   -- backlog instead of bursting to catch up, and counts it as "late".
   local ffi = require("ffi")
   ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } buyers_timespec;
      int clock_gettime(int clock, buyers_timespec *ts);
   ]]
   local ts = ffi.new("buyers_timespec")
   local interval = nthreads * 1000.0 / rate -- ms between two sends of one thread
   local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
   end
   local due = nil

   function delay()
      local now = now_ms()
      if due == nil then
         due = now
      elseif due < now - 10 then
         due = now
         late = late + 1
      end
      local wait = due - now
      due = due + interval
      if wait <= 0 then
         return 0
      end
      return math.floor(wait + 0.5)
   end
end

function done(summary, latency, requests)
   local total = {}
   local lateness = 0
   local sent_total = 0
   for _, thread in ipairs(threads) do
      sent_total = sent_total + (thread:get("sent") or 0)
      local counts = thread:get("statuses")
      for status, count in pairs(counts) do
         total[status] = (total[status] or 0) + count
      end
      lateness = lateness + (thread:get("late") or 0)
   end
   local codes = {}
   for status in pairs(total) do
      table.insert(codes, status)
   end
   table.sort(codes)
   for _, status in ipairs(codes) do
      io.write(string.format("status %d %d\n", status, total[status]))
   end
   io.write(string.format("sent %d\n", sent_total))
   if rate then
      io.write(string.format("paced target %d late %d\n", rate, lateness))
   end
end
