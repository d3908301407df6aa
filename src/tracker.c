/* tracker: see tracker.h. */
#include "gridcc/tracker.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/fixes.h"
#include "gridcc/live.h"
#include "gridcc/log.h"

#define KNOT_MS 0.514444
#define WRITE_MAX 20000          /* fixes in one transaction at most */
#define DEVICE_TTL_US (30 * G_USEC_PER_SEC)
#define UNKNOWN_LOG_US (60 * G_USEC_PER_SEC)
#define PATROL_CHECK_S 10

enum { A_OUTSIDE, A_SILENT, A_SOS, A_N };
static const char *alert_kind[A_N] = {"outside_grid", "silent", "sos"};

typedef struct device {
    int64_t user_id;           /* 0: not registered */
    crs_def crs;
    bool disabled;
    gint64 fetched;
} device;

/* What the patrol rules remember of a worker. */
typedef struct worker {
    int64_t user_id;
    char name[128];
    char **grids;              /* assigned grid ids, NULL-terminated; NULL: none */
    int64_t last_t, last_rx;   /* newest fix: device time, arrival (ms) */
    double lon, lat;
    char grid[64];
    int64_t outside_since;     /* device time of the first fix outside, 0: inside */
    int64_t alert[A_N];        /* open alert ids */
} worker;

/* Fixes from one request, on their way to the disk and back. */
typedef struct job {
    http_req *r;
    GArray *fixes;             /* store_fix; strings in strs */
    GStringChunk *strs;
    bool *fresh;
    int rc;
    char why[1024];
    json_t *rejected;          /* batch: [{index, field, message}] */
    size_t items;
    bool batch;
} job;

struct tracker {
    app *a;
    tracker_opts o;
    http_server *http;
    GHashTable *devices;       /* device id → device */
    GHashTable *unknown_logged;/* device id → gint64 last log */
    GHashTable *workers;       /* user id → worker */
    GAsyncQueue *q;            /* job* to the writer; &stop ends it */
    GThread *writer;
    bool stopping;             /* new fixes are refused (503) */
    store *ws;                 /* the writer's own connection */
    GMainContext *ctx;
    int inflight;              /* jobs queued or written but not yet answered */
    guint patrol, summary;
    uint64_t fixes, dups, batches;
    uint64_t logged_fixes, logged_dups, logged_batches;   /* at the last summary */
};

static job stop_job;

/* ---- parsing ---- */

static const char *kv(GHashTable *m, const char *a, const char *b)
{
    const char *v = g_hash_table_lookup(m, a);
    return v || !b ? v : g_hash_table_lookup(m, b);
}

static int num(const char *s, const char *field, double *out, gc_err *err)
{
    if (!s || !*s)
        return 0;
    char *end;
    double v = g_ascii_strtod(s, &end);
    if (*end || !isfinite(v))
        return gc_fail(err, GC_EINVAL, field, "%s must be a number, not \"%.40s\"", field, s);
    *out = v;
    return 0;
}

static int dev_lookup(tracker *t, const char *id, device **out, gc_err *err);

static const char *keep(job *j, const char *s) { return s ? g_string_chunk_insert_const(j->strs, s) : NULL; }

/* Everything a fix shares once its fields are read: the device, its
 * coordinate system, the checks, the geotag. */
