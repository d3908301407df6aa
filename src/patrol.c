/* patrol: see patrol.h. */
#include "gridcc/patrol.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/log.h"

#define PATROL_CHECK_S 10

enum { A_OUTSIDE, A_SILENT, A_SOS, A_N };
static const char *alert_kind[A_N] = {"outside_grid", "silent", "sos"};

/* What the patrol rules remember of a worker. */
typedef struct worker {
    int64_t user_id;
    char name[128];
    char **grids;            /* assigned grid ids, NULL-terminated; NULL: none */
    int64_t last_t, last_rx; /* newest fix: device time, arrival (ms) */
    double lon, lat;
    char grid[64];
    int64_t outside_since; /* device time of the first fix outside, 0: inside */
    int64_t alert[A_N];    /* open alert ids */
} worker;

struct patrol {
    store *s; /* the loop's */
    live *live;
    patrol_opts o;
    GHashTable *workers; /* user id → worker */
    guint timer;
};

static void publish(patrol *t, struct worker *w, const store_fix *f);

static worker *worker_get(patrol *t, int64_t uid)
{
    worker *w = g_hash_table_lookup(t->workers, &uid);
    if (w)
        return w;
    w = g_new0(worker, 1);
    w->user_id = uid;
    store_user u;
    gc_err err = {0};
    if (!store_user_by_id(t->s, uid, &u, &err))
        snprintf(w->name, sizeof w->name, "%s", u.name);
    g_hash_table_insert(t->workers, &w->user_id, w);
    return w;
}

static void worker_free(gpointer p)
{
    worker *w = p;
    g_strfreev(w->grids);
    g_free(w);
}

static json_t *point(double lon, double lat)
{
    if (!isfinite(lon) || !isfinite(lat))
        return json_null();
    return json_pack("{s:s,s:[f,f]}", "type", "Point", "coordinates", lon, lat);
}

static char *iso_ms(int64_t ms)
{
    GDateTime *d = g_date_time_new_from_unix_utc(ms / 1000);
    char *s = g_date_time_format(d, "%Y-%m-%dT%H:%M:%S");
    char *out = g_strdup_printf("%s.%03dZ", s, (int)(ms % 1000));
    g_free(s);
    g_date_time_unref(d);
    return out;
}

/* Opens (at > 0, ended 0) or closes an alert: the row and its change, in one
 * transaction on the loop's store. */
static void alert_change(patrol *t, worker *w, int kind, int64_t at, bool open, json_t *extra)
{
    store *s = t->s;
    gc_err err = {0};
    int64_t id = w->alert[kind];
    if (store_begin(s, &err))
        goto fail;
    int rc = open ? store_alert_open(s, alert_kind[kind], w->user_id, at, w->lon, w->lat, extra,
                                     &id, &err)
                  : store_alert_close(s, id, at, &err);
    if (!rc) {
        char *ts = iso_ms(at);
        json_t *props =
            json_pack("{s:I,s:s,s:s,s:I,s:s,s:s}", "id", (json_int_t)id, "kind", alert_kind[kind],
                      "state", open ? "open" : "closed", "user_id", (json_int_t)w->user_id,
                      "worker", w->name, open ? "started_at" : "ended_at", ts);
        g_free(ts);
        if (w->grid[0])
            json_object_set_new(props, "grid_id", json_string(w->grid));
        if (extra)
            json_object_update(props, extra);
        json_t *f = json_pack("{s:s,s:I,s:o,s:o}", "type", "Feature", "id", (json_int_t)id,
                              "geometry", point(w->lon, w->lat), "properties", props);
        char sid[32];
        snprintf(sid, sizeof sid, "%lld", (long long)id);
        rc = store_change_append(s, "alerts", sid, f, &err);
        json_decref(f);
    }
    if (rc || store_commit(s, &err)) {
        store_rollback(s);
        goto fail;
    }
    w->alert[kind] = open ? id : 0;
    log_info("patrol", "alert %s %s id=%lld worker=%s", alert_kind[kind],
             open ? "opened" : "closed", (long long)id, w->name);
    return;
fail:
    log_error("patrol", "alert %s for worker %s not stored: %s", alert_kind[kind], w->name,
              err.msg);
}

