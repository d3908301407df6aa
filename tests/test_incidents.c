/* Unit tests of the incidents module: every transition of the closed loop for
 * every role, deadline arithmetic, time-limit fallback, escalation exactly
 * once on a real store file, and the audit trail refusing edits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <sqlite3.h>

#include "gridcc/incidents.h"
#include "gridcc/store.h"
#include "gridcc/parse.h"

/* The loop as the issue draws it, written out independently of the code. */
static const struct {
    const char *from, *action, *to;
} EDGES[] = {
    {"reported", "register", "registered"}, {"reported", "reject", "rejected"},
    {"registered", "dispatch", "dispatched"}, {"dispatched", "handle", "handled"},
    {"handled", "verify", "verified"},       {"handled", "send_back", "dispatched"},
    {"verified", "close", "closed"},         {"closed", "evaluate", "evaluated"},
};

static const char *edge_to(const char *from, const char *action)
{
    for (size_t i = 0; i < sizeof EDGES / sizeof *EDGES; i++)
        if (!strcmp(EDGES[i].from, from) && !strcmp(EDGES[i].action, action))
            return EDGES[i].to;
    return NULL;
}

static void test_every_edge(void **state)
{
    int legal = 0;
    for (int s = 0; s < INC_NSTATUS; s++)
        for (int a = 0; a < ACT_N; a++) {
            const char *want = edge_to(incident_status_name(s), incident_action_name(a));
            int got = incident_next(s, a);
            if (want) {
                legal++;
                assert_int_equal(got, incident_status_parse(want));
            } else {
                assert_int_equal(got, -1);
            }
        }
    assert_int_equal(legal, 8);
    assert_int_equal(incident_next(INC_NSTATUS, ACT_REGISTER), -1);
    assert_int_equal(incident_next(INC_REPORTED, ACT_N), -1);
}

/* Who may take each action, by the issue: operators register, reject,
 * dispatch, verify, send back, close; department users handle their own
 * department's cases; residents evaluate their own; admins as operators. */
static bool role_may(const char *role, const char *action, bool own_dept, bool own_case,
                     bool resident_reported)
{
    bool staff = !strcmp(role, "operator") || !strcmp(role, "admin");
    if (!strcmp(action, "handle"))
        return !strcmp(role, "admin") || (!strcmp(role, "department") && own_dept);
    if (!strcmp(action, "evaluate")) {
        if (!strcmp(role, "resident"))
            return own_case;
        return staff && !resident_reported;
    }
    return staff;
}

static void test_every_role(void **state)
{
    const char *roles[] = {"operator", "worker", "planner", "admin", "department", "resident"};
    char buf[128];
    for (int s = 0; s < INC_NSTATUS; s++)
        for (int a = 0; a < ACT_N; a++)
            for (size_t r = 0; r < sizeof roles / sizeof *roles; r++)
                for (int variant = 0; variant < 8; variant++) {
                    bool own_dept = variant & 1, own_case = variant & 2,
                         resident_reported = variant & 4;
                    inc_actor who = {7, "u", role_parse(roles[r]), own_dept ? "城管" : "环卫"};
                    inc_case c = {s, "城管", own_case ? 7 : 9,
                                  resident_reported ? "resident" : "hotline"};
                    if (!resident_reported && !own_case)
                        c.reporter_id = 0;
                    if (!resident_reported && own_case)
                        continue;   /* a resident's own case is a resident report */
                    gc_err e = {0};
                    int rc = incident_check(&c, a, &who, &e);
                    const char *to = edge_to(incident_status_name(s), incident_action_name(a));
                    if (!to) {
                        assert_int_equal(rc, GC_ECONFLICT);
                        assert_string_equal(e.field, "action");
                        /* the message names what is allowed */
                        incident_allowed(s, buf, sizeof buf);
                        assert_non_null(strstr(e.msg, buf[0] ? buf : "none"));
                    } else if (role_may(roles[r], incident_action_name(a), own_dept, own_case,
                                        resident_reported)) {
                        assert_int_equal(rc, 0);
                    } else {
                        assert_int_equal(rc, GC_EFORBIDDEN);
                    }
                }
}

