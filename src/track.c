/* track: see track.h. Every function opens its own GEOS context and closes it
 * before returning (GEOS_init_r costs about a microsecond; a thread-local one
 * would leak on every worker thread that exits). Metric geometry lives on a
 * local equirectangular plane in metres; GEOS does every geometric operation. */
#include "gridcc/track.h"

#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/crs.h"

#define QUADSEGS 8 /* segments a quarter circle: arcs fall 0.5% of D short */
#define CHUNK 48   /* segments buffered at once (see buffer_pieces) */

/* ---- GEOS context with its last error message ---- */

typedef struct geos {
    GEOSContextHandle_t h;
    char msg[512];
} geos;

static void geos_error(const char *m, void *ud)
{
    geos *g = ud;
    g_strlcpy(g->msg, m, sizeof g->msg);
}

static int geos_open(geos *g, gc_err *err)
{
    g->msg[0] = 0;
    g->h = GEOS_init_r();
    if (!g->h)
        return gc_fail(err, GC_EIO, "", "GEOS: cannot create a context");
    GEOSContext_setErrorMessageHandler_r(g->h, geos_error, g);
    return 0;
}

static void geos_close(geos *g)
{
    if (g->h)
        GEOS_finish_r(g->h);
    g->h = NULL;
}

static void gfree(geos *g, GEOSGeometry *x)
{
    if (x)
        GEOSGeom_destroy_r(g->h, x);
}

/* ---- local plane ---- */

typedef struct plane {
    double lon0, lat0;
    double kx, ky; /* metres per degree of longitude / latitude at lat0 */
} plane;

static void plane_init(plane *pl, double lon0, double lat0)
{
    /* WGS 84 radii of curvature at lat0 (the parallel and the meridian) */
    const double a = 6378137.0, e2 = 6.69437999014e-3, d = M_PI / 180.0;
    double s = sin(lat0 * d), w = 1 - e2 * s * s;
    pl->lon0 = lon0;
    pl->lat0 = lat0;
    pl->kx = d * a * cos(lat0 * d) / sqrt(w);
    pl->ky = d * a * (1 - e2) / (w * sqrt(w));
}

static void plane_fwd(const plane *pl, double lon, double lat, double *x, double *y)
{
    *x = (lon - pl->lon0) * pl->kx;
    *y = (lat - pl->lat0) * pl->ky;
}

static void plane_inv(const plane *pl, double x, double y, double *lon, double *lat)
{
    *lon = pl->lon0 + x / pl->kx;
    *lat = pl->lat0 + y / pl->ky;
}

static int plane_cb(double *x, double *y, void *ud)
{
    plane_fwd(ud, *x, *y, x, y);
    return 1;
}

static double round7(double v)
{
    return round(v * 1e7) / 1e7;
}

/* ---- input checks ---- */

static int check_fixes(const track_pt *p, size_t n, gc_err *err)
{
    if (n && !p)
        return gc_fail(err, GC_EINVAL, "fixes", "fixes: NULL array of %zu fixes", n);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(p[i].lon) || !isfinite(p[i].lat) || fabs(p[i].lon) > 180 ||
            fabs(p[i].lat) > 90)
            return gc_fail(err, GC_EINVAL, "fixes",
                           "fix %zu: position %g,%g is not a longitude,latitude in degrees", i,
                           p[i].lon, p[i].lat);
        if (i && p[i].t < p[i - 1].t)
            return gc_fail(
                err, GC_EINVAL, "fixes",
                "fix %zu: time %lld ms is before the previous fix's %lld ms (sort by time)", i,
                (long long)p[i].t, (long long)p[i - 1].t);
    }
    return 0;
}

/* ---- simplify ---- */

static json_t *position(double lon, double lat)
{
    return json_pack("[ff]", round7(lon), round7(lat));
}

static json_t *linestring(json_t *coords)
{
    return json_pack("{s:s,s:o}", "type", "LineString", "coordinates", coords);
}

