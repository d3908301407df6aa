/* store: migrations (a file made by an older build opens and upgrades with
 * its data), WAL mode, the change log written with every mutation, bad
 * files refused with a message. */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "gridcc/store.h"

static char *tmpdir;

static char *path(const char *name) { return g_build_filename(tmpdir, name, NULL); }

/* a 1x1 degree square as WKB (little-endian polygon) */
static size_t square_wkb(unsigned char *buf, double x, double y)
{
    unsigned char *p = buf;
    *p++ = 1;
    uint32_t type = 3, rings = 1, pts = 5;
    memcpy(p, &type, 4), p += 4;
    memcpy(p, &rings, 4), p += 4;
    memcpy(p, &pts, 4), p += 4;
    double c[10] = {x, y, x + 1, y, x + 1, y + 1, x, y + 1, x, y};
    memcpy(p, c, sizeof c), p += sizeof c;
    return (size_t)(p - buf);
}

static int put_layer(store *s, const char *name, int n)
{
    store_feature_in f[4];
    unsigned char wkb[4][128];
    char ids[4][16];
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "F%d", i);
        f[i] = (store_feature_in){.fid = ids[i], .name = "名", .code = ids[i], .wkb = wkb[i],
                                  .props_json = "{\"households\":300}"};
        f[i].wkb_len = square_wkb(wkb[i], 116 + i, 39);
    }
    store_layer meta = {0};
    snprintf(meta.name, sizeof meta.name, "%s", name);
    snprintf(meta.level, sizeof meta.level, "grid");
    return store_layer_replace(s, &meta, f, (size_t)n, NULL, NULL, NULL);
}

static void test_migrates_older_file(void **st)
{
    char *p = path("old.db");
    store *s;
    gc_err e = {0};
    /* an "older build": schema version 1 only */
    assert_int_equal(store_open_version(p, 1, &s, &e), 0);
    assert_int_equal(store_schema_version(s), 1);
    store_close(s);
    /* ...which wrote its rows its own way: SQL through SpatiaLite, with
     * SpatiaLite's trigger-kept spatial index */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_enable_load_extension(db, 1);
    char *msg = NULL;
    int rc = sqlite3_exec(
        db,
        "SELECT load_extension('mod_spatialite');"
        "INSERT INTO layers(name, level, title, version, feature_count, imported_at) "
        "  VALUES ('grid', 'grid', 'grid', 1, 3, '2025-01-01T00:00:00Z');"
        "INSERT INTO features(layer, fid, level, geom) VALUES "
        " ('grid', 'F0', 'grid', CastToMultiPolygon(GeomFromText('POLYGON((116 39,117 39,117 40,116 40,116 39))', 4326))),"
        " ('grid', 'F1', 'grid', CastToMultiPolygon(GeomFromText('POLYGON((117 39,118 39,118 40,117 40,117 39))', 4326))),"
        " ('grid', 'F2', 'grid', CastToMultiPolygon(GeomFromText('POLYGON((118 39,119 39,119 40,118 40,118 39))', 4326)));",
        NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("old build's insert: %s", msg);
    sqlite3_close(db);
    /* this build opens it, upgrades, keeps the data */
    assert_int_equal(store_open(p, &s, &e), 0);
    assert_int_equal(store_schema_version(s), store_latest_version());
    assert_true(store_latest_version() >= 3);
    store_query q = {.layer = "grid"};
    int64_t n = 0;
    assert_int_equal(store_features_query(s, &q, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 3);
    /* migration 4 carried the rows into our own R*Tree: bbox queries find them */
    store_query qb = {.layer = "grid", .has_bbox = true, .bbox = {117.5, 39.5, 118.5, 39.6}};
    assert_int_equal(store_features_query(s, &qb, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 2);
    /* and new writes work on the upgraded file */
    assert_int_equal(put_layer(s, "grid2", 2), 0);
    /* the users table of migration 2 works */
    int64_t uid;
    assert_int_equal(store_user_add(s, "alice", ROLE_OPERATOR, NULL, NULL, &uid, &e), 0);
    store_close(s);
    /* reopening changes nothing */
    assert_int_equal(store_open(p, &s, &e), 0);
    assert_int_equal(store_schema_version(s), store_latest_version());
    store_close(s);
    g_free(p);
}

static void test_refuses_newer_and_garbage(void **st)
{
    char *p = path("newer.db");
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL);
    sqlite3_close(db);
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(p, &s, &e), GC_EINVAL);
    assert_non_null(strstr(e.msg, "newer than this build"));
    g_free(p);
    p = path("garbage.db");
    FILE *f = fopen(p, "w");
    fputs("this is not a database, just text that is long enough to look like a header......"
          "..........................................", f);
    fclose(f);
    assert_int_not_equal(store_open(p, &s, &e), 0);
    assert_non_null(strstr(e.msg, "garbage.db"));
    g_free(p);
    assert_int_not_equal(store_open("/nonexistent-dir/x.db", &s, &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x.db"));
}

static int collect(void *ud, const store_change *c)
{
    GPtrArray *a = ud;
    g_ptr_array_add(a, g_strdup_printf("%lld %s %s", (long long)c->seq, c->topic, c->id));
    return 0;
}

static void test_change_log_and_wal(void **st)
{
    char *p = path("log.db");
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(p, &s, &e), 0);
    int64_t seq0 = store_last_seq(s);
    assert_int_equal(put_layer(s, "grid", 2), 0);
    assert_int_equal(put_layer(s, "grid", 4), 0);
    int64_t uid;
    assert_int_equal(store_user_add(s, "bob", ROLE_WORKER, NULL, NULL, &uid, &e), 0);
    assert_int_equal(store_user_add(s, "bob", ROLE_WORKER, NULL, NULL, &uid, &e), GC_ECONFLICT);
    assert_int_equal(store_user_add(s, "eve", ROLE_NONE, NULL, NULL, &uid, &e), GC_EINVAL);
    assert_string_equal(e.field, "role");
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_changes_since(s, seq0, 0, collect, a, &e), 0);
    assert_int_equal(a->len, 3);   /* failed mutations log nothing */
    assert_non_null(strstr(g_ptr_array_index(a, 0), "layers grid"));
    assert_non_null(strstr(g_ptr_array_index(a, 2), "users"));
    g_ptr_array_free(a, TRUE);
    store_layer L;
    assert_int_equal(store_layer_get(s, "grid", &L, &e), 0);
    assert_int_equal(L.version, 2);
    assert_int_equal(L.count, 4);
    free(L.fields_json);
    /* another connection's commit is noticed */
    store *s2;
    assert_int_equal(store_open(p, &s2, &e), 0);
    store_changed_elsewhere(s);
    assert_int_equal(put_layer(s2, "grid", 1), 0);
    assert_true(store_changed_elsewhere(s));
    assert_false(store_changed_elsewhere(s));
    store_close(s2);
    store_close(s);
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_stmt *stt;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stt, NULL);
    assert_int_equal(sqlite3_step(stt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stt, 0), "wal");
    sqlite3_finalize(stt);
    sqlite3_close(db);
    g_free(p);
}

