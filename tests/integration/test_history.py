#!/usr/bin/env python3
"""Replay's reads through the real daemon: fixes sent with known past device
times (POST /api/positions) read back for a window (GET
/api/history/positions: exactly those fixes, the bbox and workers filters,
thinning that keeps each track's ends), who was in a box (GET
/api/history/area), the change log of a window (GET /api/history/changes:
the rows of the window as /live sends them, topics, paging with after_seq),
cases as they stood at a time (GET /api/history/incidents), what a worker,
a department user and a resident may read, and the errors naming fields.

Expected values come from the fixes sent, from the change log read out of
the database file with Python's sqlite3 (read-only), and from each case's
audit trail as GET /api/incidents/{id} shows it."""
import json
import math
import os
import sqlite3
import time
from datetime import datetime, timezone

from harness import LAYERS, Daemon, TempDir, expect_error, main, q, run

ctx = {}
P = (116.3262, 40.0032)          # inside the sample district
STEP = 0.0001                    # degrees a fix moves


def api(method, path, body=None, token=None, want=200):
    st, js = ctx["d"].json(method, path, body, token=token or ctx["op"])
    assert st == want, f"{method} {path}: wanted {want}, got {st}: {js}"
    return js


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "h.db")
    run("seed", "--db", db, "--layers", LAYERS, check=0)
    for name, role, extra in [("admin", "admin", []), ("op", "operator", []),
                              ("甲", "worker", []), ("乙", "worker", []),
                              ("cg", "department", ["--department", "城管"]),
                              ("hw", "department", ["--department", "环卫"]),
                              ("res", "resident", [])]:
        ctx[name] = run("user", "add", name, "--role", role, "--db", db, *extra, check=0)[1].strip()
    ctx["d"] = Daemon(db)
    ctx["uid"] = {}
    for dev, w in (("d-jia", "甲"), ("d-yi", "乙")):
        js = api("POST", "/api/devices", {"device_id": dev, "worker": w}, want=201)
        ctx["uid"][w] = js["user_id"]
    # the fixes: yesterday, on the hour; 甲 walks east from P every 10 s,
    # 乙 north from P every 20 s, starting 5 minutes later
    t0 = ctx["t0"] = (int(time.time()) - 86400) // 3600 * 3600
    ctx["fixes"] = {
        "甲": [(t0 + 10 * k, round(P[0] + STEP * k, 7), P[1]) for k in range(120)],
        "乙": [(t0 + 300 + 20 * k, P[0], round(P[1] + STEP * k, 7)) for k in range(60)],
    }
    items = [{"id": dev, "lat": lat, "lon": lon, "timestamp": t}
             for dev, w in (("d-jia", "甲"), ("d-yi", "乙")) for t, lon, lat in ctx["fixes"][w]]
    js = api("POST", "/api/positions", items, token=ctx["admin"])
    assert js["stored"] == len(items), js


def teardown():
    assert ctx["d"].stop() == 0, "daemon did not stop cleanly on SIGTERM"
    ctx["tmp"].__exit__(None, None, None)


def fixes_in(w, lo, hi, box=None):
    return [[lon, lat, t * 1000] for t, lon, lat in ctx["fixes"][w]
            if lo <= t < hi and (box is None or box[0] <= lon <= box[2] and box[1] <= lat <= box[3])]


def rounded(workers):
    return {w["name"]: [[round(f[0], 7), round(f[1], 7), f[2]] for f in w["fixes"]] for w in workers}


# ---------------------------------------------------------------- positions

