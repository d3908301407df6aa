#!/usr/bin/env python3
"""An operator's own base map (serve --basemap FILE.mbtiles) from the real
daemon: MBTiles files built here with sqlite3, one raster (two 1x1 PNGs),
one vector (a grid tile the daemon itself made, stored gzipped). TileJSON
from the metadata, tiles as stored with the TMS row flipped, gzip passed
through or inflated, a missing tile, who may read, no base map, and files
that are not MBTiles refused at start naming the file."""
import gzip
import json
import os
import sqlite3
import struct
import subprocess
import zlib

from harness import BIN, Daemon, TempDir, expect_error, main, run

ctx = {}
Z, X, Y = 14, 13485, 6203   # a tile of the sample district


def png(r, g, b):
    """A 1x1 RGB PNG."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes([0, r, g, b]))) + chunk(b"IEND", b""))


def mbtiles(path, meta, tiles):
    """tiles: {(z, x, y_xyz): bytes}, stored at the TMS row."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, "
               "tile_data BLOB)")
    db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                   [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in tiles.items()])
    db.commit()
    db.close()


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["dir"] = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["tok"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["res"] = run("user", "add", "res", "--role", "resident", "--db", db, check=0)[1].strip()
    ctx["red"], ctx["blue"] = png(200, 0, 0), png(0, 0, 200)
    ctx["raster"] = os.path.join(d, "raster.mbtiles")
    mbtiles(ctx["raster"], {"name": "Haidian raster", "format": "png",
                            "bounds": "116.30,39.97,116.35,40.00", "center": "116.3269,39.9875,14",
                            "minzoom": "13", "maxzoom": "15", "attribution": "© our survey"},
            {(Z, X, Y): ctx["red"], (Z, X, Y + 1): ctx["blue"]})
    ctx["d"] = Daemon(db)   # no base map
    st, hdrs, mvt = ctx["d"].request("GET", f"/tiles/grid/{Z}/{X}/{Y}.pbf", token=ctx["tok"])
    assert st == 200 and len(mvt) > 100 and "content-encoding" not in hdrs, (st, hdrs, len(mvt))
    ctx["mvt"], ctx["mvt_gz"] = mvt, gzip.compress(mvt)
    ctx["vector"] = os.path.join(d, "vector.mbtiles")
    mbtiles(ctx["vector"], {"name": "Haidian vector", "format": "pbf", "minzoom": "10",
                            "maxzoom": "14", "json": json.dumps({"vector_layers": [
                                {"id": "water", "fields": {}}, {"id": "roads", "fields": {}}]})},
            {(Z, X, Y): ctx["mvt_gz"]})
    ctx["dr"] = Daemon(db, "--basemap", ctx["raster"])
    ctx["dv"] = Daemon(db, "--basemap", ctx["vector"])


def teardown():
    for k in ("d", "dr", "dv"):
        if k in ctx:
            ctx[k].stop()
    ctx["tmp"].__exit__(None, None, None)


def test_tilejson_raster():
    st, tj = ctx["dr"].json("GET", "/basemap.json", token=ctx["tok"])
    assert st == 200, (st, tj)
    assert tj["tilejson"] == "3.0.0" and tj["name"] == "Haidian raster" and tj["format"] == "png"
    assert tj["tiles"] == [f"http://127.0.0.1:{ctx['dr'].port}/basemap/{{z}}/{{x}}/{{y}}.png"], tj
    assert tj["minzoom"] == 13 and tj["maxzoom"] == 15, tj
    assert tj["bounds"] == [116.30, 39.97, 116.35, 40.00], tj
    assert tj["center"][:2] == [116.3269, 39.9875] and tj["center"][2] == 14, tj
    assert tj["attribution"] == "© our survey" and "vector_layers" not in tj, tj


def test_raster_tiles_flip_tms_rows():
    d = ctx["dr"]
    st, hdrs, data = d.request("GET", f"/basemap/{Z}/{X}/{Y}.png", token=ctx["tok"])
    assert st == 200 and data == ctx["red"], (st, data[:40])
    assert hdrs["content-type"] == "image/png" and "content-encoding" not in hdrs, hdrs
    assert hdrs["cache-control"] == "private, max-age=60" and hdrs["etag"].startswith('W/"'), hdrs
    st, _, data = d.request("GET", f"/basemap/{Z}/{X}/{Y + 1}.png", token=ctx["tok"])
    assert st == 200 and data == ctx["blue"], (st, data[:40])
    # the ETag names the tile: a second ask with it is a 304, the other tile's is not
    etag = hdrs["etag"]
    st, _, data = d.request("GET", f"/basemap/{Z}/{X}/{Y}.png", token=ctx["tok"],
                            headers={"If-None-Match": etag})
    assert st == 304 and data == b"", st
    st, h2, _ = d.request("GET", f"/basemap/{Z}/{X}/{Y + 1}.png", token=ctx["tok"],
                          headers={"If-None-Match": etag})
    assert st == 200 and h2["etag"] != etag, (st, h2)


def test_missing_tile_is_204():
    for d, ext in ((ctx["dr"], "png"), (ctx["dv"], "pbf")):
        st, _, data = d.request("GET", f"/basemap/{Z}/{X + 1}/{Y}.{ext}", token=ctx["tok"])
        assert st == 204 and data == b"", (ext, st, data)


def test_bad_paths():
    d = ctx["dr"]
    expect_error(d.json("GET", "/basemap/31/0/0.png", token=ctx["tok"]), 400, "z")
    expect_error(d.json("GET", f"/basemap/{Z}/{1 << Z}/0.png", token=ctx["tok"]), 400, "x")
    expect_error(d.json("GET", f"/basemap/{Z}/{X}/{Y}.pbf", token=ctx["tok"]), 404, "path")
    expect_error(d.json("GET", f"/basemap/{Z}/{X}.png", token=ctx["tok"]), 404, "path")


def test_vector_tilejson_and_gzip():
    d = ctx["dv"]
    st, tj = d.json("GET", "/basemap.json", token=ctx["tok"])
    assert st == 200 and tj["format"] == "pbf" and tj["tiles"][0].endswith("/{z}/{x}/{y}.pbf"), tj
    assert [l["id"] for l in tj["vector_layers"]] == ["water", "roads"], tj
    assert tj["minzoom"] == 10 and tj["maxzoom"] == 14 and "bounds" not in tj, tj
    path = f"/basemap/{Z}/{X}/{Y}.pbf"
    st, hdrs, data = d.request("GET", path, token=ctx["tok"], headers={"Accept-Encoding": "gzip"})
    assert st == 200 and hdrs.get("content-encoding") == "gzip", (st, hdrs)
    assert hdrs["content-type"] == "application/x-protobuf" and data == ctx["mvt_gz"], hdrs
    # no gzip asked (or refused with q=0): the daemon inflates it
    for h in ({}, {"Accept-Encoding": "gzip;q=0, identity"}):
        st, hdrs, data = d.request("GET", path, token=ctx["tok"], headers=h)
        assert st == 200 and "content-encoding" not in hdrs and data == ctx["mvt"], (h, st, hdrs)


def test_who_may_read():
    for d, path in ((ctx["dr"], "/basemap.json"), (ctx["dr"], f"/basemap/{Z}/{X}/{Y}.png")):
        st, hdrs, _ = d.request("GET", path)
        assert st == 401 and "bearer" in hdrs.get("www-authenticate", "").lower(), (path, st)
        st, _, _ = d.request("GET", path, token=ctx["res"])
        assert st == 200, (path, st)


def test_no_basemap():
    err = expect_error(ctx["d"].json("GET", "/basemap.json", token=ctx["tok"]), 404, "basemap")
    assert "--basemap" in err["message"], err
    expect_error(ctx["d"].json("GET", f"/basemap/{Z}/{X}/{Y}.png", token=ctx["tok"]), 404,
                 "basemap")


def refused(path):
    """serve --basemap PATH: exits non-zero; its output."""
    p = subprocess.run([BIN, "serve", "--db", ctx["db"], "--port", "0", "--osmand-port", "0",
                        "--basemap", path], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0, f"daemon started with --basemap {path}"
    return p.stdout + p.stderr


def test_not_mbtiles_refused():
    d = ctx["dir"]
    text = os.path.join(d, "notes.mbtiles")
    with open(text, "w") as f:
        f.write("not a database at all\n" * 100)
    out = refused(text)
    assert text in out and "not an MBTiles" in out, out
    nodb = os.path.join(d, "absent.mbtiles")
    out = refused(nodb)
    assert nodb in out and "cannot open" in out, out
    empty = os.path.join(d, "empty.mbtiles")
    sqlite3.connect(empty).execute("CREATE TABLE metadata (name TEXT, value TEXT)").connection.close()
    out = refused(empty)
    assert empty in out and "'tiles'" in out, out
    gif = os.path.join(d, "gif.mbtiles")
    mbtiles(gif, {"name": "x", "format": "gif"}, {})
    out = refused(gif)
    assert gif in out and "'gif'" in out, out
    nolayers = os.path.join(d, "nolayers.mbtiles")
    mbtiles(nolayers, {"name": "x", "format": "pbf"}, {})
    out = refused(nolayers)
    assert nolayers in out and "vector_layers" in out, out


if __name__ == "__main__":
    setup()
    try:
        main([test_tilejson_raster, test_raster_tiles_flip_tms_rows, test_missing_tile_is_204,
              test_bad_paths, test_vector_tilejson_and_gzip, test_who_may_read, test_no_basemap,
              test_not_mbtiles_refused])
    finally:
        teardown()