static void test_queries(void **st)
{
    char *p = path("q.db");
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(p, &s, &e), 0);
    assert_int_equal(put_layer(s, "grid", 4), 0);
    int64_t n = 0;
    store_query q = {.layer = "grid", .has_bbox = true, .bbox = {116.5, 39.5, 117.5, 39.6}};
    assert_int_equal(store_features_query(s, &q, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 2);   /* F0 and F1 touch the box */
    const char *k[] = {"households"}, *v[] = {"300"};
    store_query q2 = {.layer = "grid", .nprops = 1, .prop_keys = k, .prop_vals = v};
    assert_int_equal(store_features_query(s, &q2, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 4);
    const char *v2[] = {"301"};
    q2.prop_vals = v2;
    assert_int_equal(store_features_query(s, &q2, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 0);
    const char *k3[] = {"id"}, *v3[] = {"F2"};
    store_query q3 = {.layer = "grid", .nprops = 1, .prop_keys = k3, .prop_vals = v3};
    assert_int_equal(store_features_query(s, &q3, &n, NULL, NULL, &e), 0);
    assert_int_equal(n, 1);
    const char *k4[] = {"bad\"key"};
    q3.prop_keys = k4;
    assert_int_equal(store_features_query(s, &q3, &n, NULL, NULL, &e), GC_EINVAL);
    store_close(s);
    g_free(p);
}



/* 006 rewrote two CHECKs as ORs (no temporary b-tree per row): they must
 * refuse exactly what they did, on a file upgraded from 005 as on a new one. */
static void test_incident_checks(void **st)
{
    char *p = path("checks.db");
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open_version(p, 5, &s, &e), 0);
    store_close(s);
    assert_int_equal(store_open(p, &s, &e), 0);
    assert_int_equal(store_schema_version(s), store_latest_version());
    store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE name = 'incidents'", -1, &q, NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    const char *sql = (const char *)sqlite3_column_text(q, 0);
    assert_null(strstr(sql, "source IN"));
    assert_null(strstr(sql, "status IN"));
    assert_non_null(strstr(sql, "status = 'evaluated'"));
    sqlite3_finalize(q);
    static const char ins[] =
        "INSERT INTO incidents(case_no, category, description, source, status, step_started, "
        "created_at, updated_at) VALUES ('%s', 'E01', 'd', '%s', '%s', 1, 1, 1)";
    struct { const char *source, *status; int rc; } cases[] = {
        {"hotline", "reported", SQLITE_OK}, {"camera", "evaluated", SQLITE_OK},
        {"phone", "reported", SQLITE_CONSTRAINT}, {"worker", "lost", SQLITE_CONSTRAINT},
        {"Worker", "reported", SQLITE_CONSTRAINT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *q2 = g_strdup_printf(ins, cases[i].source, cases[i].source, cases[i].status);
        int rc = sqlite3_exec(db, q2, NULL, NULL, NULL);
        assert_int_equal(rc, cases[i].rc);
        g_free(q2);
    }
    sqlite3_close(db);
    g_free(p);
}

/* ---- group commit ---- */

typedef struct gw {
    const char *id;
    bool fail;
    int rc;
    bool done, durable;
    store_group *requeue;   /* queue another write from done */
} gw;

static int gw_write(store *s, void *ud)
{
    gw *w = ud;
    gc_err e = {0};
    if (store_begin(s, &e))
        return -1;
    json_t *d = json_pack("{s:s}", "id", w->id);
    int rc = store_change_append(s, "test", w->id, d, &e);
    json_decref(d);
    if (rc || w->fail) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s, &e);
}

static gw late = {.id = "late"};

static void gw_done(void *ud, int rc, const gc_err *commit_err)
{
    gw *w = ud;
    w->done = true;
    w->rc = rc;
    w->durable = !rc && !commit_err;
    if (w->requeue)
        store_group_add(w->requeue, gw_write, gw_done, &late);
}

static void test_group_commit(void **st)
{
    char *p = path("group.db");
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(p, &s, &e), 0);
    int64_t seq0 = store_last_seq(s);
    store_group *g = store_group_new(s);
    gw w[3] = {{.id = "a"}, {.id = "b", .fail = true}, {.id = "c"}};
    w[2].requeue = g;
    for (int i = 0; i < 3; i++)
        store_group_add(g, gw_write, gw_done, &w[i]);
    assert_int_equal(store_group_pending(g), 3);
    assert_false(w[0].done);   /* nothing runs before the loop does */
    while (store_group_pending(g) || !late.done)
        g_main_context_iteration(NULL, TRUE);
    /* the failing write is rolled back alone; the others are durable */
    assert_true(w[0].durable);
    assert_false(w[1].durable);
    assert_int_equal(w[1].rc, -1);
    assert_true(w[2].durable);
    assert_true(late.durable);   /* queued from a done callback: the next batch */
    /* queued and never reached by the loop: free commits it */
    gw last = {.id = "last"};
    store_group_add(g, gw_write, gw_done, &last);
    store_group_free(g);
    assert_true(last.durable);
    /* what another connection sees */
    store *s2;
    assert_int_equal(store_open(p, &s2, &e), 0);
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_changes_since(s2, seq0, 0, collect, a, &e), 0);
    assert_int_equal(a->len, 4);
    assert_non_null(strstr(g_ptr_array_index(a, 0), "test a"));
    assert_non_null(strstr(g_ptr_array_index(a, 1), "test c"));
    assert_non_null(strstr(g_ptr_array_index(a, 2), "test late"));
    assert_non_null(strstr(g_ptr_array_index(a, 3), "test last"));
    g_ptr_array_free(a, TRUE);
    store_close(s2);
    store_close(s);
    g_free(p);
}

int main(void)
{
    tmpdir = g_dir_make_tmp("gridcc-store-XXXXXX", NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrates_older_file), cmocka_unit_test(test_refuses_newer_and_garbage),
        cmocka_unit_test(test_change_log_and_wal), cmocka_unit_test(test_queries),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_incident_checks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = 1;
    g_free(cmd);
    g_free(tmpdir);
    return rc;
}
