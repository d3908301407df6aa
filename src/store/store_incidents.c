/* store_incidents: the incident tables of the SpatiaLite store (migration
 * 005). Rows go in and come out as jansson objects keyed by column name, so
 * the domain module (incidents.c) holds the rules and this file only SQL. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gridcc/parse.h"
#include "store_priv.h"

/* ---- rows and JSON ---- */

static bool json_column(const char *name)
{
    static const char *cols[] = {"chain", "reporter", "flags", "props", "exif", "data"};
    for (size_t i = 0; i < G_N_ELEMENTS(cols); i++)
        if (!strcmp(name, cols[i]))
            return true;
    return false;
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    for (int i = 0, n = sqlite3_column_count(st); i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
        case SQLITE_TEXT: {
            const char *t = (const char *)sqlite3_column_text(st, i);
            v = json_column(name) ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
            if (!v)
                v = json_string(t);
            break;
        }
        default: v = json_null();
        }
        json_object_set_new(o, name, v);
    }
    return o;
}

static void bind_json(sqlite3_stmt *st, int k, json_t *v)
{
    if (!v || json_is_null(v)) {
        sqlite3_bind_null(st, k);
    } else if (json_is_string(v)) {
        sqlite3_bind_text(st, k, json_string_value(v), (int)json_string_length(v),
                          SQLITE_TRANSIENT);
    } else if (json_is_integer(v)) {
        sqlite3_bind_int64(st, k, json_integer_value(v));
    } else if (json_is_real(v)) {
        sqlite3_bind_double(st, k, json_real_value(v));
    } else if (json_is_boolean(v)) {
        sqlite3_bind_int(st, k, json_is_true(v));
    } else {
        char *t = json_dumps(v, JSON_COMPACT | STORE_JSON_PRECISION);
        sqlite3_bind_text(st, k, t, -1, free);
    }
}

/* Runs a prepared statement to the end; each row to cb (borrowed). */
static int each_row(store *s, sqlite3_stmt *st, store_row_cb cb, void *ud, gc_err *err,
                    const char *what)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = row_json(st);
        int stop = cb(ud, row);
        json_decref(row);
        if (stop) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        store_db_fail(s, err, what);
        sqlite3_reset(st);
        return GC_EIO;
    }
    sqlite3_reset(st);
    return 0;
}

static int collect(void *ud, json_t *row)
{
    json_array_append(ud, row);
    return 0;
}

/* Statements are prepared once per connection and reused: a hotline import
 * runs a dozen per order, and preparing costs more than running them. */
static int prepare(store *s, const char *sql, sqlite3_stmt **st, gc_err *err)
{
    *st = store_stmt(s, sql);
    return *st ? 0 : store_db_fail(s, err, "incidents");
}

/* A statement that returns no rows. */
static int step_done(store *s, sqlite3_stmt *st, gc_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, what);
}

/* ---- incidents ---- */

static const char INCIDENT_COLS[] =
    "id, case_no, category, description, lon, lat, src_x, src_y, src_crs, address, chain, "
    "district_id, street_id, community_id, grid_id, building_id, source, reporter_id, reporter, "
    "department, status, step_started, deadline, level, overdue_count, flags, props, result, "
    "rating, rating_comment, external_id, token, created_at, updated_at, closed_at";
#define INCIDENT_COLS_BUT_STATUS                                                               \
    "id, case_no, category, description, lon, lat, src_x, src_y, src_crs, address, chain, "    \
    "district_id, street_id, community_id, grid_id, building_id, source, reporter_id, "        \
    "reporter, department, step_started, deadline, level, overdue_count, flags, props, "       \
    "result, rating, rating_comment, external_id, token, created_at, updated_at, closed_at"

/* Columns a caller may write; the rest are the store's. */
static const char *const WRITABLE[] = {
    "category", "description", "lon", "lat", "src_x", "src_y", "src_crs", "address", "chain",
    "district_id", "street_id", "community_id", "grid_id", "building_id", "source",
    "reporter_id", "reporter", "department", "status", "step_started", "deadline", "level",
    "overdue_count", "flags", "props", "result", "rating", "rating_comment", "external_id",
    "token", "created_at", "updated_at", "closed_at"};

