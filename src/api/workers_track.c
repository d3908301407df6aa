/* workers_track: see workers_track.h. Fixes and grid shapes are read on the
 * loop (the loop's store); the geometry (GEOS buffers, a few ms a grid) runs
 * on a worker thread, and the answer goes out from the loop. */
#include "workers_track.h"

#include <gio/gio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/crs.h"
#include "gridcc/parse.h"
#include "gridcc/track.h"

#define MAX_RANGE_S (31 * 86400)
#define TIME_MIN 946684800LL    /* 2000-01-01: no fix is older */
#define TIME_MAX 4102444800LL   /* 2100-01-01 */

static bool in_range(int64_t t) { return t >= TIME_MIN && t <= TIME_MAX; }
#define MAX_FIXES 1000000

typedef struct fixes {
    GArray *pts;           /* track_pt */
    GPtrArray *grids;      /* const char* (in strs) or NULL, a fix */
    GStringChunk *strs;
} fixes;

static int add_fix(void *ud, const store_fix *f)
{
    fixes *x = ud;
    track_pt p = {f->lon, f->lat, f->t};
    g_array_append_val(x->pts, p);
    g_ptr_array_add(x->grids, f->grid_id ? g_string_chunk_insert_const(x->strs, f->grid_id) : NULL);
    return x->pts->len >= MAX_FIXES;
}

static void fixes_init(fixes *x)
{
    x->pts = g_array_new(FALSE, FALSE, sizeof(track_pt));
    x->grids = g_ptr_array_new();
    x->strs = g_string_chunk_new(1024);
}

static void fixes_clear(fixes *x)
{
    g_array_free(x->pts, TRUE);
    g_ptr_array_free(x->grids, TRUE);
    g_string_chunk_free(x->strs);
}

static char *iso(int64_t s)
{
    GDateTime *d = g_date_time_new_from_unix_local(s);
    char *t = g_date_time_format_iso8601(d);
    g_date_time_unref(d);
    return t;
}

/* Local midnight of today, in Unix seconds. */
static int64_t today(void)
{
    GDateTime *now = g_date_time_new_now_local();
    GDateTime *d = g_date_time_new_local(g_date_time_get_year(now), g_date_time_get_month(now),
                                         g_date_time_get_day_of_month(now), 0, 0, 0);
    int64_t s = g_date_time_to_unix(d);
    g_date_time_unref(d);
    g_date_time_unref(now);
    return s;
}

void workers_track_reply(api_env *e, http_req *r, const store_user *u)
{
    const char *qf = http_query(r, "from"), *qt = http_query(r, "to"), *qz = http_query(r, "zoom");
    int64_t from = today(), to = g_get_real_time() / 1000000 + 1;
    if (qf && (!gc_time_parse(qf, &from) || !in_range(from))) {
        http_reply_error(r, 400, "invalid", "from", "from must be a date or a time (ISO 8601, Unix seconds)");
        return;
    }
    if (qt && (!gc_time_parse(qt, &to) || !in_range(to))) {
        http_reply_error(r, 400, "invalid", "to", "to must be a date or a time (ISO 8601, Unix seconds)");
        return;
    }
    if (to <= from) {
        http_reply_error(r, 400, "invalid", "to", "to must be after from");
        return;
    }
    if (to - from > MAX_RANGE_S) {
        http_reply_error(r, 400, "invalid", "to", "a track spans at most 31 days");
        return;
    }
    int zoom = -1;
    if (qz) {
        int64_t z;
        if (gc_parse_int(qz, "zoom", 0, 22, &z, NULL)) {
            http_reply_error(r, 400, "invalid", "zoom", "zoom must be a whole number from 0 to 22");
            return;
        }
        zoom = (int)z;
    }
    fixes x;
    fixes_init(&x);
    gc_err err = {0};
    if (store_fixes_range(e->store, u->id, from * 1000, to * 1000, add_fix, &x, &err)) {
        http_reply_err(r, &err);
        fixes_clear(&x);
        return;
    }
    const track_pt *p = (const track_pt *)(void *)x.pts->data;
    size_t n = x.pts->len, nin = 0, nout = 0;
    json_t *geom = n ? track_simplify(p, n, zoom, &nin, &nout, &err) : json_null();
    json_t *stops = track_stops(p, n, 0, 0, &err);
    json_t *visits = track_grids_visited(p, (const char *const *)x.grids->pdata, n, &err);
    if (!geom || !stops || !visits) {
        json_decref(geom);
        json_decref(stops);
        json_decref(visits);
        fixes_clear(&x);
        http_reply_err(r, &err);
        return;
    }
    double dist = 0;
    for (size_t i = 1; i < n; i++)
        dist += crs_distance_m(p[i - 1].lon, p[i - 1].lat, p[i].lon, p[i].lat);
    char *f = iso(from), *t = iso(to);
    json_t *props = json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:f,s:o,s:o}", "user_id", (json_int_t)u->id,
                              "worker", u->name, "from", f, "to", t, "fixes", (json_int_t)n,
                              "vertices", (json_int_t)nout, "distance_m", round(dist), "stops",
                              stops, "grids", visits);
    g_free(f);
    g_free(t);
    json_object_set_new(props, "zoom", zoom >= 0 ? json_integer(zoom) : json_null());
    if (n == MAX_FIXES)
        json_object_set_new(props, "truncated", json_true());
    if (n) {
        json_object_set_new(props, "first_ms", json_integer(p[0].t));
        json_object_set_new(props, "last_ms", json_integer(p[n - 1].t));
    }
    fixes_clear(&x);
    http_reply_json(r, 200, json_pack("{s:s,s:I,s:o,s:o}", "type", "Feature", "id",
                                      (json_int_t)u->id, "geometry", geom, "properties", props));
}

