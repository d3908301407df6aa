/* osmand: see osmand.h. */
#include "osmand.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/fix_writer.h"
#include "gridcc/fixes.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

#define KNOT_MS 0.514444
#define DEVICE_TTL_US (30 * G_USEC_PER_SEC)
#define UNKNOWN_LOG_US (60 * G_USEC_PER_SEC)

typedef struct device {
    int64_t user_id; /* 0: not registered */
    crs_def crs;
    bool disabled;
    gint64 fetched;
} device;

typedef struct osmand osmand;

/* Fixes from one request, on their way to the disk and back. */
typedef struct job {
    osmand *t;
    http_req *r;
    GArray *fixes; /* store_fix; strings in strs (the writer's once submitted) */
    GStringChunk *strs;
    json_t *rejected; /* batch: [{index, field, message}] */
    size_t items;
    bool batch;
} job;

struct osmand {
    api_env *e;
    tracker_opts o;
    http_server *http;
    GHashTable *devices;        /* device id → device */
    GHashTable *unknown_logged; /* device id → gint64 last log */
    fix_writer *writer;
    bool stopping; /* new fixes are refused (503) */
    guint summary;
    uint64_t fixes, dups, batches;
    uint64_t logged_fixes, logged_dups, logged_batches; /* at the last summary */
};

/* ---- parsing ---- */

static const char *kv(GHashTable *m, const char *a, const char *b)
{
    const char *v = g_hash_table_lookup(m, a);
    return v || !b ? v : g_hash_table_lookup(m, b);
}

/* A field that is absent leaves *out as it was. */
static int num(const char *s, const char *field, double *out, gc_err *err)
{
    if (!s || !*s)
        return 0;
    return gc_parse_double(s, field, -INFINITY, INFINITY, out, err);
}

static int dev_lookup(osmand *t, const char *id, device **out, gc_err *err);

static const char *keep(job *j, const char *s)
{
    return s ? g_string_chunk_insert_const(j->strs, s) : NULL;
}

/* Everything a fix shares once its fields are read: the device, its
 * coordinate system, the checks, the geotag. */
static int finish_fix(osmand *t, job *j, osmand_msg *m, store_fix *out, gc_err *err)
{
    store_fix *f = &m->f;
    const char *id = m->id, *crs_name = m->crs, *ts = m->ts, *source = m->source;
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
        if (!gc_time_parse_device(ts, &f->t))
            return gc_fail(
                err, GC_EINVAL, "timestamp",
                "timestamp must be Unix seconds, milliseconds or ISO 8601, not \"%.40s\"", ts);
        if (f->t > now + 10 * 60 * 1000)
            return gc_fail(err, GC_EINVAL, "timestamp",
                           "timestamp is more than 10 minutes in the future (device clock?)");
    } else {
        f->t = now; /* as Traccar does: a fix without a time is of its arrival */
    }
    f->user_id = d->user_id;
    f->device_id = keep(j, id);
    f->source = source;
    f->received_at = now;
    fix_geotag(t->e->index, f);
    f->grid_id = keep(j, f->grid_id);
    f->community_id = keep(j, f->community_id);
    f->street_id = keep(j, f->street_id);
    *out = *f;
    return 0;
}

void osmand_msg_clear(osmand_msg *msg)
{
    if (msg->kv)
        g_hash_table_destroy(msg->kv);
    msg->kv = NULL;
}