static bool assigned(const worker *w, const char *grid)
{
    if (!grid)
        return false;
    for (char **g = w->grids; g && *g; g++)
        if (!strcmp(*g, grid))
            return true;
    return false;
}

/* A durable fix, newer than any before it, meets the rules. */
static void rules(patrol *t, worker *w, const store_fix *f)
{
    w->last_t = f->t;
    w->last_rx = f->received_at;
    w->lon = f->lon;
    w->lat = f->lat;
    snprintf(w->grid, sizeof w->grid, "%s", f->grid_id ? f->grid_id : "");
    if (w->alert[A_SILENT])
        alert_change(t, w, A_SILENT, f->received_at, false, NULL);
    if (f->sos && !w->alert[A_SOS]) {
        json_t *x = json_pack("{s:s}", "device_id", f->device_id ? f->device_id : "");
        alert_change(t, w, A_SOS, f->t, true, x);
        json_decref(x);
    }
    if (!w->grids)
        return;
    if (assigned(w, f->grid_id)) {
        w->outside_since = 0;
        if (w->alert[A_OUTSIDE])
            alert_change(t, w, A_OUTSIDE, f->t, false, NULL);
        return;
    }
    if (!w->outside_since)
        w->outside_since = f->t;
    if (!w->alert[A_OUTSIDE] && f->t - w->outside_since >= (int64_t)(t->o.outside_min * 60000)) {
        json_t *x = json_pack("{s:I,s:O}", "outside_since_ms", (json_int_t)w->outside_since,
                              "assigned", json_null());
        json_t *g = json_array();
        for (char **p = w->grids; *p; p++)
            json_array_append_new(g, json_string(*p));
        json_object_set_new(x, "assigned", g);
        alert_change(t, w, A_OUTSIDE, f->t, true, x);
        json_decref(x);
    }
}

static gboolean on_patrol(gpointer ud)
{
    patrol *t = ud;
    int64_t now = g_get_real_time() / 1000, limit = (int64_t)(t->o.silent_min * 60000);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t->workers);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        worker *w = v;
        if (w->last_rx && !w->alert[A_SILENT] && now - w->last_rx > limit) {
            json_t *x = json_pack("{s:I}", "last_fix_ms", (json_int_t)w->last_t);
            alert_change(t, w, A_SILENT, now, true, x);
            json_decref(x);
        }
    }
    return G_SOURCE_CONTINUE;
}

/* One line a minute about what arrived, rather than a line a fix. */
void patrol_grids_changed(patrol *t, int64_t user_id, json_t *grids)
{
    worker *w = worker_get(t, user_id);
    g_strfreev(w->grids);
    w->grids = NULL;
    w->outside_since = 0;
    if (json_array_size(grids)) {
        w->grids = g_new0(char *, json_array_size(grids) + 1);
        size_t i;
        json_t *g;
        json_array_foreach(grids, i, g) w->grids[i] = g_strdup(json_string_value(g));
    }
    if (w->alert[A_OUTSIDE] && (!w->grids || assigned(w, w->grid)))
        alert_change(t, w, A_OUTSIDE, g_get_real_time() / 1000, false, NULL);
}

static int load_latest(void *ud, const store_fix *f)
{
    patrol *t = ud;
    worker *w = worker_get(t, f->user_id);
    w->last_t = f->t;
    w->last_rx = f->received_at;
    w->lon = f->lon;
    w->lat = f->lat;
    snprintf(w->grid, sizeof w->grid, "%s", f->grid_id ? f->grid_id : "");
    publish(t, w, f); /* the live map starts with everyone's newest fix */
    return 0;
}

