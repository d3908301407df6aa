#!/bin/bash
# Report intake: POST /api/incidents, multipart with one ~2 MB JPEG (GPS in
# its EXIF), durable before the 201, 50 concurrent connections for 15 s with
# wrk; every request carries a different photo (a counter in a JPEG comment
# segment), so content-addressed storage dedups nothing. Baseline in the same
# run: the storage floor, i.e. writing the same number of 2 MB files with an
# fsync each and nothing else (one thread). Prints req/s, p99 and the ratio.
#   bash bench/bench_intake.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15}
BIN=${GRIDCC_BIN:-build/gridcc}
T=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
/usr/bin/python3 tests/data/make_photos.py --big "$T/big.jpg" >/dev/null
"$BIN" seed --db "$T/g.db" >/dev/null 2>&1
TOKEN=$("$BIN" user add wk --role worker --db "$T/g.db" 2>/dev/null)
PORT=18471
"$BIN" serve --db "$T/g.db" --port $PORT >"$T/log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf localhost:$PORT/api/health >/dev/null && break; sleep 0.1; done
cat >"$T/post.lua" <<LUA
local f = io.open("$T/big.jpg", "rb"); local jpg = f:read("*a"); f:close()
local head, tail = jpg:sub(1, 2), jpg:sub(3)   -- after SOI: insert a COM segment
local b = "gridccbench"
local n = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. b
request = function()
  n = n + 1
  local c = string.format("%s-%d-%d", tostring({}), n, math.random(1e9))
  local com = "\255\254" .. string.char(0, #c + 2) .. c
  local body = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nE01.02\r\n" ..
    "--" .. b .. "\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nbench\r\n" ..
    "--" .. b .. "\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n" ..
    "Content-Type: image/jpeg\r\n\r\n" .. head .. com .. tail .. "\r\n--" .. b .. "--\r\n"
  return wrk.format(nil, "/api/incidents", nil, body)
end
LUA
wrk -t2 -c50 -d${DUR}s --timeout 10s --latency -s "$T/post.lua" http://127.0.0.1:$PORT | tee "$T/wrk.txt"
N=$(sqlite3 "$T/g.db" "SELECT count(*) FROM incidents")
python3 - "$T" "$N" <<'PY'
import os, re, sys, time
t, n = sys.argv[1], int(sys.argv[2])
w = open(os.path.join(t, "wrk.txt")).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))
p99 = re.search(r"99%\s+([\d.]+\w+)", w).group(1)
data = open(os.path.join(t, "big.jpg"), "rb").read()
k = min(n, 300)
t0 = time.time()
for i in range(k):
    with open(os.path.join(t, f"floor{i}.jpg"), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
floor = k / (time.time() - t0)
print(f"stored reports: {n}; photo {len(data) / 1e6:.1f} MB")
print(f"gridcc intake:  {rps:.0f} req/s, p99 {p99} at 50 connections")
print(f"floor (2 MB write+fsync, one thread): {floor:.0f} files/s")
print(f"ratio gridcc/floor: {rps / floor:.2f}x")
PY
