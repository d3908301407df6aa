#!/bin/bash
# Report intake: POST /api/incidents, multipart with one ~2 MB JPEG (GPS in
# its EXIF), durable before the 201, 50 concurrent connections for 15 s with
# bench/intake_load.c (a closed-loop client that builds no body per request;
# wrk's Lua spent a whole core building them). Every request carries a
# different photo (a counter in a JPEG comment segment), so content-addressed
# storage dedups nothing. Baseline in the same run: the storage floor, i.e.
# writing the same number of 2 MB files with an fsync each and nothing else
# (one thread). Prints req/s, p99, the ratio, and the daemon's CPU time per
# report (from /proc) and the time BLAKE2b takes over one photo, which bound
# what 2 cores can do.
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
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }
C0=$(cpu)
build/bench/intake_load $PORT "$TOKEN" "$T/big.jpg" 50 "$DUR" | tee "$T/load.txt"
C1=$(cpu)
N=$(sqlite3 "$T/g.db" "SELECT count(*) FROM incidents")
python3 - "$T" "$N" "$C0" "$C1" "$(getconf CLK_TCK)" <<'PY'
import os, re, sys, time
t, n = sys.argv[1], int(sys.argv[2])
cpu_s = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
w = open(os.path.join(t, "load.txt")).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))
p99 = re.search(r"p99 ([\d.]+ ms)", w).group(1)
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
import hashlib
t0 = time.time()
for i in range(100):
    hashlib.blake2b(data, digest_size=32).digest()
hash_ms = (time.time() - t0) / 100 * 1e3
print(f"BLAKE2b of one photo (the content address), one core: {hash_ms:.1f} ms, so hashing "
      f"alone caps 2 cores at {2000 / hash_ms:.0f} photos/s")
per = cpu_s / max(n, 1) * 1e3
print(f"daemon CPU per report: {per:.1f} ms (2 cores bound it at {2000 / per:.0f} reports/s)")
PY
