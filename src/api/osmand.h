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

/* What a tracker sent, read but not yet checked against the registered
 * devices: the protocol's parser, apart so that it can be fuzzed. Strings
 * point into the input (the map, the JSON) or into the message itself. */
typedef struct osmand_msg {
    store_fix f;                  /* lon/lat NAN when absent; units converted (knots → m/s) */
    const char *id, *crs, *ts, *source;
    char tbuf[32];
    GHashTable *kv;               /* a flat JSON object's fields as text; osmand_msg_clear */
} osmand_msg;
/* OsmAnd's key=value fields (query, form): 0 or GC_EINVAL naming the field. */
int osmand_read_kv(GHashTable *m, osmand_msg *msg, gc_err *err);
/* One JSON position: Traccar Client's shape or OsmAnd's fields as an object. */
int osmand_read_json(json_t *o, osmand_msg *msg, gc_err *err);
void osmand_msg_clear(osmand_msg *msg);

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
