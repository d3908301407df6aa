/* layers_check: validation. Per feature (on the checker thread, as the file
 * is read): GEOS validity and --repair. Across features: duplicate ids,
 * siblings overlapping, gaps inside a parent (beside the write, awaited
 * before its commit). The parents: loaded from the store and assigned by
 * code or greatest overlap. */
#include "layers_priv.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Leaves it out of the layer: counted by reason and named like any problem,
 * under a cap of its own so that warnings cannot crowd skipped features out
 * of the report. */
static void skip(ctx *c, item *it, layers_skip_reason why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void skip(ctx *c, item *it, layers_skip_reason why, const char *fmt, ...)
{
    char w[512], msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    layers_where(c, it, w, sizeof w);
    it->skipped = true;
    g_mutex_lock(&c->lock);
    c->rep->skipped_by[why]++;
    if (++c->rep->skipped <= MAX_REPORTED && c->o->message) {
        char buf[sizeof w + sizeof msg + 2];
        snprintf(buf, sizeof buf, "%s: %s", w, msg);
        c->o->message(c->o->ud, LAYERS_MSG_SKIP, buf);
    }
    g_mutex_unlock(&c->lock);
}

/* ---- geometry helpers ---- */

/* m² per square degree at a latitude: an equirectangular approximation,
 * within 0.5% over a district-sized feature. */
static double m2_per_deg2(double lat)
{
    return 111320.0 * cos(lat * M_PI / 180.0) * 110574.0;
}

double layers_area_m2(ctx *c, const GEOSGeometry *g)
{
    double a = 0, miny = 0, maxy = 0;
    if (!GEOSArea_r(GH, g, &a) || a == 0)
        return 0;
    GEOSGeom_getYMin_r(GH, g, &miny);
    GEOSGeom_getYMax_r(GH, g, &maxy);
    return a * m2_per_deg2((miny + maxy) / 2);
}

static void point_of(ctx *c, const GEOSGeometry *g, double *x, double *y)
{
    *x = *y = NAN;
    GEOSGeometry *p = GEOSPointOnSurface_r(GH, g);
    if (p) {
        GEOSGeomGetX_r(GH, p, x);
        GEOSGeomGetY_r(GH, p, y);
        GEOSGeom_destroy_r(GH, p);
    }
}

/* Keeps the polygonal parts of g (consumed) as one (Multi)Polygon, or NULL. */
static GEOSGeometry *polygonal(ctx *c, GEOSGeometry *g)
{
    int t = GEOSGeomTypeId_r(GH, g);
    if (t == GEOS_POLYGON || t == GEOS_MULTIPOLYGON)
        return g;
    if (t != GEOS_GEOMETRYCOLLECTION) {
        GEOSGeom_destroy_r(GH, g);
        return NULL;
    }
    int n = GEOSGetNumGeometries_r(GH, g);
    GEOSGeometry **parts = malloc(sizeof *parts * (size_t)(n ? n : 1) * 4);
    unsigned int np = 0;
    for (int i = 0; i < n; i++) {
        const GEOSGeometry *s = GEOSGetGeometryN_r(GH, g, i);
        int st = GEOSGeomTypeId_r(GH, s);
        if (st == GEOS_POLYGON) {
            parts[np++] = GEOSGeom_clone_r(GH, s);
        } else if (st == GEOS_MULTIPOLYGON) {
            int m = GEOSGetNumGeometries_r(GH, s);
            parts = realloc(parts, sizeof *parts * (np + (unsigned)m + (unsigned)n));
            for (int j = 0; j < m; j++)
                parts[np++] = GEOSGeom_clone_r(GH, GEOSGetGeometryN_r(GH, s, j));
        }
    }
    GEOSGeom_destroy_r(GH, g);
    GEOSGeometry *out = NULL;
    if (np)
        out = GEOSGeom_createCollection_r(GH, GEOS_MULTIPOLYGON, parts, np);
    free(parts);
    return out;
}

/* ---- validation ---- */

/* The stored geometry (WKB and bounding box) follows it->g after a repair. */
static void store_geometry(item *it)
{
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(GH);
    GEOSWKBWriter_setByteOrder_r(GH, w, GEOS_WKB_NDR);
    size_t len;
    unsigned char *wkb = GEOSWKBWriter_write_r(GH, w, it->g, &len);
    GEOSWKBWriter_destroy_r(GH, w);
    free(it->wkb);
    it->wkb = malloc(len);
    memcpy(it->wkb, wkb, len);
    it->wkb_len = len;
    GEOSFree_r(GH, wkb);
    GEOSGeom_getXMin_r(GH, it->g, &it->bbox[0]);
    GEOSGeom_getYMin_r(GH, it->g, &it->bbox[1]);
    GEOSGeom_getXMax_r(GH, it->g, &it->bbox[2]);
    GEOSGeom_getYMax_r(GH, it->g, &it->bbox[3]);
}

static void check_geometry(ctx *c, item *it)
{
    if (!it->g)
        return;
    char *reason = NULL;
    GEOSGeometry *loc = NULL;
    char valid = GEOSisValidDetail_r(GH, it->g, 0, &reason, &loc);
    if (valid != 1) {
        double x = NAN, y = NAN;
        if (loc) {
            GEOSGeomGetX_r(GH, loc, &x);
            GEOSGeomGetY_r(GH, loc, &y);
        }
        if (c->o->repair) {
            double before = layers_area_m2(c, it->g);
            GEOSGeometry *made = GEOSMakeValid_r(GH, it->g);
            /* what MakeValid left, for the report when nothing polygonal is left */
            char *left = made ? GEOSGeomType_r(GH, made) : NULL;
            bool left_empty = made && GEOSisEmpty_r(GH, made) == 1;
            GEOSGeometry *fixed = made ? polygonal(c, made) : NULL;
            if (fixed && !GEOSisEmpty_r(GH, fixed)) {
                GEOSGeom_destroy_r(GH, it->g);
                it->g = fixed;
                store_geometry(it);
                g_mutex_lock(&c->lock);
                c->rep->repaired++;
                g_mutex_unlock(&c->lock);
                char w[512];
                layers_say(c, LAYERS_MSG_WARN,
                           "%s: repaired: %s at %.7f %.7f (area %.1f m² before, %.1f m² after)",
                           layers_where(c, it, w, sizeof w), reason ? reason : "invalid", x, y,
                           before, layers_area_m2(c, it->g));
            } else {
                if (fixed)
                    GEOSGeom_destroy_r(GH, fixed);
                char what[160];
                if (!made)
                    snprintf(what, sizeof what, "repair failed");
                else if (left_empty || !left)
                    snprintf(what, sizeof what, "repair left no area (nothing at all)");
                else
                    snprintf(what, sizeof what, "repair left no area (only a %s)", left);
                if (c->o->skip_unrepairable)
                    skip(c, it, made ? LAYERS_SKIP_NO_AREA : LAYERS_SKIP_REPAIR_FAILED,
                         "invalid geometry: %s at %.7f %.7f, and %s", reason ? reason : "?", x, y,
                         what);
                else
                    layers_problem(c, it, false,
                                   "invalid geometry: %s at %.7f %.7f, and %s: "
                                   "--skip-unrepairable leaves such features out",
                                   reason ? reason : "?", x, y, what);
                GEOSGeom_destroy_r(GH, it->g);
                it->g = NULL;
            }
            if (left)
                GEOSFree_r(GH, left);
        } else {
            layers_problem(c, it, false, "invalid geometry: %s at %.7f %.7f (--repair fixes it)",
                           reason ? reason : "?", x, y);
            GEOSGeom_destroy_r(GH, it->g);
            it->g = NULL;
        }
    }
    if (reason)
        GEOSFree_r(GH, reason);
    if (loc)
        GEOSGeom_destroy_r(GH, loc);
    if (it->g) {
        it->area_m2 = layers_area_m2(c, it->g);
        it->pg = GEOSPrepare_r(GH, it->g);
    }
}

void layers_check_duplicates(ctx *c)
{
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < c->n; i++) {
        item *it = c->items[i];
        gpointer prev = g_hash_table_lookup(seen, it->fid);
        if (prev)
            layers_problem(c, it, false, "duplicate id %s (also feature #%ld)", it->fid,
                           c->items[GPOINTER_TO_SIZE(prev) - 1]->k);
        else
            g_hash_table_insert(seen, it->fid, GSIZE_TO_POINTER(i + 1));
    }
    g_hash_table_destroy(seen);
}

