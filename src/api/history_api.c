/* history_api: past windows of the district, for replay (回放).
 *   GET /api/history/changes?from=&to=&topics=&limit=&after_seq=
 *   GET /api/history/positions?from=&to=&bbox=&workers=&max_points=
 *   GET /api/history/area?from=&to=&bbox=
 *   GET /api/history/incidents?at=&all=
 * Reads run on a worker thread with a connection of their own (a day of
 * fixes is a few hundred thousand rows): the loop only checks the query and
 * sends the text the thread made. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gridcc/incidents.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

#define TIME_MIN 946684800LL  /* 2000-01-01: nothing is older */
#define TIME_MAX 4102444800LL /* 2100-01-01 */
#define POS_SPAN_S 86400      /* a positions window: a day at most */
#define AREA_SPAN_S (7 * 86400)
#define CHANGES_LIMIT 20000
#define CHANGES_MAX 100000
#define POINTS_DEFAULT 200000
#define POINTS_MAX 1000000
#define DEFAULT_TOPICS "incidents,alerts,workers"

/* The change-log topics a window may ask for. positions is not one: fixes
 * are read from the positions table, not the log. */
static const char *const known_topics[] = {"incidents",   "alerts", "workers", "categories",
                                           "time_limits", "layers", "cameras"};

typedef enum { J_CHANGES, J_POSITIONS, J_AREA, J_INCIDENTS } job_kind;

typedef struct job {
    api_env *e;
    http_req *r;
    job_kind kind;
    char *db;
    gc_who who;
    int64_t from, to; /* Unix s */
    /* changes */
    char **topics;
    int64_t after_seq;
    int limit;
    /* positions, area */
    store_fix_window w;
    int64_t *users;
    int64_t max_points;
    /* incidents */
    bool all;
    /* out */
    int status;
    char *text;
    gc_err err;
} job;

static void job_free(job *j)
{
    g_free(j->db);
    g_strfreev(j->topics);
    g_free(j->users);
    free(j->text);
    g_free(j);
}

static char *iso(int64_t s)
{
    GDateTime *d = g_date_time_new_from_unix_utc(s);
    char *t = g_date_time_format(d, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(d);
    return t;
}

/* {"from","to","from_ms","to_ms"}: every answer says which window it is. */
static json_t *window_json(const job *j)
{
    char *f = iso(j->from), *t = iso(j->to);
    json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "from", f, "to", t, "from_ms",
                          (json_int_t)(j->from * 1000), "to_ms", (json_int_t)(j->to * 1000));
    g_free(f);
    g_free(t);
    return o;
}

static char *dump(json_t *o)
{
    char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    return t;
}

/* ---- changes ---- */

typedef struct changes_ctx {
    job *j;
    GString *items;
    int scanned, returned;
    int64_t first, last, last_scanned;
    bool truncated;
} changes_ctx;

static int take_change(void *ud, const store_change *c)
{
    changes_ctx *x = ud;
    if (x->scanned == x->j->limit) { /* one past the page: there is more */
        x->truncated = true;
        return 1;
    }
    x->scanned++;
    x->last_scanned = c->seq;
    if (x->j->who.role == ROLE_DEPARTMENT && !strcmp(c->topic, "incidents")) {
        /* the same rule as the case list: only what went to their department */
        json_t *d = json_loads(c->data, 0, NULL);
        const char *dep =
            json_string_value(json_object_get(json_object_get(d, "properties"), "department"));
        bool mine = dep && !strcmp(dep, x->j->who.department);
        json_decref(d);
        if (!mine)
            return 0;
    }
    char *t = live_change_text(c);
    if (x->returned++)
        g_string_append_c(x->items, ',');
    g_string_append(x->items, t);
    g_free(t);
    if (!x->first)
        x->first = c->seq;
    x->last = c->seq;
    return 0;
}

