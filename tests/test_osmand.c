/* The OsmAnd / Traccar Client reader (osmand_read_kv, osmand_read_json):
 * what a tracker sends, read into a fix before any device is looked up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "osmand.h"

static int read_query(const char *q, osmand_msg *m, gc_err *e)
{
    GHashTable *kv = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, NULL);
    assert_non_null(kv);
    int rc = osmand_read_kv(kv, m, e);
    /* the message borrows from the map: keep it alive with the message */
    m->kv = kv;
    return rc;
}

static void test_query(void **st)
{
    osmand_msg m = {0};
    gc_err e = {0};
    assert_int_equal(read_query("id=860123&lat=40.0045&lon=116.3323&timestamp=1764000000"
                                "&speed=10&bearing=90&altitude=50&accuracy=5&batt=80",
                                &m, &e),
                     0);
    assert_string_equal(m.id, "860123");
    assert_string_equal(m.ts, "1764000000");
    assert_string_equal(m.source, "osmand");
    assert_true(m.f.lat == 40.0045 && m.f.lon == 116.3323);
    assert_true(fabs(m.f.speed - 10 * 0.514444) < 1e-9);   /* knots → m/s */
    assert_true(m.f.bearing == 90 && m.f.altitude == 50 && m.f.accuracy == 5 && m.f.batt == 80);
    assert_false(m.f.sos);
    osmand_msg_clear(&m);
}

static void test_query_forms(void **st)
{
    osmand_msg m = {0};
    gc_err e = {0};
    /* location=lat,lon, deviceid, heading, alarm=sos */
    assert_int_equal(read_query("deviceid=d1&location=40.1,116.2&heading=45&alarm=sos", &m, &e), 0);
    assert_string_equal(m.id, "d1");
    assert_true(m.f.lat == 40.1 && m.f.lon == 116.2 && m.f.bearing == 45);
    assert_true(m.f.sos);
    osmand_msg_clear(&m);
    /* a field that is absent stays unknown */
    assert_int_equal(read_query("id=d1&lat=1&lon=2", &m, &e), 0);
    assert_true(isnan(m.f.speed) && isnan(m.f.batt));
    assert_null(m.ts);
    osmand_msg_clear(&m);
}

static void test_query_bad(void **st)
{
    static const struct {
        const char *q, *field;
    } bad[] = {{"id=d&lat=north&lon=1", "lat"}, {"id=d&lat=1&lon=0x10", "lon"},
               {"id=d&lat=1&lon=2&speed=nan", "speed"}, {"id=d&lat=1&lon=2&batt=1e999", "batt"},
               {"id=d&location=1", "location"},         {"id=d&location=a,b", "lat"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        osmand_msg m = {0};
        gc_err e = {0};
        assert_int_equal(read_query(bad[i].q, &m, &e), GC_EINVAL);
        assert_string_equal(e.field, bad[i].field);
        osmand_msg_clear(&m);
    }
}

static int read_json(const char *text, osmand_msg *m, gc_err *e)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    int rc = osmand_read_json(j, m, e);
    /* the strings of a Traccar body point into the JSON: read them first */
    if (!rc && m->id)
        m->id = g_intern_string(m->id);
    if (!rc && m->ts && m->ts != m->tbuf)
        m->ts = g_intern_string(m->ts);
    json_decref(j);
    return rc;
}

static void test_traccar_json(void **st)
{
    osmand_msg m = {0};
    gc_err e = {0};
    assert_int_equal(
        read_json("{\"device_id\":\"tc1\",\"location\":{\"timestamp\":\"2026-11-24T08:00:00Z\","
                  "\"coords\":{\"latitude\":40.0,\"longitude\":116.3,\"speed\":2.5,\"heading\":-1,"
                  "\"accuracy\":8},\"battery\":{\"level\":0.55},\"extras\":{\"sos\":true}}}",
                  &m, &e),
        0);
    assert_string_equal(m.id, "tc1");
    assert_string_equal(m.ts, "2026-11-24T08:00:00Z");
    assert_string_equal(m.source, "traccar-json");
    assert_true(m.f.lat == 40.0 && m.f.lon == 116.3);
    assert_true(m.f.speed == 2.5);          /* JSON speeds are m/s already */
    assert_true(isnan(m.f.bearing));        /* -1: unknown */
    assert_true(fabs(m.f.batt - 55) < 1e-9);/* a level 0..1 is a share */
    assert_true(m.f.sos);
    osmand_msg_clear(&m);
    /* a numeric timestamp is kept as text for the time reader */
    assert_int_equal(read_json("{\"id\":\"tc1\",\"location\":{\"timestamp\":1764000000123,"
                               "\"coords\":{\"latitude\":1,\"longitude\":2}}}",
                               &m, &e),
                     0);
    assert_string_equal(m.ts, "1764000000123");
    osmand_msg_clear(&m);
}

static void test_flat_json_and_bad(void **st)
{
    osmand_msg m = {0};
    gc_err e = {0};
    json_t *j = json_loads("{\"id\":\"d1\",\"lat\":40.5,\"lon\":116.5,\"timestamp\":1764000000}", 0,
                           NULL);
    assert_int_equal(osmand_read_json(j, &m, &e), 0);
    assert_string_equal(m.source, "batch");
    assert_string_equal(m.id, "d1");
    assert_string_equal(m.ts, "1764000000");
    assert_true(m.f.lat == 40.5 && m.f.lon == 116.5);
    osmand_msg_clear(&m);
    json_decref(j);

    static const struct {
        const char *json, *field;
    } bad[] = {{"[1,2]", "body"},
               {"{\"location\":{\"coords\":[]}}", "location.coords"},
               {"{\"location\":{\"coords\":{\"latitude\":\"40\"}}}", "location.coords.latitude"},
               {"{\"location\":{\"timestamp\":true,\"coords\":{}}}", "location.timestamp"},
               {"{\"id\":\"d\",\"lat\":\"x\",\"lon\":1}", "lat"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gc_err e2 = {0};
        j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        assert_int_equal(osmand_read_json(j, &m, &e2), GC_EINVAL);
        assert_string_equal(e2.field, bad[i].field);
        osmand_msg_clear(&m);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),       cmocka_unit_test(test_query_forms),
        cmocka_unit_test(test_query_bad),   cmocka_unit_test(test_traccar_json),
        cmocka_unit_test(test_flat_json_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