void layers_collect(void *item_, void *ud)
{
    query_hits *h = ud;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = (size_t)(uintptr_t)item_ - 1;
}

double layers_tolerance(ctx *c)
{
    return c->o->tolerance_m2 > 0 ? c->o->tolerance_m2 : 1.0;
}

static void check_overlaps(ctx *c)
{
    GEOSSTRtree *tree = GEOSSTRtree_create_r(GH, 10);
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i]->g)
            GEOSSTRtree_insert_r(GH, tree, c->items[i]->g, (void *)(uintptr_t)(i + 1));
    query_hits h = {0};
    for (size_t i = 0; i < c->n; i++) {
        item *a = c->items[i];
        if (!a->g)
            continue;
        h.n = 0;
        GEOSSTRtree_query_r(GH, tree, a->g, layers_collect, &h);
        for (size_t q = 0; q < h.n; q++) {
            size_t j = h.v[q];
            if (j <= i)
                continue;
            item *b = c->items[j];
            if (GEOSPreparedIntersects_r(GH, a->pg, b->g) != 1)
                continue;
            GEOSGeometry *x = GEOSIntersection_r(GH, a->g, b->g);
            double ar = x ? layers_area_m2(c, x) : 0;
            if (ar > layers_tolerance(c)) {
                double px, py;
                point_of(c, x, &px, &py);
                layers_problem(c, a, true, "overlaps its sibling %s by %.1f m² near %.7f %.7f",
                               b->fid, ar, px, py);
            }
            if (x)
                GEOSGeom_destroy_r(GH, x);
        }
    }
    free(h.v);
    GEOSSTRtree_destroy_r(GH, tree);
}

