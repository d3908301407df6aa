#!/usr/bin/env python3
"""Success paths of the HTTP API that no other test walked, against the real
daemon on the sample district, asserting the shapes and values README
documents: the catalogue (GET /api/categories, PUT /api/categories/{code}),
time limits (GET/PUT /api/time-limits, and a new case's deadline following
them), trackers (POST/GET /api/devices), workers (GET /api/workers, PUT/GET
/api/workers/{id}/grids), and a worker's day sent through the OsmAnd port read
back as a track (GET /api/workers/{id}/track) and as patrol coverage
(GET /api/workers/{id}/coverage).

Expected values are worked out here, apart from the daemon: distances with
the same great-circle formula, areas on a local plane (shoelace), stops and
grid visits from the fixes sent and the chain each point geotags to."""
import http.client
import json
import math
import os
import time
import urllib.parse
from datetime import datetime, timedelta

from harness import LAYERS, Daemon, TempDir, main, q, run

ctx = {}
R = 6371008.8                       # the mean Earth radius gridcc measures with
M_PER_DEG = R * math.pi / 180


def haversine(lon1, lat1, lon2, lat2):
    d = math.pi / 180
    a = (math.sin((lat2 - lat1) * d / 2) ** 2 +
         math.cos(lat1 * d) * math.cos(lat2 * d) * math.sin((lon2 - lon1) * d / 2) ** 2)
    return 2 * R * math.asin(min(1.0, math.sqrt(a)))


def moved(p, east_m, north_m):
    """p moved by metres east and north, rounded as a tracker sends it."""
    lon, lat = p
    return (round(lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))), 7),
            round(lat + north_m / M_PER_DEG, 7))


def plane(ring, origin):
    """A ring's points in metres on a local plane around origin."""
    lon0, lat0 = origin
    k = M_PER_DEG * math.cos(math.radians(lat0))
    return [((lon - lon0) * k, (lat - lat0) * M_PER_DEG) for lon, lat in ring]


def area_m2(rings, origin):
    """Area of a polygon (outer ring, holes) on the local plane."""
    def shoelace(r):
        xy = plane(r, origin)
        return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(xy, xy[1:] + xy[:1]))) / 2
    return shoelace(rings[0]) - sum(shoelace(h) for h in rings[1:])


def seg_dist(p, a, b):
    """Distance from point p to segment ab on the plane."""
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def inside(p, ring):
    x, y = p
    c = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            c = not c
    return c


def osmand(**params):
    """One fix through the OsmAnd port, as a tracker sends it."""
    c = http.client.HTTPConnection("127.0.0.1", ctx["d"].osmand_port, timeout=30)
    try:
        c.request("GET", "/?" + urllib.parse.urlencode(params))
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def send_fixes(device, fixes):
    for t, (lon, lat) in fixes:
        st, body = osmand(id=device, lat=repr(lat), lon=repr(lon), timestamp=t)
        assert st == 200, f"fix {t} of {device}: {st} {body!r}"


def api(method, path, body=None, token=None, want=200):
    st, js = ctx["d"].json(method, path, body, token=token or ctx["op"])
    assert st == want, f"{method} {path}: wanted {want}, got {st}: {js}"
    return js


def grid_ids(points):
    """The grid each point geotags to (None outside every grid)."""
    js = api("POST", "/api/geotag", [list(p) for p in points])
    assert js["count"] == len(points), js
    return [(r["chain"]["grid"] or {}).get("id") for r in js["results"]]


def visits(fixes, grids):
    """README: the visits in order, a new one each time the grid changes."""
    out = []
    for (t, _), g in zip(fixes, grids):
        if out and out[-1]["grid_id"] == g:
            out[-1]["to_ms"] = t * 1000
            out[-1]["fixes"] += 1
        else:
            out.append({"grid_id": g, "from_ms": t * 1000, "to_ms": t * 1000, "fixes": 1})
    return out


