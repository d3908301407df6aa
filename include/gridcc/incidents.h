/* incidents: the domain of 事件. A case is reported (by a grid worker's
 * photo, a resident, a department, the 12345 hotline or a camera), geotagged
 * to its grid chain and building, then driven around the closed loop
 *
 *   reported ─register→ registered ─dispatch→ dispatched ─handle→ handled
 *      └─reject→ rejected                          ↑                 │verify
 *                                                  └──send_back──────┤
 *   evaluated ←evaluate─ closed ←close─ verified ←───────────────────┘
 *
 * as an explicit state machine: each action names who may take it, each
 * step has a deadline from the time-limit table, and an overdue step
 * escalates one level up the chain (grid → community → street → district).
 * Rows travel as jansson objects (the store's incident columns); this module
 * holds the rules and knows nothing of HTTP. */
#ifndef GRIDCC_INCIDENTS_H
#define GRIDCC_INCIDENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gridcc/err.h"
#include "gridcc/index.h"
#include "gridcc/roles.h"
#include "gridcc/store.h"

typedef enum {
    INC_REPORTED, INC_REGISTERED, INC_REJECTED, INC_DISPATCHED, INC_HANDLED, INC_VERIFIED,
    INC_CLOSED, INC_EVALUATED, INC_NSTATUS
} inc_status;

typedef enum {
    ACT_REGISTER, ACT_REJECT, ACT_DISPATCH, ACT_HANDLE, ACT_VERIFY, ACT_SEND_BACK, ACT_CLOSE,
    ACT_EVALUATE, ACT_N
} inc_action;

/* A photo's GPS this far from the reported place flags the report. */
#define INCIDENT_MISMATCH_M 200.0

/* Escalation levels: who answers for an overdue case. */
enum { INC_LEVEL_GRID, INC_LEVEL_COMMUNITY, INC_LEVEL_STREET, INC_LEVEL_DISTRICT };

const char *incident_status_name(inc_status s);
const char *incident_action_name(inc_action a);
const char *incident_level_name(int level);   /* grid, community, street, district */
int incident_status_parse(const char *name);  /* -1 if unknown */
int incident_action_parse(const char *name);  /* -1 if unknown */
/* Open311's two states: closed for rejected, closed and evaluated. */
bool incident_status_is_closed(inc_status s);

/* The state the action leads to from `from`, or -1 when the loop has no such
 * edge. */
int incident_next(inc_status from, inc_action a);
/* The step whose deadline runs while a case is in s ("register" while
 * reported …, "close" while verified), or NULL for rejected, closed and
 * evaluated. */
const char *incident_step(inc_status s);

/* Who is acting; ROLE_NONE with no name is the system itself (the
 * deadline timer). */
typedef struct inc_actor {
    int64_t id;
    const char *name;
    gc_role role;
    const char *department;
} inc_actor;

/* What the rules need to know of a case. */
typedef struct inc_case {
    inc_status status;
    const char *department;   /* dispatched to, or NULL */
    int64_t reporter_id;      /* 0: no account (hotline, anonymous) */
    const char *source;
} inc_case;

/* May `who` take action a on case c? 0, or
 *   GC_ECONFLICT: the loop has no such edge; the message names the actions
 *                 that are legal from c's status (err->field is "action"),
 *   GC_EFORBIDDEN: the role may not. Operators register, reject, dispatch,
 *                 verify, send back and close; department users handle what
 *                 was dispatched to their department; a resident evaluates
 *                 their own case, and an operator records the evaluation of
 *                 a case no resident account reported (the 回访 call);
 *                 admins may do what operators do. */
int incident_check(const inc_case *c, inc_action a, const inc_actor *who, gc_err *err);
/* Comma-separated legal actions from s ("register,reject"), into buf. */
const char *incident_allowed(inc_status s, char *buf, size_t len);

/* ---- deadlines ---- */

