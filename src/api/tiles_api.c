/* tiles_api: the layers as Mapbox Vector Tiles for the dashboard's map.
 *
 *   GET /tiles                      every layer and its TileJSON's URL
 *   GET /tiles/{layer}.json         TileJSON 3.0.0
 *   GET /tiles/{layer}/{z}/{x}/{y}.pbf
 *
 * Both take ?with={layer}, repeated (TILES_SET_MAX layers in all): the
 * tiles then hold those layers too, one tile for the lot (tiles_get_set), so
 * a map draws its district, streets, communities and grids from one source:
 * one request and one tile to parse per place, where four were. TileJSON's
 * tile URL carries ?v=, the layers' version, so a re-import gives new URLs;
 * the tiles ignore it.
 *
 * Who may read them: whoever may read the OGC API's collections. The loop
 * reads the layer's version (for the ETag and a 304) and sends a tile the
 * cache has; one to make is made by tiles_get on a thread, never on the loop. A tile
 * is sent gzip-compressed when the request accepts it (made once, kept
 * beside the tile). A tile with no feature is a 200 with an empty body,
 * which MapLibre draws as an empty tile. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/parse.h"
#include "gridcc/tiles.h"

#define MVT_TYPE "application/vnd.mapbox-vector-tile"

static char *url_escape(const char *s)
{
    return g_uri_escape_string(s, NULL, FALSE);
}

static char *root_url(const http_req *r)
{
    return g_strdup_printf("http://%s/tiles", r->host[0] ? r->host : "127.0.0.1");
}

/* The layer named in the path, or false once it has replied 404. */
static bool layer_or_reply(http_req *r, api_env *e, const char *name, store_layer *L)
{
    gc_err err = {0};
    if (!store_layer_get(e->store, name, L, &err))
        return true;
    if (err.code == GC_ENOTFOUND)
        http_reply_error(r, 404, "not_found", "layer", "no layer '%s'", name);
    else
        http_reply_err(r, &err);
    return false;
}

/* True when b is the name of a's label points ({a}_label): a tile cannot
 * hold layers a and b, two layers of one name. */
static bool label_name_of(const char *a, const char *b)
{
    size_t la = strlen(a);
    return !strncmp(b, a, la) && !strcmp(b + la, "_label");
}

/* The layer named in the path and those of ?with=, or false once it has
 * replied (404 for a layer the store lacks, 400 for a repeat, a clash of
 * names or too many). */
typedef struct layer_set {
    store_layer L[TILES_SET_MAX];
    size_t n;
} layer_set;

static bool set_or_reply(http_req *r, api_env *e, const char *name, layer_set *ls)
{
    ls->n = 0;
    if (!layer_or_reply(r, e, name, &ls->L[0]))
        return false;
    free(ls->L[0].fields_json);
    ls->n = 1;
    for (guint i = 0; r->qkeys && i < r->qkeys->len; i++) {
        if (strcmp(r->qkeys->pdata[i], "with"))
            continue;
        const char *w = r->qvals->pdata[i];
        for (size_t k = 0; k < ls->n; k++) {
            if (!strcmp(ls->L[k].name, w)) {
                http_reply_error(r, 400, "invalid", "with", "layer '%s' is named twice", w);
                return false;
            }
            const char *k_name = ls->L[k].name;
            if (label_name_of(k_name, w) || label_name_of(w, k_name)) {
                http_reply_error(r, 400, "invalid", "with",
                                 "layers '%s' and '%s' cannot share a tile: an area layer's "
                                 "label points are a layer named {layer}_label",
                                 k_name, w);
                return false;
            }
        }
        if (ls->n == TILES_SET_MAX) {
            http_reply_error(r, 400, "invalid", "with", "a tile holds at most %d layers",
                             TILES_SET_MAX);
            return false;
        }
        gc_err err = {0};
        if (store_layer_get(e->store, w, &ls->L[ls->n], &err)) {
            if (err.code == GC_ENOTFOUND)
                http_reply_error(r, 404, "not_found", "with", "no layer '%s'", w);
            else
                http_reply_err(r, &err);
            return false;
        }
        free(ls->L[ls->n].fields_json);
        ls->n++;
    }
    return true;
}

/* ?with=… as asked, for the tiles' URL ("" without) */
static char *with_query(const layer_set *ls)
{
    GString *q = g_string_new("");
    for (size_t i = 1; i < ls->n; i++) {
        char *id = url_escape(ls->L[i].name);
        g_string_append_printf(q, "%swith=%s", i == 1 ? "?" : "&", id);
        g_free(id);
    }
    return g_string_free(q, FALSE);
}

