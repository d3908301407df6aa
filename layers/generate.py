#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""Deterministic sample-district generator for gridcc (网格化管理 sample data).

Usage:
    /usr/bin/python3 layers/generate.py [SOURCE_GEOJSON] [--out DIR] [--verify-only]

SOURCE_GEOJSON defaults to ../shared/realdata/beijing_subdistricts/subdistrict/
haidian-all.geojson relative to the repository root (the parent of layers/).
Output goes to the directory holding this script (layers/) unless --out is given.

The sample district copies the boundaries of six adjacent Haidian subdistricts
(bj-subdistricts, MIT) and fills them with generated communities, grids,
buildings, units, dedicated grids and department grids, sized after Xifeng
district (1 district, 6 streets, 36 communities, 234 grids).

Everything is deterministic: seeded random.Random instances, sorted iteration,
fixed '%.7f' coordinate formatting, gzip written with mtime=0.  Re-running on
the same machine (same GEOS) produces byte-identical files.

Exact tiling: all polygon layers (streets, district, communities, grids and the
three department layers) are assembled from ONE planar arrangement: the
boundaries of every (floating point) piece are noded together with GEOS
snap-rounding on the 1e-7 degree grid (GEOSUnaryUnionPrec), polygonized into
faces, and every output polygon is the union of the faces assigned to it.  All
layers therefore share identical vertex coordinates, which are already on the
7-decimal grid, so rounding cannot open gaps or overlaps.

