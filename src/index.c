/* index: cell rasters per layer over exact integer point-in-polygon tests.
 * See index.h for the boundary rule. Build cost is linear in edges plus
 * cells; a lookup is one array read per layer and, on edge cells only, a
 * crossing test against the few features whose edges pass through the cell. */
#include "gridcc/index.h"

#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#define QSCALE 1e9          /* quantisation: 1e-9 degree, ~0.1 mm */
#define FULL_BIT 0x80000000u

typedef struct feat {
    index_hit hit;
    uint32_t ring0, nrings;  /* into ix->rings */
    double bbox[4];
} feat;

typedef struct ring {
    uint32_t v0, nv;         /* into ix->vx/vy; closed: last == first */
} ring;

typedef struct layer {
    char *name;
    char *department;
    gc_level level;
    uint32_t f0, nf;         /* features [f0, f0+nf) */
    double x0, y0, cw, ch, icw, ich;
    int nx, ny;
    int32_t *cells;          /* -1 empty, >=0 inside feature, <=-2 candidates at -(v+2) */
    uint32_t *cand;          /* [count, entry...] entry = feature | FULL_BIT if inside */
    size_t ncand;
} layer;

struct gc_index {
    feat *feats;
    size_t nfeats;
    ring *rings;
    size_t nrings;
    int64_t *vx, *vy;        /* quantised vertices */
    double *dx, *dy;         /* the same in doubles, for building */
    size_t nverts;
    layer *layers;
    size_t nlayers;
    int chain_layer[LEVEL_CHAIN_N];   /* layer index per chain level, -1 if none */
    GStringChunk *strings;
    /* index_derived's slot: written once under g_once, the index is otherwise read-only */
    void *derived;
    void *(*derived_make)(const gc_index *ix);
    void (*derived_destroy)(void *data);
};

struct index_builder {
    gc_index *ix;
    GEOSContextHandle_t geos;
    GEOSWKBReader *reader;
    size_t capf, capr, capv, capl;
};

index_builder *index_builder_new(void)
{
    index_builder *b = calloc(1, sizeof *b);
    b->ix = calloc(1, sizeof *b->ix);
    b->ix->strings = g_string_chunk_new(1 << 16);
    b->geos = GEOS_init_r();
    b->reader = GEOSWKBReader_create_r(b->geos);
    return b;
}

void index_builder_free(index_builder *b)
{
    if (!b)
        return;
    if (b->ix)
        index_free(b->ix);
    GEOSWKBReader_destroy_r(b->geos, b->reader);
    GEOS_finish_r(b->geos);
    free(b);
}

#define GROW(arr, n, cap, init)                                                                \
    do {                                                                                       \
        if ((n) >= (cap)) {                                                                    \
            (cap) = (cap) ? (cap) * 2 : (init);                                                \
            (arr) = realloc((arr), (cap) * sizeof *(arr));                                     \
        }                                                                                      \
    } while (0)

static int add_ring(index_builder *b, const GEOSGeometry *r, feat *f)
{
    gc_index *ix = b->ix;
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(b->geos, r);
    unsigned int n = 0;
    if (!cs || !GEOSCoordSeq_getSize_r(b->geos, cs, &n) || n < 4)
        return 0;   /* degenerate rings hold no area */
    GROW(ix->rings, ix->nrings, b->capr, 1024);
    ring *rg = &ix->rings[ix->nrings++];
    rg->v0 = (uint32_t)ix->nverts;
    rg->nv = n;
    while (ix->nverts + n > b->capv) {
        b->capv = b->capv ? b->capv * 2 : 65536;
        ix->vx = realloc(ix->vx, b->capv * sizeof *ix->vx);
        ix->vy = realloc(ix->vy, b->capv * sizeof *ix->vy);
        ix->dx = realloc(ix->dx, b->capv * sizeof *ix->dx);
        ix->dy = realloc(ix->dy, b->capv * sizeof *ix->dy);
    }
    for (unsigned int i = 0; i < n; i++) {
        double x, y;
        GEOSCoordSeq_getXY_r(b->geos, cs, i, &x, &y);
        size_t k = ix->nverts++;
        ix->dx[k] = x;
        ix->dy[k] = y;
        ix->vx[k] = llround(x * QSCALE);
        ix->vy[k] = llround(y * QSCALE);
        if (x < f->bbox[0]) f->bbox[0] = x;
        if (y < f->bbox[1]) f->bbox[1] = y;
        if (x > f->bbox[2]) f->bbox[2] = x;
        if (y > f->bbox[3]) f->bbox[3] = y;
    }
    f->nrings++;
    return 0;
}