static int finish_fix(tracker *t, job *j, store_fix *f, const char *id, const char *crs_name,
                      const char *ts, const char *source, gc_err *err)
{
    if (!id || !*id)
        return gc_fail(err, GC_EINVAL, "id", "the device id is missing (id or device_id)");
    device *d;
    int rc = dev_lookup(t, id, &d, err);
    if (rc)
        return rc;
    crs_def crs = d->crs;
    if (crs_name && *crs_name && crs_parse(crs_name, &crs, err))
        return GC_EINVAL;
    if (isnan(f->lat) || isnan(f->lon))
        return gc_fail(err, GC_EINVAL, isnan(f->lat) ? "lat" : "lon", "%s is missing",
                       isnan(f->lat) ? "lat" : "lon");
    if (fix_check_position(f->lon, f->lat, err) || fix_to_wgs84(&crs, &f->lon, &f->lat, err))
        return GC_EINVAL;
    int64_t now = g_get_real_time() / 1000;
    if (ts && *ts) {
        if (!fix_time_parse(ts, &f->t))
            return gc_fail(err, GC_EINVAL, "timestamp",
                           "timestamp must be Unix seconds, milliseconds or ISO 8601, not \"%.40s\"", ts);
        if (f->t > now + 10 * 60 * 1000)
            return gc_fail(err, GC_EINVAL, "timestamp",
                           "timestamp is more than 10 minutes in the future (device clock?)");
    } else {
        f->t = now;   /* as Traccar does: a fix without a time is of its arrival */
    }
    f->user_id = d->user_id;
    f->device_id = keep(j, id);
    f->source = source;
    f->received_at = now;
    fix_geotag(app_index(t->a), f);
    f->grid_id = keep(j, f->grid_id);
    f->community_id = keep(j, f->community_id);
    f->street_id = keep(j, f->street_id);
    return 0;
}

/* OsmAnd's key=value fields (query, form, or a flat JSON object). */
static int fix_from_kv(tracker *t, job *j, GHashTable *m, store_fix *f, gc_err *err)
{
    *f = fix_blank();
    f->lon = f->lat = NAN;
    const char *loc = kv(m, "location", NULL);
    if (loc && !kv(m, "lat", NULL)) {   /* location=lat,lon */
        char **p = g_strsplit(loc, ",", 3);
        int rc = g_strv_length(p) == 2 ? num(p[0], "lat", &f->lat, err) || num(p[1], "lon", &f->lon, err)
                                       : gc_fail(err, GC_EINVAL, "location", "location must be lat,lon");
        g_strfreev(p);
        if (rc)
            return GC_EINVAL;
    }
    double speed = NAN;
    if (num(kv(m, "lat", NULL), "lat", &f->lat, err) || num(kv(m, "lon", NULL), "lon", &f->lon, err) ||
        num(kv(m, "speed", NULL), "speed", &speed, err) ||
        num(kv(m, "bearing", "heading"), "bearing", &f->bearing, err) ||
        num(kv(m, "altitude", NULL), "altitude", &f->altitude, err) ||
        num(kv(m, "accuracy", NULL), "accuracy", &f->accuracy, err) ||
        num(kv(m, "batt", NULL), "batt", &f->batt, err))
        return GC_EINVAL;
    if (isfinite(speed))
        f->speed = speed * KNOT_MS;   /* the OsmAnd protocol sends knots */
    const char *alarm = kv(m, "alarm", NULL);
    f->sos = alarm && (!g_ascii_strcasecmp(alarm, "sos") || !strcmp(alarm, "true") || !strcmp(alarm, "1"));
    return finish_fix(t, j, f, kv(m, "id", "deviceid"), kv(m, "crs", NULL),
                      kv(m, "timestamp", NULL), "osmand", err);
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A JSON number field that is present must be a number. */
static int jcheck(json_t *o, const char *k, const char *field, gc_err *err)
{
    json_t *v = json_object_get(o, k);
    if (v && !json_is_null(v) && !json_is_number(v))
        return gc_fail(err, GC_EINVAL, field, "%s must be a number", field);
    return 0;
}

/* Traccar Client's JSON body. */
static int fix_from_traccar(tracker *t, job *j, json_t *o, store_fix *f, gc_err *err)
{
    *f = fix_blank();
    json_t *loc = json_object_get(o, "location");
    json_t *c = json_object_get(loc, "coords");
    if (!json_is_object(loc))
        return gc_fail(err, GC_EINVAL, "location", "location must be an object");
    if (!json_is_object(c))
        return gc_fail(err, GC_EINVAL, "location.coords", "location.coords must be an object");
    static const char *keys[][2] = {{"latitude", "location.coords.latitude"},
                                    {"longitude", "location.coords.longitude"},
                                    {"speed", "location.coords.speed"},
                                    {"heading", "location.coords.heading"},
                                    {"altitude", "location.coords.altitude"},
                                    {"accuracy", "location.coords.accuracy"}};
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (jcheck(c, keys[i][0], keys[i][1], err))
            return GC_EINVAL;
    f->lat = jnum(c, "latitude");
    f->lon = jnum(c, "longitude");
    double sp = jnum(c, "speed"), hd = jnum(c, "heading");
    f->speed = sp >= 0 ? sp : NAN;      /* m/s; -1 means unknown */
    f->bearing = hd >= 0 ? hd : NAN;
    f->altitude = jnum(c, "altitude");
    f->accuracy = jnum(c, "accuracy");
    json_t *b = json_object_get(loc, "battery");
    double lvl = jnum(b, "level");
    if (lvl >= 0)
        f->batt = lvl <= 1 ? lvl * 100 : lvl;
    json_t *extras = json_object_get(loc, "extras");
    const char *ev = json_string_value(json_object_get(loc, "event"));
    f->sos = json_is_true(json_object_get(extras, "sos")) ||
             (ev && !g_ascii_strcasecmp(ev, "sos")) ||
             !g_strcmp0(json_string_value(json_object_get(extras, "alarm")), "sos");
    json_t *ts = json_object_get(loc, "timestamp");
    char tbuf[32];
    const char *tstr = json_string_value(ts);
    if (json_is_integer(ts)) {
        snprintf(tbuf, sizeof tbuf, "%lld", (long long)json_integer_value(ts));
        tstr = tbuf;
    } else if (ts && !json_is_string(ts)) {
        return gc_fail(err, GC_EINVAL, "location.timestamp", "location.timestamp must be ISO 8601 or a number");
    }
    const char *id = json_string_value(json_object_get(o, "device_id"));
    if (!id && json_is_string(json_object_get(o, "id")))
        id = json_string_value(json_object_get(o, "id"));
    return finish_fix(t, j, f, id, json_string_value(json_object_get(o, "crs")), tstr,
                      "traccar-json", err);
}

/* One JSON item: Traccar's shape or OsmAnd's fields as an object. */
static int fix_from_json(tracker *t, job *j, json_t *o, store_fix *f, gc_err *err)
{
    if (!json_is_object(o))
        return gc_fail(err, GC_EINVAL, "body", "a position is a JSON object");
    if (json_object_get(o, "location") && json_is_object(json_object_get(o, "location")))
        return fix_from_traccar(t, j, o, f, err);
    GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_string(v))
            g_hash_table_insert(m, (char *)k, g_strdup(json_string_value(v)));
        else if (json_is_integer(v))
            g_hash_table_insert(m, (char *)k, g_strdup_printf("%lld", (long long)json_integer_value(v)));
        else if (json_is_real(v))
            g_hash_table_insert(m, (char *)k, g_strdup_printf("%.10g", json_real_value(v)));
        else if (json_is_boolean(v))
            g_hash_table_insert(m, (char *)k, g_strdup(json_is_true(v) ? "true" : "false"));
    }
    int rc = fix_from_kv(t, j, m, f, err);
    g_hash_table_destroy(m);
    if (!rc)
        f->source = "batch";
    return rc;
}

