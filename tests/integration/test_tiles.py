#!/usr/bin/env python3
"""Vector tiles of the sample district from the real daemon: TileJSON, a
building tile at zoom 15 read back by GDAL's MVT reader (ogrinfo) and
checked against the OGC API's count of the buildings it must hold, grid
tiles at low zoom with no overlap and no crack between neighbours, gzip when
asked, who may read, refusals naming the field, the area layers in one tile
(?with=), and a re-import into the running daemon's database changing the
tiles, one layer's and a set's."""
import gzip
import json
import math
import os
import re
import subprocess
import time
import urllib.parse

from harness import LAYERS, Daemon, TempDir, expect_error, main, q, run

ctx = {}
ORIGIN = 20037508.342789244
# the middle of the sample district
LON, LAT = 116.3269, 39.9875


def tile_of(lon, lat, z):
    r = math.radians(lat)
    return (int((lon + 180) / 360 * 2 ** z),
            int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2 ** z))


def tile_lonlat_bounds(z, x, y, pad=0.0):
    """(minlon, minlat, maxlon, maxlat) of a tile, grown by pad tiles."""
    def lon(tx):
        return tx / 2 ** z * 360 - 180

    def lat(ty):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / 2 ** z))))
    return lon(x - pad), lat(y + 1 + pad), lon(x + 1 + pad), lat(y - pad)


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["dir"] = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["tok"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["res"] = run("user", "add", "res", "--role", "resident", "--db", db, check=0)[1].strip()
    ctx["d"] = Daemon(db)


def teardown():
    ctx["d"].stop()
    ctx["tmp"].__exit__(None, None, None)


def get(path, token=None, headers=None):
    # a cold building tile is made by GDAL's MVT writer off the loop: under
    # ASan on a loaded 2-core machine it once took over the harness's 60 s
    return ctx["d"].request("GET", path, token=token or ctx["tok"], headers=headers, timeout=240)


def save(z, x, y, data, name="t"):
    """Writes a tile as DIR/name/z/x/y.pbf, the path GDAL's MVT reader takes
    its tile coordinates from."""
    p = os.path.join(ctx["dir"], name, str(z), str(x))
    os.makedirs(p, exist_ok=True)
    path = os.path.join(p, f"{y}.pbf")
    with open(path, "wb") as f:
        f.write(data)
    return path


def ogr(*args):
    p = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def feature_count(path, layer, *oo):
    out = ogr("-so", *oo, path, layer)
    return int(re.search(r"Feature Count: (\d+)", out).group(1))


def test_tilejson():
    d = ctx["d"]
    st, tj = d.json("GET", "/tiles/building.json", token=ctx["tok"])
    assert st == 200, tj
    assert tj["tilejson"] == "3.0.0"
    # the layer's version in the tiles' URL: a re-import gives new URLs
    assert tj["tiles"] == [f"http://127.0.0.1:{d.port}/tiles/building/{{z}}/{{x}}/{{y}}.pbf?v={tj['version'].split('.')[0]}"], tj
    assert tj["minzoom"] == 13 and tj["maxzoom"] == 18, tj
    b = tj["bounds"]
    assert abs(b[0] - 116.278561) < 1e-6 and abs(b[3] - 40.0180368) < 1e-6, b
    assert b[0] < tj["center"][0] < b[2] and b[1] < tj["center"][1] < b[3], tj
    assert 13 <= tj["center"][2] <= 18, tj
    vl = tj["vector_layers"]
    assert len(vl) == 1 and vl[0]["id"] == "building", vl
    assert set(vl[0]["fields"]) == {"id", "name", "code", "parent"}, vl
    st, tj = d.json("GET", "/tiles/grid.json", token=ctx["tok"])
    assert st == 200 and tj["minzoom"] == 0 and tj["vector_layers"][0]["id"] == "grid", tj
    # every layer is listed with its TileJSON's URL, department layers escaped
    st, lst = d.json("GET", "/tiles", token=ctx["tok"])
    assert st == 200, lst
    names = {e["layer"]: e for e in lst["layers"]}
    assert {"district", "street", "community", "grid", "building", "unit",
            "dept-城管"} <= set(names), names
    url = names["dept-城管"]["tilejson"]
    assert url.endswith("/tiles/dept-%E5%9F%8E%E7%AE%A1.json"), url
    st, tj = d.json("GET", url.split(str(d.port), 1)[1], token=ctx["tok"])
    assert st == 200 and tj["vector_layers"][0]["id"] == "dept-城管", tj


def test_building_tile_at_zoom_15():
    z = 15
    x, y = tile_of(LON, LAT, z)
    st, h, data = get(f"/tiles/building/{z}/{x}/{y}.pbf")
    assert st == 200 and h["content-type"] == "application/vnd.mapbox-vector-tile", (st, h)
    assert "content-encoding" not in h
    assert len(data) > 1000
    path = save(z, x, y, data)
    out = ogr("-so", path)
    assert "building" in out, out
    # what the tile must hold: every building meeting the tile, at most those
    # meeting the tile and its buffer (80/4096 of a side), by the OGC API
    def matched(bbox):
        st, body = ctx["d"].json("GET", q("/ogc/collections/building/items", limit=1,
                                          bbox=",".join(f"{v:.9f}" for v in bbox)),
                                 token=ctx["tok"])
        assert st == 200, body
        return body["numberMatched"]
    inner = matched(tile_lonlat_bounds(z, x, y))
    outer = matched(tile_lonlat_bounds(z, x, y, pad=80 / 4096))
    n = feature_count(path, "building", "-oo", "CLIP=NO")
    assert inner > 100, inner
    assert inner <= n <= outer, (inner, n, outer)
    # properties: the ids, names and codes of the store
    feats = ogr("-al", "-oo", "CLIP=NO", "-fields=YES", "-geom=NO", path)
    ids = re.findall(r"^\s+id \(String\) = (\S+)", feats, re.M)
    assert len(ids) == n, (len(ids), n)
    assert re.search(r"^\s+name \(String\) = \S+", feats, re.M), feats[:2000]
    assert re.search(r"^\s+parent \(String\) = \S+", feats, re.M), feats[:2000]
    st, body = ctx["d"].json("GET", f"/ogc/collections/building/items/{ids[0]}", token=ctx["tok"])
    assert st == 200 and body["properties"]["id"] == ids[0], body
    name = body["properties"]["name"]
    assert f"name (String) = {name}" in feats


def test_gzip_when_asked():
    z = 16
    x, y = tile_of(LON, LAT, z)
    st, h, plain = get(f"/tiles/building/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "identity"})
    assert st == 200 and "content-encoding" not in h and len(plain) > 0
    st, h, gz = get(f"/tiles/building/{z}/{x}/{y}.pbf",
                    headers={"Accept-Encoding": "br, gzip;q=0.8, deflate"})
    assert st == 200 and h.get("content-encoding") == "gzip", h
    assert "accept-encoding" in h.get("vary", "").lower(), h
    assert gzip.decompress(gz) == plain
    assert len(gz) < len(plain)
    st, h, body = get(f"/tiles/building/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip;q=0"})
    assert st == 200 and "content-encoding" not in h and body == plain
    # those were made once, then served from the cache
    before = ctx["d"].json("GET", "/api/health")[1]["tiles"]
    st, h, again = get(f"/tiles/building/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip"})
    after = ctx["d"].json("GET", "/api/health")[1]["tiles"]
    assert again == gz and after["made"] == before["made"] and after["hits"] == before["hits"] + 1, \
        (before, after)
    assert after["cached"] >= 16 and after["layers"] >= 1, after
    # the gzip body is a tile GDAL reads through /vsigzip/
    path = save(z, x, y, gz, name="gz")
    assert feature_count("/vsigzip/" + path, "building") > 0