/* ---- TileJSON ---- */

static void add_vector_layers(json_t *arr, api_env *e, const store_layer *L)
{
    int minz = tiles_minzoom(e->tiles, level_parse(L->level));
    json_t *fields = json_pack("{s:s,s:s,s:s,s:s}", "id", "String", "name", "String", "code",
                               "String", "parent", "String");
    char desc[400];
    snprintf(desc, sizeof desc, "%s (level %s%s%s)", L->title, L->level,
             L->department[0] ? ", department " : "", L->department);
    json_array_append_new(arr, json_pack("{s:s,s:s,s:O,s:i,s:i}", "id", L->name, "description",
                                         desc, "fields", fields, "minzoom", minz, "maxzoom",
                                         TILES_MAXZOOM));
    gc_level lv = level_parse(L->level);
    if (lv != LEVEL_BUILDING && lv != LEVEL_UNIT) { /* areas: their label points too */
        char lname[160];
        snprintf(lname, sizeof lname, "%s_label", L->name);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:O,s:i,s:i}", "id", lname, "description",
                                             "one point a feature, inside it, to place its label",
                                             "fields", fields, "minzoom", minz, "maxzoom",
                                             TILES_MAXZOOM));
    }
    json_decref(fields);
}

static json_t *tilejson(const http_req *r, api_env *e, const layer_set *ls)
{
    const store_layer *L = &ls->L[0];
    char *root = root_url(r), *id = url_escape(L->name), *with = with_query(ls);
    GString *name = g_string_new(L->name);
    int minz = TILES_MAXZOOM, version = 0;
    bool has_bbox = false;
    double bb[4] = {0};
    json_t *vl = json_array();
    for (size_t i = 0; i < ls->n; i++) {
        const store_layer *P = &ls->L[i];
        if (i)
            g_string_append_printf(name, "+%s", P->name);
        int mz = tiles_minzoom(e->tiles, level_parse(P->level));
        minz = mz < minz ? mz : minz;
        version += P->version; /* any re-import of any of them changes it */
        add_vector_layers(vl, e, P);
        if (P->has_bbox) {
            if (!has_bbox)
                memcpy(bb, P->bbox, sizeof bb);
            bb[0] = fmin(bb[0], P->bbox[0]);
            bb[1] = fmin(bb[1], P->bbox[1]);
            bb[2] = fmax(bb[2], P->bbox[2]);
            bb[3] = fmax(bb[3], P->bbox[3]);
            has_bbox = true;
        }
    }
    /* the version in the tiles' URL: a re-import gives new URLs, so no
     * browser shows a tile it kept (max-age) from before it */
    char *tmpl = g_strdup_printf("%s/%s/{z}/{x}/{y}.pbf%s%sv=%d", root, id, with,
                                 *with ? "&" : "?", version);
    char desc[400], ver[32];
    if (ls->n == 1)
        snprintf(desc, sizeof desc, "%s (level %s%s%s)", L->title, L->level,
                 L->department[0] ? ", department " : "", L->department);
    else
        snprintf(desc, sizeof desc, "the layers %s in one tile", name->str);
    snprintf(ver, sizeof ver, "%d.0.0", version);
    json_t *tj = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:i,s:i,s:o}", "tilejson", "3.0.0", "name",
                           name->str, "description", desc, "version", ver, "scheme", "xyz",
                           "tiles", tmpl, "minzoom", minz, "maxzoom", TILES_MAXZOOM,
                           "vector_layers", vl);
    if (has_bbox) {
        json_object_set_new(tj, "bounds", json_pack("[ffff]", bb[0], bb[1], bb[2], bb[3]));
        /* the zoom at which the layers' extent fills about 1,000 pixels */
        double w = fmax(bb[2] - bb[0], 1e-9);
        int z = (int)floor(log2(360.0 / w * 1024.0 / 512.0));
        z = z < minz ? minz : z > TILES_MAXZOOM ? TILES_MAXZOOM : z;
        json_object_set_new(tj, "center",
                            json_pack("[ffi]", (bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2, z));
    }
    g_string_free(name, TRUE);
    g_free(tmpl);
    g_free(with);
    g_free(id);
    g_free(root);
    return tj;
}

