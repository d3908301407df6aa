/* store: the one place state lives. The embedded backend is a SpatiaLite file
 * in WAL mode; the interface speaks in domain terms (layers, features, users,
 * tokens, changes) and passes geometry as WKB in and GeoJSON out, so a
 * PostGIS backend can be a second implementation of this header.
 *
 * Every mutation appends a change-log row (seq, time, topic, id, JSON) in the
 * same transaction: the change log is the outbox of the live bus.
 * A store handle belongs to one thread at a time. */
#ifndef GRIDCC_STORE_H
#define GRIDCC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "gridcc/err.h"
#include "gridcc/roles.h"

typedef struct store store;

/* Opens (creating if absent) and upgrades the schema to the newest version. */
int store_open(const char *path, store **out, gc_err *err);
/* Same, but upgrades no further than max_version (tests: an "older build"). */
int store_open_version(const char *path, int max_version, store **out, gc_err *err);
void store_close(store *s);
/* How long a write waits for another connection's write lock before it fails
 * with GC_EBUSY (10 s unless set): the daemon's loop cannot wait that long. */
void store_set_busy_timeout(store *s, int ms);
int store_schema_version(store *s);
int store_latest_version(void);
const char *store_path(const store *s);

/* ---- change log ---- */
int64_t store_last_seq(store *s);
typedef struct store_change {
    int64_t seq;
    const char *ts, *topic, *id, *data;   /* borrowed for the callback's duration */
} store_change;
typedef int (*store_change_cb)(void *ud, const store_change *c);
int store_changes_since(store *s, int64_t since, int limit, store_change_cb cb, void *ud,
                        gc_err *err);
/* True when another connection (another process) committed since the last call. */
bool store_changed_elsewhere(store *s);
/* fn(ud) is called on this connection's thread right after each of its
 * commits (not inside a transaction: it may not use the store; it schedules
 * whatever reads the new changes). One hook a store; NULL removes it. */
void store_on_commit(store *s, void (*fn)(void *ud), void *ud);

/* ---- layers ---- */
typedef struct store_layer {
    char name[128];
    char level[32];
    char department[64];
    char title[256];
    int version;
    int64_t count;
    char *fields_json;     /* owned; JSON array of property names */
    double bbox[4];
    bool has_bbox;
    char source[512];
    char source_crs[64];
    char imported_at[32];
} store_layer;

/* What lies under one unit of any level (a grid, a community …): its
 * buildings and the people and households they hold (a building's units'
 * figures when it has units, else its own), and its buildings per use
 * (住宅, 商业 …) as a JSON object the caller owns. */
typedef struct store_unit_profile {
    int64_t buildings, units;
    double households, population;
    json_t *by_use;
} store_unit_profile;
int store_unit_profile_get(store *s, const char *unit_id, store_unit_profile *out, gc_err *err);
/* *out is an array the caller frees with store_layers_free. */
int store_layers_list(store *s, store_layer **out, size_t *n, gc_err *err);
void store_layers_free(store_layer *l, size_t n);
/* GC_ENOTFOUND if absent. Caller frees out->fields_json. */
int store_layer_get(store *s, const char *name, store_layer *out, gc_err *err);
/* The layer holding a hierarchy level (district … unit, dedicated), if any. */
int store_layer_for_level(store *s, const char *level, store_layer *out, gc_err *err);

typedef struct store_feature_in {
    const char *fid, *name, *code;
    const char *parent_layer, *parent_fid;
    const char *ancestors_json;   /* JSON array, may be NULL */
    const char *props_json;       /* JSON object, may be NULL */
    const unsigned char *wkb;     /* (Multi)Polygon, EPSG:4326 */
    size_t wkb_len;
} store_feature_in;

/* Asked just before the commit; a non-zero answer rolls everything back and
 * is returned. Lets a caller validate in parallel with the write. */
typedef int (*store_approve_cb)(void *ud);

/* Replaces a layer's features and metadata in one transaction: readers see the
 * old version or the new one, never a mix; on failure the old one stays. The
 * version is bumped; meta->version is set to the new one. approve may be NULL. */
int store_layer_replace(store *s, store_layer *meta, const store_feature_in *f, size_t n,
                        store_approve_cb approve, void *ud, gc_err *err);

/* ---- feature reads ---- */
typedef struct store_feature {
    int64_t uid;
    const char *layer, *level, *fid, *name, *code, *parent_layer, *parent_fid;
    const char *ancestors_json, *props_json;
    const char *geojson;                  /* geometry as GeoJSON text, or NULL */
    const unsigned char *wkb;             /* geometry as WKB, or NULL */
    size_t wkb_len;
} store_feature;  /* everything borrowed for the callback's duration */

