/* workers_api: grid workers over HTTP.
 *   POST /api/devices                 register a tracker to a worker
 *   GET  /api/devices
 *   GET  /api/workers                 workers with trackers: newest fix, grids
 *   PUT  /api/workers/{id}/grids      {"grids": [grid id…]}
 *   GET  /api/workers/{id}/track?from=&to=&zoom=
 *   GET  /api/workers/{id}/coverage?date=&distance=&basis=area|buildings
 *   POST /api/positions               a batch of fixes from the worker's own app
 *   GET  /api/alerts?open=true|false&since=
 * {id} is a user id or a user name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gridcc/crs.h"
#include "gridcc/parse.h"
#include "osmand.h"
#include "workers_track.h"

/* The user named by a path segment: an id or a name. Replies 404 if none. */
static bool worker_of(api_env *e, http_req *r, const char *seg, size_t len, store_user *u)
{
    char key[128];
    if (!len || len >= sizeof key) {
        http_reply_error(r, 404, "not_found", "worker", "no such worker");
        return false;
    }
    memcpy(key, seg, len);
    key[len] = 0;
    gc_err err = {0};
    int rc = store_user_find(e->store, key, u, &err);
    if (rc) {
        if (rc == GC_ENOTFOUND)
            http_reply_error(r, 404, "not_found", "worker", "no worker %s", key);
        else
            http_reply_err(r, &err);
        return false;
    }
    return true;
}

static void h_device_add(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *j = http_json_object(r);
    if (!j)
        return;
    const char *dev = json_string_value(json_object_get(j, "device_id"));
    json_t *jw = json_object_get(j, "worker");
    const char *crs = json_string_value(json_object_get(j, "crs"));
    const char *label = json_string_value(json_object_get(j, "label"));
    store_user u;
    gc_err err = {0};
    crs_def cd;
    char wk[200];
    if (json_is_string(jw) && json_string_length(jw) >= sizeof wk)
        jw = NULL;   /* no user has so long a name: refused below */
    if (json_is_integer(jw))
        snprintf(wk, sizeof wk, "%lld", (long long)json_integer_value(jw));
    else
        snprintf(wk, sizeof wk, "%s", json_is_string(jw) ? json_string_value(jw) : "");
    if (!dev || !*dev || strlen(dev) > 100) {
        http_reply_error(r, 400, "invalid", "device_id",
                         "device_id is required: the identifier the tracker sends (1 to 100 characters)");
    } else if (!wk[0]) {
        http_reply_error(r, 400, "invalid", "worker", "worker is required (a user id or name)");
    } else if (crs && crs_parse(crs, &cd, &err)) {
        http_reply_err(r, &err);
    } else if (crs && cd.kind == CRS_EPSG) {
        http_reply_error(r, 400, "invalid", "crs", "a tracker's crs is EPSG:4326, gcj02 or bd09");
    } else if (worker_of(e, r, wk, strlen(wk), &u)) {
        if (u.role != ROLE_WORKER) {
            http_reply_error(r, 400, "invalid", "worker", "user %s is a %s, not a worker", u.name,
                             role_name(u.role));
        } else if (store_device_put(e->store, dev, u.id, crs ? cd.name : NULL, label, &err)) {
            http_reply_err(r, &err);
        } else {
            osmand_device_changed(e->osmand, dev);
            http_reply_json(r, 201, json_pack("{s:s,s:I,s:s,s:s}", "device_id", dev, "user_id",
                                              (json_int_t)u.id, "worker", u.name, "crs",
                                              crs ? cd.name : "EPSG:4326"));
        }
    }
    json_decref(j);
}