/* ---- devices ---- */

static int dev_lookup(tracker *t, const char *id, device **out, gc_err *err)
{
    gint64 now = g_get_monotonic_time();
    device *d = g_hash_table_lookup(t->devices, id);
    if (!d || now - d->fetched > DEVICE_TTL_US) {
        store_device sd;
        gc_err e = {0};
        int rc = store_device_get(app_store(t->a), id, &sd, &e);
        if (rc && rc != GC_ENOTFOUND) {
            *err = e;
            return rc;
        }
        if (rc == GC_ENOTFOUND) {   /* not cached: ids from anyone must not grow memory */
            g_hash_table_remove(t->devices, id);
            d = NULL;
        } else if (!d) {
            d = g_new0(device, 1);
            g_hash_table_insert(t->devices, g_strdup(id), d);
        }
        if (!d) {
            static device unknown;
            d = &unknown;
        }
        d->fetched = now;
        d->user_id = rc ? 0 : sd.user_id;
        d->disabled = !rc && sd.disabled;
        gc_err ce = {0};
        if (rc || crs_parse(sd.crs, &d->crs, &ce))
            crs_parse(NULL, &d->crs, &ce);
    }
    if (!d->user_id || d->disabled) {
        gint64 *last = g_hash_table_lookup(t->unknown_logged, id);
        if (!last || now - *last > UNKNOWN_LOG_US) {
            log_warn("tracker", "refused fix: device %s is %s", id,
                     d->user_id ? "disabled" : "not registered to a worker");
            if (!last) {
                if (g_hash_table_size(t->unknown_logged) > 10000)
                    g_hash_table_remove_all(t->unknown_logged);
                last = g_new(gint64, 1);
                g_hash_table_insert(t->unknown_logged, g_strdup(id), last);
            }
            *last = now;
        }
        return gc_fail(err, GC_EFORBIDDEN, "id", "device %s is %s", id,
                       d->user_id ? "disabled" : "not registered to a worker");
    }
    *out = d;
    return 0;
}

