/* track: coverage against areas worked out by hand on a 100 m square grid,
 * gaps that must not be credited, simplification by zoom, stops with their
 * times, visits, and degenerate input that must fail with a message. Places
 * are laid out in metres east/north of 116.33,40.0 (WGS 84 degree lengths
 * there), so every expected area is a sum of rectangles and circles. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gridcc/crs.h"
#include "gridcc/track.h"

#define LON0 116.33
#define LAT0 40.0
#define T0 1700000000000LL

/* an N-gon inscribed in a circle of radius r (GEOS's round buffer with 8
 * segments a quarter circle) */
#define DISC(r) (0.5 * 32 * (r) * (r)*sin(2 * M_PI / 32))

static void m2ll(double x, double y, double *lon, double *lat)
{
    const double a = 6378137.0, e2 = 6.69437999014e-3, d = M_PI / 180.0;
    double s = sin(LAT0 * d), w = 1 - e2 * s * s;
    *lon = LON0 + x / (d * a * cos(LAT0 * d) / sqrt(w));
    *lat = LAT0 + y / (d * a * (1 - e2) / (w * sqrt(w)));
}

static track_pt pt(double x, double y, int64_t t)
{
    track_pt p = {.t = t};
    m2ll(x, y, &p.lon, &p.lat);
    return p;
}

/* a little-endian WKB Polygon of one ring given in metres (closed here) */
static size_t rect_wkb(unsigned char *buf, double x0, double y0, double x1, double y1)
{
    double ring[5][2] = {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}};
    unsigned char *q = buf;
    uint32_t type = 3, nrings = 1, npts = 5;
    *q++ = 1;
    memcpy(q, &type, 4), q += 4;
    memcpy(q, &nrings, 4), q += 4;
    memcpy(q, &npts, 4), q += 4;
    for (int i = 0; i < 5; i++) {
        double lon, lat;
        m2ll(ring[i][0], ring[i][1], &lon, &lat);
        memcpy(q, &lon, 8), q += 8;
        memcpy(q, &lat, 8), q += 8;
    }
    return (size_t)(q - buf);
}

/* fixes every step metres along a straight line, one every 10 s */
static size_t walk(track_pt *p, double x0, double y0, double x1, double y1, double step, int64_t t0)
{
    double len = hypot(x1 - x0, y1 - y0);
    size_t n = (size_t)floor(len / step + 1e-9) + 1;
    for (size_t i = 0; i < n; i++) {
        double f = len > 0 ? i * step / len : 0;
        p[i] = pt(x0 + f * (x1 - x0), y0 + f * (y1 - y0), t0 + (int64_t)i * 10000);
    }
    return n;
}

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.3f, want %.3f +- %.3f", got, want, tol);
}

static unsigned char grid[128];
static size_t grid_len;

static int setup(void **st)
{
    grid_len = rect_wkb(grid, 0, 0, 100, 100);
    return 0;
}

static void test_coverage_middle(void **st)
{
    /* through the middle, edge to edge: a 100 x 50 band; the caps fall outside */
    track_pt p[32];
    size_t n = walk(p, 0, 50, 100, 50, 10, T0);
    track_opts o = {.distance_m = 25};
    track_cov c;
    gc_err err = {0};
    assert_int_equal(track_coverage(p, n, grid, grid_len, &o, &c, &err), 0);
    near(c.total_m2, 10000, 1);
    near(c.covered_m2, 5000, 5);
    near(c.ratio, 0.5, 0.001);

    /* from 30 to 70: a 40 x 50 band and two half discs, all inside */
    n = walk(p, 30, 50, 70, 50, 10, T0);
    assert_int_equal(track_coverage(p, n, grid, grid_len, &o, &c, &err), 0);
    near(c.covered_m2, 40 * 50 + DISC(25), 5);
    assert_true(c.covered_m2 < 40 * 50 + M_PI * 625); /* arcs are chords, inside */
}

