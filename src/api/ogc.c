/* ogc: OGC API - Features Part 1. The shapes follow the standard (OGC 17-069r4):
 * landing page, conformance, the OpenAPI definition, collections, items with
 * limit/offset/bbox/property filters and next/prev links, single items.
 * GDAL's OAPIF driver opens /collections, reads a first page, follows rel=next
 * links as given and takes numberMatched as the count, so links are absolute
 * and paging is by offset over a stable uid order. */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gridcc/cameras.h"
#include "gridcc/crs.h"
#include "gridcc/parse.h"

#define CONF_CORE "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
#define CONF_OAS30 "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
#define CONF_HTML "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"
#define CONF_GEOJSON "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
#define CRS84 "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#define GEOJSON "application/geo+json"
#define OGC_LIMIT_DEFAULT 100
#define OGC_LIMIT_MAX 10000

static char *base_url(const http_req *r)
{
    return g_strdup_printf("http://%s/ogc", r->host[0] ? r->host : "127.0.0.1");
}

static json_t *link(const char *href, const char *rel, const char *type, const char *title)
{
    json_t *l = json_pack("{s:s,s:s}", "href", href, "rel", rel);
    if (type)
        json_object_set_new(l, "type", json_string(type));
    if (title)
        json_object_set_new(l, "title", json_string(title));
    return l;
}

/* Appends a link whose href is formatted from the arguments. */
static void add_link(json_t *links, const char *rel, const char *type, const char *title,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_link(json_t *links, const char *rel, const char *type, const char *title,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *href = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_array_append_new(links, link(href, rel, type, title));
    g_free(href);
}

static char *url_escape(const char *s) { return g_uri_escape_string(s, NULL, FALSE); }

/* ---- HTML ---- */

static void html_begin(GString *h, const char *title)
{
    char *t = g_markup_escape_text(title, -1);
    g_string_append_printf(
        h,
        "<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>%s</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style></head><body>"
        "<p><a href=\"/ogc?f=html\">gridcc</a> · <a href=\"/ogc/collections?f=html\">collections</a>"
        "</p><h1>%s</h1>",
        t, t);
    g_free(t);
}

static void html_end(http_req *r, GString *h)
{
    g_string_append(h, "</body></html>");
    http_reply(r, 200, "text/html; charset=utf-8", h->str, h->len);
    g_string_free(h, TRUE);
}

static void html_text(GString *h, const char *s)
{
    char *t = g_markup_escape_text(s ? s : "", -1);
    g_string_append(h, t);
    g_free(t);
}

/* The camera registry as a collection (below): its features are the view
 * sectors. Its name is taken before any layer's. */
#define CAMERAS_COLLECTION "cameras"
static bool cameras_readable(const http_req *r);
static json_t *cameras_collection_json(api_env *env, const char *b);
static void cameras_tree(http_req *r, api_env *env, const char *tail);

/* ---- landing, conformance ---- */

static void h_landing(http_req *r, void *ud)
{
    char *b = base_url(r);
    if (http_wants_html(r)) {
        GString *h = g_string_new(NULL);
        html_begin(h, "gridcc — OGC API - Features");
        g_string_append(h, "<ul><li><a href=\"/ogc/collections?f=html\">collections</a></li>"
                           "<li><a href=\"/ogc/conformance?f=html\">conformance</a></li>"
                           "<li><a href=\"/ogc/api\">API definition (OpenAPI 3.0)</a></li></ul>");
        html_end(r, h);
        g_free(b);
        return;
    }
    json_t *links = json_array();
    add_link(links, "self", "application/json", "this document", "%s?f=json", b);
    add_link(links, "alternate", "text/html", "this document as HTML", "%s?f=html", b);
    add_link(links, "service-desc", "application/vnd.oai.openapi+json;version=3.0",
             "the API definition", "%s/api", b);
    add_link(links, "service-doc", "text/html", "the API documentation", "%s/api?f=html", b);
    add_link(links, "conformance", "application/json", "conformance classes", "%s/conformance", b);
    add_link(links, "data", "application/json", "the layers of the grid hierarchy",
             "%s/collections", b);
    g_free(b);
    http_reply_json(r, 200,
                    json_pack("{s:s,s:s,s:o}", "title", "gridcc",
                              "description",
                              "Grid layers of a city grid-governance command center "
                              "(district, street, community, grid, building, unit, dedicated "
                              "and department grids)",
                              "links", links));
}

static void h_conformance(http_req *r, void *ud)
{
    if (http_wants_html(r)) {
        GString *h = g_string_new(NULL);
        html_begin(h, "conformance");
        g_string_append(h, "<ul><li>" CONF_CORE "</li><li>" CONF_OAS30 "</li><li>" CONF_HTML
                           "</li><li>" CONF_GEOJSON "</li></ul>");
        html_end(r, h);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:[ssss]}", "conformsTo", CONF_CORE, CONF_OAS30,
                                      CONF_HTML, CONF_GEOJSON));
}

/* ---- collections ---- */

