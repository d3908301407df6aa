#!/usr/bin/env bash
# bench_import: import of the sample district's 21,500 buildings with full
# validation (geometry, duplicates, sibling overlaps, parents, % outside),
# against `ogr2ogr -f SQLite -dsco SPATIALITE=YES` of the same file (which
# only copies). Best of N runs each, in the same run; prints the ratio.
#   bash bench/bench_import.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
BIN=build/gridcc
SRC=layers/buildings.geojson.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the levels above buildings, so parents can be found
for f in district:district street:streets community:communities grid:grids; do
  $BIN import "layers/${f#*:}.geojson" --level "${f%%:*}" --db "$tmp/base.db" >/dev/null 2>&1
done

best() { sort -g | head -1; }
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN{print b-a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

ours_code=(); ours_geo=(); base=()
for i in $(seq "$RUNS"); do
  cp "$tmp/base.db" "$tmp/a.db"; rm -f "$tmp/a.db-wal" "$tmp/a.db-shm"
  ours_code+=("$(t $BIN import $SRC --level building --db "$tmp/a.db" --parent-field parent_code)")
  cp "$tmp/base.db" "$tmp/b.db"; rm -f "$tmp/b.db-wal" "$tmp/b.db-shm"
  ours_geo+=("$(t $BIN import $SRC --level building --db "$tmp/b.db")")
  rm -f "$tmp/o.sqlite"
  base+=("$(t ogr2ogr -f SQLite -dsco SPATIALITE=YES "$tmp/o.sqlite" "/vsigzip/$SRC")")
done
c=$(printf '%s\n' "${ours_code[@]}" | best)
g=$(printf '%s\n' "${ours_geo[@]}" | best)
b=$(printf '%s\n' "${base[@]}" | best)
n=$(sqlite3 "$tmp/b.db" "select count(*) from features where layer='building'")
printf 'buildings imported: %s\n' "$n"
printf 'gridcc import, parents by code:    %6.2f s  ratio %sx\n' "$c" "$(ratio "$c" "$b")"
printf 'gridcc import, parents by overlap: %6.2f s  ratio %sx\n' "$g" "$(ratio "$g" "$b")"
printf 'ogr2ogr -f SQLite SPATIALITE=YES:  %6.2f s  (baseline)\n' "$b"
printf 'target: at most 1.5x the baseline\n'