static bool writable(const char *col)
{
    for (size_t i = 0; i < G_N_ELEMENTS(WRITABLE); i++)
        if (!strcmp(col, WRITABLE[i]))
            return true;
    return false;
}

int store_incident_get(store *s, const char *key, json_t **row, gc_err *err)
{
    *row = NULL;
    int64_t id = 0;
    bool numeric = gc_parse_int(key, "id", 0, INT64_MAX, &id, NULL) == 0;
    char sql[sizeof INCIDENT_COLS + 96];
    snprintf(sql, sizeof sql, "SELECT %s FROM incidents WHERE %s = ?", INCIDENT_COLS,
             numeric ? "id" : "case_no");
    sqlite3_stmt *st;
    if (prepare(s, sql, &st, err))
        return GC_EIO;
    if (numeric)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *row = row_json(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return store_db_fail(s, err, "incidents");
    return gc_fail(err, GC_ENOTFOUND, "id", "no incident '%s'", key);
}

static int64_t find_one(store *s, const char *sql, int64_t a, const char *b, const char *c)
{
    sqlite3_stmt *st;
    int64_t id = 0;
    if (!(st = store_stmt(s, sql)))
        return -1;
    int k = 1;
    if (!c)
        sqlite3_bind_int64(st, k++, a);
    sqlite3_bind_text(st, k++, b, -1, SQLITE_STATIC);
    if (c)
        sqlite3_bind_text(st, k++, c, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        id = -1;
    sqlite3_reset(st);
    return id;
}

int store_incident_find(store *s, int64_t idem_user, const char *idem_key, const char *source,
                        const char *external_id, int64_t *id, gc_err *err)
{
    *id = 0;
    if (idem_key)
        *id = find_one(s, "SELECT incident_id FROM idempotency WHERE user_id = ? AND key = ?",
                       idem_user, idem_key, NULL);
    if (*id == 0 && source && external_id)
        *id = find_one(s, "SELECT id FROM incidents WHERE source = ? AND external_id = ?", 0,
                       source, external_id);
    if (*id < 0) {
        *id = 0;
        return store_db_fail(s, err, "incidents");
    }
    return 0;
}

/* The next case number of the year of `t`: 2026-000123. */
static int next_case_no(store *s, int64_t t, char out[24], gc_err *err)
{
    /* localtime_r looks at /etc/localtime on every call: remember the
     * local year's bounds instead (per thread; a store is one thread's) */
    static _Thread_local int64_t y_from = 1, y_to = 0;
    static _Thread_local int y_year;
    if (t < y_from || t >= y_to) {
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        y_year = tm.tm_year + 1900;
        struct tm b = {.tm_year = tm.tm_year, .tm_mday = 1, .tm_isdst = -1};
        struct tm e = {.tm_year = tm.tm_year + 1, .tm_mday = 1, .tm_isdst = -1};
        y_from = (int64_t)mktime(&b);
        y_to = (int64_t)mktime(&e);
    }
    int year = y_year;
    /* the year's counter is read once per transaction, then kept in the memo
     * (a rolled-back savepoint empties the memo, so it never runs ahead) */
    char key[32];
    snprintf(key, sizeof key, "case\x1f%d", year);
    json_t *m = store_memo_get(s, key);
    int64_t n = 0;
    sqlite3_stmt *st;
    if (m) {
        n = json_integer_value(m) + 1;
        if (prepare(s, "UPDATE case_counters SET last = ?2 WHERE year = ?1", &st, err))
            return GC_EIO;
        sqlite3_bind_int(st, 1, year);
        sqlite3_bind_int64(st, 2, n);
        if (step_done(s, st, err, "case numbers"))
            return GC_EIO;
    } else {
        if (prepare(s,
                    "INSERT INTO case_counters(year, last) VALUES (?, 1) "
                    "ON CONFLICT(year) DO UPDATE SET last = last + 1 RETURNING last",
                    &st, err))
            return GC_EIO;
        sqlite3_bind_int(st, 1, year);
        int rc = sqlite3_step(st);
        n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (!n)
            return store_db_fail(s, err, "case numbers");
    }
    store_memo_put(s, key, json_integer(n));
    snprintf(out, 24, "%d-%06lld", year, (long long)n);
    return 0;
}

int store_incident_photo_add(store *s, int64_t id, json_t *p, const char *stage, gc_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s,
                "INSERT INTO photos(hash, bytes, exif, created_at) VALUES (?, ?, ?, "
                "strftime('%s','now')) ON CONFLICT(hash) DO NOTHING",
                &st, err))
        return GC_EIO;
    bind_json(st, 1, json_object_get(p, "hash"));
    bind_json(st, 2, json_object_get(p, "bytes"));
    json_t *exif = json_object_get(p, "exif");
    if (exif)
        bind_json(st, 3, exif);
    else
        sqlite3_bind_text(st, 3, "{}", -1, SQLITE_STATIC);
    if (step_done(s, st, err, "photos"))
        return GC_EIO;
    if (prepare(s,
                "INSERT INTO incident_photos(incident_id, hash, part, stage, ord) VALUES "
                "(?1, ?2, ?3, ?4, (SELECT coalesce(max(ord), 0) + 1 FROM incident_photos "
                "WHERE incident_id = ?1))",
                &st, err))
        return GC_EIO;
    sqlite3_bind_int64(st, 1, id);
    bind_json(st, 2, json_object_get(p, "hash"));
    bind_json(st, 3, json_object_get(p, "part"));
    sqlite3_bind_text(st, 4, stage, -1, SQLITE_STATIC);
    return step_done(s, st, err, "photos");
}

