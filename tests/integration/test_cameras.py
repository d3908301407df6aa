#!/usr/bin/env python3
"""The camera registry on the real daemon and a real SpatiaLite file: CRUD by
every role (credentials for admins only), 400s naming the field, 409, 404;
the change log (the /live outbox) without credentials; `gridcc cameras
import` of CSV and GeoJSON with bad features named by file, feature and
line; the OGC collection read by GDAL's OAPIF driver; the cameras that
see a case listed on it; and the grid, community and street a camera stands
in, as the layers are now (a re-drawn grid shows without touching the
camera)."""
import json
import math
import os
import sqlite3
import subprocess
import time

from harness import Daemon, TempDir, expect_error, main, run

ctx = {}
SECRET = "Sekr1t-Pw"   # in every credentialed URL: must never leave the admin's answers
P = (116.33, 39.99)    # a spot in the sample district


def off(lon, lat, east_m, north_m):
    return (lon + east_m / (111320 * math.cos(math.radians(lat))), lat + north_m / 110574)


def cam(cid, lon, lat, heading, fov=60, range_m=200, **kw):
    body = {"id": cid, "name": f"camera {cid}", "department": "公安",
            "url": f"rtsp://admin:{SECRET}@10.1.2.3:554/Streaming/Channels/101",
            "lon": lon, "lat": lat, "heading": heading, "fov": fov, "range_m": range_m,
            "height_m": 8}
    body.update(kw)
    return body


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["dir"] = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    tok = ctx["tok"] = {}
    for name, role, dept in [("adm", "admin", None), ("op", "operator", None),
                             ("pl", "planner", None), ("ga", "department", "公安"),
                             ("wk", "worker", None), ("rs", "resident", None)]:
        args = ["user", "add", name, "--role", role, "--db", db]
        if dept:
            args += ["--department", dept]
        tok[role] = run(*args, check=0)[1].strip()
    ctx["d"] = Daemon(db)


def teardown():
    ctx["d"].stop()
    ctx["tmp"].__exit__(None, None, None)


def api(method, path, role=None, body=None):
    return ctx["d"].json(method, path, body, ctx["tok"].get(role) if role else None)


def test_crud_by_role():
    st, c = api("POST", "/api/cameras", "admin", cam("crud-1", *P, 350, fov=40))
    assert st == 201, c
    assert SECRET in c["url"] and c["state"] == "connecting" and c["reason"] is None
    assert c["sector"]["type"] == "Polygon" and c["state_at"]
    for role in ("operator", "planner", "department"):
        st, g = api("GET", "/api/cameras/crud-1", role)
        assert st == 200, (role, g)
        assert g["url"] == "rtsp://10.1.2.3:554/Streaming/Channels/101", g["url"]
        assert SECRET not in json.dumps(g)
        st, lst = api("GET", "/api/cameras", role)
        assert st == 200 and SECRET not in json.dumps(lst)
        assert "crud-1" in [x["id"] for x in lst["cameras"]]
    st, g = api("GET", "/api/cameras/crud-1", "admin")
    assert SECRET in g["url"]
    for role in ("worker", "resident"):
        assert api("GET", "/api/cameras", role)[0] == 403
        assert api("GET", "/api/cameras/crud-1", role)[0] == 403
    assert api("GET", "/api/cameras")[0] == 401
    for role in ("operator", "planner", "department"):
        assert api("POST", "/api/cameras", role, cam("nope", *P, 0))[0] == 403
        assert api("PUT", "/api/cameras/crud-1", role, cam("crud-1", *P, 0))[0] == 403
        assert api("DELETE", "/api/cameras/crud-1", role)[0] == 403
    st, g = api("PUT", "/api/cameras/crud-1", "admin", cam("crud-1", *P, 10, fov=90, name="新名"))
    assert st == 200 and g["heading"] == 10 and g["fov"] == 90 and g["name"] == "新名", g
    # the body may leave the id to the path
    body = cam("crud-1", *P, 20)
    del body["id"]
    assert api("PUT", "/api/cameras/crud-1", "admin", body)[0] == 200
    assert api("DELETE", "/api/cameras/crud-1", "admin")[0] == 204
    assert api("GET", "/api/cameras/crud-1", "operator")[0] == 404