double layers_outside_m2(ctx *c, const item *it, size_t pi)
{
    if (GEOSPreparedContains_r(GH, c->par.pg[pi], it->g) == 1)
        return 0;
    GEOSGeometry *d = GEOSDifference_r(GH, it->g, c->par.g[pi]);
    double a = d ? layers_area_m2(c, d) : 0;
    if (d)
        GEOSGeom_destroy_r(GH, d);
    return a;
}

void layers_check_outside(ctx *c, const item *it, size_t pi, double out)
{
    if (out > layers_tolerance(c))
        layers_problem(c, it, true, "partly outside its parent %s %s: %.1f m² (%.4g%%) outside",
                       level_name(level_parent(c->level)), c->par.fid[pi], out,
                       it->area_m2 > 0 ? 100.0 * out / it->area_m2 : 0.0);
}

static void check_gaps(ctx *c)
{
    const char *plname = level_name(level_parent(c->level));
    for (size_t pi = 0; pi < c->par.n; pi++) {
        GPtrArray *kids = g_ptr_array_new();
        for (size_t i = 0; i < c->n; i++)
            if (c->items[i]->parent == (int)pi && c->items[i]->g)
                g_ptr_array_add(kids, GEOSGeom_clone_r(GH, c->items[i]->g));
        GEOSGeometry *u = NULL;
        if (kids->len) {
            GEOSGeometry *coll = GEOSGeom_createCollection_r(
                GH, GEOS_GEOMETRYCOLLECTION, (GEOSGeometry **)kids->pdata, kids->len);
            u = GEOSUnaryUnion_r(GH, coll);
            GEOSGeom_destroy_r(GH, coll);
        }
        g_ptr_array_free(kids, TRUE);
        GEOSGeometry *gap =
            u ? GEOSDifference_r(GH, c->par.g[pi], u) : GEOSGeom_clone_r(GH, c->par.g[pi]);
        if (u)
            GEOSGeom_destroy_r(GH, u);
        if (!gap)
            continue;
        int np = GEOSGetNumGeometries_r(GH, gap);
        for (int k = 0; k < np; k++) {
            const GEOSGeometry *part = GEOSGetGeometryN_r(GH, gap, k);
            double a = layers_area_m2(c, part);
            if (a <= layers_tolerance(c))
                continue;
            double x, y;
            point_of(c, part, &x, &y);
            layers_msg_kind kind = c->o->topology_warn ? LAYERS_MSG_WARN : LAYERS_MSG_ERROR;
            layers_say(c, kind,
                       "%s: gap inside parent %s %s: %.1f m² not covered by any %s, near %.7f %.7f",
                       c->file, plname, c->par.fid[pi], a, level_name(c->level), x, y);
        }
        GEOSGeom_destroy_r(GH, gap);
    }
}

