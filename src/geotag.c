/* geotag: store → index, chain → JSON (a jansson tree for one chain, or
 * appends of pre-encoded pieces for many). */
#include "gridcc/geotag.h"

#include <cpl_string.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/levels.h"
#include "gridcc/log.h"

typedef struct load {
    index_builder *b;
    const store_layer *l;
    gc_err *err;
    int rc;
} load;

static int add_feature(void *ud, const store_feature *f)
{
    load *ld = ud;
    ld->rc = index_builder_add(ld->b, ld->l->name, level_parse(ld->l->level), f->fid, f->name,
                               f->code, f->wkb, f->wkb_len, ld->err);
    return ld->rc;
}

gc_index *geotag_build_index(store *s, gc_err *err)
{
    store_layer *layers;
    size_t n;
    if (store_layers_list(s, &layers, &n, err))
        return NULL;
    index_builder *b = index_builder_new();
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        load ld = {b, &layers[i], err, 0};
        store_query q = {.layer = layers[i].name, .want_wkb = true};
        rc = store_features_query(s, &q, NULL, add_feature, &ld, err);
        if (!rc)
            rc = ld.rc;
        if (!rc && layers[i].department[0])
            index_builder_set_department(b, layers[i].name, layers[i].department);
    }
    store_layers_free(layers, n);
    if (rc) {
        index_builder_free(b);
        return NULL;
    }
    return index_builder_finish(b);
}

static json_t *hit_json(const index_hit *h)
{
    if (!h)
        return json_null();
    json_t *o = json_pack("{s:s,s:s}", "id", h->fid, "layer", h->layer);
    json_object_set_new(o, "name", h->name ? json_string(h->name) : json_null());
    json_object_set_new(o, "code", h->code ? json_string(h->code) : json_null());
    return o;
}

json_t *geotag_chain_json(const index_chain *c, double lon, double lat)
{
    json_t *chain = json_object();
    for (int lv = 0; lv < LEVEL_CHAIN_N; lv++)
        json_object_set_new(chain, level_name((gc_level)lv), hit_json(c->chain[lv]));
    json_t *ded = json_array(), *dept = json_array();
    for (size_t i = 0; i < c->nextra; i++) {
        json_t *h = hit_json(c->extra[i]);
        if (c->extra[i]->level == LEVEL_DEPT) {
            const char *d = c->extra[i]->department ? c->extra[i]->department : c->extra[i]->layer;
            json_object_set_new(h, "department", json_string(d));
            json_array_append_new(dept, h);
        } else {
            json_array_append_new(ded, h);
        }
    }
    return json_pack("{s:f,s:f,s:o,s:o,s:o}", "lon", lon, "lat", lat, "chain", chain,
                     "dedicated", ded, "departments", dept);
}

/* ---- many chains, written straight into a buffer ---- */

/* what http_reply_json encodes with; JSON_ENCODE_ANY for lone strings and numbers */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12) | JSON_ENCODE_ANY)

static void append_json(GString *g, const json_t *v)
{
    char buf[512];
    size_t n = json_dumpb(v, buf, sizeof buf, DUMP_FLAGS);
    if (n <= sizeof buf) {
        g_string_append_len(g, buf, (gssize)n);
        return;
    }
    char *s = json_dumps(v, DUMP_FLAGS);
    g_string_append(g, s);
    free(s);
}

static void append_json_string(GString *g, const char *s)
{
    json_t *v = json_string(s);
    /* not UTF-8 cannot come from the store; encode it as null rather than fail the batch */
    if (v)
        append_json(g, v);
    else
        g_string_append(g, "null");
    json_decref(v);
}

/* The feature as geotag_chain_json shows it in a chain or a list. */
static json_t *feature_json(const index_hit *h)
{
    json_t *o = hit_json(h);
    if (h->level == LEVEL_DEPT)
        json_object_set_new(o, "department", json_string(h->department ? h->department : h->layer));
    return o;
}

typedef struct span {
    uint32_t off, len;
} span;

/* Per index (index_derived): every feature encoded once. */
typedef struct cache {
    GString *text;
    span *obj, *id, *csv; /* per feature number */
    const char **layers;  /* the index's non-chain layers, in order (the index's strings) */
    size_t nlayers;
} cache;

