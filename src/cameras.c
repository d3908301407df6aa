/* cameras: cameras as data (see include/gridcc/cameras.h). Geometry on the
 * WGS84 ellipsoid through PROJ's geodesic routines (Karney's algorithms):
 * a flat-earth sector is wrong by the cosine of the latitude, 2.8 times at
 * 69°N. */
#include "gridcc/cameras.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <geodesic.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <proj.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_parse.h>

#include "gridcc/crs.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

/* Rounding of a point computed onto an edge must not put it outside. */
#define EDGE_EPS_DEG 1e-9
#define EDGE_EPS_M 1e-6
#define SIDE_SEGMENT_M 250.0
/* 1e-7° is 1.1 cm north-south, 0.4 cm east-west at 70°N */
#define SECTOR_MARGIN_DEG 1e-7

static const struct geod_geodesic *wgs84(void)
{
    static struct geod_geodesic g;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        geod_init(&g, 6378137.0, 1 / 298.257223563);
        g_once_init_leave(&once, 1);
    }
    return &g;
}

static void direct(const store_camera *c, double azi, double dist, double *lon, double *lat)
{
    geod_direct(wgs84(), c->lat, c->lon, azi, dist, lat, lon, NULL);
}

bool cameras_sees(const store_camera *c, double lon, double lat, double *distance_m,
                  double *bearing)
{
    double s12 = 0, azi1 = 0, azi2;
    geod_inverse(wgs84(), c->lat, c->lon, lat, lon, &s12, &azi1, &azi2);
    double b = fmod(azi1 + 360.0, 360.0);
    if (b >= 360.0)
        b = 0;
    if (distance_m)
        *distance_m = s12;
    if (bearing)
        *bearing = b;
    if (s12 > c->range_m + EDGE_EPS_M)
        return false;
    if (s12 <= EDGE_EPS_M || c->fov >= 360.0)
        return true;
    double off = fabs(remainder(b - c->heading, 360.0)); /* [0, 180] */
    return off <= c->fov / 2 + EDGE_EPS_DEG;
}

/* Twice the signed area of a ring in lon/lat (positive: counterclockwise). */
static double ring_area2(OGRGeometryH ring)
{
    double a = 0;
    int n = OGR_G_GetPointCount(ring);
    for (int i = 0; i + 1 < n; i++)
        a += OGR_G_GetX(ring, i) * OGR_G_GetY(ring, i + 1) -
             OGR_G_GetX(ring, i + 1) * OGR_G_GetY(ring, i);
    return a;
}

OGRGeometryH cameras_sector_polygon(const store_camera *c)
{
    bool full = c->fov >= 360.0;
    double fov = full ? 360.0 : c->fov;
    double start = c->heading - fov / 2;
    int n = (int)ceil(fov / CAMERAS_ARC_STEP_DEG);
    if (n < 2)
        n = 2;
    double step = fov / n;
    /* vertices at r / cos(step/2): the chords between them touch the arc */
    double r = c->range_m / cos(step / 2 * G_PI / 180.0);
    /* a side edge is a geodesic; a straight lon/lat segment of L metres
     * strays from it by about L² tan(lat) / 8R: 250 m keeps that under a
     * millimetre at 70°N */
    int side = (int)ceil(c->range_m / SIDE_SEGMENT_M);
    if (side < 4)
        side = 4;
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    double x, y;
    if (!full)
        for (int i = 0; i < side; i++) {
            direct(c, start, c->range_m * i / side, &x, &y);
            OGR_G_AddPoint_2D(ring, x, y);
        }
    for (int i = 0; i <= n; i++) {
        if (full && i == n)
            break;
        direct(c, start + step * i, r, &x, &y);
        OGR_G_AddPoint_2D(ring, x, y);
    }
    if (!full)
        for (int i = side - 1; i > 0; i--) {
            direct(c, start + fov, c->range_m * i / side, &x, &y);
            OGR_G_AddPoint_2D(ring, x, y);
        }
    OGR_G_AddPoint_2D(ring, OGR_G_GetX(ring, 0), OGR_G_GetY(ring, 0));
    OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
    OGR_G_AddGeometryDirectly(poly, ring);
    /* a centimetre's margin, so that a point exactly on an edge (inside by
     * the rule) is not a rounding outside the drawing */
    OGRGeometryH grown = OGR_G_Buffer(poly, SECTOR_MARGIN_DEG, 1);
    if (grown && OGR_GT_Flatten(OGR_G_GetGeometryType(grown)) == wkbPolygon) {
        OGR_G_DestroyGeometry(poly);
        poly = grown;
    } else if (grown) {
        OGR_G_DestroyGeometry(grown);
    }
    /* RFC 7946: exterior rings counterclockwise */
    OGRGeometryH ext = OGR_G_GetGeometryRef(poly, 0);
    if (ring_area2(ext) < 0) {
        OGRGeometryH rev = OGR_G_CreateGeometry(wkbLinearRing);
        for (int i = OGR_G_GetPointCount(ext); i-- > 0;)
            OGR_G_AddPoint_2D(rev, OGR_G_GetX(ext, i), OGR_G_GetY(ext, i));
        OGRGeometryH p2 = OGR_G_CreateGeometry(wkbPolygon);
        OGR_G_AddGeometryDirectly(p2, rev);
        OGR_G_DestroyGeometry(poly);
        poly = p2;
    }
    return poly;
}

