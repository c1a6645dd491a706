-- wrk script for bench/ingest.sh: every request is one box's heartbeat, the
-- boxes taken in turn from box-00000 to box-NNNNN so that each of them
-- reports (each thread starts at its own offset).
--
--   wrk -s bench/ingest.lua URL -- BOXES fleetpulse TOKEN
--   wrk -s bench/ingest.lua URL -- BOXES pushgateway
--
-- fleetpulse:  POST /api/v1/heartbeats/box-i   (bearer token, JSON body, commit header)
-- pushgateway: PUT  /metrics/job/heartbeat/box/box-i  (one gauge, text format)

local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  boxes = tonumber(args[1]) or 10000
  target = args[2] or "fleetpulse"
  token = args[3] or ""
  i = ((tid or 0) * 5003) % boxes
  fp_headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["X-Fleet-Commit"] = "4f2c9e1",
  }
  pg_headers = { ["Content-Type"] = "text/plain; version=0.0.4" }
end

function request()
  i = (i + 1) % boxes
  local name = string.format("box-%05d", i)
  if target == "fleetpulse" then
    return wrk.format("POST", "/api/v1/heartbeats/" .. name, fp_headers,
      '{"version":"1.8.0"}')
  else
    return wrk.format("PUT", "/metrics/job/heartbeat/box/" .. name, pg_headers,
      "box_heartbeat_timestamp_seconds " .. os.time() .. "\n")
  end
end
