/* cameras: the view sector (across north, the range, points exactly on an
 * edge, fov 360, 69°N where flat or spherical arithmetic is off by more
 * than the margins tested), the polygon against cameras_sees, RTSP URL
 * redaction and refusal, the checks of a camera record, and the units a
 * camera stands in. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <gdal.h>
#include <geodesic.h>
#include <ogr_api.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/cameras.h"
#include "gridcc/incidents.h"

static struct geod_geodesic G;

static store_camera cam(double lon, double lat, double heading, double fov, double range)
{
    store_camera c = {0};
    snprintf(c.id, sizeof c.id, "t");
    c.lon = lon;
    c.lat = lat;
    c.heading = heading;
    c.fov = fov;
    c.range_m = range;
    c.height_m = NAN;
    return c;
}

/* The point at bearing azi, distance d from the camera (Karney's direct
 * problem: the reference the module must agree with). */
static void at(const store_camera *c, double azi, double d, double *lon, double *lat)
{
    geod_direct(&G, c->lat, c->lon, azi, d, lat, lon, NULL);
}

static bool sees_at(const store_camera *c, double azi, double d)
{
    double lon, lat;
    at(c, azi, d, &lon, &lat);
    return cameras_sees(c, lon, lat, NULL, NULL);
}

static void test_across_north(void **st)
{
    store_camera c = cam(116.32, 40.0, 350, 40, 200);
    assert_true(sees_at(&c, 5, 100)); /* 15° right of 350 */
    assert_true(sees_at(&c, 335, 100));
    assert_true(sees_at(&c, 0, 150));
    assert_false(sees_at(&c, 30, 100)); /* 40° right: outside */
    assert_false(sees_at(&c, 320, 100));
    assert_false(sees_at(&c, 170, 100)); /* behind */
    double d, b, lon, lat;
    at(&c, 5, 100, &lon, &lat);
    cameras_sees(&c, lon, lat, &d, &b);
    assert_true(fabs(d - 100) < 1e-6);
    assert_true(fabs(b - 5) < 1e-9);
}

static void test_range_boundary(void **st)
{
    store_camera c = cam(116.32, 40.0, 90, 60, 150);
    assert_true(sees_at(&c, 90, 149.999));
    assert_true(sees_at(&c, 90, 150)); /* on the arc */
    assert_false(sees_at(&c, 90, 150.001));
    assert_true(sees_at(&c, 90, 0)); /* the camera's own spot */
}

static void test_exactly_on_edges(void **st)
{
    store_camera c = cam(116.32, 40.0, 10, 50, 300);
    /* side edges at 10 ± 25: -15 (345) and 35 */
    assert_true(sees_at(&c, 35, 120));
    assert_true(sees_at(&c, 345, 120));
    assert_true(sees_at(&c, -15, 300)); /* the corner: edge and arc */
    assert_false(sees_at(&c, 35 + 1e-6, 120));
    assert_false(sees_at(&c, 345 - 1e-6, 120));
}

static void test_fov_360(void **st)
{
    store_camera c = cam(116.32, 40.0, 0, 360, 100);
    for (int a = 0; a < 360; a += 15) {
        assert_true(sees_at(&c, a, 99.9));
        assert_false(sees_at(&c, a, 100.1));
    }
    OGRGeometryH g = cameras_sector_polygon(&c);
    assert_int_equal(OGR_GT_Flatten(OGR_G_GetGeometryType(g)), wkbPolygon);
    assert_true(OGR_G_IsValid(g));
    double lon, lat;
    at(&c, 0, 0, &lon, &lat);
    OGRGeometryH p = OGR_G_CreateGeometry(wkbPoint);
    OGR_G_SetPoint_2D(p, 0, lon, lat);
    assert_true(OGR_G_Contains(g, p)); /* the camera itself: a disc, no apex notch */
    OGR_G_DestroyGeometry(p);
    OGR_G_DestroyGeometry(g);
}

