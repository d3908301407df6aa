/* layers_report: what every phase of an import shares at the bottom: the
 * GEOS context of each thread, the messages (each naming file, feature and
 * where) and the progress line. */
#include "layers_priv.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread GEOSContextHandle_t tls_geos;

GEOSContextHandle_t layers_geos(void)
{
    if (!tls_geos)
        tls_geos = GEOS_init_r();
    return tls_geos;
}

void layers_geos_release(void)
{
    if (tls_geos)
        GEOS_finish_r(tls_geos);
    tls_geos = NULL;
}

/* ---- reporting ---- */

void layers_say(ctx *c, layers_msg_kind kind, const char *fmt, ...)
{
    size_t *counter = kind == LAYERS_MSG_ERROR  ? &c->rep->errors
                      : kind == LAYERS_MSG_WARN ? &c->rep->warnings
                                                : NULL;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_mutex_lock(&c->lock);
    if ((!counter || ++*counter <= MAX_REPORTED) && c->o->message)
        c->o->message(c->o->ud, kind, buf);
    g_mutex_unlock(&c->lock);
}

const char *layers_where(ctx *c, const item *it, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s: feature #%ld (id %s", c->file, it->k, it->fid ? it->fid : "?");
    if (it->name && *it->name)
        n += snprintf(buf + n, len - (size_t)n, ", name %s", it->name);
    if (it->line)
        n += snprintf(buf + n, len - (size_t)n, ", line %ld", it->line);
    snprintf(buf + n, len - (size_t)n, ")");
    return buf;
}

void layers_problem(ctx *c, const item *it, bool topology, const char *fmt, ...)
{
    char w[512], msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    layers_msg_kind kind = topology && c->o->topology_warn ? LAYERS_MSG_WARN : LAYERS_MSG_ERROR;
    layers_say(c, kind, "%s: %s", layers_where(c, it, w, sizeof w), msg);
}

const char *layers_skip_reason_text(layers_skip_reason r)
{
    switch (r) {
    case LAYERS_SKIP_NO_AREA: return "no area after repair";
    case LAYERS_SKIP_REPAIR_FAILED: return "repair failed";
    default: return "?";
    }
}

void layers_progress(ctx *c, const char *phase, size_t done, size_t total)
{
    if (c->o->progress)
        c->o->progress(c->o->ud, phase, done, total);
}