json_t *cameras_sector_geojson(const store_camera *c)
{
    /* as stored, when the store hands it: drawing it anew costs ~0.7 ms */
    json_t *stored = c->sector_geojson ? json_loads(c->sector_geojson, 0, NULL) : NULL;
    if (stored)
        return stored;
    OGRGeometryH g = cameras_sector_polygon(c);
    char **opts = CSLSetNameValue(NULL, "COORDINATE_PRECISION", "7");
    char *s = OGR_G_ExportToJsonEx(g, opts);
    CSLDestroy(opts);
    OGR_G_DestroyGeometry(g);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    CPLFree(s);
    return j ? j : json_null();
}

/* ---- URLs ---- */

static bool credential_param(const char *kv)
{
    static const char *names[] = {"user",   "username", "password", "pass", "pwd",
                                  "passwd", "token",    "auth",     "key"};
    size_t n = strcspn(kv, "=");
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (strlen(names[i]) == n && !strncasecmp(kv, names[i], n))
            return true;
    return false;
}

/* s without its credential parameters: s is cut at any of seps, a token
 * that is one goes with the separator after it (before it, when last), so
 * "/user=a&password=b&channel=1" gives "/channel=1". In a query (drop_empty)
 * empty tokens go too. Nothing else changes, so a second pass finds nothing. */
