/* fix_writer: see fix_writer.h. */
#include "gridcc/fix_writer.h"

#include <string.h>

#include "gridcc/log.h"

#define WRITE_MAX 20000 /* fixes in one transaction at most */
#define FIX_BUSY_MS 5000

typedef struct job {
    GArray *fixes; /* store_fix */
    GStringChunk *strs;
    fix_written_fn done;
    void *ud;
    bool *fresh;
    int rc;
    char why[1024];
} job;

struct fix_writer {
    store *s; /* the thread's own connection */
    GMainContext *ctx;
    GAsyncQueue *q; /* job*; &stop_job ends the thread */
    GThread *thread;
    int inflight; /* submitted and not yet answered (loop side) */
};

typedef struct wbatch {
    fix_writer *w;
    GPtrArray *jobs;
} wbatch;

static job stop_job;

static void job_free(job *j)
{
    g_array_free(j->fixes, TRUE);
    if (j->strs)
        g_string_chunk_free(j->strs);
    g_free(j->fresh);
    g_free(j);
}

static gboolean batch_done(gpointer ud)
{
    wbatch *b = ud;
    b->w->inflight -= (int)b->jobs->len;
    for (guint i = 0; i < b->jobs->len; i++) {
        job *j = g_ptr_array_index(b->jobs, i);
        j->done(j->ud, (const store_fix *)(void *)j->fixes->data, j->fixes->len, j->fresh, j->rc,
                j->why);
        job_free(j);
    }
    g_ptr_array_free(b->jobs, TRUE);
    g_free(b);
    return G_SOURCE_REMOVE;
}

static gpointer writer_main(gpointer ud)
{
    fix_writer *w = ud;
    GArray *all = g_array_new(FALSE, FALSE, sizeof(store_fix));
    bool stop = false;
    while (!stop) {
        job *j = g_async_queue_pop(w->q);
        if (j == &stop_job)
            break;
        wbatch *b = g_new0(wbatch, 1);
        b->w = w;
        b->jobs = g_ptr_array_new();
        g_ptr_array_add(b->jobs, j);
        size_t n = j->fixes->len;
        while (n < WRITE_MAX && (j = g_async_queue_try_pop(w->q))) {
            if (j == &stop_job) {
                stop = true;
                break;
            }
            g_ptr_array_add(b->jobs, j);
            n += j->fixes->len;
        }
        g_array_set_size(all, 0);
        for (guint i = 0; i < b->jobs->len; i++) {
            job *x = g_ptr_array_index(b->jobs, i);
            g_array_append_vals(all, x->fixes->data, x->fixes->len);
        }
        bool *fresh = g_new0(bool, all->len + 1);
        gc_err err = {0};
        int rc = store_fixes_insert(w->s, (store_fix *)(void *)all->data, all->len, fresh, &err);
        size_t off = 0;
        for (guint i = 0; i < b->jobs->len; i++) {
            job *x = g_ptr_array_index(b->jobs, i);
            /* the code, not just "failed": a full disk and a held lock get
             * their own answers (507, 503) */
            x->rc = rc && err.code ? err.code : rc;
            snprintf(x->why, sizeof x->why, "%s", err.msg);
            x->fresh = g_new0(bool, x->fixes->len + 1);
            memcpy(x->fresh, fresh + off, x->fixes->len * sizeof(bool));
            off += x->fixes->len;
        }
        g_free(fresh);
        if (rc)
            log_error("fixes", "writing %zu fixes: %s", n, err.msg);
        g_main_context_invoke_full(w->ctx, G_PRIORITY_DEFAULT, batch_done, b, NULL);
    }
    g_array_free(all, TRUE);
    return NULL;
}

fix_writer *fix_writer_new(const char *db_path, GMainContext *ctx, gc_err *err)
{
    fix_writer *w = g_new0(fix_writer, 1);
    if (store_open(db_path, &w->s, err)) {
        g_free(w);
        return NULL;
    }
    /* a tracker waits for its answer: a lock held longer than this by
     * another process (an import) gets 503 and the tracker sends again */
    store_set_busy_timeout(w->s, FIX_BUSY_MS);
    w->ctx = ctx;
    w->q = g_async_queue_new();
    w->thread = g_thread_new("fix-writer", writer_main, w);
    return w;
}

void fix_writer_submit(fix_writer *w, GArray *fixes, GStringChunk *strs, fix_written_fn done,
                       void *ud)
{
    job *j = g_new0(job, 1);
    j->fixes = fixes;
    j->strs = strs;
    j->done = done;
    j->ud = ud;
    w->inflight++;
    g_async_queue_push(w->q, j);
}

int fix_writer_pending(const fix_writer *w)
{
    return w->inflight;
}

void fix_writer_free(fix_writer *w)
{
    if (!w)
        return;
    g_async_queue_push(w->q, &stop_job);
    g_thread_join(w->thread);
    while (w->inflight)
        g_main_context_iteration(w->ctx, TRUE);
    g_async_queue_unref(w->q);
    store_close(w->s);
    g_free(w);
}