static void add_polygon(index_builder *b, const GEOSGeometry *p, feat *f)
{
    add_ring(b, GEOSGetExteriorRing_r(b->geos, p), f);
    int nh = GEOSGetNumInteriorRings_r(b->geos, p);
    for (int i = 0; i < nh; i++)
        add_ring(b, GEOSGetInteriorRingN_r(b->geos, p, i), f);
}

int index_builder_add(index_builder *b, const char *lname, gc_level level, const char *fid,
                      const char *name, const char *code, const unsigned char *wkb, size_t len,
                      gc_err *err)
{
    gc_index *ix = b->ix;
    GEOSGeometry *g = GEOSWKBReader_read_r(b->geos, b->reader, wkb, len);
    if (!g)
        return gc_fail(err, GC_EINVAL, "geometry", "feature %s: unreadable WKB", fid);
    int type = GEOSGeomTypeId_r(b->geos, g);
    if (type != GEOS_POLYGON && type != GEOS_MULTIPOLYGON) {
        GEOSGeom_destroy_r(b->geos, g);
        return gc_fail(err, GC_EINVAL, "geometry", "feature %s: not a polygon", fid);
    }
    /* layers are contiguous runs of features */
    if (!ix->nlayers || strcmp(ix->layers[ix->nlayers - 1].name, lname)) {
        GROW(ix->layers, ix->nlayers, b->capl, 16);
        layer *l = &ix->layers[ix->nlayers++];
        memset(l, 0, sizeof *l);
        l->name = g_string_chunk_insert_const(ix->strings, lname);
        l->level = level;
        l->f0 = (uint32_t)ix->nfeats;
    }
    layer *l = &ix->layers[ix->nlayers - 1];
    GROW(ix->feats, ix->nfeats, b->capf, 1024);
    feat *f = &ix->feats[ix->nfeats];
    memset(f, 0, sizeof *f);
    f->hit.layer = l->name;
    f->hit.department = l->department;
    f->hit.level = level;
    f->hit.fid = g_string_chunk_insert(ix->strings, fid ? fid : "");
    f->hit.name = name ? g_string_chunk_insert(ix->strings, name) : NULL;
    f->hit.code = code ? g_string_chunk_insert(ix->strings, code) : NULL;
    f->ring0 = (uint32_t)ix->nrings;
    f->bbox[0] = f->bbox[1] = INFINITY;
    f->bbox[2] = f->bbox[3] = -INFINITY;
    if (type == GEOS_POLYGON) {
        add_polygon(b, g, f);
    } else {
        int np = GEOSGetNumGeometries_r(b->geos, g);
        for (int i = 0; i < np; i++)
            add_polygon(b, GEOSGetGeometryN_r(b->geos, g, i), f);
    }
    GEOSGeom_destroy_r(b->geos, g);
    if (f->nrings) {
        ix->nfeats++;
        l->nf++;
    }
    return 0;
}

void index_builder_set_department(index_builder *b, const char *lname, const char *department)
{
    gc_index *ix = b->ix;
    for (size_t i = 0; i < ix->nlayers; i++) {
        layer *l = &ix->layers[i];
        if (strcmp(l->name, lname))
            continue;
        l->department = department ? g_string_chunk_insert_const(ix->strings, department) : NULL;
        for (uint32_t f = l->f0; f < l->f0 + l->nf; f++)
            ix->feats[f].hit.department = l->department;
    }
}

/* ---- exact point in polygon ---- */

static int feat_contains(const gc_index *ix, const feat *f, int64_t px, int64_t py)
{
    int in = 0;
    for (uint32_t r = f->ring0; r < f->ring0 + f->nrings; r++) {
        const int64_t *xs = ix->vx + ix->rings[r].v0, *ys = ix->vy + ix->rings[r].v0;
        uint32_t n = ix->rings[r].nv;
        for (uint32_t i = 0; i + 1 < n; i++) {
            int64_t ay = ys[i], by = ys[i + 1];
            if ((ay > py) == (by > py))
                continue;   /* half-open: the edge must span py */
            int64_t ax = xs[i], bx = xs[i + 1];
            __int128 o = (__int128)(bx - ax) * (py - ay) - (__int128)(by - ay) * (px - ax);
            /* the crossing lies strictly east of p */
            if (by > ay ? o > 0 : o < 0)
                in = !in;
        }
    }
    return in;
}

/* ---- building the cell rasters ---- */