def test_below_minzoom_and_outside_are_empty():
    x, y = tile_of(LON, LAT, 12)
    st, h, data = get(f"/tiles/building/12/{x}/{y}.pbf")
    assert st == 200 and data == b"" and h["content-type"] == "application/vnd.mapbox-vector-tile"
    st, h, data = get("/tiles/grid/15/0/0.pbf")   # far from the district
    assert st == 200 and data == b"", (st, data[:100])


def sql_row(path, sql):
    out = ogr("-dialect", "SQLite", "-sql", sql, path)
    return dict(re.findall(r"^\s+(\w+) \(\w+\) = (\S+)", out, re.M))


def test_grids_share_edges_at_low_zoom():
    """In a tile the grids (and the communities) neither overlap (the sum of
    their areas is the area of their union) nor part (their union has the
    holes the source has there, no more: a crack between neighbours is a new
    hole)."""
    for layer, src, z, least in (("grid", "grids", 11, 20), ("grid", "grids", 12, 20),
                                 ("grid", "grids", 13, 20), ("community", "communities", 10, 10),
                                 ("community", "communities", 12, 10)):
        x, y = tile_of(LON, LAT, z)
        st, h, data = get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
        assert st == 200 and data, st
        path = save(z, x, y, data, name=layer)
        got = sql_row(path, "SELECT COUNT(*) AS n, SUM(ST_Area(geometry)) AS total, "
                            "ST_Area(ST_Union(geometry)) AS merged, "
                            f"ST_NumInteriorRing(ST_Union(geometry)) AS holes FROM {layer}")
        b = tile_lonlat_bounds(z, x, y)
        want = sql_row(os.path.join(LAYERS, f"{src}.geojson"),
                       "SELECT ST_NumInteriorRing(ST_Union(ST_Intersection(geometry, "
                       f"BuildMbr({b[0]}, {b[1]}, {b[2]}, {b[3]})))) AS holes FROM {src}")
        assert int(got["n"]) >= least, (layer, z, got)
        assert got.get("holes") == want.get("holes"), (layer, z, got, want)
        # one unit of overlap along one edge would be hundreds of units²
        unit = 2 * ORIGIN / 2 ** z / 4096
        total, merged = float(got["total"]), float(got["merged"])
        assert abs(total - merged) < 4 * unit * unit, (layer, z, total, merged, unit)


