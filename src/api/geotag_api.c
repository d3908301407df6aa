/* geotag_api: GET /api/geotag?lon=&lat=&crs= for one point, POST /api/geotag
 * for many (a GeoJSON Point/MultiPoint/Feature/FeatureCollection, or a JSON
 * array of [lon,lat] pairs or {"lon":…,"lat":…} objects; up to 100,000). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gridcc/crs.h"
#include "gridcc/parse.h"
#include "gridcc/geotag.h"

#define MAX_POINTS 100000


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

typedef struct pts {
    double *x, *y;
    size_t n, cap;
} pts;

static bool push(pts *p, double x, double y)
{
    if (p->n >= MAX_POINTS)
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

static void h_post(http_req *r, void *ud)
{
    api_env *e = ud;
    json_error_t je;
    json_t *doc = json_loadb((const char *)r->body->data, r->body->len, 0, &je);
    if (!doc) {
        http_reply_error(r, 400, "invalid_json", "body", "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text);
        return;
    }
    crs_transform *t = crs_from_query(r);
    if (!t) {
        json_decref(doc);
        return;
    }
    pts p = {0};
    char field[128] = "";
    int rc = 0;
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (json_is_array(doc)) {
        size_t i;
        json_t *e;
        json_array_foreach(doc, i, e)
        {
            double x, y;
            if (read_position(e, &x, &y)) {
                snprintf(field, sizeof field, "[%zu]", i);
                rc = -1;
                break;
            }
            if (!push(&p, x, y)) {
                rc = -2;
                break;
            }
        }
    } else if (type && !strcmp(type, "FeatureCollection")) {
        json_t *fs = json_object_get(doc, "features");
        if (!json_is_array(fs)) {
            snprintf(field, sizeof field, "features");
            rc = -1;
        }
        size_t i;
        json_t *f;
        json_array_foreach(fs, i, f)
        {
            char path[64];
            snprintf(path, sizeof path, "features[%zu].geometry", i);
            if ((rc = read_geometry(json_object_get(f, "geometry"), &p, field, sizeof field, path)))
                break;
        }
    } else if (type && !strcmp(type, "Feature")) {
        rc = read_geometry(json_object_get(doc, "geometry"), &p, field, sizeof field, "geometry");
    } else if (type) {
        rc = read_geometry(doc, &p, field, sizeof field, "geometry");
    } else {
        snprintf(field, sizeof field, "body");
        rc = -1;
    }
    json_decref(doc);
    if (rc == -2) {
        http_reply_error(r, 413, "too_large", "body", "at most %d points per request", MAX_POINTS);
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
            json_t *results = json_array();
            for (size_t i = 0; i < p.n; i++) {
                index_chain c;
                index_geotag(ix, p.x[i], p.y[i], &c);
                json_array_append_new(results, geotag_chain_json(&c, p.x[i], p.y[i]));
            }
            http_reply_json(r, 200, json_pack("{s:I,s:o}", "count", (json_int_t)p.n, "results",
                                              results));
        }
    }
    crs_transform_free(t);
    free(p.x);
    free(p.y);
}

void geotag_api_register(http_server *s, api_env *e)
{
    http_route(s, "GET", "/api/geotag", ROLE_ANY, 0, h_get, e);
    http_route(s, "POST", "/api/geotag", ROLE_ANY, 32u << 20, h_post, e);
}
