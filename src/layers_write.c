/* layers_write: the import itself (layers_import), the parent layer loaded
 * from the store, each feature hung under its parent with its ancestors, and
 * the store write whose approve hook awaits the overlap/gap verdict. The
 * import reads every feature into memory (a district's buildings are tens of
 * thousands, not millions), validates all of it, and writes only if nothing
 * is wrong: a rejected import leaves the stored version of the layer as it
 * was. */
#include "layers_priv.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/log.h"

/* The writer touches no GEOS object: the overlap/gap checker may be working
 * on them meanwhile; approve() waits for its verdict before the commit. */
static int write_layer(ctx *c, store *s, const char *lname, const char *dept, const char *fields,
                       const char *srcname, int (*approve)(void *), void *approve_ud, gc_err *err)
{
    store_feature_in *in = calloc(c->n ? c->n : 1, sizeof *in);
    store_layer meta = {0};
    meta.bbox[0] = meta.bbox[1] = INFINITY;
    meta.bbox[2] = meta.bbox[3] = -INFINITY;
    for (size_t i = 0; i < c->n; i++) {
        item *it = c->items[i];
        meta.bbox[0] = fmin(meta.bbox[0], it->bbox[0]);
        meta.bbox[1] = fmin(meta.bbox[1], it->bbox[1]);
        meta.bbox[2] = fmax(meta.bbox[2], it->bbox[2]);
        meta.bbox[3] = fmax(meta.bbox[3], it->bbox[3]);
        in[i] = (store_feature_in){.fid = it->fid,
                                   .name = it->name,
                                   .code = it->code,
                                   .parent_layer = it->parent >= 0 ? c->par.layer : NULL,
                                   .parent_fid = it->parent >= 0 ? c->par.fid[it->parent] : NULL,
                                   .ancestors_json = it->ancestors,
                                   .props_json = it->props,
                                   .wkb = it->wkb,
                                   .wkb_len = it->wkb_len};
    }
    meta.has_bbox = c->n > 0;
    snprintf(meta.name, sizeof meta.name, "%s", lname);
    snprintf(meta.level, sizeof meta.level, "%s", level_name(c->level));
    snprintf(meta.department, sizeof meta.department, "%s", dept ? dept : "");
    if (dept)
        snprintf(meta.title, sizeof meta.title, "%s grid (%s)", dept, lname);
    meta.fields_json = (char *)fields;
    snprintf(meta.source, sizeof meta.source, "%s", srcname);
    snprintf(meta.source_crs, sizeof meta.source_crs, "%s", c->o->srs ? c->o->srs : "");
    int rc = store_layer_replace(s, &meta, in, c->n, approve, approve_ud, err);
    if (!rc)
        c->rep->version = meta.version;
    free(in);
    return rc;
}

static void item_free(item *it)
{
    free(it->wkb);
    free(it->fid);
    free(it->name);
    free(it->code);
    free(it->parent_code);
    free(it->props);
    free(it->ancestors);
    if (it->pg)
        GEOSPreparedGeom_destroy_r(GH, it->pg);
    if (it->g)
        GEOSGeom_destroy_r(GH, it->g);
    free(it);
}

/* Skipped features are gone before the file-wide checks: their ids cannot
 * clash, and overlaps, gaps and the write see only what is stored. */
static void drop_skipped(ctx *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i]->skipped)
            item_free(c->items[i]);
        else
            c->items[kept++] = c->items[i];
    }
    c->n = kept;
}

static void ctx_free(ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        item_free(c->items[i]);
    free(c->items);
    parent_set *p = &c->par;
    for (size_t i = 0; i < p->n; i++) {
        free(p->fid[i]);
        free(p->code[i]);
        free(p->ancestors[i]);
        GEOSPreparedGeom_destroy_r(GH, p->pg[i]);
        GEOSGeom_destroy_r(GH, p->g[i]);
    }
    free(p->fid);
    free(p->code);
    free(p->ancestors);
    free(p->g);
    free(p->pg);
    if (p->by_code)
        g_hash_table_destroy(p->by_code);
    if (p->tree)
        GEOSSTRtree_destroy_r(GH, p->tree);
    g_mutex_clear(&c->lock);
    if (c->feed)
        g_async_queue_unref(c->feed);
}

typedef struct approval {
    ctx *c;
    GThread *thread;
} approval;

/* Called by the store before it commits: 0 lets the commit go ahead. */
static int approve(void *ud)
{
    approval *a = ud;
    g_thread_join(a->thread);
    a->thread = NULL;
    return a->c->rep->errors ? GC_EINVAL : 0;
}

