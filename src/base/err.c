/* err: filling gc_err values. */
#include "gridcc/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gc_fail(gc_err *err, int code, const char *field, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void gc_err_clear(gc_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
