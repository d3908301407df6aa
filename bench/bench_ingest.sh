#!/usr/bin/env bash
# OsmAnd ingest, durable before the 200: wrk over keep-alive connections
# sends single-fix requests (Traccar Client's GET) for SECONDS; then the same
# through POST /batch (100 fixes a request, phones catching up); the baseline,
# in the same run, inserts fixes one SpatiaLite transaction each.
#   bash bench/bench_ingest.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONN=${2:-64}
BIN=${GRIDCC_BIN:-build/gridcc}
command -v wrk >/dev/null || { echo "bench_ingest: needs wrk (apt-get install wrk)"; exit 2; }
T=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" seed --db "$T/g.db" >/dev/null 2>&1
for i in $(seq 0 99); do
  "$BIN" user add "bw$i" --role worker --db "$T/g.db" >/dev/null 2>&1
  "$BIN" device add "bd$i" --worker "bw$i" --db "$T/g.db" >/dev/null
done
GRIDCC_LOG=warn "$BIN" serve --db "$T/g.db" --port 18181 --osmand-port 15181 > "$T/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf localhost:18181/api/health >/dev/null && break; sleep 0.1; done
cat > "$T/single.lua" <<'LUA'
local n, tid = 0, 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) base = os.time() * 1000 - 3600000 end
function request()
  n = n + 1
  local dev = (tid * 25 + n % 25)
  return wrk.format("GET", string.format("/?id=bd%d&lat=%.6f&lon=%.6f&timestamp=%d&speed=2.1&batt=80",
    dev, 40.0100 + (n % 997) * 1e-5, 116.3400 + (n % 991) * 1e-5, base + n * 4 + tid))
end
LUA
sed -i 's/^local n, tid = 0, 0/local n = 0/' "$T/single.lua"
echo "== single fixes: GET /?id=…, $CONN keep-alive connections, ${SECS} s"
f0=$(sqlite3 "$T/g.db" "SELECT count(*) FROM positions")
wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s "$T/single.lua" http://127.0.0.1:15181/ | tee "$T/wrk1.txt" | grep -E "Requests/sec|99%|Non-2xx" || true
f1=$(sqlite3 "$T/g.db" "SELECT count(*) FROM positions")
single=$(awk '/Requests\/sec/ {print $2}' "$T/wrk1.txt")
echo "stored: $((f1 - f0)) fixes"

cat > "$T/batch.lua" <<'LUA'
local n = 0
function init(args) base = os.time() * 1000 - 7200000 end
function request()
  n = n + 1
  local parts = {}
  for i = 1, 100 do
    parts[i] = string.format('{"id":"bd%d","lat":%.6f,"lon":%.6f,"timestamp":%d}',
      (n + i) % 100, 40.0100 + (i % 97) * 1e-5, 116.3400 + (n % 89) * 1e-5, base + n * 100 + i)
  end
  return wrk.format("POST", "/batch", {["Content-Type"] = "application/json"}, "[" .. table.concat(parts, ",") .. "]")
end
LUA
echo "== batches: POST /batch, 100 fixes each, 8 connections, ${SECS} s"
wrk -t1 -c8 -d"${SECS}s" --latency -s "$T/batch.lua" http://127.0.0.1:15181/ | tee "$T/wrk2.txt" | grep -E "Requests/sec|99%|Non-2xx" || true
batch=$(awk '/Requests\/sec/ {print $2 * 100}' "$T/wrk2.txt")
kill $pid; wait $pid 2>/dev/null || true
uid=$(sqlite3 "$T/g.db" "SELECT id FROM users WHERE name = 'bw0'")
echo "== baseline: one SpatiaLite transaction a fix, 5 s"
base=$(build/bench/ingest_baseline "$T/g.db" "$uid" 5)
python3 - "$single" "$batch" "$base" <<'PY'
import sys
s, b, base = map(float, sys.argv[1:])
print(f"single-fix requests: {s:,.0f} fixes/s   ({s / base:.0f}x the baseline)")
print(f"batches of 100:      {b:,.0f} fixes/s   ({b / base:.0f}x the baseline)")
print(f"baseline, a transaction a fix: {base:,.0f} fixes/s")
PY