static void test_names(void **state)
{
    char buf[64];
    assert_string_equal(incident_allowed(INC_REPORTED, buf, sizeof buf), "register,reject");
    assert_string_equal(incident_allowed(INC_HANDLED, buf, sizeof buf), "verify,send_back");
    assert_string_equal(incident_allowed(INC_EVALUATED, buf, sizeof buf), "");
    assert_int_equal(incident_status_parse("nonsense"), -1);
    assert_int_equal(incident_action_parse("send_back"), ACT_SEND_BACK);
    assert_true(incident_status_is_closed(INC_REJECTED));
    assert_false(incident_status_is_closed(INC_VERIFIED));
    assert_string_equal(incident_step(INC_DISPATCHED), "handle");
    assert_null(incident_step(INC_CLOSED));
}

static void test_deadlines(void **state)
{
    assert_int_equal(incident_deadline(1000, 3600), 4600);
    /* the timer waits for the earliest deadline, never negative, never longer than max */
    assert_int_equal(incident_timer_ms(100, 99000, 60000), 1000);
    assert_int_equal(incident_timer_ms(100, 150000, 60000), 0);
    assert_int_equal(incident_timer_ms(10000, 0, 60000), 60000);
    assert_int_equal(incident_timer_ms(0, 5, 60000), 60000);
    int lv;
    int64_t dl;
    incident_escalation(INC_LEVEL_GRID, 5000, 600, &lv, &dl);
    assert_int_equal(lv, INC_LEVEL_COMMUNITY);
    assert_int_equal(dl, 5600);
    incident_escalation(INC_LEVEL_DISTRICT, 5000, 600, &lv, &dl);
    assert_int_equal(lv, INC_LEVEL_DISTRICT);   /* the district is the top: it stays there */
}

static char *tmpdb(void)
{
    char *dir = g_dir_make_tmp("gridcc-inc-XXXXXX", NULL);
    char *p = g_build_filename(dir, "t.db", NULL);
    g_free(dir);
    return p;
}

static void rmdb(char *p)
{
    char *d = g_path_get_dirname(p);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char *f = g_strconcat(p, sfx[i], NULL);
        unlink(f);
        g_free(f);
    }
    rmdir(d);
    g_free(d);
    g_free(p);
}

static void test_time_limit_fallback(void **state)
{
    char *path = tmpdb();
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(path, &s, &e), 0);
    int64_t sec = 0;
    /* E04.01 has no row of its own: its major class E04 says 7200 for handle */
    assert_int_equal(store_time_limit(s, "E04.01", "handle", &sec, &e), 0);
    assert_int_equal(sec, 7200);
    /* E01.02 falls back to '*' */
    assert_int_equal(store_time_limit(s, "E01.02", "handle", &sec, &e), 0);
    assert_int_equal(sec, 86400);
    assert_int_equal(store_time_limit_put(s, "E01.02", "handle", 42, &e), 0);
    assert_int_equal(store_time_limit(s, "E01.02", "handle", &sec, &e), 0);
    assert_int_equal(sec, 42);
    assert_int_equal(store_time_limit_put(s, "E01.02", "handle", 0, &e), GC_EINVAL);
    assert_int_equal(store_time_limit_put(s, "E01.02", "lunch", 5, &e), GC_EINVAL);
    store_close(s);
    rmdb(path);
}

