/* parse: see parse.h. Numbers go through GLib's locale-independent
 * readers; local time goes through one GTimeZone made once (mktime would
 * look at /etc/localtime on every call). */
#define _XOPEN_SOURCE 700
#include "gridcc/parse.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_2000 946684800000LL
#define S_10000 253402300800LL /* 10000-01-01T00:00:00Z */

/* ---- numbers ---- */

static int bad_number(const char *s, const char *field, gc_err *err, const char *range)
{
    if (!s || !*s)
        return gc_fail(err, GC_EINVAL, field, "%s is missing", field);
    return gc_fail(err, GC_EINVAL, field, "%s must be %s, not \"%.40s\"", field, range, s);
}

int gc_parse_double(const char *s, const char *field, double lo, double hi, double *out,
                    gc_err *err)
{
    char range[96];
    if (isinf(lo) && isinf(hi))
        snprintf(range, sizeof range, "a number");
    else
        snprintf(range, sizeof range, "a number from %g to %g", lo, hi);
    /* strtod also reads hex, "nan", "infinity" and leading blanks: none of
     * them is a number anyone writes in a field */
    if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return bad_number(s, field, err, range);
    char *end;
    errno = 0;
    double v = g_ascii_strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return bad_number(s, field, err, range);
    *out = v;
    return 0;
}

int gc_parse_int(const char *s, const char *field, int64_t lo, int64_t hi, int64_t *out,
                 gc_err *err)
{
    char range[96];
    snprintf(range, sizeof range, "a whole number from %lld to %lld", (long long)lo, (long long)hi);
    gint64 v;
    if (!s || !*s || strspn(s, "0123456789+-") != strlen(s) ||
        !g_ascii_string_to_signed(s, 10, lo, hi, &v, NULL))
        return bad_number(s, field, err, range);
    *out = v;
    return 0;
}

int gc_parse_doubles(const char *s, const char *field, double *out, int n, gc_err *err)
{
    char **parts = g_strsplit(s ? s : "", ",", n + 1);
    int rc = (int)g_strv_length(parts) == n ? 0 : GC_EINVAL;
    for (int i = 0; !rc && i < n; i++)
        rc = gc_parse_double(parts[i], field, -INFINITY, INFINITY, &out[i], NULL);
    g_strfreev(parts);
    if (rc)
        return gc_fail(err, GC_EINVAL, field,
                       "%s must be %d numbers separated by commas, not \"%.60s\"", field, n,
                       s ? s : "");
    return 0;
}

/* ---- times ---- */

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
        gint64 v; /* no overflow into the largest number */
        if (!g_ascii_string_to_signed(s, 10, 0, GC_TIME_MAX, &v, NULL))
            return false;
        *out = v;
        return true;
    }
    if (unix_of(g_date_time_new_from_iso8601(s, NULL), out) ||
        unix_of(g_date_time_new_from_iso8601(s, zone), out))
        return true;
    static const char *fmts[] = {"%Y%m%d",
                                 "%Y-%m-%d %H:%M:%S",
                                 "%Y-%m-%d %H:%M",
                                 "%Y-%m-%dT%H:%M",
                                 "%Y/%m/%d %H:%M:%S",
                                 "%Y/%m/%d %H:%M",
                                 "%m/%d/%Y %I:%M:%S %p",
                                 "%m/%d/%Y %H:%M:%S",
                                 "%m/%d/%Y %H:%M",
                                 "%Y-%m-%d",
                                 "%Y/%m/%d",
                                 "%m/%d/%Y"};
    for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
        struct tm tm = {0};
        const char *rest = strptime(s, fmts[i], &tm);
        if (rest && !*rest)
            return unix_of(g_date_time_new(zone, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                           tm.tm_hour, tm.tm_min, tm.tm_sec),
                           out);
    }
    return false;
}

bool gc_time_parse_device(const char *s, int64_t *ms)
{
    if (!s)
        return false;
    char buf[64];
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\r'))
        len--;
    if (!len || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    size_t digits = strspn(buf, "0123456789");
    int64_t v;
    if (digits && (!buf[digits] || buf[digits] == '.')) {
        if (digits >= 12 && !buf[digits]) { /* milliseconds */
            gint64 x;
            if (!g_ascii_string_to_signed(buf, 10, 0, S_10000 * 1000 - 1, &x, NULL))
                return false;
            v = x;
        } else { /* seconds, maybe with decimals */
            double d;
            bool frac_ok = !buf[digits] || strspn(buf + digits + 1, "0123456789") ==
                                               len - digits - 1; /* no exponent */
            if (digits > 11 || !frac_ok ||
                gc_parse_double(buf, "timestamp", 0, (double)S_10000 - 1, &d, NULL))
                return false;
            v = (int64_t)llround(d * 1000.0);
        }
    } else {
        static GTimeZone *utc;
        if (g_once_init_enter(&utc))
            g_once_init_leave(&utc, g_time_zone_new_utc());
        GDateTime *d = g_date_time_new_from_iso8601(buf, utc);
        if (!d)
            return false;
        v = g_date_time_to_unix(d) * 1000 + g_date_time_get_microsecond(d) / 1000;
        g_date_time_unref(d);
    }
    if (v < MS_2000 || v > GC_TIME_MAX * 1000 + 999)   /* before 2000, or no date shows it */
        return false;
    *ms = v;
    return true;
}