static span cache_put(cache *k, size_t off)
{
    return (span){(uint32_t)off, (uint32_t)(k->text->len - off)};
}

static void cache_free(void *data)
{
    cache *k = data;
    g_string_free(k->text, TRUE);
    free(k->obj);
    free(k->id);
    free(k->csv);
    free(k->layers);
    free(k);
}

static void *cache_make(const gc_index *ix)
{
    gint64 t0 = g_get_monotonic_time();
    size_t n = index_feature_count(ix);
    cache *k = calloc(1, sizeof *k);
    k->text = g_string_sized_new(n * 160);
    k->obj = calloc(n ? n : 1, sizeof *k->obj);
    k->id = calloc(n ? n : 1, sizeof *k->id);
    k->csv = calloc(n ? n : 1, sizeof *k->csv);
    k->layers = calloc(n ? n : 1, sizeof *k->layers);
    for (size_t i = 0; i < n; i++) {
        const index_hit *h = index_feature(ix, i);
        size_t off = k->text->len;
        json_t *o = feature_json(h);
        if (o && json_dumpb(o, NULL, 0, DUMP_FLAGS)) {
            append_json(k->text, o);
        } else { /* a name that is not UTF-8: jansson refuses it (GET would answer 500) */
            char *id = g_utf8_make_valid(h->fid, -1);
            log_warn("geotag", "feature not encodable as JSON, shown as null layer=%s id=%s",
                     h->layer, id);
            g_free(id);
            g_string_append(k->text, "null");
        }
        json_decref(o);
        k->obj[i] = cache_put(k, off);
        off = k->text->len;
        append_json_string(k->text, h->fid);
        k->id[i] = cache_put(k, off);
        off = k->text->len;
        char *e = CPLEscapeString(h->fid, -1, CPLES_CSV);
        g_string_append(k->text, e);
        CPLFree(e);
        k->csv[i] = cache_put(k, off);
        if (h->level >= LEVEL_CHAIN_N && (!k->nlayers || k->layers[k->nlayers - 1] != h->layer)) {
            size_t j = 0;
            while (j < k->nlayers && k->layers[j] != h->layer)
                j++;
            if (j == k->nlayers)
                k->layers[k->nlayers++] = h->layer;
        }
    }
    log_info("geotag", "encoded features=%zu bytes=%zu ms=%.1f", n, k->text->len,
             (double)(g_get_monotonic_time() - t0) / 1000.0);
    return k;
}

typedef enum { F_LON, F_LAT, F_LEVEL, F_LAYER } field_kind;

typedef struct field {
    field_kind kind;
    gc_level level;    /* F_LEVEL */
    const char *layer; /* F_LAYER: the index's own string, compared by address */
    char *name;
    GString *key; /* JSON: the text before the value ({"grid": or ,"grid":) */
} field;

struct geotag_writer {
    const gc_index *ix;
    const cache *k;
    geotag_format fmt;
    field *fields; /* NULL: whole chains */
    size_t nfields;
    size_t written;
    json_t *num;                       /* one real, re-set for every number: jansson's formatting */
    GString *chain_key[LEVEL_CHAIN_N]; /* {"lon": … ,"chain":{"district": … */
};

static void field_key(field *f, bool first)
{
    f->key = g_string_new(first ? "{" : ",");
    append_json_string(f->key, f->name);
    g_string_append_c(f->key, ':');
}