json_t *track_simplify(const track_pt *p, size_t n, int zoom, size_t *in_vertices,
                       size_t *out_vertices, gc_err *err)
{
    if (in_vertices)
        *in_vertices = n;
    if (out_vertices)
        *out_vertices = 0;
    if (!n) {
        gc_fail(err, GC_EINVAL, "fixes", "no fixes: a track needs at least one");
        return NULL;
    }
    if (check_fixes(p, n, err))
        return NULL;
    if (zoom > 22) {
        gc_fail(err, GC_EINVAL, "zoom", "zoom %d: web-map zoom levels go from 0 to 22", zoom);
        return NULL;
    }
    json_t *coords = json_array();
    if (zoom < 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(coords, position(p[i].lon, p[i].lat));
        if (n == 1)
            json_array_append_new(coords, position(p[0].lon, p[0].lat));
        if (out_vertices)
            *out_vertices = json_array_size(coords);
        return linestring(coords);
    }

    double lon_min = p[0].lon, lon_max = p[0].lon, lat_sum = 0;
    for (size_t i = 0; i < n; i++) {
        lon_min = fmin(lon_min, p[i].lon);
        lon_max = fmax(lon_max, p[i].lon);
        lat_sum += p[i].lat;
    }
    plane pl;
    plane_init(&pl, (lon_min + lon_max) / 2, lat_sum / (double)n);
    /* consecutive repeats carry nothing for a drawing */
    double *xy = malloc(sizeof *xy * 2 * n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        plane_fwd(&pl, p[i].lon, p[i].lat, &x, &y);
        if (m && xy[2 * m - 2] == x && xy[2 * m - 1] == y)
            continue;
        xy[2 * m] = x;
        xy[2 * m + 1] = y;
        m++;
    }
    if (m == 1) {
        json_array_append_new(coords, position(p[0].lon, p[0].lat));
        json_array_append_new(coords, position(p[0].lon, p[0].lat));
        free(xy);
        if (out_vertices)
            *out_vertices = 2;
        return linestring(coords);
    }

    geos g;
    if (geos_open(&g, err)) {
        free(xy);
        json_decref(coords);
        return NULL;
    }
    double tol = 156543.03392804097 * cos(pl.lat0 * M_PI / 180.0) / ldexp(1.0, zoom);
    GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(g.h, xy, m, 0, 0);
    GEOSGeometry *line = cs ? GEOSGeom_createLineString_r(g.h, cs) : NULL;
    GEOSGeometry *s = line ? GEOSSimplify_r(g.h, line, tol) : NULL;
    const GEOSCoordSequence *scs = s ? GEOSGeom_getCoordSeq_r(g.h, s) : NULL;
    unsigned k = 0;
    if (!scs || !GEOSCoordSeq_getSize_r(g.h, scs, &k) || k < 2 ||
        !GEOSCoordSeq_copyToBuffer_r(g.h, scs, xy, 0, 0)) {
        gc_fail(err, GC_EIO, "", "GEOS: simplification failed: %s", g.msg);
        json_decref(coords);
        coords = NULL;
    } else {
        for (unsigned i = 0; i < k; i++) {
            double lon, lat;
            plane_inv(&pl, xy[2 * i], xy[2 * i + 1], &lon, &lat);
            json_array_append_new(coords, position(lon, lat));
        }
        if (out_vertices)
            *out_vertices = k;
    }
    gfree(&g, s);
    gfree(&g, line);
    geos_close(&g);
    free(xy);
    return coords ? linestring(coords) : NULL;
}

/* ---- stops and visits ---- */