/* At 69°N a degree of longitude is 40 km, not 111 km; and the ellipsoid
 * differs from a sphere of mean radius by ~0.3 % (3 m in 1 km): the margins
 * here (5 cm) catch both. */
static void test_high_latitude(void **st)
{
    store_camera c = cam(18.95, 69.65, 90, 20, 1000); /* Tromsø, looking east */
    assert_true(sees_at(&c, 95, 999.95));
    assert_false(sees_at(&c, 95, 1000.05));
    assert_true(sees_at(&c, 45 + 55, 999.95)); /* the edge at 100° */
    /* 0.02° east is 776 m here (2.2 km to arithmetic that forgets the
     * cosine of the latitude); 0.03° is 1,164 m */
    assert_true(cameras_sees(&c, c.lon + 0.02, c.lat, NULL, NULL));
    assert_false(cameras_sees(&c, c.lon + 0.03, c.lat, NULL, NULL));
    double d;
    cameras_sees(&c, c.lon + 0.01, c.lat, &d, NULL);
    assert_true(fabs(d - 388.2) < 1.0); /* 0.01° of longitude at 69.65°N */
}

/* Every point cameras_sees accepts lies in the polygon; every point it
 * refuses by a margin (0.5° or 0.2 % of the range) lies outside. */
static void polygon_agrees(const store_camera *c)
{
    OGRGeometryH g = cameras_sector_polygon(c);
    assert_true(OGR_G_IsValid(g));
    static const double fr[] = {0.01, 0.3, 0.7, 0.99, 0.999, 1.002, 1.05, 1.5};
    int in = 0, out = 0;
    for (double a = 0; a < 360; a += 0.5) {
        for (size_t k = 0; k < sizeof fr / sizeof *fr; k++) {
            double lon, lat;
            at(c, a, c->range_m * fr[k], &lon, &lat);
            OGRGeometryH p = OGR_G_CreateGeometry(wkbPoint);
            OGR_G_SetPoint_2D(p, 0, lon, lat);
            bool seen = cameras_sees(c, lon, lat, NULL, NULL);
            double off = fabs(remainder(a - c->heading, 360));
            bool clear_out = fr[k] > 1.001 || off > c->fov / 2 + 0.5;
            if (seen) {
                in++;
                if (!OGR_G_Intersects(g, p))
                    fail_msg("heading %g fov %g: seen at %g° %g×range, outside the polygon",
                             c->heading, c->fov, a, fr[k]);
            } else if (clear_out) {
                out++;
                if (OGR_G_Contains(g, p))
                    fail_msg("heading %g fov %g: refused at %g° %g×range, inside the polygon",
                             c->heading, c->fov, a, fr[k]);
            }
            OGR_G_DestroyGeometry(p);
        }
    }
    assert_true(in > 0 && out > 0);
    OGR_G_DestroyGeometry(g);
}

static void test_polygon_matches_sees(void **st)
{
    store_camera a = cam(116.32, 40.0, 350, 40, 200);
    polygon_agrees(&a);
    store_camera b = cam(18.95, 69.65, 90, 20, 1000);
    polygon_agrees(&b);
    store_camera c = cam(116.33, 39.99, 200, 120, 80);
    polygon_agrees(&c);
    store_camera d = cam(116.33, 39.99, 0, 360, 150);
    polygon_agrees(&d);
    json_t *j = cameras_sector_geojson(&a);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "Polygon");
    json_decref(j);
}

static void redacts(const char *url, const char *want)
{
    char pub[1024];
    gc_err e = {0};
    assert_int_equal(cameras_url_check(url, pub, sizeof pub, &e), 0);
    assert_string_equal(pub, want);
}