static int run_changes(store *s, job *j)
{
    changes_ctx x = {.j = j, .items = g_string_new("")};
    guint n = g_strv_length(j->topics);
    if (store_changes_window(s, j->from, j->to, j->after_seq, (const char *const *)j->topics, n,
                             j->limit + 1, take_change, &x, &j->err)) {
        g_string_free(x.items, TRUE);
        return j->err.code;
    }
    json_t *o = window_json(j);
    json_t *topics = json_array();
    for (guint i = 0; i < n; i++)
        json_array_append_new(topics, json_string(j->topics[i]));
    json_object_set_new(o, "topics", topics);
    json_object_set_new(o, "first_seq", x.first ? json_integer(x.first) : json_null());
    json_object_set_new(o, "last_seq", x.last ? json_integer(x.last) : json_null());
    json_object_set_new(o, "truncated", json_boolean(x.truncated));
    json_object_set_new(o, "next",
                        x.truncated ? json_pack("{s:I}", "after_seq", (json_int_t)x.last_scanned)
                                    : json_null());
    /* the items are the /live text as it is: spliced in, not parsed again */
    char *rest = dump(o);
    GString *b = g_string_sized_new(x.items->len + strlen(rest) + 16);
    g_string_append(b, "{\"changes\":[");
    g_string_append_len(b, x.items->str, (gssize)x.items->len);
    g_string_append(b, "],");
    g_string_append(b, rest + 1);
    free(rest);
    g_string_free(x.items, TRUE);
    j->text = strdup(b->str);
    g_string_free(b, TRUE);
    return 0;
}

/* ---- positions ---- */

typedef struct pt {
    double lon, lat;
    int64_t t;
} pt;

typedef struct track {
    int64_t id;
    char *device_id; /* of the newest fix */
    GArray *pts;     /* pt */
} track;

typedef struct pos_ctx {
    GPtrArray *tracks;
    size_t total;
} pos_ctx;

static void track_free(gpointer p)
{
    track *t = p;
    g_free(t->device_id);
    g_array_free(t->pts, TRUE);
    g_free(t);
}

static int take_fix(void *ud, const store_fix *f)
{
    pos_ctx *x = ud;
    track *t = x->tracks->len ? g_ptr_array_index(x->tracks, x->tracks->len - 1) : NULL;
    if (!t || t->id != f->user_id) { /* fixes come worker by worker */
        t = g_new0(track, 1);
        t->id = f->user_id;
        t->pts = g_array_new(FALSE, FALSE, sizeof(pt));
        g_ptr_array_add(x->tracks, t);
    }
    pt p = {f->lon, f->lat, f->t};
    g_array_append_val(t->pts, p);
    if (f->device_id && g_strcmp0(t->device_id, f->device_id)) {
        g_free(t->device_id);
        t->device_id = g_strdup(f->device_id);
    }
    x->total++;
    return 0;
}

static int run_positions(store *s, job *j)
{
    pos_ctx x = {g_ptr_array_new_with_free_func(track_free), 0};
    int64_t in_window = 0;
    j->w.max_points = j->max_points; /* thinned as the store reads */
    if (store_fixes_window(s, &j->w, &in_window, take_fix, &x, &j->err)) {
        g_ptr_array_free(x.tracks, TRUE);
        return j->err.code;
    }
    json_t *workers = json_array();
    for (guint i = 0; i < x.tracks->len; i++) {
        track *t = g_ptr_array_index(x.tracks, i);
        store_user u;
        gc_err ignore = {0};
        json_t *w = json_pack("{s:I,s:s}", "id", (json_int_t)t->id, "name",
                              store_user_by_id(s, t->id, &u, &ignore) ? "" : u.name);
        if (t->device_id)
            json_object_set_new(w, "device_id", json_string(t->device_id));
        json_t *fx = json_array();
        const pt *p = (const pt *)(void *)t->pts->data;
        for (guint k = 0; k < t->pts->len; k++)
            json_array_append_new(fx, json_pack("[f,f,I]", p[k].lon, p[k].lat, (json_int_t)p[k].t));
        json_object_set_new(w, "fixes", fx);
        json_array_append_new(workers, w);
    }
    json_t *o = window_json(j);
    json_object_set_new(o, "fixes", json_integer((json_int_t)x.total));
    json_object_set_new(o, "fixes_in_window", json_integer((json_int_t)in_window));
    json_object_set_new(o, "thinned", json_boolean(in_window > j->max_points));
    json_object_set_new(o, "workers", workers);
    g_ptr_array_free(x.tracks, TRUE);
    j->text = dump(o);
    return 0;
}

