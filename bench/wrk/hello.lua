-- The ceiling: the same server's bare /hello endpoint, as JSON on the last line.
function done(summary, latency, requests)
  io.write(string.format('{"duration_us": %d, "requests": %d, "p50_us": %d, "p95_us": %d, "non2xx": %d, ' ..
    '"errors": %d}\n', summary.duration, summary.requests, latency:percentile(50), latency:percentile(95),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
