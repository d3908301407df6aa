/* store_users: users and their bearer tokens (only BLAKE2b hashes of
 * tokens are stored). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gridcc/parse.h"
#include "store_priv.h"

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

int store_token_revoke(store *s, const unsigned char *hash, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "DELETE FROM tokens WHERE hash = ?");
    if (!st)
        return store_db_fail(s, err, "tokens");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_db_fail(s, err, "tokens");
    return sqlite3_changes(s->db) ? 0 : gc_fail(err, GC_ENOTFOUND, "Authorization", "no such token");
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

int store_user_by_id(store *s, int64_t id, store_user *out, gc_err *err)
{
    sqlite3_stmt *st =
        store_stmt(s, "SELECT id, name, role, pwhash, disabled, department FROM users WHERE id = ?");
    if (!st)
        return store_db_fail(s, err, "users");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_user_from_row(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? gc_fail(err, GC_ENOTFOUND, "worker", "no user with id %lld",
                                       (long long)id)
                             : store_db_fail(s, err, "users");
}

int store_user_find(store *s, const char *key, store_user *out, gc_err *err)
{
    int rc = GC_ENOTFOUND;
    size_t len = key ? strlen(key) : 0;
    int64_t id;
    if (len && strspn(key, "0123456789") == len && !gc_parse_int(key, "id", 0, INT64_MAX, &id, NULL))
        rc = store_user_by_id(s, id, out, err);
    if (rc == GC_ENOTFOUND && len)   /* a user may be called "42" too */
        rc = store_user_get(s, key, out, err);
    if (rc == GC_ENOTFOUND)
        return gc_fail(err, GC_ENOTFOUND, "worker", "no user with id or name '%s'", key ? key : "");
    return rc;
}
