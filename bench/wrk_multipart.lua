-- wrk script: POST /predict/ as multipart/form-data (image file + model), like the seed's curl.
--
-- Environment: BENCH_IMAGE (path of the file to upload), BENCH_MODEL (default clf.pickle),
-- BENCH_RESULT (path where done() writes a JSON summary for bench/run.py).

local image_path = os.getenv("BENCH_IMAGE") or error("BENCH_IMAGE is not set")
local model = os.getenv("BENCH_MODEL") or "clf.pickle"
local result_path = os.getenv("BENCH_RESULT")

local file = assert(io.open(image_path, "rb"))
local image = file:read("*a")
file:close()

local boundary = "----digits-bench-7d3f0a9c41b2"
local filename = image_path:match("([^/]+)$")
local content_type = "application/octet-stream"
if filename:match("%.jpe?g$") then
  content_type = "image/jpeg"
elseif filename:match("%.png$") then
  content_type = "image/png"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = table.concat({
  "--" .. boundary,
  'Content-Disposition: form-data; name="image"; filename="' .. filename .. '"',
  "Content-Type: " .. content_type,
  "",
  image,
  "--" .. boundary,
  'Content-Disposition: form-data; name="model"',
  "",
  model,
  "--" .. boundary .. "--",
  "",
}, "\r\n")

function done(summary, latency, requests)
  if not result_path then
    return
  end
  local errors = summary.errors
  local out = assert(io.open(result_path, "w"))
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean
  ))
  out:close()
end
