/* store: the SpatiaLite backend of store.h. One connection per handle, WAL
 * journal so readers (the HTTP loop, an index rebuild thread, a CLI import in
 * another process) never block the writer. Schema migrations are the .sql
 * files in src/migrations, applied in order, each in its own transaction,
 * with PRAGMA user_version recording how far a file has come. */
#include "gridcc/store.h"

#include <sqlite3.h>
#include <spatialite/gaiageo.h>
#include <spatialite.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "gridcc/log.h"
#include "store_priv.h"

extern const struct {
    int version;
    const char *sql;
} store_migrations[];

/* A full disk shows as SQLITE_FULL when SQLite sees it, or as an I/O error
 * with ENOSPC when growing the WAL index or syncing; both are "disk full" to
 * a user, who can act on that, unlike on "disk I/O error". */
static int db_fail_msg(store *s, gc_err *err, const char *what, const char *msg)
{
    int rc = sqlite3_errcode(s->db) & 0xff;
    int sys = sqlite3_system_errno(s->db);
    if (rc == SQLITE_FULL || (rc == SQLITE_IOERR && (sys == ENOSPC || sys == EDQUOT)))
        return gc_fail(err, GC_EFULL, NULL, "store: %s: %s: disk full (%s)", what, s->path, msg);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return gc_fail(err, GC_EBUSY, NULL,
                       "store: %s: %s is locked by another writer (waited %.1f s); try again", what,
                       s->path, s->busy_ms / 1000.0);
    return gc_fail(err, GC_EIO, NULL, "store: %s: %s", what, msg);
}

int store_db_fail(store *s, gc_err *err, const char *what)
{
    return db_fail_msg(s, err, what, sqlite3_errmsg(s->db));
}

int store_exec(store *s, const char *sql, gc_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char what[48];
        /* the statement's first words say what was being done (BEGIN, COMMIT …) */
        snprintf(what, sizeof what, "%.40s%s", sql, strlen(sql) > 40 ? "…" : "");
        int rc = db_fail_msg(s, err, what, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int64_t pragma_int(store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

int store_latest_version(void)
{
    int v = 0;
    for (int i = 0; store_migrations[i].sql; i++)
        v = store_migrations[i].version;
    return v;
}

int store_schema_version(store *s) { return (int)pragma_int(s, "PRAGMA user_version"); }
const char *store_path(const store *s) { return s->path; }

static int migrate(store *s, int max_version, gc_err *err)
{
    int cur = store_schema_version(s);
    if (cur > store_latest_version())
        return gc_fail(err, GC_EINVAL, "db",
                       "%s: schema version %d is newer than this build knows (%d)", s->path,
                       cur, store_latest_version());
    for (int i = 0; store_migrations[i].sql; i++) {
        int v = store_migrations[i].version;
        if (v <= cur || v > max_version)
            continue;
        if (store_exec(s, "BEGIN IMMEDIATE", err))
            return GC_EIO;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
        if (store_exec(s, store_migrations[i].sql, err) || store_exec(s, pragma, err)) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return GC_EIO;
        }
        if (store_exec(s, "COMMIT", err))
            return GC_EIO;
        log_info("store", "migrated schema to version %d path=%s", v, s->path);
    }
    return 0;
}

/* Another connection holds the write lock (the daemon's fix writer, an
 * import): try again every 250 µs for up to busy_ms. SQLite's own busy
 * timeout sleeps 1, 2, 5 … 100 ms between tries, so a loop waiting for a 3 ms
 * transaction would often sleep 50 ms. The bound is on the clock, not on the
 * tries: on a loaded machine a 250 µs sleep takes twice that. */
static int busy_wait(void *ud, int tries)
{
    store *s = ud;
    gint64 now = g_get_monotonic_time();
    if (tries == 0)
        s->busy_since = now;
    else if (now - s->busy_since >= (gint64)s->busy_ms * 1000)
        return 0;
    g_usleep(250);
    return 1;
}

void store_set_busy_timeout(store *s, int ms)
{
    s->busy_ms = ms;
}

int store_open_version(const char *path, int max_version, store **out, gc_err *err)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    s->path = strdup(path);
    s->busy_ms = 10000;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        gc_fail(err, GC_EIO, "db", "cannot open %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return GC_EIO;
    }
    s->splite = spatialite_alloc_connection();
    spatialite_init_ex(s->db, s->splite, 0);
    sqlite3_busy_handler(s->db, busy_wait, s);
    /* a file that is not a database fails here, not later */
    /* a big page cache keeps a layer replacement in memory until commit, so
     * each page reaches the WAL once instead of spilling repeatedly */
    int rc = store_exec(s,
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                        "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;",
                        err);
    if (rc == GC_EFULL || rc == GC_EBUSY) { /* a store, but no room or no lock */
        db_fail_msg(s, err, "opening", sqlite3_errmsg(s->db));
        store_close(s);
        return rc;
    }
    if (rc) {
        gc_fail(err, GC_EINVAL, "db", "%s: not a gridcc store: %s", path, sqlite3_errmsg(s->db));
        store_close(s);
        return GC_EINVAL;
    }
    if (migrate(s, max_version, err)) {
        store_close(s);
        return err ? err->code : GC_EIO;
    }
    s->data_version = pragma_int(s, "PRAGMA data_version");
    *out = s;
    return 0;
}

int store_open(const char *path, store **out, gc_err *err)
{
    return store_open_version(path, store_latest_version(), out, err);
}

static void stmt_free(gpointer st) { sqlite3_finalize(st); }

sqlite3_stmt *store_stmt(store *s, const char *sql)
{
    if (!s->stmts)
        s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_free);
    sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (g_hash_table_size(s->stmts) > 512)   /* many filter shapes: start over */
        g_hash_table_remove_all(s->stmts);
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    g_hash_table_insert(s->stmts, g_strdup(sql), st);
    return st;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->stmts)
        g_hash_table_destroy(s->stmts);
    if (s->memo)
        g_hash_table_destroy(s->memo);
    if (s->db)
        sqlite3_close_v2(s->db);
    if (s->splite)
        spatialite_cleanup_ex(s->splite);
    free(s->path);
    free(s);
}