def test_bad_input_names_the_field():
    cases = [
        ({k: v for k, v in cam("x", *P, 0).items() if k != "id"}, "id"),
        (cam("bad id!", *P, 0), "id"),
        (cam("x", *P, 0, url="http://10.1.2.3/x"), "url"),
        (cam("x", *P, 0, url="rtsp://"), "url"),
        (cam("x", *P, 360), "heading"),
        (cam("x", *P, -5), "heading"),
        (cam("x", *P, 0, fov=0), "fov"),
        (cam("x", *P, 0, fov=400), "fov"),
        (cam("x", *P, 0, range_m=0), "range_m"),
        (cam("x", *P, 0, range_m=-3), "range_m"),
        (cam("x", 200, 40, 0), "lon"),
        (cam("x", 500000, -2000000, 0, crs="EPSG:32650"), "lon"),   # south of UTM 50N's area
        (cam("x", 2.35, 48.85, 0, crs="gcj02"), "lon"),             # Paris: no GCJ-02 there
        (cam("x", *P, 0, crs="EPSG:0"), "crs"),
        ({**cam("x", *P, 0), "heading": "north"}, "heading"),
    ]
    for body, field in cases:
        err = expect_error(api("POST", "/api/cameras", "admin", body), 400, field)
        assert SECRET not in err["message"], err
    # x/y in a projected system are reprojected (UTM 50N, near P)
    st, c = api("POST", "/api/cameras", "admin", cam("utm-1", 443000, 4426500, 0,
                                                      crs="EPSG:32650"))
    assert st == 201, c
    assert abs(c["lon"] - 116.33) < 0.02 and abs(c["lat"] - 39.99) < 0.02, c
    expect_error(api("PUT", "/api/cameras/utm-1", "admin", cam("other", *P, 0)), 400, "id")
    assert api("DELETE", "/api/cameras/utm-1", "admin")[0] == 204


def test_conflict_and_not_found():
    assert api("POST", "/api/cameras", "admin", cam("dup-1", *P, 0))[0] == 201
    expect_error(api("POST", "/api/cameras", "admin", cam("dup-1", *P, 90)), 409, "id")
    expect_error(api("GET", "/api/cameras/ghost", "operator"), 404)
    expect_error(api("PUT", "/api/cameras/ghost", "admin", cam("ghost", *P, 0)), 404)
    expect_error(api("DELETE", "/api/cameras/ghost", "admin"), 404)
    assert api("DELETE", "/api/cameras/dup-1", "admin")[0] == 204


def changes():
    con = sqlite3.connect(ctx["db"])
    try:
        return con.execute("select seq, topic, id, data from change_log").fetchall()
    finally:
        con.close()


def test_change_log_without_credentials():
    before = max(s for s, *_ in changes())
    assert api("POST", "/api/cameras", "admin", cam("log-1", *P, 0))[0] == 201
    assert api("PUT", "/api/cameras/log-1", "admin", cam("log-1", *P, 45))[0] == 200
    assert api("DELETE", "/api/cameras/log-1", "admin")[0] == 204
    rows = [r for r in changes() if r[0] > before and r[1] == "cameras"]
    assert all(r[2] == "log-1" for r in rows), rows
    # the video engine's word on the camera (retrying: nothing listens at
    # 10.1.2.3) may come between the edits, and a PUT keeps the state it
    # said: the edits are the rows whose camera, health aside, is new
    health = ("state", "reason", "state_at", "updated_at")
    edits, last = [], None
    for r in rows:
        d = json.loads(r[3])
        key = "deleted" if d.get("deleted") else json.dumps(
            {k: v for k, v in d["properties"].items() if k not in health}, sort_keys=True)
        if key != last:
            edits.append(d)
        last = key
    assert len(edits) == 3, rows
    created, updated, deleted = edits
    assert created["type"] == "Feature" and created["geometry"]["type"] == "Point"
    p = created["properties"]
    assert p["url"] == "rtsp://10.1.2.3:554/Streaming/Channels/101" and p["state"] == "connecting"
    assert "reason" in p and p["sector"]["type"] == "Polygon"
    assert updated["properties"]["heading"] == 45
    assert deleted == {"id": "log-1", "deleted": True}
    # the whole change log, the daemon's log: never the password
    everything = json.dumps(changes(), ensure_ascii=False)
    assert SECRET not in everything
    assert "admin:" not in everything
    assert SECRET not in ctx["d"].logs()


