#!/usr/bin/env python3
"""GDAL's own OGC API - Features client (the OAPIF driver of ogrinfo and
ogr2ogr) reads every collection of the sample district from the real daemon,
paging through all 21,500 buildings by following our next links."""
import os
import sqlite3
import subprocess

from harness import Daemon, TempDir, main, run

ctx = {}


def gdal(*args, token=True):
    env = dict(os.environ)
    if token:
        env["GDAL_HTTP_HEADERS"] = "Authorization: Bearer " + ctx["token"]
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=900)
    return p.returncode, p.stdout, p.stderr


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    ctx["dir"] = d
    db = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["token"] = run("user", "add", "gis", "--role", "planner", "--db", db, check=0)[1].strip()
    ctx["d"] = Daemon(db)
    ctx["url"] = f"OAPIF:http://127.0.0.1:{ctx['d'].port}/ogc"
    ctx["counts"] = dict(sqlite3.connect(db).execute("select name, feature_count from layers"))


def teardown():
    ctx["d"].stop()
    ctx["tmp"].__exit__(None, None, None)


def test_ogrinfo_lists_every_collection():
    st, out, err = gdal("ogrinfo", "-ro", "-q", ctx["url"])
    assert st == 0, err
    for name in ctx["counts"]:
        assert name in out, (name, out)


def test_ogrinfo_counts_match():
    for name, n in ctx["counts"].items():
        st, out, err = gdal("ogrinfo", "-ro", "-so", ctx["url"], name)
        assert st == 0, err
        assert f"Feature Count: {n}" in out, (name, n, out)
        assert "Multi Polygon" in out


def test_ogr2ogr_copies_every_collection_paging_all_buildings():
    gpkg = os.path.join(ctx["dir"], "out.gpkg")
    for name, n in ctx["counts"].items():
        st, out, err = gdal("ogr2ogr", "-f", "GPKG", "-append", gpkg, ctx["url"], name,
                            "-nln", name, "-mapFieldType", "StringList=String")
        assert st == 0, (name, err)
    con = sqlite3.connect(gpkg)
    for name, n in ctx["counts"].items():
        got = con.execute(f'select count(*), count(distinct id) from "{name}"').fetchone()
        assert got == (n, n), (name, n, got)
    # what GDAL received is the hierarchy, not just shapes
    row = con.execute('select name, parent, community_id from "grid" limit 1').fetchone()
    assert row[0].endswith("网格") and row[1] == row[2]


def test_attribute_and_spatial_filters():
    st, out, err = gdal("ogrinfo", "-ro", "-so", ctx["url"], "building", "-where", "use = '住宅'")
    assert st == 0, err
    n = int(out.split("Feature Count: ")[1].split()[0])
    assert 1000 < n < 21500, n
    st, out, err = gdal("ogrinfo", "-ro", "-so", ctx["url"], "grid", "-spat", "116.32", "40.0", "116.33", "40.005")
    assert st == 0, err
    n = int(out.split("Feature Count: ")[1].split()[0])
    assert 0 < n < 234, n


def test_without_token_gdal_is_refused():
    st, out, err = gdal("ogrinfo", "-ro", "-so", ctx["url"], "grid", token=False)
    assert st != 0 and "401" in (out + err), (out, err)


if __name__ == "__main__":
    setup()
    try:
        main([test_ogrinfo_lists_every_collection, test_ogrinfo_counts_match,
              test_ogr2ogr_copies_every_collection_paging_all_buildings,
              test_attribute_and_spatial_filters, test_without_token_gdal_is_refused])
    finally:
        teardown()
