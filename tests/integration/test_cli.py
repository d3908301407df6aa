#!/usr/bin/env python3
"""The command line: exit statuses (0 ok, 1 rejected, 2 usage), messages that
name the file, feature and line, seed, user add, geotag."""
import json
import os
import signal
import sqlite3
import subprocess
import time

from harness import BIN, DATA, LAYERS, TempDir, main, run


def test_usage_is_2():
    assert run()[0] == 2
    assert run("frobnicate")[0] == 2
    assert run("import", "--db", "x.db")[0] == 2             # no FILE, no --level
    assert run("geotag", "116", "--db", "x.db")[0] == 2       # one coordinate
    assert run("serve")[0] == 2                               # no --db
    assert run("serve", "--db", "x.db", "--port", "99999")[0] == 2
    assert run("user", "add", "x", "--db", "x.db")[0] == 2    # no --role
    st, out, err = run("import", "a.geojson", "--level", "grid", "--db", "x.db", "--topology", "maybe")
    assert st == 2 and "--topology" in err


def test_rejections_are_1_and_named():
    with TempDir() as d:
        db = os.path.join(d, "t.db")
        st, out, err = run("import", os.path.join(DATA, "invalid-bowtie.geojson"), "--level", "district", "--db", db)
        assert st == 1
        assert "invalid-bowtie.geojson: feature #1 (id B1, name 蝴蝶): invalid geometry: Self-intersection at 116.0500000 39.0500000" in err, err
        st, out, err = run("import", os.path.join(DATA, "gbk-attributes.csv"), "--level", "district", "--db", db)
        assert st == 1 and "line 2" in err, err
        st, out, err = run("import", os.path.join(DATA, "empty.geojson"), "--level", "district", "--db", db)
        assert st == 1 and "empty file" in err
        st, out, err = run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "county", "--db", db)
        assert st == 1 and "unknown level" in err
        st, out, err = run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", db, "--srs", "EPSG:0")
        assert st == 1 and "unknown CRS" in err, err
        st, out, err = run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", "/nonexistent/t.db")
        assert st == 1 and "/nonexistent/t.db" in err
        # nothing stored by any of it
        con = sqlite3.connect(db)
        assert con.execute("select count(*) from layers").fetchone()[0] == 0
        st, out, err = run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", db, "--dry-run")
        assert st == 0 and "dry run" in out
        assert con.execute("select count(*) from layers").fetchone()[0] == 0
        run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", db, check=0)
        assert con.execute("select count(*) from layers").fetchone()[0] == 1


def test_skip_unrepairable():
    """Slivers --repair cannot save: rejected without the flag; with it left out,
    each named, and counted in the summary."""
    with TempDir() as d:
        db = os.path.join(d, "t.db")
        slivers = os.path.join(DATA, "unrepairable-slivers.geojson")
        run("import", os.path.join(DATA, "ok-district.geojson"), "--level", "district", "--db", db, check=0)
        st, out, err = run("import", slivers, "--level", "street", "--db", db, "--repair")
        assert st == 1 and "2 problems: import rejected" in err, err
        assert "feature #2 (id X1, name 碎片): invalid geometry: Too few points" in err, err
        assert "--skip-unrepairable leaves such features out" in err, err
        st, out, err = run("import", slivers, "--level", "street", "--db", db, "--skip-unrepairable")
        assert st == 2 and "--skip-unrepairable needs --repair" in err, err
        con = sqlite3.connect(db)
        streets = "select count(*) from features where layer='street'"
        for dry in (True, False):
            args = ["import", slivers, "--level", "street", "--db", db, "--repair", "--skip-unrepairable"]
            st, out, err = run(*args, *(["--dry-run"] if dry else []))
            assert st == 0, err
            assert "layer 'street': 2 features" in out and "  skipped: 2 (no area after repair)\n" in out, out
            lines = [l for l in err.splitlines() if l.startswith("skipped: ")]
            assert len(lines) == 2, err
            assert lines[0].endswith("unrepairable-slivers.geojson: feature #2 (id X1, name 碎片): invalid geometry: "
                                     "Too few points in geometry component at 116.1000000 39.0000000, and repair "
                                     "left no area (only a LineString)"), lines
            assert "feature #4 (id X2, name 边角)" in lines[1], lines
            assert "error" not in err, err
            assert con.execute(streets).fetchone()[0] == (0 if dry else 2)
        con.close()


