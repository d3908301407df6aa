/* layers_priv: what the import's three files share. layers_read.c turns an
 * OGR source into items, layers_check.c validates them (its checker thread
 * while the file is read, overlaps and gaps beside the write), layers_write.c
 * loads the parent layer, hangs each item under its parent and writes the
 * layer. Not installed: include/gridcc/layers.h is the module's face. */
#ifndef GRIDCC_LAYERS_PRIV_H
#define GRIDCC_LAYERS_PRIV_H

#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#include "gridcc/layers.h"
#include "gridcc/levels.h"

#define MAX_REPORTED 200 /* problems printed one by one; the rest are counted */

/* Validation runs on up to three threads (the reader, a per-feature checker
 * fed as features are read, an overlap/gap checker beside the writer). GEOS
 * objects are used by one thread at a time; each thread has its own GEOS
 * context handle, made on first use and released by layers_geos_release(). */
GEOSContextHandle_t layers_geos(void);
void layers_geos_release(void);

#define GH layers_geos()

typedef struct item {
    long k;    /* 1-based feature number in the file */
    long line; /* CSV line, 0 if unknown */
    char *fid, *name, *code, *parent_code;
    char *props; /* JSON object */
    GEOSGeometry *g;
    const GEOSPreparedGeometry *pg;
    double area_m2;
    int parent;         /* index into parents, -1 if none */
    char *ancestors;    /* JSON array */
    unsigned char *wkb; /* EPSG:4326 WKB as stored */
    size_t wkb_len;
    double bbox[4];
    bool skipped; /* left out by --skip-unrepairable: dropped before the file-wide checks */
} item;

typedef struct parent_set {
    size_t n, cap;
    char **fid, **code, **ancestors;
    GEOSGeometry **g;
    const GEOSPreparedGeometry **pg;
    GHashTable *by_code; /* code or fid → index + 1 */
    GEOSSTRtree *tree;
    char layer[128];
} parent_set;

typedef struct ctx {
    const layers_import_opts *o;
    layers_report *rep;
    const char *file; /* as the user named it */
    gc_level level;
    item **items; /* stable pointers: the checker thread holds some */
    size_t n, cap;
    GMutex lock;       /* guards reporting (counters and messages) */
    GAsyncQueue *feed; /* items read, for the per-feature checker */
    bool have_parents;
    parent_set par;
    bool recode; /* attributes need --encoding → UTF-8 by us */
} ctx;

typedef struct query_hits {
    size_t *v;
    size_t n, cap;
} query_hits;

/* ---- reporting (layers_check.c) ---- */

void layers_say(ctx *c, layers_msg_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "file: feature #k (id X, name Y, line N)" into buf */
const char *layers_where(ctx *c, const item *it, char *buf, size_t len);
/* an error about one feature; a warning instead if topological and --topology warn */
void layers_problem(ctx *c, const item *it, bool topology, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void layers_progress(ctx *c, const char *phase, size_t done, size_t total);

/* ---- geometry (layers_check.c) ---- */

double layers_area_m2(ctx *c, const GEOSGeometry *g);
/* overlaps, gaps and parts outside below this many m² are ignored */
double layers_tolerance(ctx *c);
/* a GEOSSTRtree_query_r callback: collects index + 1 payloads into a query_hits */
void layers_collect(void *item_, void *ud);
/* m² of it outside parent pi */
double layers_outside_m2(ctx *c, const item *it, size_t pi);
/* reports out m² of it outside parent pi, if above the tolerance */
void layers_check_outside(ctx *c, const item *it, size_t pi, double out);

/* ---- the phases ---- */

/* layers_read.c: reads o->path into c->items, pushing each item to c->feed */
int layers_read_source(ctx *c, gc_err *err);

/* layers_check.c */
gpointer layers_check_feed(gpointer ud); /* the per-feature checker thread */
void layers_check_duplicates(ctx *c);
void layers_check_siblings(ctx *c); /* overlaps, then gaps if the level tiles its parent */
gpointer layers_check_siblings_thread(gpointer ud);

/* layers_write.c */
/* 1: parents loaded; 0: no parent level in the store; <0 error */
int layers_load_parents(ctx *c, store *s, gc_level pl, gc_err *err);
void layers_assign_parent(ctx *c, item *it, query_hits *hits);

#endif
