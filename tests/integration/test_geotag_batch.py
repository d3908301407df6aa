#!/usr/bin/env python3
"""POST /api/geotag as bulk users call it, against the real daemon on the
sample district: whole chains byte for byte as GET /api/geotag gives them one
point at a time, ids only (fields=), NDJSON and CSV (by f= and by Accept),
bad fields= and f= values, the 100,000-point limit, names that need escaping
(quotes, backslashes, control characters, non-ASCII) in JSON and CSV, and
answers that follow the index when the layers change."""
import csv
import io
import json
import os
import random
import time
import urllib.parse

from harness import Daemon, TempDir, expect_error, main, q, run

ctx = {}
LEVELS = ["district", "street", "community", "grid", "building", "unit"]
# the other layers as the index orders them (the store lists layers by name)
OTHER_LAYERS = ["dedicated", "dept-公安", "dept-城管", "dept-测试", "dept-环卫"]

# Two small squares inside the district whose names, codes and ids need
# escaping: JSON (quote, backslash, control characters, non-ASCII) and CSV
# (comma, quote, line break).
ODD = [
    {"id": 'q"1,a', "name": 'He said "hi" \\ back\\slash', "code": "c\t1",
     "x": 116.3200, "y": 39.9900},
    {"id": "新\n2", "name": "楼\u0001\u001f\u2028终", "code": 'k"2\\',
     "x": 116.3300, "y": 39.9900},
]


