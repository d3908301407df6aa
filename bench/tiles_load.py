#!/usr/bin/env python3
"""Fetches every tile URL of a list once, from several threads each on its
own keep-alive connection, asking for gzip like a browser; prints one line:
tiles, non-empty tiles, bytes, seconds, tiles/s. Used by bench_tiles.sh.
  tiles_load.py PORT TOKEN URLS_FILE THREADS"""
import http.client
import sys
import threading
import time

port, token, path, nthreads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(path) as f:
    urls = [u.strip() for u in f if u.strip()]
lock = threading.Lock()
nxt = [0]
stats = {"tiles": 0, "nonempty": 0, "bytes": 0, "errors": 0}


def worker():
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
    hdr = {"Authorization": "Bearer " + token, "Accept-Encoding": "gzip"}
    mine = {"tiles": 0, "nonempty": 0, "bytes": 0, "errors": 0}
    while True:
        with lock:
            i = nxt[0]
            nxt[0] += 1
        if i >= len(urls):
            break
        c.request("GET", urls[i], headers=hdr)
        r = c.getresponse()
        body = r.read()
        mine["tiles"] += 1
        mine["errors"] += r.status != 200
        mine["nonempty"] += len(body) > 0
        mine["bytes"] += len(body)
    c.close()
    with lock:
        for k in stats:
            stats[k] += mine[k]


t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
dt = time.monotonic() - t0
print(f"{stats['tiles']} {stats['nonempty']} {stats['bytes']} {dt:.3f} {stats['tiles'] / dt:.1f} "
      f"{stats['errors']}")