int osmand_read_kv(GHashTable *m, osmand_msg *msg, gc_err *err)
{
    GHashTable *keep_kv = msg->kv;
    *msg = (osmand_msg){.kv = keep_kv};
    store_fix *f = &msg->f;
    *f = fix_blank();
    f->lon = f->lat = NAN;
    const char *loc = kv(m, "location", NULL);
    if (loc && !kv(m, "lat", NULL)) { /* location=lat,lon */
        char **p = g_strsplit(loc, ",", 3);
        int rc = g_strv_length(p) == 2
                     ? num(p[0], "lat", &f->lat, err) || num(p[1], "lon", &f->lon, err)
                     : gc_fail(err, GC_EINVAL, "location", "location must be lat,lon");
        g_strfreev(p);
        if (rc)
            return GC_EINVAL;
    }
    double speed = NAN;
    if (num(kv(m, "lat", NULL), "lat", &f->lat, err) ||
        num(kv(m, "lon", NULL), "lon", &f->lon, err) ||
        num(kv(m, "speed", NULL), "speed", &speed, err) ||
        num(kv(m, "bearing", "heading"), "bearing", &f->bearing, err) ||
        num(kv(m, "altitude", NULL), "altitude", &f->altitude, err) ||
        num(kv(m, "accuracy", NULL), "accuracy", &f->accuracy, err) ||
        num(kv(m, "batt", NULL), "batt", &f->batt, err))
        return GC_EINVAL;
    if (isfinite(speed))
        f->speed = speed * KNOT_MS; /* the OsmAnd protocol sends knots */
    const char *alarm = kv(m, "alarm", NULL);
    f->sos = alarm &&
             (!g_ascii_strcasecmp(alarm, "sos") || !strcmp(alarm, "true") || !strcmp(alarm, "1"));
    msg->id = kv(m, "id", "deviceid");
    msg->crs = kv(m, "crs", NULL);
    msg->ts = kv(m, "timestamp", NULL);
    msg->source = "osmand";
    return 0;
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
static int read_traccar(json_t *o, osmand_msg *msg, gc_err *err)
{
    store_fix *f = &msg->f;
    *f = fix_blank();
    json_t *loc = json_object_get(o, "location");
    json_t *c = json_object_get(loc, "coords");
    if (!json_is_object(loc))
        return gc_fail(err, GC_EINVAL, "location", "location must be an object");
    if (!json_is_object(c))
        return gc_fail(err, GC_EINVAL, "location.coords", "location.coords must be an object");
    static const char *keys[][2] = {
        {"latitude", "location.coords.latitude"}, {"longitude", "location.coords.longitude"},
        {"speed", "location.coords.speed"},       {"heading", "location.coords.heading"},
        {"altitude", "location.coords.altitude"}, {"accuracy", "location.coords.accuracy"}};
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (jcheck(c, keys[i][0], keys[i][1], err))
            return GC_EINVAL;
    f->lat = jnum(c, "latitude");
    f->lon = jnum(c, "longitude");
    double sp = jnum(c, "speed"), hd = jnum(c, "heading");
    f->speed = sp >= 0 ? sp : NAN; /* m/s; -1 means unknown */
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
    const char *tstr = json_string_value(ts);
    if (json_is_integer(ts)) {
        snprintf(msg->tbuf, sizeof msg->tbuf, "%lld", (long long)json_integer_value(ts));
        tstr = msg->tbuf;
    } else if (ts && !json_is_string(ts)) {
        return gc_fail(err, GC_EINVAL, "location.timestamp",
                       "location.timestamp must be ISO 8601 or a number");
    }
    const char *id = json_string_value(json_object_get(o, "device_id"));
    if (!id && json_is_string(json_object_get(o, "id")))
        id = json_string_value(json_object_get(o, "id"));
    msg->id = id;
    msg->crs = json_string_value(json_object_get(o, "crs"));
    msg->ts = tstr;
    msg->source = "traccar-json";
    return 0;
}

int osmand_read_json(json_t *o, osmand_msg *msg, gc_err *err)
{
    osmand_msg_clear(msg);
    *msg = (osmand_msg){0};
    if (!json_is_object(o))
        return gc_fail(err, GC_EINVAL, "body", "a position is a JSON object");
    if (json_object_get(o, "location") && json_is_object(json_object_get(o, "location")))
        return read_traccar(o, msg, err);
    /* OsmAnd's fields as an object: read as the query would be (the
     * strings live in msg->kv until osmand_msg_clear) */
    GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_string(v))
            g_hash_table_insert(m, (char *)k, g_strdup(json_string_value(v)));
        else if (json_is_integer(v))
            g_hash_table_insert(m, (char *)k,
                                g_strdup_printf("%lld", (long long)json_integer_value(v)));
        else if (json_is_real(v))
            g_hash_table_insert(m, (char *)k, g_strdup_printf("%.10g", json_real_value(v)));
        else if (json_is_boolean(v))
            g_hash_table_insert(m, (char *)k, g_strdup(json_is_true(v) ? "true" : "false"));
    }
    msg->kv = m;
    int rc = osmand_read_kv(m, msg, err);
    if (!rc)
        msg->source = "batch";
    return rc;
}