def write(name, text):
    path = os.path.join(ctx["dir"], name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_cli_import_csv_and_geojson():
    db = ctx["db"]
    good = write("cams.csv",
                 "id,name,department,url,lon,lat,heading,fov,range_m,height_m\n"
                 f"csv-1,南门,城管,rtsp://u:{SECRET}@10.0.0.9/a,116.331,39.991,90,60,150,6\n"
                 "csv-2,北门,,rtsp://10.0.0.10:8554/b,116.332,39.992,270,45,120,\n")
    st, out, err = run("cameras", "import", good, "--db", db)
    assert st == 0, err
    assert "2 cameras: 2 created, 0 replaced" in out, out
    assert SECRET not in out + err
    st, out, err = run("cameras", "import", good, "--db", db)
    assert st == 0 and "0 created, 2 replaced" in out, out
    st, c = api("GET", "/api/cameras/csv-1", "operator")
    assert st == 200 and c["name"] == "南门" and c["department"] == "城管" and c["height_m"] == 6
    st, c = api("GET", "/api/cameras/csv-2", "operator")
    assert c["department"] is None and c["height_m"] is None
    wkt = write("wkt.csv", 'id,url,WKT,heading,fov,range_m\n'
                           'wkt-1,rtsp://h/x,"POINT (116.333 39.993)",10,30,100\n')
    st, out, err = run("cameras", "import", wkt, "--db", db)
    assert st == 0, err
    assert api("GET", "/api/cameras/wkt-1", "operator")[1]["lon"] == 116.333

    badcsv = write("bad.csv",
                   "id,url,lon,lat,heading,fov,range_m\n"
                   "bc-1,rtsp://h/1,116.33,39.99,0,30,100\n"
                   f"bc-2,ftp://u:{SECRET}@h/2,116.33,39.99,0,30,100\n"
                   "bc-3,rtsp://h/3,116.33,39.99,0,0,100\n")
    st, out, err = run("cameras", "import", badcsv, "--db", db)
    assert st == 1, (out, err)
    assert f"{badcsv}: feature 2 (line 3): url:" in err, err
    assert f"{badcsv}: feature 3 (line 4): fov:" in err, err
    assert "nothing imported" in err and SECRET not in err
    assert api("GET", "/api/cameras/bc-1", "operator")[0] == 404   # the whole file refused

    feats = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.33, 39.99]},
         "properties": {"id": "gj-1", "url": "rtsp://h/1", "heading": 0, "fov": 30,
                        "range_m": 100}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.33, 39.99]},
         "properties": {"id": "gj-2", "url": "rtsp://h/2", "heading": 400, "fov": 30,
                        "range_m": 100}},
        {"type": "Feature", "geometry": {"type": "LineString",
                                         "coordinates": [[116.33, 39.99], [116.34, 39.99]]},
         "properties": {"id": "gj-3", "url": "rtsp://h/3", "heading": 0, "fov": 30,
                        "range_m": 100}},
    ]
    text = '{"type": "FeatureCollection",\n "features": [\n' + \
        ",\n".join(json.dumps(f, indent=1) for f in feats) + "\n]}\n"
    badgj = write("bad.geojson", text)
    lines = text.split("\n")
    # the line each feature's object opens on
    opens = [i + 1 for i, l in enumerate(lines) if i > 0 and l.startswith("{")]
    assert len(opens) == 3
    st, out, err = run("cameras", "import", badgj, "--db", db)
    assert st == 1, (out, err)
    assert f"{badgj}: feature 2 (line {opens[1]}): heading:" in err, err
    assert f"{badgj}: feature 3 (line {opens[2]}): geometry:" in err, err
    assert api("GET", "/api/cameras/gj-1", "operator")[0] == 404

    sample = os.path.join(os.environ.get("GRIDCC_LAYERS", "layers"), "cameras.geojson")
    st, out, err = run("cameras", "import", sample, "--db", db)
    assert st == 0 and "24 cameras: 24 created" in out, (out, err)