def odd_layer(path):
    feats = []
    for f in ODD:
        x, y, s = f["x"], f["y"], 0.002
        feats.append({"type": "Feature",
                      "properties": {"id": f["id"], "name": f["name"], "code": f["code"]},
                      "geometry": {"type": "Polygon", "coordinates": [[
                          [x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]]}})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"type": "FeatureCollection", "features": feats}, fh, ensure_ascii=False)


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    odd_layer(os.path.join(d, "odd.geojson"))
    run("import", os.path.join(d, "odd.geojson"), "--level", "dept:测试", "--db", db, check=0)
    ctx["t"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["d"] = Daemon(db)
    # random points over the district's bounding box (some outside every
    # grid), the odd squares' centres, and one far away
    rnd = random.Random(13)
    pts = [[116.27828 + rnd.random() * 0.097, 39.95685 + rnd.random() * 0.062] for _ in range(400)]
    pts += [[f["x"] + 0.001, f["y"] + 0.001] for f in ODD]
    pts += [[2.35, 48.85]]
    ctx["pts"] = pts


def get_chain(lon, lat, **extra):
    """The old path: one chain per GET, as the bytes the daemon sent."""
    st, _, body = ctx["d"].request("GET", q("/api/geotag", lon=repr(lon), lat=repr(lat), **extra),
                                   token=ctx["t"])
    assert st == 200, body
    return body


def post(pts, query="", headers=None):
    query = urllib.parse.quote(query, safe="?&=,")
    st, hdrs, body = ctx["d"].request("POST", "/api/geotag" + query, json.dumps(pts),
                                      token=ctx["t"], headers=headers)
    return st, hdrs, body


def gets():
    if "gets" not in ctx:
        ctx["gets"] = [get_chain(x, y) for x, y in ctx["pts"]]
    return ctx["gets"]


def test_whole_chains_equal_get_byte_for_byte():
    pts, old = ctx["pts"], gets()
    st, hdrs, body = post(pts)
    assert st == 200 and hdrs["content-type"].startswith("application/json"), (st, body[:300])
    assert body == b'{"count":%d,"results":[' % len(pts) + b",".join(old) + b"]}"
    chains = [json.loads(b) for b in old]
    # the sample exercises every part of a chain
    assert any(c["chain"]["unit"] for c in chains) and any(c["dedicated"] for c in chains)
    assert any(c["chain"]["district"] is None for c in chains)
    assert all(len(c["departments"]) >= 3 for c in chains if c["chain"]["district"])
    # and a GeoJSON body and another CRS give the same as GET with that CRS
    few = pts[:40]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPoint", "coordinates": few}}]}
    st, _, body = post(fc, "?crs=gcj02")
    assert st == 200
    assert body == b'{"count":40,"results":[' + b",".join(
        get_chain(x, y, crs="gcj02") for x, y in few) + b"]}"


def test_every_body_shape_reads_the_same():
    """Bare arrays are read without a tree (yajl); every other shape, and
    every bad body, by jansson: the answers and errors must not differ."""
    d, t = ctx["d"], ctx["t"]
    pts = ctx["pts"][:50] + [[116, 40]]
    want = post({"type": "MultiPoint", "coordinates": pts}, "?fields=lon,lat,grid,building")
    assert want[0] == 200
    bodies = [
        json.dumps(pts),
        json.dumps([{"lon": x, "lat": y} for x, y in pts]),
        json.dumps([{"lat": y, "lon": x} for x, y in pts]),
        json.dumps([[x, y, 12.5] for x, y in pts]),                    # an altitude
        json.dumps([{"lon": x, "lat": y, "alt": 3} for x, y in pts]),  # another member
        json.dumps([[x, y, "x"] for x, y in pts]),
        "\n [ " + " ,\n".join("[ %r , %r ]" % (x, y) for x, y in pts) + " ] \n",
        "[" + ",".join('{"lon": 0, "lat": %r, "lon": %r}' % (y, x) for x, y in pts) + "]",  # the last wins
    ]
    for b in bodies:
        st, _, body = d.request("POST", "/api/geotag?fields=lon,lat,grid,building", b, token=t)
        assert (st, body) == want[:1] + want[2:], (b[:80], st, body[:200])
    for b, field in (('[[116.3, 40.0], ["x", 1]]', "[1]"), ('[[116.3, 40.0], [116.3]]', "[1]"),
                     ('[{"lon": 116.3}]', "[0]"), ('[{"lon": 116.3, "lat": null}]', "[0]"),
                     ('[[116.3, 40.0], 5]', "[1]"), ('[[[116.3, 40.0]]]', "[0]"),
                     ('[[116.3, 40.0],]', "body"), ('[[116.3, 40.0]] x', "body"),
                     ('[[116.3, 40.0], [1e999, 40]]', "body"), ('[[116.3, 40.0]', "body"),
                     ('[[116.3, 40.0], [300, 40]]', "points[1]"), ("[]", "body"),
                     ('[[NaN, 40]]', "body"), ('[[116.3, 40.0], [99999999999999999999, 1]]', "body"),
                     # values the fast path once skipped (fuzz_geotag_body)
                     ('[[116.3, "x", 40.0]]', "[0]"), ('[[116.3, null, 40.0]]', "[0]"),
                     ('[[116.3, true, 40.0]]', "[0]"), ('[[116.3, 40.0], "x"]', "[1]"),
                     ('[[116.3, 40.0], null]', "[1]"), ('"x"', "body"), ('null', "body"),
                     ('[[116.3,\x0c40.0]]', "body"), ('[\x0b[116.3, 40.0]]', "body"),
                     ('[[116.3, 40.0]] "x', "body")):
        expect_error(d.json("POST", "/api/geotag", b, token=t), 400, field)
    too_many = "[" + ",".join(["[116.3,40.0]"] * 100001) + "]"
    expect_error(d.json("POST", "/api/geotag", too_many, token=t), 413, "body")


def test_escaping_json_and_csv():
    pts = [[f["x"] + 0.001, f["y"] + 0.001] for f in ODD]
    old = [get_chain(x, y) for x, y in pts]
    st, _, body = post(pts)
    assert st == 200 and body == b'{"count":2,"results":[' + b",".join(old) + b"]}"
    for f, r in zip(ODD, json.loads(body)["results"]):
        hit = [d for d in r["departments"] if d["department"] == "测试"]
        assert hit == [{"id": f["id"], "layer": "dept-测试", "name": f["name"], "code": f["code"],
                        "department": "测试"}], hit
    # raw UTF-8, as jansson writes it; control characters as \u escapes
    assert "楼\\u0001\\u001F\u2028终".encode() in body and b'He said \\"hi\\" \\\\ back' in body
    st, _, body = post(pts, "?f=csv&fields=dept-测试,grid")
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows[0] == ["dept-测试", "grid"] and [r[0] for r in rows[1:]] == [f["id"] for f in ODD]
    st, _, body = post(pts, "?f=ndjson&fields=dept-测试")
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"dept-测试": f["id"]} for f in ODD]