int store_incident_photos(store *s, int64_t id, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st;
    *arr = json_array();
    if (prepare(s,
                "SELECT p.hash, p.bytes, p.exif, ip.part, ip.stage FROM incident_photos ip "
                "JOIN photos p ON p.hash = ip.hash WHERE ip.incident_id = ? ORDER BY ip.ord",
                &st, err))
        return GC_EIO;
    sqlite3_bind_int64(st, 1, id);
    return each_row(s, st, collect, *arr, err, "photos");
}

int store_incident_insert(store *s, json_t *row, int64_t idem_user, const char *idem_key,
                          gc_err *err)
{
    char case_no[24];
    if (next_case_no(s, json_integer_value(json_object_get(row, "created_at")), case_no, err))
        return GC_EIO;
    GString *cols = g_string_new("case_no"), *vals = g_string_new("?");
    GPtrArray *bound = g_ptr_array_new();
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v) {
        if (!writable(k))
            continue;
        g_string_append_printf(cols, ", %s", k);
        g_string_append(vals, ", ?");
        g_ptr_array_add(bound, v);
    }
    char *sql = g_strdup_printf("INSERT INTO incidents(%s) VALUES (%s)", cols->str, vals->str);
    g_string_free(cols, TRUE);
    g_string_free(vals, TRUE);
    sqlite3_stmt *st;
    int rc = prepare(s, sql, &st, err);
    g_free(sql);
    if (rc) {
        g_ptr_array_free(bound, TRUE);
        return GC_EIO;
    }
    sqlite3_bind_text(st, 1, case_no, -1, SQLITE_TRANSIENT);
    for (guint i = 0; i < bound->len; i++)
        bind_json(st, (int)i + 2, bound->pdata[i]);
    g_ptr_array_free(bound, TRUE);
    rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return gc_fail(err, GC_EINVAL, "category", "unknown category");
        if (ext == SQLITE_CONSTRAINT_UNIQUE)
            return gc_fail(err, GC_ECONFLICT, "external_id", "this case exists already");
        return store_db_fail(s, err, "incidents");
    }
    int64_t id = sqlite3_last_insert_rowid(s->db);
    json_object_set_new(row, "id", json_integer(id));
    json_object_set_new(row, "case_no", json_string(case_no));
    size_t i;
    json_array_foreach(json_object_get(row, "photos"), i, v)
        if (store_incident_photo_add(s, id, v, "report", err))
            return GC_EIO;
    if (idem_key) {
        if (prepare(s,
                    "INSERT INTO idempotency(user_id, key, incident_id, created_at) VALUES "
                    "(?, ?, ?, strftime('%s','now'))",
                    &st, err))
            return GC_EIO;
        sqlite3_bind_int64(st, 1, idem_user);
        sqlite3_bind_text(st, 2, idem_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
        if (step_done(s, st, err, "idempotency"))
            return GC_EIO;
    }
    return 0;
}