def test_positions_window():
    t0 = ctx["t0"]
    lo, hi = t0 + 100, t0 + 700
    js = api("GET", q("/api/history/positions", **{"from": lo, "to": hi}))
    assert (js["from_ms"], js["to_ms"], js["thinned"]) == (lo * 1000, hi * 1000, False), js
    assert js["from"] == datetime.fromtimestamp(lo, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    want = {w: fixes_in(w, lo, hi) for w in ("甲", "乙")}
    assert rounded(js["workers"]) == want, js["workers"]
    assert [w["id"] for w in js["workers"]] == [ctx["uid"]["甲"], ctx["uid"]["乙"]]
    assert [w["device_id"] for w in js["workers"]] == ["d-jia", "d-yi"]
    assert js["fixes"] == js["fixes_in_window"] == sum(len(v) for v in want.values())
    # ISO 8601 works as well as Unix seconds
    iso = api("GET", q("/api/history/positions", **{
        "from": datetime.fromtimestamp(lo, timezone.utc).isoformat(),
        "to": datetime.fromtimestamp(hi, timezone.utc).isoformat()}))
    assert iso["workers"] == js["workers"]
    # an empty window: no workers
    assert api("GET", q("/api/history/positions", **{"from": t0 - 3600, "to": t0}))["workers"] == []


def test_positions_bbox_and_workers():
    t0 = ctx["t0"]
    box = [round(P[0] + 50 * STEP - STEP / 2, 7), P[1] - 0.001, P[0] + 1, P[1] + 0.001]
    js = api("GET", q("/api/history/positions", **{"from": t0, "to": t0 + 3600,
                                                   "bbox": ",".join(map(str, box))}))
    got = rounded(js["workers"])
    # only 甲's eastern part; 乙 walks north along P's longitude, outside
    assert got == {"甲": fixes_in("甲", t0, t0 + 3600, box)} and len(got["甲"]) == 70, got.keys()
    js = api("GET", q("/api/history/positions", **{"from": t0, "to": t0 + 3600,
                                                   "workers": str(ctx["uid"]["乙"])}))
    assert rounded(js["workers"]) == {"乙": fixes_in("乙", t0, t0 + 3600)}
    # by name too, and both (one named twice is read once)
    js = api("GET", q("/api/history/positions", **{"from": t0, "to": t0 + 3600, "workers": "乙,甲,乙"}))
    assert rounded(js["workers"]) == {w: fixes_in(w, t0, t0 + 3600) for w in ("甲", "乙")}
    assert [w["name"] for w in js["workers"]] == ["甲", "乙"]   # by id, as without the filter


def test_positions_thinned():
    t0 = ctx["t0"]
    lo, hi, cap = t0, t0 + 3600, 50
    js = api("GET", q("/api/history/positions", **{"from": lo, "to": hi, "max_points": cap}))
    full = {w: fixes_in(w, lo, hi) for w in ("甲", "乙")}
    total = sum(len(v) for v in full.values())
    assert js["thinned"] is True and js["fixes_in_window"] == total == 180, js["fixes_in_window"]
    got = rounded(js["workers"])
    for w, pts in full.items():
        n = len(pts)
        k = max(2, n * cap // total)
        idx = [math.floor(i * (n - 1) / (k - 1) + 0.5) for i in range(k)]
        assert got[w] == [pts[i] for i in idx], (w, got[w])
        assert got[w][0] == pts[0] and got[w][-1] == pts[-1]
    assert js["fixes"] == sum(len(v) for v in got.values()) <= cap
    # thinned inside a bbox: among the fixes in it (70 of 甲's)
    box = [round(P[0] + 50 * STEP - STEP / 2, 7), P[1] - 0.001, P[0] + 1, P[1] + 0.001]
    js = api("GET", q("/api/history/positions", **{"from": lo, "to": hi, "max_points": 10,
                                                   "bbox": ",".join(map(str, box))}))
    pts = fixes_in("甲", lo, hi, box)
    idx = [math.floor(i * 69 / 9 + 0.5) for i in range(10)]
    assert js["thinned"] and js["fixes_in_window"] == 70 and len(pts) == 70, js["fixes_in_window"]
    assert rounded(js["workers"]) == {"甲": [pts[i] for i in idx]}, js["workers"]
    # enough room: nothing thinned
    js = api("GET", q("/api/history/positions", **{"from": lo, "to": hi, "max_points": 180}))
    assert js["thinned"] is False and rounded(js["workers"]) == full


def test_area():
    t0 = ctx["t0"]
    h = 2.5 * STEP
    box = f"{P[0] - h},{P[1] - h},{P[0] + h},{P[1] + h}"
    js = api("GET", q("/api/history/area", **{"from": t0, "to": t0 + 3600, "bbox": box}))
    # 甲 is in the box for its first 3 fixes (0, 10, 20 s), 乙 for its first 3 (300, 320, 340 s)
    assert js["workers"] == [
        {"id": ctx["uid"]["甲"], "name": "甲", "first_ms": t0 * 1000, "last_ms": (t0 + 20) * 1000, "fixes": 3},
        {"id": ctx["uid"]["乙"], "name": "乙", "first_ms": (t0 + 300) * 1000,
         "last_ms": (t0 + 340) * 1000, "fixes": 3}], js
    # a window after 甲 left: only 乙
    js = api("GET", q("/api/history/area", **{"from": t0 + 25, "to": t0 + 3600, "bbox": box}))
    assert [w["name"] for w in js["workers"]] == ["乙"], js
    # sorted by first_ms: 乙 first when it is first in the box
    far = f"{P[0] - h},{P[1] + 19.5 * STEP},{P[0] + h},{P[1] + 30.5 * STEP}"
    east = f"{P[0] + 99.5 * STEP},{P[1] - h},{P[0] + 110.5 * STEP},{P[1] + h}"
    js = api("GET", q("/api/history/area", **{"from": t0, "to": t0 + 3600, "bbox": far}))
    assert [(w["name"], w["fixes"]) for w in js["workers"]] == [("乙", 11)], js
    js = api("GET", q("/api/history/area", **{"from": t0, "to": t0 + 3600, "bbox": east}))
    assert [(w["name"], w["fixes"], w["first_ms"]) for w in js["workers"]] == \
        [("甲", 11, (t0 + 1000) * 1000)], js


def test_positions_who_may_read():
    t0 = ctx["t0"]
    w = {"from": t0, "to": t0 + 3600}
    # a worker: their own fixes only
    js = api("GET", q("/api/history/positions", **w), token=ctx["甲"])
    assert [x["name"] for x in js["workers"]] == ["甲"], js
    expect_error(ctx["d"].json("GET", q("/api/history/positions", **w, workers="乙"),
                               token=ctx["甲"]), 403, "workers")
    js = api("GET", q("/api/history/area", **w, bbox=f"{P[0] - 1},{P[1] - 1},{P[0] + 1},{P[1] + 1}"),
             token=ctx["乙"])
    assert [x["name"] for x in js["workers"]] == ["乙"], js
    # a department user follows workers on the map (as /api/workers/{id}/track allows)
    assert len(api("GET", q("/api/history/positions", **w), token=ctx["cg"])["workers"]) == 2
    for path in ("/api/history/positions", "/api/history/area", "/api/history/changes"):
        expect_error(ctx["d"].json("GET", q(path, **w), token=ctx["res"]), 403)
        assert ctx["d"].json("GET", q(path, **w))[0] == 401


def test_errors():
    t0 = ctx["t0"]
    cases = [
        ("/api/history/positions", {"to": t0}, "from"),
        ("/api/history/positions", {"from": t0}, "to"),
        ("/api/history/positions", {"from": "yesterday", "to": t0}, "from"),
        ("/api/history/positions", {"from": t0, "to": t0}, "to"),
        ("/api/history/positions", {"from": t0, "to": t0 + 86401}, "to"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "bbox": "1,2,3"}, "bbox"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "bbox": "3,2,1,4"}, "bbox"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "bbox": "0,0,200,1"}, "bbox"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "max_points": "1"}, "max_points"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "max_points": "x"}, "max_points"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "workers": "nobody"}, "workers"),
        ("/api/history/positions", {"from": t0, "to": t0 + 60, "workers": ","}, "workers"),
        ("/api/history/area", {"from": t0, "to": t0 + 60}, "bbox"),
        ("/api/history/area", {"from": t0, "to": t0 + 8 * 86400, "bbox": "0,0,1,1"}, "to"),
        ("/api/history/changes", {"from": t0}, "to"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "topics": "incidents,bogus"}, "topics"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "topics": "positions"}, "topics"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "topics": ""}, "topics"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "limit": "0"}, "limit"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "limit": "100001"}, "limit"),
        ("/api/history/changes", {"from": t0, "to": t0 + 60, "after_seq": "-1"}, "after_seq"),
        ("/api/history/incidents", {}, "at"),
        ("/api/history/incidents", {"at": "soon"}, "at"),
        ("/api/history/incidents", {"at": t0, "all": "yes"}, "all"),
    ]
    for path, params, field in cases:
        expect_error(ctx["d"].json("GET", q(path, **params), token=ctx["op"]), 400, field)