/* ---- change log ---- */

int store_change_text(store *s, const char *topic, const char *id, const char *json,
                         gc_err *err)
{
    static const char sql[] = "INSERT INTO change_log(ts, topic, id, data) VALUES "
                              "(strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?)";
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st)
        return store_db_fail(s, err, "change log");
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "change log");
}

int64_t store_last_seq(store *s)
{
    int64_t v = pragma_int(s, "SELECT coalesce(max(seq), 0) FROM change_log");
    return v < 0 ? 0 : v;
}

int store_changes_since(store *s, int64_t since, int limit, store_change_cb cb, void *ud,
                        gc_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT seq, ts, topic, id, data FROM change_log WHERE seq > ? "
                           "ORDER BY seq LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "change log");
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_change c = {sqlite3_column_int64(st, 0),
                          (const char *)sqlite3_column_text(st, 1),
                          (const char *)sqlite3_column_text(st, 2),
                          (const char *)sqlite3_column_text(st, 3),
                          (const char *)sqlite3_column_text(st, 4)};
        if (cb(ud, &c))
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "change log");
}

/* SQLite calls this after every commit in WAL mode; installing it replaces
 * the automatic checkpoint, which it therefore does itself (the same
 * PASSIVE checkpoint at 1000 pages that SQLite's default hook runs). */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    store *s = ud;
    if (pages >= 1000)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (s->on_commit)
        s->on_commit(s->on_commit_ud);
    return SQLITE_OK;
}

void store_on_commit(store *s, void (*fn)(void *ud), void *ud)
{
    s->on_commit = fn;
    s->on_commit_ud = ud;
    if (fn)
        sqlite3_wal_hook(s->db, wal_hook, s);
    else
        sqlite3_wal_autocheckpoint(s->db, 1000);
}

bool store_changed_elsewhere(store *s)
{
    int64_t v = pragma_int(s, "PRAGMA data_version");
    bool changed = v != s->data_version;
    s->data_version = v;
    return changed;
}

/* ---- layers ---- */

