/* store_group: group commit. Writes queued while the loop is busy are
 * drained by one idle callback inside a single transaction; every write keeps
 * its own savepoint, so one failing write is rolled back alone, and every
 * caller hears after the one COMMIT (and its one fsync) whether it is durable. */
#include <glib.h>

#include "gridcc/log.h"
#include "store_priv.h"

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

void store_group_flush(store_group *g)
{
    while (g->queue->len) {
        /* writes queued by the done callbacks go to the next batch */
        GArray *batch = g->queue;
        g->queue = g_array_new(FALSE, FALSE, sizeof(item));
        gc_err err = {0};
        int rc = store_begin(g->s, &err);
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
}

static gboolean on_idle(gpointer ud)
{
    store_group *g = ud;
    g->idle = 0;
    store_group_flush(g);
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