# ---------------------------------------------------------------- cases and the change log

def act(case, token, action, **extra):
    return api("POST", f"/api/incidents/{case}/actions", {"action": action, **extra}, token=token)


def report(token, desc):
    return api("POST", "/api/incidents", {"category": "E05.02", "description": desc,
                                          "lon": P[0], "lat": P[1]}, token=token, want=201)["id"]


def next_second():
    """Waits into the next whole second, so steps taken after it have a later time."""
    time.sleep(1.05 - time.time() % 1)


def test_cases_and_changes():
    ctx["t_start"] = int(time.time())
    a = report(ctx["op"], "甲 case")
    next_second()
    act(a, ctx["op"], "register")
    act(a, ctx["op"], "dispatch", department="城管")
    next_second()
    b = report(ctx["op"], "乙 case")
    c = report(ctx["res"], "a resident's own")
    next_second()
    act(b, ctx["op"], "register")
    act(b, ctx["op"], "dispatch", department="环卫")
    act(a, ctx["cg"], "handle", result="清理完毕")
    next_second()
    act(a, ctx["op"], "verify")
    act(a, ctx["op"], "close")
    act(c, ctx["op"], "reject", note="重复")
    next_second()
    ctx["cases"] = [a, b, c]
    # a window wholly past: nothing more can land in it while it is compared
    ctx["t_end"] = int(time.time())


