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

#include "gridcc/address.h"
#include "gridcc/auth.h"
#include "gridcc/geotag.h"
#include "gridcc/incidents.h"
#include "gridcc/live.h"
#include "gridcc/tracker.h"
#include "gridcc/log.h"
#include "gridcc/ogc.h"

#define LOGIN_TTL_S (12 * 3600)

struct app {
    const app_opts *o;
    GMainLoop *loop;
    store *s;
    gc_index *ix;
    http_server *http;
    ogc_env ogc;
    auth_limiter *lim_user, *lim_peer;
    int64_t seen_seq;          /* change-log position already reflected */
    bool rebuilding, rebuild_again;
    int busy;                  /* work in flight on worker threads (logins, photos) */
    store_group *group;        /* group commit of small writes (reports) */
    bool stopping;             /* the loop has ended; shutting down */
    char *photo_dir;
    address_index *addr;       /* built on first use */
    guint deadline_timer;      /* fires at the earliest incident deadline */
    live *live;                /* the /live websocket bus */
    tracker *tracker;          /* the OsmAnd port, fixes, patrol alerts */
    guint live_idle;           /* a pull of new changes is scheduled */
    gint64 started;
};

const gc_index *app_index(app *a) { return a->ix; }
const char *app_photo_dir(app *a) { return a->photo_dir; }

const address_index *app_address_index(app *a)
{
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
store *app_store(app *a) { return a->s; }
store_group *app_group(app *a) { return a->group; }
void app_busy(app *a, int delta) { a->busy += delta; }

static unsigned role_bit(const char *role)
{
    if (!strcmp(role, "operator")) return ROLE_OPERATOR;
    if (!strcmp(role, "worker")) return ROLE_WORKER;
    if (!strcmp(role, "planner")) return ROLE_PLANNER;
    if (!strcmp(role, "admin")) return ROLE_ADMIN;
    if (!strcmp(role, "department")) return ROLE_DEPARTMENT;
    if (!strcmp(role, "resident")) return ROLE_RESIDENT;
    return 0;
}

bool app_authorize_user(app *a, http_req *r, unsigned roles, store_user *u)
{
    gc_err err = {0};
    if (auth_check_bearer(a->s, r->authorization[0] ? r->authorization : NULL, u, &err)) {
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"gridcc\"");
        http_reply_err(r, &err);
        return false;
    }
    if (!(role_bit(u->role) & roles)) {
        http_reply_error(r, 403, "forbidden", "Authorization",
                         "role %s may not do this", u->role);
        return false;
    }
    return true;
}

bool app_authorize(app *a, http_req *r, unsigned roles)
{
    store_user u;
    return app_authorize_user(a, r, roles, &u);
}

static bool ogc_authorize(void *ud, http_req *r, bool open)
{
    app *a = ud;
    if (open || (a->o->public_read && !r->authorization[0]))
        return true;
    return app_authorize(a, r, ROLE_ANY);
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

void app_incidents_changed(app *a)
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
    live_pull(a->live);
    return G_SOURCE_REMOVE;
}

/* After every commit on the loop's store: its changes go out once the
 * current callback is done. */
static void on_commit(void *ud)
{
    app *a = ud;
    if (!a->live_idle && a->live)
        /* at the sockets' priority: a busy loop never goes idle */
        a->live_idle = g_idle_add_full(G_PRIORITY_DEFAULT, live_pull_idle, a, NULL);
}

static bool live_auth(void *ud, const char *token, store_user *u, gc_err *err)
{
    app *a = ud;
    char hdr[600];
    snprintf(hdr, sizeof hdr, "Bearer %s", token);
    if (auth_check_bearer(a->s, hdr, u, err))
        return false;
    if (!(role_bit(u->role) & ROLE_STAFF)) {
        gc_fail(err, GC_EFORBIDDEN, "token", "role %s may not watch the live map", u->role);
        return false;
    }
    return true;
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

live *app_live(app *a) { return a->live; }
tracker *app_tracker(app *a) { return a->tracker; }
GMainLoop *app_loop(app *a) { return a->loop; }

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
    }
    if (sc.incidents_changed)   /* a CLI report or import: its deadlines count too */
        app_incidents_changed(a);
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
    live_get_stats(a->live, &lv);
    json_t *h =
        json_pack("{s:s,s:s,s:{s:s,s:s,s:i,s:I},s:{s:I,s:I,s:b},s:o,s:I}", "status", "ok",
                  "version", GRIDCC_VERSION, "store", "backend", "spatialite", "path",
                  store_path(a->s), "schema_version", store_schema_version(a->s), "last_seq",
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
    json_object_set_new(h, "osmand_port", json_integer(a->tracker ? tracker_port(a->tracker) : 0));
    http_reply_json(r, 200, h);
}