static int add_field(geotag_writer *w, const char *name, gc_err *err)
{
    field f = {.level = LEVEL_NONE};
    if (!*name)
        return gc_fail(err, GC_EINVAL, "fields", "fields: name %zu is empty", w->nfields + 1);
    gc_level lv = level_parse(name);
    if (!strcmp(name, "lon")) {
        f.kind = F_LON;
    } else if (!strcmp(name, "lat")) {
        f.kind = F_LAT;
    } else if (lv >= 0 && lv < LEVEL_CHAIN_N) {
        f.kind = F_LEVEL;
        f.level = lv;
    } else {
        for (size_t i = 0; i < w->k->nlayers && !f.layer; i++)
            if (!strcmp(w->k->layers[i], name))
                f.layer = w->k->layers[i];
        if (!f.layer) {
            GString *known = g_string_new(NULL);
            for (size_t i = 0; i < w->k->nlayers; i++)
                g_string_append_printf(known, ", %s", w->k->layers[i]);
            gc_fail(err, GC_EINVAL, "fields",
                    "fields: unknown name '%s'; known: lon, lat, district, street, community, "
                    "grid, building, unit%s",
                    name, known->str);
            g_string_free(known, TRUE);
            return GC_EINVAL;
        }
        f.kind = F_LAYER;
    }
    for (size_t i = 0; i < w->nfields; i++)
        if (!strcmp(w->fields[i].name, name))
            return gc_fail(err, GC_EINVAL, "fields", "fields: '%s' is named twice", name);
    f.name = g_strdup(name);
    field_key(&f, w->nfields == 0);
    w->fields[w->nfields++] = f;
    return 0;
}

