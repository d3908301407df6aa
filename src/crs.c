/* crs: PROJ for EPSG systems; GCJ-02 and BD-09 by the published formulas
 * (the "Krasovsky ellipsoid" offset polynomial of GCJ-02 and Baidu's polar
 * shift). Their inverses have no closed form, so we iterate the forward
 * function until the round trip is below 1e-9 degrees (~0.1 mm). */
#include "gridcc/parse.h"
#include "gridcc/crs.h"

#include <ctype.h>
#include <glib.h>
#include <math.h>
#include <proj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const double GCJ_A = 6378245.0;             /* Krasovsky 1940 */
static const double GCJ_EE = 0.00669342162296594323;
static const double X_PI = M_PI * 3000.0 / 180.0;

bool crs_in_china(double lon, double lat)
{
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
}

static double gcj_lat(double x, double y)
{
    double r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(fabs(x));
    r += (20.0 * sin(6.0 * x * M_PI) + 20.0 * sin(2.0 * x * M_PI)) * 2.0 / 3.0;
    r += (20.0 * sin(y * M_PI) + 40.0 * sin(y / 3.0 * M_PI)) * 2.0 / 3.0;
    r += (160.0 * sin(y / 12.0 * M_PI) + 320.0 * sin(y * M_PI / 30.0)) * 2.0 / 3.0;
    return r;
}

static double gcj_lon(double x, double y)
{
    double r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(fabs(x));
    r += (20.0 * sin(6.0 * x * M_PI) + 20.0 * sin(2.0 * x * M_PI)) * 2.0 / 3.0;
    r += (20.0 * sin(x * M_PI) + 40.0 * sin(x / 3.0 * M_PI)) * 2.0 / 3.0;
    r += (150.0 * sin(x / 12.0 * M_PI) + 300.0 * sin(x / 30.0 * M_PI)) * 2.0 / 3.0;
    return r;
}

void crs_wgs84_to_gcj02(double lon, double lat, double *olon, double *olat)
{
    if (!crs_in_china(lon, lat)) {
        *olon = lon;
        *olat = lat;
        return;
    }
    double dlat = gcj_lat(lon - 105.0, lat - 35.0);
    double dlon = gcj_lon(lon - 105.0, lat - 35.0);
    double radlat = lat / 180.0 * M_PI;
    double magic = sin(radlat);
    magic = 1 - GCJ_EE * magic * magic;
    double sqrtmagic = sqrt(magic);
    dlat = (dlat * 180.0) / ((GCJ_A * (1 - GCJ_EE)) / (magic * sqrtmagic) * M_PI);
    dlon = (dlon * 180.0) / (GCJ_A / sqrtmagic * cos(radlat) * M_PI);
    *olat = lat + dlat;
    *olon = lon + dlon;
}

void crs_gcj02_to_bd09(double lon, double lat, double *olon, double *olat)
{
    double z = sqrt(lon * lon + lat * lat) + 0.00002 * sin(lat * X_PI);
    double theta = atan2(lat, lon) + 0.000003 * cos(lon * X_PI);
    *olon = z * cos(theta) + 0.0065;
    *olat = z * sin(theta) + 0.006;
}

typedef void (*fwd_fn)(double, double, double *, double *);

/* Solves fwd(w) = g for w by fixed-point iteration: the offsets vary slowly,
 * so each step shrinks the error by orders of magnitude. */
static void invert(fwd_fn fwd, double glon, double glat, double wlon, double wlat, double *olon,
                   double *olat)
{
    for (int i = 0; i < 30; i++) {
        double tlon, tlat;
        fwd(wlon, wlat, &tlon, &tlat);
        double dlon = glon - tlon, dlat = glat - tlat;
        wlon += dlon;
        wlat += dlat;
        if (fabs(dlon) < 1e-10 && fabs(dlat) < 1e-10)
            break;
    }
    *olon = wlon;
    *olat = wlat;
}

void crs_gcj02_to_wgs84(double lon, double lat, double *olon, double *olat)
{
    if (!crs_in_china(lon, lat)) {
        *olon = lon;
        *olat = lat;
        return;
    }
    invert(crs_wgs84_to_gcj02, lon, lat, lon, lat, olon, olat);
}

void crs_bd09_to_gcj02(double lon, double lat, double *olon, double *olat)
{
    /* Baidu's published approximate inverse as a start, refined by iteration */
    double x = lon - 0.0065, y = lat - 0.006;
    double z = sqrt(x * x + y * y) - 0.00002 * sin(y * X_PI);
    double theta = atan2(y, x) - 0.000003 * cos(x * X_PI);
    invert(crs_gcj02_to_bd09, lon, lat, z * cos(theta), z * sin(theta), olon, olat);
}