typedef struct login_job {
    app *a;
    http_req *r;
    store_user u;
    bool found, ok;
    char *password;
    char name[128], peer[64];
} login_job;

static void login_verify(GTask *t, gpointer src, gpointer data, GCancellable *c)
{
    login_job *j = data;
    j->ok = j->found && !j->u.disabled && auth_verify_password(j->u.pwhash, j->password);
    g_task_return_boolean(t, TRUE);
}

static void login_done(GObject *src, GAsyncResult *res, gpointer ud)
{
    login_job *j = ud;
    app *a = j->a;
    http_req *r = j->r;
    int64_t now = time(NULL);
    app_busy(a, -1);
    if (!j->ok) {
        auth_limiter_fail(a->lim_user, j->name, now);
        auth_limiter_fail(a->lim_peer, j->peer, now);
        log_warn("auth", "login failed user=%s peer=%s", j->name, j->peer);
        http_reply_error(r, 401, "unauthorized", "password", "wrong username or password");
    } else if (http_gone(r)) {
        log_info("auth", "login verified but the client left user=%s peer=%s", j->name, j->peer);
    } else {
        auth_limiter_reset(a->lim_user, j->name);
        char token[AUTH_TOKEN_CHARS];
        gc_err err = {0};
        if (auth_issue_token(a->s, j->u.id, LOGIN_TTL_S, "login", token, &err)) {
            http_reply_err(r, &err);
        } else {
            log_info("auth", "login user=%s role=%s peer=%s", j->u.name, j->u.role, j->peer);
            http_reply_json(r, 200, json_pack("{s:s,s:s,s:i,s:{s:s,s:s}}", "token", token,
                                              "token_type", "Bearer", "expires_in", LOGIN_TTL_S,
                                              "user", "name", j->u.name, "role", j->u.role));
        }
    }
    http_complete(r);
    memset(j->password, 0, strlen(j->password));
    g_free(j->password);
    memset(&j->u, 0, sizeof j->u);
    g_free(j);
}

static void h_login(http_req *r, void *ud)
{
    app *a = ud;
    json_t *j = http_json_object(r);
    if (!j)
        return;
    json_t *jn = json_object_get(j, "username");
    if (!jn)
        jn = json_object_get(j, "name");
    json_t *jp = json_object_get(j, "password");
    if (!json_is_string(jn) || !json_string_length(jn)) {
        json_decref(j);
        http_reply_error(r, 400, "invalid", "username", "username is required (a string)");
        return;
    }
    if (!json_is_string(jp)) {
        json_decref(j);
        http_reply_error(r, 400, "invalid", "password", "password is required (a string)");
        return;
    }
    char name[128];
    snprintf(name, sizeof name, "%s", json_string_value(jn));
    int64_t now = time(NULL);
    int wait = auth_limiter_check(a->lim_user, name, now);
    int wait2 = auth_limiter_check(a->lim_peer, r->peer, now);
    if (wait2 > wait)
        wait = wait2;
    if (wait) {
        json_decref(j);
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(r, "Retry-After", ra);
        log_warn("auth", "login refused: too many failures user=%s peer=%s", name, r->peer);
        http_reply_error(r, 429, "rate_limited", "username",
                         "too many failed logins; try again in %d s", wait);
        return;
    }
    /* argon2id takes ~0.1 s of a core by design: verify on a worker thread,
     * answer from the loop when it is done */
    login_job *job = g_new0(login_job, 1);
    job->a = a;
    job->r = r;
    job->found = store_user_get(a->s, name, &job->u, NULL) == 0;
    job->password = g_strdup(json_string_value(jp));
    snprintf(job->name, sizeof job->name, "%s", name);
    snprintf(job->peer, sizeof job->peer, "%s", r->peer);
    json_decref(j);
    http_defer(r);
    app_busy(a, +1);
    GTask *t = g_task_new(NULL, NULL, login_done, job);
    g_task_set_task_data(t, job, NULL);
    g_task_run_in_thread(t, login_verify);
    g_object_unref(t);
}

static void h_me(http_req *r, void *ud)
{
    app *a = ud;
    store_user u;
    if (!app_authorize_user(a, r, ROLE_ANY, &u))
        return;
    json_t *me = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)u.id, "name", u.name, "role", u.role);
    if (u.department[0])
        json_object_set_new(me, "department", json_string(u.department));
    http_reply_json(r, 200, me);
}