json_t *track_stops(const track_pt *p, size_t n, double radius_m, int64_t min_ms, gc_err *err)
{
    if (check_fixes(p, n, err))
        return NULL;
    if (!(radius_m > 0))
        radius_m = TRACK_STOP_RADIUS_M;
    if (min_ms <= 0)
        min_ms = TRACK_STOP_MIN_MS;
    json_t *out = json_array();
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && crs_distance_m(p[i].lon, p[i].lat, p[j].lon, p[j].lat) <= radius_m)
            j++;
        if (p[j - 1].t - p[i].t < min_ms) {
            i++;
            continue;
        }
        double slon = 0, slat = 0;
        for (size_t k = i; k < j; k++) {
            slon += p[k].lon;
            slat += p[k].lat;
        }
        json_array_append_new(
            out, json_pack("{s:f,s:f,s:I,s:I,s:I}", "lon", round7(slon / (double)(j - i)), "lat",
                           round7(slat / (double)(j - i)), "from_ms", (json_int_t)p[i].t, "to_ms",
                           (json_int_t)p[j - 1].t, "fixes", (json_int_t)(j - i)));
        i = j;
    }
    return out;
}

static bool same_grid(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

json_t *track_grids_visited(const track_pt *p, const char *const *grid_ids, size_t n, gc_err *err)
{
    if (n && !grid_ids) {
        gc_fail(err, GC_EINVAL, "grid_ids", "grid_ids: NULL array for %zu fixes", n);
        return NULL;
    }
    if (check_fixes(p, n, err))
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_grid(grid_ids[i], grid_ids[j]))
            j++;
        json_array_append_new(out, json_pack("{s:s?,s:I,s:I,s:I}", "grid_id", grid_ids[i],
                                             "from_ms", (json_int_t)p[i].t, "to_ms",
                                             (json_int_t)p[j - 1].t, "fixes", (json_int_t)(j - i)));
        i = j;
    }
    return out;
}

/* ---- coverage ---- */

static void opts_resolve(const track_opts *o, track_opts *r)
{
    *r = o ? *o : (track_opts){0};
    if (!(r->distance_m > 0))
        r->distance_m = TRACK_DISTANCE_M;
    if (r->gap_ms == 0)
        r->gap_ms = TRACK_GAP_MS;
    if (r->gap_m == 0)
        r->gap_m = TRACK_GAP_M;
    if (r->simplify_m == 0)   /* within a phone's GPS accuracy: see track.h */
        r->simplify_m = fmin(r->distance_m / 3, 10.0);
}

/* The walked geometry on the plane: a MultiLineString (or, when some part is
 * a single place, a GeometryCollection with Points), cut at gaps. */
static GEOSGeometry *track_geometry(geos *g, const plane *pl, const track_pt *p, size_t n,
                                    const track_opts *o)
{
    double *xy = malloc(sizeof *xy * 2 * n);
    size_t nparts = 0, cap = 16;
    GEOSGeometry **parts = g_new(GEOSGeometry *, cap);
    bool points = false, ok = true;
    for (size_t i = 0; i < n && ok;) {
        size_t m = 0, j = i;
        for (; j < n; j++) {
            if (j > i && ((o->gap_ms > 0 && p[j].t - p[j - 1].t > o->gap_ms) ||
                          (o->gap_m > 0 && crs_distance_m(p[j - 1].lon, p[j - 1].lat, p[j].lon,
                                                          p[j].lat) > o->gap_m)))
                break;
            double x, y;
            plane_fwd(pl, p[j].lon, p[j].lat, &x, &y);
            if (m && xy[2 * m - 2] == x && xy[2 * m - 1] == y)
                continue;
            xy[2 * m] = x;
            xy[2 * m + 1] = y;
            m++;
        }
        i = j;
        GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(g->h, xy, m, 0, 0);
        GEOSGeometry *part = NULL;
        if (cs && m == 1) {
            part = GEOSGeom_createPoint_r(g->h, cs);
            points = true;
        } else if (cs) {
            part = GEOSGeom_createLineString_r(g->h, cs);
        }
        if (!part) {
            ok = false;
            break;
        }
        if (nparts == cap)
            parts = g_renew(GEOSGeometry *, parts, cap *= 2);
        parts[nparts++] = part;
    }
    free(xy);
    GEOSGeometry *c = NULL;
    if (ok) /* takes the parts, even should it fail (GEOS 3.11 does) */
        c = GEOSGeom_createCollection_r(
            g->h, points ? GEOS_GEOMETRYCOLLECTION : GEOS_MULTILINESTRING, parts, (unsigned)nparts);
    else
        for (size_t k = 0; k < nparts; k++)
            gfree(g, parts[k]);
    g_free(parts);
    return c;
}