static void test_url_redaction(void **st)
{
    redacts("rtsp://admin:p%40ss%3Aw0rd@10.0.0.5:554/Streaming/Channels/101",
            "rtsp://10.0.0.5:554/Streaming/Channels/101");
    redacts("rtsp://u:pw@[2001:db8::1]:8554/live/main", "rtsp://[2001:db8::1]:8554/live/main");
    redacts("rtsp://[fe80::1]/x", "rtsp://[fe80::1]/x");
    redacts("RTSPS://demo:demo@cam.example:322/s?channel=1&password=zz&user=u&subtype=0",
            "rtsps://cam.example:322/s?channel=1&subtype=0");
    redacts("rtsp://demo@127.0.0.1:8554/cam1", "rtsp://127.0.0.1:8554/cam1");
    redacts("rtsp://cam/a%20b", "rtsp://cam/a%20b");
    /* the path style of many Chinese DVRs and NVRs, and ';' between parameters */
    redacts("rtsp://192.168.1.10:554/user=admin&password=s3cr3t&channel=1&stream=0.sdp?",
            "rtsp://192.168.1.10:554/channel=1&stream=0.sdp");
    redacts("rtsp://h/live/ch1/pwd=s3cr3t", "rtsp://h/live/ch1");
    redacts("rtsp://h/password=s3cr3t", "rtsp://h/");
    redacts("rtsp://h/x?a=1;password=s3cr3t;b=2", "rtsp://h/x?a=1;b=2");
    redacts("rtsp://h/x?a=1?pwd=s3cr3t", "rtsp://h/x?a=1");
    redacts("rtsp://h/x?a=1/pwd=s3cr3t&b=2", "rtsp://h/x?a=1/b=2");
    redacts("rtsp://h/live/user/stream", "rtsp://h/live/user/stream");
    redacts("rtsp://h/a=1&&b=2/", "rtsp://h/a=1&&b=2/");
}

static void refuses(const char *url, const char *secret)
{
    char pub[1024];
    gc_err e = {0};
    assert_int_equal(cameras_url_check(url, pub, sizeof pub, &e), GC_EINVAL);
    assert_string_equal(e.field, "url");
    if (secret)
        assert_null(strstr(e.msg, secret));
}

static void test_bad_urls(void **st)
{
    refuses("", NULL);
    refuses(NULL, NULL);
    refuses("http://cam/x", NULL);
    refuses("rtsp://", NULL);
    refuses("rtsp:///path", NULL);
    refuses("not a url", NULL);
    refuses("rtsp://u:s3cr3t@host:99999/x", "s3cr3t");
    refuses("rtsp://u:s3%zzcr3t@host/x", "s3");
    /* found by fuzz_cameras: each gave a public URL that read back as
     * another camera, or with an empty user */
    refuses("rtsp://a@@10.1els/101", NULL);
    refuses("rtsp://a:b@c@10.1els/101", "b@c");
    refuses("rtsps://[fe80::1]:/x?s&auth&%9999999999", NULL);
    refuses("rtsps://1r=a&password=b/x", "password=b");
    refuses("rtsps://[fe80::1]:3#2/?2xuser=a&password=b", "password=b");
}

static int from(const char *json, store_camera *c, gc_err *e)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    int rc = cameras_from_json(j, NULL, c, e);
    json_decref(j);
    return rc;
}

static void bad(const char *json, const char *field)
{
    store_camera c;
    gc_err e = {0};
    assert_int_equal(from(json, &c, &e), GC_EINVAL);
    if (strcmp(e.field, field))
        fail_msg("%s: field %s, wanted %s (%s)", json, e.field, field, e.msg);
}

