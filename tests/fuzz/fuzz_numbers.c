/* fuzz_numbers: gc_parse_double, gc_parse_int and gc_parse_doubles, the one
 * reading of numbers in fields, queries and cells. The first byte picks a
 * range; the rest is the text. Besides not crashing: a number read is finite
 * and in range and reads back the same from "%.17g"; a whole number is also
 * read the same as a number; a refusal names its field. */
#include <math.h>

#include "fuzz.h"
#include "gridcc/parse.h"

static const struct {
    double lo, hi;
} ranges[] = {{-INFINITY, INFINITY}, {-90, 90}, {-180, 180}, {0, 100}, {0, 0}, {-1e308, 1e308}};

static const struct {
    int64_t lo, hi;
} iranges[] = {{INT64_MIN, INT64_MAX}, {0, 1000}, {-1, 1}, {1, G_MAXINT32}, {0, 0}};

static void check_refused(int rc, const gc_err *err, const char *field)
{
    CHECK(rc == GC_EINVAL, "rc %d", rc);
    CHECK(err->code == GC_EINVAL, "err.code %d", err->code);
    CHECK(!strcmp(err->field, field), "err.field '%s'", err->field);
    CHECK(err->msg[0], "a refusal without a message");
}

static void check_double(const char *s, double lo, double hi)
{
    double v = 12345, back = 0;
    gc_err err = {0};
    int rc = gc_parse_double(s, "x", lo, hi, &v, &err);
    if (rc) {
        check_refused(rc, &err, "x");
        CHECK(v == 12345, "a refusal wrote %g", v);
        return;
    }
    CHECK(isfinite(v) && v >= lo && v <= hi, "'%s' read as %g outside %g..%g", s, v, lo, hi);
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(buf, sizeof buf, "%.17g", v);
    gc_err e2 = {0};
    CHECK(!gc_parse_double(buf, "x", lo, hi, &back, &e2), "'%s' (from '%s') refused: %s", buf, s,
          e2.msg);
    CHECK(back == v, "'%s' read %.17g, written '%s', read back %.17g", s, v, buf, back);
}

static void check_int(const char *s, int64_t lo, int64_t hi)
{
    int64_t v = 12345, back = 0;
    gc_err err = {0};
    int rc = gc_parse_int(s, "n", lo, hi, &v, &err);
    if (rc) {
        check_refused(rc, &err, "n");
        CHECK(v == 12345, "a refusal wrote %lld", (long long)v);
        return;
    }
    CHECK(v >= lo && v <= hi, "'%s' read as %lld out of range", s, (long long)v);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    CHECK(!gc_parse_int(buf, "n", lo, hi, &back, NULL) && back == v, "'%s' does not read back",
          buf);
    double d;
    CHECK(!gc_parse_double(s, "d", -INFINITY, INFINITY, &d, NULL), "whole number '%s' is no number",
          s);
    CHECK(d == (double)v, "'%s': whole %lld, number %.17g", s, (long long)v, d);
}

static void check_doubles(const char *s, int n)
{
    double v[4] = {0};
    gc_err err = {0};
    int rc = gc_parse_doubles(s, "bbox", v, n, &err);
    if (rc) {
        check_refused(rc, &err, "bbox");
        return;
    }
    char **parts = g_strsplit(s, ",", -1);
    CHECK((int)g_strv_length(parts) == n, "'%s' read as %d numbers", s, n);
    for (int i = 0; i < n; i++) {
        double one;
        CHECK(isfinite(v[i]), "[%d] %g", i, v[i]);
        CHECK(!gc_parse_double(parts[i], "x", -INFINITY, INFINITY, &one, NULL) && one == v[i],
              "part %d '%s' read alone differs", i, parts[i]);
    }
    g_strfreev(parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned pick = data[0];
    char *s = fuzz_str(data + 1, size - 1);
    check_double(s, ranges[pick % G_N_ELEMENTS(ranges)].lo, ranges[pick % G_N_ELEMENTS(ranges)].hi);
    check_int(s, iranges[pick % G_N_ELEMENTS(iranges)].lo,
              iranges[pick % G_N_ELEMENTS(iranges)].hi);
    check_doubles(s, 1 + (int)(pick % 4));
    /* NULL is "missing", never a crash */
    check_double(NULL, -1, 1);
    g_free(s);
    return 0;
}
