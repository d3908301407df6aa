/* geotag_api: GET /api/geotag?lon=&lat=&crs= for one point, POST /api/geotag
 * for many (a GeoJSON Point/MultiPoint/Feature/FeatureCollection, or a JSON
 * array of [lon,lat] pairs or {"lon":…,"lat":…} objects; up to 100,000). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "api.h"
#include "geotag_api.h"
#include "gridcc/crs.h"
#include "gridcc/parse.h"
#include "gridcc/geotag.h"


static crs_transform *crs_from_query(http_req *r)
{
    crs_def d;
    gc_err err = {0};
    crs_transform *t = NULL;
    if (crs_parse(http_query(r, "crs"), &d, &err) || !(t = crs_transform_new(&d, &err))) {
        snprintf(err.field, sizeof err.field, "crs");
        http_reply_err(r, &err);
        return NULL;
    }
    return t;
}

static void h_get(http_req *r, void *ud)
{
    api_env *e = ud;
    double lon, lat;
    gc_err perr = {0};
    /* no range here: x/y in a projected crs= are metres */
    if (gc_parse_double(http_query(r, "lon"), "lon", -INFINITY, INFINITY, &lon, &perr) ||
        gc_parse_double(http_query(r, "lat"), "lat", -INFINITY, INFINITY, &lat, &perr)) {
        http_reply_err(r, &perr);
        return;
    }
    crs_transform *t = crs_from_query(r);
    if (!t)
        return;
    gc_err err = {0};
    int rc = crs_transform_to_wgs84(t, &lon, &lat, 1, NULL, &err);
    crs_transform_free(t);
    if (rc) {
        http_reply_error(r, 400, "invalid", "lon", "%s", err.msg);
        return;
    }
    index_chain c;
    index_geotag(e->index, lon, lat, &c);
    http_reply_json(r, 200, geotag_chain_json(&c, lon, lat));
}

typedef geotag_pts pts;

static bool push(pts *p, double x, double y)
{
    if (p->n >= GEOTAG_MAX_POINTS)
        return false;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->x = realloc(p->x, p->cap * sizeof *p->x);
        p->y = realloc(p->y, p->cap * sizeof *p->y);
    }
    p->x[p->n] = x;
    p->y[p->n] = y;
    p->n++;
    return true;
}

/* 0 ok; otherwise fills field/msg */
static int read_position(json_t *pos, double *x, double *y)
{
    if (json_is_array(pos) && json_array_size(pos) >= 2 && json_is_number(json_array_get(pos, 0)) &&
        json_is_number(json_array_get(pos, 1))) {
        *x = json_number_value(json_array_get(pos, 0));
        *y = json_number_value(json_array_get(pos, 1));
        return 0;
    }
    if (json_is_object(pos) && json_is_number(json_object_get(pos, "lon")) &&
        json_is_number(json_object_get(pos, "lat"))) {
        *x = json_number_value(json_object_get(pos, "lon"));
        *y = json_number_value(json_object_get(pos, "lat"));
        return 0;
    }
    return -1;
}

static int read_geometry(json_t *g, pts *p, char *field, size_t flen, const char *path)
{
    const char *type = json_string_value(json_object_get(g, "type"));
    json_t *coords = json_object_get(g, "coordinates");
    double x, y;
    if (type && !strcmp(type, "Point")) {
        if (read_position(coords, &x, &y)) {
            snprintf(field, flen, "%s.coordinates", path);
            return -1;
        }
        return push(p, x, y) ? 0 : -2;
    }
    if (type && !strcmp(type, "MultiPoint") && json_is_array(coords)) {
        size_t i;
        json_t *c;
        json_array_foreach(coords, i, c)
        {
            if (read_position(c, &x, &y)) {
                snprintf(field, flen, "%s.coordinates[%zu]", path, i);
                return -1;
            }
            if (!push(p, x, y))
                return -2;
        }
        return 0;
    }
    snprintf(field, flen, "%s.type", path);
    return -1;
}

/* Bulk clients send a bare array of [lon,lat] pairs (or {"lon","lat"}
 * objects). Read with yajl's callbacks, that needs no tree: a jansson tree of
 * the body was ~44% of the daemon's time for an ids-only batch, yajl reads
 * the same body in a third of the time. Anything else (GeoJSON, other members,
 * a malformed body, too many points) is left to the jansson reader below,
 * which also words every error: false means "not read here". */
typedef struct plain {
    pts *p;
    int depth;   /* 1 inside the outer array, 2 inside a point */
    bool object; /* the point is {"lon","lat"} */
    int n;       /* numbers read in the point array; in an object, bits: 1 lon, 2 lat */
    int key;     /* in an object: 1 after "lon", 2 after "lat", 0 elsewhere */
    double x, y;
    yajl_handle h;
    size_t end; /* bytes up to the outer array's ']' */
} plain;

