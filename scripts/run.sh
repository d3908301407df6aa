#!/usr/bin/env bash
# Installs what is missing, builds, seeds the sample district into a
# SpatiaLite file (if absent) and starts the command center on
# http://localhost:8080, with the OsmAnd port on 5055 and simulated grid
# workers walking their grids. Environment: GRIDCC_DB (default
# data/gridcc.db), GRIDCC_PORT (8080), GRIDCC_OSMAND_PORT (5055), GRIDCC_BIND
# (127.0.0.1), GRIDCC_SIMULATE (8 workers; 0 for none).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DB=${GRIDCC_DB:-data/gridcc.db}
mkdir -p "$(dirname "$DB")"
if [ ! -f "$DB" ]; then
  echo "run: seeding the sample district into $DB"
  build/gridcc seed --db "$DB"
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
PORT=${GRIDCC_PORT:-8080}
OSMAND=${GRIDCC_OSMAND_PORT:-5055}
build/gridcc serve --db "$DB" --port "$PORT" --osmand-port "$OSMAND" --bind "${GRIDCC_BIND:-127.0.0.1}" &
daemon=$!
sim=
if [ "$SIM" -gt 0 ]; then
  token=$(sed -n 's/^token: //p' "$DB.admin.txt")
  python3 scripts/simulate.py --layers layers --osmand "$OSMAND" --api "$PORT" --token "$token" \
    --workers "$SIM" &
  sim=$!
fi
trap 'kill $sim 2>/dev/null; kill $daemon 2>/dev/null; wait $daemon' INT TERM
wait $daemon
status=$?
[ -n "$sim" ] && kill "$sim" 2>/dev/null
exit $status