typedef int (*store_feature_cb)(void *ud, const store_feature *f);

typedef struct store_query {
    const char *layer;          /* required */
    const char *fid;            /* one feature, or NULL */
    bool has_bbox;
    double bbox[4];             /* EPSG:4326 minx, miny, maxx, maxy */
    size_t nprops;
    const char *const *prop_keys;   /* "id", "name", "code", "level", "parent" or a property */
    const char *const *prop_vals;
    int64_t limit, offset;
    bool want_wkb;              /* WKB instead of GeoJSON geometry */
    int precision;              /* GeoJSON decimals; 0 means 7 */
} store_query;

/* Calls cb for each matching feature in uid order. *matched (if not NULL)
 * gets the number matching regardless of limit/offset. */
int store_features_query(store *s, const store_query *q, int64_t *matched, store_feature_cb cb,
                         void *ud, gc_err *err);

/* ---- users and tokens ---- */
typedef struct store_user {
    int64_t id;
    char name[128];
    gc_role role;
    char department[64];          /* role department: which one; else "" */
    char pwhash[256];
    bool disabled;
} store_user;

/* department: for role "department" (required), else NULL. */
int store_user_add(store *s, const char *name, gc_role role, const char *department,
                   const char *pwhash, int64_t *id, gc_err *err);
int store_user_get(store *s, const char *name, store_user *out, gc_err *err);
/* hash: 32 bytes. expires_at: Unix seconds, 0 for never. */
int store_token_add(store *s, int64_t user_id, const unsigned char *hash, int64_t expires_at,
                    const char *label, gc_err *err);
/* Revokes one token (sign-out); GC_ENOTFOUND when no such token. */
int store_token_revoke(store *s, const unsigned char *hash, gc_err *err);
/* GC_ENOTFOUND for unknown or expired tokens and disabled users. */
int store_token_lookup(store *s, const unsigned char *hash, store_user *out, gc_err *err);

/* ---- transactions ----
 * A domain operation that writes several rows wraps them in one transaction:
 * store_begin nests (a savepoint inside an open transaction), so an
 * operation can also run inside a caller's batch. */
int store_begin(store *s, gc_err *err);
/* On failure the transaction or savepoint is still open: roll it back. */
int store_commit(store *s, gc_err *err);
void store_rollback(store *s);
/* Appends a change-log row (data: a JSON object) inside the open transaction. */
int store_change_append(store *s, const char *topic, const char *id, json_t *data, gc_err *err);

/* ---- group commit ----
 * Many small writes share one transaction, so one fsync makes a whole batch
 * durable. Writes are queued from the GLib main loop's thread; the batch runs
 * from an idle callback on that loop. Each write runs in a savepoint of its
 * own inside the batch's transaction (write: 0 to keep its rows, non-zero to
 * have them undone); done then learns whether the COMMIT made it durable
 * (commit_err NULL) or not. A write's failure never undoes the others. */
typedef struct store_group store_group;
typedef int (*store_group_write)(store *s, void *ud);
typedef void (*store_group_done)(void *ud, int write_rc, const gc_err *commit_err);
store_group *store_group_new(store *s);
void store_group_add(store_group *g, store_group_write write, store_group_done done, void *ud);
/* Runs what is queued now (also called by the idle callback and by free). */
void store_group_flush(store_group *g);
size_t store_group_pending(const store_group *g);
/* Flushes what is still queued, then frees. */
void store_group_free(store_group *g);

/* ---- incidents ----
 * Rows travel as jansson objects keyed by column (see migration 005):
 * JSON-valued columns (chain, reporter, flags, props) as JSON values. */

/* key: the numeric id or the case number. *row: new reference. */
int store_incident_get(store *s, const char *key, json_t **row, gc_err *err);
/* An earlier report by (user, Idempotency-Key) or by (source, external_id);
 * either pair may be NULL. *id 0 when there is none. */
int store_incident_find(store *s, int64_t idem_user, const char *idem_key, const char *source,
                        const char *external_id, int64_t *id, gc_err *err);
/* Inserts row (no id, no case_no: they are assigned and set in row), its
 * photos (row.photos: [{hash, bytes, exif, part}]) and the idempotency key. */
int store_incident_insert(store *s, json_t *row, int64_t idem_user, const char *idem_key,
                          gc_err *err);
/* Sets the columns in `set` on case id, if it is still in expect_status
 * (NULL: any); GC_ECONFLICT when another change got there first. */