def local_ts(day, hour, minute=0):
    return int(datetime(day.year, day.month, day.day, hour, minute).timestamp())


# ---------------------------------------------------------------- setup

def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, "--layers", LAYERS, check=0)
    for name, role in (("admin", "admin"), ("op", "operator"), ("planner", "planner"),
                       ("张三", "worker"), ("李四", "worker")):
        ctx[name] = run("user", "add", name, "--role", role, "--db", db, check=0)[1].strip()
        assert ctx[name], f"user add {name} printed no token"
    ctx["d"] = Daemon(db)
    # the day the workers walk: two days ago, whole and in the past, apart from
    # today's fixes even just after midnight
    ctx["day"] = (datetime.now() - timedelta(days=2)).date()
    ctx["fc_grids"] = json.load(open(os.path.join(LAYERS, "grids.geojson"), encoding="utf-8"))


def test_unit_profile():
    """A grid's and a community's people, households and buildings per use
    add up to what layers/ says of their buildings and building units."""
    import gzip
    bld = json.load(gzip.open(os.path.join(LAYERS, "buildings.geojson.gz"), "rt", encoding="utf-8"))
    units = json.load(gzip.open(os.path.join(LAYERS, "units.geojson.gz"), "rt", encoding="utf-8"))
    by_building = {}
    for u in units["features"]:
        p = u["properties"]
        b = by_building.setdefault(p["parent_code"], [0, 0, 0])
        b[0] += 1
        b[1] += p.get("households") or 0
        b[2] += p.get("population") or 0
    for unit, prefix in (("110108010001001", "110108010001001"), ("110108010001", "110108010001")):
        want = {"buildings": 0, "households": 0, "population": 0, "units": 0, "by_use": {}}
        for f in bld["features"]:
            p = f["properties"]
            if not p["parent_code"].startswith(prefix):
                continue
            u = by_building.get(p["id"])
            want["buildings"] += 1
            want["units"] += u[0] if u else 0
            want["households"] += u[1] if u else (p.get("households") or 0)
            want["population"] += u[2] if u else (p.get("population") or 0)
            want["by_use"][p["use"]] = want["by_use"].get(p["use"], 0) + 1
        got = api("GET", f"/api/units/{unit}/profile", token=ctx["op"])
        assert want["buildings"] > 0
        assert (got["buildings"], got["units"], got["households"], got["population"]) == \
            (want["buildings"], want["units"], want["households"], want["population"]), (unit, got, want)
        assert got["buildings_by_use"] == want["by_use"], (got, want)
    st, body = ctx["d"].json("GET", "/api/units/nope_1/profile", token=ctx["op"])
    assert st == 404 and body["error"]["field"] == "id", body
    st, body = ctx["d"].json("GET", "/api/units/110108010001001/people", token=ctx["op"])
    assert st == 404, body


def teardown():
    logs = ctx["d"].logs()
    assert ctx["d"].stop() == 0, "daemon did not stop cleanly on SIGTERM"
    for name in ("admin", "op", "planner", "张三", "李四"):
        assert ctx[name] not in logs, "a token reached the log"
    ctx["tmp"].__exit__(None, None, None)


# ---------------------------------------------------------------- catalogue