/* ---- area ---- */

static int take_presence(void *ud, const store_presence *p)
{
    json_array_append_new(ud, json_pack("{s:I,s:s,s:I,s:I,s:I}", "id", (json_int_t)p->user_id,
                                        "name", p->name, "first_ms", (json_int_t)p->first,
                                        "last_ms", (json_int_t)p->last, "fixes", (json_int_t)p->n));
    return 0;
}

static int by_first(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t p = json_integer_value(json_object_get(x, "first_ms")),
               q = json_integer_value(json_object_get(y, "first_ms"));
    if (p != q)
        return p < q ? -1 : 1;
    p = json_integer_value(json_object_get(x, "id"));
    q = json_integer_value(json_object_get(y, "id"));
    return p < q ? -1 : p > q;
}

static int run_area(store *s, job *j)
{
    json_t *arr = json_array();
    if (store_fixes_presence(s, &j->w, take_presence, arr, &j->err)) {
        json_decref(arr);
        return j->err.code;
    }
    size_t n = json_array_size(arr);
    json_t **v = g_new(json_t *, n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, by_first);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    g_free(v);
    json_t *o = window_json(j);
    json_object_set_new(
        o, "bbox", json_pack("[f,f,f,f]", j->w.bbox[0], j->w.bbox[1], j->w.bbox[2], j->w.bbox[3]));
    json_object_set_new(o, "workers", arr);
    j->text = dump(o);
    return 0;
}

/* ---- incidents as of a time ---- */

static int take_incident(void *ud, json_t *row)
{
    json_array_append_new(ud, incident_feature(row));
    return 0;
}

static int run_incidents(store *s, job *j)
{
    store_incident_filter f = {.as_of = j->from, .oldest_first = true};
    if (!j->all) /* open then: not yet finished one way or the other */
        f.statuses = "reported,registered,dispatched,handled,verified";
    incidents_visibility(&j->who, &f);
    json_t *features = json_array();
    if (store_incidents_query(s, &f, NULL, take_incident, features, &j->err)) {
        json_decref(features);
        return j->err.code;
    }
    char *at = iso(j->from);
    json_t *o = json_pack("{s:s,s:s,s:I,s:b,s:I,s:o}", "type", "FeatureCollection", "at", at,
                          "at_ms", (json_int_t)(j->from * 1000), "all", j->all, "numberReturned",
                          (json_int_t)json_array_size(features), "features", features);
    g_free(at);
    j->text = dump(o);
    return 0;
}

/* ---- the thread and the loop ---- */

static void job_thread(void *data)
{
    job *j = data;
    store *s;
    gint64 t0 = g_get_monotonic_time();
    if (store_open(j->db, &s, &j->err)) {
        j->status = 500;
        return;
    }
    int rc = 0;
    switch (j->kind) {
    case J_CHANGES: rc = run_changes(s, j); break;
    case J_POSITIONS: rc = run_positions(s, j); break;
    case J_AREA: rc = run_area(s, j); break;
    case J_INCIDENTS: rc = run_incidents(s, j); break;
    }
    store_close(s);
    j->status = rc ? 500 : 200;
    static const char *kinds[] = {"changes", "positions", "area", "incidents"};
    log_info("history", "read kind=%s from=%lld to=%lld bytes=%zu ms=%.0f", kinds[j->kind],
             (long long)j->from, (long long)j->to, j->text ? strlen(j->text) : (size_t)0,
             (double)(g_get_monotonic_time() - t0) / 1000.0);
}

