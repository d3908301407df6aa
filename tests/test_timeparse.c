/* timeparse and fixes: the time readers. Each documented form reads back as
 * the instant it names; a time no calendar date shows is refused, not read
 * as INT64_MAX or as a time GLib cannot format (both found by fuzz_time). */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gridcc/fixes.h"
#include "gridcc/parse.h"

static void test_forms(void **state)
{
    GTimeZone *utc = g_time_zone_new_utc();
    static const char *const forms[] = {
        "1763627400",          "2025-11-20T08:30:00Z",   "2025-11-20T16:30:00+08:00",
        "2025-11-20 08:30:00", "2025-11-20 08:30",       "2025/11/20 08:30:00",
        "2025-11-20T08:30",    "11/20/2025 08:30:00 AM", "11/20/2025 08:30"};
    for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
        int64_t t = 0;
        if (!gc_time_parse_in(forms[i], utc, &t) || t != 1763627400)
            fail_msg("'%s' read as %lld", forms[i], (long long)t);
    }
    int64_t t = 0;
    assert_true(gc_time_parse_in("20251120", utc, &t));
    assert_int_equal(t, 1763596800);
    g_time_zone_unref(utc);
}

static void test_digits_past_year_9999(void **state)
{
    int64_t t = 0;
    assert_false(gc_time_parse("188888888888888888888888888888888888888", &t));
    assert_false(gc_time_parse("9223372036854775808", &t));
    assert_false(gc_time_parse("253402300799", &t)); /* 9999-12-31T23:59:59Z */
    assert_true(gc_time_parse("253402214399", &t));  /* GC_TIME_MAX */
    assert_int_equal(t, GC_TIME_MAX);
}

static void test_year_1_in_an_eastern_zone(void **state)
{
    GTimeZone *east8 = g_time_zone_new_offset(8 * 3600);
    int64_t t = 0;
    /* 0001-01-01T00:00+08:00 lies before year 1 in UTC: no date shows it */
    assert_false(gc_time_parse_in("1-1-1", east8, &t));
    assert_false(gc_time_parse_in("0001-01-01T00:00:00+08:00", east8, &t));
    assert_true(gc_time_parse_in("0001-01-02T00:00:00Z", east8, &t));
    assert_int_equal(t, GC_TIME_MIN);
    g_time_zone_unref(east8);
}

static void test_device_time_past_year_9999(void **state)
{
    int64_t ms = 0;
    assert_false(gc_time_parse_device("99999999999999999999", &ms));
    assert_false(gc_time_parse_device("253402300800000", &ms));
    assert_true(gc_time_parse_device("1763627400123", &ms));
    assert_int_equal(ms, 1763627400123);
    assert_true(gc_time_parse_device("1763627400.5", &ms));
    assert_int_equal(ms, 1763627400500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_digits_past_year_9999),
        cmocka_unit_test(test_year_1_in_an_eastern_zone),
        cmocka_unit_test(test_device_time_past_year_9999),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
