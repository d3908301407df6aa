#!/usr/bin/env bash
# Batch geotag through HTTP: POST /api/geotag of POINTS random points in the
# sample district (whole chains, then ids only with fields=), against
# SpatiaLite's R*Tree query on the same points in the same run; prints
# points/s and the ratio (bench/bench_geotag_http.c).
#   bash bench/bench_geotag_http.sh [POINTS] [REPS]
# PIN_DAEMON="taskset -c 0" / PIN_CLIENT="taskset -c 1" pin either side.
set -euo pipefail
cd "$(dirname "$0")/.."
POINTS=${1:-20000}
REPS=${2:-7}
BIN=${GRIDCC_BIN:-build/gridcc}
PORT=${PORT:-18283}
T=$(mktemp -d)
pid=; trap 'kill $pid 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" seed --db "$T/g.db" >/dev/null 2>&1
tok=$("$BIN" user add op --role operator --db "$T/g.db" 2>/dev/null)
GRIDCC_LOG=warn ${PIN_DAEMON:-} "$BIN" serve --db "$T/g.db" --port "$PORT" --osmand-port -1 > "$T/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/api/health" >/dev/null && break; sleep 0.1; done
${PIN_CLIENT:-} build/bench/bench_geotag_http "$T/g.db" "$PORT" "$tok" "$POINTS" "$REPS" "$pid"
