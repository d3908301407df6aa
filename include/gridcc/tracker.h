/* tracker: grid workers' positions as they arrive, and what follows from them.
 *
 * - The OsmAnd protocol (what Traccar Client and many trackers speak) on its
 *   own port: GET or POST /?id=&lat=&lon=&timestamp=&speed=&bearing=
 *   &altitude=&accuracy=&batt=&alarm=, the same as a form body, or Traccar
 *   Client's JSON body ({"device_id", "location": {"timestamp", "coords",
 *   "battery", …}}); POST /batch takes an array of either for phones that
 *   were offline. Each device is registered to a worker.
 * - A fix is answered 200 only once it is durable: fixes are written by a
 *   thread of their own with its own store connection, as many as arrived
 *   meanwhile in one transaction (one fsync), then answered from the loop.
 * - Durable fixes go to the live bus (newest a worker) and the patrol rules:
 *   outside the assigned grids longer than N minutes, silent longer than M
 *   minutes, SOS. Alerts are rows and change-log entries (topic "alerts").
 * Runs on the GLib loop; the writer thread touches only its own store. */
#ifndef GRIDCC_TRACKER_H
#define GRIDCC_TRACKER_H

#include <stdint.h>

#include "gridcc/app.h"

typedef struct tracker tracker;

tracker *tracker_new(app *a, const tracker_opts *o, gc_err *err);
/* Stops listening and refuses new fixes (503); what is queued is still
 * written. */
void tracker_stop(tracker *t);
/* Stops, writes what is queued, then frees. */
void tracker_free(tracker *t);
int tracker_port(const tracker *t);
/* The worker's assigned grids changed (the API wrote them). */
void tracker_grids_changed(tracker *t, int64_t user_id, json_t *grids);
/* A device was (re)registered: forget what was cached of it. */
void tracker_device_changed(tracker *t, const char *device_id);
/* Fixes from an authenticated worker (the API's batch endpoint): the same
 * path as the OsmAnd port. items: a JSON array; r answered when durable. */
void tracker_submit_json(tracker *t, http_req *r, json_t *items, int64_t user_id);

#endif