void crs_wgs84_to_bd09(double lon, double lat, double *olon, double *olat)
{
    if (!crs_in_china(lon, lat)) {
        *olon = lon;
        *olat = lat;
        return;
    }
    double glon, glat;
    crs_wgs84_to_gcj02(lon, lat, &glon, &glat);
    crs_gcj02_to_bd09(glon, glat, olon, olat);
}

void crs_bd09_to_wgs84(double lon, double lat, double *olon, double *olat)
{
    if (!crs_in_china(lon, lat)) {
        *olon = lon;
        *olat = lat;
        return;
    }
    double glon, glat;
    crs_bd09_to_gcj02(lon, lat, &glon, &glat);
    crs_gcj02_to_wgs84(glon, glat, olon, olat);
}

double crs_distance_m(double lon1, double lat1, double lon2, double lat2)
{
    const double R = 6371008.8, d = M_PI / 180.0;
    double dlat = (lat2 - lat1) * d, dlon = (lon2 - lon1) * d;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * d) * cos(lat2 * d) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * R * asin(fmin(1.0, sqrt(a)));
}

/* ---- parsing ---- */

static int parse_int(const char *s, int *out)
{
    int64_t v;
    if (gc_parse_int(s, "crs", 1, 999999, &v, NULL))
        return -1;
    *out = (int)v;
    return 0;
}

static bool epsg_known(int code)
{
    char def[32];
    snprintf(def, sizeof def, "EPSG:%d", code);
    PJ_CONTEXT *ctx = proj_context_create();
    proj_log_level(ctx, PJ_LOG_NONE);
    PJ *pj = proj_create(ctx, def);
    bool ok = pj && proj_get_type(pj) != PJ_TYPE_UNKNOWN &&
              proj_is_crs(pj);
    if (pj)
        proj_destroy(pj);
    proj_context_destroy(ctx);
    return ok;
}

int crs_parse(const char *s, crs_def *out, gc_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s || !strcasecmp(s, "CRS84") || !strcasecmp(s, "OGC:CRS84") ||
        !strcasecmp(s, "http://www.opengis.net/def/crs/OGC/1.3/CRS84") ||
        !strcasecmp(s, "urn:ogc:def:crs:OGC:1.3:CRS84") || !strcasecmp(s, "wgs84")) {
        out->kind = CRS_WGS84;
        out->epsg = 4326;
        strcpy(out->name, "EPSG:4326");
        return 0;
    }
    if (!strcasecmp(s, "gcj02") || !strcasecmp(s, "gcj-02") || !strcasecmp(s, "gcj")) {
        out->kind = CRS_GCJ02;
        strcpy(out->name, "gcj02");
        return 0;
    }
    if (!strcasecmp(s, "bd09") || !strcasecmp(s, "bd-09") || !strcasecmp(s, "bd09ll")) {
        out->kind = CRS_BD09;
        strcpy(out->name, "bd09");
        return 0;
    }
    static const char *prefixes[] = {"EPSG:", "http://www.opengis.net/def/crs/EPSG/0/",
                                     "https://www.opengis.net/def/crs/EPSG/0/",
                                     "urn:ogc:def:crs:EPSG::", ""};
    int code = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncasecmp(s, prefixes[i], n) && parse_int(s + n, &code) == 0)
            break;
        code = 0;
    }
    if (!code)
        return gc_fail(err, GC_EINVAL, "crs",
                       "unknown CRS '%.64s': use EPSG:N, gcj02, bd09 or an OGC CRS URI", s);
    if (code != 4326 && !epsg_known(code))
        return gc_fail(err, GC_EINVAL, "crs", "unknown CRS 'EPSG:%d': PROJ does not know it",
                       code);
    out->kind = code == 4326 ? CRS_WGS84 : CRS_EPSG;
    out->epsg = code;
    snprintf(out->name, sizeof out->name, "EPSG:%d", code);
    return 0;
}

/* ---- transformations ---- */

struct crs_transform {
    crs_def from;
    PJ_CONTEXT *ctx;
    PJ *pj;   /* NULL unless from is an EPSG system other than 4326 */
    bool has_area;
    double area[4]; /* west, south, east, north (degrees) */
};

/* Making a transformation costs PROJ 30–300 ms (proj_create_crs_to_crs
 * weighs every operation between the two datums: 0.3 s for EPSG:22650,
 * NAD83(CSRS)v6 / MTM zone 10, 0.2 s for CGCS2000 zones, 0.03 s for UTM),
 * and every request naming a crs made one: a client repeating one could
 * hold the loop (found by fuzz_cameras, 2.6 s an input under ASan). The
 * ones given back wait here for the next user of the same system, each
 * used by one thread at a time as before. */
