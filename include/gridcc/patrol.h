/* patrol: what follows from grid workers' durable fixes.
 * - Each worker's newest fix goes to the live map (positions coalesce there).
 * - The patrol rules: outside the assigned grids longer than N minutes
 *   (device time), silent longer than M minutes, SOS. Alerts are rows and
 *   change-log entries (topic "alerts"), opened and closed in one
 *   transaction on the loop's store.
 * Runs on the GLib loop. */
#ifndef GRIDCC_PATROL_H
#define GRIDCC_PATROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/live.h"
#include "gridcc/store.h"

typedef struct patrol_opts {
    double outside_min;       /* outside the assigned grids this long: alert; default 10 */
    double silent_min;        /* no fix this long: alert; default 15 */
} patrol_opts;

typedef struct patrol patrol;

/* Loads every worker's newest fix (and puts it on the live map), the
 * assigned grids and the open alerts; starts the silence check. s and l are
 * borrowed for the patrol's life. */
patrol *patrol_new(store *s, live *l, const patrol_opts *o);
/* Stops the silence check (shutdown). */
void patrol_stop(patrol *p);
void patrol_free(patrol *p);
/* A durable fix. One newer than the worker's newest moves them on the map
 * and meets the rules; a late one changes nothing here. */
void patrol_fix(patrol *p, const store_fix *f);
/* A worker's assigned grids changed (a JSON array of grid ids). */
void patrol_grids_changed(patrol *p, int64_t user_id, json_t *grids);
/* Workers known (with a fix, grids or an alert). */
size_t patrol_workers(const patrol *p);

#endif
