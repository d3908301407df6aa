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

bool auth_role_valid(const char *role)
{
    static const char *roles[] = {"operator", "worker",     "planner",
                                  "admin",    "department", "resident"};
    for (size_t i = 0; role && i < sizeof roles / sizeof *roles; i++)
        if (!strcmp(role, roles[i]))
            return true;
    return false;
}

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
    if (now - a->first >= l->window) {
        g_hash_table_remove(l->keys, key);
        return 0;
    }
    return a->failures >= l->max ? (int)(a->first + l->window - now) : 0;
}

void auth_limiter_fail(auth_limiter *l, const char *key, int64_t now)
{
    /* bound the table: an attacker cycling names must not grow it forever */
    if (g_hash_table_size(l->keys) > 100000)
        g_hash_table_remove_all(l->keys);
    attempt *a = g_hash_table_lookup(l->keys, key);
    if (!a || now - a->first >= l->window) {
        a = g_new0(attempt, 1);
        a->first = now;
        g_hash_table_replace(l->keys, g_strdup(key), a);
    }
    a->failures++;
}

void auth_limiter_reset(auth_limiter *l, const char *key) { g_hash_table_remove(l->keys, key); }
