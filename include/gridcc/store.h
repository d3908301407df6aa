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

#include "gridcc/err.h"

typedef struct store store;

/* Opens (creating if absent) and upgrades the schema to the newest version. */
int store_open(const char *path, store **out, gc_err *err);
/* Same, but upgrades no further than max_version (tests: an "older build"). */
int store_open_version(const char *path, int max_version, store **out, gc_err *err);
void store_close(store *s);
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
    char role[16];
    char pwhash[256];
    bool disabled;
} store_user;

int store_user_add(store *s, const char *name, const char *role, const char *pwhash,
                   int64_t *id, gc_err *err);
int store_user_get(store *s, const char *name, store_user *out, gc_err *err);
/* hash: 32 bytes. expires_at: Unix seconds, 0 for never. */
int store_token_add(store *s, int64_t user_id, const unsigned char *hash, int64_t expires_at,
                    const char *label, gc_err *err);
/* GC_ENOTFOUND for unknown or expired tokens and disabled users. */
int store_token_lookup(store *s, const unsigned char *hash, store_user *out, gc_err *err);

#endif