static json_t *collection_json(const store_layer *l, const char *b)
{
    char *id = url_escape(l->name);
    json_t *links = json_array();
    add_link(links, "self", "application/json", "this collection", "%s/collections/%s", b, id);
    add_link(links, "items", GEOJSON, "the features", "%s/collections/%s/items", b, id);
    add_link(links, "items", "text/html", "the features as HTML", "%s/collections/%s/items?f=html",
             b, id);
    g_free(id);
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:o}", "id", l->name, "title", l->title,
                          "description", l->level, "itemType", "feature", "crs", CRS84, "links",
                          links);
    char desc[512];
    snprintf(desc, sizeof desc, "level %s%s%s; %lld features; version %d imported %s", l->level,
             l->department[0] ? ", department " : "", l->department, (long long)l->count,
             l->version, l->imported_at);
    json_object_set_new(c, "description", json_string(desc));
    if (l->has_bbox)
        json_object_set_new(c, "extent",
                            json_pack("{s:{s:[[ffff]],s:s}}", "spatial", "bbox", l->bbox[0],
                                      l->bbox[1], l->bbox[2], l->bbox[3], "crs", CRS84));
    json_object_set_new(c, "level", json_string(l->level));
    if (l->department[0])
        json_object_set_new(c, "department", json_string(l->department));
    json_object_set_new(c, "numberMatched", json_integer(l->count));
    return c;
}

/* Lists the layers; false if it has replied instead. */
static bool layers_or_reply(http_req *r, api_env *env, store_layer **ls, size_t *n)
{
    gc_err err = {0};
    if (store_layers_list(env->store, ls, n, &err)) {
        http_reply_err(r, &err);
        return false;
    }
    return true;
}

static void h_collections(http_req *r, void *ud)
{
    api_env *env = ud;
    store_layer *ls;
    size_t n;
    if (!layers_or_reply(r, env, &ls, &n))
        return;
    if (http_wants_html(r)) {
        GString *h = g_string_new(NULL);
        html_begin(h, "collections");
        g_string_append(h, "<table><tr><th>id</th><th>level</th><th>features</th><th>version</th></tr>");
        for (size_t i = 0; i < n; i++) {
            char *id = url_escape(ls[i].name);
            g_string_append_printf(h, "<tr><td><a href=\"/ogc/collections/%s/items?f=html\">", id);
            html_text(h, ls[i].name);
            g_string_append(h, "</a></td><td>");
            html_text(h, ls[i].level);
            g_string_append_printf(h, "</td><td>%lld</td><td>%d</td></tr>", (long long)ls[i].count,
                                   ls[i].version);
            g_free(id);
        }
        g_string_append(h, "</table>");
        store_layers_free(ls, n);
        html_end(r, h);
        return;
    }
    char *b = base_url(r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, collection_json(&ls[i], b));
    store_layers_free(ls, n);
    if (cameras_readable(r))
        json_array_append_new(arr, cameras_collection_json(env, b));
    char *self = g_strdup_printf("%s/collections", b);
    json_t *links = json_pack("[o]", link(self, "self", "application/json", "this document"));
    g_free(self);
    g_free(b);
    http_reply_json(r, 200, json_pack("{s:o,s:o}", "links", links, "collections", arr));
}

/* ---- items ---- */

typedef struct page {
    GString *out;
    bool html;
    size_t n;
} page;

/* properties: the feature's own attributes, then what the hierarchy says of
 * it (these win on a clash, so id/name/code/level/parent are always ours) */
static json_t *feature_props(const store_feature *f)
{
    json_t *p = json_loads(f->props_json ? f->props_json : "{}", 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_object();
    }
    json_object_set_new(p, "id", json_string(f->fid));
    json_object_set_new(p, "name", f->name ? json_string(f->name) : json_null());
    json_object_set_new(p, "code", f->code ? json_string(f->code) : json_null());
    json_object_set_new(p, "level", json_string(f->level));
    json_object_set_new(p, "parent", f->parent_fid ? json_string(f->parent_fid) : json_null());
    json_t *anc = json_loads(f->ancestors_json ? f->ancestors_json : "[]", 0, NULL);
    json_t *ids = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(anc, i, a)
    {
        const char *lv = json_string_value(json_object_get(a, "level"));
        json_t *id = json_object_get(a, "id");
        if (!lv || !json_is_string(id))
            continue;
        json_array_append(ids, id);
        char key[48];
        snprintf(key, sizeof key, "%s_id", lv);
        json_object_set(p, key, id);
    }
    json_decref(anc);
    json_object_set_new(p, "ancestors", ids);
    return p;
}