def test_who_may_read():
    x, y = tile_of(LON, LAT, 15)
    st, h, _ = ctx["d"].request("GET", f"/tiles/building/15/{x}/{y}.pbf")
    assert st == 401 and "bearer" in h.get("www-authenticate", "").lower(), st
    st, _, _ = ctx["d"].request("GET", "/tiles/building.json")
    assert st == 401
    st, _, _ = ctx["d"].request("GET", "/tiles")
    assert st == 401
    st, _, _ = get(f"/tiles/building/15/{x}/{y}.pbf", token="gcc_not_a_real_token")
    assert st == 401
    # as the OGC API's collections: any account (residents too)
    st, _, data = get(f"/tiles/building/15/{x}/{y}.pbf", token=ctx["res"])
    assert st == 200 and data
    # with --public-read, anonymous callers too (a grid tile: a second daemon
    # makes its tiles anew, and under ASan buildings take long)
    d2 = Daemon(ctx["db"], "--public-read")
    try:
        st, _, data = d2.request("GET", f"/tiles/grid/15/{x}/{y}.pbf")
        assert st == 200 and data, st
        st, _, _ = d2.request("GET", f"/tiles/grid/15/{x}/{y}.pbf",
                              headers={"Authorization": "Bearer gcc_wrong"})
        assert st == 401
    finally:
        d2.stop()


def test_refusals_name_the_field():
    d, tok = ctx["d"], ctx["tok"]
    expect_error(d.json("GET", "/tiles/building/99/1/1.pbf", token=tok), 400, "z")
    expect_error(d.json("GET", "/tiles/building/-1/0/0.pbf", token=tok), 400, "z")
    expect_error(d.json("GET", "/tiles/building/3/8/0.pbf", token=tok), 400, "x")
    expect_error(d.json("GET", "/tiles/building/3/0/8.pbf", token=tok), 400, "y")
    expect_error(d.json("GET", "/tiles/building/3/a/0.pbf", token=tok), 400, "x")
    expect_error(d.json("GET", "/tiles/nope/3/0/0.pbf", token=tok), 404, "layer")
    expect_error(d.json("GET", "/tiles/nope.json", token=tok), 404, "layer")
    expect_error(d.json("GET", "/tiles/building/3/0/0.png", token=tok), 404, "path")
    expect_error(d.json("GET", "/tiles/building/3/0.pbf", token=tok), 404, "path")
    # a bad minimum zoom stops the daemon before it serves, naming the option
    st, out, err = run("serve", "--db", ctx["db"], "--port", "0", "--osmand-port", "-1",
                       "--tile-minzoom", "building=13,roof=3")
    assert st == 1 and "--tile-minzoom" in err and "'roof'" in err, (st, err[-500:])


