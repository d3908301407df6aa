#!/usr/bin/env bash
# Installs what is missing, builds, seeds the sample district into a
# SpatiaLite file (if absent) and starts the command center on
# http://localhost:8080. Environment: GRIDCC_DB (default data/gridcc.db),
# GRIDCC_PORT (8080), GRIDCC_BIND (127.0.0.1).
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
exec build/gridcc serve --db "$DB" --port "${GRIDCC_PORT:-8080}" --bind "${GRIDCC_BIND:-127.0.0.1}"
