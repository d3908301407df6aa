/* auth_api: logging in and who one is.
 *   POST /api/login   {"username","password"} -> a bearer token (argon2id on a thread)
 *   GET  /api/me      who the token belongs to
 *   POST /api/users   (admin) a new user and its first token */
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "gridcc/log.h"

#define LOGIN_TTL_S (12 * 3600)

typedef struct login_job {
    api_env *e;
    http_req *r;
    store_user u;
    bool found, ok;
    char *password;
    char name[128], peer[64];
} login_job;

static void login_verify(void *data)
{
    login_job *j = data;
    j->ok = j->found && !j->u.disabled && auth_verify_password(j->u.pwhash, j->password);
}

static void login_done(void *data)
{
    login_job *j = data;
    api_env *e = j->e;
    http_req *r = j->r;
    int64_t now = time(NULL);
    auth_limiter_end(e->lim_user, j->name, now, !j->ok);
    auth_limiter_end(e->lim_peer, j->peer, now, !j->ok);
    if (!j->ok) {
        /* a name that is no user's may be a password typed in the wrong box:
         * only known names reach the log */
        log_warn("auth", "login failed user=%s peer=%s", j->found ? j->name : "(unknown)", j->peer);
        http_reply_error(r, 401, "unauthorized", "password", "wrong username or password");
    } else if (http_gone(r)) {
        log_info("auth", "login verified but the client left user=%s peer=%s", j->name, j->peer);
    } else {
        char token[AUTH_TOKEN_CHARS];
        gc_err err = {0};
        if (auth_issue_token(e->store, j->u.id, LOGIN_TTL_S, "login", token, &err)) {
            http_reply_err(r, &err);
        } else {
            log_info("auth", "login user=%s role=%s peer=%s", j->u.name, role_name(j->u.role),
                     j->peer);
            http_reply_json(r, 200,
                            json_pack("{s:s,s:s,s:i,s:{s:s,s:s}}", "token", token, "token_type",
                                      "Bearer", "expires_in", LOGIN_TTL_S, "user", "name",
                                      j->u.name, "role", role_name(j->u.role)));
            sodium_memzero(token, sizeof token);
        }
    }
    http_complete(r);
    sodium_memzero(j->password, strlen(j->password));
    g_free(j->password);
    sodium_memzero(&j->u, sizeof j->u);
    g_free(j);
}

static void h_login(http_req *r, void *ud)
{
    api_env *e = ud;
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
    /* attempts being checked count against the limit: parallel guesses are
     * refused like sequential ones */
    int wait = auth_limiter_begin(e->lim_user, name, now);
    if (!wait && (wait = auth_limiter_begin(e->lim_peer, r->peer, now)))
        auth_limiter_end(e->lim_user, name, now, false);
    if (wait) {
        store_user known;
        bool found = store_user_get(e->store, name, &known, NULL) == 0;
        json_decref(j);
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(r, "Retry-After", ra);
        log_warn("auth", "login refused: too many failures user=%s peer=%s",
                 found ? name : "(unknown)", r->peer);
        http_reply_error(r, 429, "rate_limited", "username",
                         "too many failed logins; try again in %d s", wait);
        return;
    }
    /* argon2id takes ~0.1 s of a core by design: verify on a thread */
    login_job *job = g_new0(login_job, 1);
    job->e = e;
    job->r = r;
    job->found = store_user_get(e->store, name, &job->u, NULL) == 0;
    job->password = g_strdup(json_string_value(jp));
    snprintf(job->name, sizeof job->name, "%s", name);
    snprintf(job->peer, sizeof job->peer, "%s", r->peer);
    json_decref(j);
    api_offload(e, r, login_verify, login_done, job);
}

static void h_me(http_req *r, void *ud)
{
    const gc_who *u = &r->who;
    json_t *me = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)u->id, "name", u->name, "role",
                           role_name(u->role));
    if (u->department[0])
        json_object_set_new(me, "department", json_string(u->department));
    http_reply_json(r, 200, me);
}

/* Sign-out: the bearer token that made the request stops working at once
 * (a token sent as Basic's password is a standing credential of a desktop
 * client, revoked by an administrator, not by a page). */
static void h_logout(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *a = r->authorization;
    if (g_ascii_strncasecmp(a, "Bearer ", 7)) {
        http_reply_error(r, 400, "invalid", "Authorization",
                         "sign-out revokes a bearer token; this request sent none");
        return;
    }
    unsigned char hash[AUTH_HASH_BYTES];
    auth_token_hash(a + 7, hash);
    gc_err err = {0};
    if (store_token_revoke(e->store, hash, &err)) {
        http_reply_err(r, &err);
        return;
    }
    log_info("auth", "signed out user=%s", r->who.name);
    http_reply(r, 204, NULL, NULL, 0);
}

static void h_users_add(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *j = http_json_object(r);
    if (!j)
        return;
    const char *name = json_string_value(json_object_get(j, "username"));
    gc_role role = role_parse(json_string_value(json_object_get(j, "role")));
    const char *pw = json_string_value(json_object_get(j, "password"));
    const char *dept = json_string_value(json_object_get(j, "department"));
    char hash[256] = "";
    gc_err err = {0};
    int64_t uid;
    char token[AUTH_TOKEN_CHARS];
    if (!name || !*name || strlen(name) > 64)
        http_reply_error(r, 400, "invalid", "username", "username: 1 to 64 characters");
    else if (!role)
        http_reply_error(r, 400, "invalid", "role",
                         "role must be operator, worker, planner, admin, department or resident");
    else if ((role == ROLE_DEPARTMENT) != (dept && *dept))
        http_reply_error(r, 400, "invalid", "department",
                         "department is required for role department, and only for it");
    else if (pw && auth_hash_password(pw, hash, &err))
        http_reply_err(r, &err);
    else if (store_user_add(e->store, name, role, dept, hash[0] ? hash : NULL, &uid, &err) ||
             auth_issue_token(e->store, uid, 0, "api", token, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 201,
                        json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)uid, "username", name,
                                  "role", role_name(role), "token", token));
    json_decref(j);
}

void auth_api_register(http_server *s, api_env *e)
{
    http_route(s, "POST", "/api/login", HTTP_PUBLIC, 0, h_login, e);
    http_route(s, "GET", "/api/me", ROLE_ANY, 0, h_me, e);
    http_route(s, "POST", "/api/logout", ROLE_ANY, 0, h_logout, e);
    http_route(s, "POST", "/api/users", ROLE_ADMIN, 0, h_users_add, e);
}