/* The deadline of a step that begins at `start` and has `limit_s` seconds. */
int64_t incident_deadline(int64_t start, int64_t limit_s);
/* Milliseconds until the earliest deadline from now, clamped to
 * [0, max_ms]; max_ms when there is none (earliest <= 0). */
int64_t incident_timer_ms(int64_t earliest, int64_t now_ms, int64_t max_ms);
/* After escalating an overdue case at `now`: the next level (capped at
 * district) and the new deadline (the upper level gets the step's whole
 * limit again, counted from now, so a long outage escalates once). */
void incident_escalation(int level, int64_t now, int64_t limit_s, int *next_level,
                         int64_t *next_deadline);

/* ---- operations (each one store transaction) ---- */

/* A new report. in: category (code), description, location as lon/lat
 * (EPSG:4326) or x/y with crs, address, source, reporter {name, phone,
 * email}, props, external_id, photos (array of {hash, bytes, exif, part}),
 * flags, building_id (a building named by address, kept over the geotag's),
 * photo_position {lon, lat, part} (a photo's EXIF GPS: the place when none is
 * given, else a location_mismatch flag beyond 200 m). The case is geotagged with ix (may be NULL: not placed), its
 * deadline set, and its first history row written. idem_key: a client's
 * Idempotency-Key (or NULL). *out: the stored case; *existing true when the
 * key or (source, external_id) was seen before and nothing was written. */
int incident_report(store *s, const gc_index *ix, const inc_actor *who, json_t *in,
                    const char *idem_key, int64_t now, json_t **out, bool *existing,
                    gc_err *err);

/* Places a report by an address match: lon/lat and building_id into in,
 * and a flag (placed_by_address with the building and score, or unplaced
 * with the reason) appended to in.flags. True when placed. */
struct address_match;
bool incident_place_by_address(json_t *in, const struct address_match *m);

/* Takes action on a case (id: numeric id or case number). params: note,
 * department (dispatch), result (handle), rating and comment (evaluate),
 * photos, and "at" when now is a past time being recorded (history brought
 * in from elsewhere): then now may not be before the case was reported nor
 * before its last step (GC_EINVAL, field "at"). *out: the case after. */
int incident_act(store *s, const char *id, inc_action a, const inc_actor *who, json_t *params,
                 int64_t now, json_t **out, gc_err *err);

/* Escalates every case whose deadline is at or before now, once each; returns
 * how many (or a negative error). */
int incident_escalate_due(store *s, int64_t now, gc_err *err);

/* A case as the API shows it, with photos and (if with_history) the audit
 * trail. New reference. */
int incident_get(store *s, const char *id, bool with_history, json_t **out, gc_err *err);

/* The public face of a case (结果公开): no reporter, no contact data, phone
 * numbers in free text masked. New reference. */
json_t *incident_public(json_t *row);

/* A case as a GeoJSON Feature (geometry null while unplaced). New reference. */
json_t *incident_feature(json_t *row);

/* ---- photos ---- */

/* Checks a photo (a whole JPEG, at most 10 MiB) and stores it by content
 * hash under dir. photo gets {hash, bytes, exif, part} for the "photos" of
 * incident_report; lon/lat and has_gps when its EXIF has a position. */
#define INCIDENT_MAX_PHOTO_BYTES (10 << 20)
int incident_photo_store(const char *dir, const unsigned char *buf, size_t len,
                         const char *part, json_t **photo, bool *has_gps, double *lon,
                         double *lat, gc_err *err);

/* ---- statistics ---- */

/* Per unit of `level` (grid, community, street, district): counts by status
 * and category, on-time rate, mean and 90th-percentile handling time, overdue
 * count, satisfaction; over cases created in [from, to). New reference:
 * {"level":…, "from":…, "to":…, "units":[…]} */
int incident_stats(store *s, const char *level, int64_t from, int64_t to, int64_t now,
                   json_t **out, gc_err *err);
/* The 红旗网格 ranking: grids by score for the month [from, to). */
int incident_ranking(store *s, int64_t from, int64_t to, int64_t now, json_t **out,
                     gc_err *err);

#endif