static GEOSGeometry *buffer(geos *g, const GEOSGeometry *x, double D)
{
    return GEOSBufferWithStyle_r(g->h, x, D, QUADSEGS, GEOSBUF_CAP_ROUND, GEOSBUF_JOIN_ROUND, 5.0);
}

/* Buffers of pieces of at most CHUNK segments (neighbours share a vertex),
 * appended to *out. A worker-day re-walks the same streets: buffered whole,
 * its offset curves overlap everywhere and the buffer builder's depth
 * computation goes superlinear; pieces and a cascaded union give the same
 * area in about 60% of the time (bench_coverage). */
static int buffer_pieces(geos *g, const GEOSGeometry *x, double D, GEOSGeometry ***out,
                         size_t *nout, size_t *cap)
{
    int type = GEOSGeomTypeId_r(g->h, x);
    if (type == GEOS_MULTILINESTRING || type == GEOS_GEOMETRYCOLLECTION ||
        type == GEOS_MULTIPOINT) {
        int k = GEOSGetNumGeometries_r(g->h, x);
        for (int i = 0; i < k; i++)
            if (buffer_pieces(g, GEOSGetGeometryN_r(g->h, x, i), D, out, nout, cap))
                return -1;
        return 0;
    }
    if (GEOSisEmpty_r(g->h, x))
        return 0;
    unsigned sz = 0;
    const GEOSCoordSequence *cs = type == GEOS_LINESTRING ? GEOSGeom_getCoordSeq_r(g->h, x) : NULL;
    if (cs && !GEOSCoordSeq_getSize_r(g->h, cs, &sz))
        return -1;
    size_t pieces = sz > CHUNK + 1 ? (sz - 2) / CHUNK + 1 : 1;
    if (*nout + pieces > *cap) {
        *cap = (*nout + pieces) * 2;
        *out = g_renew(GEOSGeometry *, *out, *cap);
    }
    if (pieces == 1) {
        GEOSGeometry *b = buffer(g, x, D);
        if (!b)
            return -1;
        (*out)[(*nout)++] = b;
        return 0;
    }
    double *xy = malloc(sizeof *xy * 2 * sz);
    int rc = GEOSCoordSeq_copyToBuffer_r(g->h, cs, xy, 0, 0) ? 0 : -1;
    for (unsigned from = 0; !rc && from + 1 < sz; from += CHUNK) {
        unsigned to = from + CHUNK + 1 < sz ? from + CHUNK + 1 : sz;
        GEOSCoordSequence *pc = GEOSCoordSeq_copyFromBuffer_r(g->h, xy + 2 * from, to - from, 0, 0);
        GEOSGeometry *piece = pc ? GEOSGeom_createLineString_r(g->h, pc) : NULL;
        GEOSGeometry *b = piece ? buffer(g, piece, D) : NULL;
        gfree(g, piece);
        if (b)
            (*out)[(*nout)++] = b;
        else
            rc = -1;
    }
    free(xy);
    return rc;
}

/* The ground within D of the track, on the plane, restricted to what can
 * reach the rectangle rect (x0, y0, x1, y1). An empty geometry when nothing
 * can. */