static void test_loop_and_escalation(void **state)
{
    char *path = tmpdb();
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(path, &s, &e), 0);
    assert_int_equal(store_time_limit_put(s, "E01", "register", 60, &e), 0);
    inc_actor worker = {0, "wk", ROLE_WORKER, NULL}, op = {0, "op", ROLE_OPERATOR, NULL};
    json_t *in = json_pack("{s:s,s:s,s:f,s:f}", "category", "E01.02", "description", "垃圾",
                           "lon", 116.3, "lat", 40.0);
    json_t *row;
    bool existing;
    int64_t t0 = 1700000000;
    assert_int_equal(incident_report(s, NULL, &worker, in, "k1", t0, &row, &existing, &e), 0);
    assert_false(existing);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "reported");
    assert_int_equal(json_integer_value(json_object_get(row, "deadline")), t0 + 60);
    const char *case_no = json_string_value(json_object_get(row, "case_no"));
    assert_int_equal(strlen(case_no), strlen("2023-000001"));
    char key[32];
    snprintf(key, sizeof key, "%s", case_no);
    json_decref(row);
    /* the same key again: the first case, nothing new */
    assert_int_equal(incident_report(s, NULL, &worker, in, "k1", t0 + 5, &row, &existing, &e), 0);
    assert_true(existing);
    assert_string_equal(json_string_value(json_object_get(row, "case_no")), key);
    json_decref(row);
    json_decref(in);

    /* not due yet: nothing */
    assert_int_equal(incident_escalate_due(s, t0 + 59, &e), 0);
    assert_int_equal(store_incidents_next_deadline(s), t0 + 60);
    /* due: escalated once, to the community, with a new deadline */
    assert_int_equal(incident_escalate_due(s, t0 + 61, &e), 1);
    assert_int_equal(incident_escalate_due(s, t0 + 62, &e), 0);
    assert_int_equal(incident_get(s, key, true, &row, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "level")), INC_LEVEL_COMMUNITY);
    assert_int_equal(json_integer_value(json_object_get(row, "deadline")), t0 + 61 + 60);
    json_t *hist = json_object_get(row, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 1), "action")),
                        "escalate");
    json_decref(row);

    /* a worker may not register; an operator may, and the step changes */
    assert_int_equal(incident_act(s, key, ACT_REGISTER, &worker, NULL, t0 + 70, &row, &e),
                     GC_EFORBIDDEN);
    assert_int_equal(incident_act(s, key, ACT_CLOSE, &op, NULL, t0 + 70, &row, &e), GC_ECONFLICT);
    assert_non_null(strstr(e.msg, "register,reject"));
    assert_int_equal(incident_act(s, key, ACT_REGISTER, &op, NULL, t0 + 70, &row, &e), 0);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "registered");
    assert_int_equal(json_integer_value(json_object_get(row, "level")), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "overdue_count")), 1);
    json_decref(row);

    /* the audit trail cannot be edited, even by SQL on the file */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE incident_history SET actor = 'x'", 0, 0, 0),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM incident_history", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);

    /* change log: report, escalation (+ alert), registration */
    int64_t seq = store_last_seq(s);
    assert_true(seq >= 4);
    store_close(s);
    rmdb(path);
}

/* One reading of times for API filters, Open311 dates and hotline orders:
 * local time is Beijing's (main sets TZ before anything reads it). */
static void test_time_parse(void **st)
{
    static const struct { const char *in; int64_t want; } ok[] = {
        {"1795526181", 1795526181},
        {"0", 0},
        {"2026-11-20T08:30:00Z", 1795163400},
        {"2026-11-20T16:30:00+08:00", 1795163400},
        {"2026-11-20T16:30:00", 1795163400},          /* no zone: local */
        {"2026-11-20 16:30:00", 1795163400},
        {"2026-11-20 16:30", 1795163400},
        {"2026-11-20T16:30", 1795163400},             /* no seconds (a form's datetime-local) */
        {"2026/11/20 16:30", 1795163400},
        {"11/20/2026 04:30:00 PM", 1795163400},        /* NYC 311 */
        {"11/20/2026 16:30", 1795163400},
        {"2026-11-20", 1795104000},                    /* a date: local midnight */
        {"20261120", 1795104000},                      /* eight digits are a date */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        int64_t t = -1;
        assert_true(gc_time_parse(ok[i].in, &t));
        if (t != ok[i].want)
            fail_msg("%s: %lld, want %lld", ok[i].in, (long long)t, (long long)ok[i].want);
    }
    static const char *bad[] = {"", "tomorrow", "2026-13-01", "2026-11-20 25:00", "11/20/2026 PM",
                                "2026-11-20T08:30:00Q", "1795526181x"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        int64_t t;
        if (gc_time_parse(bad[i], &t))
            fail_msg("'%s' was taken as %lld", bad[i], (long long)t);
    }
    assert_false(gc_time_parse(NULL, &(int64_t){0}));
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_edge),          cmocka_unit_test(test_every_role),
        cmocka_unit_test(test_names),               cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_time_limit_fallback), cmocka_unit_test(test_loop_and_escalation),
        cmocka_unit_test(test_time_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
