/* The time readers: gc_time_parse/gc_time_parse_in (what people and exports
 * write: API filters, Open311 dates, hotline orders) and gc_time_parse_device (what
 * devices send). Expected values were worked out apart from GLib, with
 * Python's zoneinfo. The local zone is pinned to Asia/Shanghai in main,
 * before the first call caches it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/fixes.h"
#include "gridcc/parse.h"

#define T_UTC 1795163400LL /* 2026-11-20T08:30:00Z */
#define T_CST 1795134600LL /* 2026-11-20 08:30 in Shanghai (+08:00) */
#define T_NY 1795181400LL  /* 2026-11-20 08:30 in New York (-05:00) */

/* gc_time_parse's answer for s, or this sentinel when it refuses s. */
#define REFUSED INT64_MIN

static int64_t local_t(const char *s)
{
    int64_t t = 42;
    if (!gc_time_parse(s, &t)) {
        assert_int_equal(t, 42); /* a refusal leaves the output alone */
        return REFUSED;
    }
    return t;
}

static int64_t zoned_t(const char *s, GTimeZone *z)
{
    int64_t t;
    return gc_time_parse_in(s, z, &t) ? t : REFUSED;
}

static int64_t fix_ms(const char *s)
{
    int64_t ms = 42;
    if (!gc_time_parse_device(s, &ms)) {
        assert_int_equal(ms, 42);
        return REFUSED;
    }
    return ms;
}

/* ---- gc_time_parse / gc_time_parse_in ---- */

static void test_unix_seconds(void **st)
{
    assert_int_equal(local_t("1764000000"), 1764000000);
    assert_int_equal(local_t("0"), 0);
    /* digits are seconds, up to the end of year 9999 (no overflow into the
     * largest number, no year 57,000 from milliseconds sent as seconds)... */
    assert_int_equal(local_t("253402214399"), GC_TIME_MAX);
    assert_int_equal(local_t("253402214400"), REFUSED);
    assert_int_equal(local_t("1764000000123"), REFUSED);
    assert_int_equal(local_t("9223372036854775807"), REFUSED);
    assert_int_equal(local_t("9999999999999999999999"), REFUSED);
    /* ...except eight, which are a date */
    assert_int_equal(local_t("20261120"), 1795104000);
    /* no sign, no decimals, no exponent, no hex, no blanks around */
    assert_int_equal(local_t("-1"), REFUSED);
    assert_int_equal(local_t("+5"), REFUSED);
    assert_int_equal(local_t("1764000000.5"), REFUSED);
    assert_int_equal(local_t("1e9"), REFUSED);
    assert_int_equal(local_t("0x10"), REFUSED);
    assert_int_equal(local_t(" 1764000000"), REFUSED);
    assert_int_equal(local_t("1764000000 "), REFUSED);
}

static void test_iso8601_with_zone(void **st)
{
    assert_int_equal(local_t("2026-11-20T08:30:00Z"), T_UTC);
    assert_int_equal(local_t("2026-11-20T08:30:00+08:00"), T_CST);
    assert_int_equal(local_t("2026-11-20T08:30:00+0800"), T_CST);
    assert_int_equal(local_t("2026-11-20T08:30:00+08"), T_CST);
    assert_int_equal(local_t("2026-11-20T08:30:00-05:00"), T_NY);
    assert_int_equal(local_t("20261120T083000Z"), T_UTC);
    /* seconds only: a fraction is dropped */
    assert_int_equal(local_t("2026-11-20T08:30:00.750Z"), T_UTC);
    /* a zone written in the text wins over the one given */
    GTimeZone *ny = g_time_zone_new_identifier("America/New_York");
    assert_non_null(ny);
    assert_int_equal(zoned_t("2026-11-20T08:30:00Z", ny), T_UTC);
    assert_int_equal(zoned_t("2026-11-20T08:30:00+08:00", ny), T_CST);
    g_time_zone_unref(ny);
}

