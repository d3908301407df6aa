#!/usr/bin/env bash
# Building tiles over the sample district at zooms 15-17 (every tile of the
# layer's extent), fetched over HTTP (gzip asked, THREADS keep-alive clients,
# bench/tiles_load.py) from a fresh daemon (cold: every tile made) and again
# (warm: from the cache), then with wrk for WRK_SECONDS over the same list
# (warm); against GDAL's own `ogr2ogr -f MVT` making the same tiles (same
# zooms, the building layer of the same store, gzip) in the same run. Prints
# non-empty tiles/s for each and the ratios.
#   bash bench/bench_tiles.sh [THREADS] [WRK_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-4}
WRK_SECONDS=${2:-10}
BIN=${GRIDCC_BIN:-build/gridcc}
PORT=${PORT:-18291}
T=$(mktemp -d)
pid=; trap 'kill $pid 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" seed --db "$T/g.db" >/dev/null 2>&1
tok=$("$BIN" user add op --role operator --db "$T/g.db" 2>/dev/null)

# the tiles: every z/x/y at 15-17 meeting the building layer's extent
python3 - "$T/g.db" > "$T/urls" <<'PY'
import json, math, sqlite3, sys
b = json.loads(sqlite3.connect(sys.argv[1]).execute(
    "SELECT bbox FROM layers WHERE name = 'building'").fetchone()[0])
def tile(lon, lat, z):
    r = math.radians(lat)
    return (int((lon + 180) / 360 * 2 ** z),
            int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2 ** z))
for z in (15, 16, 17):
    x0, y0 = tile(b[0], b[3], z)
    x1, y1 = tile(b[2], b[1], z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            print(f"/tiles/building/{z}/{x}/{y}.pbf")
PY
echo "bench_tiles: $(wc -l < "$T/urls") tiles at zooms 15-17, $THREADS clients, $(nproc) cores"

GRIDCC_LOG=warn "$BIN" serve --db "$T/g.db" --port "$PORT" --osmand-port -1 > "$T/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/api/health" >/dev/null && break; sleep 0.1; done
read -r n cold_ne cold_bytes cold_s cold_rate cold_err < <(python3 bench/tiles_load.py "$PORT" "$tok" "$T/urls" "$THREADS")
read -r _ warm_ne _ warm_s warm_rate warm_err < <(python3 bench/tiles_load.py "$PORT" "$tok" "$T/urls" "$THREADS")
[ "$cold_err" = 0 ] && [ "$warm_err" = 0 ] || { echo "bench_tiles: errors cold=$cold_err warm=$warm_err"; exit 1; }

# wrk: the same list, round-robin per connection, for a fixed time (warm)
cat > "$T/list.lua" <<LUA
local urls, i = {}, 0
for l in io.lines("$T/urls") do urls[#urls + 1] = l end
wrk.headers["Authorization"] = "Bearer $tok"
wrk.headers["Accept-Encoding"] = "gzip"
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
LUA
wrk_rate=
if command -v wrk >/dev/null; then
  wrk_rate=$(wrk -t2 -c"$THREADS" -d"${WRK_SECONDS}s" -s "$T/list.lua" "http://127.0.0.1:$PORT" |
             awk '/Requests\/sec/ {print $2}')
fi
kill $pid; wait $pid 2>/dev/null || true; pid=

# GDAL's own: ogr2ogr -f MVT, the same layer, zooms and compression
t0=$(date +%s.%N)
ogr2ogr -f MVT "$T/gdal" "$T/g.db" -nln building \
  -sql "SELECT geom, fid AS id, name, code, parent_fid AS parent FROM features WHERE layer = 'building'" \
  -dsco MINZOOM=15 -dsco MAXZOOM=17 -dsco MAX_SIZE=100000000 -dsco MAX_FEATURES=100000000 \
  -dsco COMPRESS=YES 2> "$T/gdal.err"
t1=$(date +%s.%N)
gdal_n=$(find "$T/gdal" -name '*.pbf' | wc -l)
gdal_bytes=$(find "$T/gdal" -name '*.pbf' -printf '%s\n' | awk '{s += $1} END {print s}')

python3 - "$n" "$cold_ne" "$cold_bytes" "$cold_s" "$warm_s" "$gdal_n" "$gdal_bytes" "$t0" "$t1" "${wrk_rate:-0}" <<'PY'
import sys
n, cold_ne, cold_bytes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cold_s, warm_s = float(sys.argv[4]), float(sys.argv[5])
gdal_n, gdal_bytes = int(sys.argv[6]), int(sys.argv[7])
gdal_s = float(sys.argv[9]) - float(sys.argv[8])
wrk = float(sys.argv[10])
gdal = gdal_n / gdal_s
cold, warm = cold_ne / cold_s, cold_ne / warm_s
print(f"gdal ogr2ogr -f MVT:   {gdal_n} tiles ({gdal_bytes} bytes gzip) in {gdal_s:.2f} s = {gdal:.0f} tiles/s")
print(f"gridcc cold (HTTP):    {cold_ne} non-empty of {n} tiles ({cold_bytes} bytes gzip) "
      f"in {cold_s:.2f} s = {cold:.0f} tiles/s  ratio {cold / gdal:.2f}")
print(f"gridcc warm (HTTP):    {cold_ne} non-empty in {warm_s:.2f} s = {warm:.0f} tiles/s  "
      f"ratio {warm / gdal:.1f}")
if wrk:
    # wrk's rate counts the empty tiles too: scale to non-empty ones
    print(f"gridcc warm (wrk):     {wrk:.0f} requests/s = {wrk * cold_ne / n:.0f} non-empty tiles/s  "
          f"ratio {wrk * cold_ne / n / gdal:.1f}")
PY
