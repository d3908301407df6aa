/* auth: credentials and the failed-login limiter. */
#include "gridcc/auth.h"

#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int auth_init(void) { return sodium_init() < 0 ? -1 : 0; }

int auth_hash_password(const char *password, char *out, gc_err *err)
{
    if (!password || strlen(password) < 8)
        return gc_fail(err, GC_EINVAL, "password", "a password needs at least 8 characters");
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return gc_fail(err, GC_EIO, NULL, "out of memory hashing a password");
    return 0;
}

bool auth_verify_password(const char *stored_hash, const char *password)
{
    if (!stored_hash || !*stored_hash || !password)
        return false;
    return crypto_pwhash_str_verify(stored_hash, password, strlen(password)) == 0;
}

void auth_token_hash(const char *token, unsigned char hash[AUTH_HASH_BYTES])
{
    crypto_generichash(hash, AUTH_HASH_BYTES, (const unsigned char *)token, strlen(token), NULL, 0);
}

int auth_issue_token(store *s, int64_t user_id, int64_t ttl_s, const char *label,
                     char token[AUTH_TOKEN_CHARS], gc_err *err)
{
    unsigned char raw[32], hash[AUTH_HASH_BYTES];
    randombytes_buf(raw, sizeof raw);
    memcpy(token, "gcc_", 4);
    sodium_bin2base64(token + 4, AUTH_TOKEN_CHARS - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    auth_token_hash(token, hash);
    int64_t expires = ttl_s > 0 ? (int64_t)time(NULL) + ttl_s : 0;
    return store_token_add(s, user_id, hash, expires, label, err);
}

int auth_check_bearer(store *s, const char *authorization, store_user *out, gc_err *err)
{
    if (!authorization || !*authorization)
        return gc_fail(err, GC_EAUTH, "Authorization",
                       "authentication required: send Authorization: Bearer TOKEN");
    if (strncasecmp(authorization, "Bearer ", 7))
        return gc_fail(err, GC_EAUTH, "Authorization",
                       "unsupported authorization scheme: use Bearer");
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    if (!*tok || strlen(tok) > 256)
        return gc_fail(err, GC_EAUTH, "Authorization", "malformed bearer token");
    unsigned char hash[AUTH_HASH_BYTES];
    auth_token_hash(tok, hash);
    int rc = store_token_lookup(s, hash, out, NULL);
    if (rc == GC_ENOTFOUND)
        return gc_fail(err, GC_EAUTH, "Authorization", "invalid or expired token");
    if (rc)
        return gc_fail(err, GC_EIO, NULL, "token lookup failed");
    return 0;
}

/* ---- limiter ---- */

typedef struct attempt {
    int failures;
    int inflight;      /* begun and not yet ended */
    int64_t first;     /* start of the current window */
} attempt;

struct auth_limiter {
    int max, window;
    GHashTable *keys;  /* key → attempt */
};

auth_limiter *auth_limiter_new(int max_failures, int window_s)
{
    auth_limiter *l = calloc(1, sizeof *l);
    l->max = max_failures;
    l->window = window_s;
    l->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return l;
}

void auth_limiter_free(auth_limiter *l)
{
    if (!l)
        return;
    g_hash_table_destroy(l->keys);
    free(l);
}

int auth_limiter_check(auth_limiter *l, const char *key, int64_t now)
{
    attempt *a = g_hash_table_lookup(l->keys, key);
    if (!a)
        return 0;
    if (now - a->first >= l->window && !a->inflight) {
        g_hash_table_remove(l->keys, key);
        return 0;
    }
    if (now - a->first >= l->window) {   /* a new window; what is in flight still counts */
        a->failures = 0;
        a->first = now;
    }
    if (a->failures + a->inflight < l->max)
        return 0;
    int wait = (int)(a->first + l->window - now);
    return wait > 0 ? wait : 1;
}

static attempt *attempt_get(auth_limiter *l, const char *key, int64_t now)
{
    attempt *a = g_hash_table_lookup(l->keys, key);
    if (!a) {
        /* bound the table: an attacker cycling names must not grow it
         * forever (keys with attempts in flight are kept) */
        if (g_hash_table_size(l->keys) > 100000) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, l->keys);
            while (g_hash_table_iter_next(&it, &k, &v))
                if (!((attempt *)v)->inflight)
                    g_hash_table_iter_remove(&it);
        }
        a = g_new0(attempt, 1);
        a->first = now;
        g_hash_table_replace(l->keys, g_strdup(key), a);
    } else if (now - a->first >= l->window) {
        a->failures = 0;
        a->first = now;
    }
    return a;
}

int auth_limiter_begin(auth_limiter *l, const char *key, int64_t now)
{
    int wait = auth_limiter_check(l, key, now);
    if (wait)
        return wait;
    attempt_get(l, key, now)->inflight++;
    return 0;
}

void auth_limiter_end(auth_limiter *l, const char *key, int64_t now, bool failed)
{
    attempt *a = g_hash_table_lookup(l->keys, key);
    if (a && a->inflight > 0)
        a->inflight--;
    if (failed)
        auth_limiter_fail(l, key, now);
    else if (a && !a->inflight)
        g_hash_table_remove(l->keys, key);
    else if (a)
        a->failures = 0;
}

void auth_limiter_fail(auth_limiter *l, const char *key, int64_t now)
{
    attempt_get(l, key, now)->failures++;
}

void auth_limiter_reset(auth_limiter *l, const char *key) { g_hash_table_remove(l->keys, key); }