Requires only python3-shapely 1.8.x (GEOS >= 3.9) from Debian.
"""

import argparse
import ctypes
import gzip
import io
import json
import math
import os
import random
import sys
import time
import warnings

from shapely.errors import ShapelyDeprecationWarning

warnings.filterwarnings("ignore", category=ShapelyDeprecationWarning)

from shapely import affinity  # noqa: E402
from shapely.geometry import (GeometryCollection, LineString, MultiPoint,  # noqa: E402
                              MultiPolygon, Point, Polygon, box, shape)
from shapely.geometry.base import geom_factory  # noqa: E402
from shapely.geometry.polygon import orient  # noqa: E402
from shapely.geos import lgeos  # noqa: E402
from shapely.ops import nearest_points, polygonize, unary_union, voronoi_diagram  # noqa: E402
from shapely.prepared import prep  # noqa: E402
from shapely.strtree import STRtree  # noqa: E402

# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------

SEED = "gridcc-sample-v1"

LON0, LAT0 = 116.33, 39.99
KX = math.cos(math.radians(LAT0)) * 111320.0   # metres per degree of lon
KY = 110574.0                                   # metres per degree of lat
M2_PER_DEG2 = KX * KY
GRID = 1e-7                                     # 7 decimals

DISTRICT_CODE = "110108"
STREETS = [  # code, name
    ("110108014000", "清华园街道"),
    ("110108015000", "燕园街道"),
    ("110108011000", "中关村街道"),
    ("110108010000", "学院路街道"),
    ("110108012000", "海淀街道"),
    ("110108018000", "花园路街道"),
]
STREET_SOURCE = "bj-subdistricts (MIT), boundaries traced from 天地图, not guaranteed accurate"
COMMUNITIES_PER_STREET = 6
TOTAL_GRIDS = 234
MIN_GRIDS_PER_COMMUNITY = 4
BUILDING_TARGET = 21500
UNIT_SHARE = 0.10
DEPTS = [  # department, id prefix, cells, name pattern
    ("城管", "CG", 18, "城管第{}责任区"),
    ("环卫", "HW", 12, "环卫第{}作业区"),
    ("公安", "GA", 9, "公安第{}警务区"),
]
SLIVER_M2 = 1.0          # drop polygon parts smaller than this
HOLE_FILL_M2 = 1000.0    # fill district holes smaller than this
BUILDING_MARGIN = 2.0    # building to grid boundary (m), hard requirement
BUILDING_SPACING = 3.0   # building to building (m), hard requirement
TOL_M2 = 1.0             # max overlap / gap area (hard requirement)

# --------------------------------------------------------------------------
# name material
# --------------------------------------------------------------------------

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷"
            "侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤")
GIVEN_1 = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华兰萍鹏飞斌宇浩凯云莉亮婷雪琳晨欣怡佳"
           "涵睿博文思彤雨轩萱诺然俊峰东新梅珍德立国红海志建玉秀桂春晓")
GIVEN_2 = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华兰萍鹏飞斌宇浩凯云莉亮婷雪琳晨欣怡佳"
           "涵睿博文思彤雨轩萱诺然俊峰东新梅珍德立国红海志建玉秀桂春晓宁安琪瑶颖慧嘉豪")
COMM_FIRST = "荷东清蓝双学志塔明牡知科保芙太展友万稻善燕静怡翠枫柳松桃锦和安福康泰瑞嘉育"
COMM_SECOND = "清王华旗榆新光丹春泉湖林山河桥德和祥秀宁馨景溪月阳槐枣杏兴"
COMM_SUFFIX = "苑园里庄村院"
ESTATE_SUFFIXES = ["小区", "东区", "西区", "南区", "北区", "东里", "西里", "南里", "北里", "家园",
                   "新村", "公寓", "嘉园", "花园", "一区", "二区", "三区", "四区", "五区", "六区",
                   "七区", "八区", "九区", "雅苑", "新苑", "宿舍"]
NONRES_USES = [("商业", 30), ("办公", 25), ("公共服务", 15), ("教育", 8), ("配套", 17), ("仓储", 5)]


def person_name(rng):
    # mildly skewed surname distribution
    i = min(int(rng.expovariate(1.0 / 18.0)), len(SURNAMES) - 1)
    s = SURNAMES[i]
    if rng.random() < 0.3:
        return s + rng.choice(GIVEN_1)
    return s + rng.choice(GIVEN_1) + rng.choice(GIVEN_2)


# --------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------

def ll2m_xy(x, y):
    return ((x - LON0) * KX, (y - LAT0) * KY)


def m2ll_xy(x, y):
    return (x / KX + LON0, y / KY + LAT0)


def map_geom(g, f):
    t = g.geom_type
    if t == "Polygon":
        if g.is_empty:
            return g
        return Polygon([f(*c[:2]) for c in g.exterior.coords],
                       [[f(*c[:2]) for c in r.coords] for r in g.interiors])
    if t == "MultiPolygon":
        return MultiPolygon([map_geom(p, f) for p in g.geoms])
    if t == "Point":
        return Point(f(g.x, g.y))
    if t == "LineString":
        return LineString([f(*c[:2]) for c in g.coords])
    if t in ("MultiLineString", "GeometryCollection", "MultiPoint"):
        return GeometryCollection([map_geom(p, f) for p in g.geoms])
    raise ValueError(t)


def to_m(g):
    return map_geom(g, ll2m_xy)


def to_ll(g):
    return map_geom(g, m2ll_xy)


def area_m2(g_ll):
    return g_ll.area * M2_PER_DEG2


def polys(g):
    """Polygonal parts (with positive area) of any geometry, as a list."""
    if g is None or g.is_empty:
        return []
    t = g.geom_type
    if t == "Polygon":
        return [g] if g.area > 0 else []
    if t in ("MultiPolygon", "GeometryCollection"):
        out = []
        for p in g.geoms:
            out.extend(polys(p))
        return out
    return []


def as_multi_or_poly(parts):
    parts = [p for p in parts if p.area > 0]
    if not parts:
        return Polygon()
    if len(parts) == 1:
        return parts[0]
    return MultiPolygon(parts)


def round_xy(x, y):
    return (round(x, 7), round(y, 7))


def round_geom(g):
    return map_geom(g, round_xy)


def oriented(g):
    """RFC 7946 orientation (exterior CCW, holes CW)."""
    if g.geom_type == "Polygon":
        return orient(g, 1.0)
    return MultiPolygon([orient(p, 1.0) for p in g.geoms])


_UUP = lgeos._lgeos.GEOSUnaryUnionPrec_r
_UUP.restype = ctypes.c_void_p
_UUP.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double]


def union_prec(geoms):
    """GEOS OverlayNG unary union with snap-rounding on the 1e-7 degree grid."""
    coll = GeometryCollection(list(geoms))
    ptr = _UUP(lgeos.geos_handle, coll._geom, GRID)
    if not ptr:
        raise RuntimeError("GEOSUnaryUnionPrec failed")
    return geom_factory(ptr)


def boundary_lines(g):
    out = []
    for p in polys(g):
        out.append(LineString(p.exterior.coords))
        for r in p.interiors:
            out.append(LineString(r.coords))
    return out


def shared_len(a, b):
    """Approximate length of common boundary of two lon/lat polygons (degrees)."""
    return a.boundary.intersection(b.buffer(1e-8, 4)).length


# --------------------------------------------------------------------------
# partitioning: k-means seeds + clipped Voronoi + Lloyd iterations
# --------------------------------------------------------------------------

def sample_points(poly_m, n, rng):
    minx, miny, maxx, maxy = poly_m.bounds
    pp = prep(poly_m)
    pts = []
    while len(pts) < n:
        x = rng.uniform(minx, maxx)
        y = rng.uniform(miny, maxy)
        if pp.contains(Point(x, y)):
            pts.append((x, y))
    return pts


def kmeans(pts, k, rng, iters=25):
    centers = [pts[rng.randrange(len(pts))]]
    d2 = [(x - centers[0][0]) ** 2 + (y - centers[0][1]) ** 2 for x, y in pts]
    while len(centers) < k:
        r = rng.uniform(0, sum(d2))
        acc = 0.0
        idx = len(pts) - 1
        for i, w in enumerate(d2):
            acc += w
            if acc >= r:
                idx = i
                break
        c = pts[idx]
        centers.append(c)
        d2 = [min(d, (x - c[0]) ** 2 + (y - c[1]) ** 2) for d, (x, y) in zip(d2, pts)]
    for _ in range(iters):
        sx = [0.0] * k
        sy = [0.0] * k
        sn = [0] * k
        for x, y in pts:
            best = 0
            bd = float("inf")
            for j, (cx, cy) in enumerate(centers):
                d = (x - cx) * (x - cx) + (y - cy) * (y - cy)
                if d < bd:
                    bd = d
                    best = j
            sx[best] += x
            sy[best] += y
            sn[best] += 1
        centers = [(sx[j] / sn[j], sy[j] / sn[j]) if sn[j] else centers[j] for j in range(k)]
    return centers


def voronoi_cells(seeds, env):
    vd = voronoi_diagram(MultiPoint(seeds), envelope=env)
    cells = list(vd.geoms)
    out = []
    for s in seeds:
        p = Point(s)
        hit = [c for c in cells if c.contains(p)]
        if len(hit) != 1:
            raise RuntimeError("voronoi cell lookup failed")
        out.append(hit[0])
    return out


def split_polygon(parent_ll, k, key, lloyd=6):
    """Split parent (lon/lat, float) into k pieces of roughly equal area.

    Returns a list of k lon/lat polygonal geometries sorted north-west first.
    """
    parent_m = to_m(parent_ll)
    for attempt in range(8):
        rng = random.Random("%s|split|%s|%d" % (SEED, key, attempt))
        pts = sample_points(parent_m, 120 * k + 400, rng)
        seeds = kmeans(pts, k, rng)
        minx, miny, maxx, maxy = parent_m.bounds
        env = box(minx - 2000, miny - 2000, maxx + 2000, maxy + 2000)
        ok = True
        for _ in range(lloyd):
            cells = voronoi_cells(seeds, env)
            new = []
            for s, c in zip(seeds, cells):
                piece = parent_m.intersection(c)
                if piece.is_empty or piece.area <= 0:
                    new.append(s)
                    continue
                cen = piece.centroid
                if not piece.contains(cen):
                    cen = nearest_points(piece, cen)[0]
                new.append((cen.x, cen.y))
            if len(set(new)) != k:
                ok = False
                break
            seeds = new
        if not ok:
            continue
        cells = voronoi_cells(seeds, env)
        pieces = [parent_ll.intersection(to_ll(c)) for c in cells]
        parts = [sorted(polys(p), key=lambda q: -q.area) for p in pieces]
        if any(not p for p in parts):
            continue
        main = [[p[0]] for p in parts]
        extras = [(i, q) for i, p in enumerate(parts) for q in p[1:]]
        for i, q in extras:
            best, blen = None, 0.0
            for j in range(k):
                if j == i:
                    continue
                ln = sum(shared_len(q, m) for m in main[j])
                if ln > blen + 1e-12:
                    best, blen = j, ln
            main[best if best is not None else i].append(q)
        result = [unary_union(m) if len(m) > 1 else m[0] for m in main]
        areas = [area_m2(r) for r in result]
        mean = sum(areas) / k
        if min(areas) < 0.25 * mean:
            continue
        result.sort(key=lambda g: (-round(g.centroid.y, 9), round(g.centroid.x, 9)))
        return result
    raise RuntimeError("could not split %s into %d parts" % (key, k))


def allocate(total, weights, minimum):
    """Largest-remainder allocation proportional to weights with a floor."""
    n = len(weights)
    fixed = {}
    while True:
        free = [i for i in range(n) if i not in fixed]
        rem = total - sum(fixed.values())
        wsum = sum(weights[i] for i in free)
        quotas = {i: rem * weights[i] / wsum for i in free}
        low = [i for i in free if quotas[i] < minimum]
        if low:
            for i in low:
                fixed[i] = minimum
            continue
        out = dict(fixed)
        fl = {i: int(math.floor(quotas[i])) for i in free}
        left = rem - sum(fl.values())
        order = sorted(free, key=lambda i: (-(quotas[i] - fl[i]), i))
        for i in order[:left]:
            fl[i] += 1
        out.update(fl)
        return [out[i] for i in range(n)]


def split_int(total, n, rng, lo, hi):
    """Split integer total into n integers in [lo, hi] (requires n*lo<=total<=n*hi)."""
    vals = [lo] * n
    rest = total - lo * n
    while rest > 0:
        i = rng.randrange(n)
        if vals[i] < hi:
            vals[i] += 1
            rest -= 1
    return vals


def proportional(total, weights):
    """Largest remainder split of total proportional to weights (weights may be 0)."""
    s = sum(weights)
    if s == 0:
        return [0] * len(weights)
    q = [total * w / s for w in weights]
    fl = [int(math.floor(x)) for x in q]
    left = total - sum(fl)
    order = sorted(range(len(q)), key=lambda i: (-(q[i] - fl[i]), i))
    for i in order[:left]:
        fl[i] += 1
    return fl


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

def ring_txt(coords):
    return "[" + ",".join("[%.7f,%.7f]" % (c[0], c[1]) for c in coords) + "]"


def poly_txt(p):
    return "[" + ",".join([ring_txt(p.exterior.coords)] + [ring_txt(r.coords) for r in p.interiors]) + "]"


def geom_txt(g):
    if g.geom_type == "Polygon":
        return '{"type":"Polygon","coordinates":' + poly_txt(g) + "}"
    if g.geom_type == "MultiPolygon":
        return '{"type":"MultiPolygon","coordinates":[' + ",".join(poly_txt(p) for p in g.geoms) + "]}"
    raise ValueError(g.geom_type)


def fc_text(name, feats):
    """feats: list of (props dict, geometry text)."""
    out = io.StringIO()
    out.write('{"type":"FeatureCollection","name":%s,"features":[\n' % json.dumps(name))
    for i, (props, gtxt) in enumerate(feats):
        out.write('{"type":"Feature","properties":%s,"geometry":%s}%s\n' % (
            json.dumps(props, ensure_ascii=False, separators=(",", ":")), gtxt,
            "," if i < len(feats) - 1 else ""))
    out.write("]}\n")
    return out.getvalue().encode("utf-8")


def write_file(path, data, gz=False):
    if gz:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
            f.write(data)
        data = buf.getvalue()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------

def log(msg):
    print(msg, flush=True)


def load_streets(src):
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    by_code = {}
    for feat in data["features"]:
        code = str(feat["properties"]["code"])
        by_code[code] = (feat["properties"].get("Name"), shape(feat["geometry"]))
    out = {}
    for code, name in STREETS:
        if code not in by_code:
            raise SystemExit("street %s (%s) not found in %s" % (code, name, src))
        if by_code[code][0] != name:
            raise SystemExit("street %s is named %r in source, expected %r" % (code, by_code[code][0], name))
        g = by_code[code][1]
        if not g.is_valid:
            g = g.buffer(0)
        out[code] = round_geom(g)
    return out


def make_streets(src_geoms):
    """Overlap removal in code order, sliver removal, small hole filling (float)."""
    codes = sorted(src_geoms)
    streets = {}
    acc = None
    removed = 0.0
    for code in codes:
        g = src_geoms[code]
        a0 = area_m2(g)
        if acc is not None:
            g = g.difference(acc)
        parts = [p for p in polys(g) if area_m2(p) >= SLIVER_M2]
        g = unary_union(parts) if len(parts) > 1 else parts[0]
        removed += a0 - area_m2(g)
        streets[code] = g
        acc = src_geoms[code] if acc is None else acc.union(src_geoms[code])
    district = unary_union([streets[c] for c in codes])
    filled = []
    kept_holes = []
    for p in polys(district):
        for r in p.interiors:
            h = Polygon(r.coords)
            a = area_m2(h)
            if a >= HOLE_FILL_M2:
                kept_holes.append(a)
                continue
            best, blen = None, -1.0
            for code in codes:
                ln = shared_len(h, streets[code])
                if ln > blen:
                    best, blen = code, ln
            streets[best] = unary_union([streets[best], h])
            filled.append((best, a))
    return streets, removed, filled, kept_holes


def build_arrangement(float_layers, district_float):
    """float_layers: dict layer -> list of float lon/lat geometries.

    Nodes all boundaries with snap rounding, polygonizes, assigns every face
    to one piece per layer.  Returns dict layer -> list of exact geometries
    plus statistics.
    """
    lines = boundary_lines(district_float)
    for name in sorted(float_layers):
        for g in float_layers[name]:
            lines.extend(boundary_lines(g))
    noded = union_prec(lines)
    faces = list(polygonize(list(noded.geoms) if hasattr(noded, "geoms") else [noded]))
    faces.sort(key=lambda f: (round(f.centroid.x, 9), round(f.centroid.y, 9), round(f.area * 1e12, 3)))
    stats = {"faces": len(faces), "dropped_faces": 0, "dropped_face_m2_in_district": 0.0,
             "weak_faces": 0}
    dprep = district_float
    inside = []
    for f in faces:
        ov = f.intersection(dprep).area if f.intersects(dprep) else 0.0
        if ov >= 0.5 * f.area:
            inside.append(f)
        else:
            stats["dropped_faces"] += 1
            stats["dropped_face_m2_in_district"] += ov * M2_PER_DEG2
    assign = {}
    for name in sorted(float_layers):
        geoms = float_layers[name]
        tree = STRtree(geoms, list(range(len(geoms))))
        owner = []
        for f in inside:
            best, bov = None, -1.0
            for j in sorted(tree.query_items(f)):
                ov = f.intersection(geoms[j]).area
                if ov > bov:
                    best, bov = j, ov
            if best is None or bov < 0.5 * f.area:
                stats["weak_faces"] += 1
                rp = f.representative_point()
                if best is None:
                    best = min(range(len(geoms)), key=lambda j: (geoms[j].distance(rp), j))
            owner.append(best)
        assign[name] = owner
    return inside, assign, stats


def clean_exact(g):
    parts = [p for p in polys(g)]
    return oriented(as_multi_or_poly(parts))


def generate(src, outdir):
    t0 = time.time()
    src_geoms = load_streets(src)
    streets_f, removed_overlap, filled, kept_holes = make_streets(src_geoms)
    street_codes = sorted(streets_f)
    district_f = unary_union([streets_f[c] for c in street_codes])
    log("streets: overlap removed %.2f m2, holes filled %s, holes kept %s m2" % (
        removed_overlap, [(c, round(a, 1)) for c, a in filled], [round(a, 1) for a in kept_holes]))

    # ---- communities -------------------------------------------------------
    comm_f = []          # (street code, geometry)
    for sc in street_codes:
        for g in split_polygon(streets_f[sc], COMMUNITIES_PER_STREET, "street-" + sc):
            comm_f.append((sc, g))
    comm_areas = [area_m2(g) for _, g in comm_f]
    grid_counts = allocate(TOTAL_GRIDS, comm_areas, MIN_GRIDS_PER_COMMUNITY)
    grid_f = []          # (community index, geometry)
    for ci, ((sc, g), n) in enumerate(zip(comm_f, grid_counts)):
        for gg in split_polygon(g, n, "community-%s-%d" % (sc, ci)):
            grid_f.append((ci, gg))
    dept_f = {}
    for dept, prefix, n, _ in DEPTS:
        dept_f[prefix] = split_polygon(district_f, n, "dept-" + prefix, lloyd=8)
    log("float partition done (%.1fs)" % (time.time() - t0))

    # ---- exact arrangement ---------------------------------------------------
    layers = {"grid": [g for _, g in grid_f]}
    for prefix in dept_f:
        layers["dept-" + prefix] = dept_f[prefix]
    faces, assign, astats = build_arrangement(layers, district_f)
    log("arrangement: %d faces, %d outside district, %d weak (%.1fs)" % (
        astats["faces"], astats["dropped_faces"], astats["weak_faces"], time.time() - t0))

    grid_faces = [[] for _ in grid_f]
    for f, j in zip(faces, assign["grid"]):
        grid_faces[j].append(f)
    if any(not fl for fl in grid_faces):
        raise RuntimeError("a grid received no faces")
    grid_geom = [clean_exact(union_prec(fl)) for fl in grid_faces]
    comm_faces = [[] for _ in comm_f]
    for gi, (ci, _) in enumerate(grid_f):
        comm_faces[ci].extend(grid_faces[gi])
    comm_geom = [clean_exact(union_prec(fl)) for fl in comm_faces]
    street_faces = {sc: [] for sc in street_codes}
    for ci, (sc, _) in enumerate(comm_f):
        street_faces[sc].extend(comm_faces[ci])
    street_geom = {sc: clean_exact(union_prec(street_faces[sc])) for sc in street_codes}
    district_geom = clean_exact(union_prec(faces))
    dept_geom = {}
    for prefix in dept_f:
        fl = [[] for _ in dept_f[prefix]]
        for f, j in zip(faces, assign["dept-" + prefix]):
            fl[j].append(f)
        if any(not x for x in fl):
            raise RuntimeError("a dept cell received no faces")
        dept_geom[prefix] = [clean_exact(union_prec(x)) for x in fl]

    # ---- attributes ----------------------------------------------------------
    arng = random.Random(SEED + "|attributes")
    # community names
    used = set()
    comm_names = []
    for ci in range(len(comm_f)):
        while True:
            a = arng.choice(COMM_FIRST)
            b = arng.choice(COMM_SECOND)
            s = arng.choice(COMM_SUFFIX)
            if len({a, b, s}) < 3:
                continue
            stem = a + b + s
            if stem in used:
                continue
            used.add(stem)
            comm_names.append(stem)
            break
    street_name = dict(STREETS)
    comm_code = []
    per_street_counter = {}
    for sc, _ in comm_f:
        per_street_counter[sc] = per_street_counter.get(sc, 0) + 1
        comm_code.append(sc[:9] + "%03d" % per_street_counter[sc])
    grid_code = []
    grid_no = []
    per_comm_counter = {}
    for ci, _ in grid_f:
        per_comm_counter[ci] = per_comm_counter.get(ci, 0) + 1
        grid_no.append(per_comm_counter[ci])
        grid_code.append(comm_code[ci] + "%03d" % per_comm_counter[ci])
    phones = arng.sample(range(10000), len(grid_f))
    grid_props = []
    for gi, (ci, _) in enumerate(grid_f):
        hh = arng.randint(240, 360)
        pop = int(round(hh * arng.uniform(2.6, 3.4)))
        grid_props.append({
            "id": grid_code[gi], "code": grid_code[gi],
            "name": "%s社区第%d网格" % (comm_names[ci], grid_no[gi]),
            "parent_code": comm_code[ci],
            "households": hh, "population": pop,
            "grid_head": person_name(arng), "grid_worker": person_name(arng),
            "grid_worker_phone": "1380000%04d" % phones[gi],
            "places": arng.randint(6, 40), "organisations": arng.randint(1, 15),
        })

    # ---- buildings -----------------------------------------------------------
    cand = []
    for gi in range(len(grid_f)):
        cand.append(place_buildings(grid_geom[gi], "grid-" + grid_code[gi]))
    caps = [len(c) for c in cand]
    total_target = min(BUILDING_TARGET, sum(caps))
    targets = proportional(total_target, caps)
    log("building capacity %d, target %d (%.1fs)" % (sum(caps), total_target, time.time() - t0))

    buildings = []  # dicts
    est_registry = {}
    for gi in range(len(grid_f)):
        brng = random.Random("%s|bldg-attr|%s" % (SEED, grid_code[gi]))
        keep = sorted(brng.sample(range(caps[gi]), targets[gi]))
        rects = [cand[gi][i] for i in keep]
        n = len(rects)
        hh = grid_props[gi]["households"]
        pop = grid_props[gi]["population"]
        r = max(int(math.ceil(hh / 40.0)), min(int(round(hh / 25.0)), hh // 10))
        r = min(r, n)
        if r * 40 < hh:
            raise RuntimeError("grid %s has too few buildings for its households" % grid_code[gi])
        res_idx = set(brng.sample(range(n), r))
        res_order = sorted(res_idx)
        hh_split = split_int(hh, r, brng, 10, 40)
        pop_split = proportional(pop, hh_split)
        ci = grid_f[gi][0]
        stem = comm_names[ci]
        n_est = 1 + (n > 60) + (n > 110)
        bounds = proportional(n, [1] * n_est)
        est_of = []
        for e, cnt in enumerate(bounds):
            est_of.extend([e] * cnt)
        est_names = []
        for e in range(n_est):
            est_names.append(next_estate_name(stem, ci, est_registry))
        est_counter = [0] * n_est
        for bi, rect in enumerate(rects):
            e = est_of[bi]
            est_counter[e] += 1
            tower = rect["tower"]
            if bi in res_idx:
                k = res_order.index(bi)
                bh, bp = hh_split[k], pop_split[k]
                use = "住宅"
                floors = brng.randint(18, 30) if tower else brng.randint(8, 15)
            else:
                bh, bp = 0, 0
                use = weighted_choice(brng, NONRES_USES)
                floors = brng.randint(8, 24) if tower else brng.randint(2, 8)
            code = grid_code[gi] + "%04d" % (bi + 1)
            buildings.append({
                "gi": gi, "rect": rect, "code": code,
                "props": {
                    "id": code, "code": code,
                    "name": "%s%d号楼" % (est_names[e], est_counter[e]),
                    "parent_code": grid_code[gi], "use": use,
                    "form": "塔楼" if tower else "板楼",
                    "floors": floors, "households": bh, "population": bp,
                    "building_head": person_name(brng),
                },
            })
    # units
    urng = random.Random(SEED + "|units")
    slab_res = [i for i, b in enumerate(buildings) if not b["rect"]["tower"] and b["props"]["use"] == "住宅"]
    slab_oth = [i for i, b in enumerate(buildings) if not b["rect"]["tower"] and b["props"]["use"] != "住宅"]
    n_units_b = int(round(UNIT_SHARE * len(buildings)))
    if len(slab_res) >= n_units_b:
        chosen = sorted(urng.sample(slab_res, n_units_b))
    else:
        chosen = sorted(slab_res + urng.sample(slab_oth, n_units_b - len(slab_res)))
    chosen_set = set(chosen)
    unit_feats = []
    bldg_feats = []
    for i, b in enumerate(buildings):
        rect = b["rect"]
        nu = 0
        if i in chosen_set:
            L = rect["L"]
            nu = 2 if L < 40 else (3 if L < 55 else 4)
            if urng.random() < 0.25:
                nu = max(2, min(4, nu + urng.choice((-1, 1))))
        ring, unit_rings = building_rings(rect, nu)
        b["props"]["units"] = nu
        bldg_feats.append((b["props"], '{"type":"Polygon","coordinates":[' + ring_txt(ring) + "]}"))
        if nu:
            uh = proportional(b["props"]["households"], [1] * nu)
            up = proportional(b["props"]["population"], [1] * nu)
            for k in range(nu):
                ucode = b["code"] + "%02d" % (k + 1)
                unit_feats.append(({
                    "id": ucode, "code": ucode, "name": "%d单元" % (k + 1),
                    "parent_code": b["code"], "households": uh[k], "population": up[k],
                    "unit_head": person_name(urng),
                }, '{"type":"Polygon","coordinates":[' + ring_txt(unit_rings[k]) + "]}"))
    log("buildings %d, units %d in %d buildings (%.1fs)" % (
        len(bldg_feats), len(unit_feats), len(chosen), time.time() - t0))

    # ---- aggregate attributes ---------------------------------------------------
    comm_props = []
    for ci, (sc, _) in enumerate(comm_f):
        hh = sum(grid_props[gi]["households"] for gi, (c, _) in enumerate(grid_f) if c == ci)
        pop = sum(grid_props[gi]["population"] for gi, (c, _) in enumerate(grid_f) if c == ci)
        comm_props.append({"id": comm_code[ci], "code": comm_code[ci], "name": comm_names[ci] + "社区",
                           "parent_code": sc, "households": hh, "population": pop})
    street_props = {}
    for sc in street_codes:
        hh = sum(p["households"] for p in comm_props if p["parent_code"] == sc)
        pop = sum(p["population"] for p in comm_props if p["parent_code"] == sc)
        street_props[sc] = {"id": sc, "code": sc, "name": street_name[sc], "parent_code": DISTRICT_CODE,
                            "households": hh, "population": pop, "source": STREET_SOURCE}
    district_props = {
        "id": DISTRICT_CODE, "code": DISTRICT_CODE, "name": "样例区",
        "households": sum(p["households"] for p in street_props.values()),
        "population": sum(p["population"] for p in street_props.values()),
        "note": ("样例数据：规模参照甘肃省庆阳市西峰区（1个区、6个街道、36个社区、234个网格）；"
                 "边界取自北京市海淀区6个街道（bj-subdistricts, MIT），其余均为 layers/generate.py 生成。"
                 " Sample district modelled on the sizes of Xifeng district; street boundaries from "
                 "six Haidian subdistricts, everything else generated."),
    }

    # ---- dedicated grids ----------------------------------------------------------
    drng = random.Random(SEED + "|dedicated")
    ded = []
    campus = dedicated_polygon(street_geom["110108014000"], (116.3260, 40.0040), "disk", 1000.0, 0.0)
    ded.append(({"id": "ZS001", "code": "ZS001", "name": "清华大学专属网格", "kind": "campus",
                 "parent_code": "110108014000", "manager": person_name(drng),
                 "manager_phone": "1370000%04d" % drng.randrange(10000)}, campus))
    hosp = dedicated_polygon(street_geom["110108018000"], (116.3597, 39.9822), "rect", (330.0, 305.0), 4.0)
    ded.append(({"id": "ZS002", "code": "ZS002", "name": "北医三院专属网格", "kind": "hospital",
                 "parent_code": "110108018000", "manager": person_name(drng),
                 "manager_phone": "1370000%04d" % drng.randrange(10000)}, hosp))

    # ---- department attributes ----------------------------------------------------
    dept_feats = {}
    prng = random.Random(SEED + "|dept")
    dphones = prng.sample(range(10000), sum(n for _, _, n, _ in DEPTS))
    pi = 0
    for dept, prefix, n, pattern in DEPTS:
        feats = []
        for k, g in enumerate(dept_geom[prefix]):
            ident = "%s%02d" % (prefix, k + 1)
            feats.append(({"id": ident, "code": ident, "name": pattern.format(k + 1), "department": dept,
                           "head": person_name(prng), "phone": "1390000%04d" % dphones[pi]}, geom_txt(g)))
            pi += 1
        dept_feats[dept] = feats

    # ---- write ---------------------------------------------------------------------
    files = {}
    files["streets.geojson"] = fc_text("streets", [(street_props[sc], geom_txt(street_geom[sc])) for sc in street_codes])
    files["district.geojson"] = fc_text("district", [(district_props, geom_txt(district_geom))])
    order_c = sorted(range(len(comm_f)), key=lambda i: comm_code[i])
    files["communities.geojson"] = fc_text("communities", [(comm_props[i], geom_txt(comm_geom[i])) for i in order_c])
    order_g = sorted(range(len(grid_f)), key=lambda i: grid_code[i])
    files["grids.geojson"] = fc_text("grids", [(grid_props[i], geom_txt(grid_geom[i])) for i in order_g])
    files["dedicated.geojson"] = fc_text("dedicated", [(p, geom_txt(g)) for p, g in ded])
    for dept, _, _, _ in DEPTS:
        files["dept_%s.geojson" % dept] = fc_text("dept_" + dept, dept_feats[dept])
    bldg_feats.sort(key=lambda f: f[0]["code"])
    unit_feats.sort(key=lambda f: f[0]["code"])
    files["buildings.geojson.gz"] = fc_text("buildings", bldg_feats)
    files["units.geojson.gz"] = fc_text("units", unit_feats)
    for name in sorted(files):
        write_file(os.path.join(outdir, name), files[name], gz=name.endswith(".gz"))
    write_file(os.path.join(outdir, "ATTRIBUTION.md"), attribution_text(
        len(bldg_feats), len(unit_feats)).encode("utf-8"))
    gen_stats = {
        "overlap_removed_m2": removed_overlap, "holes_filled": filled, "holes_kept_m2": kept_holes,
        "arrangement": astats, "building_capacity": sum(caps),
        "community_area_ratio": max(
            max(a for (s2, _), a in zip(comm_f, comm_areas) if s2 == sc) /
            min(a for (s2, _), a in zip(comm_f, comm_areas) if s2 == sc) for sc in street_codes),
        "grid_area_ratio": max(
            max(area_m2(grid_f[i][1]) for i in range(len(grid_f)) if grid_f[i][0] == ci) /
            min(area_m2(grid_f[i][1]) for i in range(len(grid_f)) if grid_f[i][0] == ci)
            for ci in range(len(comm_f))),
    }
    return gen_stats


def next_estate_name(stem, ci, registry):
    used = registry.setdefault(ci, [])
    k = len(used)
    if k < len(ESTATE_SUFFIXES):
        name = stem + ESTATE_SUFFIXES[k]
    else:
        name = "%s%d区" % (stem, k + 1)
    used.append(name)
    return name


def weighted_choice(rng, items):
    tot = sum(w for _, w in items)
    r = rng.uniform(0, tot)
    acc = 0
    for v, w in items:
        acc += w
        if r <= acc:
            return v
    return items[-1][0]


def place_buildings(grid_ll, key):
    """Candidate building rectangles (metric, rotated frame) inside the grid.

    Rows of slabs (12-18 m deep, 30-70 m long) or towers (~25 x 25 m) are laid
    out in a frame rotated by a per-grid angle.  For each row band the x
    intervals where the full band depth lies inside the inset grid polygon are
    computed exactly (projection of band minus polygon), so every rectangle is
    inside the inset polygon.  Rows are separated by >= 4 m, buildings in a
    row by >= 3.5 m; the inset (2.15 m) keeps buildings of neighbouring grids
    apart as well.
    """
    rng = random.Random("%s|place|%s" % (SEED, key))
    gm = to_m(grid_ll)
    inner = gm.buffer(-(BUILDING_MARGIN + 0.15), 8)
    if inner.is_empty:
        return []
    theta = rng.uniform(-12.0, 12.0)
    c = gm.centroid
    cx, cy = c.x, c.y
    inner_r = affinity.rotate(inner, -theta, origin=(cx, cy))
    minx, miny, maxx, maxy = inner_r.bounds
    ct, st = math.cos(math.radians(theta)), math.sin(math.radians(theta))

    def back(x, y):
        dx, dy = x - cx, y - cy
        return (cx + dx * ct - dy * st, cy + dx * st + dy * ct)

    out = []
    y = maxy - rng.uniform(0.0, 3.0)
    while True:
        tower = rng.random() < 0.06
        d = rng.uniform(23.0, 27.0) if tower else rng.uniform(12.0, 18.0)
        y0 = y - d
        if y0 < miny:
            break
        band = box(minx - 1.0, y0, maxx + 1.0, y)
        blocked = sorted((p.bounds[0], p.bounds[2]) for p in polys(band.difference(inner_r)))
        free = []
        cur = minx - 1.0
        for a, b in blocked:
            if a > cur:
                free.append((cur, a))
            cur = max(cur, b)
        if cur < maxx + 1.0:
            free.append((cur, maxx + 1.0))
        for a, b in free:
            a += 0.05
            b -= 0.05
            x = a + rng.uniform(0.0, 2.0)
            while True:
                if tower:
                    L = d + rng.uniform(-1.0, 1.0)
                    lmin = 22.0
                else:
                    L = 30.0 + 40.0 * rng.betavariate(1.6, 2.4)
                    lmin = 30.0
                if x + L > b:
                    L = b - x
                if L < lmin:
                    break
                corners = [back(x, y0), back(x + L, y0), back(x + L, y), back(x, y)]
                out.append({"corners": corners, "L": L, "D": d, "tower": tower})
                x += L + rng.uniform(3.5, 8.0)
        y = y0 - rng.uniform(4.0, 8.0)
    return out


def building_rings(rect, nu):
    """Lon/lat rings (rounded) for the building and its nu units.

    corners: c0 -> c1 along the long axis (bottom), c2, c3 (top), CCW.
    """
    c0, c1, c2, c3 = rect["corners"]

    def ll(p):
        return round_xy(*m2ll_xy(*p))

    if nu < 2:
        ring = [ll(c0), ll(c1), ll(c2), ll(c3), ll(c0)]
        return ring, []
    P = [ll(c0)] + [ll((c0[0] + (c1[0] - c0[0]) * i / nu, c0[1] + (c1[1] - c0[1]) * i / nu))
                    for i in range(1, nu)] + [ll(c1)]
    Q = [ll(c3)] + [ll((c3[0] + (c2[0] - c3[0]) * i / nu, c3[1] + (c2[1] - c3[1]) * i / nu))
                    for i in range(1, nu)] + [ll(c2)]
    ring = P + Q[::-1] + [P[0]]
    units = [[P[i], P[i + 1], Q[i + 1], Q[i], P[i]] for i in range(nu)]
    return ring, units


def dedicated_polygon(street_ll, center_ll, kind, size, angle):
    sm = to_m(street_ll)
    cx, cy = ll2m_xy(*center_ll)
    if kind == "disk":
        shp = Point(cx, cy).buffer(size, 16)
    else:
        w, h = size
        shp = affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle, origin=(cx, cy))
    g = shp.intersection(sm.buffer(-5.0, 8))
    parts = sorted(polys(g), key=lambda p: -p.area)
    g = parts[0].simplify(1.0)
    g = round_geom(to_ll(g))
    if not g.is_valid:
        g = round_geom(g.buffer(0))
    return oriented(g)


def attribution_text(n_buildings, n_units):
    return """# Attribution for the sample district in layers/

