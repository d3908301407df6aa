#!/usr/bin/env python3
"""Writes the small test layers in tests/data, each named for what it shows.

Run from anywhere: python3 tests/data/make_data.py (needs gdal-bin's ogr2ogr
for the Shapefiles). The outputs are committed; tests never run this.

The fixture ground: a district D1 = [116.0,116.2] x [39.0,39.2] cut into two
streets S1 (west) and S2 (east) along lon 116.1.
"""
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def sq(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def fc(features):
    return {"type": "FeatureCollection", "features": features}


def feat(props, geom):
    return {"type": "Feature", "properties": props, "geometry": geom}


def poly(coords):
    return {"type": "Polygon", "coordinates": coords}


def write(name, obj):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
            f.write("\n")


district = fc([feat({"id": "D1", "name": "测试区", "code": "D1"}, poly(sq(116.0, 39.0, 116.2, 39.2)))])
streets = fc([
    feat({"id": "S1", "name": "西街道", "parent_code": "D1"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S2", "name": "东街道", "parent_code": "D1"}, poly(sq(116.1, 39.0, 116.2, 39.2))),
])
write("ok-district.geojson", district)
write("ok-streets.geojson", streets)

# invalid geometry: a bow-tie ring crossing itself at (116.05, 39.05)
write("invalid-bowtie.geojson", fc([feat({"id": "B1", "name": "蝴蝶"}, poly(
    [[[116.0, 39.0], [116.1, 39.1], [116.1, 39.0], [116.0, 39.1], [116.0, 39.0]]]))]))
write("empty-geometry.geojson", fc([feat({"id": "E1", "name": "空"}, {"type": "MultiPolygon", "coordinates": []})]))
write("no-geometry.geojson", fc([feat({"id": "E2", "name": "无"}, None)]))
write("wrong-type-line.geojson", fc([feat({"id": "L1", "name": "线"}, {
    "type": "LineString", "coordinates": [[116.0, 39.0], [116.1, 39.1]]})]))
write("duplicate-ids.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S1", "name": "东街道"}, poly(sq(116.1, 39.0, 116.2, 39.2))),
]))
# a street far away from D1: no parent overlaps it
write("missing-parent.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S9", "name": "远方街道"}, poly(sq(117.0, 40.0, 117.1, 40.1))),
]))
write("missing-parent-code.geojson", fc([
    feat({"id": "S1", "name": "西街道", "parent_code": "D1"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S2", "name": "东街道", "parent_code": "D404"}, poly(sq(116.1, 39.0, 116.2, 39.2))),
]))
# S2 starts at 116.09: a 0.01 x 0.2 degree band is covered twice
write("overlap-siblings.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S2", "name": "东街道"}, poly(sq(116.09, 39.0, 116.2, 39.2))),
]))
# S2 starts at 116.11: a band of D1 belongs to no street
write("gap-in-parent.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S2", "name": "东街道"}, poly(sq(116.11, 39.0, 116.2, 39.2))),
]))
# S2 reaches 0.02 degrees east of D1
write("child-outside-parent.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "S2", "name": "东街道"}, poly(sq(116.1, 39.0, 116.22, 39.2))),
]))
write("out-of-range.geojson", fc([feat({"id": "R1", "name": "越界"}, poly(sq(200.0, 39.0, 200.1, 39.1)))]))
write("nan-coordinates.geojson",
      '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"N1"},'
      '"geometry":{"type":"Polygon","coordinates":[[[NaN,39.0],[116.1,39.0],[116.1,39.1],'
      '[116.0,39.1],[NaN,39.0]]]}}]}\n')
