-- Answer submissions for wrk: each line of $MI_BENCH_REQUESTS is "cookie<TAB>form body", one per task, each
-- sent once. Lines are dealt to wrk's threads round-robin; a thread stops sending when all its lines are
-- answered, and the benchmark interrupts wrk (SIGINT, which makes it report) once the database has them all.
-- A connection whose thread has no line left asks for /hello (200) until the thread stops; answers are 303.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  lines, sent, answered, statuses = {}, 0, 0, {}
  local nthreads = tonumber(os.getenv("MI_BENCH_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("MI_BENCH_REQUESTS")) do
    if n % nthreads == id then table.insert(lines, line) end
    n = n + 1
  end
  target = #lines
  -- wrk calls thread 0's request() once, before any connection, to inspect it and never sends that one:
  -- give that call a copy of the first line.
  if id == 0 then table.insert(lines, 1, lines[1]) end
end

function request()
  sent = sent + 1
  if sent > #lines then  -- the last connections' idle turn while the thread stops
    return wrk.format("GET", "/hello")
  end
  local cookie, body = lines[sent]:match("([^\t]*)\t(.*)")
  return wrk.format("POST", nil, {["Cookie"] = cookie,
                                  ["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  if status ~= 200 then answered = answered + 1 end
  if answered >= target then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local total, codes = 0, {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do codes[code] = (codes[code] or 0) + n end
    total = total + thread:get("target")
  end
  local parts = {}
  for code, n in pairs(codes) do table.insert(parts, string.format('"%s": %d', code, n)) end
  io.write(string.format('{"lines": %d, "statuses": {%s}, "duration_us": %d, "requests": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "errors": %d}\n', total, table.concat(parts, ", "), summary.duration,
    summary.requests, latency:percentile(50), latency:percentile(95),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
