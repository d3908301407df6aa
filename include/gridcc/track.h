/* track: what one worker's fixes say, computed without HTTP or SQL. The line
 * to draw at a map zoom, the places they stood still, the grids they passed
 * through in order, and patrol coverage: the share of a grid (or of its
 * buildings' footprints) within D metres of where they walked. Geometry goes
 * through GEOS's reentrant C API with one GEOS context per call, so every
 * function may be called from any thread at the same time.
 *
 * Fixes are EPSG:4326 lon/lat in degrees with t in ms since the epoch, sorted
 * by t (equal times allowed). Functions that take fixes reject a non-finite or
 * out-of-range coordinate and a time going back (GC_EINVAL, field "fixes",
 * the message names the fix's index). Metric work is done on a local
 * equirectangular plane around the data (WGS 84 ellipsoid degree lengths at
 * its centre latitude): east-west lengths at distance d north or south of the
 * centre are off by tan(lat) * d / 6371 km (7e-5 at 500 m at latitude 40);
 * a grid's area by far less, the errors north and south cancelling (a 100 m
 * square measures 10000 m2 to 0.03 m2). Tracks across the antimeridian or
 * near a pole are out of scope. */
#ifndef GRIDCC_TRACK_H
#define GRIDCC_TRACK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/err.h"

typedef struct track_pt {
    double lon, lat;
    int64_t t; /* ms since the epoch */
} track_pt;

/* The line to draw at web-map zoom z: a GeoJSON LineString (coordinates
 * rounded to 7 decimals, ~1 cm), Douglas-Peucker-simplified (GEOS) by the
 * ground size of one 256-px tile pixel at the track's mean latitude,
 * 156543.034 * cos(lat) / 2^z metres, measured in metres on the local plane
 * (a tolerance in degrees would simplify east-west 1/cos(lat) harder than
 * north-south). The endpoints are always kept. zoom < 0: no simplification,
 * every fix is a vertex. zoom > 22: GC_EINVAL (field "zoom").
 * One fix, or fixes all at one place: a LineString whose two positions are
 * that place (the type stays LineString for clients; maps draw nothing).
 * Zero fixes: GC_EINVAL. in_vertices/out_vertices (either may be NULL) get the
 * number of fixes and of positions in the result. Caller owns the result;
 * NULL on error. */
json_t *track_simplify(const track_pt *p, size_t n, int zoom, size_t *in_vertices,
                       size_t *out_vertices, gc_err *err);

#define TRACK_STOP_RADIUS_M 50.0
#define TRACK_STOP_MIN_MS 180000

/* Stops: maximal runs of consecutive fixes all within radius_m (great-circle)
 * of the run's first fix, lasting (last fix time - first fix time) at least
 * min_ms. Runs are taken greedily from the start: a stop ends at the first fix
 * outside the radius, and the next run starts there. Anchoring on the first
 * fix (not a moving centroid) keeps a slow walk from dragging a stop along.
 * radius_m <= 0 and min_ms <= 0 take the defaults above.
 * A JSON array, in time order, of {"lon","lat" (the mean of the run's fixes),
 * "from_ms","to_ms" (first and last fix), "fixes"}. Zero fixes: []. Caller
 * owns the result; NULL on error. */
json_t *track_stops(const track_pt *p, size_t n, double radius_m, int64_t min_ms, gc_err *err);

/* Visits: grid_ids[i] is fix i's grid (NULL outside every grid; borrowed).
 * A JSON array, in time order, of {"grid_id" (a string, or null for a run
 * outside every grid), "from_ms","to_ms" (first and last fix of the run),
 * "fixes"}; a new visit starts each time the grid changes, so A A NULL B B A
 * is four visits. Zero fixes: []. Caller owns the result; NULL on error. */
json_t *track_grids_visited(const track_pt *p, const char *const *grid_ids, size_t n, gc_err *err);

/* Coverage options. NULL, or a field left 0, means the default. */
typedef struct track_opts {
    double distance_m; /* D: ground within D of the walked line counts; 25 */
    int64_t gap_ms;    /* consecutive fixes further apart than gap_ms (5 min) */
    double gap_m;      /* or gap_m (500 m) are not joined by a line: nobody is
                        * credited for ground they skipped. Negative: never
                        * split on that one */
    double simplify_m; /* the line is Douglas-Peucker-simplified by this before
                        * buffering; default D/3, at most 10 m: within a
                        * phone's GPS accuracy (5-15 m), so it moves the line
                        * less than the fixes themselves are off. On
                        * bench_coverage's worker-day (4 m noise): 15 ms and
                        * ratio 0.61174, against 40 ms and 0.61522
                        * unsimplified and 23 ms and 0.61518 at D/4 (the line
                        * stops following the noise's zigzags above ~8 m);
                        * negative: not simplified */
} track_opts;

#define TRACK_DISTANCE_M 25.0
#define TRACK_GAP_MS 300000
#define TRACK_GAP_M 500.0

typedef struct track_cov {
    double covered_m2;     /* area within D of the track */
    double total_m2;       /* the grid's area, or the buildings' summed footprints */
    double ratio;          /* covered_m2 / total_m2, 0..1 (0 when total_m2 is 0) */
    int buildings;         /* track_coverage_buildings: footprints given */
    int buildings_touched; /* ... of which any part lies within D of the track */
} track_cov;

/* Patrol coverage of one grid: grid_wkb is a WKB Polygon or MultiPolygon in
 * EPSG:4326. The fixes are cut into parts at gaps (see track_opts); a part of
 * one fix, or of fixes all at one place, covers a disc of radius D. The line
 * is clipped to the grid's envelope grown by D (exact: nothing further away
 * can reach the grid), simplified, buffered by D (round caps and joins, 8
 * segments a quarter circle: arcs fall at most 0.5% of D short; a disc of
 * radius D counts 0.6% less than pi D^2), and intersected with the grid.
 * bench_coverage's 2,000-fix worker-day over 1 km2: 22-25 ms (the naive
 * buffer-and-intersect of the raw line: 85-130 ms, the same answer).
 * Zero fixes, bad WKB, a geometry that is not polygonal, not in degrees, or
 * empty: GC_EINVAL, field "grid" for the grid. An invalid grid polygon (a
 * self-intersecting ring) that GEOS cannot intersect fails with the reason
 * and the place in degrees ("grid: invalid polygon: Self-intersection at
 * 116.3305855,40.0004503"); layers are validated on import. */
int track_coverage(const track_pt *p, size_t n, const unsigned char *grid_wkb, size_t len,
                   const track_opts *o, track_cov *out, gc_err *err);

/* The same over a grid's building footprints (nb WKB Polygons or
 * MultiPolygons, EPSG:4326): total_m2 sums the footprints' areas, covered_m2
 * the parts of each within D (footprints that overlap count twice, in both),
 * buildings_touched counts those with any part within D. nb == 0 gives a zero
 * result. A bad footprint fails naming it: field "building I" (0-based). */
int track_coverage_buildings(const track_pt *p, size_t n, const unsigned char *const *wkbs,
                             const size_t *lens, size_t nb, const track_opts *o, track_cov *out,
                             gc_err *err);

#endif