static void feature_json(GString *out, const store_feature *f)
{
    json_t *p = feature_props(f);
    char *ps = json_dumps(p, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *id = json_string(f->fid);
    char *ids = json_dumps(id, JSON_ENCODE_ANY);
    g_string_append_printf(out, "{\"type\":\"Feature\",\"id\":%s,\"geometry\":%s,\"properties\":%s}",
                           ids, f->geojson ? f->geojson : "null", ps);
    free(ids);
    json_decref(id);
    free(ps);
    json_decref(p);
}

static int page_feature(void *ud, const store_feature *f)
{
    page *pg = ud;
    if (pg->html) {
        char *fid = url_escape(f->fid);
        g_string_append_printf(pg->out, "<tr><td><a href=\"/ogc/collections/%s/items/%s?f=html\">",
                               f->layer, fid);
        g_free(fid);
        html_text(pg->out, f->fid);
        g_string_append(pg->out, "</a></td><td>");
        html_text(pg->out, f->name);
        g_string_append(pg->out, "</td><td>");
        html_text(pg->out, f->code);
        g_string_append(pg->out, "</td><td>");
        html_text(pg->out, f->parent_fid);
        g_string_append(pg->out, "</td></tr>");
    } else {
        if (pg->n)
            g_string_append_c(pg->out, ',');
        feature_json(pg->out, f);
    }
    pg->n++;
    return 0;
}

static bool parse_long(const char *s, long long lo, long long hi, long long *out)
{
    int64_t v;
    if (gc_parse_int(s, "n", lo, hi, &v, NULL))
        return false;
    *out = v;
    return true;
}

static bool is_known_param(const char *k)
{
    static const char *known[] = {"limit", "offset", "bbox", "bbox-crs", "f", "datetime", "crs", NULL};
    for (int i = 0; known[i]; i++)
        if (!strcmp(k, known[i]))
            return true;
    return false;
}

static bool is_queryable(const store_layer *l, const char *k)
{
    static const char *builtin[] = {"id", "name", "code", "level", "parent", NULL};
    for (int i = 0; builtin[i]; i++)
        if (!strcmp(k, builtin[i]))
            return true;
    json_t *fields = json_loads(l->fields_json ? l->fields_json : "[]", 0, NULL);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(fields, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), k))
        found = true;
    json_decref(fields);
    return found;
}

/* bbox as 4 (or 6, 3D) numbers, in bbox-crs (default CRS84) → EPSG:4326 */
static bool parse_bbox(http_req *r, double bb[4])
{
    const char *s = http_query(r, "bbox");
    gchar **parts = g_strsplit(s, ",", -1);
    guint n = g_strv_length(parts);
    double v[6];
    bool ok = n == 4 || n == 6;
    for (guint i = 0; ok && i < n; i++)
        ok = !gc_parse_double(parts[i], "bbox", -INFINITY, INFINITY, &v[i], NULL);
    g_strfreev(parts);
    if (!ok) {
        http_reply_error(r, 400, "invalid", "bbox",
                         "bbox takes 4 (or 6) comma-separated numbers: minlon,minlat,maxlon,maxlat");
        return false;
    }
    if (n == 6) {
        v[2] = v[3];
        v[3] = v[4];
    }
    const char *bc = http_query(r, "bbox-crs");
    crs_def d;
    gc_err err = {0};
    crs_transform *t = NULL;
    if (crs_parse(bc, &d, &err) || !(t = crs_transform_new(&d, &err))) {
        snprintf(err.field, sizeof err.field, "bbox-crs");
        http_reply_err(r, &err);
        return false;
    }
    double xs[2] = {v[0], v[2]}, ys[2] = {v[1], v[3]};
    int rc = crs_transform_to_wgs84(t, xs, ys, 2, NULL, &err);
    crs_transform_free(t);
    if (rc) {
        snprintf(err.field, sizeof err.field, "bbox");
        http_reply_err(r, &err);
        return false;
    }
    if (xs[0] > xs[1] || ys[0] > ys[1]) {
        http_reply_error(r, 400, "invalid", "bbox",
                         "bbox lower corner must come first (minlon,minlat,maxlon,maxlat)");
        return false;
    }
    bb[0] = xs[0];
    bb[1] = ys[0];
    bb[2] = xs[1];
    bb[3] = ys[1];
    return true;
}

static bool collection_from_path(http_req *r, api_env *env, const char *rest, char *id,
                                 size_t idlen, const char **tail, store_layer *L)
{
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= idlen) {
        http_reply_error(r, 404, "not_found", "collectionId", "no collection named in %s", r->path);
        return false;
    }
    memcpy(id, rest, n);
    id[n] = 0;
    *tail = slash ? slash : "";
    gc_err err = {0};
    if (store_layer_get(env->store, id, L, &err)) {
        if (err.code == GC_ENOTFOUND)
            http_reply_error(r, 404, "not_found", "collectionId", "no collection '%s'", id);
        else
            http_reply_err(r, &err);
        return false;
    }
    return true;
}

/* limit and offset of an items request: false once it has replied 400. */
static bool read_paging(http_req *r, long long *limit, long long *offset)
{
    *limit = OGC_LIMIT_DEFAULT;
    *offset = 0;
    const char *ls = http_query(r, "limit"), *os = http_query(r, "offset");
    if (ls && !parse_long(ls, 1, 1000000000, limit)) {
        http_reply_error(r, 400, "invalid", "limit", "limit must be an integer from 1 to %d",
                         OGC_LIMIT_MAX);
        return false;
    }
    if (*limit > OGC_LIMIT_MAX)
        *limit = OGC_LIMIT_MAX;   /* the standard: serve the maximum, not an error */
    if (os && !parse_long(os, 0, (long long)1 << 40, offset)) {
        http_reply_error(r, 400, "invalid", "offset", "offset must be a non-negative integer");
        return false;
    }
    return true;
}

