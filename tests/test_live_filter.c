/* The /live filter (live_filter_check): topics, bbox, unit ids at any level
 * (grid, grids, chain, unit), what passes when a change has no place, and the
 * field named for each bad subscription. Changes are written as the change
 * log holds them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "gridcc/live.h"

/* An incident as the change log carries it: a point in grid G1 of community
 * C1, street S1, district D1, building B1. */
static const char *INCIDENT =
    "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[116.33,40.00]},"
    "\"properties\":{\"case_no\":\"2026-000001\",\"grid_id\":\"G1\",\"community_id\":\"C1\","
    "\"street_id\":\"S1\",\"district_id\":\"D1\",\"building_id\":\"B1\"}}";

/* filter (subscribe message) and change data as JSON text; data may be NULL.
 * Returns what live_filter_check returns; err is filled on GC_EINVAL. */
static int check(const char *filter, const char *topic, const char *data, gc_err *err)
{
    json_error_t je;
    json_t *m = json_loads(filter, 0, &je);
    assert_non_null(m);
    json_t *d = NULL;
    if (data) {
        d = json_loads(data, 0, &je);
        assert_non_null(d);
    }
    gc_err_clear(err);
    int rc = live_filter_check(m, topic, d, err);
    json_decref(m);
    json_decref(d);
    return rc;
}

static int passes(const char *filter, const char *topic, const char *data)
{
    gc_err err;
    int rc = check(filter, topic, data, &err);
    if (rc < 0)
        fail_msg("filter %s refused: %s: %s", filter, err.field, err.msg);
    return rc;
}