int store_incident_update(store *s, int64_t id, const char *expect_status, json_t *set,
                          gc_err *err);
/* Audit trail: {at, actor_id, actor, role, action, from_status, to_status,
 * note, data}. Rows can be added, never edited (a trigger refuses). */
int store_incident_history_add(store *s, int64_t id, json_t *h, gc_err *err);
int store_incident_history(store *s, int64_t id, json_t **arr, gc_err *err);
int store_incident_photo_add(store *s, int64_t id, json_t *photo, const char *stage,
                             gc_err *err);
int store_incident_photos(store *s, int64_t id, json_t **arr, gc_err *err);
/* Cases whose deadline is at or before now; *ids: g_free. */
int store_incidents_due(store *s, int64_t now, int64_t **ids, size_t *n, gc_err *err);
/* The earliest deadline of any open step, 0 if none. */
int64_t store_incidents_next_deadline(store *s);

typedef struct store_incident_filter {
    const char *statuses;        /* comma list, or NULL */
    const char *category;        /* codes (comma list): each with its sub-classes */
    const char *unit_level;      /* district, street, community, grid, building */
    const char *unit_id;
    const char *source, *department;
    const char *ids;             /* comma list of case numbers or ids */
    int64_t reporter_id;         /* only this user's reports; 0: anyone's */
    const char *token;           /* the Open311 token of one case */
    int64_t from, to;            /* created_at in [from, to); 0: open */
    int64_t updated_from, updated_to;
    bool has_bbox;
    double bbox[4];
    bool overdue;                /* deadline < now */
    bool unplaced;               /* no location yet */
    int64_t now;
    int64_t limit, offset;       /* limit 0: all */
    bool oldest_first;           /* default newest first */
    /* Unix s, 0: now. Cases created at or before then, with status as it
     * stood then (the audit trail's last step at or before it); statuses
     * filters that status. The other columns are today's. */
    int64_t as_of;
} store_incident_filter;
typedef int (*store_row_cb)(void *ud, json_t *row);   /* row borrowed */
int store_incidents_query(store *s, const store_incident_filter *f, int64_t *matched,
                          store_row_cb cb, void *ud, gc_err *err);

/* Categories and time limits (admin-editable data). */
int store_categories(store *s, json_t **arr, gc_err *err);
int store_category_get(store *s, const char *code, json_t **row, gc_err *err);
int store_category_put(store *s, json_t *row, gc_err *err);
/* The limit for a category's step: its own row, its major class's, then '*'. */
int store_time_limit(store *s, const char *category, const char *step, int64_t *seconds,
                     gc_err *err);
int store_time_limits(store *s, json_t **arr, gc_err *err);
int store_time_limit_put(store *s, const char *category, const char *step, int64_t seconds,
                         gc_err *err);

/* ---- grid workers: trackers, fixes, assigned grids, alerts ---- */
int store_user_by_id(store *s, int64_t id, store_user *out, gc_err *err);
/* A user named by id (digits) or by name; a user called "42" is found too. */
int store_user_find(store *s, const char *key, store_user *out, gc_err *err);
typedef struct store_device {
    char device_id[128];
    int64_t user_id;
    char crs[64];          /* of its fixes when a fix names none */
    bool disabled;
} store_device;
/* Registers (or re-registers) a tracker to a worker. */
int store_device_put(store *s, const char *device_id, int64_t user_id, const char *crs,
                     const char *label, gc_err *err);
/* GC_ENOTFOUND when the device is not registered. */
int store_device_get(store *s, const char *device_id, store_device *out, gc_err *err);
/* [{device_id, user_id, worker, crs, label, disabled, created_at}] */
int store_devices(store *s, json_t **arr, gc_err *err);
/* Replaces the grids a worker is assigned to. */
int store_worker_grids_set(store *s, int64_t user_id, const char *const *grids, size_t n,
                           gc_err *err);
/* [grid_id…] of one worker, or of everyone (user_id 0: {"uid": [grid_id…]}). */
int store_worker_grids(store *s, int64_t user_id, json_t **out, gc_err *err);

typedef struct store_fix {
    int64_t user_id;
    int64_t t;                       /* device time, ms since the epoch (UTC) */
    double lon, lat;                 /* EPSG:4326 */
    double speed, bearing, altitude, accuracy, batt;   /* NAN: not sent */
    bool sos;
    const char *device_id, *source;
    const char *grid_id, *community_id, *street_id;    /* geotag; NULL: outside */
    int64_t received_at;             /* ms */
} store_fix;
/* Inserts fixes inside the caller's transaction (or in one of its own).
 * fresh[i] (may be NULL) says whether fix i was new: a fix of the same worker
 * at the same millisecond is a duplicate and is kept once. */
