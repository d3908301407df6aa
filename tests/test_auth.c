/* auth: argon2id hashes, tokens stored only as hashes, expiry, roles, the
 * failed-login limiter. */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "gridcc/auth.h"

static void test_passwords(void **st)
{
    char h[256];
    gc_err e = {0};
    assert_int_equal(auth_hash_password("correct horse", h, &e), 0);
    assert_non_null(strstr(h, "$argon2id$"));
    assert_null(strstr(h, "correct horse"));
    assert_true(auth_verify_password(h, "correct horse"));
    assert_false(auth_verify_password(h, "correct hors"));
    assert_false(auth_verify_password("", "x"));
    assert_false(auth_verify_password(NULL, "x"));
    assert_int_equal(auth_hash_password("short", h, &e), GC_EINVAL);
    assert_string_equal(e.field, "password");
}

static void test_tokens(void **st)
{
    char *dir = g_dir_make_tmp("gridcc-auth-XXXXXX", NULL);
    char *p = g_build_filename(dir, "a.db", NULL);
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(p, &s, &e), 0);
    int64_t uid;
    assert_int_equal(store_user_add(s, "op", ROLE_OPERATOR, NULL, NULL, &uid, &e), 0);
    char tok[AUTH_TOKEN_CHARS], tok2[AUTH_TOKEN_CHARS];
    int64_t seq = store_last_seq(s);
    assert_int_equal(auth_issue_token(s, uid, 0, "t", tok, &e), 0);
    assert_int_equal(store_last_seq(s), seq + 1);   /* logged, without the secret */
    assert_int_equal(auth_issue_token(s, uid, 3600, "t", tok2, &e), 0);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(strlen(tok), 47);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    store_user u;
    assert_int_equal(auth_check_bearer(s, hdr, &u, &e), 0);
    assert_int_equal(u.role, ROLE_OPERATOR);
    assert_int_equal(auth_check_bearer(s, NULL, &u, &e), GC_EAUTH);
    assert_int_equal(auth_check_bearer(s, "Basic abc", &u, &e), GC_EAUTH);
    assert_int_equal(auth_check_bearer(s, "Bearer gcc_wrong", &u, &e), GC_EAUTH);
    assert_int_equal(auth_check_bearer(s, "Bearer ", &u, &e), GC_EAUTH);
    store_close(s);
    /* the token itself is nowhere in the file */
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens WHERE instr(hash, ?) > 0", -1, &q, NULL);
    sqlite3_bind_blob(q, 1, tok, (int)strlen(tok), SQLITE_STATIC);
    sqlite3_step(q);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM change_log WHERE instr(data, ?) > 0", -1, &q, NULL);
    sqlite3_bind_text(q, 1, tok + 4, 20, SQLITE_STATIC);
    sqlite3_step(q);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    /* an expired token no longer works */
    sqlite3_exec(db, "UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE expires_at IS NOT NULL",
                 NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(store_open(p, &s, &e), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok2);
    assert_int_equal(auth_check_bearer(s, hdr, &u, &e), GC_EAUTH);
    store_close(s);
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(p);
    g_free(dir);
}

static void test_roles(void **st)
{
    static const char *names[] = {"operator", "worker", "planner", "admin", "department",
                                  "resident"};
    unsigned seen = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        gc_role r = role_parse(names[i]);
        assert_int_not_equal(r, ROLE_NONE);
        assert_string_equal(role_name(r), names[i]);
        assert_int_equal(seen & r, 0);   /* one bit each */
        seen |= r;
    }
    assert_int_equal(seen, ROLE_ANY);
    assert_int_equal(role_parse("root"), ROLE_NONE);
    assert_int_equal(role_parse("Operator"), ROLE_NONE);
    assert_int_equal(role_parse(""), ROLE_NONE);
    assert_int_equal(role_parse(NULL), ROLE_NONE);
    char buf[128];
    assert_string_equal(role_list(ROLE_OPERATOR | ROLE_ADMIN, buf, sizeof buf), "operator, admin");
}

static void test_limiter(void **st)
{
    auth_limiter *l = auth_limiter_new(3, 60);
    int64_t t = 1000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(auth_limiter_check(l, "alice", t), 0);
        auth_limiter_fail(l, "alice", t);
    }
    assert_true(auth_limiter_check(l, "alice", t + 1) > 0);
    assert_int_equal(auth_limiter_check(l, "bob", t + 1), 0);
    assert_int_equal(auth_limiter_check(l, "alice", t + 61), 0);   /* window over */
    auth_limiter_fail(l, "bob", t);
    auth_limiter_reset(l, "bob");
    assert_int_equal(auth_limiter_check(l, "bob", t), 0);
    auth_limiter_free(l);
}

/* Parallel guesses: attempts still being checked count, so the fourth of
 * four sent at once is refused before any has failed. */
static void test_limiter_in_flight(void **st)
{
    auth_limiter *l = auth_limiter_new(3, 60);
    int64_t t = 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_limiter_begin(l, "carol", t), 0);
    assert_true(auth_limiter_begin(l, "carol", t) > 0);
    assert_true(auth_limiter_check(l, "carol", t) > 0);
    for (int i = 0; i < 3; i++)
        auth_limiter_end(l, "carol", t, true);
    assert_true(auth_limiter_begin(l, "carol", t + 1) > 0);   /* three failures now */
    /* a success forgets the failures */
    assert_int_equal(auth_limiter_begin(l, "dave", t), 0);
    auth_limiter_end(l, "dave", t, true);
    assert_int_equal(auth_limiter_begin(l, "dave", t), 0);
    auth_limiter_end(l, "dave", t, false);
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_limiter_begin(l, "dave", t), 0);
    auth_limiter_free(l);
}

int main(void)
{
    assert_int_equal(auth_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwords), cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_roles), cmocka_unit_test(test_limiter), cmocka_unit_test(test_limiter_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
