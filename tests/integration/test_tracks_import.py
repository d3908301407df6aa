#!/usr/bin/env python3
"""gridcc tracks import: GPX (segments, an empty one, a point without time, a
BOM, route points), GeoLife .plt (the 6-line header, altitude -777), CSV (ms
timestamps, a bad row, zone-less times with --tz, gcj02), re-imports that are
all duplicates, and the failures: unknown worker, missing file, not a track.
Every file is written by the test."""
import os
import sqlite3

from harness import TempDir, main, run

# Around Tsinghua's main building: inside the sample district's grids
LON, LAT = 116.3262, 40.0032
BOM = b"\xef\xbb\xbf"

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>巡查</name>
  <trkseg>
   <trkpt lat="40.0032" lon="116.3262"><ele>50.5</ele><time>2024-05-01T00:00:00Z</time></trkpt>
   <trkpt lat="40.0033" lon="116.3263"><ele>51</ele></trkpt>
   <trkpt lat="40.0034" lon="116.3264"><time>2024-05-01T08:00:10+08:00</time></trkpt>
  </trkseg>
  <trkseg></trkseg>
  <trkseg>
   <trkpt lat="40.0035" lon="116.3265"><time>2024-05-01T00:00:20.250Z</time></trkpt>
   <trkpt lat="95" lon="116.3266"><time>2024-05-01T00:00:30Z</time></trkpt>
  </trkseg>
 </trk>
</gpx>
"""

ROUTE_GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <rte><rtept lat="40.0032" lon="116.3262"><time>2024-06-01T00:00:00Z</time></rtept>
  <rtept lat="40.0033" lon="116.3263"><time>2024-06-01T00:00:05Z</time></rtept></rte>
</gpx>
"""

PLT = ("Geolife trajectory\r\nWGS 84\r\nAltitude is in Feet\r\nReserved 3\r\n"
       "0,2,255,My Track,0,0,2,8421376\r\n0\r\n"
       "40.0032,116.3262,0,492,39744.1201851852,2008-10-23,02:53:04\r\n"
       "40.0033,116.3263,0,-777,39744.1202546296,2008-10-23,02:53:10\r\n"
       "40.0034,116.3264,0,100,39744.1203240741,2008-10-23,02:53:16\r\n")

T0 = 1714521600000   # 2024-05-01T00:00:00Z in ms
CSV = ("timestamp,latitude,longitude,speed,altitude,accuracy,bearing\n"
       f"{T0},40.0032,116.3262,1.5,50,8,90\n"
       f"{T0 + 1000},40.0033,116.3263,,,,\n"
       f"{T0 + 2000},abc,116.3264,,,,\n"
       f",40.0035,116.3265,,,,\n"
       f"{T0 + 4000},40.0036,116.3266,2,,,\n")


def write(d, name, text, bom=False):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write((BOM if bom else b"") + text.encode())
    return p


def seeded(d):
    db = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    run("user", "add", "王网格员", "--role", "worker", "--db", db, check=0)
    return db


def worker(db, name):
    """Adds a worker; returns its user id."""
    run("user", "add", name, "--role", "worker", "--db", db, check=0)
    con = sqlite3.connect(db)
    uid = con.execute("select id from users where name = ?", (name,)).fetchone()[0]
    con.close()
    return uid


def fixes(db, uid):
    con = sqlite3.connect(db)
    rows = con.execute("select t, lon, lat, altitude, speed, accuracy, bearing, source, grid_id "
                       "from positions where user_id = ? order by t", (uid,)).fetchall()
    con.close()
    return rows


def test_gpx_segments_no_time_bom_and_reimport(d, db):
    p = write(d, "walk.gpx", GPX, bom=True)
    st, out, err = run("tracks", "import", p, "--worker", "王网格员", "--db", db)
    assert st == 0, err
    assert f"{p}: gpx (track_points), 5 read, 3 imported, 0 duplicates, 2 skipped, 3 in a grid" in out, out
    assert "feature 2 (track 0, segment 0): no time" in out, out
    assert "feature 5 (track 0, segment 2): latitude 95 out of range" in out, out
    rows = fixes(db, 1)
    assert [r[0] for r in rows] == [T0, T0 + 10000, T0 + 20250], rows
    assert rows[0][3] == 50.5 and rows[1][3] is None
    assert all(r[7] == "gpx" and r[8] for r in rows), "every fix a gpx one, geotagged to a grid"
    # the same file again, the worker by id: all duplicates, still a success
    st, out, err = run("tracks", "import", p, "--worker", "1", "--db", db)
    assert st == 0, err
    assert "5 read, 0 imported, 3 duplicates, 2 skipped" in out, out
    assert len(fixes(db, 1)) == 3


