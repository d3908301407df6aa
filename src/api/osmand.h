/* osmand: grid workers' positions as they arrive.
 *
 * The OsmAnd protocol (what Traccar Client and many trackers speak) on its
 * own port: GET or POST /?id=&lat=&lon=&timestamp=&speed=&bearing=
 * &altitude=&accuracy=&batt=&alarm=, the same as a form body, or Traccar
 * Client's JSON body ({"device_id", "location": {"timestamp", "coords",
 * "battery", …}}); POST /batch takes an array of either for phones that
 * were offline. Each device is registered to a worker; the protocol has no
 * other credential.
 *
 * A fix is answered 200 only once it is durable (the fix writer), and then
 * goes to the patrol rules and the live map (patrol). */
#ifndef GRIDCC_OSMAND_H
#define GRIDCC_OSMAND_H

#include "api.h"
#include "gridcc/app.h"

typedef struct osmand osmand;

/* Listens on o->port (0: 5055, -1: none, -2: any free port). */
osmand *osmand_new(api_env *e, GMainLoop *loop, const tracker_opts *o, gc_err *err);
/* Stops listening and refuses new fixes (503); what is queued is still written. */
void osmand_stop(osmand *t);
/* Stops, writes and answers what is queued, then frees. */
void osmand_free(osmand *t);
int osmand_port(const osmand *t);
/* A device was (re)registered: forget what was cached of it. */
void osmand_device_changed(osmand *t, const char *device_id);
/* Fixes from an authenticated worker (POST /api/positions): the same path
 * as the OsmAnd port. items: a JSON array (or {"locations": [...]});
 * user_id non-zero: every device must be that worker's. r is answered when
 * the fixes are durable. */
void osmand_submit_json(osmand *t, http_req *r, json_t *items, int64_t user_id);

#endif