static void h_list(http_req *r, void *ud)
{
    api_env *e = ud;
    store_layer *ls;
    size_t n;
    gc_err err = {0};
    if (store_layers_list(e->store, &ls, &n, &err)) {
        http_reply_err(r, &err);
        return;
    }
    char *root = root_url(r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char *id = url_escape(ls[i].name);
        char *url = g_strdup_printf("%s/%s.json", root, id);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:i,s:s}", "layer", ls[i].name, "level",
                                             ls[i].level, "version", ls[i].version, "minzoom",
                                             tiles_minzoom(e->tiles, level_parse(ls[i].level)),
                                             "tilejson", url));
        g_free(url);
        g_free(id);
    }
    store_layers_free(ls, n);
    g_free(root);
    http_reply_json(r, 200, json_pack("{s:o}", "layers", arr));
}

/* ---- tiles ---- */

typedef struct tile_job {
    api_env *e;
    http_req *r;
    char layer[TILES_SET_MAX][128];
    tiles_part parts[TILES_SET_MAX]; /* the layers with features at z */
    size_t n;
    int versions[TILES_SET_MAX], minz[TILES_SET_MAX]; /* every layer's, for the ETag */
    size_t all;
    int z, x, y;
    bool gzip;
    char etag[TILES_SET_MAX * 24 + 8];
    tiles_tile tile;
    gc_err err;
    int rc;
} tile_job;

static void tile_work(void *data)
{
    tile_job *j = data;
    j->rc = tiles_get_set(j->e->tiles, j->parts, j->n, j->z, j->x, j->y, &j->tile, &j->err);
}

/* W/"version.minzoom" for one layer; a set's joined by '_' */
static void set_etag(char *out, size_t size, size_t n, const int *versions, const int *minz)
{
    GString *g = g_string_new("W/\"");
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(g, "%s%d.%d", i ? "_" : "", versions[i], minz[i]);
    g_string_append_c(g, '"');
    g_strlcpy(out, g->str, size);
    g_string_free(g, TRUE);
}

static void tile_headers(http_req *r, const char *etag)
{
    http_add_header(r, "ETag", etag);
    /* the browser keeps a tile a minute, then asks again with the ETag (a
     * re-import changes it); private: tiles are not for shared caches */
    http_add_header(r, "Cache-Control", "private, max-age=60");
    http_add_header(r, "Vary", "Accept-Encoding, Authorization");
}

static void tile_reply(tile_job *j)
{
    http_req *r = j->r;
    if (j->rc) {
        http_reply_err(r, &j->err);
    } else {
        /* a re-import between the loop's read and the tile: the tile says which */
        bool changed = false;
        for (size_t i = 0, k = 0; i < j->all && k < j->n; i++)
            if (j->minz[i] <= j->z) { /* the layers in the tile, in order */
                changed |= j->versions[i] != j->parts[k].version;
                j->versions[i] = j->parts[k++].version;
            }
        if (changed)
            set_etag(j->etag, sizeof j->etag, j->all, j->versions, j->minz);
        tile_headers(r, j->etag);
        gsize len = 0;
        const char *body;
        if (j->gzip && j->tile.gz) {
            http_add_header(r, "Content-Encoding", "gzip");
            body = g_bytes_get_data(j->tile.gz, &len);
        } else {
            body = g_bytes_get_data(j->tile.mvt, &len);
        }
        http_reply(r, 200, MVT_TYPE, body, len);
    }
}

static void tile_done(void *data)
{
    tile_job *j = data;
    tile_reply(j);
    http_complete(j->r);
    tiles_tile_clear(&j->tile);
    g_free(j);
}