static void h_devices(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *arr;
    gc_err err = {0};
    if (store_devices(e->store, &arr, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 200, json_pack("{s:o}", "devices", arr));
}

static int latest_cb(void *ud, const store_fix *f)
{
    json_t *m = ud;
    char k[32];
    snprintf(k, sizeof k, "%lld", (long long)f->user_id);
    json_t *o = json_pack("{s:I,s:[f,f]}", "t", (json_int_t)f->t, "coordinates", f->lon, f->lat);
    if (f->grid_id)
        json_object_set_new(o, "grid_id", json_string(f->grid_id));
    json_object_set_new(m, k, o);
    return 0;
}

static void h_workers(http_req *r, void *ud)
{
    api_env *e = ud;
    store *s = e->store;
    json_t *devs, *grids, *latest = json_object();
    gc_err err = {0};
    devs = grids = NULL;
    if (store_devices(s, &devs, &err) || store_worker_grids(s, 0, &grids, &err) ||
        store_fixes_latest(s, latest_cb, latest, &err)) {
        json_decref(latest);
        json_decref(devs);
        json_decref(grids);
        http_reply_err(r, &err);
        return;
    }
    json_t *out = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d)
    {
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(d, "user_id")));
        json_t *w = json_object_get(out, k);
        if (!w) {
            json_t *g = json_object_get(grids, k);
            w = json_pack("{s:O,s:O,s:[],s:o}", "id", json_object_get(d, "user_id"), "name",
                          json_object_get(d, "worker"), "devices", "grids",
                          g ? json_incref(g) : json_array());
            json_t *l = json_object_get(latest, k);
            json_object_set(w, "latest", l ? l : json_null());
            json_object_set_new(out, k, w);
        }
        json_array_append(json_object_get(w, "devices"), json_object_get(d, "device_id"));
    }
    json_t *arr = json_array();
    const char *k;
    json_t *w;
    json_object_foreach(out, k, w) json_array_append(arr, w);
    json_decref(out);
    json_decref(devs);
    json_decref(grids);
    json_decref(latest);
    http_reply_json(r, 200, json_pack("{s:o}", "workers", arr));
}

/* Whether a grid-level feature with this id exists. */
static int grid_exists(store *s, const char *fid, bool *yes, gc_err *err)
{
    store_layer l;
    *yes = false;
    if (store_layer_for_level(s, "grid", &l, err))
        return err->code == GC_ENOTFOUND ? 0 : err->code;
    free(l.fields_json);
    store_query q = {.layer = l.name, .fid = fid, .limit = 1};
    int64_t n = 0;
    int rc = store_features_query(s, &q, &n, NULL, NULL, err);
    *yes = n > 0;
    return rc;
}

static void h_grids_put(http_req *r, api_env *e, const store_user *u)
{
    json_t *j = http_json_object(r);
    if (!j)
        return;
    json_t *g = json_object_get(j, "grids");
    if (!json_is_array(g)) {
        http_reply_error(r, 400, "invalid", "grids", "grids must be an array of grid ids");
        json_decref(j);
        return;
    }
    size_t n = json_array_size(g), i;
    const char **ids = g_new0(const char *, n + 1);
    json_t *v;
    gc_err err = {0};
    json_array_foreach(g, i, v)
    {
        bool ok = false;
        if (!json_is_string(v)) {
            http_reply_error(r, 400, "invalid", "grids", "grids[%zu] is not a string", i);
            goto out;
        }
        if (grid_exists(e->store, json_string_value(v), &ok, &err)) {
            http_reply_err(r, &err);
            goto out;
        }
        if (!ok) {
            http_reply_error(r, 400, "invalid", "grids", "no grid %s in the grid layer",
                             json_string_value(v));
            goto out;
        }
        ids[i] = json_string_value(v);
    }
    if (store_worker_grids_set(e->store, u->id, ids, n, &err)) {
        http_reply_err(r, &err);
        goto out;
    }
    patrol_grids_changed(e->patrol, u->id, g);
    http_reply_json(r, 200, json_pack("{s:I,s:s,s:O}", "id", (json_int_t)u->id, "name", u->name,
                                      "grids", g));
out:
    g_free(ids);
    json_decref(j);
}