def test_gpx_route_points_when_no_track(d, db):
    uid = worker(db, "route")
    p = write(d, "route.gpx", ROUTE_GPX)
    st, out, err = run("tracks", "import", p, "--worker", "route", "--db", db)
    assert st == 0, err
    assert "gpx (route_points), 2 read, 2 imported" in out, out
    assert "note: no track points: took the route points instead" in out, out
    assert len(fixes(db, uid)) == 2


def test_plt(d, db):
    uid = worker(db, "plt")
    p = write(d, "20081023025304.plt", PLT)
    st, out, err = run("tracks", "import", p, "--worker", str(uid), "--db", db)
    assert st == 0, err
    assert "plt, 3 read, 3 imported, 0 duplicates, 0 skipped, 3 in a grid" in out, out
    rows = fixes(db, uid)
    assert [r[0] for r in rows] == [1224730384000, 1224730390000, 1224730396000], rows  # GMT
    assert abs(rows[0][3] - 492 * 0.3048) < 1e-6 and rows[1][3] is None   # feet; -777 unknown
    assert rows[0][1:3] == (116.3262, 40.0032) and rows[0][7] == "plt"
    st, out, err = run("tracks", "import", p, "--worker", str(uid), "--db", db)
    assert st == 0 and "3 read, 0 imported, 3 duplicates, 0 skipped" in out, out


def test_csv_ms_bad_row_and_bom(d, db):
    uid = worker(db, "csv")
    p = write(d, "export.csv", CSV, bom=True)
    st, out, err = run("tracks", "import", p, "--worker", "csv", "--db", db)
    assert st == 0, err
    assert f"{p}: csv, 5 read, 3 imported, 0 duplicates, 2 skipped, 3 in a grid" in out, out
    assert "line 4: latitude/longitude 'abc', '116.3264' are not numbers" in out, out
    assert "line 5: no time" in out, out
    rows = fixes(db, uid)
    assert [r[0] for r in rows] == [T0, T0 + 1000, T0 + 4000], rows
    assert rows[0][3:8] == (50.0, 1.5, 8.0, 90.0, "csv"), rows[0]
    assert rows[1][3:7] == (None, None, None, None), rows[1]


def test_duplicates_across_files(d, db):
    # the CSV's first fix and the GPX's first are at the same millisecond
    uid = worker(db, "李网格员")
    gpx = write(d, "w2.gpx", GPX)
    csv = write(d, "w2.csv", CSV)
    st, out, err = run("tracks", "import", gpx, csv, "--worker", "李网格员", "--db", db)
    assert st == 0, err
    assert f"{gpx}: gpx (track_points), 5 read, 3 imported, 0 duplicates" in out, out
    assert f"{csv}: csv, 5 read, 2 imported, 1 duplicates, 2 skipped" in out, out
    assert len(fixes(db, uid)) == 5


def test_csv_local_times_with_tz_and_gcj02(d, db):
    uid = worker(db, "赵网格员")
    # GCJ-02 coordinates of the same place (a phone map's), Beijing times
    # without a zone, date and time in two columns
    p = write(d, "phone.txt", "date,time,lat,lng\n"
                              "2024-05-01,08:00:00,40.0045,116.3323\n"
                              "2024/05/01,08:00:05,40.0045,116.3323\n"
                              "2024/05/01,08:00:06.5,40.0045,116.3323\n"
                              "1999-12-31,23:59:59,40.0045,116.3323\n"
                              "tomorrow,noon,40.0045,116.3323\n")
    st, out, err = run("tracks", "import", p, "--worker", "赵网格员", "--db", db, "--crs", "gcj02",
                       "--tz", "+08:00")
    assert st == 0, err
    assert "csv, 5 read, 2 imported, 0 duplicates, 3 skipped, 2 in a grid" in out, out
    assert "line 4: unreadable time '2024/05/01 08:00:06.5'" in out, out
    assert "line 5: time '1999-12-31 23:59:59' is before 2000" in out, out
    assert "line 6: unreadable time 'tomorrow noon'" in out, out
    rows = fixes(db, uid)
    assert [r[0] for r in rows] == [T0, T0 + 5000], rows   # 08:00 at +08:00 is 00:00 UTC
    assert abs(rows[0][1] - LON) < 0.001 and abs(rows[0][2] - LAT) < 0.001, rows[0]
    # the same file read as UTC lands eight hours later: new fixes, not duplicates
    st, out, err = run("tracks", "import", p, "--worker", "赵网格员", "--db", db, "--crs", "gcj02",
                       "--tz", "UTC")
    assert st == 0 and "2 imported, 0 duplicates" in out, out
    assert fixes(db, uid)[-1][0] == T0 + 8 * 3600000 + 5000
    # a full date-time beside a date column is not joined to it; a zone it names wins over --tz
    p = write(d, "both.csv", "date,datetime,lat,lon\n2024-05-01,2024-05-01T00:00:07.125Z,40.0032,116.3262\n")
    st, out, err = run("tracks", "import", p, "--worker", "赵网格员", "--db", db, "--tz", "+08:00")
    assert st == 0 and "1 read, 1 imported" in out, out
    assert T0 + 7125 in [r[0] for r in fixes(db, uid)]