static void layer_from_row(sqlite3_stmt *st, store_layer *l)
{
    memset(l, 0, sizeof *l);
#define COPY(dst, col)                                                                         \
    snprintf(dst, sizeof dst, "%s",                                                            \
             sqlite3_column_text(st, col) ? (const char *)sqlite3_column_text(st, col) : "")
    COPY(l->name, 0);
    COPY(l->level, 1);
    COPY(l->department, 2);
    COPY(l->title, 3);
    l->version = sqlite3_column_int(st, 4);
    l->count = sqlite3_column_int64(st, 5);
    l->fields_json = strdup(sqlite3_column_text(st, 6) ? (const char *)sqlite3_column_text(st, 6)
                                                       : "[]");
    const char *bbox = (const char *)sqlite3_column_text(st, 7);
    if (bbox && sscanf(bbox, "[%lf,%lf,%lf,%lf]", &l->bbox[0], &l->bbox[1], &l->bbox[2],
                       &l->bbox[3]) == 4)
        l->has_bbox = true;
    COPY(l->source, 8);
    COPY(l->source_crs, 9);
    COPY(l->imported_at, 10);
#undef COPY
}

#define LAYER_COLS                                                                             \
    "name, level, department, title, version, feature_count, fields, bbox, source, "          \
    "source_crs, imported_at"

int store_layers_list(store *s, store_layer **out, size_t *n, gc_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    /* hierarchy order first, then dedicated, then departments by name */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " LAYER_COLS " FROM layers ORDER BY CASE level "
                           "WHEN 'district' THEN 1 WHEN 'street' THEN 2 WHEN 'community' THEN 3 "
                           "WHEN 'grid' THEN 4 WHEN 'building' THEN 5 WHEN 'unit' THEN 6 "
                           "WHEN 'dedicated' THEN 7 ELSE 8 END, name",
                           -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "layers");
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = realloc(*out, cap * sizeof **out);
        }
        layer_from_row(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    return 0;
}

void store_layers_free(store_layer *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i].fields_json);
    free(l);
}