static GEOSGeometry *track_reach(geos *g, const plane *pl, const track_pt *p, size_t n,
                                 const track_opts *o, const double rect[4], gc_err *err)
{
    GEOSGeometry *t = track_geometry(g, pl, p, n, o);
    if (!t) {
        gc_fail(err, GC_EIO, "", "GEOS: cannot build the track: %s", g->msg);
        return NULL;
    }
    double D = o->distance_m;
    GEOSGeometry *c = GEOSClipByRect_r(g->h, t, rect[0] - D, rect[1] - D, rect[2] + D, rect[3] + D);
    gfree(g, t);
    GEOSGeometry *s = c;
    if (c && o->simplify_m > 0 && !GEOSisEmpty_r(g->h, c)) {
        s = GEOSSimplify_r(g->h, c, o->simplify_m);
        gfree(g, c);
    }
    GEOSGeometry **b = NULL, *u = NULL;
    size_t nb = 0, cap = 0;
    if (s && !buffer_pieces(g, s, D, &b, &nb, &cap)) {
        if (nb == 1) {
            u = b[0];
            nb = 0;
        } else {
            GEOSGeometry *all =
                GEOSGeom_createCollection_r(g->h, GEOS_GEOMETRYCOLLECTION, b, (unsigned)nb);
            nb = 0;
            u = all ? GEOSUnaryUnion_r(g->h, all) : NULL;
            gfree(g, all);
        }
    }
    for (size_t i = 0; i < nb; i++)
        gfree(g, b[i]);
    g_free(b);
    gfree(g, s);
    if (!u)
        gc_fail(err, GC_EIO, "", "GEOS: cannot buffer the track: %s", g->msg);
    return u;
}

/* Reads a WKB polygon or multipolygon; what names it in messages. */
static GEOSGeometry *read_polygonal(geos *g, const unsigned char *wkb, size_t len, const char *what,
                                    gc_err *err)
{
    if (!wkb || !len) {
        gc_fail(err, GC_EINVAL, what, "%s: no WKB", what);
        return NULL;
    }
    GEOSWKBReader *r = GEOSWKBReader_create_r(g->h);
    GEOSGeometry *x = GEOSWKBReader_read_r(g->h, r, wkb, len);
    GEOSWKBReader_destroy_r(g->h, r);
    if (!x) {
        gc_fail(err, GC_EINVAL, what, "%s: not WKB (%zu bytes): %s", what, len, g->msg);
        return NULL;
    }
    int type = GEOSGeomTypeId_r(g->h, x);
    if (type != GEOS_POLYGON && type != GEOS_MULTIPOLYGON) {
        char *tn = GEOSGeomType_r(g->h, x);
        gc_fail(err, GC_EINVAL, what, "%s: a %s, not a Polygon or MultiPolygon", what,
                tn ? tn : "?");
        GEOSFree_r(g->h, tn);
        gfree(g, x);
        return NULL;
    }
    if (GEOSisEmpty_r(g->h, x)) {
        gc_fail(err, GC_EINVAL, what, "%s: an empty polygon", what);
        gfree(g, x);
        return NULL;
    }
    double e[4];
    if (!GEOSGeom_getXMin_r(g->h, x, &e[0]) || !GEOSGeom_getYMin_r(g->h, x, &e[1]) ||
        !GEOSGeom_getXMax_r(g->h, x, &e[2]) || !GEOSGeom_getYMax_r(g->h, x, &e[3]) ||
        !isfinite(e[0] + e[1] + e[2] + e[3]) || e[0] < -180 || e[2] > 180 || e[1] < -90 ||
        e[3] > 90) {
        gc_fail(err, GC_EINVAL, what, "%s: coordinates are not EPSG:4326 longitude,latitude", what);
        gfree(g, x);
        return NULL;
    }
    return x;
}

static void envelope(geos *g, const GEOSGeometry *x, double e[4])
{
    GEOSGeom_getXMin_r(g->h, x, &e[0]);
    GEOSGeom_getYMin_r(g->h, x, &e[1]);
    GEOSGeom_getXMax_r(g->h, x, &e[2]);
    GEOSGeom_getYMax_r(g->h, x, &e[3]);
}