/* One JSON item read and checked against devices, into *f. */
static int fix_from_json(osmand *t, job *j, json_t *o, store_fix *f, gc_err *err)
{
    osmand_msg msg = {0};
    int rc = osmand_read_json(o, &msg, err);
    if (!rc)
        rc = finish_fix(t, j, &msg, f, err);
    osmand_msg_clear(&msg);
    return rc;
}

/* ---- devices ---- */

static int dev_lookup(osmand *t, const char *id, device **out, gc_err *err)
{
    gint64 now = g_get_monotonic_time();
    device *d = g_hash_table_lookup(t->devices, id);
    if (!d || now - d->fetched > DEVICE_TTL_US) {
        store_device sd;
        gc_err e = {0};
        int rc = store_device_get(t->e->store, id, &sd, &e);
        if (rc && rc != GC_ENOTFOUND) {
            *err = e;
            return rc;
        }
        if (rc == GC_ENOTFOUND) { /* not cached: ids from anyone must not grow memory */
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

void osmand_device_changed(osmand *t, const char *device_id)
{
    g_hash_table_remove(t->devices, device_id);
}

/* ---- answers ---- */

static job *job_new(http_req *r)
{
    job *j = g_new0(job, 1);
    j->r = r;
    j->fixes = g_array_new(FALSE, FALSE, sizeof(store_fix));
    j->strs = g_string_chunk_new(256);
    return j;
}

static void job_free(job *j)
{
    if (j->fixes)
        g_array_free(j->fixes, TRUE);
    if (j->strs)
        g_string_chunk_free(j->strs);
    json_decref(j->rejected);
    g_free(j);
}

/* Back on the loop: the fixes are durable (or not). The new ones go to the
 * patrol rules and the map; the client hears. */
static void written(void *ud, const store_fix *fixes, size_t n, const bool *fresh, int rc,
                    const char *why)
{
    job *j = ud;
    osmand *t = j->t;
    size_t nfresh = 0;
    for (size_t k = 0; !rc && k < n; k++) {
        if (!fresh[k])
            continue;
        nfresh++;
        patrol_fix(t->e->patrol, &fixes[k]);
    }
    t->fixes += nfresh;
    t->dups += rc ? 0 : n - nfresh;
    if (j->r) {
        if (rc) {
            /* GC_EFULL: 507, GC_EBUSY: 503 with Retry-After, else 500 */
            gc_err e = {.code = rc};
            snprintf(e.msg, sizeof e.msg, "%s not stored: %s", j->batch ? "batch" : "fix", why);
            http_reply_err(j->r, &e);
        } else if (j->batch) {
            http_reply_json(j->r, 200,
                            json_pack("{s:I,s:I,s:I,s:O}", "received", (json_int_t)j->items,
                                      "stored", (json_int_t)nfresh, "duplicates",
                                      (json_int_t)(n - nfresh), "rejected", j->rejected));
        } else {
            http_reply(j->r, 200, "text/plain", "", 0);
        }
        http_complete(j->r);
    }
    job_free(j);
}

static void submit(osmand *t, job *j)
{
    t->batches++;
    j->t = t;
    GArray *fixes = j->fixes;
    GStringChunk *strs = j->strs;
    j->fixes = NULL;
    j->strs = NULL;
    fix_writer_submit(t->writer, fixes, strs, written, j);
}
/* ---- HTTP ---- */

static const char *const osmand_fields[] = {
    "id",       "deviceid", "lat",  "lon",   "location", "timestamp", "speed", "bearing", "heading",
    "altitude", "accuracy", "batt", "alarm", "crs",      "hdop",      "valid", "charge"};

static bool is_json(const http_req *r)
{
    return !g_ascii_strncasecmp(r->content_type, "application/json", 16) ||
           (r->body->len && r->body->data[0] == '{');
}

static void h_osmand(http_req *r, void *ud)
{
    osmand *t = ud;
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
        if (!rc) {
            osmand_msg msg = {0};
            rc = osmand_read_kv(m, &msg, &err);
            if (!rc)
                rc = finish_fix(t, j, &msg, &f, &err);
        }
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

void osmand_submit_json(osmand *t, http_req *r, json_t *items, int64_t user_id)
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
    osmand *t = ud;
    json_error_t je;
    json_t *items = json_loadb((const char *)r->body->data, r->body->len, 0, &je);
    if (!items) {
        http_reply_error(r, 400, "invalid", "body", "not JSON: %s (line %d)", je.text, je.line);
        return;
    }
    osmand_submit_json(t, r, items, 0);
    json_decref(items);
}

/* One line a minute about what arrived, rather than a line a fix. */
static gboolean on_summary(gpointer ud)
{
    osmand *t = ud;
    if (t->batches != t->logged_batches)
        log_info("tracker", "last minute: requests=%llu fixes=%llu duplicates=%llu workers=%u",
                 (unsigned long long)(t->batches - t->logged_batches),
                 (unsigned long long)(t->fixes - t->logged_fixes),
                 (unsigned long long)(t->dups - t->logged_dups),
                 (unsigned)patrol_workers(t->e->patrol));
    t->logged_fixes = t->fixes;
    t->logged_dups = t->dups;
    t->logged_batches = t->batches;
    return G_SOURCE_CONTINUE;
}

osmand *osmand_new(api_env *e, GMainLoop *loop, const tracker_opts *o, gc_err *err)
{
    osmand *t = g_new0(osmand, 1);
    t->e = e;
    t->o = o ? *o : (tracker_opts){0};
    if (!t->o.port)
        t->o.port = 5055;
    if (t->o.batch_max <= 0)
        t->o.batch_max = 10000;
    t->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->unknown_logged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->writer = fix_writer_new(store_path(e->store), g_main_loop_get_context(loop), err);
    if (!t->writer) {
        osmand_free(t);
        return NULL;
    }
    if (t->o.port > 0 || t->o.port == -2) { /* -2: any free port */
        http_limits lim = {.max_body = 16 << 20,
                           .idle_timeout_s = 120,
                           .max_conns_per_addr = t->o.max_conns_per_addr};
        t->http = http_server_new(loop, t->o.bind ? t->o.bind : "127.0.0.1",
                                  t->o.port > 0 ? t->o.port : 0, &lim, err);
        if (!t->http) {
            osmand_free(t);
            return NULL;
        }
        http_server_access_log(t->http, LOG_DEBUG); /* a summary a minute instead */
        /* the protocol has no credentials: a registered device id is the key */
        http_route(t->http, "GET", "/", HTTP_PUBLIC, 0, h_osmand, t);
        http_route_form(t->http, "POST", "/", HTTP_PUBLIC, 65536, osmand_fields,
                        G_N_ELEMENTS(osmand_fields), h_osmand, t);
        http_route(t->http, "POST", "/batch", HTTP_PUBLIC, 16 << 20, h_batch, t);
    }
    t->summary = g_timeout_add_seconds(60, on_summary, t);
    log_info("tracker", "OsmAnd protocol on port %d", osmand_port(t));
    return t;
}

int osmand_port(const osmand *t)
{
    return t->http ? http_server_port(t->http) : 0;
}

void osmand_stop(osmand *t)
{
    if (!t || t->stopping)
        return;
    t->stopping = true;
    if (t->summary)
        g_source_remove(t->summary);
    t->summary = 0;
    /* fixes already queued are still written; their answers are dropped with
     * the connections (the trackers send again, and a fix sent twice is
     * stored once) */
    http_server_free(t->http);
    t->http = NULL;
}

void osmand_free(osmand *t)
{
    if (!t)
        return;
    osmand_stop(t);
    fix_writer_free(t->writer); /* what is queued is written and answered */
    log_info("tracker", "stopped fixes=%llu duplicates=%llu requests=%llu",
             (unsigned long long)t->fixes, (unsigned long long)t->dups,
             (unsigned long long)t->batches);
    g_hash_table_destroy(t->devices);
    g_hash_table_destroy(t->unknown_logged);
    g_free(t);
}