def test_categories_get():
    cats = api("GET", "/api/categories")["categories"]
    by = {c["code"]: c for c in cats}
    assert len(by) == len(cats), "a category listed twice"
    for c in cats:
        assert set(c) >= {"code", "parent", "name", "kind", "department", "active"}, c
        assert c["kind"] in ("event", "component") and c["name"], c
        assert c["parent"] is None or c["parent"] in by, f"{c['code']}: no parent {c['parent']}"
    # README: the classes after GB/T 30428.2
    named = {"E01": "市容环境", "E02": "宣传广告", "E03": "施工管理", "E04": "突发事件",
             "E05": "街面秩序", "C01": "公用设施", "C06": "其他设施"}
    for code, name in named.items():
        assert by[code]["name"] == name and by[code]["parent"] is None, by.get(code)
    assert by["E99"]["name"].startswith("其他") and by["E99"]["kind"] == "event", by["E99"]
    majors = [c for c in cats if c["parent"] is None]
    assert {c["code"] for c in majors} == {"E01", "E02", "E03", "E04", "E05", "E99",
                                          "C01", "C02", "C03", "C04", "C05", "C06"}
    for m in majors:
        assert m["kind"] == ("event" if m["code"][0] == "E" else "component"), m
        subs = [c for c in cats if c["parent"] == m["code"]]
        assert subs or m["code"] in ("E99", "C05", "C06"), f"{m['code']} has no sub-classes"
        for s in subs:
            assert s["code"].startswith(m["code"] + ".") and s["kind"] == m["kind"], s
    # a default department on the classes that route somewhere
    assert by["E04"]["department"] == "公安" and by["C01"]["department"] == "城管"
    # any role reads it
    assert api("GET", "/api/categories", token=ctx["张三"])["categories"] == cats


def _open311_services():
    st, _, body = ctx["d"].request("GET", q("/open311/v2/services.json", api_key=ctx["op"]))
    assert st == 200, body[:300]
    return {s["service_code"] for s in json.loads(body)}


def test_category_put():
    new = {"name": "共享单车乱停放", "kind": "event", "parent": "E05", "department": "城管"}
    js = api("PUT", "/api/categories/E05.98", new, token=ctx["admin"])
    assert js == dict(new, code="E05.98"), js
    by = {c["code"]: c for c in api("GET", "/api/categories")["categories"]}
    assert by["E05.98"] == dict(new, code="E05.98", active=1), by["E05.98"]
    # the same code again edits it; active may be a boolean
    api("PUT", "/api/categories/E05.98", dict(new, name="共享单车", active=False), token=ctx["admin"])
    by = {c["code"]: c for c in api("GET", "/api/categories")["categories"]}
    assert by["E05.98"]["name"] == "共享单车" and by["E05.98"]["active"] == 0, by["E05.98"]
    assert sum(1 for c in by if c == "E05.98") == 1
    # an inactive category is no Open311 service; an active one is
    assert "E05.98" not in _open311_services()
    api("PUT", "/api/categories/E05.98", dict(new, active=True), token=ctx["admin"])
    assert "E05.98" in _open311_services()
    # a case reported in it goes to its department
    inc = api("POST", "/api/incidents", {"category": "E05.98", "description": "人行道上堆满单车",
                                         "lon": 116.3262, "lat": 40.0032}, want=201)
    assert inc["properties"]["category"] == "E05.98" and inc["properties"]["department"] == "城管", inc


def test_time_limits_get():
    rows = api("GET", "/api/time-limits")["time_limits"]
    lim = {(r["category"], r["step"]): r["seconds"] for r in rows}
    assert len(lim) == len(rows), "a limit listed twice"
    # README: defaults register 1 h, dispatch 1 h, handle 24 h, verify 4 h, close 2 h
    assert {s: lim[("*", s)] for s in ("register", "dispatch", "handle", "verify", "close")} == \
        {"register": 3600, "dispatch": 3600, "handle": 86400, "verify": 14400, "close": 7200}, lim
    # 突发事件 E04 in minutes; 施工管理 E03 and 公用设施 C01 handle in days
    assert all(lim[("E04", s)] < 3 * 3600 for s in ("register", "dispatch", "handle")), lim
    assert lim[("E04", "register")] % 60 == 0 and lim[("E04", "register")] < 3600
    assert lim[("E03", "handle")] % 86400 == 0 and lim[("E03", "handle")] >= 86400
    assert lim[("C01", "handle")] % 86400 == 0 and lim[("C01", "handle")] >= 86400
    assert all(s in ("register", "dispatch", "handle", "verify", "close") and v > 0
               for (_, s), v in lim.items()), lim
    assert api("GET", "/api/time-limits", token=ctx["planner"])["time_limits"] == rows