static char *strip_credentials(const char *s, const char *seps, bool drop_empty)
{
    GString *out = g_string_new(NULL);
    bool dropped_last = false;
    for (const char *t = s;;) {
        size_t n = strcspn(t, seps);
        char sep = t[n];
        char *tok = g_strndup(t, n);
        /* in a path only name=value is a parameter: /live/user is a path */
        bool param = drop_empty || memchr(t, '=', n);
        bool drop = (param && credential_param(tok)) || (drop_empty && !n);
        g_free(tok);
        if (!drop) {
            g_string_append_len(out, t, (gssize)n);
            if (sep)
                g_string_append_c(out, sep);
        }
        dropped_last = drop;
        if (!sep)
            break;
        t += n + 1;
    }
    /* a token dropped last leaves the separator before it */
    if (dropped_last && out->len && strchr(seps, out->str[out->len - 1]) &&
        (drop_empty || out->len > 1))
        g_string_truncate(out, out->len - 1);
    return g_string_free(out, FALSE);
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool readback_same(const char *pub, GUri *u, const char *path, const char *query)
{
    GUri *r = g_uri_parse(pub, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED, NULL);
    if (!r)
        return false;
    bool ok = !g_uri_get_user(r) && !g_uri_get_password(r) &&
              same_text(g_uri_get_host(r), g_uri_get_host(u)) &&
              g_uri_get_port(r) == g_uri_get_port(u) &&
              same_text(g_uri_get_path(r), path) &&
              same_text(g_uri_get_query(r), query) && !g_uri_get_fragment(r);
    g_uri_unref(r);
    /* and its escapes decode: GStreamer's RTSP source unescapes them */
    return ok && g_uri_split_with_user(pub, G_URI_FLAGS_HAS_PASSWORD, NULL, NULL, NULL, NULL,
                                       NULL, NULL, NULL, NULL, NULL, NULL);
}

int cameras_url_check(const char *url, char *pub, size_t publen, gc_err *err)
{
    if (!url || !*url)
        return gc_fail(err, GC_EINVAL, "url",
                       "url is required (rtsp://[user:password@]host[:port]/path)");
    if (strlen(url) > 1023)
        return gc_fail(err, GC_EINVAL, "url", "url: at most 1023 bytes");
    GError *ge = NULL;
    GUri *u = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED, &ge);
    if (!u) {
        /* GLib's message quotes the URL, password and all: say it in our words */
        int code = ge ? ge->code : -1;
        g_clear_error(&ge);
        return gc_fail(err, GC_EINVAL, "url",
                       "url is not a valid URL (%s); an RTSP camera's looks like "
                       "rtsp://user:password@host:554/path",
                       code == G_URI_ERROR_BAD_SCHEME     ? "no scheme"
                       : code == G_URI_ERROR_BAD_HOST     ? "bad host"
                       : code == G_URI_ERROR_BAD_PORT     ? "bad port"
                       : code == G_URI_ERROR_BAD_PASSWORD ? "bad password encoding"
                       : code == G_URI_ERROR_BAD_USER     ? "bad user encoding"
                                                          : "malformed");
    }
    const char *scheme = g_uri_get_scheme(u), *host = g_uri_get_host(u);
    int rc = 0;
    if (g_ascii_strcasecmp(scheme, "rtsp") && g_ascii_strcasecmp(scheme, "rtsps"))
        rc = gc_fail(err, GC_EINVAL, "url", "url scheme must be rtsp or rtsps, not '%s'", scheme);
    else if (!host || !*host)
        rc = gc_fail(err, GC_EINVAL, "url", "url has no host");
    else if (g_uri_get_fragment(u))
        rc = gc_fail(err, GC_EINVAL, "url",
                     "url has a #fragment, which RTSP does not use (a '#' in a password is "
                     "written %%23)");
    /* a name, an IPv4 or (GLib took off the brackets) an IPv6 address: the
     * sub-delimiters RFC 3986 also allows (&, =, …) name no camera, and
     * would carry parameters into what everyone sees; not quoted, as it
     * may hold them */
    else if (host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~%:")])
        rc = gc_fail(err, GC_EINVAL, "url",
                     "url's host is not a host name or an IP address");
    if (rc) {
        g_uri_unref(u);
        return rc;
    }
    /* credentials go in the query (…?user=admin&password=…), or in the
     * path as many Chinese DVRs and NVRs take them
     * (/user=admin&password=…&channel=1&stream=0.sdp) */
    char *path = strip_credentials(g_uri_get_path(u), "/&;", false);
    char *query = NULL;
    if (g_uri_get_query(u)) {
        query = strip_credentials(g_uri_get_query(u), "&;?/", true);
        if (!*query)
            g_clear_pointer(&query, g_free);
    }
    char *lower = g_ascii_strdown(scheme, -1);
    char *p = g_uri_join(G_URI_FLAGS_ENCODED, lower, NULL, host, g_uri_get_port(u), path, query,
                         NULL); /* a fragment was refused above */
    g_free(lower);
    /* What we store and show must read back as the same camera and carry
     * nothing of the credentials: GLib takes some strings apart one way
     * and puts them together so that they read another (an '@' in the
     * host, escapes that do not decode). Refuse those rather than show a
     * URL that means something else. */
    bool same = readback_same(p, u, path, query);
    g_free(path);
    g_free(query);
    g_uri_unref(u);
    if (!same) {
        g_free(p);
        return gc_fail(err, GC_EINVAL, "url",
                       "url is ambiguous: its host, path or query reads differently once the "
                       "credentials are taken out (an '@', '?' or '%%' where it cannot be)");
    }
    if (strlen(p) >= publen) {
        g_free(p);
        return gc_fail(err, GC_EINVAL, "url", "url too long");
    }
    snprintf(pub, publen, "%s", p);
    g_free(p);
    return 0;
}

/* ---- records ---- */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && !strchr("_.-", id[i]))
            return false;
    return true;
}

/* A number field: a JSON number, or text that is one (CSV cells). 1 if
 * present, 0 if absent (or null, or ""), negative on bad input. */
static int number(json_t *in, const char *k, double lo, double hi, bool lo_open, double *out,
                  gc_err *err)
{
    json_t *v = json_object_get(in, k);
    if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
        return 0;
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (!json_is_string(v) ||
             gc_parse_double(json_string_value(v), k, -INFINITY, INFINITY, &d, NULL))
        return gc_fail(err, GC_EINVAL, k, "%s must be a number", k);
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d == lo))
        return gc_fail(err, GC_EINVAL, k, "%s must be %s %g and %s %g, not %g", k,
                       lo_open ? "above" : "at least", lo, "at most", hi, d);
    *out = d;
    return 1;
}