void tracker_device_changed(tracker *t, const char *device_id)
{
    g_hash_table_remove(t->devices, device_id);
}

static void publish(tracker *t, struct worker *w, const store_fix *f);

/* ---- patrol rules and alerts ---- */

static worker *worker_get(tracker *t, int64_t uid)
{
    worker *w = g_hash_table_lookup(t->workers, &uid);
    if (w)
        return w;
    w = g_new0(worker, 1);
    w->user_id = uid;
    store_user u;
    gc_err err = {0};
    if (!store_user_by_id(app_store(t->a), uid, &u, &err))
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
static void alert_change(tracker *t, worker *w, int kind, int64_t at, bool open, json_t *extra)
{
    store *s = app_store(t->a);
    gc_err err = {0};
    int64_t id = w->alert[kind];
    if (store_begin(s, &err))
        goto fail;
    int rc = open ? store_alert_open(s, alert_kind[kind], w->user_id, at, w->lon, w->lat, extra, &id, &err)
                  : store_alert_close(s, id, at, &err);
    if (!rc) {
        char *ts = iso_ms(at);
        json_t *props = json_pack("{s:I,s:s,s:s,s:I,s:s,s:s}", "id", (json_int_t)id, "kind",
                                  alert_kind[kind], "state", open ? "open" : "closed", "user_id",
                                  (json_int_t)w->user_id, "worker", w->name,
                                  open ? "started_at" : "ended_at", ts);
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
    log_info("tracker", "alert %s %s id=%lld worker=%s", alert_kind[kind], open ? "opened" : "closed",
             (long long)id, w->name);
    return;
fail:
    log_error("tracker", "alert %s for worker %s not stored: %s", alert_kind[kind], w->name, err.msg);
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
static void patrol_fix(tracker *t, worker *w, const store_fix *f)
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
    tracker *t = ud;
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
static gboolean on_summary(gpointer ud)
{
    tracker *t = ud;
    if (t->batches != t->logged_batches)
        log_info("tracker", "last minute: requests=%llu fixes=%llu duplicates=%llu workers=%u",
                 (unsigned long long)(t->batches - t->logged_batches),
                 (unsigned long long)(t->fixes - t->logged_fixes),
                 (unsigned long long)(t->dups - t->logged_dups), g_hash_table_size(t->workers));
    t->logged_fixes = t->fixes;
    t->logged_dups = t->dups;
    t->logged_batches = t->batches;
    return G_SOURCE_CONTINUE;
}

void tracker_grids_changed(tracker *t, int64_t user_id, json_t *grids)
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
    tracker *t = ud;
    worker *w = worker_get(t, f->user_id);
    w->last_t = f->t;
    w->last_rx = f->received_at;
    w->lon = f->lon;
    w->lat = f->lat;
    snprintf(w->grid, sizeof w->grid, "%s", f->grid_id ? f->grid_id : "");
    publish(t, w, f);   /* the live map starts with everyone's newest fix */
    return 0;
}

static void patrol_load(tracker *t)
{
    store *s = app_store(t->a);
    gc_err err = {0};
    if (store_fixes_latest(s, load_latest, t, &err))
        log_error("tracker", "%s", err.msg);
    json_t *all = NULL;
    if (!store_worker_grids(s, 0, &all, &err)) {
        const char *k;
        json_t *v;
        json_object_foreach(all, k, v) tracker_grids_changed(t, g_ascii_strtoll(k, NULL, 10), v);
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

/* ---- the live map ---- */

static void publish(tracker *t, struct worker *w, const store_fix *f)
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
    live_position(app_live(t->a), f->user_id, f->t, f->lon, f->lat, ids, feat);
}

/* ---- the writer ---- */

typedef struct wbatch {
    tracker *t;
    GPtrArray *jobs;
} wbatch;

static void job_free(job *j)
{
    g_array_free(j->fixes, TRUE);
    g_string_chunk_free(j->strs);
    g_free(j->fresh);
    json_decref(j->rejected);
    g_free(j);
}

static gboolean batch_done(gpointer ud)
{
    wbatch *b = ud;
    tracker *t = b->t;
    t->inflight -= (int)b->jobs->len;
    for (guint i = 0; i < b->jobs->len; i++) {
        job *j = g_ptr_array_index(b->jobs, i);
        size_t fresh = 0;
        for (guint k = 0; !j->rc && k < j->fixes->len; k++) {
            if (!j->fresh[k])
                continue;
            fresh++;
            const store_fix *f = &g_array_index(j->fixes, store_fix, k);
            worker *w = worker_get(t, f->user_id);
            if (f->t > w->last_t) {
                patrol_fix(t, w, f);
                publish(t, w, f);
            }
        }
        t->fixes += fresh;
        t->dups += j->rc ? 0 : j->fixes->len - fresh;
        if (j->r) {
            if (j->rc) {
                http_reply_error(j->r, 500, "internal", NULL, "fix not stored: %s", j->why);
            } else if (j->batch) {
                http_reply_json(j->r, 200,
                                json_pack("{s:I,s:I,s:I,s:O}", "received", (json_int_t)j->items,
                                          "stored", (json_int_t)fresh, "duplicates",
                                          (json_int_t)(j->fixes->len - fresh), "rejected",
                                          j->rejected));
            } else {
                http_reply(j->r, 200, "text/plain", "", 0);
            }
            http_complete(j->r);
        }
        job_free(j);
    }
    g_ptr_array_free(b->jobs, TRUE);
    g_free(b);
    return G_SOURCE_REMOVE;
}

static gpointer writer_main(gpointer ud)
{
    tracker *t = ud;
    GArray *all = g_array_new(FALSE, FALSE, sizeof(store_fix));
    bool stop = false;
    while (!stop) {
        job *j = g_async_queue_pop(t->q);
        if (j == &stop_job)
            break;
        wbatch *b = g_new0(wbatch, 1);
        b->t = t;
        b->jobs = g_ptr_array_new();
        g_ptr_array_add(b->jobs, j);
        size_t n = j->fixes->len;
        while (n < WRITE_MAX && (j = g_async_queue_try_pop(t->q))) {
            if (j == &stop_job) {
                stop = true;
                break;
            }
            g_ptr_array_add(b->jobs, j);
            n += j->fixes->len;
        }
        g_array_set_size(all, 0);
        for (guint i = 0; i < b->jobs->len; i++) {
            job *x = g_ptr_array_index(b->jobs, i);
            g_array_append_vals(all, x->fixes->data, x->fixes->len);
        }
        bool *fresh = g_new0(bool, all->len + 1);
        gc_err err = {0};
        int rc = store_fixes_insert(t->ws, (store_fix *)(void *)all->data, all->len, fresh, &err);
        size_t off = 0;
        for (guint i = 0; i < b->jobs->len; i++) {
            job *x = g_ptr_array_index(b->jobs, i);
            x->rc = rc;
            snprintf(x->why, sizeof x->why, "%s", err.msg);
            x->fresh = g_new0(bool, x->fixes->len + 1);
            memcpy(x->fresh, fresh + off, x->fixes->len * sizeof(bool));
            off += x->fixes->len;
        }
        g_free(fresh);
        if (rc)
            log_error("tracker", "writing %zu fixes: %s", n, err.msg);
        g_main_context_invoke_full(t->ctx, G_PRIORITY_DEFAULT, batch_done, b, NULL);
    }
    g_array_free(all, TRUE);
    return NULL;
}

static void submit(tracker *t, job *j)
{
    t->inflight++;
    t->batches++;
    g_async_queue_push(t->q, j);
}

static job *job_new(http_req *r)
{
    job *j = g_new0(job, 1);
    j->r = r;
    j->fixes = g_array_new(FALSE, FALSE, sizeof(store_fix));
    j->strs = g_string_chunk_new(256);
    return j;
}

/* ---- HTTP ---- */

static const char *const osmand_fields[] = {"id", "deviceid", "lat", "lon", "location", "timestamp",
                                            "speed", "bearing", "heading", "altitude", "accuracy",
                                            "batt", "alarm", "crs", "hdop", "valid", "charge"};

static bool is_json(const http_req *r)
{
    return !g_ascii_strncasecmp(r->content_type, "application/json", 16) ||
           (r->body->len && r->body->data[0] == '{');
}

static void h_osmand(http_req *r, void *ud)
{
    tracker *t = ud;
    job *j = job_new(r);
    store_fix f;
    gc_err err = {0};
    int rc;
    if (r->method == HTTP_POST && r->body->len && is_json(r)) {
        json_t *o = http_json_object(r);
        if (!o) {
            job_free(j);
            return;
        }
        rc = fix_from_json(t, j, o, &f, &err);
        json_decref(o);
    } else {
        GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        for (guint i = 0; i < r->qkeys->len; i++)
            g_hash_table_insert(m, g_strdup(g_ptr_array_index(r->qkeys, i)),
                                g_strdup(g_ptr_array_index(r->qvals, i)));
        rc = 0;
        if (r->method == HTTP_POST && http_is_form(r)) {
            http_form form;
            rc = http_form_parse(r, osmand_fields, G_N_ELEMENTS(osmand_fields), &form, &err);
            if (!rc) {
                GHashTableIter it;
                gpointer k, v;
                g_hash_table_iter_init(&it, form.fields);
                while (g_hash_table_iter_next(&it, &k, &v))
                    g_hash_table_insert(m, g_strdup(k), g_strdup(v));
                http_form_clear(&form);
            }
        }
        if (!rc)
            rc = fix_from_kv(t, j, m, &f, &err);
        g_hash_table_destroy(m);
    }
    if (rc) {
        if (rc != GC_EFORBIDDEN)
            log_warn("tracker", "refused fix peer=%s field=%s: %s", r->peer, err.field, err.msg);
        http_reply_err(r, &err);
        job_free(j);
        return;
    }
    g_array_append_val(j->fixes, f);
    http_defer(r);
    submit(t, j);
}

void tracker_submit_json(tracker *t, http_req *r, json_t *items, int64_t user_id)
{
    if (t->stopping) {
        http_reply_error(r, 503, "unavailable", NULL, "shutting down; send again later");
        return;
    }
    if (json_is_object(items) && json_is_array(json_object_get(items, "locations")))
        items = json_object_get(items, "locations");
    if (!json_is_array(items)) {
        http_reply_error(r, 400, "invalid", "body",
                         "a batch is a JSON array of positions (or {\"locations\": [...]})");
        return;
    }
    if (json_array_size(items) > (size_t)t->o.batch_max) {
        http_reply_error(r, 413, "too_large", "body", "a batch may hold at most %d positions",
                         t->o.batch_max);
        return;
    }
    job *j = job_new(r);
    j->batch = true;
    j->items = json_array_size(items);
    j->rejected = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        store_fix f;
        gc_err err = {0};
        if (fix_from_json(t, j, o, &f, &err) == 0 && user_id && f.user_id != user_id)
            gc_fail(&err, GC_EFORBIDDEN, "id", "device %s belongs to another worker", f.device_id);
        if (err.code) {
            char *msg = g_utf8_make_valid(err.msg, -1);
            json_array_append_new(j->rejected, json_pack("{s:I,s:s,s:s}", "index", (json_int_t)i,
                                                         "field", err.field, "message", msg));
            g_free(msg);
            continue;
        }
        g_array_append_val(j->fixes, f);
    }
    if (json_array_size(j->rejected))
        log_warn("tracker", "batch peer=%s: %zu of %zu positions refused (first: %s)", r->peer,
                 json_array_size(j->rejected), j->items,
                 json_string_value(json_object_get(json_array_get(j->rejected, 0), "message")));
    http_defer(r);
    submit(t, j);
}

static void h_batch(http_req *r, void *ud)
{
    tracker *t = ud;
    json_error_t je;
    json_t *items = json_loadb((const char *)r->body->data, r->body->len, 0, &je);
    if (!items) {
        http_reply_error(r, 400, "invalid", "body", "not JSON: %s (line %d)", je.text, je.line);
        return;
    }
    tracker_submit_json(t, r, items, 0);
    json_decref(items);
}

tracker *tracker_new(app *a, const tracker_opts *o, gc_err *err)
{
    tracker *t = g_new0(tracker, 1);
    t->a = a;
    t->o = o ? *o : (tracker_opts){0};
    if (!t->o.port)
        t->o.port = 5055;
    if (t->o.outside_min <= 0)
        t->o.outside_min = 10;
    if (t->o.silent_min <= 0)
        t->o.silent_min = 15;
    if (t->o.batch_max <= 0)
        t->o.batch_max = 10000;
    t->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->unknown_logged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->workers = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, worker_free);
    t->ctx = g_main_context_default();
    if (store_open(store_path(app_store(a)), &t->ws, err)) {
        tracker_free(t);
        return NULL;
    }
    if (t->o.port > 0 || t->o.port == -2) {   /* -2: any free port */
        http_limits lim = {.max_body = 16 << 20, .idle_timeout_s = 120,
                           .max_conns_per_addr = t->o.max_conns_per_addr};
        t->http = http_server_new(app_loop(a), t->o.bind ? t->o.bind : "127.0.0.1",
                                  t->o.port > 0 ? t->o.port : 0, &lim, err);
        if (!t->http) {
            tracker_free(t);
            return NULL;
        }
        http_server_access_log(t->http, LOG_DEBUG);   /* a summary a minute instead */
        http_route(t->http, "GET", "/", 0, h_osmand, t);
        http_route_form(t->http, "POST", "/", 65536, osmand_fields, G_N_ELEMENTS(osmand_fields),
                        h_osmand, t);
        http_route(t->http, "POST", "/batch", 16 << 20, h_batch, t);
    }
    patrol_load(t);
    t->q = g_async_queue_new();
    t->writer = g_thread_new("fix-writer", writer_main, t);
    /* silence is noticed within a sixth of its limit, and at least every 10 s */
    double every = fmin(PATROL_CHECK_S, t->o.silent_min * 10);
    t->patrol = g_timeout_add((guint)(every * 1000), on_patrol, t);
    t->summary = g_timeout_add_seconds(60, on_summary, t);
    log_info("tracker", "OsmAnd protocol on port %d; alerts: outside %g min, silent %g min",
             tracker_port(t), t->o.outside_min, t->o.silent_min);
    return t;
}

int tracker_port(const tracker *t) { return t->http ? http_server_port(t->http) : 0; }

void tracker_stop(tracker *t)
{
    if (!t || t->stopping)
        return;
    t->stopping = true;
    if (t->patrol)
        g_source_remove(t->patrol);
    if (t->summary)
        g_source_remove(t->summary);
    t->patrol = t->summary = 0;
    /* fixes already queued are still written; their answers are dropped with
     * the connections (the trackers send again, and a fix sent twice is
     * stored once) */
    http_server_free(t->http);
    t->http = NULL;
}

void tracker_free(tracker *t)
{
    if (!t)
        return;
    tracker_stop(t);
    if (t->writer) {
        g_async_queue_push(t->q, &stop_job);
        g_thread_join(t->writer);
        while (t->inflight)
            g_main_context_iteration(t->ctx, TRUE);
    }
    if (t->q)
        g_async_queue_unref(t->q);
    store_close(t->ws);
    log_info("tracker", "stopped fixes=%llu duplicates=%llu requests=%llu",
             (unsigned long long)t->fixes, (unsigned long long)t->dups,
             (unsigned long long)t->batches);
    g_hash_table_destroy(t->devices);
    g_hash_table_destroy(t->unknown_logged);
    g_hash_table_destroy(t->workers);
    g_free(t);
}