def test_time_limit_put_sets_deadlines():
    body = {"category": "E05", "step": "register", "seconds": 1234}
    assert api("PUT", "/api/time-limits", body, token=ctx["admin"]) == body
    api("PUT", "/api/time-limits", dict(body, seconds=1500), token=ctx["admin"])
    rows = api("GET", "/api/time-limits")["time_limits"]
    mine = [r for r in rows if r["category"] == "E05" and r["step"] == "register"]
    assert mine == [{"category": "E05", "step": "register", "seconds": 1500}], mine
    # README: the category's own row, else its major class's, else *
    inc = api("POST", "/api/incidents", {"category": "E05.02", "description": "占道经营",
                                         "lon": 116.3262, "lat": 40.0032}, want=201)
    p = api("GET", f"/api/incidents/{inc['properties']['case_no']}")["properties"]
    assert p["status"] == "reported" and p["deadline"] - p["step_started"] == 1500, p
    api("PUT", "/api/time-limits", {"category": "E05.02", "step": "register", "seconds": 900},
        token=ctx["admin"])
    inc = api("POST", "/api/incidents", {"category": "E05.02", "description": "占道经营 2",
                                         "lon": 116.3262, "lat": 40.0032}, want=201)
    p = api("GET", f"/api/incidents/{inc['properties']['case_no']}")["properties"]
    assert p["deadline"] - p["step_started"] == 900, p
    inc = api("POST", "/api/incidents", {"category": "E01.01", "description": "暴露垃圾",
                                         "lon": 116.3262, "lat": 40.0032}, want=201)
    p = api("GET", f"/api/incidents/{inc['properties']['case_no']}")["properties"]
    assert p["deadline"] - p["step_started"] == 3600, p


# ---------------------------------------------------------------- devices and workers

def test_devices():
    js = api("POST", "/api/devices", {"device_id": "zs-phone", "worker": "张三", "label": "工作手机"}, want=201)
    uid = js["user_id"]
    assert js == {"device_id": "zs-phone", "user_id": uid, "worker": "张三", "crs": "EPSG:4326"}, js
    # the worker by id, a tracker that speaks GCJ-02
    js = api("POST", "/api/devices", {"device_id": "zs-gcj", "worker": uid, "crs": "gcj02"},
             token=ctx["admin"], want=201)
    assert js == {"device_id": "zs-gcj", "user_id": uid, "worker": "张三", "crs": "gcj02"}, js
    js = api("POST", "/api/devices", {"device_id": "ls-phone", "worker": "李四"}, want=201)
    ctx["uid"] = {"张三": uid, "李四": js["user_id"]}
    devs = {x["device_id"]: x for x in api("GET", "/api/devices")["devices"]}
    assert set(devs) == {"zs-phone", "zs-gcj", "ls-phone"}, devs
    assert devs["zs-phone"]["worker"] == "张三" and devs["zs-phone"]["user_id"] == uid
    assert devs["zs-phone"]["label"] == "工作手机" and devs["zs-phone"]["crs"] == "EPSG:4326"
    assert devs["zs-gcj"]["crs"] == "gcj02" and devs["ls-phone"]["worker"] == "李四"
    for x in devs.values():
        assert x["disabled"] == 0, x
        datetime.fromisoformat(x["created_at"].replace("Z", "+00:00"))


def _grid_centres():
    """(grid id, name, [lon, lat]) for grids whose vertex mean lies in them."""
    out = []
    feats = ctx["fc_grids"]["features"]
    pts = []
    for f in feats:
        ring = f["geometry"]["coordinates"][0]
        if isinstance(ring[0][0], list):
            ring = ring[0]
        pts.append((round(sum(p[0] for p in ring) / len(ring), 7), round(sum(p[1] for p in ring) / len(ring), 7)))
    js = api("POST", "/api/geotag", [list(p) for p in pts])
    for f, p, r in zip(feats, pts, js["results"]):
        g = r["chain"]["grid"]
        if g and g["id"] == str(f["properties"]["id"]):
            out.append((g["id"], g["name"], p, f["geometry"]))
    return out