int store_incident_update(store *s, int64_t id, const char *expect_status, json_t *set,
                          gc_err *err)
{
    GString *sql = g_string_new("UPDATE incidents SET ");
    GPtrArray *bound = g_ptr_array_new();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
        if (!writable(k))
            continue;
        g_string_append_printf(sql, "%s%s = ?", bound->len ? ", " : "", k);
        g_ptr_array_add(bound, v);
    }
    if (!bound->len) {
        g_string_free(sql, TRUE);
        g_ptr_array_free(bound, TRUE);
        return 0;
    }
    g_string_append(sql, " WHERE id = ?");
    if (expect_status)
        g_string_append(sql, " AND status = ?");
    sqlite3_stmt *st;
    int rc = prepare(s, sql->str, &st, err);
    g_string_free(sql, TRUE);
    if (rc) {
        g_ptr_array_free(bound, TRUE);
        return GC_EIO;
    }
    int n = (int)bound->len;
    for (int i = 0; i < n; i++)
        bind_json(st, i + 1, bound->pdata[i]);
    g_ptr_array_free(bound, TRUE);
    sqlite3_bind_int64(st, n + 1, id);
    if (expect_status)
        sqlite3_bind_text(st, n + 2, expect_status, -1, SQLITE_STATIC);
    if (step_done(s, st, err, "incidents"))
        return GC_EIO;
    if (sqlite3_changes(s->db) == 0)
        return gc_fail(err, GC_ECONFLICT, "status",
                       "the case changed meanwhile (it is no longer %s); reload it",
                       expect_status ? expect_status : "there");
    return 0;
}

int store_incident_history_add(store *s, int64_t id, json_t *h, gc_err *err)
{
    static const char *cols[] = {"at", "actor_id", "actor", "role", "action",
                                 "from_status", "to_status", "note", "data"};
    sqlite3_stmt *st;
    if (prepare(s,
                "INSERT INTO incident_history(incident_id, at, actor_id, actor, role, action, "
                "from_status, to_status, note, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "coalesce(?, '{}'))",
                &st, err))
        return GC_EIO;
    sqlite3_bind_int64(st, 1, id);
    for (size_t i = 0; i < G_N_ELEMENTS(cols); i++)
        bind_json(st, (int)i + 2, json_object_get(h, cols[i]));
    return step_done(s, st, err, "history");
}

int store_incident_history(store *s, int64_t id, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st;
    *arr = json_array();
    if (prepare(s,
                "SELECT at, actor_id, actor, role, action, from_status, to_status, note, data "
                "FROM incident_history WHERE incident_id = ? ORDER BY id",
                &st, err))
        return GC_EIO;
    sqlite3_bind_int64(st, 1, id);
    return each_row(s, st, collect, *arr, err, "history");
}

int store_incidents_due(store *s, int64_t now, int64_t **ids, size_t *n, gc_err *err)
{
    sqlite3_stmt *st;
    *ids = NULL;
    *n = 0;
    if (prepare(s, "SELECT id FROM incidents WHERE deadline IS NOT NULL AND deadline <= ?", &st,
                err))
        return GC_EIO;
    sqlite3_bind_int64(st, 1, now);
    GArray *a = g_array_new(FALSE, FALSE, sizeof(int64_t));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        g_array_append_val(a, id);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        g_array_free(a, TRUE);
        return store_db_fail(s, err, "incidents");
    }
    *n = a->len;
    *ids = (int64_t *)(void *)g_array_free(a, FALSE);
    return 0;
}

int64_t store_incidents_next_deadline(store *s)
{
    sqlite3_stmt *st;
    int64_t t = 0;
    if (!(st = store_stmt(s, "SELECT min(deadline) FROM incidents WHERE deadline IS NOT NULL")))
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        t = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return t;
}

