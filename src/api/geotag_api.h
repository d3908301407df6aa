/* geotag_api: the POST /api/geotag body readers, apart from the handler so
 * that they can be fuzzed (private to src/api). */
#ifndef GRIDCC_GEOTAG_API_H
#define GRIDCC_GEOTAG_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GEOTAG_MAX_POINTS 100000

typedef struct geotag_pts {
    double *x, *y; /* malloc'd; geotag_pts_clear */
    size_t n, cap;
} geotag_pts;

/* The fast path: a bare array of [lon,lat(,…)] or {"lon","lat"}, read with
 * yajl. False: not read here (the points read so far are to be dropped). */
bool geotag_read_plain(const void *body, size_t len, geotag_pts *p);
/* A parsed body (GeoJSON, or the bare array): 0; -1 with field naming what
 * is wrong; -2 more than GEOTAG_MAX_POINTS. */
int geotag_read_doc(json_t *doc, geotag_pts *p, char *field, size_t flen);
/* The body as the handler reads it: the fast path, else jansson; as
 * geotag_read_doc, or -3 malformed JSON (je says where). */
int geotag_read_body(const void *body, size_t len, geotag_pts *p, char *field, size_t flen,
                     json_error_t *je);
void geotag_pts_clear(geotag_pts *p);

#endif