AREAS = "?with=street&with=community&with=grid"


def test_areas_in_one_tile():
    """?with=: the district's areas from one source, as the wall draws them:
    one tile holding each layer's own tile, one after the other."""
    d, tok = ctx["d"], ctx["tok"]
    st, tj = d.json("GET", "/tiles/district.json" + AREAS, token=tok)
    assert st == 200, tj
    assert tj["tiles"] == [f"http://127.0.0.1:{d.port}/tiles/district/{{z}}/{{x}}/{{y}}.pbf{AREAS}&v=4"], tj
    ids = [v["id"] for v in tj["vector_layers"]]
    assert ids == ["district", "district_label", "street", "street_label", "community",
                   "community_label", "grid", "grid_label"], ids
    assert tj["minzoom"] == 0 and tj["name"] == "district+street+community+grid", tj
    one = {n: d.json("GET", f"/tiles/{n}.json", token=tok)[1] for n in ("district", "grid")}
    assert tj["bounds"] == [min(one["district"]["bounds"][0], one["grid"]["bounds"][0]),
                            min(one["district"]["bounds"][1], one["grid"]["bounds"][1]),
                            max(one["district"]["bounds"][2], one["grid"]["bounds"][2]),
                            max(one["district"]["bounds"][3], one["grid"]["bounds"][3])], tj
    z = 12
    x, y = tile_of(LON, LAT, z)
    st, h, data = get(f"/tiles/district/{z}/{x}/{y}.pbf{AREAS}")
    assert st == 200 and h["content-type"] == "application/vnd.mapbox-vector-tile", h
    parts = b""
    for n in ("district", "street", "community", "grid"):
        st, _, part = get(f"/tiles/{n}/{z}/{x}/{y}.pbf")
        assert st == 200 and part, (n, st)
        parts += part
    assert data == parts  # each layer's own tile, in the order asked
    path = save(z, x, y, data, name="areas")
    for n in ("district", "street", "community", "grid"):
        alone = save(z, x, y, get(f"/tiles/{n}/{z}/{x}/{y}.pbf")[2], name=f"alone-{n}")
        assert feature_count(path, n) == feature_count(alone, n) > 0, n
    # gzip: one stream of the lot (a browser reads only a gzip body's first member)
    st, h, gz = get(f"/tiles/district/{z}/{x}/{y}.pbf{AREAS}", headers={"Accept-Encoding": "gzip"})
    assert st == 200 and h.get("content-encoding") == "gzip", h
    assert gzip.decompress(gz) == data
    import zlib
    o = zlib.decompressobj(wbits=31)
    assert o.decompress(gz) == data and o.eof and not o.unused_data  # one member
    st, h2, _ = get(f"/tiles/district/{z}/{x}/{y}.pbf{AREAS}", headers={"If-None-Match": h["etag"]})
    assert st == 304, st
    # a layer with nothing at this zoom (buildings from 13) is left out
    st, _, no_bldg = get(f"/tiles/grid/{z}/{x}/{y}.pbf?with=building")
    assert st == 200 and no_bldg == get(f"/tiles/grid/{z}/{x}/{y}.pbf")[2]
    st, _, empty = get(f"/tiles/building/{z}/{x}/{y}.pbf?with=unit")
    assert st == 200 and empty == b""
    # refusals name the field
    expect_error(d.json("GET", f"/tiles/district/{z}/{x}/{y}.pbf?with=grid&with=grid", token=tok), 400, "with")
    expect_error(d.json("GET", "/tiles/district.json?with=district", token=tok), 400, "with")
    expect_error(d.json("GET", f"/tiles/district/{z}/{x}/{y}.pbf?with=nope", token=tok), 404, "with")
    # 8 layers in all are served, a ninth is refused
    st, lst = d.json("GET", "/tiles", token=tok)
    others = [urllib.parse.quote(e["layer"]) for e in lst["layers"] if e["layer"] != "grid"]
    assert len(others) >= 8, others
    st, tj8 = d.json("GET", "/tiles/grid.json?" + "&".join(f"with={n}" for n in others[:7]), token=tok)
    assert st == 200 and len({v["id"] for v in tj8["vector_layers"]}) >= 8, tj8
    expect_error(d.json("GET", "/tiles/grid.json?" + "&".join(f"with={n}" for n in others[:8]), token=tok),
                 400, "with")
    # nor two layers of one name in a tile: an area layer's label points are
    # {layer}_label (a department's layer so named, imported for this)
    run("import", os.path.join(LAYERS, "dept_城管.geojson"), "--level", "dept:城管二",
        "--layer", "dept-城管_label", "--db", ctx["db"], check=0)
    lab = urllib.parse.quote("dept-城管_label")
    expect_error(d.json("GET", f"/tiles/dept-%E5%9F%8E%E7%AE%A1.json?with={lab}", token=tok), 400, "with")
    expect_error(d.json("GET", f"/tiles/{lab}.json?with=dept-%E5%9F%8E%E7%AE%A1", token=tok), 400, "with")
    assert d.json("GET", f"/tiles/{lab}.json?with=grid", token=tok)[0] == 200
    # who may read: as one layer's tiles
    st, _, _ = ctx["d"].request("GET", f"/tiles/district/{z}/{x}/{y}.pbf{AREAS}")
    assert st == 401, st


