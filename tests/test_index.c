/* index: shared edges and vertices (one documented rule), holes,
 * multipolygons, points outside, several layers, and agreement with GEOS on
 * a jittered tiling for many random points. */
#include <geos_c.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <stdio.h>

#include "gridcc/index.h"

static GEOSContextHandle_t G;

static void add_wkt(index_builder *b, const char *layer, gc_level lv, const char *fid,
                    const char *wkt)
{
    GEOSWKTReader *r = GEOSWKTReader_create_r(G);
    GEOSGeometry *g = GEOSWKTReader_read_r(G, r, wkt);
    assert_non_null(g);
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(G);
    size_t len;
    unsigned char *wkb = GEOSWKBWriter_write_r(G, w, g, &len);
    gc_err e = {0};
    assert_int_equal(index_builder_add(b, layer, lv, fid, fid, fid, wkb, len, &e), 0);
    GEOSFree_r(G, wkb);
    GEOSWKBWriter_destroy_r(G, w);
    GEOSGeom_destroy_r(G, g);
    GEOSWKTReader_destroy_r(G, r);
}

static const char *grid_at(const gc_index *ix, double x, double y)
{
    index_chain c;
    assert_int_equal(index_geotag(ix, x, y, &c), 0);
    return c.chain[LEVEL_GRID] ? c.chain[LEVEL_GRID]->fid : NULL;
}

/* four unit squares meeting at (1,1): SW, SE, NW, NE */
static gc_index *four_squares(void)
{
    index_builder *b = index_builder_new();
    add_wkt(b, "grid", LEVEL_GRID, "SW", "POLYGON((0 0,1 0,1 1,0 1,0 0))");
    add_wkt(b, "grid", LEVEL_GRID, "SE", "POLYGON((1 0,2 0,2 1,1 1,1 0))");
    add_wkt(b, "grid", LEVEL_GRID, "NW", "POLYGON((0 1,1 1,1 2,0 2,0 1))");
    add_wkt(b, "grid", LEVEL_GRID, "NE", "POLYGON((1 1,2 1,2 2,1 2,1 1))");
    return index_builder_finish(b);
}

static void test_shared_edges(void **st)
{
    gc_index *ix = four_squares();
    assert_string_equal(grid_at(ix, 0.5, 0.5), "SW");
    assert_string_equal(grid_at(ix, 1.5, 1.5), "NE");
    /* on a north-south edge: the feature to the east */
    assert_string_equal(grid_at(ix, 1.0, 0.5), "SE");
    assert_string_equal(grid_at(ix, 1.0, 1.5), "NE");
    /* on an east-west edge: the feature to the north */
    assert_string_equal(grid_at(ix, 0.5, 1.0), "NW");
    assert_string_equal(grid_at(ix, 1.5, 1.0), "NE");
    /* the shared vertex: north-east */
    assert_string_equal(grid_at(ix, 1.0, 1.0), "NE");
    /* the outer boundary: west and south edges are in, east and north out */
    assert_string_equal(grid_at(ix, 0.0, 0.5), "SW");
    assert_string_equal(grid_at(ix, 0.5, 0.0), "SW");
    assert_null(grid_at(ix, 2.0, 0.5));
    assert_null(grid_at(ix, 0.5, 2.0));
    /* every point along the shared lines lands in exactly one square */
    for (int i = 0; i <= 2000; i++) {
        double t = i / 1000.0;
        assert_non_null(grid_at(ix, 1.0, t < 2 ? t : 1.999));
        assert_non_null(grid_at(ix, t < 2 ? t : 1.999, 1.0));
    }
    index_free(ix);
}

static void test_outside_and_bad(void **st)
{
    gc_index *ix = four_squares();
    index_chain c;
    assert_int_equal(index_geotag(ix, 5, 5, &c), 0);
    for (int i = 0; i < LEVEL_CHAIN_N; i++)
        assert_null(c.chain[i]);
    assert_int_equal(c.nextra, 0);
    assert_int_equal(index_geotag(ix, -0.0000001, 0.5, &c), 0);
    assert_null(c.chain[LEVEL_GRID]);
    assert_int_equal(index_geotag(ix, NAN, 0.5, &c), GC_EINVAL);
    assert_int_equal(index_geotag(ix, 0.5, INFINITY, &c), GC_EINVAL);
    assert_int_equal(index_geotag(ix, 500, 0.5, &c), 0);
    index_free(ix);
}

static void test_holes_and_multipolygons(void **st)
{
    index_builder *b = index_builder_new();
    add_wkt(b, "grid", LEVEL_GRID, "LAKE",
            "MULTIPOLYGON(((0 0,10 0,10 10,0 10,0 0),(3 3,3 7,7 7,7 3,3 3)),"
            "((20 0,30 0,30 10,20 10,20 0)))");
    add_wkt(b, "grid", LEVEL_GRID, "ISLAND", "POLYGON((4 4,6 4,6 6,4 6,4 4))");
    gc_index *ix = index_builder_finish(b);
    assert_string_equal(grid_at(ix, 1, 1), "LAKE");
    assert_null(grid_at(ix, 3.5, 3.5));          /* in the hole, off the island */
    assert_string_equal(grid_at(ix, 5, 5), "ISLAND");
    assert_string_equal(grid_at(ix, 25, 5), "LAKE");   /* the second part */
    assert_null(grid_at(ix, 15, 5));              /* between the parts */
    /* the hole's west edge: its east side is the hole */
    assert_null(grid_at(ix, 3.0, 5));
    assert_string_equal(grid_at(ix, 7.0, 5), "LAKE");
    index_free(ix);
}