static int plain_number(plain *c, double v)
{
    if (c->depth != 2)
        return 0;
    if (c->object) {
        if (!c->key || (c->n & c->key))
            return 0; /* no key, or a key twice: jansson decides */
        *(c->key == 1 ? &c->x : &c->y) = v;
        c->n |= c->key;
        c->key = 0;
        return 1;
    }
    if (c->n == 0)
        c->x = v;
    else if (c->n == 1)
        c->y = v;
    c->n++; /* more numbers (an altitude) are allowed, as below */
    return 1;
}

static int plain_double(void *ud, double v)
{
    return plain_number(ud, v);
}

static int plain_integer(void *ud, long long v)
{
    return plain_number(ud, (double)v);
}

static int plain_start(void *ud, bool object)
{
    plain *c = ud;
    if (c->depth == 0 && !object) {
        c->depth = 1;
        return 1;
    }
    if (c->depth != 1)
        return 0;
    c->depth = 2;
    c->object = object;
    c->n = c->key = 0;
    return 1;
}

static int plain_start_array(void *ud)
{
    return plain_start(ud, false);
}

static int plain_start_map(void *ud)
{
    return plain_start(ud, true);
}

static int plain_end(void *ud, bool object)
{
    plain *c = ud;
    if (c->depth == 1 && !object) {
        c->depth = 0;
        c->end = yajl_get_bytes_consumed(c->h);
        return 1;
    }
    if (c->depth != 2 || c->object != object || (object ? c->n != 3 : c->n < 2))
        return 0;
    c->depth = 1;
    return push(c->p, c->x, c->y);
}

static int plain_end_array(void *ud)
{
    return plain_end(ud, false);
}

static int plain_end_map(void *ud)
{
    return plain_end(ud, true);
}

static int plain_key(void *ud, const unsigned char *k, size_t len)
{
    plain *c = ud;
    if (c->depth != 2 || !c->object || c->key || len != 3)
        return 0;
    c->key = !memcmp(k, "lon", 3) ? 1 : !memcmp(k, "lat", 3) ? 2 : 0;
    return c->key != 0;
}

/* yajl skips a value whose callback is NULL: [[1,"x",2]] would read as
 * 1,2 and [[1,2],null] as one point, where jansson refuses both. Anything
 * but numbers, arrays and lon/lat keys goes to jansson. */
static int plain_other(void *ud)
{
    (void)ud;
    return 0;
}

static int plain_boolean(void *ud, int v)
{
    (void)v;
    return plain_other(ud);
}

static int plain_string(void *ud, const unsigned char *s, size_t len)
{
    (void)s;
    (void)len;
    return plain_other(ud);
}

bool geotag_read_plain(const void *body, size_t len, pts *p)
{
    static const yajl_callbacks cb = {
        .yajl_null = plain_other,
        .yajl_boolean = plain_boolean,
        .yajl_string = plain_string,
        .yajl_integer = plain_integer,
        .yajl_double = plain_double,
        .yajl_start_map = plain_start_map,
        .yajl_map_key = plain_key,
        .yajl_end_map = plain_end_map,
        .yajl_start_array = plain_start_array,
        .yajl_end_array = plain_end_array,
    };
    /* yajl takes \f and \v for blanks, JSON does not (nor jansson): such a
     * body goes to jansson, which refuses it. The fast path reads no
     * strings, so either byte anywhere would have been a blank. */
    if (len && (memchr(body, '\f', len) || memchr(body, '\v', len)))
        return false;
    plain c = {.p = p};
    yajl_handle h = c.h = yajl_alloc(&cb, NULL, &c);
    bool ok = yajl_parse(h, body, len) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok && c.depth == 0;
    yajl_free(h);
    /* yajl takes an unfinished string after the array ([] "x) for input
     * yet to come, even at the end: only blanks may follow the array */
    const char *b = body; /* not NUL-terminated */
    for (size_t i = c.end; ok && i < len; i++)
        ok = memchr(" \t\r\n", b[i], 4) != NULL;
    return ok && c.end > 0;
}

int geotag_read_doc(json_t *doc, pts *p, char *field, size_t flen)
{
    int rc = 0;
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (json_is_array(doc)) {
        size_t i;
        json_t *e;
        json_array_foreach(doc, i, e)
        {
            double x, y;
            if (read_position(e, &x, &y)) {
                snprintf(field, flen, "[%zu]", i);
                rc = -1;
                break;
            }
            if (!push(p, x, y)) {
                rc = -2;
                break;
            }
        }
    } else if (type && !strcmp(type, "FeatureCollection")) {
        json_t *fs = json_object_get(doc, "features");
        if (!json_is_array(fs)) {
            snprintf(field, flen, "features");
            rc = -1;
        }
        size_t i;
        json_t *f;
        json_array_foreach(fs, i, f)
        {
            char path[64];
            snprintf(path, sizeof path, "features[%zu].geometry", i);
            if ((rc = read_geometry(json_object_get(f, "geometry"), p, field, flen, path)))
                break;
        }
    } else if (type && !strcmp(type, "Feature")) {
        rc = read_geometry(json_object_get(doc, "geometry"), p, field, flen, "geometry");
    } else if (type) {
        rc = read_geometry(doc, p, field, flen, "geometry");
    } else {
        snprintf(field, flen, "body");
        rc = -1;
    }
    return rc;
}