def log_rows(lo, hi, topics):
    """The change log of [lo, hi) read from the file, as /live sends it."""
    iso = lambda s: datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    db = sqlite3.connect(f"file:{ctx['db']}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, topic, id, ts, data FROM change_log WHERE ts >= ? AND ts < ? "
                          "ORDER BY seq", (iso(lo), iso(hi))).fetchall()
    finally:
        db.close()
    return [{"seq": s, "topic": t, "id": i, "ts": ts, "data": json.loads(d)}
            for s, t, i, ts, d in rows if t in topics]


def test_changes_window():
    lo, hi = ctx["t_start"], ctx["t_end"]
    want = log_rows(lo, hi, {"incidents", "alerts", "workers"})
    assert len([r for r in want if r["topic"] == "incidents"]) == 11, want
    js = api("GET", q("/api/history/changes", **{"from": lo, "to": hi}))
    assert js["changes"] == want, (js["changes"], want)
    assert (js["first_seq"], js["last_seq"], js["truncated"], js["next"]) == \
        (want[0]["seq"], want[-1]["seq"], False, None), js
    assert js["topics"] == ["incidents", "alerts", "workers"]
    # a narrower window: the rows of its seconds only
    mid = lo + 2
    part = api("GET", q("/api/history/changes", **{"from": lo + 1, "to": mid}))["changes"]
    assert part == log_rows(lo + 1, mid, {"incidents", "alerts", "workers"}) and 0 < len(part) < len(want)
    # the devices registered at setup are no change; grids are (topic workers)
    api("PUT", f"/api/workers/{ctx['uid']['甲']}/grids", {"grids": []})
    w = api("GET", q("/api/history/changes", **{"from": lo, "to": int(time.time()) + 2,
                                                  "topics": "workers"}))["changes"]
    assert [(x["topic"], x["id"]) for x in w] == [("workers", str(ctx["uid"]["甲"]))], w
    # nothing in an empty window
    js = api("GET", q("/api/history/changes", **{"from": lo - 7200, "to": lo - 3600}))
    assert js["changes"] == [] and js["first_seq"] is None and js["truncated"] is False


def test_changes_paging():
    lo, hi = ctx["t_start"], ctx["t_end"]
    want = log_rows(lo, hi, {"incidents"})
    got, after, pages = [], 0, 0
    while True:
        js = api("GET", q("/api/history/changes", **{"from": lo, "to": hi, "topics": "incidents",
                                                       "limit": 5, "after_seq": after}))
        pages += 1
        got += js["changes"]
        assert len(js["changes"]) <= 5
        if not js["truncated"]:
            assert js["next"] is None
            break
        assert len(js["changes"]) == 5 and js["next"]["after_seq"] == js["last_seq"], js
        after = js["next"]["after_seq"]
        assert pages < 10, "paging does not move on"
    assert got == want and pages == 3, (pages, len(got), len(want))


