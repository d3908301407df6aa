/* store: the SpatiaLite backend of store.h. One connection per handle, WAL
 * journal so readers (the HTTP loop, an index rebuild thread, a CLI import in
 * another process) never block the writer. Schema migrations are the .sql
 * files in src/migrations, applied in order, each in its own transaction,
 * with PRAGMA user_version recording how far a file has come. This file is
 * the store's core: connections, statements, nestable transactions and the
 * change log; the tables live in store_layers.c, store_users.c,
 * store_incidents.c and store_workers.c. */
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

int64_t store_first_seq(store *s)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT coalesce(min(seq), 0) FROM change_log");
    int64_t v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (st)
        sqlite3_reset(st);
    return v;
}

int store_changes_prune(store *s, int64_t keep_s, int64_t keep_min, int64_t *removed,
                        gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "DELETE FROM change_log WHERE ts < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) "
           "AND seq <= (SELECT coalesce(max(seq), 0) FROM change_log) - ?");
    if (!st)
        return store_db_fail(s, err, "change log");
    char mod[48];
    snprintf(mod, sizeof mod, "-%lld seconds", (long long)keep_s);
    sqlite3_bind_text(st, 1, mod, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, keep_min);
    int rc = sqlite3_step(st);
    if (removed)
        *removed = rc == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "change log");
}

/* ---- transactions ---- */

/* Savepoint statements are few ("SAVEPOINT sp1" …) and run per row in bulk
 * work: prepared once each through the statement cache. */
static int tx_step(store *s, const char *sql, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st)
        return store_db_fail(s, err, sql);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, sql);
}

json_t *store_memo_get(store *s, const char *key)
{
    return s->depth > 0 && s->memo ? g_hash_table_lookup(s->memo, key) : NULL;
}

void store_memo_put(store *s, const char *key, json_t *v)
{
    if (s->depth <= 0) {
        json_decref(v);
        return;
    }
    if (!s->memo)
        s->memo = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)json_decref);
    g_hash_table_replace(s->memo, g_strdup(key), v);
}

void store_memo_clear(store *s)
{
    if (s->memo)
        g_hash_table_remove_all(s->memo);
}

int store_begin(store *s, gc_err *err)
{
    char sql[32];
    if (s->depth == 0)
        store_memo_clear(s);
    if (s->depth == 0)
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT sp%d", s->depth);
    if (s->depth == 0 ? store_exec(s, sql, err) : tx_step(s, sql, err))
        return GC_EIO;
    s->depth++;
    return 0;
}

int store_commit(store *s, gc_err *err)
{
    char sql[32];
    if (s->depth <= 0)
        return gc_fail(err, GC_EIO, NULL, "store: commit outside a transaction");
    if (s->depth == 1)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE sp%d", s->depth - 1);
    /* on failure the transaction (or savepoint) stays open: the caller
     * rolls back, and only its own level */
    if (s->depth == 1 ? store_exec(s, sql, err) : tx_step(s, sql, err))
        return GC_EIO;
    s->depth--;
    return 0;
}

void store_rollback(store *s)
{
    if (s->depth <= 0)
        return;
    store_memo_clear(s);   /* it may hold what is being undone */
    if (s->depth == 1) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        char sql[32];
        gc_err ignore = {0};
        snprintf(sql, sizeof sql, "ROLLBACK TO sp%d", s->depth - 1);
        tx_step(s, sql, &ignore);
        snprintf(sql, sizeof sql, "RELEASE sp%d", s->depth - 1);
        tx_step(s, sql, &ignore);
    }
    s->depth--;
}

int store_change_append(store *s, const char *topic, const char *id, json_t *data, gc_err *err)
{
    char *text = json_dumps(data, JSON_COMPACT | STORE_JSON_PRECISION);
    int rc = store_change_text(s, topic, id, text, err);
    free(text);
    return rc;
}
