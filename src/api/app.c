/* app: the daemon. Opens the store, builds the index, serves HTTP on one GLib
 * main loop. Imports may happen in another process (gridcc import): a timer
 * notices another connection's commits (PRAGMA data_version), reads the
 * change log for layer changes, and rebuilds the index in a worker thread
 * (GTask) with its own store connection; the new index is swapped in on the
 * loop, so requests never see a half-built one. */
#include "gridcc/app.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "web_api.h"
#include "gridcc/address.h"
#include "gridcc/cameras.h"
#include "gridcc/geotag.h"
#include "gridcc/incidents.h"
#include "gridcc/log.h"
#include "gridcc/tiles.h"
#include "gridcc/video.h"
#include "osmand.h"

typedef struct app {
    const app_opts *o;
    GMainLoop *loop;
    store *s;
    gc_index *ix;
    http_server *http;
    api_env env;               /* what the HTTP faces are handed */
    int64_t seen_seq;          /* change-log position already reflected */
    bool rebuilding, rebuild_again;
    bool stopping;             /* the loop has ended; shutting down */
    char *photo_dir, *media_dir;
    incident_media *media;     /* the footage of the cameras that saw a case */
    store_basemap *basemap;    /* serve --basemap; NULL: none */
    address_index *addr;       /* built on first use */
    guint deadline_timer;      /* fires at the earliest incident deadline */
    guint live_idle;           /* a pull of new changes is scheduled */
    guint cams_idle;           /* a look at the change log for camera edits is scheduled */
    int64_t cams_seq;          /* camera changes up to here are in the video engine */
    gint64 started;
} app;

static const address_index *app_addresses(api_env *e)
{
    app *a = e->daemon;
    if (!a->addr) {
        gc_err err = {0};
        gint64 t0 = g_get_monotonic_time();
        a->addr = address_index_build(a->s, &err);
        if (!a->addr)
            log_error("address", "%s", err.msg);
        else
            log_info("address", "built buildings=%zu ms=%.0f", address_index_count(a->addr),
                     (double)(g_get_monotonic_time() - t0) / 1000.0);
    }
    return a->addr;
}
/* ---- index ---- */

static void rebuild_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    const char *path = data;
    store *s;
    gc_err err = {0};
    if (store_open(path, &s, &err)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    gint64 t0 = g_get_monotonic_time();
    gc_index *ix = geotag_build_index(s, &err);
    store_close(s);
    if (!ix) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    log_info("index", "rebuilt features=%zu bytes=%zu ms=%.0f", index_feature_count(ix),
             index_memory_bytes(ix), (double)(g_get_monotonic_time() - t0) / 1000.0);
    g_task_return_pointer(task, ix, (GDestroyNotify)index_free);
}

static void start_rebuild(app *a);

static void rebuild_done(GObject *src, GAsyncResult *res, gpointer ud)
{
    app *a = ud;
    GError *e = NULL;
    gc_index *ix = g_task_propagate_pointer(G_TASK(res), &e);
    a->rebuilding = false;
    if (ix) {
        gc_index *old = a->ix;
        a->ix = ix;   /* handlers run on this loop: none holds the old one now */
        a->env.index = ix;
        index_free(old);
        address_index_free(a->addr);   /* rebuilt from the new layers on next use */
        a->addr = NULL;
    } else {
        log_error("index", "rebuild failed: %s", e ? e->message : "?");
        g_clear_error(&e);
    }
    if (a->rebuild_again) {
        a->rebuild_again = false;
        start_rebuild(a);
    }
}

static void start_rebuild(app *a)
{
    if (a->rebuilding) {
        a->rebuild_again = true;
        return;
    }
    a->rebuilding = true;
    GTask *t = g_task_new(NULL, NULL, rebuild_done, a);
    g_task_set_task_data(t, g_strdup(store_path(a->s)), g_free);
    g_task_run_in_thread(t, rebuild_thread);
    g_object_unref(t);
}