def test_fields_ids_only():
    pts, chains = ctx["pts"], [json.loads(b) for b in gets()]
    st, _, body = post(pts, "?fields=grid,building")
    assert st == 200, body
    r = json.loads(body)
    assert r["count"] == len(pts)

    def ident(c, name):
        if name in LEVELS:
            h = c["chain"][name]
            return h and h["id"]
        hits = [h["id"] for h in c["dedicated"] + c["departments"] if h["layer"] == name]
        return hits[0] if hits else None

    assert r["results"] == [{"grid": ident(c, "grid"), "building": ident(c, "building")}
                            for c in chains]
    assert any(x["building"] for x in r["results"]) and any(x["grid"] is None for x in r["results"])
    # in the order asked, coordinates as the chain gives them, other layers by name
    asked = ["building", "lon", "dept-城管", "lat", "dedicated", "district"]
    st, _, body = post(pts, "?fields=" + ",".join(asked))
    assert st == 200
    res = json.loads(body)["results"]
    assert [list(x) for x in res] == [asked] * len(pts)
    for x, c in zip(res, chains):
        assert x == {"building": ident(c, "building"), "lon": c["lon"], "lat": c["lat"],
                     "dept-城管": ident(c, "dept-城管"), "dedicated": ident(c, "dedicated"),
                     "district": ident(c, "district")}
    # lon and lat come out as the chains write them
    st, _, body = post(pts[:3], "?fields=lon,lat")
    for x, old in zip(json.loads(body)["results"], gets()[:3]):
        assert old.startswith(b'{"lon":%s,"lat":%s,' % (json.dumps(x["lon"]).encode(),
                                                         json.dumps(x["lat"]).encode()))


def test_ndjson():
    pts, old = ctx["pts"], gets()
    for query, headers in (("?f=ndjson", None), ("", {"Accept": "application/x-ndjson"}),
                           ("", {"Accept": "Application/X-NDJSON, application/json;q=0.5"})):
        st, hdrs, body = post(pts, query, headers)
        assert st == 200 and hdrs["content-type"] == "application/x-ndjson", (query, headers, st)
        assert body == b"".join(c + b"\n" for c in old), (query, headers)
    st, _, body = post(pts[:5], "?f=ndjson&fields=grid")
    assert body == b"".join(b'{"grid":%s}\n' % json.dumps(json.loads(c)["chain"]["grid"] and
                                                       json.loads(c)["chain"]["grid"]["id"]).encode()
                            for c in old[:5])
    # f= wins over Accept; JSON when Accept names JSON first or nothing we make
    assert post(pts[:2], "?f=json", {"Accept": "text/csv"})[1]["content-type"] == "application/json"
    assert post(pts[:2], "", {"Accept": "application/json, text/csv"})[1]["content-type"] == "application/json"
    assert post(pts[:2], "", {"Accept": "text/html"})[1]["content-type"] == "application/json"


def test_csv():
    pts, chains = ctx["pts"], [json.loads(b) for b in gets()]
    for query, headers in (("?f=csv", None), ("", {"Accept": "text/csv"})):
        st, hdrs, body = post(pts, query, headers)
        assert st == 200 and hdrs["content-type"] == "text/csv; charset=utf-8", (query, st)
        assert body.endswith(b"\r\n") and body.count(b"\r\n") >= len(pts) + 1
        rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
        cols = list(rows[0].keys())
        assert cols == ["lon", "lat"] + LEVELS + OTHER_LAYERS, cols
        assert len(rows) == len(pts)
        for row, c in zip(rows, chains):
            assert float(row["lon"]) == c["lon"] and float(row["lat"]) == c["lat"]
            for lv in LEVELS:
                assert row[lv] == (c["chain"][lv]["id"] if c["chain"][lv] else ""), (row, lv)
            for h in c["dedicated"] + c["departments"]:
                assert row[h["layer"]] == h["id"]
    st, _, body = post(pts[:3], "?f=csv&fields=grid,lat")
    lines = body.decode().split("\r\n")
    assert lines[0] == "grid,lat" and len(lines) == 5 and lines[4] == ""
    for line, c in zip(lines[1:4], chains):
        g = c["chain"]["grid"]
        assert line == "%s,%s" % (g["id"] if g else "", json.dumps(c["lat"])), line


