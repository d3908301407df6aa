/* fix_writer: grid workers' fixes made durable off the loop.
 *
 * A thread of its own with its own store connection writes everything that
 * was queued while its last write was on disk in one transaction (one
 * fsync), then hands each submission's outcome back to the loop's context.
 * The thread touches nothing but its store and its queue. */
#ifndef GRIDCC_FIX_WRITER_H
#define GRIDCC_FIX_WRITER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"
#include "gridcc/store.h"

typedef struct fix_writer fix_writer;

/* On the loop, once the n fixes are durable (rc 0; fresh[i] says whether
 * fix i was new rather than a duplicate) or failed (rc, why). The fixes are
 * borrowed for the call. */
typedef void (*fix_written_fn)(void *ud, const store_fix *f, size_t n, const bool *fresh, int rc,
                               const char *why);

/* Opens its own connection to the store at db_path; answers go to ctx. */
fix_writer *fix_writer_new(const char *db_path, GMainContext *ctx, gc_err *err);
/* Takes fixes (an array of store_fix) and strs (where their strings live,
 * or NULL); done(ud, …) follows on the loop. */
void fix_writer_submit(fix_writer *w, GArray *fixes, GStringChunk *strs, fix_written_fn done,
                       void *ud);
/* Submissions not yet answered. */
int fix_writer_pending(const fix_writer *w);
/* Writes and answers what is queued, then frees. */
void fix_writer_free(fix_writer *w);

#endif
