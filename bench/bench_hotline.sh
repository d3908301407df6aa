#!/bin/bash
# 12345 import: N work orders with coordinates (default 100,000) through
# `gridcc hotline import` (geotag, case numbers, history, change log, one
# durable transaction) against ogr2ogr of the same CSV into SpatiaLite (the
# baseline: parse and copy only). Prints both times and the ratio.
#   bash bench/bench_hotline.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BIN=${GRIDCC_BIN:-build/gridcc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$N" > "$T/orders.csv" <<'PY'
import random, sys
random.seed(12345)
n = int(sys.argv[1])
kinds = ["垃圾清运", "噪音扰民", "共享单车", "占道经营", "路灯", "积水", "小广告", "其他"]
print("工单编号,受理时间,诉求内容,地址,经度,纬度,诉求类别")
for i in range(n):
    lon = 116.300 + random.random() * 0.08
    lat = 39.985 + random.random() * 0.045
    d = 1 + i % 28
    print(f"GD2026{i:08d},2026-11-{d:02d} {i % 24:02d}:{i % 60:02d}:00,"
          f"市民反映{kinds[i % 8]}问题 第{i}号,,{lon:.6f},{lat:.6f},{kinds[i % 8]}")
PY
"$BIN" seed --db "$T/g.db" >/dev/null 2>&1
t0=$(date +%s.%N)
"$BIN" hotline import "$T/orders.csv" --db "$T/g.db" 2>/dev/null | tail -1
t1=$(date +%s.%N)
ogr2ogr -f SQLite -dsco SPATIALITE=YES "$T/base.db" "$T/orders.csv" \
  -oo X_POSSIBLE_NAMES=经度 -oo Y_POSSIBLE_NAMES=纬度 -a_srs EPSG:4326 -nln orders
t2=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$N" <<'PY'
import sys
t0, t1, t2, n = map(float, sys.argv[1:])
g, b = t1 - t0, t2 - t1
print(f"gridcc hotline import: {g:.2f} s ({n / g:,.0f} orders/s)")
print(f"ogr2ogr to SpatiaLite:  {b:.2f} s")
print(f"ratio gridcc/ogr2ogr:   {g / b:.2f}x")
PY