/* ---- queries ---- */

static const char *unit_column(const char *level)
{
    static const char *levels[][2] = {{"district", "district_id"},   {"street", "street_id"},
                                      {"community", "community_id"}, {"grid", "grid_id"},
                                      {"building", "building_id"}};
    for (size_t i = 0; level && i < G_N_ELEMENTS(levels); i++)
        if (!strcmp(level, levels[i][0]))
            return levels[i][1];
    return NULL;
}

/* Appends "col IN (?, ?, …)" for a comma list; returns the values to bind. */
static void in_list(GString *w, const char *col, const char *csv, GPtrArray *binds)
{
    char **parts = g_strsplit(csv, ",", -1);
    g_string_append_printf(w, " AND %s IN (", col);
    int k = 0;
    for (char **p = parts; *p; p++) {
        g_strstrip(*p);
        if (!**p)
            continue;
        g_string_append(w, k++ ? ", ?" : "?");
        g_ptr_array_add(binds, g_strdup(*p));
    }
    if (!k)
        g_string_append(w, "NULL");
    g_string_append(w, ")");
    g_strfreev(parts);
}

int store_incidents_query(store *s, const store_incident_filter *f, int64_t *matched,
                          store_row_cb cb, void *ud, gc_err *err)
{
    GString *w = g_string_new("WHERE 1");
    GPtrArray *tb = g_ptr_array_new_with_free_func(g_free);   /* text binds, in order */
    GArray *nb = g_array_new(FALSE, FALSE, sizeof(double));   /* then numbers */
    if (f->statuses)
        in_list(w, "status", f->statuses, tb);
    if (f->as_of)
        g_string_append_printf(w, " AND created_at <= %lld", (long long)f->as_of);
    if (f->ids) {
        /* case numbers, or ids */
        GString *w2 = g_string_new("");
        in_list(w2, "case_no", f->ids, tb);
        char **parts = g_strsplit(f->ids, ",", -1);
        g_string_append_printf(w, " AND (%s OR CAST(id AS TEXT) IN (", w2->str + 5);
        int k = 0;
        for (char **p = parts; *p; p++) {
            g_strstrip(*p);
            if (!**p)
                continue;
            g_string_append(w, k++ ? ", ?" : "?");
            g_ptr_array_add(tb, g_strdup(*p));
        }
        g_string_append(w, k ? "))" : "NULL))");
        g_strfreev(parts);
        g_string_free(w2, TRUE);
    }
    if (f->category) {
        /* a comma list of codes, each with its sub-classes */
        char **parts = g_strsplit(f->category, ",", -1);
        g_string_append(w, " AND (0");
        for (char **p = parts; *p; p++) {
            g_strstrip(*p);
            if (!**p)
                continue;
            g_string_append(w, " OR category = ? OR category LIKE ? || '.%'");
            g_ptr_array_add(tb, g_strdup(*p));
            g_ptr_array_add(tb, g_strdup(*p));
        }
        g_string_append(w, ")");
        g_strfreev(parts);
    }
    const char *ucol = unit_column(f->unit_level);
    if (ucol && f->unit_id) {
        g_string_append_printf(w, " AND %s = ?", ucol);
        g_ptr_array_add(tb, g_strdup(f->unit_id));
    }
    if (f->source) {
        g_string_append(w, " AND source = ?");
        g_ptr_array_add(tb, g_strdup(f->source));
    }
    if (f->department) {
        g_string_append(w, " AND department = ?");
        g_ptr_array_add(tb, g_strdup(f->department));
    }
    if (f->token) {
        g_string_append(w, " AND token = ?");
        g_ptr_array_add(tb, g_strdup(f->token));
    }
    int ntext = (int)tb->len;
#define NUM(cond, val)                                                                         \
    do {                                                                                       \
        double v_ = (double)(val);                                                             \
        g_string_append(w, cond);                                                              \
        g_array_append_val(nb, v_);                                                            \
    } while (0)
    if (f->reporter_id)
        NUM(" AND reporter_id = ?", f->reporter_id);
    if (f->from)
        NUM(" AND created_at >= ?", f->from);
    if (f->to)
        NUM(" AND created_at < ?", f->to);
    if (f->updated_from)
        NUM(" AND updated_at >= ?", f->updated_from);
    if (f->updated_to)
        NUM(" AND updated_at < ?", f->updated_to);
    if (f->has_bbox) {
        NUM(" AND lon >= ?", f->bbox[0]);
        NUM(" AND lat >= ?", f->bbox[1]);
        NUM(" AND lon <= ?", f->bbox[2]);
        NUM(" AND lat <= ?", f->bbox[3]);
    }
    if (f->overdue)
        NUM(" AND deadline IS NOT NULL AND deadline < ?", f->now);
#undef NUM
    if (f->unplaced)
        g_string_append(w, " AND lon IS NULL");

    /* as_of: the same filters on a view whose status is the one the audit
     * trail says held then; a case with no step recorded by then (brought
     * in with its own dates) was closed if its closed_at had passed, else
     * still reported. */
    char *from = f->as_of ? g_strdup_printf(
                                "(SELECT %s, coalesce((SELECT h.to_status FROM incident_history h "
                                "WHERE h.incident_id = i.id AND h.at <= %lld AND h.to_status IS "
                                "NOT NULL ORDER BY h.at DESC, h.id DESC LIMIT 1), CASE WHEN "
                                "closed_at <= %lld THEN 'closed' END, 'reported') AS status FROM "
                                "incidents i)",
                                INCIDENT_COLS_BUT_STATUS, (long long)f->as_of, (long long)f->as_of)
                          : g_strdup("incidents");
    int rc = 0;
    for (int pass = matched ? 0 : 1; pass < 2 && !rc; pass++) {
        char *sql;
        if (pass == 0)
            sql = g_strdup_printf("SELECT count(*) FROM %s %s", from, w->str);
        else
            sql = g_strdup_printf("SELECT %s FROM %s %s ORDER BY id %s LIMIT %lld OFFSET "
                                  "%lld",
                                  INCIDENT_COLS, from, w->str, f->oldest_first ? "ASC" : "DESC",
                                  (long long)(f->limit > 0 ? f->limit : -1),
                                  (long long)(f->offset > 0 ? f->offset : 0));
        sqlite3_stmt *st;
        rc = prepare(s, sql, &st, err);
        g_free(sql);
        if (rc)
            break;
        int k = 1;
        for (int i = 0; i < ntext; i++)
            sqlite3_bind_text(st, k++, tb->pdata[i], -1, SQLITE_STATIC);
        for (guint i = 0; i < nb->len; i++) {
            double v = g_array_index(nb, double, i);
            if (v == (double)(int64_t)v)
                sqlite3_bind_int64(st, k++, (int64_t)v);
            else
                sqlite3_bind_double(st, k++, v);
        }
        if (pass == 0) {
            if (sqlite3_step(st) == SQLITE_ROW)
                *matched = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        } else {
            rc = each_row(s, st, cb, ud, err, "incidents");
        }
    }
    g_free(from);
    g_string_free(w, TRUE);
    g_ptr_array_free(tb, TRUE);
    g_array_free(nb, TRUE);
    return rc;
}

