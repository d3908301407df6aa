/* store_group: group commit. Writes queued while the loop is busy are
 * drained by one idle callback inside a single transaction; every write keeps
 * its own savepoint, so one failing write is rolled back alone, and every
 * caller hears after the one COMMIT (and its one fsync) whether it is durable. */
#include <glib.h>

#include "gridcc/log.h"
#include "store_priv.h"

/* How long queued writes wait for a lock held elsewhere before they fail
 * (503). The loop is free meanwhile, so this can be as long as a client
 * waits: long enough to slip in between the fix writer's transactions, which
 * under heavy ingest hold the lock for a few hundred ms at a time. */
#define GROUP_WAIT_MS 5000

typedef struct item {
    store_group_write write;
    store_group_done done;
    void *ud;
    int rc;
} item;

struct store_group {
    store *s;
    GArray *queue;      /* item */
    guint idle;
    /* when the first try to take the write lock found it held, 0 if not:
     * the loop tries again on a timer rather than sleeping in SQLite's busy
     * handler, so reads go on while another process holds the lock */
    gint64 busy_since;
    /* batches and writes committed, for the log line at free */
    guint64 batches, writes;
};

store_group *store_group_new(store *s)
{
    store_group *g = g_new0(store_group, 1);
    g->s = s;
    g->queue = g_array_new(FALSE, FALSE, sizeof(item));
    return g;
}

size_t store_group_pending(const store_group *g) { return g->queue->len; }

/* Takes the write lock without waiting if may_defer (false: lock held, try
 * again later, up to GROUP_WAIT_MS), else waiting as long as the store's busy
 * timeout allows. */
static bool group_begin(store_group *g, bool may_defer, int *rc, gc_err *err)
{
    int ms = g->s->busy_ms;
    if (!may_defer) {
        *rc = store_begin(g->s, err);
        return true;
    }
    g->s->busy_ms = 0;
    *rc = store_begin(g->s, err);
    g->s->busy_ms = ms;
    gint64 now = g_get_monotonic_time();
    if (*rc && err->code == GC_EBUSY) {
        if (!g->busy_since)
            g->busy_since = now;
        if (now - g->busy_since < (gint64)GROUP_WAIT_MS * 1000)
            return false;
        gc_fail(err, GC_EBUSY, NULL,
                "store: %s is locked by another writer (waited %.1f s); try again", g->s->path,
                (double)(now - g->busy_since) / G_USEC_PER_SEC);
    }
    g->busy_since = 0;
    return true;
}

/* False if the lock was held and the queue is left for a later try. */
static bool flush(store_group *g, bool may_defer)
{
    while (g->queue->len) {
        gc_err err = {0};
        int rc;
        if (!group_begin(g, may_defer, &rc, &err))
            return false;
        /* writes queued by the done callbacks go to the next batch */
        GArray *batch = g->queue;
        g->queue = g_array_new(FALSE, FALSE, sizeof(item));
        for (guint i = 0; i < batch->len; i++) {
            item *it = &g_array_index(batch, item, i);
            if (rc) {
                it->rc = -1;
                continue;
            }
            /* each write in a savepoint of its own: a failure undoes it alone */
            gc_err e = {0};
            if (store_begin(g->s, &e)) {
                it->rc = -1;
            } else {
                it->rc = it->write(g->s, it->ud);
                if (it->rc || store_commit(g->s, &e)) {
                    it->rc = it->rc ? it->rc : -1;
                    store_rollback(g->s);
                }
            }
            /* some errors (a full disk, I/O) make SQLite roll the whole
             * transaction back: then nothing of this batch is stored */
            if (sqlite3_get_autocommit(g->s->db)) {
                rc = store_db_fail(g->s, &err, "the batch was rolled back");
                g->s->depth = 0;
            }
        }
        if (!rc)
            rc = store_commit(g->s, &err);
        if (rc && g->s->depth)
            store_rollback(g->s);
        if (rc)
            log_error("store", "group commit failed writes=%u: %s", batch->len, err.msg);
        g->batches++;
        g->writes += batch->len;
        for (guint i = 0; i < batch->len; i++) {
            item *it = &g_array_index(batch, item, i);
            it->done(it->ud, it->rc, rc ? &err : NULL);
        }
        g_array_free(batch, TRUE);
    }
    return true;
}

void store_group_flush(store_group *g)
{
    flush(g, false);
}

static gboolean on_idle(gpointer ud)
{
    store_group *g = ud;
    g->idle = 0;
    /* a done callback may have queued a write, and with it a new idle */
    if (!flush(g, true) && !g->idle)
        g->idle = g_timeout_add(1, on_idle, g);
    return G_SOURCE_REMOVE;
}

void store_group_add(store_group *g, store_group_write write, store_group_done done, void *ud)
{
    item it = {write, done, ud, 0};
    g_array_append_val(g->queue, it);
    if (!g->idle)
        /* default priority, not idle: steady socket traffic must not hold
         * back the commit (and every reply waiting on it) */
        g->idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_idle, g, NULL);
}

void store_group_free(store_group *g)
{
    if (!g)
        return;
    if (g->idle)
        g_source_remove(g->idle);
    store_group_flush(g);
    if (g->batches)
        log_info("store", "group commit batches=%" G_GUINT64_FORMAT " writes=%" G_GUINT64_FORMAT,
                 g->batches, g->writes);
    g_array_free(g->queue, TRUE);
    g_free(g);
}