static void test_coverage_outside(void **st)
{
    track_pt p[64];
    track_opts o = {.distance_m = 25};
    track_cov c;
    gc_err err = {0};
    /* 200 m north: nothing */
    size_t n = walk(p, -100, 300, 200, 300, 10, T0);
    assert_int_equal(track_coverage(p, n, grid, grid_len, &o, &c, &err), 0);
    assert_true(c.covered_m2 == 0 && c.ratio == 0);
    near(c.total_m2, 10000, 1);
    /* 20 m north of the top edge: a 5 m strip of the grid */
    n = walk(p, -100, 120, 200, 120, 10, T0);
    assert_int_equal(track_coverage(p, n, grid, grid_len, &o, &c, &err), 0);
    near(c.covered_m2, 500, 2);
    near(c.ratio, 0.05, 0.0002);
}

static void test_coverage_gap(void **st)
{
    /* seen west of the grid, then 10 minutes later east of it: no line across */
    track_pt p[2] = {pt(-50, 50, T0), pt(150, 50, T0 + 600000)};
    track_opts o = {.distance_m = 25};
    track_cov c;
    gc_err err = {0};
    assert_int_equal(track_coverage(p, 2, grid, grid_len, &o, &c, &err), 0);
    assert_true(c.covered_m2 == 0);
    /* the same two fixes joined (gaps off): the whole band */
    track_opts joined = {.distance_m = 25, .gap_ms = -1, .gap_m = -1};
    assert_int_equal(track_coverage(p, 2, grid, grid_len, &joined, &c, &err), 0);
    near(c.covered_m2, 5000, 5);
    /* a jump in space: 30 s apart but 600 m */
    track_pt q[2] = {pt(50, -300, T0), pt(50, 300, T0 + 30000)};
    assert_int_equal(track_coverage(q, 2, grid, grid_len, &o, &c, &err), 0);
    assert_true(c.covered_m2 == 0);
    track_opts far = {.distance_m = 25, .gap_m = 1000};
    assert_int_equal(track_coverage(q, 2, grid, grid_len, &far, &c, &err), 0);
    near(c.covered_m2, 5000, 5);
    /* the part before the gap still counts: a walk in, then a jump */
    track_pt r[16];
    size_t n = walk(r, 0, 20, 100, 20, 10, T0);
    r[n] = pt(50, 72, r[n - 1].t + 600000); /* a lone fix after the gap: a disc */
    assert_int_equal(track_coverage(r, n + 1, grid, grid_len, &o, &c, &err), 0);
    near(c.covered_m2, 100 * 45 + DISC(25), 6);
}

static void test_coverage_long_walk(void **st)
{
    /* up and down the middle line five times, a fix a metre, unsimplified:
     * hundreds of pieces buffered apart and merged, still the one band */
    enum { N = 501 };
    track_pt *p = malloc(sizeof *p * (2 * 4 * 80 + 1));
    for (int i = 0; i < N; i++) {
        int leg = i / 100, k = i % 100;
        p[i] = pt(leg % 2 ? 100 - k : k, 50, T0 + i * 1000LL);
    }
    track_opts o = {.distance_m = 25, .simplify_m = -1};
    track_cov c;
    gc_err err = {0};
    assert_int_equal(track_coverage(p, N, grid, grid_len, &o, &c, &err), 0);
    near(c.covered_m2, 5000, 5);
    /* round the inside twice, 10 m in from the edge: everything but the
     * square 35 m in (the inward offset of a square keeps sharp corners) */
    size_t n = 0;
    for (int lap = 0; lap < 2; lap++)
        for (int side = 0; side < 4; side++)
            for (int k = 0; k < 80; k++) {
                double x = side == 0 ? 10 + k : side == 1 ? 90 : side == 2 ? 90 - k : 10;
                double y = side == 0 ? 10 : side == 1 ? 10 + k : side == 2 ? 90 : 90 - k;
                p[n] = pt(x, y, T0 + (int64_t)n * 1000);
                n++;
            }
    p[n] = p[0];
    p[n].t = p[n - 1].t + 1000;
    n++;
    assert_int_equal(track_coverage(p, n, grid, grid_len, &o, &c, &err), 0);
    near(c.covered_m2, 10000 - 30 * 30, 2);
    free(p);
}