static int required(json_t *in, const char *k, double lo, double hi, bool lo_open, double *out,
                    gc_err *err)
{
    int r = number(in, k, lo, hi, lo_open, out, err);
    if (r == 0)
        return gc_fail(err, GC_EINVAL, k, "%s is required", k);
    return r < 0 ? r : 0;
}

static const char *text(json_t *in, const char *k, bool *bad)
{
    json_t *v = json_object_get(in, k);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* Is (lon, lat) within the system's area of use (box: west, south, east,
 * north; NULL when unknown)? Points far outside still transform, to
 * nonsense. GCJ-02 and BD-09 apply in China. */
static int check_area(const crs_def *d, const double *box, double lon, double lat, gc_err *err)
{
    if (d->kind == CRS_GCJ02 || d->kind == CRS_BD09) {
        if (!crs_in_china(lon, lat))
            return gc_fail(err, GC_EINVAL, "lon",
                           "lon/lat %.6f %.6f lie outside China, "
                           "where %s applies",
                           lon, lat, d->name);
        return 0;
    }
    if (!box)
        return 0;
    double w = box[0], s = box[1], e = box[2], n = box[3];
    bool in_lon = w <= e ? lon >= w && lon <= e : lon >= w || lon <= e;
    if (!in_lon || lat < s || lat > n)
        return gc_fail(err, GC_EINVAL, "lon",
                       "lon/lat %.6f %.6f lie outside the area of %s (lon %g to %g, lat %g "
                       "to %g)",
                       lon, lat, d->name, w, e, s, n);
    return 0;
}

static int position(json_t *in, store_camera *out, gc_err *err)
{
    double x = 0, y = 0;
    if (required(in, "lon", -INFINITY, INFINITY, false, &x, err) ||
        required(in, "lat", -INFINITY, INFINITY, false, &y, err))
        return GC_EINVAL;
    bool bad = false;
    const char *crs = text(in, "crs", &bad);
    crs_def d;
    if (bad || crs_parse(crs, &d, err)) {
        if (bad)
            gc_fail(err, GC_EINVAL, "crs", "crs must be text (EPSG:N, gcj02, bd09)");
        snprintf(err->field, sizeof err->field, "crs");
        return GC_EINVAL;
    }
    double lon = x, lat = y, box[4];
    bool has_box = false;
    if (d.kind == CRS_GCJ02)
        crs_gcj02_to_wgs84(x, y, &lon, &lat);
    else if (d.kind == CRS_BD09)
        crs_bd09_to_wgs84(x, y, &lon, &lat);
    else if (d.kind == CRS_EPSG && d.epsg != 4326) {
        crs_transform *t = crs_transform_new(&d, err);
        if (!t) {
            snprintf(err->field, sizeof err->field, "crs");
            return GC_EINVAL;
        }
        int rc = crs_transform_to_wgs84(t, &lon, &lat, 1, NULL, err);
        has_box = crs_transform_area(t, box);
        crs_transform_free(t);
        if (rc) {
            snprintf(err->field, sizeof err->field, "lon");
            return GC_EINVAL;
        }
    }
    if (lon < -180 || lon > 180)
        return gc_fail(err, GC_EINVAL, "lon", "lon %g is outside [-180, 180]", lon);
    if (lat < -90 || lat > 90)
        return gc_fail(err, GC_EINVAL, "lat", "lat %g is outside [-90, 90]", lat);
    if (check_area(&d, has_box ? box : NULL, d.kind == CRS_EPSG ? lon : x,
                   d.kind == CRS_EPSG ? lat : y, err))
        return GC_EINVAL;
    out->lon = lon;
    out->lat = lat;
    return 0;
}

