#!/usr/bin/env bash
# Installs what is missing, builds, seeds the sample district into a
# SpatiaLite file (if absent) and starts the command center on
# http://localhost:8080, with the OsmAnd port on 5055, simulated grid
# workers walking their grids and simulated residents, operators and
# departments taking a new case about once a minute round the loop. A newly
# seeded district first gets 30 days of history: a generated 12345 export,
# imported with `gridcc hotline import`, and its handling recorded through the
# API (scripts/demo_history.py). Environment: GRIDCC_DB (default
# data/gridcc.db), GRIDCC_PORT (8080), GRIDCC_OSMAND_PORT (5055), GRIDCC_BIND
# (127.0.0.1), GRIDCC_SIMULATE (8 workers; 0 for no simulation at all),
# GRIDCC_HISTORY (days of history for a new database, 30; 0 for none).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DB=${GRIDCC_DB:-data/gridcc.db}
mkdir -p "$(dirname "$DB")"
fresh=
if [ ! -f "$DB" ]; then
  fresh=1
  echo "run: seeding the sample district into $DB"
  build/gridcc seed --db "$DB"
  # the demo cameras (rtsp://…:8554/camK, served by camsim); a database seeded
  # before them takes them with the same command
  build/gridcc cameras import layers/cameras.geojson --db "$DB"
  # a first administrator, so someone can log in
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
  token=$(printf '%s\n' "$pw" | build/gridcc user add admin --role admin --db "$DB" --password-stdin 2>/dev/null)
  umask 077
  printf 'user: admin\npassword: %s\ntoken: %s\n' "$pw" "$token" > "$DB.admin.txt"
  echo "run: created user 'admin'; password and token are in $DB.admin.txt"
fi
SIM=${GRIDCC_SIMULATE:-8}
for k in $(seq 1 "$SIM"); do   # simulated workers, each with a tracker
  build/gridcc user add "sim$k" --role worker --db "$DB" >/dev/null 2>&1 || true
  build/gridcc device add "sim-dev$k" --worker "sim$k" --db "$DB" --label simulated >/dev/null
done
# the case simulator's users; their tokens are shown once, so they are kept
if [ "$SIM" -gt 0 ]; then
  umask 077
  touch "$DB.sim.txt"
  for u in "sim-op operator" "sim-resident resident" "sim-城管 department 城管" \
           "sim-环卫 department 环卫" "sim-公安 department 公安"; do
    set -- $u
    grep -q "^$1 " "$DB.sim.txt" && continue
    if t=$(build/gridcc user add "$1" --role "$2" ${3:+--department "$3"} --db "$DB" 2>/dev/null); then
      echo "$1 $2 $t ${3:-}" >> "$DB.sim.txt"
    fi
  done
fi
PORT=${GRIDCC_PORT:-8080}
OSMAND=${GRIDCC_OSMAND_PORT:-5055}
build/gridcc serve --db "$DB" --port "$PORT" --osmand-port "$OSMAND" --bind "${GRIDCC_BIND:-127.0.0.1}" &
daemon=$!
token=$(sed -n 's/^token: //p' "$DB.admin.txt")
sims=
trap 'kill $sims 2>/dev/null; kill $daemon 2>/dev/null; wait $daemon' INT TERM
DAYS=${GRIDCC_HISTORY:-30}
if [ -n "$fresh" ] && [ "$DAYS" -gt 0 ]; then
  echo "run: $DAYS days of history (a generated 12345 export and its handling; about 15 s)"
  python3 scripts/demo_history.py all --db "$DB" --api "$PORT" --token "$token" --days "$DAYS" \
    --out "$(dirname "$DB")/demo-12345.csv" || echo "run: the history was not fully recorded" >&2
fi
if [ "$SIM" -gt 0 ]; then
  python3 scripts/simulate.py --layers layers --osmand "$OSMAND" --api "$PORT" --token "$token" \
    --workers "$SIM" &
  sims=$!
  python3 scripts/simulate_cases.py --layers layers --api "$PORT" --tokens "$DB.sim.txt" &
  sims="$sims $!"
fi
wait $daemon
status=$?
[ -n "$sims" ] && kill $sims 2>/dev/null
exit $status
