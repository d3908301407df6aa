/* store_history: past windows read back for replay: the change log by time
 * (migration 008's index) and fixes across workers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store_priv.h"

static void iso_ms(int64_t s, char out[32])
{
    GDateTime *d = g_date_time_new_from_unix_utc(s);
    if (!d) {
        snprintf(out, 32, "%s", s < 0 ? "0000" : "9999");
        return;
    }
    char *t = g_date_time_format(d, "%Y-%m-%dT%H:%M:%S.000Z");
    snprintf(out, 32, "%s", t);
    g_free(t);
    g_date_time_unref(d);
}

int store_changes_window(store *s, int64_t from_s, int64_t to_s, int64_t after_seq,
                         const char *const *topics, size_t ntopics, int limit, store_change_cb cb,
                         void *ud, gc_err *err)
{
    /* ts is the commit's clock, which follows seq but may step back with the
     * system clock: the seq bounds come from the ts index, then the rows are
     * read by seq and each one's ts is checked again. */
    char from[32], to[32];
    iso_ms(from_s, from);
    iso_ms(to_s, to);
    sqlite3_stmt *b = store_stmt(s, "SELECT min(seq), max(seq) FROM change_log "
                                    "WHERE ts >= ? AND ts < ?");
    if (!b)
        return store_db_fail(s, err, "change log");
    sqlite3_bind_text(b, 1, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(b, 2, to, -1, SQLITE_STATIC);
    int rc = sqlite3_step(b);
    bool any = rc == SQLITE_ROW && sqlite3_column_type(b, 0) != SQLITE_NULL;
    int64_t lo = any ? sqlite3_column_int64(b, 0) : 0, hi = any ? sqlite3_column_int64(b, 1) : 0;
    sqlite3_reset(b);
    if (rc != SQLITE_ROW)
        return store_db_fail(s, err, "change log");
    if (!any)
        return 0;
    GString *sql = g_string_new("SELECT seq, ts, topic, id, data FROM change_log WHERE seq > ? "
                                "AND seq <= ? AND +ts >= ? AND +ts < ?");
    if (ntopics) {
        g_string_append(sql, " AND topic IN (");
        for (size_t i = 0; i < ntopics; i++)
            g_string_append(sql, i ? ", ?" : "?");
        g_string_append(sql, ")");
    }
    g_string_append(sql, " ORDER BY seq LIMIT ?");
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db, sql->str, -1, &st, NULL);
    g_string_free(sql, TRUE);
    if (rc != SQLITE_OK)
        return store_db_fail(s, err, "change log");
    int k = 1;
    sqlite3_bind_int64(st, k++, after_seq > lo - 1 ? after_seq : lo - 1);
    sqlite3_bind_int64(st, k++, hi);
    sqlite3_bind_text(st, k++, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, to, -1, SQLITE_STATIC);
    for (size_t i = 0; i < ntopics; i++)
        sqlite3_bind_text(st, k++, topics[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, k, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_change c = {sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                          (const char *)sqlite3_column_text(st, 2),
                          (const char *)sqlite3_column_text(st, 3),
                          (const char *)sqlite3_column_text(st, 4)};
        if (cb(ud, &c))
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "change log");
}

/* ---- fixes across workers ----
 * positions has one index, (user_id, t). Rather than a second one on t
 * alone, which every fix written would pay for, a window is read worker by
 * worker: one range of that index each, a few hundred workers at most. */

typedef struct who {
    int64_t id;
    char *name;
} who;

static void who_clear(gpointer p)
{
    g_free(((who *)p)->name);
}

/* The workers a window covers: those listed, or everyone who can have fixes
 * (workers, and whoever a tracker is registered to). */