## Street (街道) boundaries

The boundaries of the six streets in `streets.geojson` (清华园街道, 燕园街道,
中关村街道, 学院路街道, 海淀街道, 花园路街道) and therefore the outline in
`district.geojson` are copied from the Haidian file of
[thebamboogrove/bj-subdistricts](https://github.com/thebamboogrove/bj-subdistricts)
(`subdistrict/haidian-all.geojson`), which is distributed under the MIT license
reproduced below.  The boundaries were traced from 天地图 (Tianditu) by the
author of that project and are **not guaranteed to be accurate**; they are used
here only as realistic-looking sample shapes, not as authoritative
administrative boundaries.

Changes made by `layers/generate.py`: overlaps between the six streets are
removed (earlier codes win), slivers below 1 m² are dropped, district holes
below 1000 m² are filled, and all vertices are snap-rounded to 7 decimals
(new vertices are added where generated boundaries meet the street
boundaries).

## Everything else is generated

All other content -- the district record, 36 communities (社区), 234 grids
(网格), %d buildings (楼栋), %d units (单元), 2 dedicated grids (专属网格),
the 城管/环卫/公安 department grids, and every name, phone number and count --
is synthetic and produced deterministically by `layers/generate.py` (seeded
pseudo-random numbers; re-running it produces byte-identical files).  Names of
people are random combinations of common surnames and given-name characters;
phone numbers are fake (1370000xxxx / 1380000xxxx / 1390000xxxx).

The district is modelled on the sizes of Xifeng district (西峰区, Qingyang,
Gansu): 1 district, 6 streets, 36 communities, 234 grids.  Its geometry is
that of six real Haidian subdistricts; it does not depict Xifeng and its
attribute data do not describe Haidian.

## License of thebamboogrove/bj-subdistricts

```
MIT License

Copyright (c) 2025

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
```

(The upstream LICENSE file names no copyright holder beyond "Copyright (c)
2025"; the copyright belongs to the author of thebamboogrove/bj-subdistricts.)
""" % (n_buildings, n_units)


# --------------------------------------------------------------------------
# self-check (reads the written files back)
# --------------------------------------------------------------------------

def read_fc(path):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8")), raw


def verify(outdir, gen_stats=None):
    errors = []
    summary = []

    def err(msg):
        errors.append(msg)

    names = ["district.geojson", "streets.geojson", "communities.geojson", "grids.geojson",
             "buildings.geojson.gz", "units.geojson.gz", "dedicated.geojson"] + \
            ["dept_%s.geojson" % d for d, _, _, _ in DEPTS]
    data = {}
    for n in names:
        p = os.path.join(outdir, n)
        if not os.path.exists(p):
            err("missing file %s" % n)
            continue
        fc, raw = read_fc(p)
        data[n] = fc
        if "crs" in fc:
            err("%s has a crs member" % n)
        if not n.endswith(".gz") and len(raw) > 5 * 1024 * 1024:
            err("%s larger than 5 MB" % n)
    if errors:
        return errors, summary

    geoms = {}
    props = {}
    bad_coord = 0
    for n, fc in data.items():
        gl, pl = [], []
        ids = set()
        for feat in fc["features"]:
            g = feat["geometry"]
            if g["type"] not in ("Polygon", "MultiPolygon"):
                err("%s: geometry type %s" % (n, g["type"]))
            polys_c = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
            for pc in polys_c:
                for ring in pc:
                    for x, y in ring:
                        if round(x, 7) != x or round(y, 7) != y:
                            bad_coord += 1
            sg = shape(g)
            if not sg.is_valid:
                err("%s: invalid geometry %s" % (n, feat["properties"].get("id")))
            pid = feat["properties"]["id"]
            if pid in ids:
                err("%s: duplicate id %s" % (n, pid))
            ids.add(pid)
            gl.append(sg)
            pl.append(feat["properties"])
        geoms[n] = gl
        props[n] = pl
    if bad_coord:
        err("%d coordinates with more than 7 decimals" % bad_coord)

    counts = {n: len(geoms[n]) for n in names}
    expect = {"district.geojson": 1, "streets.geojson": 6, "communities.geojson": 36,
              "grids.geojson": TOTAL_GRIDS, "dedicated.geojson": 2}
    for d, _, k, _ in DEPTS:
        expect["dept_%s.geojson" % d] = k
    for n, k in expect.items():
        if counts[n] != k:
            err("%s: %d features, expected %d" % (n, counts[n], k))
    if counts["buildings.geojson.gz"] < 20000:
        err("only %d buildings" % counts["buildings.geojson.gz"])

    # parent codes and sums
    def index(n):
        return {p["code"]: i for i, p in enumerate(props[n])}

    idx = {n: index(n) for n in names}
    links = [("streets.geojson", "district.geojson"), ("communities.geojson", "streets.geojson"),
             ("grids.geojson", "communities.geojson"), ("buildings.geojson.gz", "grids.geojson"),
             ("units.geojson.gz", "buildings.geojson.gz"), ("dedicated.geojson", "streets.geojson")]
    children_of = {}
    for child, parent in links:
        ch = {}
        for i, p in enumerate(props[child]):
            pc = p["parent_code"]
            if pc not in idx[parent]:
                err("%s %s: parent_code %s does not resolve in %s" % (child, p["id"], pc, parent))
                continue
            ch.setdefault(idx[parent][pc], []).append(i)
        children_of[(child, parent)] = ch
    for child, parent in links[:5]:
        ch = children_of[(child, parent)]
        for pi, p in enumerate(props[parent]):
            kids = ch.get(pi, [])
            for key in ("households", "population"):
                if key in p and kids:
                    s = sum(props[child][i][key] for i in kids)
                    if s != p[key]:
                        err("%s %s: %s %d != sum of %s %d" % (parent, p["id"], key, p[key], child, s))

    # exact tiling checks
    max_ov = [0.0, ""]
    max_gap = [0.0, ""]
    max_ex = [0.0, ""]

    def tiling(label, parent_g, kids):
        tree = STRtree(kids, list(range(len(kids))))
        for i, a in enumerate(kids):
            for j in sorted(tree.query_items(a)):
                if j <= i:
                    continue
                ov = area_m2(a.intersection(kids[j]))
                if ov > max_ov[0]:
                    max_ov[0], max_ov[1] = ov, label
                if ov >= TOL_M2:
                    err("%s: children %d/%d overlap %.3f m2" % (label, i, j, ov))
        u = unary_union(kids)
        for p in polys(parent_g.difference(u)):
            a = area_m2(p)
            if a > max_gap[0]:
                max_gap[0], max_gap[1] = a, label
            if a >= TOL_M2:
                err("%s: gap %.3f m2" % (label, a))
        for p in polys(u.difference(parent_g)):
            a = area_m2(p)
            if a > max_ex[0]:
                max_ex[0], max_ex[1] = a, label
            if a >= TOL_M2:
                err("%s: child outside parent %.3f m2" % (label, a))

    dist_g = geoms["district.geojson"][0]
    tiling("district<-streets", dist_g, geoms["streets.geojson"])
    for child, parent in links[1:3]:
        ch = children_of[(child, parent)]
        for pi, pg in enumerate(geoms[parent]):
            kids = [geoms[child][i] for i in ch.get(pi, [])]
            if not kids:
                err("%s %s has no children" % (parent, props[parent][pi]["id"]))
                continue
            tiling("%s<-%s" % (props[parent][pi]["id"], child), pg, kids)
    for d, _, _, _ in DEPTS:
        tiling("district<-dept_" + d, dist_g, geoms["dept_%s.geojson" % d])
    summary.append("tiling: max sibling overlap %.6f m2 (%s), max gap %.6f m2 (%s), "
                   "max child-outside-parent %.6f m2 (%s)" % (max_ov[0], max_ov[1] or "-", max_gap[0],
                                                            max_gap[1] or "-", max_ex[0], max_ex[1] or "-"))
    holes = sum(len(p.interiors) for p in polys(dist_g))
    min_part = min(area_m2(p) for n in ("streets.geojson", "communities.geojson", "grids.geojson")
                   + tuple("dept_%s.geojson" % d for d, _, _, _ in DEPTS) for g in geoms[n] for p in polys(g))
    summary.append("district area %.4f km2, %d hole(s); smallest polygon part in tilings %.1f m2" % (
        area_m2(dist_g) / 1e6, holes, min_part))
    if min_part < SLIVER_M2:
        err("polygon part below %.1f m2" % SLIVER_M2)

    # buildings inside grids with margin, spacing
    gidx = idx["grids.geojson"]
    grid_m = [to_m(g) for g in geoms["grids.geojson"]]
    grid_bd = [g.boundary for g in grid_m]
    grid_pp = [prep(g) for g in grid_m]
    bm = [to_m(g) for g in geoms["buildings.geojson.gz"]]
    min_margin = float("inf")
    for i, b in enumerate(bm):
        gi = gidx.get(props["buildings.geojson.gz"][i]["parent_code"])
        if gi is None:
            continue
        if not grid_pp[gi].contains(b):
            err("building %s not inside its grid" % props["buildings.geojson.gz"][i]["id"])
            continue
        dmin = b.distance(grid_bd[gi])
        min_margin = min(min_margin, dmin)
        if dmin < BUILDING_MARGIN:
            err("building %s only %.3f m from grid boundary" % (props["buildings.geojson.gz"][i]["id"], dmin))
    tree = STRtree(bm, list(range(len(bm))))
    min_sp = float("inf")
    for i, b in enumerate(bm):
        x0, y0, x1, y1 = b.bounds
        for j in sorted(tree.query_items(box(x0 - BUILDING_SPACING, y0 - BUILDING_SPACING,
                                             x1 + BUILDING_SPACING, y1 + BUILDING_SPACING))):
            if j <= i:
                continue
            dd = b.distance(bm[j])
            min_sp = min(min_sp, dd)
            if dd < BUILDING_SPACING:
                err("buildings %s/%s only %.3f m apart" % (props["buildings.geojson.gz"][i]["id"],
                                                          props["buildings.geojson.gz"][j]["id"], dd))
    summary.append("buildings: min margin to grid boundary %.3f m, min spacing %.3f m (closest pair within %.0f m search radius)" % (
        min_margin, min_sp, BUILDING_SPACING))

    # units tile buildings
    bidx = idx["buildings.geojson.gz"]
    umax = 0.0
    ch = children_of[("units.geojson.gz", "buildings.geojson.gz")]
    for bi, kids in ch.items():
        bg = geoms["buildings.geojson.gz"][bi]
        ug = [geoms["units.geojson.gz"][k] for k in kids]
        if props["buildings.geojson.gz"][bi].get("units") != len(kids):
            err("building %s units count mismatch" % props["buildings.geojson.gz"][bi]["id"])
        for a in range(len(ug)):
            for b in range(a + 1, len(ug)):
                umax = max(umax, area_m2(ug[a].intersection(ug[b])))
        u = unary_union(ug)
        umax = max(umax, area_m2(u.symmetric_difference(bg)))
    if umax >= 0.01:
        err("units do not tile their buildings (%.4f m2)" % umax)
    summary.append("units: %d in %d buildings, max overlap/gap vs building %.6f m2" % (
        counts["units.geojson.gz"], len(ch), umax))
    del bidx

    # dedicated grids inside their street
    sidx = idx["streets.geojson"]
    for i, g in enumerate(geoms["dedicated.geojson"]):
        p = props["dedicated.geojson"][i]
        sg = geoms["streets.geojson"][sidx[p["parent_code"]]]
        if not sg.contains(g):
            err("dedicated %s not inside its street" % p["id"])
        summary.append("dedicated %s %s: %.3f km2" % (p["id"], p["name"], area_m2(g) / 1e6))

    hh = props["district.geojson"][0]["households"]
    pop = props["district.geojson"][0]["population"]
    summary.insert(0, "counts: " + ", ".join("%s=%d" % (n, counts[n]) for n in names))
    res = [p["households"] for p in props["buildings.geojson.gz"] if p["households"] > 0]
    summary.insert(1, "district households %d, population %d; buildings: %d residential holding %d households "
                      "(%d-%d per building), %d non-residential (0 households)" % (
                          hh, pop, len(res), sum(res), min(res), max(res),
                          counts["buildings.geojson.gz"] - len(res)))
    return errors, summary


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    default_src = os.path.normpath(os.path.join(
        repo, "..", "shared", "realdata", "beijing_subdistricts", "subdistrict", "haidian-all.geojson"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", default=default_src)
    ap.add_argument("--out", default=here)
    ap.add_argument("--verify-only", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    gen_stats = None
    if not args.verify_only:
        gen_stats = generate(args.source, args.out)
    t1 = time.time()
    errors, summary = verify(args.out, gen_stats)
    t2 = time.time()
    print("=" * 72)
    print("SUMMARY")
    if gen_stats:
        a = gen_stats["arrangement"]
        print("generation: %d arrangement faces (%d outside district, %d weakly assigned), "
              "overlap removed between source streets %.3f m2, holes filled %s, holes kept %s m2, "
              "building capacity %d, max area ratio largest/smallest sibling: communities %.2f, grids %.2f" % (
                  a["faces"], a["dropped_faces"], a["weak_faces"], gen_stats["overlap_removed_m2"],
                  gen_stats["holes_filled"], [round(x, 1) for x in gen_stats["holes_kept_m2"]],
                  gen_stats["building_capacity"], gen_stats["community_area_ratio"],
                  gen_stats["grid_area_ratio"]))
    for line in summary:
        print(line)
    for n in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, n)
        if os.path.isfile(p) and (n.endswith(".geojson") or n.endswith(".gz") or n.endswith(".md")):
            print("  %-26s %10d bytes" % (n, os.path.getsize(p)))
    print("time: generate %.1fs, verify %.1fs" % (t1 - t0, t2 - t1))
    if errors:
        print("SELF-CHECK FAILED (%d problems):" % len(errors))
        for e in errors[:50]:
            print("  " + e)
        sys.exit(1)
    print("SELF-CHECK OK")


if __name__ == "__main__":
    main()
