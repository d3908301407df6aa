/* fixes: see fixes.h. */
#include "gridcc/fixes.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "gridcc/timeparse.h"

#define MS_2000 946684800000LL

bool fix_time_parse(const char *s, int64_t *ms)
{
    if (!s)
        return false;
    while (*s == ' ')
        s++;
    if (!*s)
        return false;
    size_t digits = strspn(s, "0123456789");
    int64_t v;
    if (digits && (!s[digits] || s[digits] == '.')) {
        char *end;
        if (digits >= 12 && !s[digits]) {          /* milliseconds */
            v = g_ascii_strtoll(s, &end, 10);
        } else {                                   /* seconds, maybe with decimals */
            double d = g_ascii_strtod(s, &end);
            if (*end || !isfinite(d) || digits > 11)
                return false;
            v = (int64_t)llround(d * 1000.0);
        }
    } else {
        static GTimeZone *utc;
        if (g_once_init_enter(&utc))
            g_once_init_leave(&utc, g_time_zone_new_utc());
        GDateTime *d = g_date_time_new_from_iso8601(s, utc);
        if (!d)
            return false;
        v = g_date_time_to_unix(d) * 1000 + g_date_time_get_microsecond(d) / 1000;
        g_date_time_unref(d);
    }
    if (v < MS_2000 || v > GC_TIME_MAX * 1000 + 999) /* before 2000, or no date shows it */
        return false;
    *ms = v;
    return true;
}

int fix_to_wgs84(const crs_def *crs, double *lon, double *lat, gc_err *err)
{
    switch (crs->kind) {
    case CRS_WGS84:
        return 0;
    case CRS_GCJ02:
        crs_gcj02_to_wgs84(*lon, *lat, lon, lat);
        return 0;
    case CRS_BD09:
        crs_bd09_to_wgs84(*lon, *lat, lon, lat);
        return 0;
    default:
        return gc_fail(err, GC_EINVAL, "crs",
                       "positions are taken in EPSG:4326, gcj02 or bd09, not %s", crs->name);
    }
}

int fix_check_position(double lon, double lat, gc_err *err)
{
    if (!isfinite(lat) || lat < -90 || lat > 90)
        return gc_fail(err, GC_EINVAL, "lat", "latitude must be a number from -90 to 90");
    if (!isfinite(lon) || lon < -180 || lon > 180)
        return gc_fail(err, GC_EINVAL, "lon", "longitude must be a number from -180 to 180");
    if (lon == 0 && lat == 0)
        return gc_fail(err, GC_EINVAL, "lat", "0,0 is a tracker's \"no fix\", not a position");
    return 0;
}

void fix_geotag(const gc_index *ix, store_fix *f)
{
    f->grid_id = f->community_id = f->street_id = NULL;
    index_chain c;
    if (!ix || index_geotag(ix, f->lon, f->lat, &c))
        return;
    if (c.chain[LEVEL_GRID])
        f->grid_id = c.chain[LEVEL_GRID]->fid;
    if (c.chain[LEVEL_COMMUNITY])
        f->community_id = c.chain[LEVEL_COMMUNITY]->fid;
    if (c.chain[LEVEL_STREET])
        f->street_id = c.chain[LEVEL_STREET]->fid;
}

store_fix fix_blank(void)
{
    return (store_fix){.speed = NAN, .bearing = NAN, .altitude = NAN, .accuracy = NAN, .batt = NAN};
}