int store_fixes_insert(store *s, const store_fix *f, size_t n, bool *fresh, gc_err *err);
typedef int (*store_fix_cb)(void *ud, const store_fix *f);   /* f borrowed */
/* One worker's fixes with from <= t < to (0: open), in time order. */
int store_fixes_range(store *s, int64_t user_id, int64_t from, int64_t to, store_fix_cb cb,
                      void *ud, gc_err *err);
/* The newest fix of every worker. */
int store_fixes_latest(store *s, store_fix_cb cb, void *ud, gc_err *err);
int64_t store_fixes_count(store *s);

/* An alert begins (*id set) or ends; the caller appends the change. */
int store_alert_open(store *s, const char *kind, int64_t user_id, int64_t at_ms, double lon,
                     double lat, json_t *data, int64_t *id, gc_err *err);
int store_alert_close(store *s, int64_t id, int64_t at_ms, gc_err *err);
/* Alerts as rows {id, kind, user_id, worker, started_at, ended_at, lon, lat, data}:
 * open ones only, or all with started_at >= since_ms. */
int store_alerts(store *s, bool open_only, int64_t since_ms, json_t **arr, gc_err *err);
/* The oldest sequence number still in the change log (0 when empty), and
 * pruning: rows older than keep_s seconds go, but never the newest keep_min. */
int64_t store_first_seq(store *s);
int store_changes_prune(store *s, int64_t keep_s, int64_t keep_min, int64_t *removed,
                        gc_err *err);

/* ---- history (replay) ----
 * Past windows read back: the change log by time, fixes across workers. */

/* Change-log rows with from_s <= ts < to_s (Unix seconds) and seq > after_seq,
 * of the listed topics (ntopics 0: any), in seq order, at most limit (> 0). */
int store_changes_window(store *s, int64_t from_s, int64_t to_s, int64_t after_seq,
                         const char *const *topics, size_t ntopics, int limit,
                         store_change_cb cb, void *ud, gc_err *err);

typedef struct store_fix_window {
    int64_t from, to;            /* ms: from <= t < to */
    bool has_bbox;
    double bbox[4];              /* EPSG:4326 minlon, minlat, maxlon, maxlat (inclusive) */
    const int64_t *users;        /* only these workers; nusers 0: every worker */
    size_t nusers;
    int64_t max_points;          /* 0: every fix (see store_fixes_window) */
} store_fix_window;
/* The fixes in a window, worker by worker (in the order of w->users, else by
 * id), each worker's in time order. Only user_id, t, lon, lat and device_id
 * are set. *in_window (may be NULL) gets how many there are. When that is
 * more than w->max_points, each worker keeps its share (n × max_points /
 * total, at least 2), evenly spaced by index, its first and last among them. */
int store_fixes_window(store *s, const store_fix_window *w, int64_t *in_window, store_fix_cb cb,
                       void *ud, gc_err *err);
/* Who has fixes in a window: one call a worker with any, in id order. */
typedef struct store_presence {
    int64_t user_id;
    const char *name;            /* borrowed for the callback's duration */
    int64_t first, last, n;      /* ms, ms, fixes */
} store_presence;
typedef int (*store_presence_cb)(void *ud, const store_presence *p);
int store_fixes_presence(store *s, const store_fix_window *w, store_presence_cb cb, void *ud,
                         gc_err *err);

/* ---- cameras (migration 009) ----
 * The registry of cameras and their view sectors. url keeps the credentials
 * as given; url_public (the caller's redaction of it, src/cameras.c) is what
 * the change log and non-admins get. Each write appends a change of topic
 * "cameras": a GeoJSON Feature (the mounting point; properties without the
 * credentials, with state, reason and the sector as a GeoJSON geometry), or
 * {"id", "deleted": true} for a removal. */
typedef struct store_camera {
    char id[72];
    char name[256];
    char department[64];          /* "" for none */
    char url[1024];               /* with credentials */
    char url_public[1024];
    double lon, lat;              /* EPSG:4326 */
    double heading, fov, range_m; /* degrees from north clockwise, degrees, metres */
    double height_m;              /* NAN: not known */
    char transport[8];            /* RTSP over "tcp" (default) or "udp" */
    char state[16];               /* connecting, playing, stalled, retrying, failed, disabled */
    char reason[256];             /* "" for none */
    char state_at[32], created_at[32], updated_at[32];
    /* in: the view sector (a WKB Polygon, EPSG:4326): its extent is indexed */
    const unsigned char *sector_wkb;
    size_t sector_wkb_len;
    /* out, store_cameras_list only: the stored sector as GeoJSON (7
     * decimals), borrowed for the callback; NULL elsewhere */
    const char *sector_geojson;
} store_camera;
typedef int (*store_camera_cb)(void *ud, const store_camera *c);   /* c borrowed */