static void test_zoneless_is_local_or_given(void **st)
{
    GTimeZone *ny = g_time_zone_new_identifier("America/New_York");
    assert_non_null(ny);
    static const char *same[] = {"2026-11-20T08:30:00", "2026-11-20T08:30", "2026-11-20 08:30",
                                 "2026/11/20 08:30", "2026/11/20 08:30:00"};
    for (size_t i = 0; i < G_N_ELEMENTS(same); i++) {
        assert_int_equal(local_t(same[i]), T_CST);
        assert_int_equal(zoned_t(same[i], ny), T_NY);
        assert_int_equal(zoned_t(same[i], NULL), T_CST); /* NULL: local */
    }
    assert_int_equal(local_t("2026-11-20 08:30:15"), T_CST + 15);
    /* New York's own offset in summer (-04:00), not a fixed one */
    assert_int_equal(zoned_t("2026-07-01 12:00", ny), 1782921600);
    /* NYC 311's exports: month first, 12-hour clock */
    assert_int_equal(local_t("01/03/2025 12:34:56 PM"), 1735878896);
    assert_int_equal(local_t("01/03/2025 12:34:56 AM"), 1735835696);
    assert_int_equal(zoned_t("01/03/2025 12:34:56 PM", ny), 1735925696);
    assert_int_equal(local_t("01/03/2025 12:34:56"), 1735878896);
    assert_int_equal(local_t("01/03/2025 12:34"), 1735878840);
    g_time_zone_unref(ny);
}

static void test_dates_are_midnight(void **st)
{
    GTimeZone *ny = g_time_zone_new_identifier("America/New_York");
    assert_int_equal(local_t("2026-11-20"), 1795104000);
    assert_int_equal(local_t("2026/11/20"), 1795104000);
    assert_int_equal(local_t("11/20/2026"), 1795104000);
    assert_int_equal(zoned_t("2026-11-20", ny), 1795150800);
    assert_int_equal(zoned_t("20261120", ny), 1795150800);
    assert_int_equal(local_t("2028-02-29"), 1835366400); /* a leap day */
    g_time_zone_unref(ny);
}

static void test_far_past_and_future(void **st)
{
    /* GLib's dates run from year 1 to 9999: a day in from both ends, so that
     * every zone can show the time again */
    assert_int_equal(local_t("0001-01-01T00:00:00Z"), REFUSED);
    assert_int_equal(local_t("0001-01-02T00:00:00Z"), GC_TIME_MIN);
    /* Shanghai kept local mean time (+08:05:43) until 1901 */
    assert_int_equal(local_t("1900-01-01"), -2209017943LL);
    assert_int_equal(local_t("9999-12-30"), 253402099200LL);
    assert_int_equal(local_t("9999-12-31"), 253402185600LL); /* 16:00 UTC the day before */
    assert_int_equal(local_t("9999-12-31T12:00:00Z"), REFUSED);
    assert_int_equal(local_t("10000-01-01"), REFUSED);
}