static void h_users_add(http_req *r, void *ud)
{
    app *a = ud;
    if (!app_authorize(a, r, ROLE_ADMIN))
        return;
    json_t *j = http_json_object(r);
    if (!j)
        return;
    const char *name = json_string_value(json_object_get(j, "username"));
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    const char *dept = json_string_value(json_object_get(j, "department"));
    char hash[256] = "";
    gc_err err = {0};
    int64_t uid;
    char token[AUTH_TOKEN_CHARS];
    if (!name || !*name || strlen(name) > 64)
        http_reply_error(r, 400, "invalid", "username", "username: 1 to 64 characters");
    else if (!role || !auth_role_valid(role))
        http_reply_error(r, 400, "invalid", "role",
                         "role must be operator, worker, planner, admin, department or resident");
    else if ((strcmp(role, "department") == 0) != (dept && *dept))
        http_reply_error(r, 400, "invalid", "department",
                         "department is required for role department, and only for it");
    else if (pw && auth_hash_password(pw, hash, &err))
        http_reply_err(r, &err);
    else if (store_user_add(a->s, name, role, dept, hash[0] ? hash : NULL, &uid, &err) ||
             auth_issue_token(a->s, uid, 0, "api", token, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 201, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)uid, "username",
                                          name, "role", role, "token", token));
    json_decref(j);
}

static gboolean on_signal(gpointer ud)
{
    app *a = ud;
    log_info("app", "signal received; stopping");
    g_main_loop_quit(a->loop);
    return G_SOURCE_REMOVE;
}

int app_serve(const app_opts *o)
{
    app a = {.o = o, .started = g_get_monotonic_time()};
    gc_err err = {0};
    if (store_open(o->db, &a.s, &err)) {
        log_error("app", "%s", err.msg);
        return 1;
    }
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
    a.loop = g_main_loop_new(NULL, FALSE);
    a.lim_user = auth_limiter_new(5, 900);
    a.lim_peer = auth_limiter_new(20, 900);
    http_limits lim = {.max_body = 1 << 20,
                       .idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 30,
                       .max_conns_per_addr = o->max_conns_per_addr};
    a.http = http_server_new(a.loop, o->bind, o->port, &lim, &err);
    if (!a.http) {
        log_error("http", "%s", err.msg);
        index_free(a.ix);
        store_close(a.s);
        g_main_loop_unref(a.loop);
        return 1;
    }
    a.group = store_group_new(a.s);
    a.live = live_new(a.http, a.s, &o->live, live_auth, &a);
    store_on_commit(a.s, on_commit, &a);
    tracker_opts to = o->tracker;
    if (!to.bind)
        to.bind = o->bind;
    a.tracker = tracker_new(&a, &to, &err);
    if (!a.tracker) {
        log_error("tracker", "%s", err.msg);
        store_on_commit(a.s, NULL, NULL);
        http_server_free(a.http);
        live_free(a.live);
        store_group_free(a.group);
        index_free(a.ix);
        store_close(a.s);
        g_main_loop_unref(a.loop);
        return 1;
    }
    workers_api_register(a.http, &a);
    http_route(a.http, "GET", "/api/health", 0, h_health, &a);
    http_route(a.http, "POST", "/api/login", 0, h_login, &a);
    http_route(a.http, "GET", "/api/me", 0, h_me, &a);
    http_route(a.http, "POST", "/api/users", 0, h_users_add, &a);
    geotag_api_register(a.http, &a);
    incidents_api_register(a.http, &a);
    open311_register(a.http, &a);
    a.ogc = (ogc_env){.store = a.s, .authorize = ogc_authorize, .ud = &a};
    ogc_register(a.http, &a.ogc);

    a.photo_dir = g_strconcat(o->db, ".photos", NULL);
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
    tracker_stop(a.tracker);   /* no new fixes from here on */
    http_server_free(a.http);
    tracker_free(a.tracker);   /* fixes still queued are written */
    a.tracker = NULL;
    /* a rebuild, login or photo check in flight completes on the loop */
    while (a.rebuilding || a.busy)
        g_main_context_iteration(NULL, TRUE);
    store_group_free(a.group);   /* what is queued is committed, not dropped */
    store_on_commit(a.s, NULL, NULL);
    if (a.live_idle)
        g_source_remove(a.live_idle);
    live_free(a.live);
    auth_limiter_free(a.lim_user);
    auth_limiter_free(a.lim_peer);
    index_free(a.ix);
    store_close(a.s);
    g_free(a.photo_dir);
    address_index_free(a.addr);
    g_main_loop_unref(a.loop);
    log_info("app", "stopped");
    return 0;
}