def test_changes_department():
    lo, hi = ctx["t_start"], ctx["t_end"]
    a, b, _ = ctx["cases"]
    js = api("GET", q("/api/history/changes", **{"from": lo, "to": hi, "topics": "incidents"}),
             token=ctx["cg"])
    want = [r for r in log_rows(lo, hi, {"incidents"})
            if r["data"]["properties"].get("department") == "城管"]
    assert js["changes"] == want and want, js["changes"]
    # a case shows while it is 城管's (the category's department until it is
    # dispatched): all of a's steps, b's only until it went to 环卫
    steps = {(r["data"]["id"], r["data"]["properties"]["status"]) for r in js["changes"]}
    assert {(a, s) for s in ("reported", "registered", "dispatched", "handled", "verified",
                             "closed")} <= steps, steps
    assert (b, "reported") in steps and (b, "dispatched") not in steps, steps
    hw = api("GET", q("/api/history/changes", **{"from": lo, "to": hi, "topics": "incidents"}),
             token=ctx["hw"])["changes"]
    assert [(r["data"]["id"], r["data"]["properties"]["status"]) for r in hw] == [(b, "dispatched")], hw


def status_at(history, t):
    st = None
    for h in history:
        if h["at"] <= t and h.get("to_status"):
            st = h["to_status"]
    return st


def test_incidents_as_of():
    cases = {}
    for f in api("GET", q("/api/incidents", limit=10000))["features"]:
        p = api("GET", f"/api/incidents/{f['id']}")["properties"]
        cases[f["id"]] = p
    assert set(cases) == set(ctx["cases"]), cases.keys()
    times = sorted({h["at"] for p in cases.values() for h in p["history"]})
    assert len(times) >= 4, times
    for t in [times[0] - 1] + times + [times[-1] + 1]:
        for everything in (False, True):
            want = {}
            for no, p in cases.items():
                st = status_at(p["history"], t)
                if p["created_at"] <= t and st and (everything or st not in ("rejected", "closed", "evaluated")):
                    want[no] = st
            params = {"at": t, **({"all": "true"} if everything else {})}
            js = api("GET", q("/api/history/incidents", **params))
            got = {f["id"]: f["properties"]["status"] for f in js["features"]}
            assert js["type"] == "FeatureCollection" and got == want, (t, everything, got, want)
            assert js["numberReturned"] == len(want) and js["at_ms"] == t * 1000
    # a case's status as of a time differs from today's
    a, b, c = ctx["cases"]
    t_dispatched = [h["at"] for h in cases[a]["history"] if h["action"] == "dispatch"][0]
    js = api("GET", q("/api/history/incidents", at=t_dispatched))
    assert {f["id"]: f["properties"]["status"] for f in js["features"]}[a] == "dispatched"
    assert cases[a]["status"] == "closed"
    # visibility as in the case list: a department sees what went to it, a resident their own
    end = times[-1] + 1
    for dep in ("cg", "hw"):
        js = api("GET", q("/api/history/incidents", at=end, all="true"), token=ctx[dep])
        mine = sorted(no for no, p in cases.items()
                      if p["department"] == {"cg": "城管", "hw": "环卫"}[dep])
        assert [f["id"] for f in js["features"]] == mine and mine, (dep, js["features"])
    hw = api("GET", q("/api/history/incidents", at=t_dispatched), token=ctx["hw"])
    assert hw["features"] == [], hw   # b was not yet reported then
    res = api("GET", q("/api/history/incidents", at=end, all="true"), token=ctx["res"])
    assert [f["id"] for f in res["features"]] == [c], res
    wk = api("GET", q("/api/history/incidents", at=end, all="true"), token=ctx["甲"])
    assert sorted(f["id"] for f in wk["features"]) == sorted(ctx["cases"])


if __name__ == "__main__":
    setup()
    try:
        main([test_positions_window, test_positions_bbox_and_workers, test_positions_thinned,
              test_area, test_positions_who_may_read, test_errors, test_cases_and_changes,
              test_changes_window, test_changes_paging, test_changes_department,
              test_incidents_as_of, teardown])
    finally:
        if ctx.get("d"):
            ctx["d"].stop()
