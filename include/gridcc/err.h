/* err: errors are values. A function that can fail returns 0 or a negative
 * code and fills a gc_err with a message a user can act on, and, for requests,
 * the field it concerns. */
#ifndef GRIDCC_ERR_H
#define GRIDCC_ERR_H

typedef struct gc_err {
    int code;          /* one of GC_E* below */
    char field[128];   /* the offending field or parameter, "" if none */
    char msg[1024];
} gc_err;

enum {
    GC_OK = 0,
    GC_EINVAL = -1,    /* input rejected: bad value, bad file */
    GC_ENOTFOUND = -2,
    GC_ECONFLICT = -3,
    GC_EIO = -4,       /* store or file system failure */
    GC_EAUTH = -5,     /* not authenticated */
    GC_EFORBIDDEN = -6,
    GC_ETOOBIG = -7,
    GC_ERATE = -8,     /* rate-limited */
    GC_EFULL = -9,     /* the disk is full (ENOSPC, SQLITE_FULL): nothing was stored */
    GC_EBUSY = -10,    /* another process held the store's write lock too long */
};

/* Sets err (if not NULL) and returns code. */
int gc_fail(gc_err *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gc_err_clear(gc_err *err);

#endif
