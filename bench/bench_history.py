#!/usr/bin/env python3
"""Replay's reads on a day of fixes: WORKERS workers × 1 fix/s × HOURS hours
sent through the OsmAnd port's POST /batch, then

  GET /api/history/positions for the 24 h around them (every fix; then
      thinned to 50,000), GET /api/history/area for a box over that day,
  GET /api/history/changes for CASES case reports, and those cases as of a
      time (GET /api/history/incidents),

each the median of 3, wall time of the HTTP answer (read in full, not
parsed). Baselines in the same run: the same fixes read straight out of the
file with Python's sqlite3 (the rows alone, no HTTP, no JSON), and the way
there was before, one GET /api/workers/{id}/track a worker.
  python3 bench/bench_history.py [WORKERS] [HOURS] [CASES]"""
import json
import os
import sqlite3
import statistics
import sys
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import Daemon, TempDir, q, run  # noqa: E402

WORKERS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
HOURS = float(sys.argv[2]) if len(sys.argv) > 2 else 2
CASES = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
P = (116.3262, 40.0032)


def timed(fn, n=3):
    ts, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def get(d, path, token):
    st, _, body = d.request("GET", path, token=token, timeout=600)
    assert st == 200, (path, st, body[:300])
    return body


def main():
    os.environ.setdefault("GRIDCC_LOG", "info")   # the reads' own timings: history log lines
    with TempDir() as tmp:
        db = os.path.join(tmp, "b.db")
        run("seed", "--db", db, check=0)
        op = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
        for i in range(WORKERS):
            run("user", "add", f"w{i}", "--role", "worker", "--db", db, check=0)
            run("device", "add", f"d{i}", "--worker", f"w{i}", "--db", db, check=0)
        d = Daemon(db)
        try:
            day0 = (int(time.time()) - 2 * 86400) // 86400 * 86400
            start = day0 + 8 * 3600
            n_per = int(HOURS * 3600)
            total = WORKERS * n_per
            t0 = time.perf_counter()
            batch = []

            def flush():
                c = http.client.HTTPConnection("127.0.0.1", d.osmand_port, timeout=600)
                c.request("POST", "/batch", json.dumps(batch), {"Content-Type": "application/json"})
                r = c.getresponse()
                js = json.loads(r.read())
                c.close()
                assert r.status == 200 and js["stored"] == len(batch), js
                batch.clear()

            for k in range(n_per):
                for i in range(WORKERS):
                    # each worker walks its own line, a metre or so a second
                    batch.append({"id": f"d{i}", "timestamp": start + k,
                                  "lon": round(P[0] + 0.001 * i + 1e-5 * (k % 3600), 7),
                                  "lat": round(P[1] + 1e-5 * (k // 3600) + 0.0005 * (i % 7), 7)})
                    if len(batch) == 10000:
                        flush()
            if batch:
                flush()
            ins = time.perf_counter() - t0
            print(f"fixes: {total:,} ({WORKERS} workers × 1/s × {HOURS:g} h) sent in {ins:.1f} s "
                  f"({total / ins:,.0f}/s through POST /batch)")

            # cases: one change-log row each
            t0 = time.perf_counter()
            c_from = int(time.time())
            for k in range(CASES):
                st, js = d.json("POST", "/api/incidents", {"category": "E05.02", "description": f"c{k}",
                                                           "lon": P[0], "lat": P[1]}, token=op)
                assert st == 201, js
            c_to = int(time.time()) + 1
            print(f"cases: {CASES:,} reported in {time.perf_counter() - t0:.1f} s")

            win = {"from": day0, "to": day0 + 86400}
            t_all, body = timed(lambda: get(d, q("/api/history/positions", **win, max_points=1000000), op))
            js = json.loads(body)
            assert js["fixes"] == total and not js["thinned"], (js["fixes"], total)
            print(f"GET /api/history/positions, 24 h, every fix: {t_all * 1000:.0f} ms, "
                  f"{len(body) / 1e6:.1f} MB, {js['fixes']:,} fixes")
            cap = min(50000, total // 3)
            t_thin, body = timed(lambda: get(d, q("/api/history/positions", **win, max_points=cap), op))
            js = json.loads(body)
            assert js["thinned"] and js["fixes"] <= cap
            print(f"GET /api/history/positions, 24 h, max_points={cap} (thinned): {t_thin * 1000:.0f} ms, "
                  f"{len(body) / 1e6:.1f} MB, {js['fixes']:,} fixes")
            box = f"{P[0]},{P[1]},{P[0] + 0.0045},{P[1] + 0.002}"
            t_area, body = timed(lambda: get(d, q("/api/history/area", **win, bbox=box), op))
            print(f"GET /api/history/area, 24 h: {t_area * 1000:.0f} ms, "
                  f"{len(json.loads(body)['workers'])} workers in the box")
            t_ch, body = timed(lambda: get(d, q("/api/history/changes", **{"from": c_from, "to": c_to},
                                                topics="incidents"), op))
            js = json.loads(body)
            assert len(js["changes"]) == CASES, len(js["changes"])
            print(f"GET /api/history/changes, {CASES:,} rows: {t_ch * 1000:.0f} ms, "
                  f"{len(body) / 1e6:.1f} MB")

            t_inc, body = timed(lambda: get(d, q("/api/history/incidents", at=c_to, all="true"), op))
            assert len(json.loads(body)["features"]) == CASES
            print(f"GET /api/history/incidents?all=true, {CASES:,} cases: {t_inc * 1000:.0f} ms, "
                  f"{len(body) / 1e6:.1f} MB")
            t_list, body = timed(lambda: get(d, q("/api/incidents", limit=10000), op))
            assert len(json.loads(body)["features"]) == CASES
            print(f"baseline: GET /api/incidents (today's statuses), {CASES:,} cases: "
                  f"{t_list * 1000:.0f} ms; ratio {t_inc / t_list:.2f}")

            # baselines
            def raw():
                c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                rows = c.execute("SELECT user_id, t, lon, lat, device_id FROM positions "
                                 "WHERE t >= ? AND t < ? ORDER BY user_id, t",
                                 (day0 * 1000, (day0 + 86400) * 1000)).fetchall()
                c.close()
                return rows
            t_raw, rows = timed(raw)
            assert len(rows) == total
            print(f"baseline: the same rows with Python's sqlite3: {t_raw * 1000:.0f} ms")
            def tracks():
                return [get(d, f"/api/workers/w{i}/track?from={day0}&to={day0 + 86400}", op)
                        for i in range(WORKERS)]
            t_tr, _ = timed(tracks)
            print(f"baseline: {WORKERS} × GET /api/workers/{{id}}/track, 24 h: {t_tr * 1000:.0f} ms")
            print(f"ratio: positions / raw sqlite3 read = {t_all / t_raw:.2f}; "
                  f"positions / per-worker tracks = {t_all / t_tr:.2f}")
            print("the daemon's side (reading, building and encoding on the thread):")
            for line in d.logs().splitlines():
                if "history: read" in line:
                    print("  " + line.split("history: ", 1)[1])
        finally:
            d.stop()


if __name__ == "__main__":
    main()