#define OK_URL "\"url\":\"rtsp://a:b@h/x\""
static void test_records(void **st)
{
    store_camera c;
    gc_err e = {0};
    assert_int_equal(from("{\"id\":\"c-1.a_b\"," OK_URL ",\"lon\":116.3,\"lat\":40,\"heading\":0,"
                          "\"fov\":360,\"range_m\":\"50\"}",
                          &c, &e),
                     0);
    assert_string_equal(c.name, "c-1.a_b");
    assert_string_equal(c.url_public, "rtsp://h/x");
    assert_true(isnan(c.height_m));
    bad("{" OK_URL ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":50}", "id");
    bad("{\"id\":\"a b\"," OK_URL
        ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":50}",
        "id");
    bad("{\"id\":\"a\",\"url\":\"http://h/"
        "\",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":50}",
        "url");
    bad("{\"id\":\"a\"," OK_URL
        ",\"lon\":116.3,\"lat\":40,\"heading\":360,\"fov\":30,\"range_m\":50}",
        "heading");
    bad("{\"id\":\"a\"," OK_URL
        ",\"lon\":116.3,\"lat\":40,\"heading\":-1,\"fov\":30,\"range_m\":50}",
        "heading");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":0,\"range_m\":50}",
        "fov");
    bad("{\"id\":\"a\"," OK_URL
        ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":361,\"range_m\":50}",
        "fov");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":0}",
        "range_m");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":116.3,\"lat\":40,\"heading\":0,\"fov\":30}", "range_m");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":190,\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":5}",
        "lon");
    bad("{\"id\":\"a\"," OK_URL ",\"lat\":40,\"heading\":0,\"fov\":30,\"range_m\":5}", "lon");
    /* UTM 50N covers 114°E to 120°E north of the equator */
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":500000,\"lat\":-2000000,\"crs\":\"EPSG:32650\","
        "\"heading\":0,\"fov\":30,\"range_m\":5}",
        "lon");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":2.35,\"lat\":48.85,\"crs\":\"gcj02\","
        "\"heading\":0,\"fov\":30,\"range_m\":5}",
        "lon");
    bad("{\"id\":\"a\"," OK_URL ",\"lon\":1,\"lat\":1,\"crs\":\"EPSG:999999\","
        "\"heading\":0,\"fov\":30,\"range_m\":5}",
        "crs");
    assert_int_equal(from("{\"id\":\"u\"," OK_URL ",\"lon\":442000,\"lat\":4428000,\"crs\":"
                          "\"EPSG:32650\",\"heading\":0,\"fov\":30,\"range_m\":5}",
                          &c, &e),
                     0);
    assert_true(c.lon > 116 && c.lon < 117 && c.lat > 39.9 && c.lat < 40.1);
}

static int count_changes(void *ud, const store_change *c)
{
    if (!strcmp(c->topic, "cameras"))
        (*(int *)ud)++;
    return 0;
}

static int cameras_changes(store *s)
{
    int n = 0;
    assert_int_equal(store_changes_since(s, 0, 100000, count_changes, &n, NULL), 0);
    return n;
}

static int listed_sector(void *ud, const store_camera *c)
{
    assert_non_null(c->sector_geojson);
    *(json_t **)ud = cameras_sector_geojson(c);
    return 0;
}

static void same_polygon(json_t *a, json_t *b)
{
    assert_string_equal(json_string_value(json_object_get(a, "type")), "Polygon");
    assert_string_equal(json_string_value(json_object_get(b, "type")), "Polygon");
    json_t *ra = json_array_get(json_object_get(a, "coordinates"), 0);
    json_t *rb = json_array_get(json_object_get(b, "coordinates"), 0);
    assert_true(json_array_size(ra) > 4);
    assert_int_equal(json_array_size(ra), json_array_size(rb));
    for (size_t i = 0; i < json_array_size(ra); i++)
        for (size_t k = 0; k < 2; k++)
            assert_true(fabs(json_number_value(json_array_get(json_array_get(ra, i), k)) -
                             json_number_value(json_array_get(json_array_get(rb, i), k))) <= 1.01e-7);
}

/* The store's side: health changes logged only when they change, a case
 * reported inside a sector gets the camera, and the media state follows
 * what the video engine reports. */