/* GC_ECONFLICT (field "id") when the id is taken. */
int store_camera_create(store *s, const store_camera *c, gc_err *err);
/* Replaces everything but the health columns; GC_ENOTFOUND when absent. */
int store_camera_replace(store *s, const store_camera *c, gc_err *err);
int store_camera_delete(store *s, const char *id, gc_err *err);
/* GC_ENOTFOUND when absent; out->sector_wkb is NULL. */
int store_camera_get(store *s, const char *id, store_camera *out, gc_err *err);
/* Cameras in id order (cb NULL: only count them); with bbox (minlon, minlat, maxlon, maxlat) those whose
 * sector's extent meets it. limit 0: all. *matched (may be NULL): how many
 * match regardless of limit and offset. */
int store_cameras_list(store *s, const double *bbox, int64_t limit, int64_t offset,
                       int64_t *matched, store_camera_cb cb, void *ud, gc_err *err);
/* The video engine's word on a camera's health (reason may be NULL). The
 * change is appended only when state or reason differ from the stored ones. */
int store_camera_state_set(store *s, const char *id, const char *state, const char *reason,
                           gc_err *err);

/* The cameras that saw a case when it was reported. */
typedef struct store_incident_camera {
    const char *camera_id, *name;
    double distance_m, bearing;
} store_incident_camera;
/* Replaces the case's list inside the caller's transaction (or one of its
 * own); media_state of each: "pending" (footage to come), or "none" for a
 * case brought in from history, whose moment no camera still holds. */
int store_incident_cameras_set(store *s, int64_t incident_id, const store_incident_camera *c,
                               size_t n, const char *media_state, gc_err *err);
/* [{camera_id, name, distance_m, bearing, snapshot, snapshot_error, clip,
 *   clip_error, media_state}] (absent values null), nearest first. */
int store_incident_cameras(store *s, int64_t incident_id, json_t **arr, gc_err *err);
/* What the video engine made of one camera's footage of a case: kind
 * "snapshot" or "clip", the file's path or NULL with why not. media_state
 * follows: done when both are stored, failed when both could not be,
 * partial for one of each, pending while one is outstanding.
 * GC_ENOTFOUND when that camera is not listed on the case. */
int store_incident_camera_media_set(store *s, int64_t incident_id, const char *camera_id,
                                    const char *kind, const char *path, const char *error,
                                    gc_err *err);
/* The footage still owed: each (case, camera) whose media_state is pending,
 * oldest case first, at most limit (0: 64); cb returns non-zero to stop. */
typedef struct store_media_due {
    int64_t incident_id;
    const char *case_no, *camera_id;   /* borrowed for the callback */
    int64_t reported_at;               /* the case's time (unix s) */
    bool has_snapshot, has_clip;       /* resolved already: a file or why not */
} store_media_due;
typedef int (*store_media_due_cb)(void *ud, const store_media_due *d);
int store_incident_media_due(store *s, int limit, store_media_due_cb cb, void *ud, gc_err *err);

/* ---- an operator's base map (MBTiles) ----
 * A file of its own, opened read-only on its own connection. */
typedef struct store_basemap store_basemap;
typedef struct store_basemap_info {
    char name[256];
    char format[8];           /* pbf, png, jpg or webp */
    bool has_bounds, has_center;
    double bounds[4];         /* minlon, minlat, maxlon, maxlat */
    double center[3];         /* lon, lat, zoom */
    int minzoom, maxzoom;     /* the metadata's, else the tiles' */
    char attribution[1024];
    json_t *vector_layers;    /* pbf: the metadata json's vector_layers; else NULL */
} store_basemap_info;
/* Fails (GC_EINVAL, the message naming the file) for a file that is not an
 * MBTiles: no tiles or metadata table, a format other than the four, a pbf
 * one without vector_layers. */
int store_basemap_open(const char *path, store_basemap **out, gc_err *err);
const store_basemap_info *store_basemap_get_info(const store_basemap *b);
/* The tile at z/x/y (XYZ, y from the north) as stored (a pbf one is usually
 * gzipped): 0 and *out (g_bytes_unref it), GC_ENOTFOUND when there is none. */
int store_basemap_tile(store_basemap *b, int z, int x, int y, GBytes **out, gc_err *err);
void store_basemap_close(store_basemap *b);

#endif