static int window_workers(store *s, const store_fix_window *w, GArray *out, gc_err *err)
{
    sqlite3_stmt *st;
    if (w->nusers) {
        st = store_stmt(s, "SELECT id, name FROM users WHERE id = ?");
        if (!st)
            return store_db_fail(s, err, "users");
        for (size_t i = 0; i < w->nusers; i++) {
            sqlite3_bind_int64(st, 1, w->users[i]);
            who x = {w->users[i], NULL};
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW)
                x.name = g_strdup((const char *)sqlite3_column_text(st, 1));
            sqlite3_reset(st);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return store_db_fail(s, err, "users");
            g_array_append_val(out, x);
        }
        return 0;
    }
    st = store_stmt(s, "SELECT id, name FROM users WHERE role = 'worker' OR id IN "
                       "(SELECT user_id FROM devices) ORDER BY id");
    if (!st)
        return store_db_fail(s, err, "users");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        who x = {sqlite3_column_int64(st, 0), g_strdup((const char *)sqlite3_column_text(st, 1))};
        g_array_append_val(out, x);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "users");
}

static void bind_window(sqlite3_stmt *st, const store_fix_window *w, int64_t user)
{
    sqlite3_bind_int64(st, 1, user);
    sqlite3_bind_int64(st, 2, w->from);
    sqlite3_bind_int64(st, 3, w->to > 0 ? w->to : INT64_MAX);
    if (w->has_bbox)
        for (int i = 0; i < 4; i++)
            sqlite3_bind_double(st, 4 + i, w->bbox[i]);
}

#define IN_BOX " AND lon >= ?4 AND lat >= ?5 AND lon <= ?6 AND lat <= ?7"

static sqlite3_stmt *stmt_or_fail(store *s, const char *sql, int *rc, gc_err *err)
{
    sqlite3_stmt *st = *rc ? NULL : store_stmt(s, sql);
    if (!*rc && !st)
        *rc = store_db_fail(s, err, "positions");
    return st;
}

/* The k of n fixes a thinned track keeps: evenly spaced by index, the first
 * and the last among them (k >= 2 and k < n, so each index is new). */
static int64_t kept_index(int64_t m, int64_t n, int64_t k)
{
    return llround((double)m * (double)(n - 1) / (double)(k - 1));
}