static void job_done(void *data)
{
    job *j = data;
    if (j->status == 200 && j->text)
        http_reply(j->r, 200, "application/json", j->text, strlen(j->text));
    else if (j->err.code)
        http_reply_err(j->r, &j->err);
    else
        http_reply_error(j->r, 500, "internal", NULL, "the answer could not be encoded");
    http_complete(j->r);
    job_free(j);
}

static job *job_new(api_env *e, http_req *r, job_kind kind)
{
    job *j = g_new0(job, 1);
    j->e = e;
    j->r = r;
    j->kind = kind;
    j->db = g_strdup(store_path(e->store));
    j->who = r->who;
    return j;
}

/* ---- reading the query ---- */

static bool read_time(http_req *r, const char *key, int64_t *out)
{
    const char *v = http_query(r, key);
    if (!v || !*v) {
        http_reply_error(r, 400, "invalid", key,
                         "%s is required: Unix seconds or an ISO 8601 date-time", key);
        return false;
    }
    if (!gc_time_parse(v, out) || *out < TIME_MIN || *out > TIME_MAX) {
        http_reply_error(r, 400, "invalid", key,
                         "%s must be Unix seconds or an ISO 8601 date-time between 2000 and 2100",
                         key);
        return false;
    }
    return true;
}

static bool read_window(http_req *r, job *j, int64_t max_span, const char *span_name)
{
    if (!read_time(r, "from", &j->from) || !read_time(r, "to", &j->to))
        return false;
    if (j->to <= j->from) {
        http_reply_error(r, 400, "invalid", "to", "to must be after from");
        return false;
    }
    if (max_span && j->to - j->from > max_span) {
        http_reply_error(r, 400, "invalid", "to", "the window from from to to spans at most %s",
                         span_name);
        return false;
    }
    j->w.from = j->from * 1000;
    j->w.to = j->to * 1000;
    return true;
}

static bool read_bbox(http_req *r, job *j, bool required)
{
    const char *v = http_query(r, "bbox");
    if (!v) {
        if (required)
            http_reply_error(r, 400, "invalid", "bbox",
                             "bbox is required: minlon,minlat,maxlon,maxlat (EPSG:4326)");
        return !required;
    }
    double *b = j->w.bbox;
    if (gc_parse_doubles(v, "bbox", b, 4, NULL) || b[0] > b[2] || b[1] > b[3] || b[0] < -180 ||
        b[2] > 180 || b[1] < -90 || b[3] > 90) {
        http_reply_error(r, 400, "invalid", "bbox",
                         "bbox must be minlon,minlat,maxlon,maxlat in degrees (EPSG:4326)");
        return false;
    }
    j->w.has_bbox = true;
    return true;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* workers=ID,ID (ids or names). A worker reads only their own fixes. */
static bool read_workers(http_req *r, job *j)
{
    const char *v = http_query(r, "workers");
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
    if (v) {
        char **parts = g_strsplit(v, ",", -1);
        for (char **p = parts; *p; p++) {
            g_strstrip(*p);
            store_user u;
            gc_err err = {0};
            if (!**p || strlen(*p) > 127 || store_user_find(j->e->store, *p, &u, &err)) {
                http_reply_error(r, 400, "invalid", "workers", "workers: no user '%s'", *p);
                g_strfreev(parts);
                g_array_free(ids, TRUE);
                return false;
            }
            if (j->who.role == ROLE_WORKER && u.id != j->who.id) {
                http_reply_error(r, 403, "forbidden", "workers",
                                 "a worker sees only their own track");
                g_strfreev(parts);
                g_array_free(ids, TRUE);
                return false;
            }
            bool seen = false; /* named twice: read once */
            for (guint i = 0; i < ids->len; i++)
                seen = seen || g_array_index(ids, int64_t, i) == u.id;
            if (!seen)
                g_array_append_val(ids, u.id);
        }
        g_strfreev(parts);
    } else if (j->who.role == ROLE_WORKER) {
        g_array_append_val(ids, j->who.id);
    }
    g_array_sort(ids, by_id);
    j->w.nusers = ids->len;
    j->users = (int64_t *)(void *)g_array_free(ids, FALSE);
    j->w.users = j->users;
    if (v && !j->w.nusers) {
        http_reply_error(r, 400, "invalid", "workers", "workers: a list of user ids or names");
        return false;
    }
    return true;
}

static bool read_int(http_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = http_query(r, key);
    if (v && gc_parse_int(v, key, lo, hi, out, NULL)) {
        http_reply_error(r, 400, "invalid", key, "%s must be a whole number from %lld to %lld", key,
                         (long long)lo, (long long)hi);
        return false;
    }
    return true;
}

/* ---- handlers ---- */

static void h_changes(http_req *r, void *ud)
{
    job *j = job_new(ud, r, J_CHANGES);
    int64_t limit = CHANGES_LIMIT;
    const char *tq = http_query(r, "topics");
    if (!read_window(r, j, 0, NULL) || !read_int(r, "limit", 1, CHANGES_MAX, &limit) ||
        !read_int(r, "after_seq", 0, INT64_MAX, &j->after_seq))
        goto bad;
    j->limit = (int)limit;
    j->topics = g_strsplit(tq ? tq : DEFAULT_TOPICS, ",", -1);
    for (char **p = j->topics; *p; p++) {
        g_strstrip(*p);
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(known_topics); i++)
            known = known || !strcmp(*p, known_topics[i]);
        if (!strcmp(*p, "positions")) {
            http_reply_error(r, 400, "invalid", "topics",
                             "positions are not in the change log: GET /api/history/positions");
            goto bad;
        }
        if (!known) {
            http_reply_error(r, 400, "invalid", "topics",
                             "unknown topic '%s': incidents, alerts, workers, categories, "
                             "time_limits, layers, cameras",
                             *p);
            goto bad;
        }
    }
    if (!j->topics[0]) {
        http_reply_error(r, 400, "invalid", "topics", "topics: a comma list of topics");
        goto bad;
    }
    api_offload(j->e, r, job_thread, job_done, j);
    return;
bad:
    job_free(j);
}