def test_worker_grids():
    centres = _grid_centres()
    assert len(centres) >= 3
    ctx["centres"] = centres
    g1, g2 = centres[0][0], centres[1][0]
    for who in ("李四", str(ctx["uid"]["李四"])):   # a user name or a user id
        js = api("PUT", f"/api/workers/{urllib.parse.quote(who)}/grids", {"grids": [g1, g2]})
        assert js == {"id": ctx["uid"]["李四"], "name": "李四", "grids": [g1, g2]}, js
    js = api("GET", f"/api/workers/{ctx['uid']['李四']}/grids", token=ctx["planner"])
    assert js == {"id": ctx["uid"]["李四"], "name": "李四", "grids": [g1, g2]}, js
    # a planner assigns too; the list is replaced, not added to
    js = api("PUT", "/api/workers/" + urllib.parse.quote("李四") + "/grids", {"grids": [g2]}, token=ctx["planner"])
    assert js["grids"] == [g2], js
    assert api("GET", "/api/workers/" + urllib.parse.quote("李四") + "/grids")["grids"] == [g2]
    js = api("PUT", "/api/workers/" + urllib.parse.quote("张三") + "/grids", {"grids": []})
    assert js["grids"] == [], js
    # a worker reads their own
    js = api("GET", "/api/workers/" + urllib.parse.quote("李四") + "/grids", token=ctx["李四"])
    assert js["grids"] == [g2], js


def test_workers_list():
    ws = {w["name"]: w for w in api("GET", "/api/workers")["workers"]}
    assert set(ws) == {"张三", "李四"}, ws
    zs, ls = ws["张三"], ws["李四"]
    assert zs["id"] == ctx["uid"]["张三"] and sorted(zs["devices"]) == ["zs-gcj", "zs-phone"], zs
    assert ls["devices"] == ["ls-phone"] and ls["grids"] == [ctx["centres"][1][0]], ls
    assert zs["grids"] == [] and zs["latest"] is None and ls["latest"] is None, ws
    # a fix from now on: the newest fix, with its grid
    gid, _, p, _ = ctx["centres"][2]
    t = int(time.time()) - 5
    send_fixes("ls-phone", [(t, p)])
    ls = {w["name"]: w for w in api("GET", "/api/workers")["workers"]}["李四"]
    assert ls["latest"]["t"] == t * 1000 and ls["latest"]["grid_id"] == gid, ls
    assert [round(v, 7) for v in ls["latest"]["coordinates"]] == list(p), ls
    # an older fix (an offline phone catching up) does not replace it
    send_fixes("ls-phone", [(t - 600, ctx["centres"][0][2])])
    ls = {w["name"]: w for w in api("GET", "/api/workers")["workers"]}["李四"]
    assert ls["latest"]["t"] == t * 1000, ls


# ---------------------------------------------------------------- a worker's day: track