typedef struct pair {
    uint32_t cell, entry;
} pair;

typedef struct pairs {
    pair *v;
    size_t n, cap;
} pairs;

static void pair_add(pairs *p, uint32_t cell, uint32_t entry)
{
    GROW(p->v, p->n, p->cap, 65536);
    p->v[p->n++] = (pair){cell, entry};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void build_layer(gc_index *ix, layer *l)
{
    double bb[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    size_t nedges = 0;
    for (uint32_t i = l->f0; i < l->f0 + l->nf; i++) {
        feat *f = &ix->feats[i];
        bb[0] = fmin(bb[0], f->bbox[0]);
        bb[1] = fmin(bb[1], f->bbox[1]);
        bb[2] = fmax(bb[2], f->bbox[2]);
        bb[3] = fmax(bb[3], f->bbox[3]);
        for (uint32_t r = f->ring0; r < f->ring0 + f->nrings; r++)
            nedges += ix->rings[r].nv - 1;
    }
    /* cells: ~32 per feature, at least 2^14, at most 2^22 (16 MiB); smaller
     * rasters stay in cache: measured faster than finer ones (bench_geotag) */
    double target = fmin(fmax(32.0 * l->nf, 16384.0), 4194304.0);
    double w = fmax(bb[2] - bb[0], 1e-7), h = fmax(bb[3] - bb[1], 1e-7);
    double s = sqrt(w * h / target);
    l->nx = (int)fmin(ceil(w / s), 8192);
    l->ny = (int)fmin(ceil(h / s), 8192);
    if (l->nx < 1) l->nx = 1;
    if (l->ny < 1) l->ny = 1;
    l->x0 = bb[0];
    l->y0 = bb[1];
    l->cw = w / l->nx;
    l->ch = h / l->ny;
    l->icw = 1.0 / l->cw;
    l->ich = 1.0 / l->ch;
    size_t ncells = (size_t)l->nx * (size_t)l->ny;
    /* a cell is an edge cell of a feature if an edge comes within eps of it:
     * eps covers quantisation and the rounding of a point's cell index */
    double epsx = fmax(l->cw * 1e-6, 1e-8), epsy = fmax(l->ch * 1e-6, 1e-8);

    uint32_t *stamp = malloc(ncells * sizeof *stamp);
    memset(stamp, 0xff, ncells * sizeof *stamp);
    pairs p = {0};
    double *xs = NULL;
    size_t capxs = 0;
    (void)nedges;

    for (uint32_t fi = l->f0; fi < l->f0 + l->nf; fi++) {
        feat *f = &ix->feats[fi];
        /* 1. edge cells: clip each edge to each row band it crosses */
        for (uint32_t r = f->ring0; r < f->ring0 + f->nrings; r++) {
            const double *X = ix->dx + ix->rings[r].v0, *Y = ix->dy + ix->rings[r].v0;
            for (uint32_t i = 0; i + 1 < ix->rings[r].nv; i++) {
                double ax = X[i], ay = Y[i], bx = X[i + 1], by = Y[i + 1];
                double ylo = fmin(ay, by) - epsy, yhi = fmax(ay, by) + epsy;
                int r0 = (int)floor((ylo - l->y0) * l->ich), r1 = (int)floor((yhi - l->y0) * l->ich);
                if (r0 < 0) r0 = 0;
                if (r1 >= l->ny) r1 = l->ny - 1;
                for (int row = r0; row <= r1; row++) {
                    double b0 = l->y0 + row * l->ch - epsy, b1 = l->y0 + (row + 1) * l->ch + epsy;
                    double xa, xb;
                    if (ay == by) {
                        xa = fmin(ax, bx);
                        xb = fmax(ax, bx);
                    } else {
                        double t0 = (b0 - ay) / (by - ay), t1 = (b1 - ay) / (by - ay);
                        double tl = fmax(0.0, fmin(t0, t1)), th = fmin(1.0, fmax(t0, t1));
                        if (tl > th)
                            continue;
                        double x0 = ax + (bx - ax) * tl, x1 = ax + (bx - ax) * th;
                        xa = fmin(x0, x1);
                        xb = fmax(x0, x1);
                    }
                    int c0 = (int)floor((xa - epsx - l->x0) * l->icw);
                    int c1 = (int)floor((xb + epsx - l->x0) * l->icw);
                    if (c0 < 0) c0 = 0;
                    if (c1 >= l->nx) c1 = l->nx - 1;
                    for (int c = c0; c <= c1; c++) {
                        uint32_t cell = (uint32_t)row * (uint32_t)l->nx + (uint32_t)c;
                        if (stamp[cell] != fi) {
                            stamp[cell] = fi;
                            pair_add(&p, cell, fi);
                        }
                    }
                }
            }
        }
        /* 2. cells untouched by edges are wholly in or out: decide by a scan
         *    line through the row's centre */
        int r0 = (int)floor((f->bbox[1] - l->y0) * l->ich), r1 = (int)floor((f->bbox[3] - l->y0) * l->ich);
        int c0 = (int)floor((f->bbox[0] - l->x0) * l->icw), c1 = (int)floor((f->bbox[2] - l->x0) * l->icw);
        if (r0 < 0) r0 = 0;
        if (c0 < 0) c0 = 0;
        if (r1 >= l->ny) r1 = l->ny - 1;
        if (c1 >= l->nx) c1 = l->nx - 1;
        for (int row = r0; row <= r1; row++) {
            double yc = l->y0 + (row + 0.5) * l->ch;
            size_t nx = 0;
            for (uint32_t r = f->ring0; r < f->ring0 + f->nrings; r++) {
                const double *X = ix->dx + ix->rings[r].v0, *Y = ix->dy + ix->rings[r].v0;
                for (uint32_t i = 0; i + 1 < ix->rings[r].nv; i++) {
                    double ay = Y[i], by = Y[i + 1];
                    if ((ay > yc) == (by > yc))
                        continue;
                    GROW(xs, nx, capxs, 256);
                    xs[nx++] = X[i] + (yc - ay) * (X[i + 1] - X[i]) / (by - ay);
                }
            }
            if (nx < 2)
                continue;
            qsort(xs, nx, sizeof *xs, cmp_double);
            size_t k = 0;
            for (int c = c0; c <= c1; c++) {
                uint32_t cell = (uint32_t)row * (uint32_t)l->nx + (uint32_t)c;
                double xc = l->x0 + (c + 0.5) * l->cw;
                while (k < nx && xs[k] < xc)
                    k++;
                if ((k & 1) && stamp[cell] != fi)
                    pair_add(&p, cell, fi | FULL_BIT);
            }
        }
    }
    free(stamp);
    free(xs);

    /* 3. counting sort of (cell, entry) into the raster and candidate lists */
    uint32_t *count = calloc(ncells, sizeof *count);
    for (size_t i = 0; i < p.n; i++)
        count[p.v[i].cell]++;
    l->cells = malloc(ncells * sizeof *l->cells);
    size_t total = 0;
    /* offsets: cells with one FULL entry need no list; decide after a pass */
    uint32_t *single = calloc(ncells, sizeof *single);
    for (size_t i = 0; i < p.n; i++)
        single[p.v[i].cell] = p.v[i].entry;
    for (size_t c = 0; c < ncells; c++) {
        if (count[c] == 0) {
            l->cells[c] = -1;
        } else if (count[c] == 1 && (single[c] & FULL_BIT)) {
            l->cells[c] = (int32_t)(single[c] & ~FULL_BIT);
        } else {
            l->cells[c] = -(int32_t)total - 2;
            total += 1 + count[c];
        }
    }
    free(single);
    l->cand = malloc((total ? total : 1) * sizeof *l->cand);
    l->ncand = total;
    for (size_t c = 0; c < ncells; c++)
        if (l->cells[c] <= -2)
            l->cand[-(l->cells[c] + 2)] = 0;
    /* pairs come per feature in feature order, so lists stay sorted by feature */
    for (size_t i = 0; i < p.n; i++) {
        int32_t v = l->cells[p.v[i].cell];
        if (v <= -2) {
            uint32_t *lst = &l->cand[-(v + 2)];
            lst[1 + lst[0]++] = p.v[i].entry;
        }
    }
    free(count);
    free(p.v);
}

gc_index *index_builder_finish(index_builder *b)
{
    gc_index *ix = b->ix;
    b->ix = NULL;
    index_builder_free(b);
    for (int i = 0; i < LEVEL_CHAIN_N; i++)
        ix->chain_layer[i] = -1;
    for (size_t i = 0; i < ix->nlayers; i++) {
        layer *l = &ix->layers[i];
        if (l->nf)
            build_layer(ix, l);
        if (l->level >= 0 && l->level < LEVEL_CHAIN_N && ix->chain_layer[l->level] < 0)
            ix->chain_layer[l->level] = (int)i;
    }
    /* the doubles were only needed to build */
    free(ix->dx);
    free(ix->dy);
    ix->dx = ix->dy = NULL;
    return ix;
}

void index_free(gc_index *ix)
{
    if (!ix)
        return;
    if (ix->derived && ix->derived_destroy)
        ix->derived_destroy(ix->derived);
    for (size_t i = 0; i < ix->nlayers; i++) {
        free(ix->layers[i].cells);
        free(ix->layers[i].cand);
    }
    free(ix->layers);
    free(ix->feats);
    free(ix->rings);
    free(ix->vx);
    free(ix->vy);
    free(ix->dx);
    free(ix->dy);
    g_string_chunk_free(ix->strings);
    free(ix);
}

size_t index_feature_count(const gc_index *ix) { return ix->nfeats; }

const index_hit *index_feature(const gc_index *ix, size_t i)
{
    return i < ix->nfeats ? &ix->feats[i].hit : NULL;
}

size_t index_feature_number(const gc_index *ix, const index_hit *h)
{
    /* every hit handed out is the first member of a feat */
    return (size_t)((const feat *)(const void *)h - ix->feats);
}

void *index_derived(const gc_index *ix, void *(*make)(const gc_index *ix),
                    void (*destroy)(void *data))
{
    gc_index *m = (gc_index *)ix;
    if (g_once_init_enter(&m->derived)) {
        m->derived_make = make;
        m->derived_destroy = destroy;
        g_once_init_leave(&m->derived, make(ix));
    }
    g_return_val_if_fail(m->derived_make == make, NULL);
    return m->derived;
}

size_t index_memory_bytes(const gc_index *ix)
{
    size_t m = ix->nfeats * sizeof(feat) + ix->nrings * sizeof(ring) + ix->nverts * 16;
    for (size_t i = 0; i < ix->nlayers; i++)
        m += (size_t)ix->layers[i].nx * ix->layers[i].ny * 4 + ix->layers[i].ncand * 4;
    return m;
}

/* ---- lookup ---- */

/* Calls back for each feature of the layer containing the point; stops when
 * first_only and one is found. Returns the number found. */
static size_t layer_lookup(const gc_index *ix, const layer *l, double lon, double lat,
                           int64_t qx, int64_t qy, const index_hit **hits, size_t max,
                           int first_only)
{
    if (!l->cells)
        return 0;
    double fx = (lon - l->x0) * l->icw, fy = (lat - l->y0) * l->ich;
    if (!(fx >= 0 && fy >= 0 && fx < l->nx && fy < l->ny))
        return 0;
    int32_t v = l->cells[(size_t)(int)fy * (size_t)l->nx + (size_t)(int)fx];
    if (v == -1)
        return 0;
    if (v >= 0) {
        hits[0] = &ix->feats[v].hit;
        return 1;
    }
    const uint32_t *lst = &l->cand[-(v + 2)];
    size_t n = 0;
    for (uint32_t i = 0; i < lst[0] && n < max; i++) {
        uint32_t e = lst[1 + i];
        const feat *f = &ix->feats[e & ~FULL_BIT];
        if ((e & FULL_BIT) || feat_contains(ix, f, qx, qy)) {
            hits[n++] = &f->hit;
            if (first_only)
                break;
        }
    }
    return n;
}

int index_geotag(const gc_index *ix, double lon, double lat, index_chain *out)
{
    return index_geotag_only(ix, lon, lat, ~0u, true, out);
}

int index_geotag_only(const gc_index *ix, double lon, double lat, unsigned levels, bool extras,
                      index_chain *out)
{
    memset(out, 0, sizeof *out);
    if (!isfinite(lon) || !isfinite(lat))
        return GC_EINVAL;
    if (lon < -180 || lon > 180 || lat < -90 || lat > 90)
        return 0;
    int64_t qx = llround(lon * QSCALE), qy = llround(lat * QSCALE);
    for (int lv = 0; lv < LEVEL_CHAIN_N; lv++) {
        int li = ix->chain_layer[lv];
        if (li >= 0 && (levels & (1u << lv)))
            layer_lookup(ix, &ix->layers[li], lon, lat, qx, qy, &out->chain[lv], 1, 1);
    }
    for (size_t i = 0; extras && i < ix->nlayers; i++) {
        const layer *l = &ix->layers[i];
        if (l->level < LEVEL_CHAIN_N || out->nextra >= INDEX_MAX_EXTRA)
            continue;
        out->nextra += layer_lookup(ix, l, lon, lat, qx, qy, out->extra + out->nextra,
                                    INDEX_MAX_EXTRA - out->nextra, 0);
    }
    return 0;
}
