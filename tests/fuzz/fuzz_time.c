/* fuzz_time: the two time readers, gc_time_parse_in (API filters, Open311,
 * hotline orders, track files) and gc_time_parse_device (device times). Besides not
 * crashing: a time read is one GLib can show in any zone (GC_TIME_MIN..MAX),
 * so every caller can format it again; a zone-less text moves by exactly the zones'
 * offset between two zones; and each documented form of a time read back
 * gives the same instant (parse(format(t)) == t). */
#include "fuzz.h"
#include "gridcc/fixes.h"
#include "gridcc/parse.h"

#define MIN_S GC_TIME_MIN
#define MAX_S GC_TIME_MAX
#define MS_2000 946684800000LL

static GTimeZone *utc, *east8, *west12;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    utc = g_time_zone_new_utc();
    east8 = g_time_zone_new_offset(8 * 3600);
    west12 = g_time_zone_new_offset(-12 * 3600);
    return 0;
}

static void round_trip(int64_t t)
{
    if (t < 0 || t > MAX_S)
        return;
    GDateTime *d = g_date_time_new_from_unix_utc(t);
    CHECK(d, "no GDateTime for %lld", (long long)t);
    if (g_date_time_get_year(d) >= 1000) { /* %Y writes fewer digits below */
        static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%SZ",   "%Y-%m-%dT%H:%M:%S+00:00",
                                           "%Y-%m-%d %H:%M:%S",    "%Y/%m/%d %H:%M:%S",
                                           "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S"};
        for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
            char *s = g_date_time_format(d, fmts[i]);
            int64_t back = 0;
            CHECK(gc_time_parse_in(s, utc, &back) && back == t, "'%s' (%s) read as %lld, not %lld",
                  s, fmts[i], (long long)back, (long long)t);
            g_free(s);
        }
    }
    g_date_time_unref(d);
    char num[32];
    int64_t back = 0;
    snprintf(num, sizeof num, "%lld", (long long)t);
    if (strlen(num) != 8) /* eight digits are a date */
        CHECK(gc_time_parse_in(num, utc, &back) && back == t, "'%s' read as %lld", num,
              (long long)back);
}

static void fix_round_trip(int64_t ms)
{
    GDateTime *d = g_date_time_new_from_unix_utc(ms / 1000);
    CHECK(d, "no GDateTime for %lld ms", (long long)ms);
    char *base = g_date_time_format(d, "%Y-%m-%dT%H:%M:%S");
    g_date_time_unref(d);
    char s[64];
    int64_t back = 0;
    snprintf(s, sizeof s, "%s.%03dZ", base, (int)(ms % 1000));
    CHECK(gc_time_parse_device(s, &back) && back == ms, "'%s' read as %lld, not %lld", s, (long long)back,
          (long long)ms);
    g_free(base);
    snprintf(s, sizeof s, "%lld", (long long)ms);
    CHECK(gc_time_parse_device(s, &back) && back == ms, "'%s' read as %lld ms", s, (long long)back);
    if (ms / 1000 <= 99999999999LL) { /* seconds take up to 11 digits */
        snprintf(s, sizeof s, "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
        CHECK(gc_time_parse_device(s, &back) && back == ms, "'%s' read as %lld ms", s, (long long)back);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    int64_t a = 0, b = 0, c = 0;
    bool in_utc = gc_time_parse_in(s, utc, &a);
    bool in_east8 = gc_time_parse_in(s, east8, &b);
    bool local = gc_time_parse(s, &c);
    if (in_utc) {
        CHECK(a >= MIN_S && a <= MAX_S, "'%s' read as %lld s: no date has it", s, (long long)a);
        GDateTime *d = g_date_time_new_from_unix_utc(a), *far = NULL;
        CHECK(d, "'%s': %lld has no date", s, (long long)a);
        GTimeZone *zones[] = {east8, west12};
        for (size_t i = 0; i < G_N_ELEMENTS(zones); i++) {
            far = g_date_time_to_timezone(d, zones[i]);
            CHECK(far, "'%s': %lld cannot be shown in %s", s, (long long)a,
                  g_time_zone_get_identifier(zones[i]));
            g_date_time_unref(far);
        }
        g_date_time_unref(d);
        round_trip(a);
    }
    if (in_east8)
        CHECK(b >= MIN_S && b <= MAX_S, "'%s' read as %lld s: no date has it", s, (long long)b);
    if (local)
        CHECK(c >= MIN_S && c <= MAX_S, "'%s' read as %lld s: no date has it", s, (long long)c);
    /* the zone is used only for a text without one, and then wholly */
    if (in_utc && in_east8)
        CHECK(a == b || a - b == 8 * 3600, "'%s': %lld in UTC, %lld in +08", s, (long long)a,
              (long long)b);

    int64_t ms = 0;
    if (gc_time_parse_device(s, &ms)) {
        CHECK(ms >= MS_2000 && ms <= MAX_S * 1000 + 999, "'%s' read as %lld ms", s, (long long)ms);
        fix_round_trip(ms);
    }
    g_free(s);
    return 0;
}