def test_track():
    """张三 walks east 4 × 60 m, stops 4 minutes (a few metres of GPS jitter),
    walks north 4 × 60 m, one fix every 30 s."""
    _, _, start, _ = ctx["centres"][3] if len(ctx["centres"]) > 3 else ctx["centres"][0]
    t0 = local_ts(ctx["day"], 10)
    fixes = [(t0 + 30 * k, moved(start, 60 * k, 0)) for k in range(4)]
    s = moved(start, 240, 0)
    jitter = [(0, 0), (2, 0), (0, 2), (-2, 0), (0, -2), (1, 1), (-1, -1), (1, -1), (0, 0)]
    stop = [(t0 + 120 + 30 * k, moved(s, *jitter[k])) for k in range(9)]
    fixes += stop
    fixes += [(t0 + 390 + 30 * k, moved(s, 0, 60 * (k + 1))) for k in range(4)]
    send_fixes("zs-phone", fixes)
    # the same fixes again (a phone retrying): stored once
    send_fixes("zs-phone", fixes[:3])
    ctx["zs_fixes"] = fixes

    day0 = local_ts(ctx["day"], 0)
    path = q(f"/api/workers/{ctx['uid']['张三']}/track", **{"from": day0, "to": day0 + 86400})
    f = api("GET", path)
    assert f["type"] == "Feature" and f["id"] == ctx["uid"]["张三"], f
    p = f["properties"]
    n = len(fixes)
    assert p["user_id"] == ctx["uid"]["张三"] and p["worker"] == "张三", p
    assert p["fixes"] == n and p["vertices"] == n and p["zoom"] is None, p
    assert p["first_ms"] == fixes[0][0] * 1000 and p["last_ms"] == fixes[-1][0] * 1000, p
    # no zoom: every fix, in time order
    assert f["geometry"]["type"] == "LineString", f["geometry"]
    got = [tuple(round(v, 7) for v in c) for c in f["geometry"]["coordinates"]]
    assert got == [c for _, c in fixes], got
    want = sum(haversine(*a[1], *b[1]) for a, b in zip(fixes, fixes[1:]))
    assert abs(p["distance_m"] - want) <= 1, (p["distance_m"], want)
    # one stop: the 9 fixes within 50 m over 4 minutes, at their mean
    assert len(p["stops"]) == 1, p["stops"]
    st = p["stops"][0]
    assert (st["from_ms"], st["to_ms"], st["fixes"]) == (stop[0][0] * 1000, stop[-1][0] * 1000, 9), st
    mlon = sum(c[0] for _, c in stop) / 9
    mlat = sum(c[1] for _, c in stop) / 9
    assert abs(st["lon"] - mlon) < 2e-7 and abs(st["lat"] - mlat) < 2e-7, (st, mlon, mlat)
    # the grids visited, in order
    ctx["zs_grids"] = grid_ids([c for _, c in fixes])
    assert p["grids"] == visits(fixes, ctx["zs_grids"]), (p["grids"], ctx["zs_grids"])
    # from and to as ISO 8601 with an offset
    assert datetime.fromisoformat(p["from"]).timestamp() == day0, p["from"]
    assert datetime.fromisoformat(p["to"]).timestamp() == day0 + 86400, p["to"]

    # a zoomed-out map gets fewer vertices (the jitter goes), the same ends
    z = api("GET", path + "&zoom=14")
    zp = z["properties"]
    coords = z["geometry"]["coordinates"]
    assert zp["zoom"] == 14 and zp["fixes"] == n and zp["vertices"] == len(coords) < n, zp
    assert [round(v, 7) for v in coords[0]] == list(fixes[0][1])
    assert [round(v, 7) for v in coords[-1]] == list(fixes[-1][1])
    assert zp["distance_m"] == p["distance_m"] and zp["stops"] == p["stops"]

    # the worker reads their own track; a date range as dates (local midnight)
    own = api("GET", q(f"/api/workers/{urllib.parse.quote('张三')}/track",
                       **{"from": ctx["day"].isoformat(), "to": (ctx["day"] + timedelta(days=1)).isoformat()}),
              token=ctx["张三"])
    assert own["properties"]["fixes"] == n and own["geometry"] == f["geometry"]
    # only part of the day: the fixes in it
    part = api("GET", q(path.split("?")[0], **{"from": t0 + 100, "to": t0 + 400}))
    assert part["properties"]["fixes"] == sum(1 for t, _ in fixes if t0 + 100 <= t < t0 + 400), part["properties"]