/* ---- categories and time limits ---- */

int store_categories(store *s, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st;
    *arr = json_array();
    if (prepare(s, "SELECT code, parent, name, kind, department, active FROM categories "
                   "ORDER BY code",
                &st, err))
        return GC_EIO;
    return each_row(s, st, collect, *arr, err, "categories");
}

int store_category_get(store *s, const char *code, json_t **row, gc_err *err)
{
    sqlite3_stmt *st;
    *row = NULL;
    char key[160];
    snprintf(key, sizeof key, "category\x1f%s", code);
    json_t *m = store_memo_get(s, key);
    if (m) {
        *row = json_deep_copy(m);
        return 0;
    }
    if (prepare(s, "SELECT code, parent, name, kind, department, active FROM categories "
                   "WHERE code = ?",
                &st, err))
        return GC_EIO;
    sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *row = row_json(st);
    sqlite3_reset(st);
    if (*row)
        store_memo_put(s, key, json_deep_copy(*row));
    return *row ? 0 : gc_fail(err, GC_ENOTFOUND, "category", "unknown category '%s'", code);
}

int store_category_put(store *s, json_t *row, gc_err *err)
{
    sqlite3_stmt *st;
    if (store_begin(s, err))
        return GC_EIO;
    store_memo_clear(s);
    if (prepare(s,
                "INSERT INTO categories(code, parent, name, kind, department, active) VALUES "
                "(?, ?, ?, ?, ?, coalesce(?, 1)) ON CONFLICT(code) DO UPDATE SET "
                "parent = excluded.parent, name = excluded.name, kind = excluded.kind, "
                "department = excluded.department, active = excluded.active",
                &st, err)) {
        store_rollback(s);
        return GC_EIO;
    }
    static const char *cols[] = {"code", "parent", "name", "kind", "department", "active"};
    for (size_t i = 0; i < G_N_ELEMENTS(cols); i++)
        bind_json(st, (int)i + 1, json_object_get(row, cols[i]));
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_rollback(s);
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return gc_fail(err, GC_EINVAL, "parent", "no such parent category");
        if (ext == SQLITE_CONSTRAINT_CHECK)
            return gc_fail(err, GC_EINVAL, "kind", "kind must be event or component");
        return store_db_fail(s, err, "categories");
    }
    if (store_change_append(s, "categories", json_string_value(json_object_get(row, "code")), row,
                            err) ||
        store_commit(s, err)) {
        store_rollback(s);
        return GC_EIO;
    }
    return 0;
}

