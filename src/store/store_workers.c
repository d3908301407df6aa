/* store_workers: grid workers' trackers, their fixes, assigned grids and
 * alerts (migration 007). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store_priv.h"

int store_device_put(store *s, const char *device_id, int64_t user_id, const char *crs,
                     const char *label, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "INSERT INTO devices(device_id, user_id, crs, label, created_at) VALUES "
           "(?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now')) ON CONFLICT(device_id) DO UPDATE "
           "SET user_id = excluded.user_id, crs = excluded.crs, "
           "label = coalesce(excluded.label, label), disabled = 0");
    if (!st)
        return store_db_fail(s, err, "devices");
    sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_text(st, 3, crs && *crs ? crs : "EPSG:4326", -1, SQLITE_STATIC);
    if (label)
        sqlite3_bind_text(st, 4, label, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "devices");
}

int store_device_get(store *s, const char *device_id, store_device *out, gc_err *err)
{
    sqlite3_stmt *st =
        store_stmt(s, "SELECT device_id, user_id, crs, disabled FROM devices WHERE device_id = ?");
    if (!st)
        return store_db_fail(s, err, "devices");
    sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->device_id, sizeof out->device_id, "%s", sqlite3_column_text(st, 0));
        out->user_id = sqlite3_column_int64(st, 1);
        snprintf(out->crs, sizeof out->crs, "%s", sqlite3_column_text(st, 2));
        out->disabled = sqlite3_column_int(st, 3) != 0;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? gc_fail(err, GC_ENOTFOUND, "id", "device %s is not registered",
                                       device_id)
                             : store_db_fail(s, err, "devices");
}

/* Rows of a query as JSON objects keyed by column name (NULL columns left out). */
static int rows_json(store *s, sqlite3_stmt *st, json_t *arr, const char *what, gc_err *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            json_t *v = NULL;
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
            case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
            case SQLITE_TEXT: {
                const char *name = sqlite3_column_name(st, i), *t = (const char *)sqlite3_column_text(st, i);
                v = !strcmp(name, "data") ? json_loads(t, 0, NULL) : json_string(t);
                break;
            }
            default: break;
            }
            if (v)
                json_object_set_new(o, sqlite3_column_name(st, i), v);
        }
        json_array_append_new(arr, o);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, what);
}

int store_devices(store *s, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "SELECT d.device_id, d.user_id, u.name AS worker, d.crs, d.label, d.disabled, "
           "d.created_at FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.device_id");
    if (!st)
        return store_db_fail(s, err, "devices");
    *arr = json_array();
    return rows_json(s, st, *arr, "devices", err);
}

int store_worker_grids_set(store *s, int64_t user_id, const char *const *grids, size_t n,
                           gc_err *err)
{
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *del = store_stmt(s, "DELETE FROM worker_grids WHERE user_id = ?");
    sqlite3_stmt *ins = store_stmt(s, "INSERT OR IGNORE INTO worker_grids(user_id, grid_id) VALUES (?, ?)");
    int rc = del && ins ? 0 : store_db_fail(s, err, "worker grids");
    if (!rc) {
        sqlite3_bind_int64(del, 1, user_id);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = store_db_fail(s, err, "worker grids");
        sqlite3_reset(del);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_bind_int64(ins, 1, user_id);
        sqlite3_bind_text(ins, 2, grids[i], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = store_db_fail(s, err, "worker grids");
        sqlite3_reset(ins);
    }
    if (!rc) {
        json_t *g = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(g, json_string(grids[i]));
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)user_id);
        json_t *d = json_pack("{s:I,s:o}", "user_id", (json_int_t)user_id, "grids", g);
        rc = store_change_append(s, "workers", id, d, err);
        json_decref(d);
    }
    if (rc || store_commit(s, err)) {
        store_rollback(s);
        return rc ? rc : GC_EIO;
    }
    return 0;
}