int cameras_from_json(json_t *in, const char *path_id, store_camera *out, gc_err *err)
{
    memset(out, 0, sizeof *out);
    out->height_m = NAN;
    if (!json_is_object(in))
        return gc_fail(err, GC_EINVAL, "body", "a camera is a JSON object");
    bool bad = false;
    const char *id = text(in, "id", &bad);
    if (bad)
        return gc_fail(err, GC_EINVAL, "id", "id must be text");
    if (path_id && id && strcmp(id, path_id))
        return gc_fail(err, GC_EINVAL, "id", "id '%s' differs from the one in the path", id);
    if (!id)
        id = path_id;
    if (!id || !*id)
        return gc_fail(err, GC_EINVAL, "id", "id is required");
    if (!id_ok(id))
        return gc_fail(err, GC_EINVAL, "id",
                       "id must be 1 to 64 of the characters A-Z a-z 0-9 _ . -");
    snprintf(out->id, sizeof out->id, "%s", id);
    const char *name = text(in, "name", &bad);
    if (bad || (name && strlen(name) >= sizeof out->name))
        return gc_fail(err, GC_EINVAL, "name", "name must be text of at most 255 bytes");
    snprintf(out->name, sizeof out->name, "%s", name && *name ? name : id);
    const char *dept = text(in, "department", &bad);
    if (bad || (dept && strlen(dept) >= sizeof out->department))
        return gc_fail(err, GC_EINVAL, "department", "department must be text of at most 63 bytes");
    snprintf(out->department, sizeof out->department, "%s", dept ? dept : "");
    const char *url = text(in, "url", &bad);
    if (bad)
        return gc_fail(err, GC_EINVAL, "url", "url must be text");
    if (cameras_url_check(url, out->url_public, sizeof out->url_public, err))
        return GC_EINVAL;
    snprintf(out->url, sizeof out->url, "%s", url);
    if (position(in, out, err) ||
        required(in, "heading", -INFINITY, INFINITY, false, &out->heading, err))
        return GC_EINVAL;
    if (out->heading < 0 || out->heading >= 360)
        return gc_fail(err, GC_EINVAL, "heading",
                       "heading must be at least 0 and below 360 (degrees from north), not %g",
                       out->heading);
    if (required(in, "fov", 0, 360, true, &out->fov, err) ||
        required(in, "range_m", 0, CAMERAS_MAX_RANGE_M, true, &out->range_m, err) ||
        number(in, "height_m", 0, 1000, false, &out->height_m, err) < 0)
        return GC_EINVAL;
    const char *tr = text(in, "transport", &bad);
    if (bad || (tr && *tr && strcmp(tr, "tcp") && strcmp(tr, "udp")))
        return gc_fail(err, GC_EINVAL, "transport", "transport must be \"tcp\" or \"udp\"");
    snprintf(out->transport, sizeof out->transport, "%s", tr && *tr ? tr : "tcp");
    snprintf(out->state, sizeof out->state, "connecting");
    return 0;
}

static json_t *opt_text(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *record(const store_camera *c, bool with_credentials)
{
    json_t *o = json_pack("{s:s,s:s,s:o,s:s,s:f,s:f,s:f,s:f,s:f}", "id", c->id, "name", c->name,
                          "department", opt_text(c->department), "url",
                          with_credentials ? c->url : c->url_public, "lon", c->lon, "lat", c->lat,
                          "heading", c->heading, "fov", c->fov, "range_m", c->range_m);
    json_object_set_new(o, "height_m", isnan(c->height_m) ? json_null() : json_real(c->height_m));
    json_object_set_new(o, "transport", json_string(c->transport[0] ? c->transport : "tcp"));
    json_object_set_new(o, "state", json_string(c->state[0] ? c->state : "connecting"));
    json_object_set_new(o, "reason", opt_text(c->reason));
    json_object_set_new(o, "state_at", opt_text(c->state_at));
    json_object_set_new(o, "created_at", opt_text(c->created_at));
    json_object_set_new(o, "updated_at", opt_text(c->updated_at));
    return o;
}

json_t *cameras_json(const store_camera *c, bool with_credentials)
{
    json_t *o = record(c, with_credentials);
    json_object_set_new(o, "sector", cameras_sector_geojson(c));
    return o;
}

json_t *cameras_feature(const store_camera *c)
{
    return json_pack("{s:s,s:s,s:o,s:o}", "type", "Feature", "id", c->id, "geometry",
                     cameras_sector_geojson(c), "properties", record(c, false));
}

static json_t *text_or_null(const char *s)
{
    json_t *v = s ? json_string(s) : NULL; /* NULL too for text that is not UTF-8 */
    return v ? v : json_null();
}

void cameras_place(const gc_index *ix, double lon, double lat, json_t *o)
{
    static const struct {
        gc_level level;
        const char *id, *name;
    } keys[] = {{LEVEL_GRID, "grid_id", "grid_name"},
                {LEVEL_COMMUNITY, "community_id", "community_name"},
                {LEVEL_STREET, "street_id", "street_name"}};
    index_chain c = {0};
    if (ix)
        index_geotag_only(ix, lon, lat,
                          1u << LEVEL_GRID | 1u << LEVEL_COMMUNITY | 1u << LEVEL_STREET, false, &c);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const index_hit *h = c.chain[keys[i].level];
        json_object_set_new(o, keys[i].id, text_or_null(h ? h->fid : NULL));
        json_object_set_new(o, keys[i].name, text_or_null(h ? h->name : NULL));
    }
}

