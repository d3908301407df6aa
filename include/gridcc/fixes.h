/* fixes: what every way a position arrives shares (the OsmAnd port, the batch
 * endpoint, track imports): reading a device's time, checking coordinates,
 * turning GCJ-02/BD-09 into WGS 84, and geotagging a fix to its grid. Knows
 * nothing of HTTP or SQL beyond the store_fix record it fills. */
#ifndef GRIDCC_FIXES_H
#define GRIDCC_FIXES_H

#include <stdbool.h>
#include <stdint.h>

#include "gridcc/crs.h"
#include "gridcc/err.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

/* A device time in ms since the epoch: seconds (up to 11 digits, decimals
 * allowed), milliseconds (12 or more digits), or ISO 8601 (a zone-less one is
 * UTC: devices send UTC). False for anything else, a time before 2000 or one
 * after year 9999. */
bool fix_time_parse(const char *s, int64_t *ms);
/* Converts lon/lat from crs to WGS 84 in place (EPSG codes other than 4326
 * are refused: trackers speak degrees). GC_EINVAL naming field "crs". */
int fix_to_wgs84(const crs_def *crs, double *lon, double *lat, gc_err *err);
/* Latitude/longitude in range, finite, and not exactly 0,0 (a tracker's "no
 * fix"). GC_EINVAL naming "lat" or "lon". */
int fix_check_position(double lon, double lat, gc_err *err);
/* Fills grid_id, community_id, street_id (borrowed from ix) from lon/lat. */
void fix_geotag(const gc_index *ix, store_fix *f);
/* A fix with every optional value unknown (NAN). */
store_fix fix_blank(void);

#endif