/* ---- coverage ---- */

typedef struct shape {
    unsigned char *wkb;
    size_t len;
} shape;

typedef struct cov_grid {
    char *id, *name;
    shape grid;
    GArray *buildings;     /* shape */
    size_t fixes_in;
    track_cov cov;
    int rc;
    char why[1200];
} cov_grid;

typedef struct cov_job {
    api_env *e;
    http_req *r;
    store_user u;
    fixes x;
    GPtrArray *grids;      /* cov_grid* */
    track_opts opts;
    bool buildings;
    char date[16];
} cov_job;

static int take_shape(void *ud, const store_feature *f)
{
    GArray *out = ud;
    if (!f->wkb)
        return 0;
    shape s = {g_memdup2(f->wkb, f->wkb_len), f->wkb_len};
    g_array_append_val(out, s);
    return 0;
}

static void cov_grid_free(gpointer p)
{
    cov_grid *g = p;
    g_free(g->id);
    g_free(g->name);
    g_free(g->grid.wkb);
    for (guint i = 0; g->buildings && i < g->buildings->len; i++)
        g_free(g_array_index(g->buildings, shape, i).wkb);
    if (g->buildings)
        g_array_free(g->buildings, TRUE);
    g_free(g);
}

static int take_name(void *ud, const store_feature *f)
{
    cov_grid *g = ud;
    g->name = g_strdup(f->name ? f->name : "");
    if (f->wkb) {
        g->grid.wkb = g_memdup2(f->wkb, f->wkb_len);
        g->grid.len = f->wkb_len;
    }
    return 1;
}

static void cov_thread(void *data)
{
    cov_job *j = data;
    const track_pt *p = (const track_pt *)(void *)j->x.pts->data;
    for (guint i = 0; i < j->grids->len; i++) {
        cov_grid *g = g_ptr_array_index(j->grids, i);
        gc_err err = {0};
        if (!j->x.pts->len) {
            g->cov.total_m2 = 0;
            continue;
        }
        if (j->buildings) {
            GArray *b = g->buildings;
            const unsigned char **w = g_new0(const unsigned char *, b->len + 1);
            size_t *l = g_new0(size_t, b->len + 1);
            for (guint k = 0; k < b->len; k++) {
                w[k] = g_array_index(b, shape, k).wkb;
                l[k] = g_array_index(b, shape, k).len;
            }
            g->rc = track_coverage_buildings(p, j->x.pts->len, w, l, b->len, &j->opts, &g->cov, &err);
            g_free(w);
            g_free(l);
        } else {
            g->rc = track_coverage(p, j->x.pts->len, g->grid.wkb, g->grid.len, &j->opts, &g->cov, &err);
        }
        if (g->rc)
            snprintf(g->why, sizeof g->why, "%s%s%s", err.field, err.field[0] ? ": " : "", err.msg);
    }
}

static void cov_done(void *data)
{
    cov_job *j = data;
    json_t *arr = json_array();
    for (guint i = 0; i < j->grids->len; i++) {
        cov_grid *g = g_ptr_array_index(j->grids, i);
        json_t *o = json_pack("{s:s,s:s,s:I}", "grid_id", g->id, "name", g->name ? g->name : "",
                              "fixes_in_grid", (json_int_t)g->fixes_in);
        if (g->rc) {
            json_object_set_new(o, "error", json_string(g->why));
        } else {
            json_object_set_new(o, "ratio", json_real(round(g->cov.ratio * 10000) / 10000));
            json_object_set_new(o, "covered_m2", json_real(round(g->cov.covered_m2)));
            json_object_set_new(o, "total_m2", json_real(round(g->cov.total_m2)));
            if (j->buildings) {
                json_object_set_new(o, "buildings", json_integer(g->cov.buildings));
                json_object_set_new(o, "buildings_touched", json_integer(g->cov.buildings_touched));
            }
        }
        json_array_append_new(arr, o);
    }
    http_reply_json(j->r, 200,
                    json_pack("{s:I,s:s,s:s,s:f,s:s,s:I,s:o}", "user_id", (json_int_t)j->u.id,
                              "worker", j->u.name, "date", j->date, "distance_m",
                              j->opts.distance_m, "basis", j->buildings ? "buildings" : "area",
                              "fixes", (json_int_t)j->x.pts->len, "grids", arr));
    http_complete(j->r);
    fixes_clear(&j->x);
    g_ptr_array_free(j->grids, TRUE);
    g_free(j);
}