def test_bad_fields_and_format():
    d, t, pts = ctx["d"], ctx["t"], ctx["pts"][:3]
    for bad, says in (("", "no name"), ("grid,,building", "empty"), ("grid,nope", "'nope'"),
                      ("grid,grid", "twice"), ("name", "'name'"), ("grid, building", "' building'"),
                      ("dept", "'dept'"), ("dept:城管", "'dept:城管'")):
        err = expect_error(d.json("POST", q("/api/geotag", fields=bad), pts, token=t), 400, "fields")
        assert says in err["message"] and "fields" in err["message"], (bad, err)
    err = expect_error(d.json("POST", q("/api/geotag", fields="x"), pts, token=t), 400, "fields")
    assert "dept-城管" in err["message"] and "building" in err["message"], err   # says what is known
    for bad in ("xml", "", "JSON", "geojson"):
        expect_error(d.json("POST", q("/api/geotag", f=bad), pts, token=t), 400, "f")
    # checked before the body is read: a bad body still names fields first
    expect_error(d.json("POST", "/api/geotag?fields=zz", "[[1,", token=t), 400, "fields")
    expect_error(d.json("POST", "/api/geotag?fields=grid", "[[1,", token=t), 400, "body")
    assert d.json("GET", "/api/health")[0] == 200


def test_limit_100000_points():
    rnd = random.Random(5)
    pts = [[round(116.28 + rnd.random() * 0.09, 7), round(39.96 + rnd.random() * 0.055, 7)]
           for _ in range(100000)]
    st, _, body = post(pts, "?f=csv&fields=grid")
    assert st == 200, body[:300]
    lines = body.split(b"\r\n")
    assert lines[0] == b"grid" and len(lines) == 100002 and lines[-1] == b""
    assert sum(1 for x in lines[1:-1] if x) > 50000
    # spot checks against GET
    for i in (0, 4321, 99999):
        c = json.loads(get_chain(*pts[i]))
        assert lines[1 + i].decode() == (c["chain"]["grid"]["id"] if c["chain"]["grid"] else "")
    st, _, body = post(pts + [[116.3, 40.0]], "?f=ndjson&fields=grid")
    assert st == 413 and json.loads(body)["error"]["field"] == "body", body[:300]


def test_follows_the_index_when_layers_change():
    d, pts = ctx["d"], ctx["pts"][:60]
    assert post(pts, "?fields=dept-市政")[0] == 400   # no such layer yet
    layer = os.path.join(os.environ.get("GRIDCC_LAYERS", "layers"), "dept_公安.geojson")
    run("import", layer, "--level", "dept:市政", "--db", ctx["db"], check=0)
    deadline = time.time() + 30
    while post(pts, "?fields=dept-市政")[0] != 200:
        assert time.time() < deadline, "index was not rebuilt:\n" + d.logs()[-2000:]
        time.sleep(0.1)
    st, _, body = post(pts)
    assert body == b'{"count":60,"results":[' + b",".join(get_chain(x, y) for x, y in pts) + b"]}"
    assert b'"department":"\xe5\xb8\x82\xe6\x94\xbf"' in body   # 市政, from the new index's features
    assert d.logs().count("INFO geotag: encoded") == 2, d.logs()[-2000:]


def teardown():
    assert ctx["d"].stop() == 0, "daemon did not stop cleanly on SIGTERM"
    ctx["tmp"].__exit__(None, None, None)


if __name__ == "__main__":
    setup()
    try:
        main([test_whole_chains_equal_get_byte_for_byte, test_every_body_shape_reads_the_same,
              test_escaping_json_and_csv,
              test_fields_ids_only, test_ndjson, test_csv, test_bad_fields_and_format,
              test_limit_100000_points, test_follows_the_index_when_layers_change, teardown])
    finally:
        if ctx["d"].proc.poll() is None:
            ctx["d"].stop()