static void test_coverage_one_fix(void **st)
{
    track_pt p[3] = {pt(50, 50, T0), pt(50, 50, T0 + 1000), pt(50, 50, T0 + 2000)};
    track_cov c;
    gc_err err = {0};
    assert_int_equal(track_coverage(p, 1, grid, grid_len, NULL, &c, &err), 0);
    near(c.covered_m2, DISC(TRACK_DISTANCE_M), 1);
    /* standing still: the same disc */
    assert_int_equal(track_coverage(p, 3, grid, grid_len, NULL, &c, &err), 0);
    near(c.covered_m2, DISC(TRACK_DISTANCE_M), 1);
}

static void test_coverage_buildings(void **st)
{
    /* a walk along y = 0; D = 25: one building on the line, one straddling the
     * band's edge (half in), one 40 m off */
    unsigned char w[3][128];
    size_t lens[3];
    const unsigned char *wkbs[3] = {w[0], w[1], w[2]};
    lens[0] = rect_wkb(w[0], 10, -5, 20, 5);
    lens[1] = rect_wkb(w[1], 40, 20, 50, 30);
    lens[2] = rect_wkb(w[2], 70, 40, 80, 50);
    track_pt p[32];
    size_t n = walk(p, -50, 0, 150, 0, 10, T0);
    track_opts o = {.distance_m = 25};
    track_cov c;
    gc_err err = {0};
    assert_int_equal(track_coverage_buildings(p, n, wkbs, lens, 3, &o, &c, &err), 0);
    assert_int_equal(c.buildings, 3);
    assert_int_equal(c.buildings_touched, 2);
    near(c.total_m2, 300, 0.1);
    near(c.covered_m2, 150, 0.1);
    near(c.ratio, 0.5, 0.001);
    assert_int_equal(track_coverage_buildings(p, n, wkbs, lens, 0, &o, &c, &err), 0);
    assert_true(c.buildings == 0 && c.ratio == 0);
}

static void test_simplify_zoom(void **st)
{
    /* 600 fixes zig-zagging 2 m either side of a 3 km line, with a bend */
    enum { N = 600 };
    track_pt *p = malloc(sizeof *p * N);
    for (int i = 0; i < N; i++) {
        double x = i * 5.0, y = (i % 2 ? 2.0 : -2.0) + (x > 1500 ? (x - 1500) * 0.5 : 0);
        p[i] = pt(x, y, T0 + i * 4000LL);
    }
    gc_err err = {0};
    size_t in18, out18, in10, out10, in_all, out_all;
    json_t *l18 = track_simplify(p, N, 18, &in18, &out18, &err);
    json_t *l10 = track_simplify(p, N, 10, &in10, &out10, &err);
    json_t *all = track_simplify(p, N, -1, &in_all, &out_all, &err);
    assert_non_null(l18);
    assert_non_null(l10);
    assert_non_null(all);
    assert_int_equal(in18, N);
    assert_int_equal(out_all, N);
    /* z18: a pixel is ~0.46 m, the 4 m zig-zag stays; z10: ~117 m, only the bend */
    assert_true(out18 > N / 2);
    assert_true(out10 < out18);
    assert_true(out10 >= 3 && out10 <= 4);
    assert_string_equal(json_string_value(json_object_get(l10, "type")), "LineString");
    json_t *c = json_object_get(l10, "coordinates");
    assert_int_equal(json_array_size(c), out10);
    json_t *first = json_array_get(c, 0), *last = json_array_get(c, out10 - 1);
    near(json_real_value(json_array_get(first, 0)), p[0].lon, 6e-8);
    near(json_real_value(json_array_get(first, 1)), p[0].lat, 6e-8);
    near(json_real_value(json_array_get(last, 0)), p[N - 1].lon, 6e-8);
    near(json_real_value(json_array_get(last, 1)), p[N - 1].lat, 6e-8);
    json_decref(l18);
    json_decref(l10);
    json_decref(all);

    /* one place: a LineString of two equal positions */
    size_t out;
    for (size_t n = 1; n <= 3; n++) {
        track_pt one[3] = {p[0], p[0], p[0]};
        json_t *l = track_simplify(one, n, 15, NULL, &out, &err);
        assert_non_null(l);
        assert_int_equal(out, 2);
        assert_true(json_equal(json_array_get(json_object_get(l, "coordinates"), 0),
                               json_array_get(json_object_get(l, "coordinates"), 1)));
        json_decref(l);
    }
    free(p);
}