/* ---- deadlines ----
 * One timer, armed for the earliest deadline of any open step (and at least
 * once a minute, so a wall-clock jump is noticed). When it fires, every due
 * case escalates once, in its own transaction; a case escalated by someone
 * else meanwhile is left alone (the update is conditional on its deadline). */

#define DEADLINE_RECHECK_MS 60000

static gboolean on_deadline(gpointer ud);

static void app_incidents_changed(app *a)
{
    if (a->stopping)   /* work finishing during shutdown arms nothing */
        return;
    if (a->deadline_timer)
        g_source_remove(a->deadline_timer);
    int64_t ms = incident_timer_ms(store_incidents_next_deadline(a->s),
                                   g_get_real_time() / 1000, DEADLINE_RECHECK_MS);
    /* a deadline in the same second fires just after it, not just before */
    a->deadline_timer = g_timeout_add((guint)ms + (ms < DEADLINE_RECHECK_MS ? 5 : 0), on_deadline, a);
}

static void env_incidents_changed(api_env *e) { app_incidents_changed(e->daemon); }

static gboolean on_deadline(gpointer ud)
{
    app *a = ud;
    a->deadline_timer = 0;
    gc_err err = {0};
    int n = incident_escalate_due(a->s, (int64_t)(g_get_real_time() / 1000000), &err);
    if (n < 0)
        log_error("incidents", "escalation: %s", err.msg);
    app_incidents_changed(a);
    return G_SOURCE_REMOVE;
}

typedef struct scan {
    bool layers_changed, incidents_changed;
    int64_t last;
} scan;

static int scan_change(void *ud, const store_change *c)
{
    scan *sc = ud;
    if (!strcmp(c->topic, "layers"))
        sc->layers_changed = true;
    if (!strcmp(c->topic, "incidents") || !strcmp(c->topic, "time_limits"))
        sc->incidents_changed = true;
    sc->last = c->seq;
    return 0;
}

/* ---- the live bus ---- */

static gboolean live_pull_idle(gpointer ud)
{
    app *a = ud;
    a->live_idle = 0;
    live_pull(a->env.live);
    return G_SOURCE_REMOVE;
}

/* ---- cameras ----
 * The registry (the store) says which cameras exist; the video engine runs
 * them. Every camera change, whoever made it (the API on this loop, or
 * gridcc cameras import in another process), is a change-log row of topic
 * "cameras": the engine is told from there, so no writer can forget it. The
 * engine's state changes go back into the store, and so into the change log
 * and the map. */

static void on_video_state(void *ud, const char *id, const char *state, const char *reason)
{
    app *a = ud;
    gc_err err = {0};
    if (store_camera_state_set(a->s, id, state, reason, &err) && err.code != GC_ENOTFOUND)
        log_warn("video", "camera state not stored id=%s: %s", id, err.msg);
}

static int camera_start(void *ud, const store_camera *c)
{
    app *a = ud;
    gc_err err = {0};
    if (video_camera_set(a->env.video,
                         &(video_camera){.id = c->id, .url = c->url, .transport = c->transport},
                         &err))
        log_warn("video", "camera not started id=%s: %s", c->id, err.msg);
    return 0;
}

static void camera_apply(app *a, const char *id)
{
    store_camera c;
    gc_err err = {0};
    if (store_camera_get(a->s, id, &c, &err)) {
        if (err.code == GC_ENOTFOUND)
            video_camera_remove(a->env.video, id);
        else
            log_error("video", "camera %s unread: %s", id, err.msg);
        return;
    }
    camera_start(a, &c);
}

/* A camera's change goes out on /live with the grid it stands in, from the
 * index of the moment (the log cannot keep it: grids get re-drawn); a
 * deletion has no place. */