void workers_coverage_reply(api_env *e, http_req *r, const store_user *u)
{
    const char *qd = http_query(r, "date"), *qdist = http_query(r, "distance"),
               *qb = http_query(r, "basis"), *qg = http_query(r, "grid");
    int64_t day = today();
    if (qd && (!gc_time_parse(qd, &day) || !in_range(day))) {
        http_reply_error(r, 400, "invalid", "date", "date must be a date, e.g. 2026-11-24");
        return;
    }
    double dist = TRACK_DISTANCE_M;
    if (qdist) {
        if (gc_parse_double(qdist, "distance", 1, 500, &dist, NULL)) {
            http_reply_error(r, 400, "invalid", "distance", "distance is metres, 1 to 500");
            return;
        }
    }
    if (qb && strcmp(qb, "area") && strcmp(qb, "buildings")) {
        http_reply_error(r, 400, "invalid", "basis", "basis is area or buildings");
        return;
    }
    store *s = e->store;
    store_layer grid_layer, bld_layer;
    gc_err err = {0};
    if (store_layer_for_level(s, "grid", &grid_layer, &err)) {
        http_reply_error(r, 409, "conflict", "grid", "no grid layer is loaded");
        return;
    }
    free(grid_layer.fields_json);
    bool buildings = qb && !strcmp(qb, "buildings");
    if (buildings) {
        if (store_layer_for_level(s, "building", &bld_layer, &err)) {
            http_reply_error(r, 409, "conflict", "basis", "no building layer is loaded");
            return;
        }
        free(bld_layer.fields_json);
    }
    cov_job *j = g_new0(cov_job, 1);
    j->e = e;
    j->r = r;
    j->u = *u;
    j->buildings = buildings;
    j->opts.distance_m = dist;
    {
        GDateTime *d = g_date_time_new_from_unix_local(day);
        GDateTime *d0 = g_date_time_new_local(g_date_time_get_year(d), g_date_time_get_month(d),
                                              g_date_time_get_day_of_month(d), 0, 0, 0);
        day = g_date_time_to_unix(d0);
        char *ds = g_date_time_format(d0, "%Y-%m-%d");
        snprintf(j->date, sizeof j->date, "%s", ds);
        g_free(ds);
        g_date_time_unref(d0);
        g_date_time_unref(d);
    }
    fixes_init(&j->x);
    j->grids = g_ptr_array_new_with_free_func(cov_grid_free);
    if (store_fixes_range(s, u->id, day * 1000, (day + 86400) * 1000, add_fix, &j->x, &err))
        goto fail;
    /* which grids: the one asked for, else the assigned ones, else those visited */
    json_t *ids = NULL;
    if (qg) {
        ids = json_pack("[s]", qg);
    } else if (store_worker_grids(s, u->id, &ids, &err)) {
        goto fail;
    }
    if (!json_array_size(ids)) {
        json_decref(ids);
        ids = json_array();
        for (guint i = 0; i < j->x.grids->len; i++) {
            const char *g = g_ptr_array_index(j->x.grids, i);
            bool have = !g;
            for (size_t k = 0; !have && k < json_array_size(ids); k++)
                have = !strcmp(json_string_value(json_array_get(ids, k)), g);
            if (!have)
                json_array_append_new(ids, json_string(g));
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        cov_grid *g = g_new0(cov_grid, 1);
        g->id = g_strdup(json_string_value(v));
        g_ptr_array_add(j->grids, g);
        store_query q = {.layer = grid_layer.name, .fid = g->id, .limit = 1, .want_wkb = true};
        if (store_features_query(s, &q, NULL, take_name, g, &err))
            break;
        if (!g->grid.wkb) {
            json_decref(ids);
            fixes_clear(&j->x);
            g_ptr_array_free(j->grids, TRUE);
            http_reply_error(r, 404, "not_found", "grid", "no grid %s", json_string_value(v));
            g_free(j);
            return;
        }
        for (guint k = 0; k < j->x.grids->len; k++)
            g->fixes_in += !g_strcmp0(g_ptr_array_index(j->x.grids, k), g->id);
        if (buildings) {
            g->buildings = g_array_new(FALSE, FALSE, sizeof(shape));
            const char *keys[] = {"parent"}, *vals[] = {g->id};
            store_query bq = {.layer = bld_layer.name, .nprops = 1, .prop_keys = keys,
                              .prop_vals = vals, .want_wkb = true};
            if (store_features_query(s, &bq, NULL, take_shape, g->buildings, &err))
                break;
        }
    }
    json_decref(ids);
    if (err.code)
        goto fail;
    api_offload(e, r, cov_thread, cov_done, j);
    return;
fail:
    fixes_clear(&j->x);
    g_ptr_array_free(j->grids, TRUE);
    g_free(j);
    http_reply_err(r, &err);
}
