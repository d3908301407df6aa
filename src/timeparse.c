/* timeparse: see timeparse.h. Local time goes through one GTimeZone made
 * once (mktime would look at /etc/localtime on every call). */
#define _XOPEN_SOURCE 700
#include "gridcc/timeparse.h"

#include <glib.h>
#include <string.h>
#include <time.h>

static GTimeZone *local_zone(void)
{
    static GTimeZone *local;
    if (g_once_init_enter(&local))
        g_once_init_leave(&local, g_time_zone_new_local());
    return local;
}

static bool unix_of(GDateTime *d, int64_t *out)
{
    if (!d)
        return false;
    int64_t t = g_date_time_to_unix(d);
    g_date_time_unref(d);
    if (t < GC_TIME_MIN || t > GC_TIME_MAX)
        return false;
    *out = t;
    return true;
}

bool gc_time_parse(const char *s, int64_t *out)
{
    return gc_time_parse_in(s, NULL, out);
}

bool gc_time_parse_in(const char *s, GTimeZone *zone, int64_t *out)
{
    if (!zone)
        zone = local_zone();
    if (!s || !*s)
        return false;
    size_t digits = strspn(s, "0123456789");
    if (!s[digits] && digits != 8) {
        /* a count past year 9999 (or past int64) has no date */
        guint64 v;
        if (!g_ascii_string_to_unsigned(s, 10, 0, GC_TIME_MAX, &v, NULL))
            return false;
        *out = (int64_t)v;
        return true;
    }
    if (unix_of(g_date_time_new_from_iso8601(s, NULL), out) ||
        unix_of(g_date_time_new_from_iso8601(s, zone), out))
        return true;
    static const char *fmts[] = {"%Y%m%d",            "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                                 "%Y-%m-%dT%H:%M",
                                 "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",  "%m/%d/%Y %I:%M:%S %p",
                                 "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",  "%Y-%m-%d",
                                 "%Y/%m/%d",          "%m/%d/%Y"};
    for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
        struct tm tm = {0};
        const char *rest = strptime(s, fmts[i], &tm);
        if (rest && !*rest)
            return unix_of(g_date_time_new(zone, tm.tm_year + 1900, tm.tm_mon + 1,
                                           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec),
                           out);
    }
    return false;
}