def test_track_gcj02_device():
    """A tracker registered with crs gcj02 sends GCJ-02; the track is WGS 84,
    where the daemon's own geotag of that GCJ-02 point puts it."""
    gcj = (116.3262, 40.0032)
    t = local_ts(ctx["day"] - timedelta(days=1), 9)
    send_fixes("zs-gcj", [(t, gcj)])
    ref = api("GET", q("/api/geotag", lon=gcj[0], lat=gcj[1], crs="gcj02"))
    f = api("GET", q(f"/api/workers/{ctx['uid']['张三']}/track", **{"from": t - 60, "to": t + 60}))
    assert f["properties"]["fixes"] == 1, f["properties"]
    lon, lat = f["geometry"]["coordinates"][0]
    assert haversine(lon, lat, ref["lon"], ref["lat"]) < 0.05, (lon, lat, ref)
    assert 100 < haversine(lon, lat, *gcj) < 1000   # the offset was really removed


# ---------------------------------------------------------------- a worker's day: coverage

def _straight_walk_inside():
    """A grid, and a straight east-west walk of length L in it whose 25 m
    band lies wholly inside that grid (checked point by point with geotag)."""
    for gid, name, c, geom in ctx["centres"]:
        for half in (60, 40, 25):
            a, b = moved(c, -half, 0), moved(c, half, 0)
            probe = [moved(c, x, y) for x in range(-half - 27, half + 28, 9) for y in (-27, 0, 27)]
            probe += [moved(e, 27 * math.cos(k * math.pi / 8), 27 * math.sin(k * math.pi / 8))
                      for e in (a, b) for k in range(16)]
            if all(g == gid for g in grid_ids(probe)):
                return gid, name, geom, a, b
    raise AssertionError("no grid holds a 50 m walk with a 25 m margin")


def test_coverage_area():
    gid, name, geom, a, b = _straight_walk_inside()
    # 李四 patrols gid; walks a → b, 9 fixes every 10 s
    api("PUT", "/api/workers/" + urllib.parse.quote("李四") + "/grids", {"grids": [gid]})
    t0 = local_ts(ctx["day"], 11)
    steps = 8
    fixes = [(t0 + 10 * k, (round(a[0] + (b[0] - a[0]) * k / steps, 7), a[1])) for k in range(steps + 1)]
    send_fixes("ls-phone", fixes)
    L = sum(haversine(*p[1], *q_[1]) for p, q_ in zip(fixes, fixes[1:]))
    rings = geom["coordinates"] if geom["type"] == "Polygon" else geom["coordinates"][0]
    total = area_m2(rings, a)
    ctx["cov"] = (gid, name, geom, a, fixes)

    date = ctx["day"].isoformat()
    js = api("GET", q(f"/api/workers/{urllib.parse.quote('李四')}/coverage", date=date))
    assert js["user_id"] == ctx["uid"]["李四"] and js["worker"] == "李四" and js["date"] == date, js
    assert js["distance_m"] == 25 and js["basis"] == "area" and js["fixes"] == len(fixes), js
    assert len(js["grids"]) == 1, js["grids"]   # the assigned grids
    g = js["grids"][0]
    assert g["grid_id"] == gid and g["name"] == name and g["fixes_in_grid"] == len(fixes), g
    assert abs(g["total_m2"] - total) <= 0.01 * total, (g, total)
    # the band of a straight line: 2·D·L plus the round ends
    for dist in (25, 10):
        want = 2 * dist * L + math.pi * dist * dist
        if dist != 25:
            g = api("GET", q(f"/api/workers/{ctx['uid']['李四']}/coverage", date=date, distance=dist))["grids"][0]
        assert abs(g["covered_m2"] - want) <= 0.015 * want, (dist, g, want)
        assert abs(g["ratio"] - g["covered_m2"] / g["total_m2"]) <= 0.0002, g
    # another grid asked for: nothing of it walked
    other = next(c for c in ctx["centres"] if c[0] != gid)
    js = api("GET", q(f"/api/workers/{ctx['uid']['李四']}/coverage", date=date, grid=other[0]))
    g = js["grids"][0]
    assert (g["grid_id"], g["name"], g["fixes_in_grid"], g["covered_m2"], g["ratio"]) == \
        (other[0], other[1], 0, 0, 0), g
    # a day with no fixes: the assigned grid, nothing covered
    js = api("GET", q(f"/api/workers/{ctx['uid']['李四']}/coverage",
                      date=(ctx["day"] - timedelta(days=3)).isoformat()))
    assert js["fixes"] == 0 and [x["grid_id"] for x in js["grids"]] == [gid], js
    assert js["grids"][0].get("covered_m2", 0) == 0, js


