/* crs: coordinate reference systems. Every EPSG system through PROJ, plus the
 * GCJ-02 and BD-09 offsets of Chinese web maps and phone SDKs (not in PROJ) by
 * their published formulas. Everything converges on EPSG:4326 lon/lat order.
 * Knows nothing of HTTP, SQL or the index. */
#ifndef GRIDCC_CRS_H
#define GRIDCC_CRS_H

#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"

typedef enum { CRS_WGS84, CRS_GCJ02, CRS_BD09, CRS_EPSG } crs_kind;

typedef struct crs_def {
    crs_kind kind;
    int epsg;         /* for CRS_EPSG; 4326 for CRS_WGS84 */
    char name[48];    /* canonical spelling: "EPSG:4326", "gcj02", "bd09" */
} crs_def;

/* Parses "EPSG:N", "epsg:N", "N", "CRS84", OGC URIs
 * (http://www.opengis.net/def/crs/EPSG/0/N, urn:ogc:def:crs:EPSG::N,
 * .../OGC/1.3/CRS84), "gcj02", "bd09" (also "GCJ-02", "BD-09"). NULL or ""
 * means EPSG:4326. Unknown systems fail with a message naming the input. */
int crs_parse(const char *s, crs_def *out, gc_err *err);

/* Inside the rectangle where the Chinese offsets apply; outside it the
 * conventional implementations (and we) leave points unchanged. */
bool crs_in_china(double lon, double lat);

void crs_wgs84_to_gcj02(double lon, double lat, double *olon, double *olat);
void crs_gcj02_to_wgs84(double lon, double lat, double *olon, double *olat);
void crs_gcj02_to_bd09(double lon, double lat, double *olon, double *olat);
void crs_bd09_to_gcj02(double lon, double lat, double *olon, double *olat);
void crs_wgs84_to_bd09(double lon, double lat, double *olon, double *olat);
void crs_bd09_to_wgs84(double lon, double lat, double *olon, double *olat);

/* A transformation from one system to EPSG:4326 (x = lon, y = lat). Owns its
 * PROJ context: use one per thread. Freed ones are kept (at most 16) and
 * handed out again for the same system: PROJ takes up to ~0.3 s to make one. */
typedef struct crs_transform crs_transform;

crs_transform *crs_transform_new(const crs_def *from, gc_err *err);
/* In place; n points with x/y in the source system's easting/northing (or
 * lon/lat) order. Fails (GC_EINVAL) if a point cannot be transformed or lands
 * outside lon [-180,180], lat [-90,90]; *bad gets the first bad index. */
int crs_transform_to_wgs84(crs_transform *t, double *x, double *y, size_t n, size_t *bad,
                           gc_err *err);
bool crs_transform_is_identity(const crs_transform *t);
/* The source system's area of use (west, south, east, north in degrees);
 * false when PROJ knows none (or the system is not an EPSG one). */
bool crs_transform_area(const crs_transform *t, double box[4]);
void crs_transform_free(crs_transform *t);
/* Frees the transformations kept for reuse (at exit, for leak checkers). */
void crs_pool_clear(void);

/* Great-circle distance in metres (haversine, mean Earth radius). */
double crs_distance_m(double lon1, double lat1, double lon2, double lat2);

#endif
