/* auth: passwords (argon2id through libsodium), bearer tokens (32 random
 * bytes, stored only as their BLAKE2b hash), roles, and a limiter for failed
 * logins. Tokens and passwords never reach a log. */
#ifndef GRIDCC_AUTH_H
#define GRIDCC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/err.h"
#include "gridcc/store.h"

#define AUTH_TOKEN_CHARS 48      /* "gcc_" + 43 base64url characters + NUL room */
#define AUTH_HASH_BYTES 32

int auth_init(void);             /* sodium_init; 0 on success */

/* out must hold 128 bytes (crypto_pwhash_STRBYTES). */
int auth_hash_password(const char *password, char *out, gc_err *err);
bool auth_verify_password(const char *stored_hash, const char *password);

void auth_token_hash(const char *token, unsigned char hash[AUTH_HASH_BYTES]);
/* Makes a token, stores its hash for the user; token gets the only copy.
 * ttl_s 0: until revoked. */
int auth_issue_token(store *s, int64_t user_id, int64_t ttl_s, const char *label,
                     char token[AUTH_TOKEN_CHARS], gc_err *err);
/* Resolves "Bearer TOKEN" (the whole header value) to a user. */
int auth_check_bearer(store *s, const char *authorization, store_user *out, gc_err *err);

/* Failed-login limiter: after max failures within window_s for a key (a user
 * name, or a client address), the key is refused until the window passes. */
typedef struct auth_limiter auth_limiter;
auth_limiter *auth_limiter_new(int max_failures, int window_s);
void auth_limiter_free(auth_limiter *l);
/* 0 if allowed, else the seconds to wait. Attempts still being checked
 * count as failures until they end, so parallel guesses are limited too. */
int auth_limiter_check(auth_limiter *l, const char *key, int64_t now);
/* An attempt begins: 0 (and it counts until auth_limiter_end), or the
 * seconds to wait (and it does not begin). */
int auth_limiter_begin(auth_limiter *l, const char *key, int64_t now);
/* It ended: a failure is counted; a success forgets the key's failures. */
void auth_limiter_end(auth_limiter *l, const char *key, int64_t now, bool failed);
void auth_limiter_fail(auth_limiter *l, const char *key, int64_t now);
void auth_limiter_reset(auth_limiter *l, const char *key);

#endif
