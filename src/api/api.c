/* api: the authorizer every route goes through, and work handed off the
 * loop. See api.h. */
#include "api.h"

#include <gio/gio.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "gridcc/log.h"

void api_who_from(gc_who *w, const store_user *u)
{
    w->id = u->id;
    w->role = u->role;
    snprintf(w->name, sizeof w->name, "%s", u->name);
    snprintf(w->department, sizeof w->department, "%s", u->department);
}

static void challenge(http_req *r)
{
    /* QGIS and other desktop clients can be set up with Basic only */
    http_add_header(r, "WWW-Authenticate",
                    "Bearer realm=\"gridcc\", Basic realm=\"gridcc\", charset=\"UTF-8\"");
}

/* "Basic base64(name:token)": the token must be one of that user's. */
static int check_basic(api_env *e, const char *b64, store_user *u, gc_err *err)
{
    unsigned char raw[512];
    size_t n = 0;
    if (sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), " ", &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) ||
        !n)
        return gc_fail(err, GC_EAUTH, "Authorization", "malformed Basic credentials");
    raw[n] = 0;
    char *colon = memchr(raw, ':', n);
    if (!colon || strlen((char *)raw) != n)
        return gc_fail(err, GC_EAUTH, "Authorization",
                       "Basic credentials are a user name and a token, name:token");
    *colon = 0;
    char bearer[600];
    snprintf(bearer, sizeof bearer, "Bearer %s", colon + 1);
    int rc = auth_check_bearer(e->store, bearer, u, err);
    bool same = !rc && !strcmp(u->name, (char *)raw);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(bearer, sizeof bearer);
    if (rc)
        return rc;
    if (!same)
        return gc_fail(err, GC_EAUTH, "Authorization", "invalid user name or token");
    return 0;
}

bool api_authorize(void *ud, http_req *r, unsigned roles)
{
    api_env *e = ud;
    memset(&r->who, 0, sizeof r->who);
    const char *h = r->authorization;
    if (!h[0] && (roles & HTTP_OPTIONAL))
        return true; /* anonymous, and the route serves anonymous callers */
    int64_t now = time(NULL);
    bool basic = !g_ascii_strncasecmp(h, "Basic ", 6);
    /* a name and a token are guessed like a name and a password: limited
     * like logins. (A bearer token is 256 random bits; a wall of screens
     * behind one address retrying an expired one must not lock it out.) */
    int wait = basic ? auth_limiter_check(e->lim_peer, r->peer, now) : 0;
    if (wait) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(r, "Retry-After", ra);
        http_reply_error(r, 429, "rate_limited", "Authorization",
                         "too many bad credentials from this address; try again in %d s", wait);
        return false;
    }
    store_user u;
    gc_err err = {0};
    int rc;
    if (basic)
        rc = check_basic(e, h + 6, &u, &err);
    else if (!h[0])
        rc = gc_fail(&err, GC_EAUTH, "Authorization",
                     "authentication required: send Authorization: Bearer TOKEN "
                     "(or Basic with your user name and a token)");
    else
        rc = auth_check_bearer(e->store, h, &u, &err);
    if (rc) {
        if (rc == GC_EAUTH && basic) {
            auth_limiter_fail(e->lim_peer, r->peer, now);
            log_warn("auth", "bad Basic credentials peer=%s path=%s", r->peer, r->path);
        }
        if (rc == GC_EAUTH)
            challenge(r);
        http_reply_err(r, &err);
        return false;
    }
    if (!(u.role & roles)) {
        char allowed[128];
        http_reply_error(r, 403, "forbidden", "Authorization",
                         "role %s may not do this (allowed: %s)", role_name(u.role),
                         role_list(roles, allowed, sizeof allowed));
        return false;
    }
    api_who_from(&r->who, &u);
    return true;
}

bool api_check_token(api_env *e, const char *token, unsigned roles, store_user *u, gc_err *err)
{
    char hdr[600];
    snprintf(hdr, sizeof hdr, "Bearer %s", token);
    int rc = auth_check_bearer(e->store, hdr, u, err);
    sodium_memzero(hdr, sizeof hdr);
    if (rc)
        return false;
    if (!(u->role & roles)) {
        gc_fail(err, GC_EFORBIDDEN, "token", "role %s may not do this", role_name(u->role));
        return false;
    }
    return true;
}

/* ---- off the loop ---- */

typedef struct offload {
    api_env *e;
    api_work_fn work;
    api_done_fn done;
    void *data;
} offload;

static void offload_thread(GTask *t, gpointer src, gpointer data, GCancellable *c)
{
    offload *o = data;
    o->work(o->data);
    g_task_return_boolean(t, TRUE);
}

static void offload_done(GObject *src, GAsyncResult *res, gpointer ud)
{
    offload *o = ud;
    o->e->busy--;
    o->done(o->data);
    g_free(o);
}

void api_offload(api_env *e, http_req *r, api_work_fn work, api_done_fn done, void *data)
{
    offload *o = g_new0(offload, 1);
    *o = (offload){e, work, done, data};
    if (r)
        http_defer(r);
    e->busy++;
    GTask *t = g_task_new(NULL, NULL, offload_done, o);
    g_task_set_task_data(t, o, NULL);
    g_task_run_in_thread(t, offload_thread);
    g_object_unref(t);
}