/* /api/workers/{id}/… */
static void h_worker_path(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *rest = r->path + strlen("/api/workers/");
    const char *slash = strchr(rest, '/');
    const char *what = slash ? slash + 1 : "";
    const gc_who me = r->who;
    store_user u;
    if (!worker_of(e, r, rest, slash ? (size_t)(slash - rest) : strlen(rest), &u))
        return;
    bool staff_view = me.role != ROLE_WORKER || me.id == u.id;
    if (!staff_view) {
        http_reply_error(r, 403, "forbidden", "worker", "a worker sees only their own track");
        return;
    }
    if (!strcmp(what, "grids") && r->method == HTTP_PUT) {
        if (!(me.role & (ROLE_ADMIN | ROLE_OPERATOR | ROLE_PLANNER)))
            http_reply_error(r, 403, "forbidden", "Authorization", "role %s may not assign grids",
                             role_name(me.role));
        else
            h_grids_put(r, e, &u);
    } else if (!strcmp(what, "grids") && r->method == HTTP_GET) {
        json_t *g;
        gc_err err = {0};
        if (store_worker_grids(e->store, u.id, &g, &err))
            http_reply_err(r, &err);
        else
            http_reply_json(r, 200, json_pack("{s:I,s:s,s:o}", "id", (json_int_t)u.id, "name",
                                              u.name, "grids", g));
    } else if (!strcmp(what, "track") && r->method == HTTP_GET) {
        workers_track_reply(e, r, &u);
    } else if (!strcmp(what, "coverage") && r->method == HTTP_GET) {
        workers_coverage_reply(e, r, &u);
    } else {
        http_reply_error(r, 404, "not_found", "path", "no resource at %s", r->path);
    }
}

static void h_positions(http_req *r, void *ud)
{
    api_env *e = ud;
    json_error_t je;
    json_t *items = json_loadb((const char *)r->body->data, r->body->len, 0, &je);
    if (!items) {
        http_reply_error(r, 400, "invalid", "body", "not JSON: %s (line %d)", je.text, je.line);
        return;
    }
    /* a worker may send only their own devices' fixes */
    osmand_submit_json(e->osmand, r, items, r->who.role == ROLE_WORKER ? r->who.id : 0);
    json_decref(items);
}

static void h_alerts(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *open = http_query(r, "open"), *since = http_query(r, "since");
    int64_t from = 0;
    if (since && !gc_time_parse(since, &from)) {
        http_reply_error(r, 400, "invalid", "since", "since must be a date or a time");
        return;
    }
    if (open && strcmp(open, "true") && strcmp(open, "false")) {
        http_reply_error(r, 400, "invalid", "open", "open must be true or false");
        return;
    }
    json_t *arr;
    gc_err err = {0};
    if (store_alerts(e->store, !open || !strcmp(open, "true"), from * 1000, &arr, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 200, json_pack("{s:o}", "alerts", arr));
}

void workers_api_register(http_server *s, api_env *e)
{
    const unsigned desk = ROLE_ADMIN | ROLE_OPERATOR;
    http_route(s, "POST", "/api/devices", desk, 0, h_device_add, e);
    http_route(s, "GET", "/api/devices", desk, 0, h_devices, e);
    http_route(s, "GET", "/api/workers", ROLE_STAFF, 0, h_workers, e);
    /* a worker reads only their own; grids are assigned by the desk and planners */
    http_route(s, "GET", "/api/workers/*", ROLE_STAFF, 0, h_worker_path, e);
    http_route(s, "PUT", "/api/workers/*", desk | ROLE_PLANNER, 0, h_worker_path, e);
    http_route(s, "POST", "/api/positions", ROLE_WORKER | ROLE_ADMIN, 16 << 20, h_positions, e);
    http_route(s, "GET", "/api/alerts", ROLE_STAFF, 0, h_alerts, e);
}