int layers_import(store *s, const layers_import_opts *o, layers_report *rep, gc_err *err)
{
    memset(rep, 0, sizeof *rep);
    /* without --repair every invalid geometry is unrepaired: skipping them
     * all would hide what --repair fixes, so the flag only narrows --repair */
    if (o->skip_unrepairable && !o->repair)
        return gc_fail(err, GC_EINVAL, "skip-unrepairable",
                       "--skip-unrepairable needs --repair: it leaves out only the features "
                       "repair cannot make valid");
    gc_level level = level_parse(o->level);
    if (level == LEVEL_NONE)
        return gc_fail(err, GC_EINVAL, "level",
                       "unknown level '%s': use district, street, community, grid, building, "
                       "unit, dedicated or dept:NAME",
                       o->level ? o->level : "");
    const char *dept = level == LEVEL_DEPT ? o->level + 5 : NULL;
    if (dept && !*dept)
        return gc_fail(err, GC_EINVAL, "level",
                       "dept:NAME needs a department name, e.g. dept:城管");
    char lname[128];
    if (o->layer_name && *o->layer_name)
        snprintf(lname, sizeof lname, "%s", o->layer_name);
    else if (dept)
        snprintf(lname, sizeof lname, "dept-%s", dept);
    else
        snprintf(lname, sizeof lname, "%s", level_name(level));
    for (const char *p = lname; *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == '%' || (unsigned char)*p < 0x20)
            return gc_fail(err, GC_EINVAL, "layer",
                           "layer name '%s' cannot hold '/', '?', '#', '%%' or control characters",
                           lname);
    /* a hierarchy level has one layer, whatever it is called */
    if (level != LEVEL_DEPT) {
        store_layer L;
        if (store_layer_for_level(s, level_name(level), &L, NULL) == 0) {
            free(L.fields_json);
            if (strcmp(L.name, lname))
                return gc_fail(err, GC_ECONFLICT, "layer",
                               "level %s is already held by layer '%s': re-import it under that "
                               "name (or leave out --layer)",
                               level_name(level), L.name);
        }
    }
    snprintf(rep->layer, sizeof rep->layer, "%s", lname);

    ctx c = {.o = o, .rep = rep, .level = level, .file = o->path, .feed = g_async_queue_new()};
    g_mutex_init(&c.lock);
    gint64 t0 = g_get_monotonic_time(), t1;
#define PHASE(name)                                                                                \
    do {                                                                                           \
        t1 = g_get_monotonic_time();                                                               \
        log_debug("layers", "phase=%s ms=%.0f", name, (double)(t1 - t0) / 1000.0);                 \
        t0 = t1;                                                                                   \
    } while (0)
    /* parents first: the checker assigns them while the file is still read */
    gc_level pl = level_parent(level);
    int rc = 0;
    if (pl != LEVEL_NONE) {
        int have = layers_load_parents(&c, s, pl, err);
        if (have < 0)
            rc = have;
        else if (have == 0)
            layers_say(&c, LAYERS_MSG_WARN,
                       "%s: no %s layer in the store yet: features are stored without parents",
                       c.file, level_name(pl));
        c.have_parents = have > 0;
    }
    GThread *checker = NULL;
    if (!rc) {
        checker = g_thread_new("layers-check", layers_check_feed, &c);
        rc = layers_read_source(&c, err);
        g_async_queue_push(c.feed, &c); /* the end of the feed */
        g_thread_join(checker);
        PHASE("read+check");
    }
    drop_skipped(&c);
    rep->features = c.n;
    if (!rc && c.n == 0 && rep->skipped)
        rc = gc_fail(err, GC_EINVAL, "file",
                     "%s: every feature (%zu) was skipped as unrepairable: nothing to import, "
                     "layer %s left as it was",
                     o->path, rep->skipped, lname);
    if (!rc)
        layers_check_duplicates(&c);
    bool write = !rc && !o->dry_run && rep->errors == 0;
    if (!rc && !write) {
        /* report every problem, nothing to write */
        layers_check_siblings(&c);
        PHASE("overlaps+gaps");
    }
    if (write) {
        /* field names, in file order, for queryables */
        json_t *fields = json_array();
        if (c.n) {
            json_t *p = json_loads(c.items[0]->props, 0, NULL);
            const char *key;
            json_t *v;
            json_object_foreach(p, key, v) json_array_append_new(fields, json_string(key));
            json_decref(p);
        }
        char *fj = json_dumps(fields, JSON_COMPACT);
        json_decref(fields);
        layers_progress(&c, "writing", 0, c.n);
        GThread *sib = g_thread_new("layers-siblings", layers_check_siblings_thread, &c);
        approval ap = {&c, sib};
        rc = write_layer(&c, s, lname, dept, fj, o->path, approve, &ap, err);
        if (ap.thread) /* the write failed before asking */
            g_thread_join(ap.thread);
        layers_progress(&c, "writing", c.n, c.n);
        PHASE("write+overlaps+gaps");
        free(fj);
    }
    if ((!rc || rc == GC_EINVAL) && rep->errors)
        rc = gc_fail(err, GC_EINVAL, "file",
                     "%s: %zu problem%s: import rejected, layer %s left as it was", o->path,
                     rep->errors, rep->errors == 1 ? "" : "s", lname);
    ctx_free(&c);
    layers_geos_release();
    return rc;
}
