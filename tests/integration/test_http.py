#!/usr/bin/env python3
"""The real daemon on a temporary SpatiaLite file with the sample district:
health, auth (401/403 distinct, login, rate limit, no secrets in logs),
geotag GET/POST with every kind of bad input, OGC API - Features paging and
filters, limits (body, headers, idle), import while serving rebuilds the
index off the loop."""
import concurrent.futures
import json
import os
import re
import socket
import time
import urllib.parse

from harness import DATA, Daemon, TempDir, expect_error, main, q, run

ctx = {}


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["op"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["worker"] = run("user", "add", "wk", "--role", "worker", "--db", db, check=0)[1].strip()
    ctx["admin"] = run("user", "add", "root", "--role", "admin", "--db", db, check=0)[1].strip()
    run("user", "add", "pw", "--role", "planner", "--db", db, "--password-stdin",
        stdin="correct horse battery\n", check=0)
    ctx["d"] = Daemon(db, "--idle-timeout", "3")


def teardown():
    logs = ctx["d"].logs()
    assert ctx["d"].stop() == 0, "daemon did not stop cleanly on SIGTERM"
    for secret in (ctx["op"], ctx["worker"], ctx["admin"], "correct horse battery"):
        assert secret not in logs, "a secret reached the log"
    ctx["tmp"].__exit__(None, None, None)


def test_health_is_open():
    st, h = ctx["d"].json("GET", "/api/health")
    assert st == 200 and h["status"] == "ok" and h["version"]
    assert h["store"]["backend"] == "spatialite" and h["store"]["schema_version"] >= 3
    assert h["layers"]["grid"]["count"] == 234
    assert h["layers"]["building"]["count"] == 21500
    assert h["layers"]["dept-城管"]["level"] == "dept"


def test_auth_401_403():
    d = ctx["d"]
    err = expect_error(d.json("GET", "/api/geotag?lon=116.3&lat=40"), 401, "Authorization")
    st, hdrs, _ = d.request("GET", "/api/geotag?lon=116.3&lat=40")
    assert "bearer" in hdrs.get("www-authenticate", "").lower()
    expect_error(d.json("GET", "/api/geotag?lon=116.3&lat=40", token="gcc_not_a_real_token"), 401)
    expect_error(d.json("GET", "/api/geotag?lon=116.3&lat=40", headers={"Authorization": "Basic eDp5"}), 401)
    expect_error(d.json("GET", "/ogc/collections"), 401)
    # the landing page and conformance are open
    assert d.json("GET", "/ogc")[0] == 200
    assert d.json("GET", "/ogc/conformance")[0] == 200
    # every role reads layers; only admin adds users: 403 is not 401
    for role in ("op", "worker", "admin"):
        assert d.json("GET", "/ogc/collections", token=ctx[role])[0] == 200
    expect_error(d.json("POST", "/api/users", {"username": "x", "role": "worker"}, token=ctx["worker"]), 403)
    st, body = d.json("POST", "/api/users", {"username": "新人", "role": "worker"}, token=ctx["admin"])
    assert st == 201 and body["token"].startswith("gcc_")
    assert d.json("GET", "/api/me", token=body["token"])[1]["role"] == "worker"
    expect_error(d.json("POST", "/api/users", {"username": "新人", "role": "worker"}, token=ctx["admin"]), 409)
    expect_error(d.json("POST", "/api/users", {"username": "y", "role": "god"}, token=ctx["admin"]), 400, "role")


def test_login_and_rate_limit():
    d = ctx["d"]
    st, body = d.json("POST", "/api/login", {"username": "pw", "password": "correct horse battery"})
    assert st == 200 and body["token_type"] == "Bearer" and body["user"]["role"] == "planner"
    assert d.json("GET", "/api/me", token=body["token"])[1]["name"] == "pw"
    expect_error(d.json("POST", "/api/login", {"username": "pw"}), 400, "password")
    expect_error(d.json("POST", "/api/login", {"password": "x"}), 400, "username")
    expect_error(d.json("POST", "/api/login", "{not json"), 400, "body")
    expect_error(d.json("POST", "/api/login", [1, 2]), 400, "body")
    for _ in range(5):
        expect_error(d.json("POST", "/api/login", {"username": "pw", "password": "wrong"}), 401)
    st, hdrs, data = d.request("POST", "/api/login", {"username": "pw", "password": "correct horse battery"})
    assert st == 429 and int(hdrs["retry-after"]) > 0, (st, data)
    # a client that leaves while its password is being checked costs nothing
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", d.port))
        body = json.dumps({"username": "root", "password": "whatever-password"}).encode()
        s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.close()
    assert d.json("GET", "/api/health")[0] == 200
    # another user is not locked out by pw's failures
    expect_error(d.json("POST", "/api/login", {"username": "op", "password": "nopassword"}), 401)


def test_geotag_get():
    d, t = ctx["d"], ctx["op"]
    st, c = d.json("GET", q("/api/geotag", lon=116.3262, lat=40.0032), token=t)
    assert st == 200 and c["chain"]["street"]["name"] == "清华园街道"
    for lv in ("district", "street", "community", "grid"):
        assert c["chain"][lv]["id"], lv
    assert c["dedicated"][0]["name"] == "清华大学专属网格"
    assert {x["department"] for x in c["departments"]} == {"城管", "环卫", "公安"}
    # the same chain from GCJ-02 and BD-09 coordinates of the point
    for crs, lon, lat in (("gcj02", 116.33230, 40.00450), ("bd09", 116.33877, 40.01040)):
        st, c2 = d.json("GET", q("/api/geotag", lon=lon, lat=lat, crs=crs), token=t)
        assert st == 200 and c2["chain"]["street"]["id"] == c["chain"]["street"]["id"], (crs, c2)
        # the raw offset is ~600 m; what is left is our guess of the input (~20 m)
        assert abs(c2["lon"] - 116.3262) < 5e-4 and abs(c2["lat"] - 40.0032) < 5e-4, c2
    # EPSG:4490 (CGCS2000) is accepted, as is an OGC URI
    assert d.json("GET", q("/api/geotag", lon=116.3262, lat=40.0032, crs="EPSG:4490"), token=t)[0] == 200
    # outside everything: empty chain
    st, c = d.json("GET", q("/api/geotag", lon=2.35, lat=48.85), token=t)
    assert st == 200 and all(v is None for v in c["chain"].values()) and c["departments"] == []
    # bad input names the field
    expect_error(d.json("GET", "/api/geotag?lat=40", token=t), 400, "lon")
    expect_error(d.json("GET", "/api/geotag?lon=116&lat=abc", token=t), 400, "lat")
    expect_error(d.json("GET", "/api/geotag?lon=NaN&lat=40", token=t), 400, "lon")
    expect_error(d.json("GET", "/api/geotag?lon=inf&lat=40", token=t), 400, "lon")
    expect_error(d.json("GET", "/api/geotag?lon=200&lat=40", token=t), 400, "lon")
    expect_error(d.json("GET", "/api/geotag?lon=116&lat=95", token=t), 400, "lon")
    expect_error(d.json("GET", "/api/geotag?lon=116&lat=40&crs=EPSG:999999", token=t), 400, "crs")
    expect_error(d.json("GET", "/api/geotag?lon=116&lat=40&crs=mars", token=t), 400, "crs")


def test_geotag_post():
    d, t = ctx["d"], ctx["op"]
    pts = [[116.3262, 40.0032], [2.35, 48.85], {"lon": 116.35, "lat": 39.98}]
    st, r = d.json("POST", "/api/geotag", pts, token=t)
    assert st == 200 and r["count"] == 3
    assert r["results"][0]["chain"]["street"]["name"] == "清华园街道"
    assert r["results"][1]["chain"]["district"] is None
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [116.3262, 40.0032]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPoint", "coordinates": [[116.33, 40.0], [116.34, 39.99]]}}]}
    st, r = d.json("POST", "/api/geotag", fc, token=t)
    assert st == 200 and r["count"] == 3
    st, r = d.json("POST", "/api/geotag", {"type": "Point", "coordinates": [116.3262, 40.0032]}, token=t)
    assert st == 200 and r["count"] == 1
    # GeoJSON in GCJ-02
    st, r = d.json("POST", "/api/geotag?crs=gcj02", [[116.3323, 40.0045]], token=t)
    assert r["results"][0]["chain"]["street"]["name"] == "清华园街道"
    # many points at once
    many = [[116.28 + (i % 300) * 0.0003, 39.96 + (i // 300) * 0.0002] for i in range(60000)]
    st, r = d.json("POST", "/api/geotag", many, token=t)
    assert st == 200 and r["count"] == 60000
    assert sum(1 for x in r["results"] if x["chain"]["grid"]) > 30000
    # bad bodies
    expect_error(d.json("POST", "/api/geotag", '[[116.3, 40.0], [116.4', token=t), 400, "body")  # truncated
    expect_error(d.json("POST", "/api/geotag", "{ nope", token=t), 400, "body")
    expect_error(d.json("POST", "/api/geotag", [[116.3, 40.0], ["x", 1]], token=t), 400, "[1]")
    expect_error(d.json("POST", "/api/geotag", [[116.3, 40.0], [300, 40]], token=t), 400, "points[1]")
    expect_error(d.json("POST", "/api/geotag", [], token=t), 400, "body")
    expect_error(d.json("POST", "/api/geotag", {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}, token=t), 400, "geometry.type")
    expect_error(d.json("POST", "/api/geotag", {"type": "FeatureCollection", "features": [{"geometry": {"type": "Point", "coordinates": [1]}}]}, token=t), 400, "features[0].geometry.coordinates")
    expect_error(d.json("POST", "/api/geotag", "[1e999, 40]", token=t), 400)
    too_many = "[" + ",".join(["[116.3,40.0]"] * 100001) + "]"
    expect_error(d.json("POST", "/api/geotag", too_many, token=t), 413)
    expect_error(d.json("POST", "/api/geotag", [[116.3, 40.0]]), 401)
    # the daemon is still fine
    assert d.json("GET", "/api/health")[0] == 200


def test_limits():
    d, t = ctx["d"], ctx["op"]
    # a body over the endpoint's cap is refused before it is read
    big = "x" * (2 << 20)
    st, hdrs, data = d.request("POST", "/api/login", big)
    assert st == 413 and json.loads(data)["error"]["field"] == "body"
    # too-large headers
    # too-large headers: libwebsockets drops the connection (or answers 4xx)
    try:
        st = d.request("GET", "/api/health", headers={"X-Junk": "y" * 20000})[0]
        assert st in (400, 431), st
    except (ConnectionError, OSError):
        pass
    # unknown paths and methods
    expect_error(d.json("GET", "/api/nothing-here", token=t), 404, "path")
    expect_error(d.json("DELETE", "/api/geotag", token=t), 405)
    # a POST without Content-Length
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    resp = s.recv(65536)
    s.close()
    assert resp.startswith(b"HTTP/1.1 4"), resp[:100]
    # garbage on the wire does not hurt the daemon
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n")
    try:
        s.recv(1024)
    except OSError:
        pass
    s.close()
    # an idle client is dropped (daemon started with --idle-timeout 3)
    s = socket.create_connection(("127.0.0.1", d.port))
    s.settimeout(20)
    t0 = time.time()
    got = s.recv(1024)
    s.close()
    assert got == b"" and time.time() - t0 < 15
    assert d.json("GET", "/api/health")[0] == 200


def test_random_inputs_never_crash():
    import random
    d, t = ctx["d"], ctx["op"]
    rnd = random.Random(1234)
    paths = ["/api/geotag", "/api/login", "/api/users", "/api/me", "/api/health", "/ogc",
             "/ogc/collections", "/ogc/collections/grid", "/ogc/collections/grid/items",
             "/ogc/collections/grid/items/x", "/ogc/api", "/ogc/conformance"]
    junk = ["", "%", "%zz", "%00", "\u0000", "NaN", "-inf", "1e309", "[[[", '{"a":', "\u7f51\u683c",
            "' or 1=1 --", "../../etc/passwd", "9" * 400, ",,,", "1,2,3,4,5", "null"]
    statuses = set()
    for i in range(400):
        path = rnd.choice(paths)
        params = "&".join(f"{rnd.choice(['lon', 'lat', 'crs', 'limit', 'offset', 'bbox', 'f', 'name', 'x'])}="
                          f"{urllib.parse.quote(rnd.choice(junk))}" for _ in range(rnd.randint(0, 4)))
        method = rnd.choice(["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        body = rnd.choice(junk).encode() if method in ("POST", "PUT") else None
        url = path + ("?" + params if params else "")
        try:
            st, hdrs, data = d.request(method, url, body=body, token=rnd.choice([t, None, "gcc_bad"]))
        except ConnectionError:
            # libwebsockets refuses a NUL (%00) in a URL by closing the connection
            assert "%00" in url, url
            continue
        statuses.add(st)
        assert st < 500, (method, path, params, body, st, data[:200])
        if st >= 400:
            err = json.loads(data)["error"]
            assert err["status"] == st and err["message"]
    assert d.json("GET", "/api/health")[0] == 200
    assert {200, 400, 401}.issubset(statuses), statuses


def items(path, token):
    st, body = ctx["d"].json("GET", path, token=token)
    assert st == 200, (path, st, body)
    return body


def test_ogc_paging_and_filters():
    d, t = ctx["d"], ctx["worker"]
    land = d.json("GET", "/ogc")[1]
    rels = {l["rel"] for l in land["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = d.json("GET", "/ogc/conformance")[1]["conformsTo"]
    assert any(c.endswith("/conf/core") for c in conf) and any(c.endswith("/conf/geojson") for c in conf)
    cols = items("/ogc/collections", t)["collections"]
    ids = {c["id"] for c in cols}
    assert {"district", "street", "community", "grid", "building", "unit", "dedicated",
            "dept-城管", "dept-环卫", "dept-公安"} <= ids
    # every grid, 100 a page by default, by following next links as given
    seen, path, pages = set(), "/ogc/collections/grid/items", 0
    while path:
        page = items(path, t)
        pages += 1
        assert page["numberMatched"] == 234
        assert page["numberReturned"] == len(page["features"])
        for f in page["features"]:
            p = f["properties"]
            assert p["level"] == "grid" and p["parent"] == p["community_id"]
            assert p["ancestors"] == [p["district_id"], p["street_id"], p["community_id"]]
            assert f["geometry"]["type"] == "MultiPolygon"
            seen.add(f["id"])
        nxt = [l["href"] for l in page["links"] if l["rel"] == "next"]
        path = nxt[0].split(str(d.port), 1)[1] if nxt else None
    assert len(seen) == 234 and pages == 3
    # limit bounds
    assert len(items("/ogc/collections/building/items?limit=10000", t)["features"]) == 10000
    # a page that large is built off the loop, which answers others meanwhile
    assert re.search(r"ogc: items built off the loop layer=building n=10000 ", d.logs()), d.logs()[-2000:]
    # more asked at once than are built at once (two): the rest wait their
    # turn and every one is answered whole; clients that leave while waiting
    # are let go (under ASan: nothing leaked, nothing used after it was freed)
    before = d.logs().count("items built off the loop")
    leavers = []
    for i in range(3):
        c = socket.create_connection(("127.0.0.1", d.port))
        c.sendall(f"GET /ogc/collections/building/items?limit=999&offset={i} HTTP/1.1\r\n"
                  f"Host: x\r\nAuthorization: Bearer {t}\r\n\r\n".encode())
        leavers.append(c)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futures = [ex.submit(items, f"/ogc/collections/building/items?limit=1000&offset={o}", t)
                   for o in range(4)]
        for c in leavers:   # gone while theirs are built or wait
            c.close()
        pages = [f.result() for f in futures]
    assert [p["numberReturned"] for p in pages] == [1000] * 4
    assert [p["features"][0]["id"] for p in pages] == [items(f"/ogc/collections/building/items?limit=1&offset={o}", t)["features"][0]["id"] for o in range(4)]
    assert d.json("GET", "/api/health")[0] == 200
    # the four asked for by clients that stayed were built; a leaver's perhaps not
    assert d.logs().count("items built off the loop") >= before + 4
    assert len(items("/ogc/collections/building/items?limit=50000", t)["features"]) == 10000
    expect_error(d.json("GET", "/ogc/collections/grid/items?limit=0", token=t), 400, "limit")
    expect_error(d.json("GET", "/ogc/collections/grid/items?limit=abc", token=t), 400, "limit")
    expect_error(d.json("GET", "/ogc/collections/grid/items?offset=-1", token=t), 400, "offset")
    # bbox
    page = items("/ogc/collections/grid/items?bbox=116.32,40.0,116.33,40.005", t)
    assert 0 < page["numberMatched"] < 234
    expect_error(d.json("GET", "/ogc/collections/grid/items?bbox=1,2,3", token=t), 400, "bbox")
    expect_error(d.json("GET", "/ogc/collections/grid/items?bbox=a,b,c,d", token=t), 400, "bbox")
    expect_error(d.json("GET", "/ogc/collections/grid/items?bbox=116.4,40,116.3,40.1", token=t), 400, "bbox")
    expect_error(d.json("GET", "/ogc/collections/grid/items?bbox=116.3,40,116.4,40.1&bbox-crs=EPSG:1", token=t), 400, "bbox-crs")
    # property equality filters: built-in and the layer's own fields
    one = items("/ogc/collections/grid/items?limit=1", t)["features"][0]
    comm = one["properties"]["parent"]
    page = items(q("/ogc/collections/grid/items", parent=comm), t)
    assert page["numberMatched"] >= 4 and all(f["properties"]["parent"] == comm for f in page["features"])
    page = items(q("/ogc/collections/grid/items", grid_worker=one["properties"]["grid_worker"]), t)
    assert page["numberMatched"] >= 1
    page = items(q("/ogc/collections/building/items", use="住宅", limit=5), t)
    assert page["numberMatched"] > 1000 and all(f["properties"]["use"] == "住宅" for f in page["features"])
    expect_error(d.json("GET", "/ogc/collections/grid/items?colour=red", token=t), 400, "colour")
    # one item; 404s
    f = items("/ogc/collections/grid/items/" + one["id"], t)
    assert f["id"] == one["id"] and any(l["rel"] == "self" for l in f["links"])
    expect_error(d.json("GET", "/ogc/collections/grid/items/nope", token=t), 404, "featureId")
    expect_error(d.json("GET", "/ogc/collections/nope/items", token=t), 404, "collectionId")
    # HTML for people, OpenAPI for machines
    st, hdrs, body = d.request("GET", "/ogc/collections/grid/items?f=html", token=t)
    assert st == 200 and hdrs["content-type"].startswith("text/html") and "网格".encode() in body
    st, hdrs, body = d.request("GET", "/ogc/api", token=t)
    api = json.loads(body)
    assert api["openapi"].startswith("3.0") and "/collections/grid/items" in api["paths"]
    st, hdrs, body = d.request("GET", "/ogc/collections", headers={"Accept": "text/html"}, token=t)
    assert hdrs["content-type"].startswith("text/html")


def test_public_read():
    with TempDir() as dd:
        db = os.path.join(dd, "p.db")
        run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", db, check=0)
        p = Daemon(db, "--public-read")
        try:
            st, body = p.json("GET", "/ogc/collections/district/items")
            assert st == 200 and body["numberMatched"] == 1
            expect_error(p.json("GET", "/api/geotag?lon=116.1&lat=39.1"), 401)
            expect_error(p.json("GET", "/ogc/collections", token="gcc_wrong"), 401)
        finally:
            p.stop()


def test_import_while_serving_rebuilds_index():
    d, t = ctx["d"], ctx["op"]
    st, c = d.json("GET", q("/api/geotag", lon=116.3262, lat=40.0032), token=t)
    assert [x["layer"] for x in c["departments"] if x["department"] == "市政"] == []
    # another process imports the store itself as a layer: GDAL reads the SQLite
    # file, and its polygons (district, grids, buildings) overlap one another, so
    # the import is refused whole and the layer is not created
    st, out, err = run("import", ctx["db"], "--level", "dept:市政", "--db", ctx["db"])
    assert st == 1, f"importing the store as a layer: exit {st}, wanted 1 (input rejected):\n{err[-2000:]}"
    assert "overlaps its sibling" in err and "import rejected, layer dept-市政 left as it was" in err, \
        err[-2000:]
    assert "dept-市政" not in d.json("GET", "/api/health")[1]["layers"]
    # then a real department layer over the same ground
    layer = os.path.join(os.environ.get("GRIDCC_LAYERS", "layers"), "dept_公安.geojson")
    run("import", layer, "--level", "dept:市政", "--db", ctx["db"], check=0)
    deadline = time.time() + 30
    while time.time() < deadline:
        st, c = d.json("GET", q("/api/geotag", lon=116.3262, lat=40.0032), token=t)
        if any(x["department"] == "市政" for x in c["departments"]):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("index was not rebuilt after an import:\n" + d.logs()[-2000:])
    assert "rebuilt" in d.logs()
    h = d.json("GET", "/api/health")[1]
    assert h["layers"]["dept-市政"]["count"] == 9


if __name__ == "__main__":
    setup()
    try:
        main([test_health_is_open, test_auth_401_403, test_login_and_rate_limit, test_geotag_get,
              test_geotag_post, test_limits, test_random_inputs_never_crash,
              test_ogc_paging_and_filters, test_public_read,
              test_import_while_serving_rebuilds_index, teardown])
    finally:
        if ctx.get("d"):
            ctx["d"].stop()