int cameras_save(store *s, const store_camera *c, cameras_mode mode, bool *created, gc_err *err)
{
    OGRGeometryH g = cameras_sector_polygon(c);
    size_t len = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = g_malloc(len);
    OGR_G_ExportToWkb(g, wkbNDR, wkb);
    OGR_G_DestroyGeometry(g);
    store_camera w = *c;
    w.sector_wkb = wkb;
    w.sector_wkb_len = len;
    int rc;
    bool made = mode == CAMERAS_CREATE;
    if (mode == CAMERAS_UPSERT) {
        store_camera old;
        gc_err e = {0};
        rc = store_camera_get(s, c->id, &old, &e);
        made = rc == GC_ENOTFOUND;
        if (rc && !made && err)
            *err = e;
        rc = rc && !made ? rc : 0;
    } else {
        rc = 0;
    }
    if (!rc)
        rc = made ? store_camera_create(s, &w, err) : store_camera_replace(s, &w, err);
    g_free(wkb);
    if (!rc) {
        /* the public URL only: the credentialed one is never logged */
        log_info("cameras", "%s id=%s url=%s", made ? "created" : "replaced", c->id, c->url_public);
        if (created)
            *created = made;
    }
    return rc;
}

/* ---- cameras that see a case ---- */

typedef struct match {
    double lon, lat;
    GArray *hits; /* store_incident_camera */
    GPtrArray *names;
} match;

static int match_one(void *ud, const store_camera *c)
{
    match *m = ud;
    store_incident_camera h = {0};
    if (!cameras_sees(c, m->lon, m->lat, &h.distance_m, &h.bearing))
        return 0;
    h.camera_id = g_strdup(c->id);
    h.name = g_strdup(c->name);
    g_ptr_array_add(m->names, (gpointer)h.camera_id);
    g_ptr_array_add(m->names, (gpointer)h.name);
    g_array_append_val(m->hits, h);
    return 0;
}

static gint by_distance(gconstpointer a, gconstpointer b)
{
    const store_incident_camera *x = a, *y = b;
    return x->distance_m < y->distance_m ? -1 : x->distance_m > y->distance_m;
}

int cameras_match_incident(store *s, int64_t incident_id, double lon, double lat,
                           const char *media_state, size_t *n, gc_err *err)
{
    /* the R*Tree holds each sector's extent (circumscribed, rounded outward
     * to floats): a lookup of the point finds every candidate */
    double pad = 1e-7, bbox[4] = {lon - pad, lat - pad, lon + pad, lat + pad};
    match m = {lon, lat, g_array_new(FALSE, FALSE, sizeof(store_incident_camera)),
               g_ptr_array_new_with_free_func(g_free)};
    int rc = store_cameras_list(s, bbox, 0, 0, NULL, match_one, &m, err);
    if (!rc) {
        g_array_sort(m.hits, by_distance);
        rc = store_incident_cameras_set(s, incident_id, (store_incident_camera *)m.hits->data,
                                        m.hits->len, media_state, err);
    }
    if (!rc && n)
        *n = m.hits->len;
    g_array_free(m.hits, TRUE);
    g_ptr_array_free(m.names, TRUE);
    return rc;
}

/* ---- import ---- */

/* Where each feature of a GeoJSON file begins: OGR numbers features but
 * keeps no line. yajl walks the text once; at each object opening directly
 * inside the top-level "features" array, the bytes consumed so far give the
 * line. */
typedef struct lines_ctx {
    const unsigned char *buf;
    int depth;
    bool in_features_key, features_array;
    int features_depth;
    GArray *lines; /* long: line of feature i */
    size_t pos_line_scan;
    long line;
    yajl_handle h;
} lines_ctx;

static int lc_start_map(void *ud)
{
    lines_ctx *c = ud;
    if (c->features_array && c->depth == c->features_depth) {
        size_t at = yajl_get_bytes_consumed(c->h);
        for (; c->pos_line_scan < at; c->pos_line_scan++)
            if (c->buf[c->pos_line_scan] == '\n')
                c->line++;
        g_array_append_val(c->lines, c->line);
    }
    c->depth++;
    c->in_features_key = false;
    return 1;
}

static int lc_end_map(void *ud)
{
    ((lines_ctx *)ud)->depth--;
    return 1;
}

static int lc_key(void *ud, const unsigned char *k, size_t len)
{
    lines_ctx *c = ud;
    c->in_features_key = c->depth == 1 && len == 8 && !memcmp(k, "features", 8);
    return 1;
}