static bool seg_int(http_req *r, const char *s, size_t len, const char *field, int64_t hi,
                    int64_t *out)
{
    char buf[32];
    gc_err err = {0};
    if (len == 0 || len >= sizeof buf) {
        http_reply_error(r, 400, "invalid", field, "%s must be a whole number from 0 to %lld",
                         field, (long long)hi);
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    if (gc_parse_int(buf, field, 0, hi, out, &err)) {
        http_reply_error(r, 400, "invalid", field, "%s must be a whole number from 0 to %lld: %s",
                         field, (long long)hi, buf);
        return false;
    }
    return true;
}

static void h_tile(http_req *r, api_env *e, const char *rest)
{
    /* {layer}/{z}/{x}/{y}.pbf, read from the end: a layer name may hold anything */
    size_t n = strlen(rest);
    if (n < 4 || strcmp(rest + n - 4, ".pbf")) {
        http_reply_error(r, 404, "not_found", "path",
                         "no resource at %s: tiles are /tiles/{layer}/{z}/{x}/{y}.pbf", r->path);
        return;
    }
    const char *end = rest + n - 4, *cut[3];
    const char *p = end;
    for (int i = 0; i < 3; i++) {
        while (p > rest && p[-1] != '/')
            p--;
        if (p == rest) {
            http_reply_error(r, 404, "not_found", "path",
                             "no resource at %s: tiles are /tiles/{layer}/{z}/{x}/{y}.pbf",
                             r->path);
            return;
        }
        cut[i] = p; /* y, then x, then z */
        p--;
    }
    size_t ll = (size_t)(p - rest);
    char name[128];
    if (ll == 0 || ll >= sizeof name) {
        http_reply_error(r, 404, "not_found", "layer", "no layer named in %s", r->path);
        return;
    }
    memcpy(name, rest, ll);
    name[ll] = 0;
    layer_set ls;
    if (!set_or_reply(r, e, name, &ls))
        return;
    int64_t z, x, y;
    if (!seg_int(r, cut[2], (size_t)(cut[1] - 1 - cut[2]), "z", TILES_ZMAX, &z))
        return;
    int64_t side = (int64_t)1 << z;
    if (!seg_int(r, cut[1], (size_t)(cut[0] - 1 - cut[1]), "x", side - 1, &x) ||
        !seg_int(r, cut[0], (size_t)(end - cut[0]), "y", side - 1, &y))
        return;
    int versions[TILES_SET_MAX], minz[TILES_SET_MAX];
    for (size_t i = 0; i < ls.n; i++) {
        versions[i] = ls.L[i].version;
        minz[i] = tiles_minzoom(e->tiles, level_parse(ls.L[i].level));
    }
    char etag[TILES_SET_MAX * 24 + 8];
    set_etag(etag, sizeof etag, ls.n, versions, minz);
    if (r->if_none_match[0] &&
        (strstr(r->if_none_match, etag + 2) || !strcmp(g_strstrip(r->if_none_match), "*"))) {
        tile_headers(r, etag);
        http_reply(r, 304, MVT_TYPE, NULL, 0);
        return;
    }
    tile_job *j = g_new0(tile_job, 1);
    *j = (tile_job){.e = e, .r = r, .z = (int)z, .x = (int)x, .y = (int)y,
                    .gzip = http_accepts_gzip(r), .all = ls.n};
    memcpy(j->versions, versions, sizeof versions);
    memcpy(j->minz, minz, sizeof minz);
    /* a layer too small to draw at this zoom has nothing here: left out */
    for (size_t i = 0; i < ls.n; i++) {
        if (z < minz[i])
            continue;
        snprintf(j->layer[j->n], sizeof j->layer[j->n], "%s", ls.L[i].name);
        j->parts[j->n] = (tiles_part){.layer = j->layer[j->n], .version = ls.L[i].version};
        j->n++;
    }
    snprintf(j->etag, sizeof j->etag, "%s", etag);
    if (!j->n) { /* an empty tile, made by nobody */
        tile_headers(r, etag);
        http_reply(r, 200, MVT_TYPE, NULL, 0);
        g_free(j);
        return;
    }
    /* a tile already made is sent from here; one to make goes to a thread */
    if (tiles_peek_set(e->tiles, j->parts, j->n, j->z, j->x, j->y, &j->tile)) {
        tile_reply(j);
        tiles_tile_clear(&j->tile);
        g_free(j);
        return;
    }
    api_offload(e, r, tile_work, tile_done, j);
}

static void h_tiles(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *rest = r->path + strlen("/tiles/");
    size_t n = strlen(rest);
    if (n > 5 && !strcmp(rest + n - 5, ".json") && !memchr(rest, '/', n)) {
        char name[128];
        if (n - 5 >= sizeof name) {
            http_reply_error(r, 404, "not_found", "layer", "no layer '%.*s'", (int)(n - 5), rest);
            return;
        }
        memcpy(name, rest, n - 5);
        name[n - 5] = 0;
        layer_set ls;
        if (!set_or_reply(r, e, name, &ls))
            return;
        http_reply_json(r, 200, tilejson(r, e, &ls));
        return;
    }
    h_tile(r, e, rest);
}

/* ---- re-imports ---- */

static void refresh_work(void *data)
{
    api_env *e = data;
    gc_err err = {0};
    if (tiles_refresh(e->tiles, &err) < 0)
        log_error("tiles", "refresh after a layer change: %s", err.msg);
}

static void refresh_done(void *data) {}

void tiles_api_layers_changed(api_env *e)
{
    if (e->tiles)
        api_offload(e, NULL, refresh_work, refresh_done, e);
}

void tiles_api_register(http_server *s, api_env *e)
{
    unsigned read = e->public_read ? ROLE_ANY | HTTP_OPTIONAL : ROLE_ANY; /* as ogc.c */
    http_route(s, "GET", "/tiles", read, 0, h_list, e);
    http_route(s, "GET", "/tiles/*", read, 0, h_tiles, e);
}