static int layer_get_by(store *s, const char *col, const char *val, store_layer *out,
                        gc_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT " LAYER_COLS " FROM layers WHERE %s = ? LIMIT 1", col);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "layers");
    sqlite3_bind_text(st, 1, val, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        layer_from_row(st, out);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return gc_fail(err, GC_ENOTFOUND, "layer", "no layer %s = '%s'", col, val);
    return 0;
}

int store_layer_get(store *s, const char *name, store_layer *out, gc_err *err)
{
    return layer_get_by(s, "name", name, out, err);
}

int store_layer_for_level(store *s, const char *level, store_layer *out, gc_err *err)
{
    return layer_get_by(s, "level", level, out, err);
}

int store_layer_replace(store *s, store_layer *meta, const store_feature_in *f, size_t n,
                        store_approve_cb approve, void *ud, gc_err *err)
{
    gint64 t_start = g_get_monotonic_time();
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return GC_EIO;
    sqlite3_stmt *st = NULL, *rt = NULL;
    int version = 1;

    if (sqlite3_prepare_v2(s->db, "SELECT version FROM layers WHERE name = ?", -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0) + 1;
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM features_rtree WHERE uid IN "
                           "(SELECT uid FROM features WHERE layer = ?)",
                           -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "DELETE FROM features WHERE layer = ?", -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    char bbox[160] = "";
    if (meta->has_bbox)
        snprintf(bbox, sizeof bbox, "[%.9g,%.9g,%.9g,%.9g]", meta->bbox[0], meta->bbox[1],
                 meta->bbox[2], meta->bbox[3]);
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT INTO layers(" LAYER_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,"
            "strftime('%Y-%m-%dT%H:%M:%SZ','now')) ON CONFLICT(name) DO UPDATE SET "
            "level=excluded.level, department=excluded.department, title=excluded.title, "
            "version=excluded.version, feature_count=excluded.feature_count, "
            "fields=excluded.fields, bbox=excluded.bbox, source=excluded.source, "
            "source_crs=excluded.source_crs, imported_at=excluded.imported_at",
            -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meta->level, -1, SQLITE_STATIC);
    if (meta->department[0])
        sqlite3_bind_text(st, 3, meta->department, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, meta->title[0] ? meta->title : meta->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, version);
    sqlite3_bind_int64(st, 6, (int64_t)n);
    sqlite3_bind_text(st, 7, meta->fields_json ? meta->fields_json : "[]", -1, SQLITE_STATIC);
    if (bbox[0])
        sqlite3_bind_text(st, 8, bbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, meta->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, meta->source_crs, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO features(layer, fid, name, code, level, parent_layer, "
                           "parent_fid, ancestors, props, geom) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) ||
        sqlite3_prepare_v2(s->db, "INSERT INTO features_rtree VALUES (?,?,?,?,?)", -1, &rt,
                           NULL))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        /* SpatiaLite's blob straight from WKB: no SQL function per row */
        gaiaGeomCollPtr g = gaiaFromWkb(f[i].wkb, (int)f[i].wkb_len);
        if (!g || (g->FirstPoint || g->FirstLinestring) || !g->FirstPolygon) {
            if (g)
                gaiaFreeGeomColl(g);
            gc_fail(err, GC_EINVAL, "geometry", "store: feature %s: not a polygon WKB", f[i].fid);
            goto fail_quiet;
        }
        g->Srid = 4326;
        g->DeclaredType = GAIA_MULTIPOLYGON;
        gaiaMbrGeometry(g);
        unsigned char *blob;
        int blob_len;
        gaiaToSpatiaLiteBlobWkb(g, &blob, &blob_len);
        double mbr[4] = {g->MinX, g->MaxX, g->MinY, g->MaxY};
        gaiaFreeGeomColl(g);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, f[i].fid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, f[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, f[i].code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, meta->level, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, f[i].parent_layer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, f[i].parent_fid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, f[i].ancestors_json ? f[i].ancestors_json : "[]", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 9, f[i].props_json ? f[i].props_json : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 10, blob, blob_len, free);
        if (sqlite3_step(st) != SQLITE_DONE) {
            gc_fail(err, GC_EIO, NULL, "store: feature %s: %s", f[i].fid,
                    sqlite3_errmsg(s->db));
            goto fail_quiet;
        }
        sqlite3_reset(rt);
        sqlite3_bind_int64(rt, 1, sqlite3_last_insert_rowid(s->db));
        for (int k = 0; k < 4; k++)
            sqlite3_bind_double(rt, 2 + k, mbr[k]);
        if (sqlite3_step(rt) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(rt);
    st = rt = NULL;

    char json[1024];
    snprintf(json, sizeof json,
             "{\"layer\":\"%s\",\"level\":\"%s\",\"version\":%d,\"count\":%zu,"
             "\"action\":\"replaced\"}",
             meta->name, meta->level, version, n);
    if (store_change_text(s, "layers", meta->name, json, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    int verdict = approve ? approve(ud) : 0;
    if (verdict) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return gc_fail(err, verdict, NULL, "layer %s: not approved; rolled back", meta->name);
    }
    gint64 tc = g_get_monotonic_time();
    if (store_exec(s, "COMMIT", err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    log_debug("store", "layer=%s rows=%zu insert_ms=%.0f commit_ms=%.0f", meta->name, n,
              (double)(tc - t_start) / 1000.0, (double)(g_get_monotonic_time() - tc) / 1000.0);
    meta->version = version;
    return 0;

fail:
    store_db_fail(s, err, "replacing layer");
fail_quiet:
    if (st)
        sqlite3_finalize(st);
    if (rt)
        sqlite3_finalize(rt);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return err ? (err->code ? err->code : GC_EIO) : GC_EIO;
}

/* ---- feature reads ---- */

static const char *builtin_column(const char *key)
{
    if (!strcmp(key, "id"))
        return "fid";
    if (!strcmp(key, "name") || !strcmp(key, "code") || !strcmp(key, "level"))
        return key;
    if (!strcmp(key, "parent"))
        return "parent_fid";
    return NULL;
}

static void where_clause(const store_query *q, GString *sql)
{
    g_string_append(sql, " FROM features WHERE layer = ?");
    if (q->fid)
        g_string_append(sql, " AND fid = ?");
    if (q->has_bbox)
        g_string_append(sql, " AND uid IN (SELECT uid FROM features_rtree WHERE "
                             "minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)"
                             " AND Intersects(geom, BuildMbr(?, ?, ?, ?, 4326))");
    for (size_t i = 0; i < q->nprops; i++) {
        const char *col = builtin_column(q->prop_keys[i]);
        if (col)
            g_string_append_printf(sql, " AND %s = ?", col);
        else
            g_string_append(sql, " AND CAST(json_extract(props, ?) AS TEXT) = ?");
    }
}

static void bind_where(sqlite3_stmt *st, const store_query *q, int *k)
{
    sqlite3_bind_text(st, (*k)++, q->layer, -1, SQLITE_STATIC);
    if (q->fid)
        sqlite3_bind_text(st, (*k)++, q->fid, -1, SQLITE_STATIC);
    if (q->has_bbox) {
        sqlite3_bind_double(st, (*k)++, q->bbox[2]);
        sqlite3_bind_double(st, (*k)++, q->bbox[0]);
        sqlite3_bind_double(st, (*k)++, q->bbox[3]);
        sqlite3_bind_double(st, (*k)++, q->bbox[1]);
        for (int i = 0; i < 4; i++)
            sqlite3_bind_double(st, (*k)++, q->bbox[i]);
    }
    for (size_t i = 0; i < q->nprops; i++) {
        if (!builtin_column(q->prop_keys[i])) {
            char *path = sqlite3_mprintf("$.\"%w\"", q->prop_keys[i]);
            sqlite3_bind_text(st, (*k)++, path, -1, sqlite3_free);
        }
        sqlite3_bind_text(st, (*k)++, q->prop_vals[i], -1, SQLITE_STATIC);
    }
}

int store_features_query(store *s, const store_query *q, int64_t *matched, store_feature_cb cb,
                         void *ud, gc_err *err)
{
    for (size_t i = 0; i < q->nprops; i++)
        if (strchr(q->prop_keys[i], '"'))
            return gc_fail(err, GC_EINVAL, q->prop_keys[i], "property names cannot contain '\"'");
    GString *sql = g_string_new(NULL);
    sqlite3_stmt *st;
    int k = 1;
    if (matched) {
        g_string_assign(sql, "SELECT count(*)");
        where_clause(q, sql);
        if (sqlite3_prepare_v2(s->db, sql->str, -1, &st, NULL) != SQLITE_OK) {
            g_string_free(sql, TRUE);
            return store_db_fail(s, err, "query");
        }
        bind_where(st, q, &k);
        *matched = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
    }
    if (!cb) {
        g_string_free(sql, TRUE);
        return 0;
    }
    g_string_assign(sql, "SELECT uid, layer, level, fid, name, code, parent_layer, parent_fid, "
                         "ancestors, props, ");
    if (q->want_wkb)
        g_string_append(sql, "AsBinary(geom)");
    else
        g_string_append_printf(sql, "AsGeoJSON(geom, %d)", q->precision ? q->precision : 7);
    /* page over uids first, so columns are computed only for the page */
    g_string_append(sql, " FROM features WHERE uid IN (SELECT uid");
    where_clause(q, sql);
    g_string_append(sql, " ORDER BY uid LIMIT ? OFFSET ?) ORDER BY uid");
    if (sqlite3_prepare_v2(s->db, sql->str, -1, &st, NULL) != SQLITE_OK) {
        g_string_free(sql, TRUE);
        return store_db_fail(s, err, "query");
    }
    g_string_free(sql, TRUE);
    k = 1;
    bind_where(st, q, &k);
    sqlite3_bind_int64(st, k++, q->limit > 0 ? q->limit : -1);
    sqlite3_bind_int64(st, k++, q->offset > 0 ? q->offset : 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_feature f = {
            .uid = sqlite3_column_int64(st, 0),
            .layer = (const char *)sqlite3_column_text(st, 1),
            .level = (const char *)sqlite3_column_text(st, 2),
            .fid = (const char *)sqlite3_column_text(st, 3),
            .name = (const char *)sqlite3_column_text(st, 4),
            .code = (const char *)sqlite3_column_text(st, 5),
            .parent_layer = (const char *)sqlite3_column_text(st, 6),
            .parent_fid = (const char *)sqlite3_column_text(st, 7),
            .ancestors_json = (const char *)sqlite3_column_text(st, 8),
            .props_json = (const char *)sqlite3_column_text(st, 9),
        };
        if (q->want_wkb) {
            f.wkb = sqlite3_column_blob(st, 10);
            f.wkb_len = (size_t)sqlite3_column_bytes(st, 10);
        } else {
            f.geojson = (const char *)sqlite3_column_text(st, 10);
        }
        if (cb(ud, &f))
            break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_db_fail(s, err, "query");
    return 0;
}

/* ---- users and tokens ---- */

int store_user_add(store *s, const char *name, gc_role role, const char *department,
                   const char *pwhash, int64_t *id, gc_err *err)
{
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return GC_EIO;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO users(name, role, department, pwhash, created_at) VALUES "
                           "(?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return store_db_fail(s, err, "users");
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, department, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, pwhash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (ext == SQLITE_CONSTRAINT_UNIQUE)
            return gc_fail(err, GC_ECONFLICT, "name", "user '%s' already exists", name);
        if (ext == SQLITE_CONSTRAINT_CHECK &&
            (role != ROLE_DEPARTMENT ? department != NULL : department == NULL))
            return gc_fail(err, GC_EINVAL, "department",
                           "a user has a department exactly when its role is department");
        if (ext == SQLITE_CONSTRAINT_CHECK)
            return gc_fail(err, GC_EINVAL, "role", "unknown role '%s'", role_name(role));
        return store_db_fail(s, err, "users");
    }
    int64_t uid = sqlite3_last_insert_rowid(s->db);
    char idstr[32], json[512];
    snprintf(idstr, sizeof idstr, "%lld", (long long)uid);
    char *q = sqlite3_mprintf("{\"id\":%lld,\"name\":\"%w\",\"role\":\"%w\",\"action\":\"added\"}",
                              (long long)uid, name, role_name(role));
    snprintf(json, sizeof json, "%s", q);
    sqlite3_free(q);
    if (store_change_text(s, "users", idstr, json, err) || store_exec(s, "COMMIT", err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    if (id)
        *id = uid;
    return 0;
}

void store_user_from_row(sqlite3_stmt *st, store_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(st, 0);
    snprintf(u->name, sizeof u->name, "%s", (const char *)sqlite3_column_text(st, 1));
    u->role = role_parse((const char *)sqlite3_column_text(st, 2));
    const char *h = (const char *)sqlite3_column_text(st, 3);
    snprintf(u->pwhash, sizeof u->pwhash, "%s", h ? h : "");
    u->disabled = sqlite3_column_int(st, 4) != 0;
    const char *d = (const char *)sqlite3_column_text(st, 5);
    snprintf(u->department, sizeof u->department, "%s", d ? d : "");
}

int store_user_get(store *s, const char *name, store_user *out, gc_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, name, role, pwhash, disabled, department FROM users WHERE name = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "users");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_user_from_row(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : gc_fail(err, GC_ENOTFOUND, "name", "no such user");
}

int store_token_add(store *s, int64_t user_id, const unsigned char *hash, int64_t expires_at,
                    const char *label, gc_err *err)
{
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return GC_EIO;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO tokens(hash, user_id, created_at, expires_at, label) "
                           "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now'), "
                           "CASE WHEN ? > 0 THEN strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch') "
                           "END, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return store_db_fail(s, err, "tokens");
    }
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, expires_at);
    sqlite3_bind_int64(st, 4, expires_at);
    sqlite3_bind_text(st, 5, label, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_db_fail(s, err, "tokens");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    /* the change log says a token was issued, never the token or its hash */
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)user_id);
    char *json = sqlite3_mprintf("{\"user_id\":%lld,\"label\":\"%w\",\"expires_at\":%lld,"
                                 "\"action\":\"issued\"}",
                                 (long long)user_id, label ? label : "", (long long)expires_at);
    rc = store_change_text(s, "tokens", id, json, err);
    sqlite3_free(json);
    if (rc || store_exec(s, "COMMIT", err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    return 0;
}

int store_token_lookup(store *s, const unsigned char *hash, store_user *out, gc_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT u.id, u.name, u.role, u.pwhash, u.disabled, u.department FROM tokens t "
                           "JOIN users u ON u.id = t.user_id WHERE t.hash = ? AND "
                           "(t.expires_at IS NULL OR t.expires_at > "
                           "strftime('%Y-%m-%dT%H:%M:%SZ','now')) AND u.disabled = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "tokens");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_user_from_row(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : gc_fail(err, GC_ENOTFOUND, NULL, "unknown or expired token");
}