int geotag_read_body(const void *body, size_t len, pts *p, char *field, size_t flen,
                     json_error_t *je)
{
    if (geotag_read_plain(body, len, p))
        return 0;
    p->n = 0;
    json_t *doc = json_loadb(body, len, 0, je);
    if (!doc)
        return -3;
    int rc = geotag_read_doc(doc, p, field, flen);
    json_decref(doc);
    return rc;
}

void geotag_pts_clear(pts *p)
{
    free(p->x);
    free(p->y);
    *p = (pts){0};
}

/* f=json|ndjson|csv, else the first of their media types that Accept names;
 * false after replying 400 */
static bool output_format(http_req *r, geotag_format *fmt)
{
    static const struct {
        const char *name, *media;
        geotag_format fmt;
    } kinds[] = {{"json", "application/json", GEOTAG_JSON},
                 {"ndjson", "application/x-ndjson", GEOTAG_NDJSON},
                 {"csv", "text/csv", GEOTAG_CSV}};
    const char *f = http_query(r, "f");
    *fmt = GEOTAG_JSON;
    if (f) {
        for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++)
            if (!strcmp(f, kinds[i].name)) {
                *fmt = kinds[i].fmt;
                return true;
            }
        http_reply_error(r, 400, "invalid", "f", "f must be json, ndjson or csv");
        return false;
    }
    char *accept = g_ascii_strdown(r->accept, -1); /* media types ignore case */
    const char *first = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
        const char *at = strstr(accept, kinds[i].media);
        if (at && (!first || at < first)) {
            first = at;
            *fmt = kinds[i].fmt;
        }
    }
    g_free(accept);
    return true;
}

static void h_post(http_req *r, void *ud)
{
    api_env *e = ud;
    geotag_format fmt;
    if (!output_format(r, &fmt))
        return;
    geotag_writer *w;
    gc_err werr = {0};
    if (geotag_writer_new(e->index, fmt, http_query(r, "fields"), &w, &werr)) {
        http_reply_err(r, &werr);
        return;
    }
    pts p = {0};
    char field[128] = "";
    json_error_t je;
    int rc = geotag_read_body(r->body->data, r->body->len, &p, field, sizeof field, &je);
    if (rc == -3) {
        http_reply_error(r, 400, "invalid_json", "body", "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text);
        geotag_writer_free(w);
        geotag_pts_clear(&p);
        return;
    }
    crs_transform *t = crs_from_query(r);
    if (!t) {
        geotag_writer_free(w);
        geotag_pts_clear(&p);
        return;
    }
    if (rc == -2) {
        http_reply_error(r, 413, "too_large", "body", "at most %d points per request",
                         GEOTAG_MAX_POINTS);
    } else if (rc) {
        http_reply_error(r, 400, "invalid", field,
                         "expected a GeoJSON Point/MultiPoint/Feature/FeatureCollection, or a "
                         "JSON array of [lon,lat] or {\"lon\":…,\"lat\":…}");
    } else if (p.n == 0) {
        http_reply_error(r, 400, "invalid", "body", "no points given");
    } else {
        size_t bad = 0;
        gc_err err = {0};
        if (crs_transform_to_wgs84(t, p.x, p.y, p.n, &bad, &err)) {
            char f[64];
            snprintf(f, sizeof f, "points[%zu]", bad);
            http_reply_error(r, 400, "invalid", f, "point %zu: %s", bad, err.msg);
        } else {
            const gc_index *ix = e->index;
            unsigned levels;
            bool extras;
            geotag_writer_needs(w, &levels, &extras);
            http_reply(r, 200, geotag_writer_content_type(w), NULL, 0);
            geotag_writer_begin(w, r->out, p.n);
            for (size_t i = 0; i < p.n && !rc; i++) {
                index_chain c;
                index_geotag_only(ix, p.x[i], p.y[i], levels, extras, &c);
                rc = geotag_writer_add(w, r->out, &c, p.x[i], p.y[i]);
            }
            geotag_writer_end(w, r->out);
            if (rc) /* the transform checked every point finite: a bug, not the client's */
                http_reply_error(r, 500, "internal", NULL, "the answer could not be encoded");
        }
    }
    geotag_writer_free(w);
    crs_transform_free(t);
    free(p.x);
    free(p.y);
}

void geotag_api_register(http_server *s, api_env *e)
{
    http_route(s, "GET", "/api/geotag", ROLE_ANY, 0, h_get, e);
    http_route(s, "POST", "/api/geotag", ROLE_ANY, 32u << 20, h_post, e);
}