static int lc_start_array(void *ud)
{
    lines_ctx *c = ud;
    if (c->in_features_key) {
        c->features_array = true;
        c->features_depth = c->depth + 1;
    }
    c->depth++;
    c->in_features_key = false;
    return 1;
}

static int lc_end_array(void *ud)
{
    lines_ctx *c = ud;
    c->depth--;
    if (c->features_array && c->depth + 1 == c->features_depth)
        c->features_array = false;
    return 1;
}

static int lc_scalar(void *ud)
{
    ((lines_ctx *)ud)->in_features_key = false;
    return 1;
}
static int lc_null(void *ud)
{
    return lc_scalar(ud);
}
static int lc_bool(void *ud, int b)
{
    return lc_scalar(ud);
}
static int lc_num(void *ud, const char *s, size_t l)
{
    return lc_scalar(ud);
}
static int lc_str(void *ud, const unsigned char *s, size_t l)
{
    return lc_scalar(ud);
}

static GArray *geojson_lines(const char *path)
{
    gchar *buf;
    gsize len;
    if (!g_file_get_contents(path, &buf, &len, NULL))
        return NULL;
    static const yajl_callbacks cb = {lc_null,    lc_bool,        NULL,         NULL,
                                      lc_num,     lc_str,         lc_start_map, lc_key,
                                      lc_end_map, lc_start_array, lc_end_array};
    lines_ctx c = {.buf = (const unsigned char *)buf,
                   .lines = g_array_new(FALSE, FALSE, sizeof(long)),
                   .line = 1};
    c.h = yajl_alloc(&cb, NULL, &c);
    bool ok = yajl_parse(c.h, (const unsigned char *)buf, len) == yajl_status_ok &&
              yajl_complete_parse(c.h) == yajl_status_ok;
    yajl_free(c.h);
    g_free(buf);
    if (!ok) { /* OGR says what is wrong with the file */
        g_array_free(c.lines, TRUE);
        return NULL;
    }
    return c.lines;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* A feature's fields as the API's JSON object (text as text: the numbers
 * are read by cameras_from_json either way). */
static json_t *feature_json(OGRFeatureH f, OGRFeatureDefnH d)
{
    json_t *o = json_object();
    for (int i = 0; i < OGR_FD_GetFieldCount(d); i++) {
        const char *k = OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(d, i));
        if (!OGR_F_IsFieldSetAndNotNull(f, i))
            continue;
        if (!strcmp(k, "id")) { /* 101 is as good an id as "101" */
            json_object_set_new(o, k, json_string(OGR_F_GetFieldAsString(f, i)));
            continue;
        }
        switch (OGR_Fld_GetType(OGR_FD_GetFieldDefn(d, i))) {
        case OFTInteger:
        case OFTInteger64:
            json_object_set_new(o, k, json_integer(OGR_F_GetFieldAsInteger64(f, i)));
            break;
        case OFTReal: json_object_set_new(o, k, json_real(OGR_F_GetFieldAsDouble(f, i))); break;
        default: json_object_set_new(o, k, json_string(OGR_F_GetFieldAsString(f, i))); break;
        }
    }
    return o;
}

static void problem(cameras_import_report *rep, const char *path, long k, long line,
                    const char *field, const char *msg)
{
    char where[64] = "";
    if (line > 0)
        snprintf(where, sizeof where, " (line %ld)", line);
    json_array_append_new(rep->problems, json_sprintf("%s: feature %ld%s: %s: %s", path, k, where,
                                                      field && *field ? field : "feature", msg));
}