def grid_names(data, z, x, y, name):
    path = save(z, x, y, data, name=name)
    out = ogr("-al", "-geom=NO", path)
    ids = re.findall(r"^\s+id \(String\) = (\S+)", out, re.M)
    names = re.findall(r"^\s+name \(String\) = (\S+)", out, re.M)
    return dict(zip(ids, names))


def test_reimport_changes_the_tiles():
    d = ctx["d"]
    z = 15
    x, y = tile_of(LON, LAT, z)
    url = f"/tiles/grid/{z}/{x}/{y}.pbf"
    st, h, before = get(url)
    assert st == 200
    etag = h["etag"]
    set_url = f"/tiles/district/{z}/{x}/{y}.pbf{AREAS}"
    st, h, set_before = get(set_url)
    assert st == 200
    set_etag = h["etag"]
    st, h, _ = get(url, headers={"If-None-Match": etag})
    assert st == 304, st
    names = grid_names(before, z, x, y, "before")
    gid = sorted(names)[0]
    # re-import the grids, one renamed, into the running daemon's database
    with open(os.path.join(LAYERS, "grids.geojson"), encoding="utf-8") as f:
        fc = json.load(f)
    for feat in fc["features"]:
        if feat["properties"]["id"] == gid:
            feat["properties"]["name"] = "改名的网格"
    src = os.path.join(ctx["dir"], "grids2.geojson")
    with open(src, "w", encoding="utf-8") as f:
        json.dump(fc, f, ensure_ascii=False)
    run("import", src, "--level", "grid", "--db", ctx["db"], "--parent-field", "parent_code",
        check=0)
    # the very next request sees it (the tile is keyed by the layer's version)
    st, h, after = get(url, headers={"If-None-Match": etag})
    assert st == 200, st
    assert h["etag"] != etag, h
    new = grid_names(after, z, x, y, "after")
    assert new[gid] == "改名的网格", new[gid]
    assert all(new[k] == v for k, v in names.items() if k != gid)
    # and the areas' tile, which holds the grids
    st, h, set_after = get(set_url, headers={"If-None-Match": set_etag})
    assert st == 200 and h["etag"] != set_etag, (st, h)
    assert grid_names(set_after, z, x, y, "set-after")[gid] == "改名的网格"
    # and the daemon noticed the change log off the loop and dropped the old tiles
    deadline = time.time() + 20
    while "old tiles dropped" not in d.logs():
        assert time.time() < deadline, d.logs()[-3000:]
        time.sleep(0.1)


if __name__ == "__main__":
    setup()
    try:
        main([test_tilejson, test_building_tile_at_zoom_15, test_gzip_when_asked,
              test_below_minzoom_and_outside_are_empty, test_grids_share_edges_at_low_zoom,
              test_who_may_read, test_refusals_name_the_field, test_areas_in_one_tile,
              test_reimport_changes_the_tiles])
    finally:
        teardown()