static void h_positions(http_req *r, void *ud)
{
    job *j = job_new(ud, r, J_POSITIONS);
    j->max_points = POINTS_DEFAULT;
    if (!read_window(r, j, POS_SPAN_S, "24 hours") || !read_bbox(r, j, false) ||
        !read_int(r, "max_points", 2, POINTS_MAX, &j->max_points) || !read_workers(r, j)) {
        job_free(j);
        return;
    }
    api_offload(j->e, r, job_thread, job_done, j);
}

static void h_area(http_req *r, void *ud)
{
    job *j = job_new(ud, r, J_AREA);
    if (!read_window(r, j, AREA_SPAN_S, "7 days") || !read_bbox(r, j, true) ||
        !read_workers(r, j)) {
        job_free(j);
        return;
    }
    api_offload(j->e, r, job_thread, job_done, j);
}

static void h_incidents(http_req *r, void *ud)
{
    job *j = job_new(ud, r, J_INCIDENTS);
    const char *all = http_query(r, "all");
    if (!read_time(r, "at", &j->from)) {
        job_free(j);
        return;
    }
    if (all && strcmp(all, "true") && strcmp(all, "false")) {
        http_reply_error(r, 400, "invalid", "all", "all must be true or false");
        job_free(j);
        return;
    }
    j->to = j->from;
    j->all = all && !strcmp(all, "true");
    api_offload(j->e, r, job_thread, job_done, j);
}

void history_api_register(http_server *s, api_env *e)
{
    http_route(s, "GET", "/api/history/changes", ROLE_STAFF, 0, h_changes, e);
    http_route(s, "GET", "/api/history/positions", ROLE_STAFF, 0, h_positions, e);
    http_route(s, "GET", "/api/history/area", ROLE_STAFF, 0, h_area, e);
    /* residents too: their own cases, as the case list shows them */
    http_route(s, "GET", "/api/history/incidents", ROLE_ANY, 0, h_incidents, e);
}