static GEOSGeometry *to_plane(geos *g, const plane *pl, const GEOSGeometry *x)
{
    return GEOSGeom_transformXY_r(g->h, x, plane_cb, (void *)pl);
}

/* Area of a ∩ b (b on plane pl); a failure usually means b is invalid: say
 * why and where, in degrees. */
static int overlap_area(geos *g, const plane *pl, const GEOSGeometry *a, const GEOSGeometry *b,
                        const char *what, double *area, gc_err *err)
{
    GEOSGeometry *x = GEOSIntersection_r(g->h, a, b);
    if (x && GEOSArea_r(g->h, x, area)) {
        gfree(g, x);
        return 0;
    }
    gfree(g, x);
    char *why = NULL;
    GEOSGeometry *loc = NULL;
    double lon = NAN, lat = NAN, px, py;
    if (GEOSisValidDetail_r(g->h, b, 0, &why, &loc) == 0 && loc && GEOSGeomGetX_r(g->h, loc, &px) &&
        GEOSGeomGetY_r(g->h, loc, &py))
        plane_inv(pl, px, py, &lon, &lat);
    if (isfinite(lon))
        gc_fail(err, GC_EINVAL, what, "%s: invalid polygon: %s at %.7f,%.7f", what, why ? why : "?",
                lon, lat);
    else
        gc_fail(err, GC_EINVAL, what, "%s: cannot intersect it with the track: %s", what, g->msg);
    GEOSFree_r(g->h, why);
    gfree(g, loc);
    return GC_EINVAL;
}

int track_coverage(const track_pt *p, size_t n, const unsigned char *grid_wkb, size_t len,
                   const track_opts *o, track_cov *out, gc_err *err)
{
    *out = (track_cov){0};
    if (!n)
        return gc_fail(err, GC_EINVAL, "fixes", "no fixes: coverage needs at least one");
    if (check_fixes(p, n, err))
        return GC_EINVAL;
    track_opts opt;
    opts_resolve(o, &opt);
    geos g;
    if (geos_open(&g, err))
        return GC_EIO;
    GEOSGeometry *grid = NULL, *pgrid = NULL, *reach = NULL;
    int rc = GC_EINVAL;
    grid = read_polygonal(&g, grid_wkb, len, "grid", err);
    if (!grid)
        goto done;
    double e[4];
    envelope(&g, grid, e);
    plane pl;
    plane_init(&pl, (e[0] + e[2]) / 2, (e[1] + e[3]) / 2);
    pgrid = to_plane(&g, &pl, grid);
    if (!pgrid || !GEOSArea_r(g.h, pgrid, &out->total_m2)) {
        rc = gc_fail(err, GC_EIO, "", "GEOS: cannot project the grid: %s", g.msg);
        goto done;
    }
    envelope(&g, pgrid, e);
    reach = track_reach(&g, &pl, p, n, &opt, e, err);
    if (!reach) {
        rc = GC_EIO;
        goto done;
    }
    if (!GEOSisEmpty_r(g.h, reach) &&
        (rc = overlap_area(&g, &pl, reach, pgrid, "grid", &out->covered_m2, err)))
        goto done;
    out->ratio = out->total_m2 > 0 ? fmin(1.0, out->covered_m2 / out->total_m2) : 0;
    rc = 0;
done:
    gfree(&g, reach);
    gfree(&g, pgrid);
    gfree(&g, grid);
    geos_close(&g);
    if (rc)
        *out = (track_cov){0};
    return rc;
}