static void load(patrol *t)
{
    store *s = t->s;
    gc_err err = {0};
    if (store_fixes_latest(s, load_latest, t, &err))
        log_error("patrol", "%s", err.msg);
    json_t *all = NULL;
    if (!store_worker_grids(s, 0, &all, &err)) {
        const char *k;
        json_t *v;
        json_object_foreach(all, k, v) patrol_grids_changed(t, g_ascii_strtoll(k, NULL, 10), v);
        json_decref(all);
    }
    json_t *open = NULL;
    if (!store_alerts(s, true, 0, &open, &err)) {
        size_t i;
        json_t *a;
        json_array_foreach(open, i, a)
        {
            const char *kind = json_string_value(json_object_get(a, "kind"));
            worker *w = worker_get(t, json_integer_value(json_object_get(a, "user_id")));
            for (int k = 0; k < A_N; k++)
                if (kind && !strcmp(kind, alert_kind[k]))
                    w->alert[k] = json_integer_value(json_object_get(a, "id"));
        }
        json_decref(open);
    }
}

static void publish(patrol *t, struct worker *w, const store_fix *f)
{
    /* Every operator's screen gets this for every fix (2,000/s at a
     * district's scale), so it carries no field twice: the user id is the
     * feature's id, the ISO time and the parent units are the client's to
     * derive (from t, and from grid_id through the layers). */
    json_t *p = json_pack("{s:s,s:s,s:I,s:b,s:s}", "worker", w->name, "device_id",
                          f->device_id ? f->device_id : "", "t", (json_int_t)f->t, "sos", f->sos,
                          "source", f->source);
    const double vals[] = {f->speed, f->bearing, f->altitude, f->accuracy, f->batt};
    static const char *names[] = {"speed", "bearing", "altitude", "accuracy", "batt"};
    for (size_t i = 0; i < G_N_ELEMENTS(vals); i++)
        if (isfinite(vals[i]))
            json_object_set_new(p, names[i], json_real(vals[i]));
    const char *ids[3] = {f->grid_id, f->community_id, f->street_id};
    if (f->grid_id)
        json_object_set_new(p, "grid_id", json_string(f->grid_id));
    json_t *feat = json_pack("{s:s,s:I,s:o,s:o}", "type", "Feature", "id", (json_int_t)f->user_id,
                             "geometry", point(f->lon, f->lat), "properties", p);
    live_position(t->live, f->user_id, f->t, f->lon, f->lat, ids, feat);
}

void patrol_fix(patrol *t, const store_fix *f)
{
    worker *w = worker_get(t, f->user_id);
    if (f->t <= w->last_t)
        return; /* late: stored where it belongs in the track, and nothing more */
    rules(t, w, f);
    publish(t, w, f);
}

size_t patrol_workers(const patrol *t)
{
    return g_hash_table_size(t->workers);
}

patrol *patrol_new(store *s, live *l, const patrol_opts *o)
{
    patrol *t = g_new0(patrol, 1);
    t->s = s;
    t->live = l;
    t->o = o ? *o : (patrol_opts){0};
    if (t->o.outside_min <= 0)
        t->o.outside_min = 10;
    if (t->o.silent_min <= 0)
        t->o.silent_min = 15;
    t->workers = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, worker_free);
    load(t);
    /* silence is noticed within a sixth of its limit, and at least every 10 s */
    double every = fmin(PATROL_CHECK_S, t->o.silent_min * 10);
    t->timer = g_timeout_add((guint)(every * 1000), on_patrol, t);
    return t;
}

void patrol_stop(patrol *t)
{
    if (t && t->timer) {
        g_source_remove(t->timer);
        t->timer = 0;
    }
}

void patrol_free(patrol *t)
{
    if (!t)
        return;
    patrol_stop(t);
    g_hash_table_destroy(t->workers);
    g_free(t);
}