def gdal(*args, role="planner"):
    env = dict(os.environ)
    if role:
        env["GDAL_HTTP_HEADERS"] = "Authorization: Bearer " + ctx["tok"][role]
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_ogc_collection_through_gdal():
    st, lst = api("GET", "/api/cameras", "operator")
    n = lst["count"]
    assert n >= 24
    url = f"OAPIF:http://127.0.0.1:{ctx['d'].port}/ogc"
    st, out, err = gdal("ogrinfo", "-ro", "-al", "-so", url, "cameras")
    assert st == 0, err
    assert f"Feature Count: {n}" in out, out
    assert "Polygon" in out, out
    # every page, by GDAL following our next links
    st, out, err = gdal("ogr2ogr", "-f", "GeoJSON", "/vsistdout/", url, "cameras")
    assert st == 0, err
    fc = json.loads(out)
    assert len(fc["features"]) == n
    assert all(f["geometry"]["type"] == "Polygon" for f in fc["features"])
    assert SECRET not in out and "demo:demo" not in out
    one = [f for f in fc["features"] if f["properties"]["id"] == "cam1"][0]
    assert one["properties"]["url"] == "rtsp://127.0.0.1:8554/cam1"
    # bbox by the sectors' extent, and paging with next links
    st, page = api("GET", "/ogc/collections/cameras/items?limit=5", "planner")
    assert st == 200 and page["numberReturned"] == 5 and page["numberMatched"] == n
    assert any(l["rel"] == "next" for l in page["links"])
    st, page = api("GET", "/ogc/collections/cameras/items?bbox=0,0,1,1", "planner")
    assert st == 200 and page["numberMatched"] == 0
    # workers and residents: not listed, not readable
    st, cols = api("GET", "/ogc/collections", "worker")
    assert "cameras" not in [c["id"] for c in cols["collections"]]
    st, cols = api("GET", "/ogc/collections", "planner")
    assert "cameras" in [c["id"] for c in cols["collections"]]
    assert api("GET", "/ogc/collections/cameras/items", "worker")[0] == 403