static void test_topics(void **st)
{
    /* no topics: every topic there is */
    static const char *all[] = {"incidents", "positions", "alerts",     "cameras",
                                "layers",    "workers",   "categories", "time_limits"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        assert_int_equal(passes("{}", all[i], INCIDENT), 1);
    assert_int_equal(passes("{\"topics\":[\"incidents\"]}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"topics\":[\"incidents\"]}", "positions", INCIDENT), 0);
    assert_int_equal(passes("{\"topics\":[\"alerts\",\"layers\"]}", "layers", "{}"), 1);
    assert_int_equal(passes("{\"topics\":[\"alerts\",\"layers\"]}", "workers", "{}"), 0);
    /* a topic the bus does not know never passes, not even "everything" */
    assert_int_equal(passes("{}", "weather", INCIDENT), 0);
    assert_int_equal(passes("{}", NULL, INCIDENT), 0);
}

static void test_bbox(void **st)
{
    const char *in = "{\"topics\":[\"incidents\"],\"bbox\":[116.3,39.9,116.4,40.1]}";
    assert_int_equal(passes(in, "incidents", INCIDENT), 1);
    const char *east = "{\"bbox\":[116.34,39.9,116.4,40.1]}";
    assert_int_equal(passes(east, "incidents", INCIDENT), 0);
    const char *north = "{\"bbox\":[116.3,40.01,116.4,40.1]}";
    assert_int_equal(passes(north, "incidents", INCIDENT), 0);
    /* edges belong to the box */
    assert_int_equal(passes("{\"bbox\":[116.33,40.0,116.4,40.1]}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"bbox\":[116.0,39.0,116.33,40.0]}", "incidents", INCIDENT), 1);
    /* a polygon passes when its bounds meet the box, though no vertex is inside */
    const char *poly = "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
                       "[[[116.0,39.0],[117.0,39.0],[117.0,41.0],[116.0,41.0],[116.0,39.0]]]},"
                       "\"properties\":{}}";
    assert_int_equal(passes("{\"bbox\":[116.5,40.0,116.6,40.1]}", "layers", poly), 1);
    assert_int_equal(passes("{\"bbox\":[118.0,40.0,118.1,40.1]}", "layers", poly), 0);
    /* a change with no place is not filtered by place */
    assert_int_equal(passes(east, "categories", "{\"code\":\"E01\"}"), 1);
    assert_int_equal(passes(east, "categories", NULL), 1);
    /* "bbox": null is no bbox */
    assert_int_equal(passes("{\"bbox\":null}", "incidents", INCIDENT), 1);
}

static void test_unit_ids_at_any_level(void **st)
{
    assert_int_equal(passes("{\"grid\":\"G1\"}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"grid\":\"G2\"}", "incidents", INCIDENT), 0);
    assert_int_equal(passes("{\"grids\":[\"G2\",\"G1\"]}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"grids\":[\"G2\",\"G3\"]}", "incidents", INCIDENT), 0);
    /* a community, street, district or building id selects what lies in it */
    assert_int_equal(passes("{\"chain\":\"C1\"}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"unit\":\"S1\"}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"unit\":[\"D1\"]}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"unit\":\"B1\"}", "incidents", INCIDENT), 1);
    assert_int_equal(passes("{\"chain\":\"C2\"}", "incidents", INCIDENT), 0);
    /* ids match whole, not by prefix */
    assert_int_equal(passes("{\"grid\":\"G\"}", "incidents", INCIDENT), 0);
    /* ids given under several keys: any of them */
    assert_int_equal(passes("{\"grid\":\"G9\",\"chain\":\"C1\"}", "incidents", INCIDENT), 1);
    /* a change outside every unit (no ids) but with a place: not in G1 */
    const char *outside = "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                          "\"coordinates\":[116.9,40.5]},\"properties\":{\"grid_id\":null}}";
    assert_int_equal(passes("{\"grid\":\"G1\"}", "positions", outside), 0);
    /* ids on the object itself when it is no Feature */
    const char *bare = "{\"geometry\":{\"type\":\"Point\",\"coordinates\":[116.33,40.0]},"
                       "\"grid_id\":\"G1\"}";
    assert_int_equal(passes("{\"grid\":\"G1\"}", "alerts", bare), 1);
    /* a change with no place is not filtered by unit either */
    assert_int_equal(passes("{\"grid\":\"G2\"}", "layers", "{\"layer\":\"grid\"}"), 1);
}

static void test_topics_place_and_units_together(void **st)
{
    const char *f = "{\"topics\":[\"incidents\"],\"bbox\":[116.3,39.9,116.4,40.1],"
                    "\"grid\":\"G1\"}";
    assert_int_equal(passes(f, "incidents", INCIDENT), 1);
    assert_int_equal(passes(f, "alerts", INCIDENT), 0);
    const char *box_misses = "{\"bbox\":[116.34,39.9,116.4,40.1],\"grid\":\"G1\"}";
    assert_int_equal(passes(box_misses, "incidents", INCIDENT), 0);
    const char *grid_misses = "{\"bbox\":[116.3,39.9,116.4,40.1],\"grid\":\"G2\"}";
    assert_int_equal(passes(grid_misses, "incidents", INCIDENT), 0);
}

static void test_bad_filters_name_the_field(void **st)
{
    static const struct {
        const char *filter, *field;
    } bad[] = {
        {"{\"topics\":\"incidents\"}", "topics"},
        {"{\"topics\":[]}", "topics"},
        {"{\"topics\":[\"incidents\",\"weather\"]}", "topics"},
        {"{\"topics\":[7]}", "topics"},
        {"{\"bbox\":[116,40,115]}", "bbox"},
        {"{\"bbox\":[116,40,117,\"41\"]}", "bbox"},
        {"{\"bbox\":\"116,40,117,41\"}", "bbox"},
        {"{\"bbox\":[117,40,116,41]}", "bbox"}, /* west east of east */
        {"{\"bbox\":[116,41,117,40]}", "bbox"}, /* south north of north */
        {"{\"bbox\":[116,-91,117,40]}", "bbox"},
        {"{\"bbox\":[116,40,117,91]}", "bbox"},
        {"{\"grid\":[]}", "grid"},
        {"{\"grid\":\"\"}", "grid"},
        {"{\"grids\":[\"G1\",\"\"]}", "grids"},
        {"{\"chain\":5}", "chain"},
        {"{\"unit\":[\"C1\",null]}", "unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gc_err err;
        int rc = check(bad[i].filter, "incidents", INCIDENT, &err);
        if (rc != GC_EINVAL)
            fail_msg("%s: wanted GC_EINVAL, got %d", bad[i].filter, rc);
        if (strcmp(err.field, bad[i].field))
            fail_msg("%s: wanted field %s, got %s", bad[i].filter, bad[i].field, err.field);
        if (strlen(err.msg) < 10)
            fail_msg("%s: message too thin: %s", bad[i].filter, err.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_bbox),
        cmocka_unit_test(test_unit_ids_at_any_level),
        cmocka_unit_test(test_topics_place_and_units_together),
        cmocka_unit_test(test_bad_filters_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