static bool live_decorate(void *ud, const char *topic, json_t *data)
{
    app *a = ud;
    json_t *p = json_object_get(data, "properties");
    json_t *lon = json_object_get(p, "lon"), *lat = json_object_get(p, "lat");
    if (strcmp(topic, "cameras") || !json_is_number(lon) || !json_is_number(lat))
        return false;
    cameras_place(a->env.index, json_number_value(lon), json_number_value(lat), p);
    return true;
}

static int cams_change(void *ud, const store_change *c)
{
    GPtrArray *ids = ud;
    if (!strcmp(c->topic, "cameras") && c->id)
        g_ptr_array_add(ids, g_strdup(c->id));
    return 0;
}

static gboolean cams_sync(gpointer ud)
{
    app *a = ud;
    a->cams_idle = 0;
    if (!a->env.video)
        return G_SOURCE_REMOVE;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    int64_t last = store_last_seq(a->s);
    store_changes_since(a->s, a->cams_seq, 0, cams_change, ids, NULL);
    a->cams_seq = last;
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < ids->len; i++) {
        const char *id = g_ptr_array_index(ids, i);
        if (g_hash_table_add(seen, (gpointer)id))
            camera_apply(a, id);
    }
    g_hash_table_destroy(seen);
    g_ptr_array_free(ids, TRUE);
    return G_SOURCE_REMOVE;
}

/* After every commit on the loop's store: its changes go out once the
 * current callback is done. */
static void on_commit(void *ud)
{
    app *a = ud;
    if (!a->cams_idle && a->env.video && !a->stopping)
        a->cams_idle = g_idle_add(cams_sync, a);
    if (!a->live_idle && a->env.live)
        /* at the sockets' priority: a busy loop never goes idle */
        a->live_idle = g_idle_add_full(G_PRIORITY_DEFAULT, live_pull_idle, a, NULL);
}

static bool live_auth(void *ud, const char *token, store_user *u, gc_err *err)
{
    app *a = ud;
    return api_check_token(&a->env, token, ROLE_STAFF, u, err);
}

/* The change log keeps a week, and never fewer than its newest 100,000
 * rows; a live client resuming from before that is told to resync. */
#define LOG_KEEP_S (7 * 24 * 3600)
#define LOG_KEEP_MIN 100000

static gboolean prune_log(gpointer ud)
{
    app *a = ud;
    int64_t n = 0;
    gc_err err = {0};
    if (store_changes_prune(a->s, LOG_KEEP_S, LOG_KEEP_MIN, &n, &err))
        log_error("store", "pruning the change log: %s", err.msg);
    else if (n)
        log_info("store", "change log pruned rows=%lld first_seq=%lld", (long long)n,
                 (long long)store_first_seq(a->s));
    return G_SOURCE_CONTINUE;
}


static gboolean poll_store(gpointer ud)
{
    app *a = ud;
    if (!store_changed_elsewhere(a->s))
        return G_SOURCE_CONTINUE;
    on_commit(a);   /* another process wrote: its changes go out too */
    scan sc = {false, false, a->seen_seq};
    store_changes_since(a->s, a->seen_seq, 0, scan_change, &sc, NULL);
    a->seen_seq = sc.last;
    if (sc.layers_changed) {
        log_info("index", "layers changed in the store; rebuilding off the loop");
        start_rebuild(a);
        tiles_api_layers_changed(&a->env);
    }
    if (sc.incidents_changed)   /* a CLI report or import: its deadlines count too */
        app_incidents_changed(a);
    if (!a->cams_idle && a->env.video)
        a->cams_idle = g_idle_add(cams_sync, a);
    return G_SOURCE_CONTINUE;
}

/* ---- handlers ---- */