int store_worker_grids(store *s, int64_t user_id, json_t **out, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, user_id ? "SELECT user_id, grid_id FROM worker_grids "
                                               "WHERE user_id = ? ORDER BY grid_id"
                                             : "SELECT user_id, grid_id FROM worker_grids "
                                               "ORDER BY user_id, grid_id");
    if (!st)
        return store_db_fail(s, err, "worker grids");
    if (user_id)
        sqlite3_bind_int64(st, 1, user_id);
    *out = user_id ? json_array() : json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *g = json_string((const char *)sqlite3_column_text(st, 1));
        if (user_id) {
            json_array_append_new(*out, g);
            continue;
        }
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)sqlite3_column_int64(st, 0));
        json_t *a = json_object_get(*out, k);
        if (!a)
            json_object_set_new(*out, k, a = json_array());
        json_array_append_new(a, g);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    json_decref(*out);
    *out = NULL;
    return store_db_fail(s, err, "worker grids");
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_fixes_insert(store *s, const store_fix *f, size_t n, bool *fresh, gc_err *err)
{
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *st = store_stmt(
        s, "INSERT OR IGNORE INTO positions(user_id, t, lon, lat, speed, bearing, altitude, "
           "accuracy, batt, sos, device_id, source, grid_id, community_id, street_id, "
           "received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    int rc = st ? 0 : store_db_fail(s, err, "positions");
    for (size_t i = 0; !rc && i < n; i++) {
        const store_fix *x = &f[i];
        sqlite3_bind_int64(st, 1, x->user_id);
        sqlite3_bind_int64(st, 2, x->t);
        sqlite3_bind_double(st, 3, x->lon);
        sqlite3_bind_double(st, 4, x->lat);
        bind_real(st, 5, x->speed);
        bind_real(st, 6, x->bearing);
        bind_real(st, 7, x->altitude);
        bind_real(st, 8, x->accuracy);
        bind_real(st, 9, x->batt);
        sqlite3_bind_int(st, 10, x->sos);
        bind_text(st, 11, x->device_id);
        bind_text(st, 12, x->source ? x->source : "unknown");
        bind_text(st, 13, x->grid_id);
        bind_text(st, 14, x->community_id);
        bind_text(st, 15, x->street_id);
        sqlite3_bind_int64(st, 16, x->received_at);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_db_fail(s, err, "positions");
        else if (fresh)
            fresh[i] = sqlite3_changes(s->db) > 0;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (rc || store_commit(s, err)) {
        store_rollback(s);
        return rc ? rc : GC_EIO;
    }
    return 0;
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

#define FIX_COLS "user_id, t, lon, lat, speed, bearing, altitude, accuracy, batt, sos, " \
                 "device_id, source, grid_id, community_id, street_id, received_at"

static int fixes_each(store *s, sqlite3_stmt *st, store_fix_cb cb, void *ud, gc_err *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_fix f = {
            .user_id = sqlite3_column_int64(st, 0),
            .t = sqlite3_column_int64(st, 1),
            .lon = sqlite3_column_double(st, 2),
            .lat = sqlite3_column_double(st, 3),
            .speed = col_real(st, 4),
            .bearing = col_real(st, 5),
            .altitude = col_real(st, 6),
            .accuracy = col_real(st, 7),
            .batt = col_real(st, 8),
            .sos = sqlite3_column_int(st, 9) != 0,
            .device_id = (const char *)sqlite3_column_text(st, 10),
            .source = (const char *)sqlite3_column_text(st, 11),
            .grid_id = (const char *)sqlite3_column_text(st, 12),
            .community_id = (const char *)sqlite3_column_text(st, 13),
            .street_id = (const char *)sqlite3_column_text(st, 14),
            .received_at = sqlite3_column_int64(st, 15),
        };
        if (cb(ud, &f))
            break;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "positions");
}

int store_fixes_range(store *s, int64_t user_id, int64_t from, int64_t to, store_fix_cb cb,
                      void *ud, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT " FIX_COLS " FROM positions WHERE user_id = ? "
                                     "AND t >= ? AND t < ? ORDER BY t");
    if (!st)
        return store_db_fail(s, err, "positions");
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to > 0 ? to : INT64_MAX);
    return fixes_each(s, st, cb, ud, err);
}

int store_fixes_latest(store *s, store_fix_cb cb, void *ud, gc_err *err)
{
    /* one index probe a worker: the newest t of each, then its row */
    sqlite3_stmt *st = store_stmt(
        s, "SELECT p.user_id, p.t, lon, lat, speed, bearing, altitude, accuracy, batt, sos, "
           "device_id, source, grid_id, community_id, street_id, received_at FROM users u "
           "JOIN positions p ON p.user_id = u.id AND p.t = (SELECT max(t) FROM positions q "
           "WHERE q.user_id = u.id) ORDER BY u.id");
    if (!st)
        return store_db_fail(s, err, "positions");
    return fixes_each(s, st, cb, ud, err);
}

int64_t store_fixes_count(store *s)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM positions");
    int64_t n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (st)
        sqlite3_reset(st);
    return n;
}

int store_alert_open(store *s, const char *kind, int64_t user_id, int64_t at_ms, double lon,
                     double lat, json_t *data, int64_t *id, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "INSERT INTO alerts(kind, user_id, started_at, lon, lat, "
                                     "data) VALUES (?, ?, ?, ?, ?, ?)");
    if (!st)
        return store_db_fail(s, err, "alerts");
    char *d = data ? json_dumps(data, JSON_COMPACT | STORE_JSON_PRECISION) : NULL;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, at_ms);
    bind_real(st, 4, lon);
    bind_real(st, 5, lat);
    sqlite3_bind_text(st, 6, d ? d : "{}", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(d);
    if (rc != SQLITE_DONE)
        return store_db_fail(s, err, "alerts");
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_alert_close(store *s, int64_t id, int64_t at_ms, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "UPDATE alerts SET ended_at = ? WHERE id = ? AND ended_at IS NULL");
    if (!st)
        return store_db_fail(s, err, "alerts");
    sqlite3_bind_int64(st, 1, at_ms);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "alerts");
}

int store_alerts(store *s, bool open_only, int64_t since_ms, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, open_only ? "SELECT a.id, a.kind, a.user_id, u.name AS worker, a.started_at, a.ended_at, "
                       "a.lon, a.lat, a.data FROM alerts a LEFT JOIN users u ON u.id = a.user_id "
                       "WHERE a.ended_at IS NULL ORDER BY a.id"
                     : "SELECT a.id, a.kind, a.user_id, u.name AS worker, a.started_at, a.ended_at, "
                       "a.lon, a.lat, a.data FROM alerts a LEFT JOIN users u ON u.id = a.user_id "
                       "WHERE a.started_at >= ? ORDER BY a.id");
    if (!st)
        return store_db_fail(s, err, "alerts");
    if (!open_only)
        sqlite3_bind_int64(st, 1, since_ms);
    *arr = json_array();
    return rows_json(s, st, *arr, "alerts", err);
}