/* A page's links: self, next (while more match; its URL in *next when
 * asked), prev, collection. They keep every parameter but limit and offset. */
static json_t *page_links(http_req *r, const char *collection, long long limit,
                          long long offset, size_t n, int64_t matched, char **next)
{
    char *b = base_url(r), *id = url_escape(collection);
    GString *qs = g_string_new(NULL);
    for (guint i = 0; i < r->qkeys->len; i++) {
        const char *k = g_ptr_array_index(r->qkeys, i);
        if (!strcmp(k, "offset") || !strcmp(k, "limit"))
            continue;
        char *ek = url_escape(k), *ev = url_escape(g_ptr_array_index(r->qvals, i));
        g_string_append_printf(qs, "&%s=%s", ek, ev);
        g_free(ek);
        g_free(ev);
    }
    json_t *links = json_array();
    add_link(links, "self", GEOJSON, "this page", "%s/collections/%s/items?limit=%lld&offset=%lld%s",
             b, id, limit, offset, qs->str);
    if (offset + (long long)n < matched && n > 0) {
        char *u = g_strdup_printf("%s/collections/%s/items?limit=%lld&offset=%lld%s", b, id, limit,
                                  offset + limit, qs->str);
        json_array_append_new(links, link(u, "next", GEOJSON, "next page"));
        if (next)
            *next = u;
        else
            g_free(u);
    }
    if (offset > 0)
        add_link(links, "prev", GEOJSON, "previous page",
                 "%s/collections/%s/items?limit=%lld&offset=%lld%s", b, id, limit,
                 offset > limit ? offset - limit : 0, qs->str);
    add_link(links, "collection", "application/json", "the collection", "%s/collections/%s", b, id);
    g_string_free(qs, TRUE);
    g_free(id);
    g_free(b);
    return links;
}

/* A page of items: large ones are built on a thread (10,000 buildings with
 * their properties and ancestors take ~0.3 s in release, 17 s under ASan,
 * time in which the loop would serve nobody else), small ones at once on
 * the loop, where opening a connection of its own would cost more. */
#define ITEMS_ON_LOOP_MAX 500
/* At most this many large pages are built at once: each holds a connection
 * of its own with its page cache and ~7 MB of text, and the task pool is
 * shared with sign-ins and tiles. More wait their turn, in order, their
 * requests deferred (QGIS asks for pages in parallel: it gets them all). */
#define ITEMS_BUILDING_MAX 2

typedef struct items_job {
    api_env *env;
    http_req *r;
    char layer[128];
    store_query q;         /* .layer is the job's; properties point into r's query */
    GPtrArray *keys, *vals;
    long long limit, offset;
    page pg;
    int64_t matched;
    char *db;              /* set when the page is built on a thread */
    gc_err err;
    int rc;
} items_job;

static void items_free(items_job *j)
{
    if (j->pg.out)
        g_string_free(j->pg.out, TRUE);
    g_ptr_array_free(j->keys, TRUE);
    g_ptr_array_free(j->vals, TRUE);
    g_free(j->db);
    g_free(j);
}

static void items_build(store *s, items_job *j)
{
    j->q.layer = j->layer;
    j->q.nprops = j->keys->len;
    j->q.prop_keys = (const char *const *)j->keys->pdata;
    j->q.prop_vals = (const char *const *)j->vals->pdata;
    j->rc = store_features_query(s, &j->q, &j->matched, page_feature, &j->pg, &j->err);
}

static void items_thread(void *data)
{
    items_job *j = data;
    store *s;
    gint64 t0 = g_get_monotonic_time();
    gc_err err = {0};
    if (store_open(j->db, &s, &err)) {
        /* the server's fault, and the store's path is not the client's to see */
        log_error("ogc", "items: the store would not open: %s", err.msg);
        j->rc = gc_fail(&j->err, GC_EIO, NULL, "the features could not be read");
        return;
    }
    items_build(s, j);
    store_close(s);
    log_info("ogc", "items built off the loop layer=%s n=%zu bytes=%zu ms=%.0f", j->layer, j->pg.n,
             j->pg.out->len, (double)(g_get_monotonic_time() - t0) / 1000.0);
}

/* The page's links and its end, and the answer. */
static void items_answer(items_job *j)
{
    http_req *r = j->r;
    if (j->rc) {
        http_reply_err(r, &j->err);
        return;
    }
    page *pg = &j->pg;
    char *next = NULL;
    json_t *links = page_links(r, j->layer, j->limit, j->offset, pg->n, j->matched, &next);
    bool has_next = next != NULL;
    if (pg->html && next)
        g_string_append_printf(pg->out, "</table><p><a href=\"%s&f=html\">next page</a></p>", next);
    g_free(next);
    if (pg->html) {
        json_decref(links);
        if (!has_next)
            g_string_append(pg->out, "</table>");
        g_string_append_printf(pg->out, "<p>%zu of %lld features</p>", pg->n, (long long)j->matched);
        html_end(r, pg->out);   /* it frees the string */
        pg->out = NULL;
    } else {
        char *lj = json_dumps(links, JSON_COMPACT);
        json_decref(links);
        GDateTime *now = g_date_time_new_now_utc();
        char *ts = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
        g_date_time_unref(now);
        g_string_append_printf(pg->out,
                               "],\"numberMatched\":%lld,\"numberReturned\":%zu,\"timeStamp\":\"%s\","
                               "\"links\":%s}",
                               (long long)j->matched, pg->n, ts, lj);
        g_free(ts);
        free(lj);
        http_reply(r, 200, GEOJSON, pg->out->str, pg->out->len);
    }
}