static void h_health(http_req *r, void *ud)
{
    app *a = ud;
    store_layer *ls;
    size_t n;
    gc_err err = {0};
    if (store_layers_list(a->s, &ls, &n, &err)) {
        http_reply_json(r, 503, json_pack("{s:s,s:s}", "status", "error", "store", err.msg));
        return;
    }
    json_t *layers = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(layers, ls[i].name,
                            json_pack("{s:s,s:I,s:i}", "level", ls[i].level, "count",
                                      (json_int_t)ls[i].count, "version", ls[i].version));
    store_layers_free(ls, n);
    live_stats lv;
    live_get_stats(a->env.live, &lv);
    json_t *h =
        json_pack("{s:s,s:s,s:{s:s,s:i,s:I},s:{s:I,s:I,s:b},s:o,s:I}", "status", "ok",
                  "version", GRIDCC_VERSION, "store", "backend", "spatialite", "schema_version",
                  store_schema_version(a->s), "last_seq",
                  (json_int_t)store_last_seq(a->s), "index", "features",
                  (json_int_t)(a->ix ? index_feature_count(a->ix) : 0), "bytes",
                  (json_int_t)(a->ix ? index_memory_bytes(a->ix) : 0), "rebuilding",
                  a->rebuilding, "layers", layers, "uptime_s",
                  (json_int_t)((g_get_monotonic_time() - a->started) / 1000000));
    json_object_set_new(h, "live", json_pack("{s:I,s:I,s:I,s:I,s:I}", "clients",
                                             (json_int_t)lv.clients, "subscribed",
                                             (json_int_t)lv.subscribed, "frames",
                                             (json_int_t)lv.frames, "items", (json_int_t)lv.items,
                                             "kicked", (json_int_t)lv.kicked));
    tiles_stats ts;
    tiles_get_stats(a->env.tiles, &ts);
    /* whether GET /basemap.json has something: the page asks only then */
    json_object_set_new(h, "basemap", json_boolean(a->basemap != NULL));
    json_object_set_new(h, "tiles", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "cached",
                                              (json_int_t)ts.tiles, "bytes", (json_int_t)ts.bytes,
                                              "layers", (json_int_t)ts.layers, "hits",
                                              (json_int_t)ts.hits, "made",
                                              (json_int_t)ts.generated, "evicted",
                                              (json_int_t)ts.evicted));
    json_object_set_new(h, "osmand_port", json_integer(a->env.osmand ? osmand_port(a->env.osmand) : 0));
    http_reply_json(r, 200, h);
}

static gboolean on_signal(gpointer ud)
{
    app *a = ud;
    log_info("app", "signal received; stopping");
    g_main_loop_quit(a->loop);
    return G_SOURCE_REMOVE;
}

/* GET /api/routes (admin): every route and who may call it, the table the
 * route test checks against README. */
static void add_route(void *ud, const char *method, const char *pattern, unsigned roles)
{
    char buf[128];
    json_t *who = json_array();
    if (roles == HTTP_PUBLIC) {
        json_array_append_new(who, json_string("public"));
    } else {
        role_list(roles & ROLE_ANY, buf, sizeof buf);
        char **names = g_strsplit(buf, ", ", -1);
        for (char **n = names; *n; n++)
            if (**n)
                json_array_append_new(who, json_string(*n));
        g_strfreev(names);
        if (roles & HTTP_OPTIONAL)
            json_array_append_new(who, json_string("anonymous"));
    }
    json_array_append_new(ud, json_pack("{s:s,s:s,s:o}", "method", method, "path", pattern,
                                        "roles", who));
}

static void h_routes(http_req *r, void *ud)
{
    app *a = ud;
    json_t *arr = json_array();
    http_routes_foreach(a->http, add_route, arr);
    http_reply_json(r, 200, json_pack("{s:o}", "routes", arr));
}

static void app_free_parts(app *a)
{
    store_on_commit(a->s, NULL, NULL);
    if (a->live_idle)
        g_source_remove(a->live_idle);
    if (a->cams_idle)
        g_source_remove(a->cams_idle);
    patrol_free(a->env.patrol);
    live_free(a->env.live);
    store_group_free(a->env.group);   /* what is queued is committed, not dropped */
    auth_limiter_free(a->env.lim_user);
    auth_limiter_free(a->env.lim_peer);
    index_free(a->ix);
    tiles_free(a->env.tiles);
    address_index_free(a->addr);
    g_free(a->photo_dir);
    g_free(a->media_dir);
    store_basemap_close(a->basemap);
    store_close(a->s);
    g_main_loop_unref(a->loop);
}