static void test_out_of_range_fields(void **st)
{
    static const char *bad[] = {
        "2026-13-01",
        "2026-00-10",
        "2026-02-30",
        "2026-02-29",
        "2026-11-31",
        "2026-11-20T24:00:00Z",
        "2026-11-20T23:60:00Z",
        "2026-11-20T08:30:00+25:00",
        "2026-11-20 25:00",
        "13/01/2025 10:00",
        "01/03/2025 00:34:56 AM",
        "01/03/2025 13:00:00 PM",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (local_t(bad[i]) != REFUSED)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_bad_input(void **st)
{
    int64_t t = 42;
    assert_false(gc_time_parse(NULL, &t));
    assert_false(gc_time_parse_in(NULL, NULL, &t));
    assert_int_equal(t, 42);
    static const char *bad[] = {"",
                                " ",
                                "abc",
                                "12abc",
                                "nan",
                                "inf",
                                "yesterday",
                                "2026-W47-5",
                                "2026-324",
                                "2026-11",
                                "2026-11-20T",
                                "2026-11-20 08",
                                "2026-11-20t08:30:00z",
                                "\xef\xbc\x91\xef\xbc\x97", /* fullwidth 17 */
                                "2026-11-20T08:30:00Z junk"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (local_t(bad[i]) != REFUSED)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* ---- gc_time_parse_device: milliseconds since the epoch ---- */

static void test_fix_seconds_and_ms(void **st)
{
    assert_int_equal(fix_ms("1764000000"), 1764000000000LL);
    assert_int_equal(fix_ms("1764000000123"), 1764000000123LL); /* 12+ digits: ms */
    assert_int_equal(fix_ms("99999999999"), 99999999999000LL);  /* 11 digits: still seconds */
    assert_int_equal(fix_ms(" 1764000000"), 1764000000000LL);   /* Traccar pads */
}

static void test_fix_decimals(void **st)
{
    assert_int_equal(fix_ms("1764000000.5"), 1764000000500LL);
    assert_int_equal(fix_ms("1764000000.123456"), 1764000000123LL);
    assert_int_equal(fix_ms("1764000000.9999"), 1764000001000LL); /* rounded, not cut */
    assert_int_equal(fix_ms("1764000000."), 1764000000000LL);
    assert_int_equal(fix_ms(".5"), REFUSED);
    assert_int_equal(fix_ms("1764000000.5.5"), REFUSED);
    assert_int_equal(fix_ms("1764000000123.5"), REFUSED); /* ms with decimals: 13 digits */
}

static void test_fix_iso8601(void **st)
{
    assert_int_equal(fix_ms("2026-11-20T08:30:00Z"), T_UTC * 1000);
    assert_int_equal(fix_ms("2026-11-20T08:30:00.250Z"), T_UTC * 1000 + 250);
    assert_int_equal(fix_ms("2026-11-20T08:30:00,5Z"), T_UTC * 1000 + 500);
    assert_int_equal(fix_ms("2026-11-20T08:30:00.250+08:00"), T_CST * 1000 + 250);
    /* no zone: UTC, whatever the local zone (devices send UTC) */
    assert_int_equal(fix_ms("2026-11-20T08:30:00"), T_UTC * 1000);
    assert_int_equal(fix_ms("2026-11-20 08:30:00"), T_UTC * 1000);
    /* a date or the forms people type are not device times */
    assert_int_equal(fix_ms("2026-11-20"), REFUSED);
    assert_int_equal(fix_ms("20261120"), REFUSED);
    assert_int_equal(fix_ms("2026/11/20 08:30"), REFUSED);
    assert_int_equal(fix_ms("01/03/2025 12:34:56 PM"), REFUSED);
}

static void test_fix_before_2000_refused(void **st)
{
    assert_int_equal(fix_ms("946684800"), 946684800000LL);
    assert_int_equal(fix_ms("946684799"), REFUSED);
    assert_int_equal(fix_ms("946684799.999"), REFUSED);
    assert_int_equal(fix_ms("2000-01-01T00:00:00Z"), 946684800000LL);
    assert_int_equal(fix_ms("1999-12-31T23:59:59.999Z"), REFUSED);
    assert_int_equal(fix_ms("0"), REFUSED);
    assert_int_equal(fix_ms("300000000000"), REFUSED); /* 12 digits: ms, 1979 */
    assert_int_equal(fix_ms("0001-01-01T00:00:00Z"), REFUSED);
}

static void test_fix_bad_input(void **st)
{
    int64_t ms = 42;
    assert_false(gc_time_parse_device(NULL, &ms));
    assert_int_equal(ms, 42);
    static const char *bad[] = {"",
                                " ",
                                "abc",
                                "12abc",
                                "-1764000000",
                                "+1764000000",
                                "nan",
                                "inf",
                                "1e12",
                                "0x10",
                                "1764000000.5x",
                                "2026-13-01T00:00:00Z",
                                "2026-11-20T24:00:00Z",
                                "2026-02-29T00:00:00Z",
                                "2026-11-20T08:30:00+25:00"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (fix_ms(bad[i]) != REFUSED)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* Regressions: exponents and overflow made year-57,000 times; a blank a
 * tracker appends was refused though a leading one was taken. */
static void test_fix_no_exponent_no_overflow(void **st)
{
    assert_int_equal(fix_ms("1764000000.5e3"), REFUSED);
    assert_int_equal(fix_ms("1764000000e3"), REFUSED);
    assert_int_equal(fix_ms("99999999999999999999999"), REFUSED);
    assert_int_equal(fix_ms("1764000000 "), 1764000000000LL);
    assert_int_equal(fix_ms("1764000000.25\r"), 1764000000250LL);
}

/* ---- numbers ---- */

static double num_ok(const char *s, double lo, double hi)
{
    double v = -1;
    gc_err e = {0};
    assert_int_equal(gc_parse_double(s, "x", lo, hi, &v, &e), 0);
    return v;
}

static void num_bad(const char *s, double lo, double hi, const char *says)
{
    double v = 42;
    gc_err e = {0};
    assert_int_equal(gc_parse_double(s, "lat", lo, hi, &v, &e), GC_EINVAL);
    assert_true(v == 42);                       /* untouched */
    assert_string_equal(e.field, "lat");        /* names the field */
    assert_non_null(strstr(e.msg, says));
}

static void test_numbers(void **st)
{
    assert_true(num_ok("40.0032", -90, 90) == 40.0032);
    assert_true(num_ok("-1e2", -INFINITY, INFINITY) == -100);
    assert_true(num_ok("+3", -INFINITY, INFINITY) == 3);
    assert_true(num_ok("90", -90, 90) == 90);   /* bounds are inside */
    num_bad("", -90, 90, "missing");
    num_bad(NULL, -90, 90, "missing");
    num_bad("91", -90, 90, "from -90 to 90");
    num_bad("nan", -INFINITY, INFINITY, "a number");
    num_bad("inf", -INFINITY, INFINITY, "a number");
    num_bad("1e999", -INFINITY, INFINITY, "a number");   /* overflow */
    num_bad("0x10", -INFINITY, INFINITY, "a number");    /* no hex */
    num_bad(" 1", -INFINITY, INFINITY, "a number");
    num_bad("1 ", -INFINITY, INFINITY, "a number");
    num_bad("1,5", -INFINITY, INFINITY, "a number");     /* no decimal comma, whatever the locale */
    num_bad("1.5.2", -INFINITY, INFINITY, "a number");
    num_bad("--1", -INFINITY, INFINITY, "a number");

    int64_t n = 7;
    gc_err e = {0};
    assert_int_equal(gc_parse_int("10000", "limit", 1, 10000, &n, &e), 0);
    assert_int_equal(n, 10000);
    assert_int_equal(gc_parse_int("10001", "limit", 1, 10000, &n, &e), GC_EINVAL);
    assert_string_equal(e.field, "limit");
    assert_int_equal(gc_parse_int("1.0", "limit", 1, 10000, &n, NULL), GC_EINVAL);
    assert_int_equal(gc_parse_int("99999999999999999999", "x", 0, INT64_MAX, &n, NULL), GC_EINVAL);
    assert_int_equal(gc_parse_int("-5", "x", -10, 10, &n, NULL), 0);
    assert_int_equal(n, -5);

    double bb[4];
    assert_int_equal(gc_parse_doubles("116.3,39.9,116.4,40", "bbox", bb, 4, NULL), 0);
    assert_true(bb[0] == 116.3 && bb[3] == 40);
    assert_int_equal(gc_parse_doubles("116.3,39.9,116.4", "bbox", bb, 4, &e), GC_EINVAL);
    assert_string_equal(e.field, "bbox");
    assert_int_equal(gc_parse_doubles("116.3,39.9,116.4,40,1", "bbox", bb, 4, NULL), GC_EINVAL);
    assert_int_equal(gc_parse_doubles("a,b,c,d", "bbox", bb, 4, NULL), GC_EINVAL);
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_seconds),
        cmocka_unit_test(test_iso8601_with_zone),
        cmocka_unit_test(test_zoneless_is_local_or_given),
        cmocka_unit_test(test_dates_are_midnight),
        cmocka_unit_test(test_far_past_and_future),
        cmocka_unit_test(test_out_of_range_fields),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_fix_seconds_and_ms),
        cmocka_unit_test(test_fix_decimals),
        cmocka_unit_test(test_fix_iso8601),
        cmocka_unit_test(test_fix_before_2000_refused),
        cmocka_unit_test(test_fix_bad_input),
        cmocka_unit_test(test_fix_no_exponent_no_overflow),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
