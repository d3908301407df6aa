/* layers: every validation problem with a small file in tests/data named for
 * what it shows; reprojection (State Plane feet, CGCS2000 Gauss-Krüger,
 * GCJ-02); encodings; every supported format; atomic replacement. */
#include <gdal.h>
#include <geos_c.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gridcc/geotag.h"
#include "gridcc/layers.h"

typedef struct fixture {
    char *dir, *db;
    store *s;
    GString *msgs;
    layers_report rep;
    gc_err err;
} fixture;

static void on_msg(void *ud, layers_msg_kind kind, const char *text)
{
    g_string_append_printf(ud, "%s: %s\n",
                           kind == LAYERS_MSG_ERROR  ? "error"
                           : kind == LAYERS_MSG_SKIP ? "skipped"
                                                     : "warning",
                           text);
}

static char *data(const char *name)
{
    const char *d = getenv("GRIDCC_TEST_DATA");
    return g_build_filename(d ? d : "tests/data", name, NULL);
}

/* imports tests/data/NAME; opts may adjust the options first */
static int import(fixture *f, const char *name, const char *level, layers_import_opts *extra)
{
    layers_import_opts o = extra ? *extra : (layers_import_opts){0};
    char *path = data(name);
    o.path = path;
    o.level = level;
    o.message = on_msg;
    o.ud = f->msgs;
    g_string_truncate(f->msgs, 0);
    gc_err_clear(&f->err);
    int rc = layers_import(f->s, &o, &f->rep, &f->err);
    g_free(path);
    return rc;
}

#define assert_msg(f, needle)                                                                  \
    do {                                                                                       \
        if (!strstr((f)->msgs->str, needle) && !strstr((f)->err.msg, needle))                  \
            fail_msg("expected '%s' in:\n%s%s", needle, (f)->msgs->str, (f)->err.msg);         \
    } while (0)

static int setup(void **st)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = g_dir_make_tmp("gridcc-test-XXXXXX", NULL);
    f->db = g_build_filename(f->dir, "t.db", NULL);
    gc_err e = {0};
    if (store_open(f->db, &f->s, &e))
        return -1;
    f->msgs = g_string_new(NULL);
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    store_close(f->s);
    char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    g_free(cmd);
    g_free(f->db);
    g_free(f->dir);
    g_string_free(f->msgs, TRUE);
    free(f);
    return 0;
}

static int64_t count(fixture *f, const char *layer)
{
    store_query q = {.layer = layer};
    int64_t n = -1;
    store_features_query(f->s, &q, &n, NULL, NULL, NULL);
    return n;
}

static void ground(fixture *f)
{
    assert_int_equal(import(f, "ok-district.geojson", "district", NULL), 0);
}

static void test_ok_hierarchy(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "ok-streets.geojson", "street", NULL), 0);
    assert_int_equal(f->rep.features, 2);
    assert_int_equal(f->rep.errors, 0);
    assert_int_equal(f->rep.version, 1);
    assert_int_equal(count(f, "street"), 2);
    /* parents by overlap, ancestors from the top */
    store_layer L;
    assert_int_equal(store_layer_get(f->s, "street", &L, NULL), 0);
    assert_string_equal(L.level, "street");
    free(L.fields_json);
    /* by code: the same result */
    layers_import_opts o = {.parent_field = "parent_code"};
    assert_int_equal(import(f, "ok-streets.geojson", "street", &o), 0);
    assert_int_equal(f->rep.version, 2);
}

typedef struct wkb_reader {
    GEOSContextHandle_t h;
    GEOSWKBReader *rd;
    GEOSGeometry **g;
} wkb_reader;

static int read_wkb(void *ud, const store_feature *ft)
{
    wkb_reader *u = ud;
    *u->g = GEOSWKBReader_read_r(u->h, u->rd, ft->wkb, ft->wkb_len);
    return 1;
}