static void test_store_health_and_media(void **st)
{
    char dir[] = "/tmp/gridcc-cameras-XXXXXX";
    assert_non_null(g_mkdtemp(dir));
    char *db = g_build_filename(dir, "t.db", NULL);
    store *s;
    gc_err e = {0};
    assert_int_equal(store_open(db, &s, &e), 0);
    store_camera c = cam(116.32, 40.0, 0, 60, 200);
    snprintf(c.url, sizeof c.url, "rtsp://a:b@h/x");
    snprintf(c.url_public, sizeof c.url_public, "rtsp://h/x");
    snprintf(c.name, sizeof c.name, "北");
    assert_int_equal(cameras_save(s, &c, CAMERAS_CREATE, NULL, &e), 0);
    assert_int_equal(cameras_save(s, &c, CAMERAS_CREATE, NULL, &e), GC_ECONFLICT);
    assert_int_equal(cameras_changes(s), 1);
    assert_int_equal(store_camera_state_set(s, "t", "playing", NULL, &e), 0);
    assert_int_equal(store_camera_state_set(s, "t", "playing", NULL, &e), 0);
    assert_int_equal(cameras_changes(s), 2);
    assert_int_equal(store_camera_state_set(s, "t", "retrying", "timeout", &e), 0);
    assert_int_equal(store_camera_state_set(s, "t", "retrying", "unauthorized", &e), 0);
    assert_int_equal(store_camera_state_set(s, "t", "retrying", "unauthorized", &e), 0);
    assert_int_equal(cameras_changes(s), 4);
    assert_int_equal(store_camera_state_set(s, "t", "sleeping", NULL, &e), GC_EINVAL);
    assert_int_equal(store_camera_state_set(s, "nope", "playing", NULL, &e), GC_ENOTFOUND);
    store_camera got;
    assert_int_equal(store_camera_get(s, "t", &got, &e), 0);
    assert_string_equal(got.state, "retrying");
    assert_string_equal(got.reason, "unauthorized");
    assert_null(got.sector_geojson);
    /* the list hands the stored sector: the same polygon as drawn anew */
    json_t *drawn = cameras_sector_geojson(&got), *listed = NULL;
    assert_int_equal(store_cameras_list(s, NULL, 0, 0, NULL, listed_sector, &listed, &e), 0);
    assert_non_null(listed);
    same_polygon(drawn, listed);
    json_decref(drawn);
    json_decref(listed);

    double lon, lat;
    at(&c, 10, 100, &lon, &lat);
    inc_actor who = {1, "op", ROLE_OPERATOR, NULL};
    json_t *in = json_pack("{s:s,s:s,s:f,s:f}", "category", "E01.02", "description", "垃圾", "lon",
                           lon, "lat", lat);
    json_t *row = NULL;
    bool existing;
    assert_int_equal(incident_report(s, NULL, &who, in, NULL, 1764400000, &row, &existing, &e), 0);
    json_decref(in);
    int64_t id = json_integer_value(json_object_get(row, "id"));
    json_decref(row);
    json_t *arr;
    assert_int_equal(store_incident_cameras(s, id, &arr, &e), 0);
    assert_int_equal(json_array_size(arr), 1);
    json_t *one = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(one, "camera_id")), "t");
    assert_string_equal(json_string_value(json_object_get(one, "media_state")), "pending");
    assert_true(fabs(json_real_value(json_object_get(one, "distance_m")) - 100) < 1e-3);
    json_decref(arr);
    assert_int_equal(store_incident_camera_media_set(s, id, "t", "snapshot", "/p/s.jpg", NULL, &e),
                     0);
    assert_int_equal(store_incident_cameras(s, id, &arr, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "media_state")),
                        "pending");
    json_decref(arr);
    assert_int_equal(store_incident_camera_media_set(s, id, "t", "clip", NULL, "no video then", &e),
                     0);
    assert_int_equal(store_incident_cameras(s, id, &arr, &e), 0);
    one = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(one, "media_state")), "partial");
    assert_string_equal(json_string_value(json_object_get(one, "snapshot")), "/p/s.jpg");
    json_decref(arr);
    assert_int_equal(store_incident_camera_media_set(s, id, "t", "clip", "/p/c.mp4", NULL, &e), 0);
    assert_int_equal(store_incident_cameras(s, id, &arr, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "media_state")),
                        "done");
    json_decref(arr);
    assert_int_equal(store_incident_camera_media_set(s, id, "x", "clip", "/p", NULL, &e),
                     GC_ENOTFOUND);
    assert_int_equal(store_incident_camera_media_set(s, id, "t", "gif", "/p", NULL, &e), GC_EINVAL);
    /* deleting the camera leaves the case's record */
    assert_int_equal(store_camera_delete(s, "t", &e), 0);
    assert_int_equal(store_incident_cameras(s, id, &arr, &e), 0);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    store_close(s);
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(db);
}