write("malformed.geojson", '{"type": "FeatureCollection", "features": [ {"type": Feature} ]}\n')
full = json.dumps(streets, ensure_ascii=False)
write("truncated.geojson", full[: len(full) // 2])
write("empty.geojson", "")
# a hole: the district has a lake in the middle, and a multipolygon exclave
write("holes-multipolygon.geojson", fc([
    feat({"id": "H1", "name": "有湖的区"}, {"type": "MultiPolygon", "coordinates": [
        [[[116.0, 39.0], [116.2, 39.0], [116.2, 39.2], [116.0, 39.2], [116.0, 39.0]],
         [[116.05, 39.05], [116.05, 39.15], [116.15, 39.15], [116.15, 39.05], [116.05, 39.05]]],
        [[[116.3, 39.0], [116.4, 39.0], [116.4, 39.1], [116.3, 39.1], [116.3, 39.0]]],
    ]}),
]))
# two slivers cut at an edge, as an extract's boundary leaves them (Monaco's OSM
# buildings have seven): a ring there and back, and a ring along D1's south
# edge. MakeValid leaves a line of each, no area: --repair cannot save them,
# --skip-unrepairable leaves them out; S1 and S2 still tile D1.
sliver_there_and_back = [[[116.1, 39.0], [116.1, 39.2], [116.1, 39.0]]]
sliver_on_edge = [[[116.0, 39.0], [116.1, 39.0], [116.2, 39.0], [116.0, 39.0]]]
write("unrepairable-slivers.geojson", fc([
    feat({"id": "S1", "name": "西街道"}, poly(sq(116.0, 39.0, 116.1, 39.2))),
    feat({"id": "X1", "name": "碎片"}, {"type": "MultiPolygon", "coordinates": [sliver_there_and_back]}),
    feat({"id": "S2", "name": "东街道"}, poly(sq(116.1, 39.0, 116.2, 39.2))),
    feat({"id": "X2", "name": "边角"}, poly(sliver_on_edge)),
]))
# nothing but a sliver: skipping it would leave an empty layer
write("unrepairable-only.geojson", fc([
    feat({"id": "X1", "name": "碎片"}, {"type": "MultiPolygon", "coordinates": [sliver_there_and_back]}),
]))
# the same two streets with coordinates in GCJ-02 (as a Chinese web map gives them)
write("csv-wkt.csv", "id,name,parent_code,wkt\n"
      'S1,西街道,D1,"POLYGON((116.0 39.0,116.1 39.0,116.1 39.2,116.0 39.2,116.0 39.0))"\n'
      'S2,东街道,D1,"POLYGON((116.1 39.0,116.2 39.0,116.2 39.2,116.1 39.2,116.1 39.0))"\n')
with open(os.path.join(HERE, "gbk-attributes.csv"), "wb") as f:
    f.write("id,name,wkt\n".encode())
    f.write('D1,测试区,"POLYGON((116.0 39.0,116.2 39.0,116.2 39.2,116.0 39.2,116.0 39.0))"\n'.encode("gbk"))


def ogr(*args):
    subprocess.run(["ogr2ogr", *args], check=True)


def shp(name, src, *extra):
    base = os.path.join(HERE, name)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        if os.path.exists(base + ext):
            os.remove(base + ext)
    ogr("-f", "ESRI Shapefile", base + ".shp", src, *extra)


tmp = os.path.join(HERE, "_tmp.geojson")
# the district in New York State Plane (EPSG:2263, US feet), with and without .prj
json.dump(fc([feat({"id": "NY1", "name": "Manhattan-ish"}, poly(sq(-74.02, 40.70, -73.93, 40.80)))]),
          open(tmp, "w"))
shp("stateplane-feet", tmp, "-t_srs", "EPSG:2263", "-lco", "ENCODING=UTF-8")
shp("no-prj-feet", tmp, "-t_srs", "EPSG:2263", "-lco", "ENCODING=UTF-8")
os.remove(os.path.join(HERE, "no-prj-feet.prj"))
shp("no-prj-lonlat", os.path.join(HERE, "ok-district.geojson"), "-lco", "ENCODING=UTF-8")
os.remove(os.path.join(HERE, "no-prj-lonlat.prj"))
# GBK attributes in the DBF, declared by a .cpg file
shp("gbk-cpg", os.path.join(HERE, "ok-district.geojson"), "-lco", "ENCODING=CP936")
# CGCS2000 / 3-degree Gauss-Krüger zone 39 (EPSG:4527), as Chinese surveys deliver
shp("cgcs2000-gk39", os.path.join(HERE, "ok-district.geojson"), "-t_srs", "EPSG:4527",
    "-lco", "ENCODING=UTF-8")
os.remove(tmp)
for name in ("ok-streets.kml",):
    p = os.path.join(HERE, name)
    if os.path.exists(p):
        os.remove(p)
ogr("-f", "KML", os.path.join(HERE, "ok-streets.kml"), os.path.join(HERE, "ok-streets.geojson"))
print("wrote", len(os.listdir(HERE)), "files")
# GBK attributes in a DBF with no .cpg and no code page byte: --encoding GBK needed
shp("gbk-no-cpg", os.path.join(HERE, "ok-district.geojson"), "-lco", "ENCODING=CP936")
os.remove(os.path.join(HERE, "gbk-no-cpg.cpg"))
with open(os.path.join(HERE, "gbk-no-cpg.dbf"), "r+b") as f:
    f.seek(29)
    f.write(b"\x00")   # language driver id: none
p = os.path.join(HERE, "ok-streets.gpkg")
if os.path.exists(p):
    os.remove(p)
ogr("-f", "GPKG", p, os.path.join(HERE, "ok-streets.geojson"), "-nln", "streets")
