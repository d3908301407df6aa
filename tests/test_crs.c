/* crs: GCJ-02 and BD-09 against published reference points (the test
 * vectors of the widely used eviltransform implementations), round trips
 * under 0.5 m, points outside China unchanged, EPSG through PROJ. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "gridcc/crs.h"

#define DEG_TOL 5e-6   /* ~0.5 m: the implementations differ in their ellipsoid constant */

static void test_wgs_to_gcj_reference(void **st)
{
    /* wgsLat, wgsLng, gcjLat, gcjLng (Shanghai, Shenzhen, Beijing) */
    static const double t[][4] = {
        {31.1774276, 121.5272106, 31.17530398364597, 121.531541859215},
        {22.543847, 113.912316, 22.540796131694766, 113.9171764808363},
        {39.911954, 116.377817, 39.91334545536069, 116.38404722455657},
    };
    for (size_t i = 0; i < 3; i++) {
        double lon, lat;
        crs_wgs84_to_gcj02(t[i][1], t[i][0], &lon, &lat);
        assert_true(fabs(lon - t[i][3]) < DEG_TOL);
        assert_true(fabs(lat - t[i][2]) < DEG_TOL);
        crs_gcj02_to_wgs84(t[i][3], t[i][2], &lon, &lat);
        assert_true(crs_distance_m(lon, lat, t[i][1], t[i][0]) < 0.5);
    }
}

static void test_bd09_reference(void **st)
{
    /* Baidu's own geoconv documentation example, WGS-84 → BD-09:
     * 114.21892734521,29.575429778924 → 114.23074871271,29.57908361835.
     * (eviltransform's bd2wgs vectors come from an approximate inverse that
     * is ~10 m off the exact forward transform, so they are not used.) */
    double lon, lat;
    crs_wgs84_to_bd09(114.21892734521, 29.575429778924, &lon, &lat);
    assert_true(crs_distance_m(lon, lat, 114.23074871271, 29.57908361835) < 1.0);
    crs_bd09_to_wgs84(114.23074871271, 29.57908361835, &lon, &lat);
    assert_true(crs_distance_m(lon, lat, 114.21892734521, 29.575429778924) < 1.0);
    /* BD-09 is GCJ-02 shifted by about 0.0065/0.006 degrees */
    crs_gcj02_to_bd09(116.404, 39.915, &lon, &lat);
    assert_true(fabs(lon - 116.404 - 0.0065) < 0.001 && fabs(lat - 39.915 - 0.006) < 0.001);
}

/* fmax(x, NaN) is x: a round trip gone to NaN must not vanish from the worst
 * error, whether crs_distance_m hands the NaN on or (as today, through its
 * fmin) turns it into half the globe. */
static double worse(double worst, double d)
{
    return isfinite(d) ? fmax(worst, d) : INFINITY;
}

static void test_round_trips(void **st)
{
    double worst = 0;
    for (double lat = 18.5; lat < 53; lat += 1.37) {
        for (double lon = 74; lon < 134; lon += 1.91) {
            double a, b, c, d;
            crs_wgs84_to_gcj02(lon, lat, &a, &b);
            crs_gcj02_to_wgs84(a, b, &c, &d);
            worst = worse(worst, crs_distance_m(lon, lat, c, d));
            crs_wgs84_to_bd09(lon, lat, &a, &b);
            crs_bd09_to_wgs84(a, b, &c, &d);
            worst = worse(worst, crs_distance_m(lon, lat, c, d));
            crs_gcj02_to_bd09(lon, lat, &a, &b);
            crs_bd09_to_gcj02(a, b, &c, &d);
            worst = worse(worst, crs_distance_m(lon, lat, c, d));
        }
    }
    assert_true(worst < 0.5);
    assert_true(worst < 0.01); /* iteration goes far below the contract */
}

static void test_offset_is_real(void **st)
{
    /* in Beijing GCJ-02 moves a point by a few hundred metres */
    double lon, lat;
    crs_wgs84_to_gcj02(116.3, 40.0, &lon, &lat);
    double d = crs_distance_m(116.3, 40.0, lon, lat);
    assert_true(d > 100 && d < 1000);
}

static void test_outside_china_unchanged(void **st)
{
    double lon, lat;
    crs_wgs84_to_gcj02(-73.98, 40.75, &lon, &lat);   /* New York */
    assert_true(lon == -73.98 && lat == 40.75);
    crs_bd09_to_wgs84(2.35, 48.85, &lon, &lat);      /* Paris */
    assert_true(lon == 2.35 && lat == 48.85);
    assert_false(crs_in_china(139.7, 35.7));         /* Tokyo: east of the box */
    assert_true(crs_in_china(116.4, 39.9));
}

