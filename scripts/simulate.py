#!/usr/bin/env python3
"""Simulated grid workers for the demo: each walks a loop just inside a grid
of the sample district (its outline drawn in towards the middle), sending a fix
through the OsmAnd port every second, the way Traccar Client does (POST with
the fields in the query string). Every few minutes one of them strays into the
next grid, so the outside-grid alert has something to say.

  scripts/simulate.py --layers layers --osmand 5055 --api 8080 --token ADMIN
                      [--workers 8] [--speed 6]

Workers sim1..simN and their devices must exist (scripts/run.sh creates
them); their grids are assigned through the API. Standard library only.
"""
import argparse
import json
import math
import random
import sys
import time
import urllib.error
import urllib.request


def ring_of(geom, inset=0.8):
    """The grid's outline drawn in towards its middle: a walk along the lanes
    just inside it (on the edge itself, fixes would flicker between grids)."""
    c = geom["coordinates"]
    ring = c[0][0] if geom["type"] == "MultiPolygon" else c[0]
    cx = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
    cy = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
    return [[cx + (x - cx) * inset, cy + (y - cy) * inset] for x, y, *_ in ring]


def metres(a, b):
    lat = math.radians((a[1] + b[1]) / 2)
    return math.hypot((b[0] - a[0]) * 111320 * math.cos(lat), (b[1] - a[1]) * 110540)


def walk(ring, step):
    """Endless positions along a closed ring, step metres apart."""
    i, pos = 0, list(ring[0])
    while True:
        a, b = pos, ring[(i + 1) % len(ring)]
        d = metres(a, b)
        if d <= step:
            pos = list(b)
            i = (i + 1) % (len(ring) - 1)
        else:
            f = step / d
            pos = [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f]
        yield pos


def send(port, q, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/?{q}", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


def api(port, token, method, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="layers")
    ap.add_argument("--osmand", type=int, default=5055)
    ap.add_argument("--api", type=int, default=8080)
    ap.add_argument("--token", required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--speed", type=float, default=6.0, help="metres a fix (a brisk demo pace)")
    a = ap.parse_args()
    grids = json.load(open(f"{a.layers}/grids.geojson", encoding="utf-8"))["features"]
    rnd = random.Random(7)
    chosen = rnd.sample(grids, a.workers)
    # wait for the daemon
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{a.api}/api/health", timeout=2)
            break
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    walkers = []
    for k, g in enumerate(chosen, 1):
        gid = g["properties"]["id"]
        try:
            api(a.api, a.token, "PUT", f"/api/workers/sim{k}/grids", {"grids": [gid]})
        except urllib.error.HTTPError as e:
            print(f"simulate: assigning {gid} to sim{k}: {e.code} {e.read()[:200]!r}", file=sys.stderr)
        walkers.append({"dev": f"sim-dev{k}", "path": walk(ring_of(g["geometry"]), a.speed),
                        "batt": 100.0 - k, "stray": 0})
    print(f"simulate: {len(walkers)} workers walking their grids, a fix a second each", flush=True)
    sent = failed = 0
    while True:
        t0 = time.time()
        for w in walkers:
            lon, lat = next(w["path"])
            if w["stray"] == 0 and rnd.random() < 1 / 600:
                w["stray"] = 120          # two minutes just outside the grid
            if w["stray"]:
                w["stray"] -= 1
                lat += 0.0012
            w["batt"] = max(5.0, w["batt"] - 0.002)
            q = (f"id={w['dev']}&timestamp={int(time.time())}&lat={lat:.7f}&lon={lon:.7f}"
                 f"&speed={a.speed / 0.514444:.1f}&accuracy=8&batt={w['batt']:.1f}")
            try:
                send(a.osmand, q)
                sent += 1
            except (urllib.error.URLError, OSError) as e:
                failed += 1
                if failed % 60 == 1:
                    print(f"simulate: send failed ({e}); retrying", file=sys.stderr, flush=True)
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