def test_user_add():
    with TempDir() as d:
        db = os.path.join(d, "t.db")
        st, out, err = run("user", "add", "王网格员", "--role", "worker", "--db", db)
        assert st == 0
        token = out.strip()
        assert token.startswith("gcc_") and len(token) == 47
        assert token not in err
        st, out, err = run("user", "add", "王网格员", "--role", "worker", "--db", db)
        assert st == 1 and "already exists" in err
        st, out, err = run("user", "add", "x", "--role", "emperor", "--db", db)
        assert st == 1 and "unknown role" in err
        st, out, err = run("user", "add", "op", "--role", "operator", "--db", db, "--password-stdin", stdin="short\n")
        assert st == 1 and "8 characters" in err
        st, out, err = run("user", "add", "op", "--role", "operator", "--db", db, "--password-stdin", stdin="a long secret\n")
        assert st == 0
        raw = open(db, "rb").read()
        assert b"a long secret" not in raw and token.encode() not in raw


def test_seed_and_geotag():
    with TempDir() as d:
        db = os.path.join(d, "t.db")
        st, out, err = run("seed", "--db", db)
        assert st == 0, err
        assert "21500 features" in out and "234 features" in out
        # 清华园街道 around Tsinghua's main building
        st, out, err = run("geotag", "116.3262", "40.0032", "--db", db)
        assert st == 0, err
        chain = json.loads(out)
        assert chain["chain"]["street"]["name"] == "清华园街道", chain
        assert chain["chain"]["grid"] is not None
        assert any(x["department"] == "城管" for x in chain["departments"])
        # the same place in GCJ-02 (a phone map's coordinates) lands the same grid
        st, out2, err = run("geotag", "116.3323", "40.0045", "--db", db, "--srs", "gcj02")
        c2 = json.loads(out2)
        assert abs(c2["lon"] - 116.3262) < 0.001 and c2["chain"]["street"]["name"] == "清华园街道"
        # outside everything: an empty chain
        st, out, err = run("geotag", "-73.98", "40.75", "--db", db)
        assert st == 0 and all(v is None for v in json.loads(out)["chain"].values())
        st, out, err = run("geotag", "abc", "40", "--db", db)
        assert st == 2
        st, out, err = run("geotag", "116", "40", "--db", db, "--srs", "mars")
        assert st == 1 and "unknown CRS" in err


def test_kill_9_mid_write_keeps_previous_version():
    with TempDir() as d:
        db = os.path.join(d, "t.db")
        run("seed", "--db", db, check=0)
        con = sqlite3.connect(db)
        before = con.execute("select version, feature_count from layers where name='building'").fetchone()
        seq = con.execute("select max(seq) from change_log").fetchone()[0]
        con.close()
        wal = db + "-wal"
        base = os.path.getsize(wal) if os.path.exists(wal) else 0
        p = subprocess.Popen([BIN, "import", os.path.join(LAYERS, "buildings.geojson.gz"), "--level", "building",
                              "--db", db, "--parent-field", "parent_code"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the write has begun once the WAL grows by a few MB; then kill -9
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            if os.path.exists(wal) and os.path.getsize(wal) > base + (2 << 20):
                break
            time.sleep(0.005)
        assert p.poll() is None, "import finished before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
        con = sqlite3.connect(db)
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert con.execute("select version, feature_count from layers where name='building'").fetchone() == before
        assert con.execute("select count(*) from features where layer='building'").fetchone()[0] == before[1]
        assert con.execute("select max(seq) from change_log").fetchone()[0] == seq
        con.close()
        # and the store opens and serves the old version
        st, out, err = run("geotag", "116.3262", "40.0032", "--db", db)
        assert st == 0 and json.loads(out)["chain"]["grid"] is not None


if __name__ == "__main__":
    main([test_usage_is_2, test_rejections_are_1_and_named, test_skip_unrepairable, test_user_add, test_seed_and_geotag,
          test_kill_9_mid_write_keeps_previous_version])
