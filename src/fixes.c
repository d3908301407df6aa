/* fixes: see fixes.h. */
#include "gridcc/fixes.h"

#include <glib.h>
#include <math.h>
#include <string.h>


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