static void add_unit(index_builder *b, const char *layer, gc_level lv, const char *fid,
                     const char *name, const char *wkt)
{
    OGRGeometryH g = NULL;
    char *w = (char *)wkt;
    assert_int_equal(OGR_G_CreateFromWkt(&w, NULL, &g), OGRERR_NONE);
    size_t len = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = malloc(len);
    OGR_G_ExportToWkb(g, wkbNDR, wkb);
    OGR_G_DestroyGeometry(g);
    gc_err e = {0};
    assert_int_equal(index_builder_add(b, layer, lv, fid, name, fid, wkb, len, &e), 0);
    free(wkb);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Grid, community and street by id and name; null (present, not missing)
 * where no unit holds the spot, without an index, and for a name jansson
 * cannot take. */
static void test_place(void **st)
{
    (void)st;
    index_builder *b = index_builder_new();
    add_unit(b, "street", LEVEL_STREET, "s1", "街道", "POLYGON ((0 0, 2 0, 2 1, 0 1, 0 0))");
    add_unit(b, "community", LEVEL_COMMUNITY, "c1", "社区", "POLYGON ((0 0, 2 0, 2 1, 0 1, 0 0))");
    add_unit(b, "grid", LEVEL_GRID, "g1", "网格1", "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))");
    add_unit(b, "grid", LEVEL_GRID, "g2", "bad \xff name", "POLYGON ((1 0, 2 0, 2 1, 1 1, 1 0))");
    gc_index *ix = index_builder_finish(b);
    static const char *keys[] = {"grid_id",        "grid_name", "community_id",
                                 "community_name", "street_id", "street_name"};

    json_t *o = json_pack("{s:s}", "id", "cam");
    cameras_place(ix, 0.5, 0.5, o);
    assert_string_equal(str(o, "grid_id"), "g1");
    assert_string_equal(str(o, "grid_name"), "网格1");
    assert_string_equal(str(o, "community_id"), "c1");
    assert_string_equal(str(o, "community_name"), "社区");
    assert_string_equal(str(o, "street_id"), "s1");
    assert_string_equal(str(o, "street_name"), "街道");
    assert_string_equal(str(o, "id"), "cam");

    cameras_place(ix, 1.5, 0.5, o); /* over what was there */
    assert_string_equal(str(o, "grid_id"), "g2");
    assert_true(json_is_null(json_object_get(o, "grid_name")));
    assert_string_equal(str(o, "street_id"), "s1");

    const double outside[][2] = {{3, 3}, {NAN, 0.5}, {0.5, INFINITY}};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
        cameras_place(ix, outside[i][0], outside[i][1], o);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            assert_true(json_is_null(json_object_get(o, keys[k])));
    }
    json_object_clear(o);
    cameras_place(NULL, 0.5, 0.5, o);
    assert_int_equal(json_object_size(o), 6);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        assert_true(json_is_null(json_object_get(o, keys[k])));
    json_decref(o);
    index_free(ix);
}

int main(void)
{
    GDALAllRegister();
    geod_init(&G, 6378137.0, 1 / 298.257223563);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_across_north),     cmocka_unit_test(test_range_boundary),
        cmocka_unit_test(test_exactly_on_edges), cmocka_unit_test(test_fov_360),
        cmocka_unit_test(test_high_latitude),    cmocka_unit_test(test_polygon_matches_sees),
        cmocka_unit_test(test_url_redaction),    cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_records),          cmocka_unit_test(test_store_health_and_media),
        cmocka_unit_test(test_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