static struct {
    int building;
    GQueue waiting;   /* items_job, each counted in its env's busy (shutdown waits) */
} items_pool = {0, G_QUEUE_INIT};

static void items_done(void *data);

static void items_start(items_job *j)
{
    items_pool.building++;
    api_offload(j->env, j->r, items_thread, items_done, j);
}

static void items_done(void *data)
{
    items_job *j = data;
    if (!http_gone(j->r))
        items_answer(j);
    http_complete(j->r);
    items_free(j);
    items_pool.building--;
    /* the next in line; one whose client left is let go unbuilt */
    items_job *n;
    while (items_pool.building < ITEMS_BUILDING_MAX && (n = g_queue_pop_head(&items_pool.waiting))) {
        n->env->busy--;
        if (http_gone(n->r)) {
            http_complete(n->r);
            items_free(n);
            continue;
        }
        items_start(n);
    }
}

static void h_items(http_req *r, api_env *env, store_layer *L)
{
    long long limit, offset;
    if (!read_paging(r, &limit, &offset))
        return;
    const char *f = http_query(r, "f");
    if (f && strcasecmp(f, "json") && strcasecmp(f, "geojson") && strcasecmp(f, "html")) {
        http_reply_error(r, 400, "invalid", "f", "f must be json or html");
        return;
    }
    const char *crs = http_query(r, "crs");
    if (crs) {
        crs_def d;
        if (crs_parse(crs, &d, NULL) || d.kind != CRS_WGS84) {
            http_reply_error(r, 400, "invalid", "crs", "only CRS84 output is offered (crs=%s)", crs);
            return;
        }
    }
    items_job *j = g_new0(items_job, 1);
    j->r = r;
    g_strlcpy(j->layer, L->name, sizeof j->layer);
    j->limit = limit;
    j->offset = offset;
    j->q = (store_query){.limit = limit, .offset = offset};
    j->keys = g_ptr_array_new();
    j->vals = g_ptr_array_new();
    if (http_query(r, "bbox")) {
        if (!parse_bbox(r, j->q.bbox)) {
            items_free(j);
            return;
        }
        j->q.has_bbox = true;
    }
    for (guint i = 0; i < r->qkeys->len; i++) {
        const char *k = g_ptr_array_index(r->qkeys, i);
        if (is_known_param(k))
            continue;
        if (!is_queryable(L, k)) {
            http_reply_error(r, 400, "invalid", k,
                             "unknown parameter '%s': not a property of collection %s", k, L->name);
            items_free(j);
            return;
        }
        g_ptr_array_add(j->keys, (gpointer)k);
        g_ptr_array_add(j->vals, g_ptr_array_index(r->qvals, i));
    }
    bool html = http_wants_html(r);
    j->pg = (page){.out = g_string_sized_new(html ? 4096 : (gsize)limit * 600), .html = html};
    if (html) {
        html_begin(j->pg.out, L->title);
        g_string_append(j->pg.out, "<table><tr><th>id</th><th>name</th><th>code</th><th>parent</th></tr>");
    } else {
        g_string_append(j->pg.out, "{\"type\":\"FeatureCollection\",\"features\":[");
    }
    if (limit > ITEMS_ON_LOOP_MAX) {
        j->env = env;
        j->db = g_strdup(store_path(env->store));
        if (items_pool.building < ITEMS_BUILDING_MAX) {
            items_start(j);
        } else {
            http_defer(r);
            env->busy++;
            g_queue_push_tail(&items_pool.waiting, j);
        }
        return;
    }
    items_build(env->store, j);
    items_answer(j);
    items_free(j);
}

typedef struct one {
    GString *out;
    bool found;
    bool html;
} one;

static int one_feature(void *ud, const store_feature *f)
{
    one *o = ud;
    o->found = true;
    if (o->html) {
        html_begin(o->out, f->name ? f->name : f->fid);
        json_t *p = feature_props(f);
        g_string_append(o->out, "<table>");
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v)
        {
            char *s = json_is_string(v) ? g_strdup(json_string_value(v))
                                        : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            g_string_append(o->out, "<tr><th>");
            html_text(o->out, k);
            g_string_append(o->out, "</th><td>");
            html_text(o->out, s);
            g_string_append(o->out, "</td></tr>");
            if (json_is_string(v))
                g_free(s);
            else
                free(s);
        }
        g_string_append(o->out, "</table>");
        json_decref(p);
    } else {
        feature_json(o->out, f);
    }
    return 1;
}