int app_serve(const app_opts *o)
{
    app a = {.o = o, .started = g_get_monotonic_time()};
    gc_err err = {0};
    if (store_open(o->db, &a.s, &err)) {
        log_error("app", "%s", err.msg);
        return 1;
    }
    /* the loop writes on this connection: every request waits while a write
     * waits for a lock another process holds, so it gives up sooner and the
     * writer hears 503 with Retry-After (the group commit does not block the
     * loop: it tries again on a timer) */
    store_set_busy_timeout(a.s, 2000);
    gint64 t0 = g_get_monotonic_time();
    a.ix = geotag_build_index(a.s, &err);
    if (!a.ix) {
        log_error("index", "%s", err.msg);
        store_close(a.s);
        return 1;
    }
    log_info("index", "built features=%zu bytes=%zu ms=%.0f", index_feature_count(a.ix),
             index_memory_bytes(a.ix), (double)(g_get_monotonic_time() - t0) / 1000.0);
    a.seen_seq = store_last_seq(a.s);
    store_changed_elsewhere(a.s);
    tiles *tl;
    tiles_opts tlo = {.db_path = o->db, .cache_bytes = (size_t)o->tile_cache_mb << 20,
                      .minzoom = o->tile_minzoom};
    if (tiles_new(&tlo, &tl, &err)) {
        log_error("tiles", "%s%s", !strcmp(err.field, "minzoom") ? "--tile-minzoom: " : "",
                  err.msg);
        index_free(a.ix);
        store_close(a.s);
        return 1;
    }
    if (o->basemap && store_basemap_open(o->basemap, &a.basemap, &err)) {
        log_error("basemap", "--basemap: %s", err.msg);
        tiles_free(tl);
        index_free(a.ix);
        store_close(a.s);
        return 1;
    }
    if (a.basemap) {
        const store_basemap_info *bi = store_basemap_get_info(a.basemap);
        log_info("basemap", "serving file=%s format=%s zoom=%d-%d", o->basemap, bi->format,
                 bi->minzoom, bi->maxzoom);
    }
    a.loop = g_main_loop_new(NULL, FALSE);
    a.photo_dir = g_strconcat(o->db, ".photos", NULL);
    a.media_dir = g_strconcat(o->db, ".media", NULL);
    a.env = (api_env){.store = a.s,
                      .index = a.ix,
                      .tiles = tl,
                      .photo_dir = a.photo_dir,
                      .media_dir = a.media_dir,
                      .public_read = o->public_read,
                      .lim_user = auth_limiter_new(5, 900),
                      .lim_peer = auth_limiter_new(20, 900),
                      .addresses = app_addresses,
                      .incidents_changed = env_incidents_changed,
                      .daemon = &a};
    http_limits lim = {.max_body = 1 << 20,
                       .idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 30,
                       .max_conns_per_addr = o->max_conns_per_addr};
    a.http = http_server_new(a.loop, o->bind, o->port, &lim, &err);
    if (!a.http) {
        log_error("http", "%s", err.msg);
        app_free_parts(&a);
        return 1;
    }
    http_server_authorize(a.http, api_authorize, &a.env);
    a.env.group = store_group_new(a.s);
    a.env.live = live_new(a.http, a.s, &o->live, live_auth, &a);
    live_set_decorate(a.env.live, live_decorate, &a);
    store_on_commit(a.s, on_commit, &a);
    tracker_opts to = o->tracker;
    if (!to.bind)
        to.bind = o->bind;
    patrol_opts po = {.outside_min = o->tracker.outside_min, .silent_min = o->tracker.silent_min};
    a.env.patrol = patrol_new(a.s, a.env.live, &po);
    a.env.osmand = osmand_new(&a.env, a.loop, &to, &err);
    if (!a.env.osmand) {
        log_error("tracker", "%s", err.msg);
        http_server_free(a.http);
        app_free_parts(&a);
        return 1;
    }
    log_info("patrol", "alerts: outside %g min, silent %g min", po.outside_min ? po.outside_min : 10,
             po.silent_min ? po.silent_min : 15);
    /* first: the page answers only what no other route takes */
    web_api_register(a.http, o->web_dir ? o->web_dir : GRIDCC_WEB_DIR,
                     o->glyphs_dir ? o->glyphs_dir : GRIDCC_GLYPHS_DIR);
    http_route(a.http, "GET", "/api/health", HTTP_PUBLIC, 0, h_health, &a);
    http_route(a.http, "GET", "/api/routes", ROLE_ADMIN, 0, h_routes, &a);
    auth_api_register(a.http, &a.env);
    workers_api_register(a.http, &a.env);
    history_api_register(a.http, &a.env);
    geotag_api_register(a.http, &a.env);
    incidents_api_register(a.http, &a.env);
    cameras_api_register(a.http, &a.env);
    video_api_register(a.http, &a.env);
    catalogue_api_register(a.http, &a.env);
    open311_register(a.http, &a.env);
    ogc_register(a.http, &a.env);
    units_api_register(a.http, &a.env);
    tiles_api_register(a.http, &a.env);
    basemap_api_register(a.http, &a.env, a.basemap);

    /* every camera of the registry is ingested from the start, whoever
     * watches; one that is down now is retried like any other */
    video_events vev = {.state = on_video_state};
    a.cams_seq = store_last_seq(a.s);
    video_opts vo = {.ingest = o->video_ingest};
    a.env.video = video_new(NULL, &vo, &vev, &a, &err);
    if (!a.env.video)
        log_error("video", "no camera will be ingested: %s", err.msg);
    else
        store_cameras_list(a.s, NULL, 0, 0, NULL, camera_start, &a, &err);
    /* 10 s before a case and 10 s after it, within the ring's 30 s */
    a.media = incident_media_new(&a.env, a.media_dir, 10, 10);

    /* cases that fell due while the daemon was down escalate now, once */
    int due = incident_escalate_due(a.s, (int64_t)time(NULL), &err);
    if (due > 0)
        log_warn("incidents", "escalated overdue cases at start count=%d", due);
    app_incidents_changed(&a);
    guint poll = g_timeout_add(250, poll_store, &a);
    prune_log(&a);
    guint prune = g_timeout_add_seconds(3600, prune_log, &a);
    g_unix_signal_add(SIGINT, on_signal, &a);
    g_unix_signal_add(SIGTERM, on_signal, &a);
    signal(SIGPIPE, SIG_IGN);
    log_info("app", "serving http://%s:%d db=%s public_read=%d", o->bind,
             http_server_port(a.http), o->db, o->public_read);
    g_main_loop_run(a.loop);

    g_source_remove(poll);
    g_source_remove(prune);
    a.stopping = true;
    if (a.deadline_timer)
        g_source_remove(a.deadline_timer);
    a.deadline_timer = 0;
    osmand_stop(a.env.osmand);   /* no new fixes from here on */
    patrol_stop(a.env.patrol);
    /* before the engine: footage answered from here on is not recorded */
    incident_media_free(a.media);
    /* before the server: viewers are told, snapshots in flight answered */
    video_free(a.env.video);
    a.env.video = NULL;
    http_server_free(a.http);
    osmand_free(a.env.osmand);   /* fixes still queued are written */
    a.env.osmand = NULL;
    /* a rebuild, login or photo check in flight completes on the loop */
    while (a.rebuilding || a.env.busy)
        g_main_context_iteration(NULL, TRUE);
    app_free_parts(&a);
    log_info("app", "stopped");
    return 0;
}