static void test_parse(void **st)
{
    crs_def d;
    gc_err e = {0};
    assert_int_equal(crs_parse(NULL, &d, &e), 0);
    assert_int_equal(d.kind, CRS_WGS84);
    assert_int_equal(crs_parse("EPSG:2263", &d, &e), 0);
    assert_int_equal(d.epsg, 2263);
    assert_int_equal(crs_parse("http://www.opengis.net/def/crs/EPSG/0/4490", &d, &e), 0);
    assert_int_equal(d.epsg, 4490);
    assert_int_equal(crs_parse("urn:ogc:def:crs:EPSG::4527", &d, &e), 0);
    assert_int_equal(crs_parse("GCJ-02", &d, &e), 0);
    assert_int_equal(d.kind, CRS_GCJ02);
    assert_int_equal(crs_parse("bd09", &d, &e), 0);
    assert_int_equal(d.kind, CRS_BD09);
    assert_int_equal(crs_parse("CRS84", &d, &e), 0);
    assert_int_equal(crs_parse("EPSG:999999", &d, &e), GC_EINVAL);
    assert_non_null(strstr(e.msg, "999999"));
    assert_int_equal(crs_parse("mars", &d, &e), GC_EINVAL);
    assert_string_equal(e.field, "crs");
    assert_int_equal(crs_parse("EPSG:", &d, &e), GC_EINVAL);
    assert_int_equal(crs_parse("EPSG:-5", &d, &e), GC_EINVAL);
}

static void test_proj_transforms(void **st)
{
    crs_def d;
    gc_err e = {0};
    /* Empire State Building in NY State Plane Long Island (US feet) */
    assert_int_equal(crs_parse("EPSG:2263", &d, &e), 0);
    crs_transform *t = crs_transform_new(&d, &e);
    assert_non_null(t);
    double x = 988213.0, y = 211957.0;
    assert_int_equal(crs_transform_to_wgs84(t, &x, &y, 1, NULL, &e), 0);
    assert_true(crs_distance_m(x, y, -73.9857, 40.7484) < 100);
    crs_transform_free(t);
    /* CGCS2000 3-degree Gauss-Krüger zone 39: easting carries the zone number */
    assert_int_equal(crs_parse("EPSG:4527", &d, &e), 0);
    t = crs_transform_new(&d, &e);
    x = 39500000.0;
    y = 4428000.0;
    assert_int_equal(crs_transform_to_wgs84(t, &x, &y, 1, NULL, &e), 0);
    assert_true(fabs(x - 117.0) < 1e-6);   /* central meridian of zone 39 */
    assert_true(y > 39.9 && y < 40.1);
    /* NaN and out-of-range input are refused, naming the point */
    double xs[2] = {39500000.0, NAN}, ys[2] = {4428000.0, 4428000.0};
    size_t bad = 99;
    assert_int_equal(crs_transform_to_wgs84(t, xs, ys, 2, &bad, &e), GC_EINVAL);
    assert_int_equal(bad, 1);
    crs_transform_free(t);
    crs_parse(NULL, &d, &e);
    t = crs_transform_new(&d, &e);
    x = 181;
    y = 10;
    assert_int_equal(crs_transform_to_wgs84(t, &x, &y, 1, NULL, &e), GC_EINVAL);
    assert_non_null(strstr(e.msg, "out of range"));
    crs_transform_free(t);
}

/* A transformation given back is handed out again for the same system (PROJ
 * takes up to ~0.3 s to make one), never to two users at once, never for
 * another system; its area of use comes with it. */
static void test_transforms_are_reused(void **st)
{
    crs_def a, b;
    gc_err e = {0};
    assert_int_equal(crs_parse("EPSG:22650", &a, &e), 0);
    assert_int_equal(crs_parse("EPSG:4527", &b, &e), 0);
    crs_transform *t1 = crs_transform_new(&a, &e);
    assert_non_null(t1);
    crs_transform *t2 = crs_transform_new(&a, &e);
    assert_non_null(t2);
    assert_ptr_not_equal(t1, t2); /* both held: two */
    double box[4];
    assert_true(crs_transform_area(t1, box));
    assert_true(box[0] < box[2] && box[1] < box[3]); /* Ontario (MTM zone 10) */
    assert_true(box[2] < 0 && box[1] > 0);
    crs_transform_free(t1);
    crs_transform *t3 = crs_transform_new(&b, &e);
    assert_ptr_not_equal(t3, t1); /* another system */
    crs_transform *t4 = crs_transform_new(&a, &e);
    assert_ptr_equal(t4, t1); /* the one given back */
    double x = 304800, y = 5000000;
    assert_int_equal(crs_transform_to_wgs84(t4, &x, &y, 1, NULL, &e), 0);
    assert_true(fabs(x + 79.5) < 1e-6 && y > 45 && y < 45.3);
    crs_transform_free(t2);
    crs_transform_free(t3);
    crs_transform_free(t4);
    crs_pool_clear();
    crs_parse(NULL, &a, &e);
    crs_transform *w = crs_transform_new(&a, &e);
    assert_false(crs_transform_area(w, box));
    crs_transform_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wgs_to_gcj_reference), cmocka_unit_test(test_bd09_reference),
        cmocka_unit_test(test_round_trips),          cmocka_unit_test(test_offset_is_real),
        cmocka_unit_test(test_outside_china_unchanged), cmocka_unit_test(test_parse),
        cmocka_unit_test(test_proj_transforms), cmocka_unit_test(test_transforms_are_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