static void test_invalid_bowtie(void **st)
{
    fixture *f = *st;
    assert_int_equal(import(f, "invalid-bowtie.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "invalid-bowtie.geojson: feature #1 (id B1, name 蝴蝶)");
    assert_msg(f, "Self-intersection at 116.0500000 39.0500000");
    assert_int_equal(count(f, "district"), 0);
    layers_import_opts o = {.repair = true};
    assert_int_equal(import(f, "invalid-bowtie.geojson", "district", &o), 0);
    assert_int_equal(f->rep.repaired, 1);
    assert_msg(f, "repaired: Self-intersection");
    assert_int_equal(count(f, "district"), 1);
    /* what is stored is the repaired geometry, valid */
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSWKBReader *rd = GEOSWKBReader_create_r(h);
    store_query q = {.layer = "district", .want_wkb = true};
    GEOSGeometry *g = NULL;
    wkb_reader ud = {h, rd, &g};
    assert_int_equal(store_features_query(f->s, &q, NULL, read_wkb, &ud, NULL), 0);
    assert_non_null(g);
    assert_int_equal(GEOSisValid_r(h, g), 1);
    GEOSGeom_destroy_r(h, g);
    GEOSWKBReader_destroy_r(h, rd);
    GEOS_finish_r(h);
}

/* Slivers cut at an extract's edge: MakeValid leaves lines, no area. */
static void test_skip_unrepairable(void **st)
{
    fixture *f = *st;
    ground(f);
    /* --repair alone rejects the file, naming each sliver */
    layers_import_opts o = {.repair = true};
    assert_int_equal(import(f, "unrepairable-slivers.geojson", "street", &o), GC_EINVAL);
    assert_int_equal(f->rep.errors, 2);
    assert_int_equal(f->rep.skipped, 0);
    assert_msg(f, "error: ");
    assert_msg(f, "feature #2 (id X1, name 碎片): invalid geometry: Too few points in geometry "
                  "component at 116.1000000 39.0000000, and repair left no area (only a "
                  "LineString): --skip-unrepairable leaves such features out");
    assert_msg(f, "feature #4 (id X2, name 边角): invalid geometry:");
    assert_int_equal(count(f, "street"), 0);
    /* it narrows --repair, it does not stand alone */
    layers_import_opts bare = {.skip_unrepairable = true};
    assert_int_equal(import(f, "unrepairable-slivers.geojson", "street", &bare), GC_EINVAL);
    assert_msg(f, "--skip-unrepairable needs --repair");
    /* a dry run reports what the import would skip and stores nothing */
    o.skip_unrepairable = true;
    o.dry_run = true;
    assert_int_equal(import(f, "unrepairable-slivers.geojson", "street", &o), 0);
    assert_int_equal(f->rep.errors, 0);
    assert_int_equal(f->rep.skipped, 2);
    assert_int_equal(f->rep.skipped_by[LAYERS_SKIP_NO_AREA], 2);
    assert_int_equal(f->rep.features, 2);
    assert_string_equal(layers_skip_reason_text(LAYERS_SKIP_NO_AREA), "no area after repair");
    assert_null(strstr(f->msgs->str, "error: "));
    assert_msg(f, "skipped: ");
    assert_msg(f, "unrepairable-slivers.geojson: feature #2 (id X1, name 碎片): invalid geometry: "
                  "Too few points in geometry component at 116.1000000 39.0000000, and repair "
                  "left no area (only a LineString)\n");
    assert_msg(f, "feature #4 (id X2, name 边角): invalid geometry: Self-intersection");
    assert_int_equal(count(f, "street"), 0);
    /* stored: the two streets, which still tile D1: no gap though --topology is error */
    o.dry_run = false;
    assert_int_equal(import(f, "unrepairable-slivers.geojson", "street", &o), 0);
    assert_int_equal(f->rep.skipped, 2);
    assert_int_equal(f->rep.warnings, 0);
    assert_int_equal(f->rep.version, 1);
    assert_int_equal(count(f, "street"), 2);
    /* nothing but slivers: no empty layer replaces the stored one */
    assert_int_equal(import(f, "unrepairable-only.geojson", "street", &o), GC_EINVAL);
    assert_msg(f, "every feature (1) was skipped as unrepairable: nothing to import");
    assert_int_equal(count(f, "street"), 2);
}

static void test_empty_and_wrong_geometry(void **st)
{
    fixture *f = *st;
    assert_int_equal(import(f, "empty-geometry.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "feature #1 (id E1, name 空): empty geometry");
    assert_int_equal(import(f, "no-geometry.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "(id E2, name 无): no geometry");
    assert_int_equal(import(f, "wrong-type-line.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "wrong geometry type Line String: a district layer needs polygons");
}

static void test_duplicate_ids(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "duplicate-ids.geojson", "street", NULL), GC_EINVAL);
    assert_msg(f, "feature #2 (id S1, name 东街道): duplicate id S1 (also feature #1)");
}

static void test_missing_parent(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "missing-parent.geojson", "street", NULL), GC_EINVAL);
    assert_msg(f, "(id S9, name 远方街道): missing parent: it overlaps no district of layer district");
    layers_import_opts o = {.parent_field = "parent_code"};
    assert_int_equal(import(f, "missing-parent-code.geojson", "street", &o), GC_EINVAL);
    assert_msg(f, "(id S2, name 东街道): missing parent: district 'D404' is not in layer district");
    o.parent_field = "no_such_field";
    assert_int_equal(import(f, "ok-streets.geojson", "street", &o), GC_EINVAL);
    assert_msg(f, "no field 'no_such_field'");
}

static void test_overlap_gap_outside(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "overlap-siblings.geojson", "street", NULL), GC_EINVAL);
    assert_msg(f, "(id S1, name 西街道): overlaps its sibling S2 by");
    /* 0.01° x 0.2° at lat 39.1: ~19 million m² */
    assert_true(strstr(f->msgs->str, "by 1") != NULL);
    assert_int_equal(import(f, "gap-in-parent.geojson", "street", NULL), GC_EINVAL);
    assert_msg(f, "gap inside parent district D1:");
    assert_msg(f, "m² not covered by any street");
    assert_int_equal(import(f, "child-outside-parent.geojson", "street", NULL), GC_EINVAL);
    assert_msg(f, "(id S2, name 东街道): partly outside its parent district D1:");
    assert_msg(f, "(16.67%) outside");
    /* topology problems can be accepted as warnings */
    layers_import_opts o = {.topology_warn = true};
    assert_int_equal(import(f, "gap-in-parent.geojson", "street", &o), 0);
    assert_int_equal(f->rep.errors, 0);
    assert_true(f->rep.warnings >= 1);
}

static void test_bad_files(void **st)
{
    fixture *f = *st;
    assert_int_equal(import(f, "malformed.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "malformed.geojson: cannot read");
    assert_int_equal(import(f, "truncated.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "truncated.geojson: cannot read");
    assert_int_equal(import(f, "empty.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "empty.geojson: empty file");
    assert_int_equal(import(f, "no-such-file.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "no such file");
    assert_int_equal(import(f, "nan-coordinates.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "(id N1): coordinate is NaN or infinite");
    assert_int_equal(import(f, "out-of-range.geojson", "district", NULL), GC_EINVAL);
    assert_msg(f, "(id R1, name 越界): coordinates out of range");
    assert_int_equal(import(f, "ok-district.geojson", "county", NULL), GC_EINVAL);
    assert_msg(f, "unknown level 'county'");
    layers_import_opts o = {.srs = "EPSG:999999"};
    assert_int_equal(import(f, "ok-district.geojson", "district", &o), GC_EINVAL);
    assert_msg(f, "unknown CRS 'EPSG:999999'");
    assert_int_equal(count(f, "district"), 0);
}

static void test_crs_sources(void **st)
{
    fixture *f = *st;
    /* Shapefile in NY State Plane feet with .prj */
    assert_int_equal(import(f, "stateplane-feet.shp", "district", NULL), 0);
    /* without .prj, feet cannot pass for lon/lat */
    assert_int_equal(import(f, "no-prj-feet.shp", "district", NULL), GC_EINVAL);
    assert_msg(f, "no .prj beside the Shapefile");
    assert_msg(f, "pass --srs EPSG:N");
    layers_import_opts o = {.srs = "EPSG:2263"};
    assert_int_equal(import(f, "no-prj-feet.shp", "district", &o), 0);
    gc_index *ix = geotag_build_index(f->s, NULL);
    index_chain c;
    index_geotag(ix, -73.98, 40.75, &c);
    assert_non_null(c.chain[LEVEL_DISTRICT]);
    assert_string_equal(c.chain[LEVEL_DISTRICT]->fid, "NY1");
    index_free(ix);
    /* lon/lat without .prj: accepted with a warning */
    assert_int_equal(import(f, "no-prj-lonlat.shp", "district", NULL), 0);
    assert_msg(f, "EPSG:4326 is assumed");
    /* CGCS2000 Gauss-Krüger zone 39 */
    assert_int_equal(import(f, "cgcs2000-gk39.shp", "district", NULL), 0);
    ix = geotag_build_index(f->s, NULL);
    index_geotag(ix, 116.1, 39.1, &c);
    assert_non_null(c.chain[LEVEL_DISTRICT]);
    index_free(ix);
    /* GCJ-02 input is moved back to WGS-84: ~500 m in Beijing */
    o.srs = "gcj02";
    assert_int_equal(import(f, "ok-district.geojson", "district", &o), 0);
    ix = geotag_build_index(f->s, NULL);
    index_geotag(ix, 115.996, 39.1, &c);   /* outside in GCJ terms, inside in WGS */
    assert_non_null(c.chain[LEVEL_DISTRICT]);
    index_geotag(ix, 116.199, 39.1, &c);    /* inside in GCJ terms, outside in WGS */
    assert_null(c.chain[LEVEL_DISTRICT]);
    index_free(ix);
}

static int first_name(void *ud, const store_feature *ft)
{
    *(char **)ud = g_strdup(ft->name);
    return 1;
}

static char *stored_name(fixture *f, const char *layer)
{
    char *name = NULL;
    store_query q = {.layer = layer, .limit = 1};
    store_features_query(f->s, &q, NULL, first_name, &name, NULL);
    return name;
}

static void test_encodings(void **st)
{
    fixture *f = *st;
    assert_int_equal(import(f, "gbk-cpg.shp", "district", NULL), 0);
    char *n = stored_name(f, "district");
    assert_string_equal(n, "测试区");
    g_free(n);
    assert_int_equal(import(f, "gbk-no-cpg.shp", "district", NULL), GC_EINVAL);
    assert_msg(f, "not valid UTF-8: pass --encoding");
    layers_import_opts o = {.encoding = "GBK"};
    assert_int_equal(import(f, "gbk-no-cpg.shp", "district", &o), 0);
    n = stored_name(f, "district");
    assert_string_equal(n, "测试区");
    g_free(n);
    assert_int_equal(import(f, "gbk-attributes.csv", "district", NULL), GC_EINVAL);
    assert_msg(f, "line 2");
    assert_int_equal(import(f, "gbk-attributes.csv", "district", &o), 0);
    n = stored_name(f, "district");
    assert_string_equal(n, "测试区");
    g_free(n);
}

static void test_formats(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "ok-streets.gpkg", "street", NULL), 0);
    assert_int_equal(f->rep.features, 2);
    layers_import_opts sl = {.source_layer = "streets"};
    assert_int_equal(import(f, "ok-streets.gpkg", "street", &sl), 0);
    sl.source_layer = "roads";
    assert_int_equal(import(f, "ok-streets.gpkg", "street", &sl), GC_EINVAL);
    assert_msg(f, "no layer 'roads' (it has: streets)");
    assert_int_equal(import(f, "ok-streets.kml", "street", NULL), 0);
    assert_int_equal(f->rep.features, 2);
    layers_import_opts o = {.parent_field = "parent_code"};
    assert_int_equal(import(f, "csv-wkt.csv", "street", &o), 0);
    assert_int_equal(f->rep.features, 2);
    assert_int_equal(import(f, "holes-multipolygon.geojson", "dept:城管", NULL), 0);
    assert_string_equal(f->rep.layer, "dept-城管");
    /* a department layer under a name of its own still says its department */
    layers_import_opts named = {.layer_name = "chengguan-2026"};
    assert_int_equal(import(f, "holes-multipolygon.geojson", "dept:城管", &named), 0);
    gc_index *ix = geotag_build_index(f->s, NULL);
    index_chain c;
    index_geotag(ix, 116.01, 39.01, &c);
    assert_int_equal(c.nextra, 2);
    for (size_t i = 0; i < c.nextra; i++)
        assert_string_equal(c.extra[i]->department, "城管");
    index_free(ix);
}

static void test_atomic_replace(void **st)
{
    fixture *f = *st;
    ground(f);
    assert_int_equal(import(f, "ok-streets.geojson", "street", NULL), 0);
    int64_t seq = store_last_seq(f->s);
    /* a rejected import leaves version 1 and its features in place */
    assert_int_equal(import(f, "overlap-siblings.geojson", "street", NULL), GC_EINVAL);
    store_layer L;
    assert_int_equal(store_layer_get(f->s, "street", &L, NULL), 0);
    assert_int_equal(L.version, 1);
    free(L.fields_json);
    assert_int_equal(count(f, "street"), 2);
    assert_int_equal(store_last_seq(f->s), seq);
    /* dry run: checked, nothing stored */
    layers_import_opts o = {.dry_run = true};
    assert_int_equal(import(f, "ok-streets.geojson", "street", &o), 0);
    assert_int_equal(store_last_seq(f->s), seq);
    /* a second layer may not take a hierarchy level already held */
    layers_import_opts o2 = {.layer_name = "streets2"};
    assert_int_equal(import(f, "ok-streets.geojson", "street", &o2), GC_ECONFLICT);
    /* a good re-import replaces and logs one change */
    assert_int_equal(import(f, "ok-streets.geojson", "street", NULL), 0);
    assert_int_equal(f->rep.version, 2);
    assert_int_equal(store_last_seq(f->s), seq + 1);
}

int main(void)
{
    GDALAllRegister();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ok_hierarchy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_bowtie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_unrepairable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_wrong_geometry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_gap_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crs_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    GDALDestroy();
    return rc;
}