def test_failures(d, db):
    good = write(d, "good.plt", PLT)
    # unknown worker: exit 1 before any file is read
    st, out, err = run("tracks", "import", good, "--worker", "nobody", "--db", db)
    assert st == 1 and "no user with id or name 'nobody'" in err and out == "", (out, err)
    st, out, err = run("tracks", "import", good, "--worker", "999", "--db", db)
    assert st == 1 and "'999'" in err
    # a missing file and a file that is not a track: named, the others still import
    notrack = write(d, "grid.json", '{"type":"FeatureCollection","features":[]}\n')
    nolat = write(d, "orders.csv", "工单编号,地址\n1,清华园\n")
    binary = os.path.join(d, "photo.dat")
    with open(binary, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    garbage = write(d, "broken.gpx", "this is not XML\n")
    noheader = write(d, "bad.plt", "lat,lon\n1,2\n")
    missing = os.path.join(d, "missing.gpx")
    uid = worker(db, "钱网格员")
    st, out, err = run("tracks", "import", missing, notrack, nolat, binary, garbage, noheader, good,
                       "--worker", "钱网格员", "--db", db)
    assert st == 1, (out, err)
    assert f"{missing}: no such file" in err, err
    assert f"{notrack}: not a track: a JSON file" in err, err
    assert f"{nolat}: not a track: no latitude column" in err and "the header has: 工单编号, 地址" in err, err
    assert f"{binary}: not a track: a binary file" in err, err
    assert f"{garbage}: cannot read as GPX" in err, err
    assert f"{noheader}: not a GeoLife .plt" in err, err
    assert f"{good}: plt, 3 read, 3 imported" in out, out
    assert len(fixes(db, uid)) == 3
    # a receiver without a clock (1901: a zero 32-bit time) and a file with no points
    old = write(d, "old.gpx", '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
                '<trk><trkseg><trkpt lat="40.0032" lon="116.3262"><time>1901-12-13T20:45:52Z</time>'
                '</trkpt></trkseg></trk></gpx>')
    nopoints = write(d, "nothing.gpx", '<gpx version="1.1" creator="t" '
                     'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg/></trk></gpx>')
    st, out, err = run("tracks", "import", old, nopoints, "--worker", "钱网格员", "--db", db)
    assert st == 1, (out, err)
    assert "feature 1 (track 0, segment 0): time 1901-12-13T20:45:52Z is before 2000" in out, out
    assert f"{nopoints}: no track points, route points or waypoints" in err, err
    # nothing usable at all: exit 1
    empty = write(d, "times.csv", "lat,lon,time\n40,116,\n")
    st, out, err = run("tracks", "import", empty, "--worker", "钱网格员", "--db", db)
    assert st == 1 and "1 skipped" in out and "no fix could be taken" in err, (out, err)


def test_usage_is_2(d, db):
    p = write(d, "u.plt", PLT)
    assert run("tracks", "import", p, "--db", db)[0] == 2                       # no --worker
    assert run("tracks", "import", "--worker", "1", "--db", db)[0] == 2         # no FILE
    assert run("tracks", "export", p, "--worker", "1", "--db", db)[0] == 2
    st, out, err = run("tracks", "import", p, "--worker", "1", "--db", db, "--crs", "EPSG:3857")
    assert st == 2 and "--crs" in err
    st, out, err = run("tracks", "import", p, "--worker", "1", "--db", db, "--tz", "Mars/Olympus")
    assert st == 2 and "--tz" in err
    st, out, err = run("help")
    assert "tracks import FILE... --worker" in out


def with_db(tests):
    """Each test gets the directory and one seeded db (seeding takes seconds)."""
    state = {}

    def wrap(t):
        def w():
            t(state["d"], state["db"])
        w.__name__ = t.__name__
        return w

    def setup():
        state["tmp"] = TempDir()
        state["d"] = state["tmp"].__enter__()
        state["db"] = seeded(state["d"])

    def teardown():
        state["tmp"].__exit__(None, None, None)

    return [setup] + [wrap(t) for t in tests] + [teardown]


if __name__ == "__main__":
    main(with_db([test_gpx_segments_no_time_bom_and_reimport, test_gpx_route_points_when_no_track,
                  test_plt, test_csv_ms_bad_row_and_bom, test_duplicates_across_files,
                  test_csv_local_times_with_tz_and_gcj02, test_failures, test_usage_is_2]))