def test_cameras_that_see_a_case():
    west = off(*P, -100, 0)
    east = off(*P, 100, 0)
    assert api("POST", "/api/cameras", "admin", cam("see-w", *west, 90, fov=40, range_m=150))[0] == 201
    assert api("POST", "/api/cameras", "admin", cam("see-e", *east, 270, fov=40, range_m=150))[0] == 201
    # behind see-w, so in neither sector
    assert api("POST", "/api/cameras", "admin", cam("see-x", *off(*P, 0, 300), 0))[0] == 201
    st, f = api("POST", "/api/incidents", "operator",
                {"category": "E05.04", "description": "车辆占道", "lon": P[0], "lat": P[1]})
    assert st == 201, f
    case = f["id"]
    st, g = api("GET", f"/api/incidents/{case}", "operator")
    assert st == 200, g
    cams = g["properties"]["cameras"]
    assert sorted(c["id"] for c in cams) == ["see-e", "see-w"], cams
    for c in cams:
        assert set(c) == {"id", "name", "distance_m", "bearing", "snapshot", "clip",
                          "media_state"}, c
        assert abs(c["distance_m"] - 100) < 0.5, c
        assert c["snapshot"] is None and c["clip"] is None and c["media_state"] == "pending"
    bear = {c["id"]: c["bearing"] for c in cams}
    assert abs(bear["see-w"] - 90) < 0.1 and abs(bear["see-e"] - 270) < 0.1, bear
    # a case 1 km away: no camera
    far = off(*P, 0, -1000)
    st, f = api("POST", "/api/incidents", "operator",
                {"category": "E05.04", "description": "远处", "lon": far[0], "lat": far[1]})
    assert st == 201, f
    st, g = api("GET", f"/api/incidents/{f['id']}", "operator")
    assert g["properties"]["cameras"] == [], g["properties"]["cameras"]
    # the case's own visibility: E05.04 goes to 公安, so their desk sees it;
    # a resident who did not report it does not
    st, g = api("GET", f"/api/incidents/{case}", "department")
    assert st == 200 and len(g["properties"]["cameras"]) == 2
    assert api("GET", f"/api/incidents/{case}", "resident")[0] == 404
    # Open311 passes the same way in
    st, h, data = ctx["d"].request(
        "POST", "/open311/v2/requests.json",
        "service_code=E05.04&description=open311&long=%f&lat=%f" % P,
        token=ctx["tok"]["operator"],
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st in (200, 201), (st, data)
    con = sqlite3.connect(ctx["db"])
    n = con.execute("select count(*) from incident_cameras ic join incidents i on "
                    "i.id = ic.incident_id where i.description = 'open311'").fetchone()[0]
    con.close()
    assert n == 2, n


# Seeded units (layers/): the grid, community and street holding each spot.
IN_ZGC = (116.33, 39.99)     # 中关村街道 › 怡新园社区 › its 1st grid
IN_XYL = (116.35, 40.00)     # 学院路街道 › 福光村社区 › its 8th grid
OUTSIDE = (116.37, 40.01)    # east of the district: no unit holds it
PLACE = ("grid_id", "grid_name", "community_id", "community_name", "street_id", "street_name")
ZGC = ("110108011001001", "怡新园社区第1网格", "110108011001", "怡新园社区",
       "110108011000", "中关村街道")
XYL = ("110108010002008", "福光村社区第8网格", "110108010002", "福光村社区",
       "110108010000", "学院路街道")


def place(obj):
    return tuple(obj[k] for k in PLACE)


def every_read(cid):
    """The camera as GET one, GET all and the OGC items (one and the list) give it."""
    st, one = api("GET", f"/api/cameras/{cid}", "operator")
    assert st == 200, one
    st, lst = api("GET", "/api/cameras", "planner")
    listed = [c for c in lst["cameras"] if c["id"] == cid]
    st, f = api("GET", f"/ogc/collections/cameras/items/{cid}", "planner")
    assert st == 200, f
    st, fc = api("GET", "/ogc/collections/cameras/items?limit=1000", "department")
    items = [x for x in fc["features"] if x["id"] == cid]
    assert len(listed) == 1 and len(items) == 1, (listed, items)
    return [one, listed[0], f["properties"], items[0]["properties"]]


def import_grids(path):
    st, out, err = run("import", path, "--level", "grid", "--parent-field", "parent_code",
                       "--db", ctx["db"])
    assert st == 0, (out, err)


def until(pred, what, timeout=60):
    """Polls until pred() gives something true (the daemon rebuilds its index
    off the loop after an import by another process)."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_cameras_know_their_grid():
    st, c = api("POST", "/api/cameras", "admin", cam("where-1", *IN_ZGC, 0))
    assert st == 201, c
    assert place(c) == ZGC, c
    # beside the registry's fields, which stay as they were
    assert set(c) == {"id", "name", "department", "url", "lon", "lat", "heading", "fov",
                      "range_m", "height_m", "state", "reason", "state_at", "created_at",
                      "updated_at", "sector", "transport", *PLACE}, sorted(c)
    for r in every_read("where-1"):
        assert place(r) == ZGC, r
    # moved into another street's grid
    st, c = api("PUT", "/api/cameras/where-1", "admin", cam("where-1", *IN_XYL, 90))
    assert st == 200 and place(c) == XYL, c
    for r in every_read("where-1"):
        assert place(r) == XYL, r
    # outside every unit: nulls, not missing
    st, c = api("POST", "/api/cameras", "admin", cam("where-2", *OUTSIDE, 0))
    assert st == 201 and place(c) == (None,) * 6, c
    for r in every_read("where-2"):
        assert place(r) == (None,) * 6, r
    # the planner re-draws: the grid under where-1 gets another id and name in
    # a re-import (another process); the camera, untouched, says so
    grids = os.path.join(os.environ.get("GRIDCC_LAYERS", "layers"), "grids.geojson")
    with open(grids) as f:
        fc = json.load(f)
    for feat in fc["features"]:
        if feat["properties"]["id"] == XYL[0]:
            feat["properties"]["id"] = "redrawn-8"
            feat["properties"]["name"] = "重划网格"
    redrawn = write("grids.geojson", json.dumps(fc, ensure_ascii=False))
    import_grids(redrawn)
    try:
        until(lambda: api("GET", "/api/cameras/where-1", "operator")[1]["grid_id"] == "redrawn-8",
              "where-1 in the re-drawn grid")
        for r in every_read("where-1"):
            assert place(r) == ("redrawn-8", "重划网格") + XYL[2:], r
    finally:
        import_grids(grids)
        until(lambda: api("GET", "/api/cameras/where-1", "operator")[1]["grid_id"] == XYL[0],
              "the seeded grids back")
    assert api("DELETE", "/api/cameras/where-1", "admin")[0] == 204
    assert api("DELETE", "/api/cameras/where-2", "admin")[0] == 204


if __name__ == "__main__":
    setup()
    try:
        main([test_crud_by_role, test_bad_input_names_the_field, test_conflict_and_not_found,
              test_change_log_without_credentials, test_cli_import_csv_and_geojson,
              test_ogc_collection_through_gdal, test_cameras_that_see_a_case,
              test_cameras_know_their_grid])
    finally:
        teardown()