int cameras_import(store *s, const char *path, cameras_import_report *rep, gc_err *err)
{
    memset(rep, 0, sizeof *rep);
    rep->problems = json_array();
    bool csv = has_suffix(path, ".csv");
    char **oo = NULL;
    if (csv) {
        oo = CSLSetNameValue(oo, "GEOM_POSSIBLE_NAMES", "wkt,WKT,geom,the_geom,geometry,WKT_GEOM");
        oo = CSLSetNameValue(oo, "X_POSSIBLE_NAMES", "lon,lng,longitude,x,X");
        oo = CSLSetNameValue(oo, "Y_POSSIBLE_NAMES", "lat,latitude,y,Y");
        oo = CSLSetNameValue(oo, "KEEP_GEOM_COLUMNS", "NO");
    }
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds =
        GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, (const char *const *)oo, NULL);
    CPLPopErrorHandler();
    CSLDestroy(oo);
    if (!ds)
        return gc_fail(err, GC_EINVAL, "file", "%s: cannot read as CSV or GeoJSON: %s", path,
                       CPLGetLastErrorMsg()[0] ? CPLGetLastErrorMsg()
                                               : "no such file, or not "
                                                 "a vector format");
    OGRLayerH L = GDALDatasetGetLayerCount(ds) ? GDALDatasetGetLayer(ds, 0) : NULL;
    if (!L) {
        GDALClose(ds);
        return gc_fail(err, GC_EINVAL, "file", "%s: no layer", path);
    }
    GArray *lines = csv ? NULL : geojson_lines(path);
    /* a file in another system says so (GeoJSON's old "crs" member, a .prj) */
    char file_crs[32] = "";
    OGRSpatialReferenceH srs = OGR_L_GetSpatialRef(L);
    if (srs) {
        const char *auth = OSRGetAuthorityName(srs, NULL), *code = OSRGetAuthorityCode(srs, NULL);
        if (auth && code && !strcasecmp(auth, "EPSG") && strcmp(code, "4326"))
            snprintf(file_crs, sizeof file_crs, "EPSG:%s", code);
    }
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(L);
    GArray *cams = g_array_new(FALSE, FALSE, sizeof(store_camera));
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    OGR_L_ResetReading(L);
    OGRFeatureH f;
    long k = 0;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    while ((f = OGR_L_GetNextFeature(L))) {
        k++;
        rep->features++;
        long line = csv                                    ? (long)OGR_F_GetFID(f) + 1
                    : lines && (guint)(k - 1) < lines->len ? g_array_index(lines, long, k - 1)
                                                           : 0;
        json_t *in = feature_json(f, d);
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (g && !OGR_G_IsEmpty(g)) {
            if (OGR_GT_Flatten(OGR_G_GetGeometryType(g)) != wkbPoint) {
                char msg[128];
                snprintf(msg, sizeof msg, "a camera is a Point, not a %s",
                         OGR_G_GetGeometryName(g));
                problem(rep, path, k, line, "geometry", msg);
                json_decref(in);
                OGR_F_Destroy(f);
                continue;
            }
            json_object_set_new(in, "lon", json_real(OGR_G_GetX(g, 0)));
            json_object_set_new(in, "lat", json_real(OGR_G_GetY(g, 0)));
            if (file_crs[0] && !json_object_get(in, "crs"))
                json_object_set_new(in, "crs", json_string(file_crs));
        } else if (!json_object_get(in, "lon") && !json_object_get(in, "lat")) {
            problem(rep, path, k, line, "geometry", "no position (a point, or lon and lat)");
            json_decref(in);
            OGR_F_Destroy(f);
            continue;
        }
        store_camera c;
        gc_err e = {0};
        if (cameras_from_json(in, NULL, &c, &e)) {
            problem(rep, path, k, line, e.field, e.msg);
        } else if (g_hash_table_contains(seen, c.id)) {
            char msg[160];
            snprintf(msg, sizeof msg, "id '%s' appears twice in the file", c.id);
            problem(rep, path, k, line, "id", msg);
        } else {
            g_hash_table_add(seen, g_strdup(c.id));
            g_array_append_val(cams, c);
        }
        json_decref(in);
        OGR_F_Destroy(f);
    }
    CPLPopErrorHandler();
    GDALClose(ds);
    if (lines)
        g_array_free(lines, TRUE);
    g_hash_table_destroy(seen);
    int rc = 0;
    if (json_array_size(rep->problems))
        rc = gc_fail(err, GC_EINVAL, "file", "%s: %zu of %d features are bad: nothing imported",
                     path, json_array_size(rep->problems), rep->features);
    else if (!rep->features)
        rc = gc_fail(err, GC_EINVAL, "file", "%s: no features", path);
    if (!rc && store_begin(s, err)) {
        rc = GC_EIO;
    } else if (!rc) {
        for (guint i = 0; !rc && i < cams->len; i++) {
            bool made = false;
            rc = cameras_save(s, &g_array_index(cams, store_camera, i), CAMERAS_UPSERT, &made, err);
            if (!rc)
                *(made ? &rep->created : &rep->replaced) += 1;
        }
        if (!rc && store_commit(s, err))
            rc = GC_EIO;
        if (rc) {
            store_rollback(s);
            rep->created = rep->replaced = 0;
        }
    }
    g_array_free(cams, TRUE);
    return rc;
}

void cameras_import_report_clear(cameras_import_report *rep)
{
    json_decref(rep->problems);
    rep->problems = NULL;
}
