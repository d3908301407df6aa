/* store_priv.h: what the files of the store module share (store.c: the
 * connection, statements, transactions, change log; store_layers.c,
 * store_users.c, store_incidents.c, store_workers.c: their tables).
 * Nothing outside src/store includes this. */
#ifndef GRIDCC_STORE_PRIV_H
#define GRIDCC_STORE_PRIV_H

#include <glib.h>
#include <sqlite3.h>

#include "gridcc/store.h"

struct store {
    sqlite3 *db;
    void *splite;        /* SpatiaLite's per-connection cache */
    char *path;
    int64_t data_version;
    int depth;           /* store_begin nesting: 0 outside a transaction */
    int busy_ms;         /* wait for another writer's lock at most this long */
    gint64 busy_since;   /* when the current wait began (monotonic µs) */
    GHashTable *stmts;   /* SQL text → prepared statement, reused */
    /* Catalogue rows read inside the open transaction (key → json_t): valid
     * until it ends, since nobody else can write meanwhile; emptied at every
     * new transaction and by the catalogue's own writes. */
    GHashTable *memo;
    void (*on_commit)(void *ud);
    void *on_commit_ud;
};

/* A prepared statement for sql, reset and unbound, owned by the store: reset
 * it (sqlite3_reset) when done, never finalize it. NULL on error. */
sqlite3_stmt *store_stmt(store *s, const char *sql);

/* JSON text the store writes: 12 significant digits keep a longitude to
 * 1e-9° (0.1 mm) and spare printf the 17-digit round trip of every double. */
#define STORE_JSON_PRECISION JSON_REAL_PRECISION(12)

int store_exec(store *s, const char *sql, gc_err *err);
/* The memo (see struct store): a borrowed value or NULL; put steals v. Both
 * do nothing outside a transaction. */
json_t *store_memo_get(store *s, const char *key);
void store_memo_put(store *s, const char *key, json_t *v);
void store_memo_clear(store *s);
/* Fills err with what SQLite says went wrong while doing `what`: GC_EFULL
 * for a full disk, GC_EBUSY for a lock held past the busy timeout, else
 * GC_EIO; returns that code. */
int store_db_fail(store *s, gc_err *err, const char *what);
/* A users row (id, name, role, pwhash, disabled, department) into *u. */
void store_user_from_row(sqlite3_stmt *st, store_user *u);
/* Appends a change-log row inside the caller's transaction. */
int store_change_text(store *s, const char *topic, const char *id, const char *json, gc_err *err);

#endif