int geotag_writer_new(const gc_index *ix, geotag_format fmt, const char *fields,
                      geotag_writer **out, gc_err *err)
{
    geotag_writer *w = calloc(1, sizeof *w);
    w->ix = ix;
    w->fmt = fmt;
    w->k = index_derived(ix, cache_make, cache_free);
    w->num = json_real(0);
    int rc = 0;
    if (fields && !*fields) {
        rc = gc_fail(err, GC_EINVAL, "fields",
                     "fields: no name given (leave it out for whole chains)");
    } else if (fields) {
        gchar **names = g_strsplit(fields, ",", -1);
        w->fields = calloc(g_strv_length(names) + 1, sizeof *w->fields);
        for (gchar **n = names; *n && !rc; n++)
            rc = add_field(w, *n, err);
        g_strfreev(names);
    } else if (fmt == GEOTAG_CSV) {
        /* CSV has no nesting: the whole chain is every id in a column */
        w->fields = calloc(2 + LEVEL_CHAIN_N + w->k->nlayers, sizeof *w->fields);
        rc = add_field(w, "lon", err);
        if (!rc)
            rc = add_field(w, "lat", err);
        for (int lv = 0; lv < LEVEL_CHAIN_N && !rc; lv++)
            rc = add_field(w, level_name((gc_level)lv), err);
        for (size_t i = 0; i < w->k->nlayers && !rc; i++)
            rc = add_field(w, w->k->layers[i], err);
    } else {
        for (int lv = 0; lv < LEVEL_CHAIN_N; lv++) {
            w->chain_key[lv] = g_string_new(lv ? "," : ",\"chain\":{");
            append_json_string(w->chain_key[lv], level_name((gc_level)lv));
            g_string_append_c(w->chain_key[lv], ':');
        }
    }
    if (rc) {
        geotag_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void geotag_writer_needs(const geotag_writer *w, unsigned *levels, bool *extras)
{
    *levels = w->fields ? 0 : ~0u;
    *extras = !w->fields;
    for (size_t i = 0; i < w->nfields; i++) {
        if (w->fields[i].kind == F_LEVEL)
            *levels |= 1u << w->fields[i].level;
        else if (w->fields[i].kind == F_LAYER)
            *extras = true;
    }
}

const char *geotag_writer_content_type(const geotag_writer *w)
{
    switch (w->fmt) {
    case GEOTAG_NDJSON: return "application/x-ndjson";
    case GEOTAG_CSV: return "text/csv; charset=utf-8";
    default: return "application/json";
    }
}

void geotag_writer_begin(geotag_writer *w, GString *out, size_t count)
{
    w->written = 0;
    if (w->fmt == GEOTAG_JSON) {
        g_string_append_printf(out, "{\"count\":%zu,\"results\":[", count);
    } else if (w->fmt == GEOTAG_CSV) {
        for (size_t i = 0; i < w->nfields; i++) {
            char *e = CPLEscapeString(w->fields[i].name, -1, CPLES_CSV);
            if (i)
                g_string_append_c(out, ',');
            g_string_append(out, e);
            CPLFree(e);
        }
        g_string_append(out, "\r\n");
    }
}

static int append_number(geotag_writer *w, GString *out, double v)
{
    char buf[64];
    size_t n;
    if (json_real_set(w->num, v) || !(n = json_dumpb(w->num, buf, sizeof buf, DUMP_FLAGS)) ||
        n > sizeof buf)
        return GC_EINVAL;
    g_string_append_len(out, buf, (gssize)n);
    return 0;
}

static void append_span(GString *out, const cache *k, const span *s)
{
    g_string_append_len(out, k->text->str + s->off, s->len);
}

static int add_chain(geotag_writer *w, GString *out, const index_chain *c, double lon, double lat)
{
    const cache *k = w->k;
    g_string_append(out, "{\"lon\":");
    if (append_number(w, out, lon))
        return GC_EINVAL;
    g_string_append(out, ",\"lat\":");
    if (append_number(w, out, lat))
        return GC_EINVAL;
    for (int lv = 0; lv < LEVEL_CHAIN_N; lv++) {
        g_string_append_len(out, w->chain_key[lv]->str, (gssize)w->chain_key[lv]->len);
        if (c->chain[lv])
            append_span(out, k, &k->obj[index_feature_number(w->ix, c->chain[lv])]);
        else
            g_string_append(out, "null");
    }
    /* dedicated grids, then department grids, each in the index's order */
    for (int pass = 0; pass < 2; pass++) {
        g_string_append(out, pass ? "],\"departments\":[" : "},\"dedicated\":[");
        bool first = true;
        for (size_t i = 0; i < c->nextra; i++) {
            if ((c->extra[i]->level == LEVEL_DEPT) != pass)
                continue;
            if (!first)
                g_string_append_c(out, ',');
            first = false;
            append_span(out, k, &k->obj[index_feature_number(w->ix, c->extra[i])]);
        }
    }
    g_string_append(out, "]}");
    return 0;
}

static const index_hit *field_hit(const field *f, const index_chain *c)
{
    if (f->kind == F_LEVEL)
        return c->chain[f->level];
    /* a layer imported with overlaps may hold the point twice: the first, as chain levels do */
    for (size_t i = 0; i < c->nextra; i++)
        if (c->extra[i]->layer == f->layer)
            return c->extra[i];
    return NULL;
}

static int add_fields(geotag_writer *w, GString *out, const index_chain *c, double lon, double lat)
{
    const cache *k = w->k;
    bool csv = w->fmt == GEOTAG_CSV;
    for (size_t i = 0; i < w->nfields; i++) {
        const field *f = &w->fields[i];
        if (!csv)
            g_string_append_len(out, f->key->str, (gssize)f->key->len);
        else if (i)
            g_string_append_c(out, ',');
        if (f->kind == F_LON || f->kind == F_LAT) {
            if (append_number(w, out, f->kind == F_LON ? lon : lat))
                return GC_EINVAL;
            continue;
        }
        const index_hit *h = field_hit(f, c);
        if (h)
            append_span(out, k,
                        csv ? &k->csv[index_feature_number(w->ix, h)]
                            : &k->id[index_feature_number(w->ix, h)]);
        else if (!csv)
            g_string_append(out, "null");
    }
    if (!csv)
        g_string_append_c(out, '}');
    return 0;
}

int geotag_writer_add(geotag_writer *w, GString *out, const index_chain *c, double lon, double lat)
{
    if (w->fmt == GEOTAG_JSON && w->written)
        g_string_append_c(out, ',');
    int rc = w->fields ? add_fields(w, out, c, lon, lat) : add_chain(w, out, c, lon, lat);
    if (rc)
        return rc;
    if (w->fmt == GEOTAG_NDJSON)
        g_string_append_c(out, '\n');
    else if (w->fmt == GEOTAG_CSV)
        g_string_append(out, "\r\n");
    w->written++;
    return 0;
}

void geotag_writer_end(geotag_writer *w, GString *out)
{
    if (w->fmt == GEOTAG_JSON)
        g_string_append(out, "]}");
}

void geotag_writer_free(geotag_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nfields; i++) {
        g_free(w->fields[i].name);
        g_string_free(w->fields[i].key, TRUE);
    }
    free(w->fields);
    for (int lv = 0; lv < LEVEL_CHAIN_N; lv++)
        if (w->chain_key[lv])
            g_string_free(w->chain_key[lv], TRUE);
    json_decref(w->num);
    free(w);
}