static void h_item(http_req *r, api_env *env, store_layer *L, const char *fid)
{
    one o = {.out = g_string_new(NULL), .html = http_wants_html(r)};
    store_query q = {.layer = L->name, .fid = fid, .limit = 1};
    gc_err err = {0};
    if (store_features_query(env->store, &q, NULL, one_feature, &o, &err)) {
        g_string_free(o.out, TRUE);
        http_reply_err(r, &err);
        return;
    }
    if (!o.found) {
        g_string_free(o.out, TRUE);
        http_reply_error(r, 404, "not_found", "featureId", "no feature '%s' in collection %s", fid,
                         L->name);
        return;
    }
    if (o.html) {
        html_end(r, o.out);
        return;
    }
    /* add links to the feature */
    char *b = base_url(r), *id = url_escape(L->name), *ef = url_escape(fid);
    g_string_truncate(o.out, o.out->len - 1);   /* drop the closing brace */
    g_string_append_printf(o.out,
                           ",\"links\":[{\"href\":\"%s/collections/%s/items/%s\",\"rel\":\"self\","
                           "\"type\":\"" GEOJSON "\"},{\"href\":\"%s/collections/%s\",\"rel\":"
                           "\"collection\",\"type\":\"application/json\"}]}",
                           b, id, ef, b, id);
    g_free(b);
    g_free(id);
    g_free(ef);
    http_reply(r, 200, GEOJSON, o.out->str, o.out->len);
    g_string_free(o.out, TRUE);
}

/* ---- the cameras collection ----
 * Each feature's geometry is the camera's view sector (a polygon: what it
 * sees); the mounting point is in properties.lon/lat, the url is the public
 * one (no credentials, whoever asks). Readable by those who may read the
 * registry (CAMERAS_READ_ROLES), whatever --public-read says: camera
 * positions are not for everyone. bbox filters by the sector's extent. */

static bool cameras_readable(const http_req *r) { return (r->who.role & CAMERAS_READ_ROLES) != 0; }

static json_t *cameras_collection_json(api_env *env, const char *b)
{
    int64_t n = 0;
    store_cameras_list(env->store, NULL, 0, 0, &n, NULL, NULL, NULL);
    json_t *links = json_array();
    add_link(links, "self", "application/json", "this collection", "%s/collections/%s", b,
             CAMERAS_COLLECTION);
    add_link(links, "items", GEOJSON, "the view sectors", "%s/collections/%s/items", b,
             CAMERAS_COLLECTION);
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:o,s:I}", "id", CAMERAS_COLLECTION, "title",
                          "cameras", "description",
                          "cameras' view sectors (geometry); mounting point in lon/lat",
                          "itemType", "feature", "crs", CRS84, "links", links, "numberMatched",
                          (json_int_t)n);
    return c;
}

/* The registry's feature with the grid, community and street the camera
 * stands in (cameras_place), as GET /api/cameras has them. */
static json_t *cam_feature_json(const gc_index *ix, const store_camera *c)
{
    json_t *f = cameras_feature(c);
    cameras_place(ix, c->lon, c->lat, json_object_get(f, "properties"));
    return f;
}

typedef struct cam_page {
    GString *out;
    size_t n;
    const gc_index *ix;
} cam_page;