def test_coverage_buildings():
    gid, _, _, a, fixes = ctx["cov"]
    st, hdrs, body = ctx["d"].request("GET", q("/ogc/collections/building/items", parent=gid, limit=10000),
                                      token=ctx["op"])
    assert st == 200, body[:300]
    blds = json.loads(body)["features"]
    line = plane([c for _, c in fixes], a)
    total = touched_min = borderline = 0
    for f in blds:
        polys = [f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon" else f["geometry"]["coordinates"]
        total += sum(area_m2(rings, a) for rings in polys)
        # distance from the walked line to the footprint, on the plane
        dmin = math.inf
        for rings in polys:
            outer = plane(rings[0], a)
            if any(inside(p, outer) for p in line):
                dmin = 0
            for r in rings:
                xy = plane(r, a)
                for e1, e2 in zip(xy, xy[1:] + xy[:1]):
                    dmin = min(dmin, min(seg_dist(p, e1, e2) for p in line),
                               min(seg_dist(e, l1, l2) for e in (e1, e2) for l1, l2 in zip(line, line[1:])))
        touched_min += dmin < 24.5
        borderline += 24.5 <= dmin <= 25.5
    js = api("GET", q(f"/api/workers/{urllib.parse.quote('李四')}/coverage", date=ctx["day"].isoformat(),
                      basis="buildings"))
    assert js["basis"] == "buildings", js
    g = js["grids"][0]
    assert g["grid_id"] == gid and g["buildings"] == len(blds), (g, len(blds))
    assert len(blds) > 0, f"grid {gid} has no buildings: pick another walk"
    assert abs(g["total_m2"] - total) <= 0.01 * total + 1, (g, total)
    assert touched_min <= g["buildings_touched"] <= touched_min + borderline, (g, touched_min, borderline)
    assert 0 <= g["covered_m2"] <= g["total_m2"] and (g["covered_m2"] > 0) == (g["buildings_touched"] > 0), g
    assert abs(g["ratio"] - g["covered_m2"] / g["total_m2"]) <= 0.0002, g


def test_coverage_visited_grids():
    """张三 has no assigned grids: coverage is of the grids visited."""
    want = []
    for g in ctx["zs_grids"]:
        if g and g not in want:
            want.append(g)
    js = api("GET", q(f"/api/workers/{ctx['uid']['张三']}/coverage", date=ctx["day"].isoformat()))
    assert js["fixes"] == len(ctx["zs_fixes"]), js
    assert [g["grid_id"] for g in js["grids"]] == want, (js["grids"], want)
    for g in js["grids"]:
        assert g["fixes_in_grid"] == ctx["zs_grids"].count(g["grid_id"]), g
        assert 0 < g["ratio"] <= 1 and 0 < g["covered_m2"] <= g["total_m2"], g


if __name__ == "__main__":
    setup()
    try:
        main([test_categories_get, test_category_put, test_time_limits_get,
              test_time_limit_put_sets_deadlines, test_devices, test_worker_grids, test_workers_list,
              test_track, test_track_gcj02_device, test_coverage_area, test_coverage_buildings,
              test_coverage_visited_grids, test_unit_profile, teardown])
    finally:
        if ctx.get("d"):
            ctx["d"].stop()