/* The per-feature checker: geometry validity, then the parent, for each
 * feature as the reader hands it over. The context itself ends the feed. */
gpointer layers_check_feed(gpointer ud)
{
    ctx *c = ud;
    query_hits h = {0};
    for (;;) {
        void *p = g_async_queue_pop(c->feed);
        if (p == c)
            break;
        item *it = p;
        check_geometry(c, it);
        if (c->have_parents)
            layers_assign_parent(c, it, &h);
    }
    free(h.v);
    layers_geos_release();
    return NULL;
}

void layers_check_siblings(ctx *c)
{
    check_overlaps(c);
    if (c->have_parents && level_tiles_parent(c->level))
        check_gaps(c);
}

gpointer layers_check_siblings_thread(gpointer ud)
{
    layers_check_siblings(ud);
    layers_geos_release();
    return NULL;
}

/* ---- parents ---- */

typedef struct load_ctx {
    ctx *c;
    GEOSWKBReader *rd;
} load_ctx;

static int load_parent(void *ud, const store_feature *f)
{
    load_ctx *l = ud;
    parent_set *p = &l->c->par;
    GEOSGeometry *g = GEOSWKBReader_read_r(GH, l->rd, f->wkb, f->wkb_len);
    if (!g)
        return 0;
    if (p->n == p->cap) { /* doubling: units have 21,500 buildings as parents */
        p->cap = p->cap ? 2 * p->cap : 64;
        p->fid = realloc(p->fid, p->cap * sizeof *p->fid);
        p->code = realloc(p->code, p->cap * sizeof *p->code);
        p->ancestors = realloc(p->ancestors, p->cap * sizeof *p->ancestors);
        p->g = realloc(p->g, p->cap * sizeof *p->g);
        p->pg = realloc(p->pg, p->cap * sizeof *p->pg);
    }
    size_t i = p->n++;
    p->fid[i] = strdup(f->fid);
    p->code[i] = strdup(f->code ? f->code : f->fid);
    p->ancestors[i] = strdup(f->ancestors_json ? f->ancestors_json : "[]");
    p->g[i] = g;
    p->pg[i] = GEOSPrepare_r(GH, g);
    return 0;
}

