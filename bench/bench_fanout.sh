#!/usr/bin/env bash
# /live fan-out: CLIENTS websocket clients with mixed filters (a quarter each:
# everything; a bbox of a quarter of the district; one grid; incidents only)
# while POS_RATE positions/s arrive through the OsmAnd port and INC_RATE
# incident changes/s through the API. Prints delivery latency (p50/p99/max,
# after a 2 s warm-up) and checks that every unfiltered client got every
# incident change.
#   bash bench/bench_fanout.sh [CLIENTS] [SECONDS] [POS_RATE] [INC_RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-1000}
SECS=${2:-20}
POS=${3:-2000}
INC=${4:-50}
WORKERS=500
BIN=${GRIDCC_BIN:-build/gridcc}
T=$(mktemp -d)
pid=; trap 'kill $pid 2>/dev/null || true; rm -rf "$T"' EXIT
# the seeded store with its 500 workers takes minutes to make (a process per
# user); it is kept under build/ and made again when the schema changes
key=$(cat src/store/migrations/*.sql layers/*.geojson | sha1sum | cut -c1-12)
cache=build/bench-fanout-$key
if [ ! -s "$cache.db" ]; then
  rm -f build/bench-fanout-*
  "$BIN" seed --db "$T/g.db" >/dev/null 2>&1
  "$BIN" user add op --role operator --db "$T/g.db" 2>/dev/null > "$T/tok"
  for i in $(seq 0 $((WORKERS - 1))); do
    "$BIN" user add "bw$i" --role worker --db "$T/g.db" >/dev/null 2>&1
    "$BIN" device add "bd$i" --worker "bw$i" --db "$T/g.db" >/dev/null
  done
  sqlite3 "$T/g.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
  cp "$T/tok" "$cache.tok"
  cp "$T/g.db" "$cache.db"
fi
cp "$cache.db" "$T/g.db"
tok=$(cat "$cache.tok")
box=$(python3 -c "
import json
c = json.load(open('layers/district.geojson'))['features'][0]['geometry']['coordinates']
pts = [p for poly in (c if isinstance(c[0][0][0], list) else [c]) for ring in poly for p in ring]
xs, ys = [p[0] for p in pts], [p[1] for p in pts]
print(min(xs), min(ys), max(xs), max(ys))")
grid=$(python3 -c "import json; print(json.load(open('layers/grids.geojson'))['features'][40]['properties']['id'])")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
GRIDCC_LOG=warn ${PIN_DAEMON:-} "$BIN" serve --db "$T/g.db" --port 18282 --osmand-port 15282 ${FANOUT_SERVE_ARGS:-} > "$T/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf localhost:18282/api/health >/dev/null && break; sleep 0.1; done
c0=$(awk '{print $14 + $15}' /proc/$pid/stat)
${PIN_CLIENT:-} build/bench/live_load 18282 15282 "$tok" "$CLIENTS" "$SECS" "$POS" "$INC" "$WORKERS" "$box" "$grid" > "$T/out.json"
c1=$(awk '{print $14 + $15}' /proc/$pid/stat)
read -r base maxs < <(python3 -c "import json; d=json.load(open('$T/out.json')); print(d['base_seq'], d['max_seq'])")
expected=$(sqlite3 "$T/g.db" "SELECT count(*) FROM change_log WHERE topic = 'incidents' AND seq > $base AND seq <= $maxs")
python3 - "$T/out.json" "$expected" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exp, ticks, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"clients {d['clients']} (closed early: {d['closed']}), {d['seconds']} s: "
      f"{d['positions_sent'] / d['seconds']:,.0f} positions/s and {d['incidents_sent'] / d['seconds']:.0f} incidents/s sent "
      f"(send errors {d['send_errors']})")
print(f"frames received {d['frames']:,} ({d['bytes'] / d['seconds'] / 1e6:.1f} MB/s); position deliveries {d['position_deliveries']:,}; incident deliveries {d['incident_deliveries']:,}")
ms = lambda v: 'n/a' if v < 0 else f'{v:.1f} ms'
print(f"position latency (fix sent -> on the client): p50 {ms(d['pos_p50'])}  p99 {ms(d['pos_p99'])}  max {ms(d['pos_max'])}")
print(f"incident latency (commit -> on the client):  p50 {ms(d['inc_p50'])}  p99 {ms(d['inc_p99'])}  max {ms(d['inc_max'])}")
lost = exp - d['inc_min']
print(f"incident changes: {exp} in the log; every one of {d['unfiltered_clients']} unfiltered clients got "
      f"{d['inc_min']}..{d['inc_max_count']}: lost {lost}")
print(f"daemon CPU: {ticks / hz:.1f} s over the run ({ticks / hz / (d['seconds'] + 5) * 100:.0f}% of a core); "
      f"load client CPU: {d['client_cpu_s']:.1f} s ({d['client_cpu_s'] / (d['seconds'] + 5) * 100:.0f}% of a core)")
PY
