/* tracks_import: grid workers' recorded tracks (GPX, GeoLife .plt, CSV) into
 * fixes of one worker. Every format is read through OGR (GPX driver, CSV
 * driver); each point is checked, turned into WGS 84, geotagged and stored in
 * batches, and ends as exactly one of: imported, duplicate (the worker already
 * has a fix at that millisecond) or skipped with its reason and line or
 * feature number. Knows nothing of the terminal: the CLI prints the report. */
#ifndef GRIDCC_TRACKS_IMPORT_H
#define GRIDCC_TRACKS_IMPORT_H

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

#include "gridcc/crs.h"
#include "gridcc/err.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

/* Why a point was not taken. */
typedef enum {
    TRACKS_SKIP_NO_TIME,       /* no time at all */
    TRACKS_SKIP_BAD_TIME,      /* a time no reading understands */
    TRACKS_SKIP_OLD_TIME,      /* before 2000: a receiver without a clock */
    TRACKS_SKIP_NO_POSITION,   /* no point, or lat/lon that are not numbers */
    TRACKS_SKIP_BAD_POSITION,  /* out of range, or 0,0 */
    TRACKS_SKIP_N
} tracks_skip;

/* A short name of each reason: "no time", "latitude/longitude out of range" … */
const char *tracks_skip_name(tracks_skip why);

#define TRACKS_EXAMPLES 5   /* examples kept per reason */

typedef struct tracks_report {
    char format[8];             /* gpx, plt, csv */
    char layer[16];             /* gpx: track_points, route_points or waypoints */
    char note[256];             /* what the reader wants said ("no track points: …") */
    int64_t read, imported, duplicates, skipped, in_grid;
    int64_t skips[TRACKS_SKIP_N];
    char examples[TRACKS_SKIP_N][TRACKS_EXAMPLES][160];   /* "line 17: no time" */
    double seconds;
} tracks_report;

typedef void (*tracks_progress)(void *ud, const char *path, int64_t points);

typedef struct tracks_import_opts {
    int64_t user_id;             /* the worker; must exist */
    crs_def crs;                 /* of the files' coordinates: EPSG:4326, gcj02, bd09 */
    GTimeZone *tz;               /* zone-less CSV times (borrowed); NULL: local time */
    size_t batch;                /* fixes a transaction; 0: 10,000 */
    tracks_progress progress;    /* called after each batch; may be NULL */
    void *ud;
} tracks_import_opts;

/* The worker named by a numeric user id or a user name. GC_ENOTFOUND with a
 * message naming `who` when there is no such user. */
int tracks_worker_find(store *s, const char *who, store_user *out, gc_err *err);

/* Imports one file (format by its name: .gpx, .plt, else CSV; .gz is read
 * through /vsigzip/). ix (may be NULL) geotags. Returns GC_EINVAL when the
 * file cannot be read as a track at all (nothing stored), GC_EIO when the
 * store fails; rep is filled either way. */
int tracks_import_file(store *s, const gc_index *ix, const char *path,
                       const tracks_import_opts *o, tracks_report *rep, gc_err *err);

/* The report of one file, as the CLI prints it:
 *   PATH: FORMAT, N read, N imported, N duplicates, N skipped, N in a grid (T s, N fixes/s)
 *     note: …
 *     skipped N REASON: EXAMPLE; EXAMPLE …
 */
void tracks_report_print(const tracks_report *rep, const char *path, FILE *out);

#endif