static int cam_feature(void *ud, const store_camera *c)
{
    cam_page *pg = ud;
    json_t *f = cam_feature_json(pg->ix, c);
    char *s = json_dumps(f, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(f);
    if (pg->n++)
        g_string_append_c(pg->out, ',');
    g_string_append(pg->out, s);
    free(s);
    return 0;
}

static void cameras_items(http_req *r, api_env *env)
{
    long long limit, offset;
    if (!read_paging(r, &limit, &offset))
        return;
    for (guint i = 0; i < r->qkeys->len; i++) {
        const char *k = g_ptr_array_index(r->qkeys, i);
        if (!is_known_param(k)) {
            http_reply_error(r, 400, "invalid", k,
                             "unknown parameter '%s': the cameras collection filters by bbox", k);
            return;
        }
    }
    double bb[4];
    bool has_bbox = http_query(r, "bbox") != NULL;
    if (has_bbox && !parse_bbox(r, bb))
        return;
    cam_page pg = {g_string_new("{\"type\":\"FeatureCollection\",\"features\":["), 0, env->index};
    int64_t matched = 0;
    gc_err err = {0};
    if (store_cameras_list(env->store, has_bbox ? bb : NULL, limit, offset, &matched, cam_feature,
                           &pg, &err)) {
        g_string_free(pg.out, TRUE);
        http_reply_err(r, &err);
        return;
    }
    json_t *links = page_links(r, CAMERAS_COLLECTION, limit, offset, pg.n, matched, NULL);
    char *lj = json_dumps(links, JSON_COMPACT);
    json_decref(links);
    g_string_append_printf(pg.out, "],\"numberMatched\":%lld,\"numberReturned\":%zu,\"links\":%s}",
                           (long long)matched, pg.n, lj);
    free(lj);
    http_reply(r, 200, GEOJSON, pg.out->str, pg.out->len);
    g_string_free(pg.out, TRUE);
}

static void cameras_tree(http_req *r, api_env *env, const char *tail)
{
    if (!cameras_readable(r)) {
        if (r->who.role == ROLE_NONE)
            http_reply_error(r, 401, "unauthorized", NULL, "the cameras collection needs a token");
        else
            http_reply_error(r, 403, "forbidden", NULL,
                             "the cameras collection is for operators, planners, admins and "
                             "department users");
        return;
    }
    if (!*tail || !strcmp(tail, "/")) {
        char *b = base_url(r);
        http_reply_json(r, 200, cameras_collection_json(env, b));
        g_free(b);
    } else if (!strcmp(tail, "/items")) {
        cameras_items(r, env);
    } else if (!strncmp(tail, "/items/", 7) && tail[7] && !strchr(tail + 7, '/')) {
        store_camera c;
        gc_err err = {0};
        if (store_camera_get(env->store, tail + 7, &c, &err)) {
            if (err.code == GC_ENOTFOUND)
                snprintf(err.field, sizeof err.field, "featureId");
            http_reply_err(r, &err);
            return;
        }
        http_reply_json(r, 200, cam_feature_json(env->index, &c));
    } else {
        http_reply_error(r, 404, "not_found", "path", "no resource at %s", r->path);
    }
}

static void h_collection_tree(http_req *r, void *ud)
{
    api_env *env = ud;
    const char *rest = r->path + strlen("/ogc/collections/");
    char id[256];
    const char *tail;
    store_layer L;
    if (!strcmp(rest, CAMERAS_COLLECTION) || !strncmp(rest, CAMERAS_COLLECTION "/", 8)) {
        cameras_tree(r, env, rest + strlen(CAMERAS_COLLECTION));
        return;
    }
    if (!collection_from_path(r, env, rest, id, sizeof id, &tail, &L))
        return;
    if (!*tail || !strcmp(tail, "/")) {
        if (http_wants_html(r)) {
            GString *h = g_string_new(NULL);
            html_begin(h, L.title);
            char *e = url_escape(L.name);
            g_string_append_printf(h, "<p><a href=\"/ogc/collections/%s/items?f=html\">items</a> (%lld)</p>",
                                   e, (long long)L.count);
            g_free(e);
            html_end(r, h);
        } else {
            char *b = base_url(r);
            http_reply_json(r, 200, collection_json(&L, b));
            g_free(b);
        }
    } else if (!strcmp(tail, "/items")) {
        h_items(r, env, &L);
    } else if (!strncmp(tail, "/items/", 7) && tail[7] && !strchr(tail + 7, '/')) {
        h_item(r, env, &L, tail + 7);
    } else {
        http_reply_error(r, 404, "not_found", "path", "no resource at %s", r->path);
    }
    free(L.fields_json);
}

/* ---- OpenAPI ---- */

static json_t *param_ref(const char *name) {
    char *ref = g_strdup_printf("#/components/parameters/%s", name);
    json_t *j = json_pack("{s:s}", "$ref", ref);
    g_free(ref);
    return j;
}

static json_t *response(const char *desc, const char *type)
{
    return json_pack("{s:{s:s,s:{s:{s:{s:s}}}}}", "200", "description", desc, "content", type,
                     "schema", "type", "object");
}

static void h_api(http_req *r, void *ud)
{
    api_env *env = ud;
    store_layer *ls;
    size_t n;
    if (!layers_or_reply(r, env, &ls, &n))
        return;
    char *b = base_url(r);
    json_t *paths = json_object();
    json_object_set_new(paths, "/", json_pack("{s:{s:s,s:o}}", "get", "summary", "landing page",
                                              "responses", response("landing page", "application/json")));
    json_object_set_new(paths, "/conformance",
                        json_pack("{s:{s:s,s:o}}", "get", "summary", "conformance classes",
                                  "responses", response("conformance", "application/json")));
    json_object_set_new(paths, "/api", json_pack("{s:{s:s,s:o}}", "get", "summary",
                                                 "this definition", "responses",
                                                 response("the API definition", "application/json")));
    json_object_set_new(paths, "/collections",
                        json_pack("{s:{s:s,s:o}}", "get", "summary", "the collections",
                                  "responses", response("collections", "application/json")));
    for (size_t i = 0; i < n; i++) {
        json_t *params = json_pack("[ooo]", param_ref("limit"), param_ref("offset"),
                                   param_ref("bbox"));
        json_array_append_new(params, param_ref("f"));
        static const char *builtin[] = {"id", "name", "code", "level", "parent"};
        for (size_t k = 0; k < 5; k++)
            json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s},s:s}", "name",
                                                    builtin[k], "in", "query", "required", 0,
                                                    "schema", "type", "string", "style", "form"));
        json_t *fields = json_loads(ls[i].fields_json, 0, NULL);
        size_t k;
        json_t *v;
        json_array_foreach(fields, k, v)
        {
            const char *fname = json_string_value(v);
            bool dup = false;
            for (size_t j = 0; j < 5 && fname; j++)
                dup |= !strcmp(fname, builtin[j]);
            if (!fname || dup)
                continue;
            json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s},s:s}", "name", fname,
                                                    "in", "query", "required", 0, "schema",
                                                    "type", "string", "style", "form"));
        }
        json_decref(fields);
        char *p1 = g_strdup_printf("/collections/%s", ls[i].name);
        char *p2 = g_strdup_printf("/collections/%s/items", ls[i].name);
        char *p3 = g_strdup_printf("/collections/%s/items/{featureId}", ls[i].name);
        json_object_set_new(paths, p1, json_pack("{s:{s:s,s:o}}", "get", "summary", ls[i].title,
                                                 "responses", response("collection", "application/json")));
        json_object_set_new(paths, p2,
                            json_pack("{s:{s:s,s:s,s:o,s:o}}", "get", "summary", ls[i].title,
                                      "operationId", p2, "parameters", params, "responses",
                                      response("features", GEOJSON)));
        json_object_set_new(paths, p3,
                            json_pack("{s:{s:s,s:[{s:s,s:s,s:b,s:{s:s}}],s:o}}", "get", "summary",
                                      "one feature", "parameters", "name", "featureId", "in",
                                      "path", "required", 1, "schema", "type", "string",
                                      "responses", response("feature", GEOJSON)));
        g_free(p1);
        g_free(p2);
        g_free(p3);
    }
    store_layers_free(ls, n);
    if (cameras_readable(r)) {
        json_object_set_new(paths, "/collections/" CAMERAS_COLLECTION,
                            json_pack("{s:{s:s,s:o}}", "get", "summary", "cameras", "responses",
                                      response("collection", "application/json")));
        json_object_set_new(
            paths, "/collections/" CAMERAS_COLLECTION "/items",
            json_pack("{s:{s:s,s:s,s:[ooo],s:o}}", "get", "summary", "cameras' view sectors",
                      "operationId", "/collections/" CAMERAS_COLLECTION "/items", "parameters",
                      param_ref("limit"), param_ref("offset"), param_ref("bbox"), "responses",
                      response("features", GEOJSON)));
    }
    json_t *components = json_pack(
        "{s:{s:{s:s,s:s,s:b,s:s,s:{s:s,s:i,s:i,s:i},s:b},"
        "s:{s:s,s:s,s:b,s:{s:s,s:i,s:i}},"
        "s:{s:s,s:s,s:b,s:s,s:{s:s,s:i,s:i,s:{s:s}},s:s,s:b},"
        "s:{s:s,s:s,s:b,s:{s:s,s:[ss]}}},"
        "s:{s:{s:s,s:{s:s}}}}",
        "parameters",
        "limit", "name", "limit", "in", "query", "required", 0, "description",
        "number of features per page", "schema", "type", "integer", "minimum", 1, "maximum",
        OGC_LIMIT_MAX, "default", OGC_LIMIT_DEFAULT, "explode", 0,
        "offset", "name", "offset", "in", "query", "required", 0, "schema", "type", "integer",
        "minimum", 0, "default", 0,
        "bbox", "name", "bbox", "in", "query", "required", 0, "style", "form", "schema", "type",
        "array", "minItems", 4, "maxItems", 6, "items", "type", "number", "style", "form",
        "explode", 0,
        "f", "name", "f", "in", "query", "required", 0, "schema", "type", "string", "enum", "json",
        "html",
        "schemas", "featureCollectionGeoJSON", "type", "object", "properties", "type", "object");
    json_t *api = json_pack("{s:s,s:{s:s,s:s,s:s},s:[{s:s}],s:o,s:o}", "openapi", "3.0.3",
                            "info", "title", "gridcc OGC API - Features", "version",
                            GRIDCC_VERSION, "description",
                            "grid layers of a city grid-governance command center", "servers",
                            "url", b, "paths", paths, "components", components);
    g_free(b);
    if (http_wants_html(r)) {
        GString *h = g_string_new(NULL);
        html_begin(h, "API definition");
        char *s = json_dumps(api, JSON_INDENT(2));
        g_string_append(h, "<pre>");
        html_text(h, s);
        g_string_append(h, "</pre>");
        free(s);
        json_decref(api);
        html_end(r, h);
        return;
    }
    char *s = json_dumps(api, JSON_COMPACT);
    json_decref(api);
    http_reply(r, 200, "application/vnd.oai.openapi+json;version=3.0", s, strlen(s));
    free(s);
}

void ogc_register(http_server *s, api_env *env)
{
    /* the landing page and conformance say what this is; the layers (and the
     * API definition, which lists them) need a token unless --public-read */
    unsigned read = env->public_read ? ROLE_ANY | HTTP_OPTIONAL : ROLE_ANY;
    http_route(s, "GET", "/ogc", HTTP_PUBLIC, 0, h_landing, env);
    http_route(s, "GET", "/ogc/", HTTP_PUBLIC, 0, h_landing, env);
    http_route(s, "GET", "/ogc/conformance", HTTP_PUBLIC, 0, h_conformance, env);
    http_route(s, "GET", "/ogc/api", read, 0, h_api, env);
    http_route(s, "GET", "/ogc/collections", read, 0, h_collections, env);
    http_route(s, "GET", "/ogc/collections/*", read, 0, h_collection_tree, env);
}