static void test_stops(void **st)
{
    /* walk east 2 min at 1.4 m/s, stand 5 min (3 m jitter), walk on 2 min;
     * a fix every 10 s */
    track_pt p[64];
    size_t n = 0;
    int64_t t = T0;
    for (int i = 0; i < 12; i++, t += 10000)
        p[n++] = pt(i * 14.0, 0, t);
    int64_t stand_from = t;
    double sx = 12 * 14.0;
    for (int i = 0; i <= 30; i++, t += 10000)
        p[n++] = pt(sx + (i % 3 - 1) * 3.0, (i % 2) * 3.0 - 1.5, t);
    int64_t stand_to = t - 10000;
    for (int i = 1; i <= 12; i++, t += 10000)
        p[n++] = pt(sx + i * 14.0, 0, t);
    gc_err err = {0};
    json_t *s = track_stops(p, n, 0, 0, &err);
    assert_non_null(s);
    assert_int_equal(json_array_size(s), 1);
    json_t *a = json_array_get(s, 0);
    /* anchored on the first fix the worker then stayed within 50 m of: the
     * approach fix 42 m before the spot, 30 s before they stopped */
    assert_int_equal(json_integer_value(json_object_get(a, "from_ms")), stand_from - 30000);
    assert_int_equal(json_integer_value(json_object_get(a, "to_ms")), stand_to);
    assert_int_equal(json_integer_value(json_object_get(a, "fixes")), 3 + 31);
    double lon = json_real_value(json_object_get(a, "lon"));
    double lat = json_real_value(json_object_get(a, "lat"));
    track_pt spot = pt(sx, 0, 0);
    assert_true(crs_distance_m(lon, lat, spot.lon, spot.lat) < 5);
    json_decref(s);

    /* asking for longer than the stop lasted finds none; a smaller radius
     * leaves the approach out */
    s = track_stops(p, n, 50, 300000 + 30000 + 1, &err);
    assert_int_equal(json_array_size(s), 0);
    json_decref(s);
    s = track_stops(p, n, 10, 0, &err);
    assert_int_equal(json_array_size(s), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(s, 0), "from_ms")),
                     stand_from);
    json_decref(s);
    /* walking only */
    s = track_stops(p, 12, 0, 0, &err);
    assert_int_equal(json_array_size(s), 0);
    json_decref(s);
    /* standing until the end of the track */
    s = track_stops(p + 12, 31, 0, 0, &err);
    assert_int_equal(json_array_size(s), 1);
    json_decref(s);
}

static void test_visits(void **st)
{
    const char *ids[6] = {"A", "A", NULL, "B", "B", "A"};
    track_pt p[6];
    for (int i = 0; i < 6; i++)
        p[i] = pt(i * 10.0, 0, T0 + i * 1000);
    gc_err err = {0};
    json_t *v = track_grids_visited(p, ids, 6, &err);
    assert_non_null(v);
    assert_int_equal(json_array_size(v), 4);
    const char *want[4] = {"A", NULL, "B", "A"};
    int fixes[4] = {2, 1, 2, 1}, first[4] = {0, 2, 3, 5};
    for (int i = 0; i < 4; i++) {
        json_t *x = json_array_get(v, i);
        json_t *g = json_object_get(x, "grid_id");
        if (want[i])
            assert_string_equal(json_string_value(g), want[i]);
        else
            assert_true(json_is_null(g));
        assert_int_equal(json_integer_value(json_object_get(x, "fixes")), fixes[i]);
        assert_int_equal(json_integer_value(json_object_get(x, "from_ms")), p[first[i]].t);
        assert_int_equal(json_integer_value(json_object_get(x, "to_ms")),
                         p[first[i] + fixes[i] - 1].t);
    }
    json_decref(v);
    v = track_grids_visited(p, ids, 0, &err);
    assert_int_equal(json_array_size(v), 0);
    json_decref(v);
}