int store_time_limit(store *s, const char *category, const char *step, int64_t *seconds,
                     gc_err *err)
{
    /* its own row, its major class's (the code before the dot), then '*' */
    char key[200];
    snprintf(key, sizeof key, "limit\x1f%s\x1f%s", category, step);
    json_t *m = store_memo_get(s, key);
    if (m) {
        *seconds = json_integer_value(m);
        return 0;
    }
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT seconds FROM time_limits WHERE step = ?1 AND category IN (?2, "
                "substr(?2, 1, instr(?2 || '.', '.') - 1), '*') ORDER BY "
                "CASE category WHEN ?2 THEN 0 WHEN '*' THEN 2 ELSE 1 END LIMIT 1",
                &st, err))
        return GC_EIO;
    sqlite3_bind_text(st, 1, step, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, category, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seconds = sqlite3_column_int64(st, 0);
        store_memo_put(s, key, json_integer(*seconds));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0
                            : gc_fail(err, GC_ENOTFOUND, "step", "no time limit for step %s", step);
}

int store_time_limits(store *s, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st;
    *arr = json_array();
    if (prepare(s, "SELECT category, step, seconds FROM time_limits ORDER BY category, step",
                &st, err))
        return GC_EIO;
    return each_row(s, st, collect, *arr, err, "time limits");
}

int store_time_limit_put(store *s, const char *category, const char *step, int64_t seconds,
                         gc_err *err)
{
    sqlite3_stmt *st;
    if (store_begin(s, err))
        return GC_EIO;
    store_memo_clear(s);
    if (prepare(s,
                "INSERT INTO time_limits(category, step, seconds) VALUES (?, ?, ?) "
                "ON CONFLICT(category, step) DO UPDATE SET seconds = excluded.seconds",
                &st, err)) {
        store_rollback(s);
        return GC_EIO;
    }
    sqlite3_bind_text(st, 1, category, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seconds);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_rollback(s);
        return gc_fail(err, GC_EINVAL, "seconds", "a time limit is a step and seconds > 0");
    }
    json_t *j = json_pack("{s:s,s:s,s:I}", "category", category, "step", step, "seconds",
                          (json_int_t)seconds);
    char id[160];
    snprintf(id, sizeof id, "%s/%s", category, step);
    rc = store_change_append(s, "time_limits", id, j, err);
    json_decref(j);
    if (rc || store_commit(s, err)) {
        store_rollback(s);
        return GC_EIO;
    }
    return 0;
}