int track_coverage_buildings(const track_pt *p, size_t n, const unsigned char *const *wkbs,
                             const size_t *lens, size_t nb, const track_opts *o, track_cov *out,
                             gc_err *err)
{
    *out = (track_cov){0};
    if (!n)
        return gc_fail(err, GC_EINVAL, "fixes", "no fixes: coverage needs at least one");
    if (check_fixes(p, n, err))
        return GC_EINVAL;
    if (nb && (!wkbs || !lens))
        return gc_fail(err, GC_EINVAL, "buildings", "buildings: NULL array for %zu", nb);
    if (!nb)
        return 0;
    track_opts opt;
    opts_resolve(o, &opt);
    geos g;
    if (geos_open(&g, err))
        return GC_EIO;
    GEOSGeometry **b = calloc(nb, sizeof *b);
    GEOSGeometry *reach = NULL;
    const GEOSPreparedGeometry *prep = NULL;
    int rc = GC_EINVAL;
    double e[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (size_t i = 0; i < nb; i++) {
        char what[48];
        snprintf(what, sizeof what, "building %zu", i);
        if (!(b[i] = read_polygonal(&g, wkbs[i], lens[i], what, err)))
            goto done;
        double bi[4];
        envelope(&g, b[i], bi);
        e[0] = fmin(e[0], bi[0]);
        e[1] = fmin(e[1], bi[1]);
        e[2] = fmax(e[2], bi[2]);
        e[3] = fmax(e[3], bi[3]);
    }
    plane pl;
    plane_init(&pl, (e[0] + e[2]) / 2, (e[1] + e[3]) / 2);
    double pe[4];
    plane_fwd(&pl, e[0], e[1], &pe[0], &pe[1]);
    plane_fwd(&pl, e[2], e[3], &pe[2], &pe[3]);
    for (size_t i = 0; i < nb; i++) {
        GEOSGeometry *q = to_plane(&g, &pl, b[i]);
        gfree(&g, b[i]);
        b[i] = q;
        if (!q) {
            rc = gc_fail(err, GC_EIO, "", "GEOS: cannot project building %zu: %s", i, g.msg);
            goto done;
        }
    }
    reach = track_reach(&g, &pl, p, n, &opt, pe, err);
    if (!reach) {
        rc = GC_EIO;
        goto done;
    }
    bool none = GEOSisEmpty_r(g.h, reach);
    if (!none && !(prep = GEOSPrepare_r(g.h, reach))) {
        rc = gc_fail(err, GC_EIO, "", "GEOS: cannot prepare the track: %s", g.msg);
        goto done;
    }
    out->buildings = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        double a = 0;
        GEOSArea_r(g.h, b[i], &a);
        out->total_m2 += a;
        if (none || GEOSPreparedIntersects_r(g.h, prep, b[i]) != 1)
            continue;
        out->buildings_touched++;
        if (GEOSPreparedContains_r(g.h, prep, b[i]) == 1) {
            out->covered_m2 += a;
            continue;
        }
        /* the reach polygon is large: cut out the building's rectangle first
         * (a linear scan) and overlay only that, 3x faster than overlaying
         * the whole of it building by building */
        double be[4];
        envelope(&g, b[i], be);
        GEOSGeometry *near =
            GEOSClipByRect_r(g.h, reach, be[0] - 1, be[1] - 1, be[2] + 1, be[3] + 1);
        char what[48];
        snprintf(what, sizeof what, "building %zu", i);
        rc = near ? overlap_area(&g, &pl, near, b[i], what, &a, err)
                  : gc_fail(err, GC_EIO, "", "GEOS: cannot clip the track: %s", g.msg);
        gfree(&g, near);
        if (rc)
            goto done;
        out->covered_m2 += a;
    }
    out->ratio = out->total_m2 > 0 ? fmin(1.0, out->covered_m2 / out->total_m2) : 0;
    rc = 0;
done:
    if (prep)
        GEOSPreparedGeom_destroy_r(g.h, prep);
    gfree(&g, reach);
    for (size_t i = 0; i < nb; i++)
        gfree(&g, b[i]);
    free(b);
    geos_close(&g);
    if (rc)
        *out = (track_cov){0};
    return rc;
}