static void test_degenerate(void **st)
{
    track_pt p[3] = {pt(10, 10, T0), pt(20, 10, T0 + 10000), pt(30, 10, T0 + 20000)};
    track_cov c;
    gc_err err = {0};
    /* no fixes */
    assert_int_equal(track_coverage(p, 0, grid, grid_len, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "no fixes"));
    assert_null(track_simplify(p, 0, 12, NULL, NULL, &err));
    assert_int_equal(err.code, GC_EINVAL);
    /* NaN and out-of-range coordinates, time going back */
    track_pt bad[3] = {p[0], p[1], p[2]};
    bad[1].lat = NAN;
    assert_int_equal(track_coverage(bad, 3, grid, grid_len, NULL, &c, &err), GC_EINVAL);
    assert_string_equal(err.field, "fixes");
    assert_non_null(strstr(err.msg, "fix 1"));
    assert_null(track_simplify(bad, 3, 12, NULL, NULL, &err));
    assert_null(track_stops(bad, 3, 0, 0, &err));
    bad[1] = p[1];
    bad[2].lon = 200;
    assert_null(track_stops(bad, 3, 0, 0, &err));
    assert_non_null(strstr(err.msg, "fix 2"));
    bad[2] = p[2];
    bad[2].t = T0;
    assert_int_equal(track_coverage(bad, 3, grid, grid_len, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "sort by time"));
    const char *ids[3] = {"A", "B", "C"};
    assert_null(track_grids_visited(bad, ids, 3, &err));
    assert_null(track_grids_visited(p, NULL, 3, &err));
    /* zoom out of range */
    assert_null(track_simplify(p, 3, 23, NULL, NULL, &err));
    assert_string_equal(err.field, "zoom");

    /* bad WKB: none, garbage, truncated, a point, an empty polygon */
    assert_int_equal(track_coverage(p, 3, NULL, 0, NULL, &c, &err), GC_EINVAL);
    assert_string_equal(err.field, "grid");
    unsigned char junk[40];
    memset(junk, 0xAB, sizeof junk);
    assert_int_equal(track_coverage(p, 3, junk, sizeof junk, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "not WKB"));
    assert_int_equal(track_coverage(p, 3, grid, grid_len - 9, NULL, &c, &err), GC_EINVAL);
    unsigned char point[21] = {1, 1, 0, 0, 0};
    double xy[2] = {LON0, LAT0};
    memcpy(point + 5, xy, 16);
    assert_int_equal(track_coverage(p, 3, point, sizeof point, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "Point"));
    unsigned char empty[9] = {1, 3, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(track_coverage(p, 3, empty, sizeof empty, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    /* metres, not degrees */
    unsigned char proj[128];
    memcpy(proj, grid, grid_len);
    double big = 500000;
    memcpy(proj + 13, &big, 8); /* the ring's first and last x */
    memcpy(proj + 13 + 64, &big, 8);
    assert_int_equal(track_coverage(p, 3, proj, grid_len, NULL, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "EPSG:4326"));
    /* a bow-tie grid: says what is wrong, and where in degrees */
    unsigned char bow[128];
    size_t bl = rect_wkb(bow, 0, 0, 100, 100);
    double swap[4];
    memcpy(swap, bow + 13 + 32, 32); /* points 2 and 3 swapped */
    memcpy(bow + 13 + 32, swap + 2, 16);
    memcpy(bow + 13 + 48, swap, 16);
    assert_int_equal(track_coverage(p, 3, bow, bl, NULL, &c, &err), GC_EINVAL);
    assert_string_equal(err.field, "grid");
    assert_non_null(strstr(err.msg, "Self-intersection at 116.33"));
    /* one bad building among good ones names it */
    const unsigned char *wkbs[2] = {grid, junk};
    size_t lens[2] = {grid_len, sizeof junk};
    assert_int_equal(track_coverage_buildings(p, 3, wkbs, lens, 2, NULL, &c, &err), GC_EINVAL);
    assert_string_equal(err.field, "building 1");
    assert_true(c.buildings == 0 && c.covered_m2 == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage_middle),  cmocka_unit_test(test_coverage_outside),
        cmocka_unit_test(test_coverage_gap),     cmocka_unit_test(test_coverage_long_walk),
        cmocka_unit_test(test_coverage_one_fix), cmocka_unit_test(test_coverage_buildings),
        cmocka_unit_test(test_simplify_zoom),    cmocka_unit_test(test_stops),
        cmocka_unit_test(test_visits),           cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