int store_fixes_window(store *s, const store_fix_window *w, int64_t *in_window, store_fix_cb cb,
                       void *ud, gc_err *err)
{
    GArray *ws = g_array_new(FALSE, FALSE, sizeof(who));
    g_array_set_clear_func(ws, who_clear);
    /* both passes read one snapshot: a fix written between them would move
     * every index after it */
    bool tx = s->depth == 0;
    int rc = tx ? store_exec(s, "BEGIN", err) : 0;
    if (!rc)
        rc = window_workers(s, w, ws, err);
    sqlite3_stmt *count = stmt_or_fail(
        s,
        w->has_bbox
            ? "SELECT count(*) FROM positions WHERE user_id = ?1 AND t >= ?2 AND t < ?3" IN_BOX
            : "SELECT count(*) FROM positions WHERE user_id = ?1 AND t >= ?2 AND t < ?3",
        &rc, err);
    sqlite3_stmt *rows = stmt_or_fail(
        s,
        w->has_bbox ? "SELECT t, lon, lat, device_id FROM positions WHERE user_id = ?1 AND "
                      "t >= ?2 AND t < ?3" IN_BOX " ORDER BY t"
                    : "SELECT t, lon, lat, device_id FROM positions WHERE user_id = ?1 AND "
                      "t >= ?2 AND t < ?3 ORDER BY t",
        &rc, err);
    /* without a bbox a thinned track walks the index alone and reads only
     * the rows it keeps: a day of 200 workers is millions of rows */
    sqlite3_stmt *times = stmt_or_fail(s,
                                       "SELECT t FROM positions WHERE user_id = ?1 AND "
                                       "t >= ?2 AND t < ?3 ORDER BY t",
                                       &rc, err);
    sqlite3_stmt *one = stmt_or_fail(s,
                                     "SELECT t, lon, lat, device_id FROM positions WHERE "
                                     "user_id = ? AND t = ?",
                                     &rc, err);
    int64_t *n = g_new0(int64_t, ws->len + 1), total = 0;
    for (guint i = 0; !rc && i < ws->len; i++) {
        bind_window(count, w, g_array_index(ws, who, i).id);
        if (sqlite3_step(count) != SQLITE_ROW)
            rc = store_db_fail(s, err, "positions");
        else
            total += n[i] = sqlite3_column_int64(count, 0);
        sqlite3_reset(count);
    }
    if (in_window)
        *in_window = total;
    bool thin = w->max_points > 0 && total > w->max_points, stop = false;
    for (guint i = 0; !rc && !stop && i < ws->len; i++) {
        int64_t user = g_array_index(ws, who, i).id, k = n[i];
        if (!n[i])
            continue;
        if (thin) {
            k = (int64_t)((double)n[i] * (double)w->max_points / (double)total);
            k = k < 2 ? 2 : k;
        }
        bool sparse = k < n[i];
        sqlite3_stmt *walk = sparse && !w->has_bbox ? times : rows;
        sqlite3_reset(walk);
        bind_window(walk, w, user);
        int64_t j = 0, m = 0, want = sparse ? kept_index(0, n[i], k) : 0;
        int r;
        while (!stop && m < k && (r = sqlite3_step(walk)) == SQLITE_ROW) {
            if (sparse && j++ != want)
                continue;
            want = ++m < k ? kept_index(m, n[i], k) : -1;
            sqlite3_stmt *at = walk;
            if (walk == times) {
                sqlite3_reset(one);
                sqlite3_bind_int64(one, 1, user);
                sqlite3_bind_int64(one, 2, sqlite3_column_int64(times, 0));
                if (sqlite3_step(one) != SQLITE_ROW) {
                    rc = store_db_fail(s, err, "positions");
                    break;
                }
                at = one;
            }
            store_fix f = {
                .user_id = user,
                .t = sqlite3_column_int64(at, 0),
                .lon = sqlite3_column_double(at, 1),
                .lat = sqlite3_column_double(at, 2),
                .speed = NAN,
                .bearing = NAN,
                .altitude = NAN,
                .accuracy = NAN,
                .batt = NAN,
                .device_id = (const char *)sqlite3_column_text(at, 3),
            };
            stop = cb(ud, &f) != 0;
        }
        if (!rc && !stop && m < k)
            rc = store_db_fail(s, err, "positions");
        sqlite3_reset(walk);
    }
    if (one)
        sqlite3_reset(one);
    g_free(n);
    g_array_free(ws, TRUE);
    if (tx)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int store_fixes_presence(store *s, const store_fix_window *w, store_presence_cb cb, void *ud,
                         gc_err *err)
{
    GArray *ws = g_array_new(FALSE, FALSE, sizeof(who));
    g_array_set_clear_func(ws, who_clear);
    int rc = window_workers(s, w, ws, err);
    sqlite3_stmt *st = NULL;
    if (!rc) {
        st = store_stmt(s, w->has_bbox ? "SELECT min(t), max(t), count(*) FROM positions WHERE "
                                         "user_id = ?1 AND t >= ?2 AND t < ?3" IN_BOX
                                       : "SELECT min(t), max(t), count(*) FROM positions WHERE "
                                         "user_id = ?1 AND t >= ?2 AND t < ?3");
        if (!st)
            rc = store_db_fail(s, err, "positions");
    }
    for (guint i = 0; !rc && i < ws->len; i++) {
        const who *x = &g_array_index(ws, who, i);
        sqlite3_reset(st);
        bind_window(st, w, x->id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            rc = store_db_fail(s, err, "positions");
            break;
        }
        store_presence p = {x->id, x->name ? x->name : "", sqlite3_column_int64(st, 0),
                            sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
        if (p.n && cb(ud, &p))
            break;
    }
    if (st)
        sqlite3_reset(st);
    g_array_free(ws, TRUE);
    return rc;
}