#define POOL_MAX 16
static GMutex pool_lock;
static GQueue pool = G_QUEUE_INIT; /* idle EPSG transforms, most recent first */

static void transform_destroy(crs_transform *t)
{
    if (t->pj)
        proj_destroy(t->pj);
    if (t->ctx)
        proj_context_destroy(t->ctx);
    free(t);
}

static crs_transform *pool_take(int epsg)
{
    crs_transform *t = NULL;
    g_mutex_lock(&pool_lock);
    for (GList *l = pool.head; l; l = l->next)
        if (((crs_transform *)l->data)->from.epsg == epsg) {
            t = l->data;
            g_queue_delete_link(&pool, l);
            break;
        }
    g_mutex_unlock(&pool_lock);
    return t;
}

crs_transform *crs_transform_new(const crs_def *from, gc_err *err)
{
    crs_transform *t = from->kind == CRS_EPSG ? pool_take(from->epsg) : NULL;
    if (t) {
        t->from = *from;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        gc_fail(err, GC_EIO, NULL, "out of memory");
        return NULL;
    }
    t->from = *from;
    if (from->kind != CRS_EPSG)
        return t;
    t->ctx = proj_context_create();
    proj_log_level(t->ctx, PJ_LOG_NONE);
    char src[32];
    snprintf(src, sizeof src, "EPSG:%d", from->epsg);
    PJ *raw = proj_create_crs_to_crs(t->ctx, src, "EPSG:4326", NULL);
    if (raw) {
        /* lon/lat and easting/northing order whatever the EPSG axis order */
        t->pj = proj_normalize_for_visualization(t->ctx, raw);
        proj_destroy(raw);
    }
    if (!t->pj) {
        gc_fail(err, GC_EINVAL, "crs", "no transformation from %s to EPSG:4326", src);
        transform_destroy(t);
        return NULL;
    }
    PJ *crs = proj_create(t->ctx, src);
    double *a = t->area;
    if (crs && proj_get_area_of_use(t->ctx, crs, &a[0], &a[1], &a[2], &a[3], NULL) &&
        a[0] > -1000)
        t->has_area = true;
    proj_destroy(crs);
    return t;
}

bool crs_transform_area(const crs_transform *t, double box[4])
{
    if (!t->has_area)
        return false;
    memcpy(box, t->area, sizeof t->area);
    return true;
}

bool crs_transform_is_identity(const crs_transform *t) { return t->from.kind == CRS_WGS84; }

int crs_transform_to_wgs84(crs_transform *t, double *x, double *y, size_t n, size_t *bad,
                           gc_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            if (bad)
                *bad = i;
            return gc_fail(err, GC_EINVAL, "coordinates", "coordinate is not a finite number");
        }
    }
    switch (t->from.kind) {
    case CRS_WGS84:
        break;
    case CRS_GCJ02:
        for (size_t i = 0; i < n; i++)
            crs_gcj02_to_wgs84(x[i], y[i], &x[i], &y[i]);
        break;
    case CRS_BD09:
        for (size_t i = 0; i < n; i++)
            crs_bd09_to_wgs84(x[i], y[i], &x[i], &y[i]);
        break;
    case CRS_EPSG:
        proj_errno_reset(t->pj);
        proj_trans_generic(t->pj, PJ_FWD, x, sizeof *x, n, y, sizeof *y, n, NULL, 0, 0, NULL,
                           0, 0);
        break;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || x[i] < -180 || x[i] > 180 || y[i] < -90 ||
            y[i] > 90) {
            if (bad)
                *bad = i;
            return gc_fail(err, GC_EINVAL, "coordinates",
                           "coordinate out of range for %s (lon must be in [-180,180], lat in "
                           "[-90,90] after transformation)",
                           t->from.name);
        }
    }
    return 0;
}

void crs_transform_free(crs_transform *t)
{
    if (!t)
        return;
    if (!t->pj) {
        transform_destroy(t);
        return;
    }
    crs_transform *old = NULL;
    g_mutex_lock(&pool_lock);
    g_queue_push_head(&pool, t);
    if (pool.length > POOL_MAX)
        old = g_queue_pop_tail(&pool);
    g_mutex_unlock(&pool_lock);
    if (old)
        transform_destroy(old);
}

void crs_pool_clear(void)
{
    g_mutex_lock(&pool_lock);
    GQueue q = pool;
    g_queue_init(&pool);
    g_mutex_unlock(&pool_lock);
    crs_transform *t;
    while ((t = g_queue_pop_head(&q)))
        transform_destroy(t);
}