/* 1: parents loaded; 0: no parent level in the store; <0 error */
int layers_load_parents(ctx *c, store *s, gc_level pl, gc_err *err)
{
    store_layer L;
    if (store_layer_for_level(s, level_name(pl), &L, NULL))
        return 0;
    free(L.fields_json);
    snprintf(c->par.layer, sizeof c->par.layer, "%s", L.name);
    load_ctx lc = {c, GEOSWKBReader_create_r(GH)};
    store_query q = {.layer = L.name, .want_wkb = true};
    int rc = store_features_query(s, &q, NULL, load_parent, &lc, err);
    GEOSWKBReader_destroy_r(GH, lc.rd);
    if (rc)
        return rc;
    parent_set *p = &c->par;
    p->by_code = g_hash_table_new(g_str_hash, g_str_equal);
    p->tree = GEOSSTRtree_create_r(GH, 10);
    for (size_t i = 0; i < p->n; i++) {
        g_hash_table_insert(p->by_code, p->code[i], GSIZE_TO_POINTER(i + 1));
        if (!g_hash_table_contains(p->by_code, p->fid[i]))
            g_hash_table_insert(p->by_code, p->fid[i], GSIZE_TO_POINTER(i + 1));
        GEOSSTRtree_insert_r(GH, p->tree, p->g[i], (void *)(uintptr_t)(i + 1));
    }
    return 1;
}

void layers_assign_parent(ctx *c, item *it, query_hits *hits)
{
    const char *plname = level_name(level_parent(c->level));
    bool required = c->level != LEVEL_DEDICATED;
    query_hits h = *hits;
    do {
        if (!it->g)
            break;
        long best = -1;
        double out = 0;
        if (c->o->parent_field) {
            gpointer v =
                it->parent_code ? g_hash_table_lookup(c->par.by_code, it->parent_code) : NULL;
            if (!v) {
                layers_problem(c, it, false, "missing parent: %s '%s' is not in layer %s", plname,
                               it->parent_code ? it->parent_code : "(empty)", c->par.layer);
                break;
            }
            best = (long)GPOINTER_TO_SIZE(v) - 1;
            out = layers_outside_m2(c, it, (size_t)best);
        } else {
            h.n = 0;
            GEOSSTRtree_query_r(GH, c->par.tree, it->g, layers_collect, &h);
            double best_area = 0;
            for (size_t q = 0; q < h.n && best < 0; q++)
                if (GEOSPreparedContains_r(GH, c->par.pg[h.v[q]], it->g) == 1)
                    best = (long)h.v[q];
            if (best < 0) {
                for (size_t q = 0; q < h.n; q++) {
                    size_t pi = h.v[q];
                    if (GEOSPreparedIntersects_r(GH, c->par.pg[pi], it->g) != 1)
                        continue;
                    GEOSGeometry *x = GEOSIntersection_r(GH, it->g, c->par.g[pi]);
                    double a = x ? layers_area_m2(c, x) : 0;
                    if (x)
                        GEOSGeom_destroy_r(GH, x);
                    if (a > best_area) {
                        best_area = a;
                        best = (long)pi;
                    }
                }
                if (best >= 0)
                    out = fmax(0, it->area_m2 - best_area);
            }
            if (best < 0) {
                if (required)
                    layers_problem(c, it, false, "missing parent: it overlaps no %s of layer %s",
                                   plname, c->par.layer);
                else {
                    char w[512];
                    layers_say(c, LAYERS_MSG_WARN, "%s: lies in no %s; stored without a parent",
                               layers_where(c, it, w, sizeof w), plname);
                }
                break;
            }
        }
        it->parent = (int)best;
        layers_check_outside(c, it, (size_t)best, out);
        /* ancestors: the parent's, then the parent */
        json_t *anc = json_loads(c->par.ancestors[best], 0, NULL);
        if (!json_is_array(anc)) {
            json_decref(anc);
            anc = json_array();
        }
        json_array_append_new(anc, json_pack("{s:s,s:s}", "level", plname, "id", c->par.fid[best]));
        it->ancestors = json_dumps(anc, JSON_COMPACT);
        json_decref(anc);
    } while (0);
    *hits = h;
}

/* ---- writing ---- */