static void test_chain_and_extras(void **st)
{
    index_builder *b = index_builder_new();
    add_wkt(b, "district", LEVEL_DISTRICT, "D", "POLYGON((0 0,4 0,4 4,0 4,0 0))");
    add_wkt(b, "street", LEVEL_STREET, "S", "POLYGON((0 0,2 0,2 4,0 4,0 0))");
    add_wkt(b, "grid", LEVEL_GRID, "G", "POLYGON((0 0,1 0,1 1,0 1,0 0))");
    add_wkt(b, "building", LEVEL_BUILDING, "B", "POLYGON((0.2 0.2,0.4 0.2,0.4 0.4,0.2 0.4,0.2 0.2))");
    add_wkt(b, "dept-城管", LEVEL_DEPT, "C1", "POLYGON((0 0,4 0,4 2,0 2,0 0))");
    add_wkt(b, "dept-环卫", LEVEL_DEPT, "H1", "POLYGON((0 0,3 0,3 3,0 3,0 0))");
    add_wkt(b, "dedicated", LEVEL_DEDICATED, "CAMPUS", "POLYGON((0.1 0.1,0.9 0.1,0.9 0.9,0.1 0.9,0.1 0.1))");
    gc_index *ix = index_builder_finish(b);
    index_chain c;
    index_geotag(ix, 0.3, 0.3, &c);
    assert_string_equal(c.chain[LEVEL_DISTRICT]->fid, "D");
    assert_string_equal(c.chain[LEVEL_STREET]->fid, "S");
    assert_null(c.chain[LEVEL_COMMUNITY]);
    assert_string_equal(c.chain[LEVEL_GRID]->fid, "G");
    assert_string_equal(c.chain[LEVEL_BUILDING]->fid, "B");
    assert_null(c.chain[LEVEL_UNIT]);
    assert_int_equal(c.nextra, 3);
    index_geotag(ix, 3.5, 1.5, &c);
    assert_string_equal(c.chain[LEVEL_DISTRICT]->fid, "D");
    assert_null(c.chain[LEVEL_STREET]);
    assert_int_equal(c.nextra, 1);
    assert_string_equal(c.extra[0]->layer, "dept-城管");
    assert_int_equal(index_feature_count(ix), 7);
    index_free(ix);
}

/* a 12 x 12 tiling with jittered shared vertices: the index must agree with
 * GEOS wherever GEOS sees a point strictly inside one tile */
static void test_agrees_with_geos(void **st)
{
    enum { N = 12 };
    double vx[N + 1][N + 1], vy[N + 1][N + 1];
    srand(7);
    for (int i = 0; i <= N; i++)
        for (int j = 0; j <= N; j++) {
            double jx = (i > 0 && i < N) ? (rand() / (double)RAND_MAX - 0.5) * 0.004 : 0;
            double jy = (j > 0 && j < N) ? (rand() / (double)RAND_MAX - 0.5) * 0.004 : 0;
            vx[i][j] = 116.3 + i * 0.01 + jx;
            vy[i][j] = 39.9 + j * 0.01 + jy;
        }
    index_builder *b = index_builder_new();
    GEOSGeometry *tiles[N * N];
    const GEOSPreparedGeometry *prep[N * N];
    GEOSWKTReader *r = GEOSWKTReader_create_r(G);
    char fids[N * N][8];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            char wkt[512];
            snprintf(wkt, sizeof wkt, "POLYGON((%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g))",
                     vx[i][j], vy[i][j], vx[i + 1][j], vy[i + 1][j], vx[i + 1][j + 1],
                     vy[i + 1][j + 1], vx[i][j + 1], vy[i][j + 1], vx[i][j], vy[i][j]);
            int k = i * N + j;
            snprintf(fids[k], sizeof fids[k], "T%d", k);
            add_wkt(b, "grid", LEVEL_GRID, fids[k], wkt);
            tiles[k] = GEOSWKTReader_read_r(G, r, wkt);
            prep[k] = GEOSPrepare_r(G, tiles[k]);
        }
    gc_index *ix = index_builder_finish(b);
    int checked = 0, found = 0;
    for (int n = 0; n < 20000; n++) {
        double x = 116.3 + rand() / (double)RAND_MAX * 0.12;
        double y = 39.9 + rand() / (double)RAND_MAX * 0.12;
        const char *got = grid_at(ix, x, y);
        GEOSGeometry *p = GEOSGeom_createPointFromXY_r(G, x, y);
        int inside = -1, count = 0;
        for (int k = 0; k < N * N; k++)
            if (GEOSPreparedContains_r(G, prep[k], p) == 1) {
                inside = k;
                count++;
            }
        GEOSGeom_destroy_r(G, p);
        if (count == 1) {
            assert_non_null(got);
            assert_string_equal(got, fids[inside]);
            checked++;
        }
        found += got != NULL;
    }
    assert_true(checked > 19000);
    assert_int_equal(found, 20000);   /* the tiling covers its square: no point lost */
    for (int k = 0; k < N * N; k++) {
        GEOSPreparedGeom_destroy_r(G, prep[k]);
        GEOSGeom_destroy_r(G, tiles[k]);
    }
    GEOSWKTReader_destroy_r(G, r);
    index_free(ix);
}

static int setup(void **st)
{
    G = GEOS_init_r();
    return 0;
}

static int teardown(void **st)
{
    GEOS_finish_r(G);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_edges), cmocka_unit_test(test_outside_and_bad),
        cmocka_unit_test(test_holes_and_multipolygons), cmocka_unit_test(test_chain_and_extras),
        cmocka_unit_test(test_agrees_with_geos),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
