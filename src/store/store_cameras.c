/* store_cameras: the camera registry, its R*Tree of view-sector extents, and
 * the cameras listed on each case (migration 009). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store_priv.h"

#define CAMERA_COLS                                                                                \
    "id, name, department, url, url_public, lon, lat, heading, fov, range_m, height_m, state, "    \
    "reason, state_at, created_at, updated_at, transport"

#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

static void text_col(sqlite3_stmt *st, int i, char *dst, size_t len)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, len, "%s", t ? (const char *)t : "");
}

static void camera_from_row(sqlite3_stmt *st, store_camera *c)
{
    memset(c, 0, sizeof *c);
    text_col(st, 0, c->id, sizeof c->id);
    text_col(st, 1, c->name, sizeof c->name);
    text_col(st, 2, c->department, sizeof c->department);
    text_col(st, 3, c->url, sizeof c->url);
    text_col(st, 4, c->url_public, sizeof c->url_public);
    c->lon = sqlite3_column_double(st, 5);
    c->lat = sqlite3_column_double(st, 6);
    c->heading = sqlite3_column_double(st, 7);
    c->fov = sqlite3_column_double(st, 8);
    c->range_m = sqlite3_column_double(st, 9);
    c->height_m = sqlite3_column_type(st, 10) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 10);
    text_col(st, 11, c->state, sizeof c->state);
    text_col(st, 12, c->reason, sizeof c->reason);
    text_col(st, 13, c->state_at, sizeof c->state_at);
    text_col(st, 14, c->created_at, sizeof c->created_at);
    text_col(st, 15, c->updated_at, sizeof c->updated_at);
    text_col(st, 16, c->transport, sizeof c->transport);
}

/* The change-log row of a camera as stored now: never the credentials. */
static int append_change(store *s, const char *id, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT " CAMERA_COLS ", AsGeoJSON(sector, 7) FROM cameras "
                                     "WHERE id = ?");
    if (!st)
        return store_db_fail(s, err, "cameras");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? gc_fail(err, GC_ENOTFOUND, "id", "no camera '%s'", id)
                                 : store_db_fail(s, err, "cameras");
    }
    store_camera c;
    camera_from_row(st, &c);
    const char *sector = (const char *)sqlite3_column_text(st, 17);
    json_t *sec = sector ? json_loads(sector, 0, NULL) : NULL;
    sqlite3_reset(st);
    json_t *props = json_pack("{s:s,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:s,s:s,s:s}", "id", c.id, "name",
                              c.name, "url", c.url_public, "lon", c.lon, "lat", c.lat, "heading",
                              c.heading, "fov", c.fov, "range_m", c.range_m, "state", c.state,
                              "state_at", c.state_at, "updated_at", c.updated_at);
    json_object_set_new(props, "department",
                        c.department[0] ? json_string(c.department) : json_null());
    json_object_set_new(props, "height_m", isnan(c.height_m) ? json_null() : json_real(c.height_m));
    json_object_set_new(props, "transport", json_string(c.transport));
    json_object_set_new(props, "reason", c.reason[0] ? json_string(c.reason) : json_null());
    json_object_set_new(props, "sector", sec ? sec : json_null());
    json_t *f = json_pack("{s:s,s:s,s:{s:s,s:[ff]},s:o}", "type", "Feature", "id", c.id, "geometry",
                          "type", "Point", "coordinates", c.lon, c.lat, "properties", props);
    rc = store_change_append(s, "cameras", id, f, err);
    json_decref(f);
    return rc;
}

static void bind_camera(sqlite3_stmt *st, const store_camera *c)
{
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    if (c->department[0])
        sqlite3_bind_text(st, 3, c->department, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->url_public, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, c->lon);
    sqlite3_bind_double(st, 7, c->lat);
    sqlite3_bind_double(st, 8, c->heading);
    sqlite3_bind_double(st, 9, c->fov);
    sqlite3_bind_double(st, 10, c->range_m);
    if (!isnan(c->height_m))
        sqlite3_bind_double(st, 11, c->height_m);
    sqlite3_bind_blob(st, 12, c->sector_wkb, (int)c->sector_wkb_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, c->transport[0] ? c->transport : "tcp", -1, SQLITE_STATIC);
}

/* Puts the sector's extent of camera id into the R*Tree (replacing any). */
static int index_camera(store *s, const char *id, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "INSERT OR REPLACE INTO cameras_rtree SELECT uid, MbrMinX(sector), MbrMaxX(sector), "
           "MbrMinY(sector), MbrMaxY(sector) FROM cameras WHERE id = ?");
    if (!st)
        return store_db_fail(s, err, "cameras index");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "cameras index");
}

static int check_sector(const store_camera *c, gc_err *err)
{
    if (!c->sector_wkb || !c->sector_wkb_len)
        return gc_fail(err, GC_EINVAL, "sector", "camera %s: no view sector given", c->id);
    return 0;
}

/* Ends a write: commit with its change, or roll back and return rc. */
static int finish(store *s, int rc, const char *id, gc_err *err)
{
    if (!rc)
        rc = index_camera(s, id, err);
    if (!rc)
        rc = append_change(s, id, err);
    if (!rc && store_commit(s, err))
        rc = GC_EIO;
    if (rc)
        store_rollback(s);
    return rc;
}

int store_camera_create(store *s, const store_camera *c, gc_err *err)
{
    if (check_sector(c, err))
        return GC_EINVAL;
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *st = store_stmt(
        s, "INSERT INTO cameras(id, name, department, url, url_public, lon, lat, heading, fov, "
           "range_m, height_m, sector, geom, uid, state_at, created_at, updated_at, transport) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, GeomFromWKB(?12, 4326), "
           "MakePoint(?6, ?7, 4326), (SELECT coalesce(max(uid), 0) + 1 FROM cameras), " NOW ", " NOW
           ", " NOW ", ?13)");
    int rc = 0;
    if (!st) {
        rc = store_db_fail(s, err, "cameras");
    } else {
        bind_camera(st, c);
        int r = sqlite3_step(st);
        if (r != SQLITE_DONE)
            rc = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY
                     ? gc_fail(err, GC_ECONFLICT, "id", "camera '%s' exists already", c->id)
                     : store_db_fail(s, err, "cameras");
        sqlite3_reset(st);
    }
    return finish(s, rc, c->id, err);
}

int store_camera_replace(store *s, const store_camera *c, gc_err *err)
{
    if (check_sector(c, err))
        return GC_EINVAL;
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *st = store_stmt(
        s, "UPDATE cameras SET name = ?2, department = ?3, url = ?4, url_public = ?5, lon = ?6, "
           "lat = ?7, heading = ?8, fov = ?9, range_m = ?10, height_m = ?11, "
           "sector = GeomFromWKB(?12, 4326), geom = MakePoint(?6, ?7, 4326), transport = ?13, "
           "updated_at = " NOW " WHERE id = ?1");
    int rc = 0;
    if (!st) {
        rc = store_db_fail(s, err, "cameras");
    } else {
        bind_camera(st, c);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_db_fail(s, err, "cameras");
        else if (sqlite3_changes(s->db) == 0)
            rc = gc_fail(err, GC_ENOTFOUND, "id", "no camera '%s'", c->id);
        sqlite3_reset(st);
    }
    return finish(s, rc, c->id, err);
}

int store_camera_delete(store *s, const char *id, gc_err *err)
{
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *rt = store_stmt(
        s, "DELETE FROM cameras_rtree WHERE uid = (SELECT uid FROM cameras WHERE id = ?)");
    sqlite3_stmt *st = store_stmt(s, "DELETE FROM cameras WHERE id = ?");
    int rc = rt && st ? 0 : store_db_fail(s, err, "cameras");
    if (!rc) {
        sqlite3_bind_text(rt, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(rt) != SQLITE_DONE)
            rc = store_db_fail(s, err, "cameras index");
        sqlite3_reset(rt);
    }
    if (!rc) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_db_fail(s, err, "cameras");
        else if (sqlite3_changes(s->db) == 0)
            rc = gc_fail(err, GC_ENOTFOUND, "id", "no camera '%s'", id);
        sqlite3_reset(st);
    }
    if (!rc) {
        json_t *d = json_pack("{s:s,s:b}", "id", id, "deleted", 1);
        rc = store_change_append(s, "cameras", id, d, err);
        json_decref(d);
    }
    if (!rc && store_commit(s, err))
        rc = GC_EIO;
    if (rc)
        store_rollback(s);
    return rc;
}

int store_camera_get(store *s, const char *id, store_camera *out, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT " CAMERA_COLS " FROM cameras WHERE id = ?");
    if (!st)
        return store_db_fail(s, err, "cameras");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        camera_from_row(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? gc_fail(err, GC_ENOTFOUND, "id", "no camera '%s'", id)
                             : store_db_fail(s, err, "cameras");
}

#define IN_BBOX                                                                                    \
    " WHERE uid IN (SELECT uid FROM cameras_rtree WHERE minx <= ?3 AND maxx >= ?1 AND "            \
    "miny <= ?4 AND maxy >= ?2)"

int store_cameras_list(store *s, const double *bbox, int64_t limit, int64_t offset,
                       int64_t *matched, store_camera_cb cb, void *ud, gc_err *err)
{
    if (matched) {
        sqlite3_stmt *cn = store_stmt(s, bbox ? "SELECT count(*) FROM cameras" IN_BBOX
                                              : "SELECT count(*) FROM cameras");
        if (!cn)
            return store_db_fail(s, err, "cameras");
        for (int i = 0; bbox && i < 4; i++)
            sqlite3_bind_double(cn, i + 1, bbox[i]);
        int r = sqlite3_step(cn);
        *matched = r == SQLITE_ROW ? sqlite3_column_int64(cn, 0) : 0;
        sqlite3_reset(cn);
        if (r != SQLITE_ROW)
            return store_db_fail(s, err, "cameras");
    }
    if (!cb)
        return 0;
    sqlite3_stmt *st = store_stmt(
        s, bbox ? "SELECT " CAMERA_COLS ", AsGeoJSON(sector, 7) FROM cameras" IN_BBOX
                  " ORDER BY id LIMIT ?5 OFFSET ?6"
                : "SELECT " CAMERA_COLS ", AsGeoJSON(sector, 7) FROM cameras ORDER BY id "
                  "LIMIT ?5 OFFSET ?6");
    if (!st)
        return store_db_fail(s, err, "cameras");
    for (int i = 0; bbox && i < 4; i++)
        sqlite3_bind_double(st, i + 1, bbox[i]);
    sqlite3_bind_int64(st, 5, limit > 0 ? limit : -1);
    sqlite3_bind_int64(st, 6, offset > 0 ? offset : 0);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_camera c;
        camera_from_row(st, &c);
        c.sector_geojson = (const char *)sqlite3_column_text(st, 17);
        stop = cb(ud, &c);
    }
    sqlite3_reset(st);
    if (stop)
        return stop < 0 ? stop : 0;
    return rc == SQLITE_DONE ? 0 : store_db_fail(s, err, "cameras");
}

int store_camera_state_set(store *s, const char *id, const char *state, const char *reason,
                           gc_err *err)
{
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *st = store_stmt(s, "UPDATE cameras SET state = ?2, reason = ?3, state_at = " NOW
                                     " WHERE id = ?1 AND (state IS NOT ?2 OR reason IS NOT ?3)");
    int rc = 0, changed = 0;
    if (!st) {
        rc = store_db_fail(s, err, "cameras");
    } else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        if (reason && *reason)
            sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_CHECK
                     ? gc_fail(err, GC_EINVAL, "state",
                               "camera state '%s' is not one of "
                               "connecting, playing, stalled, retrying, "
                               "failed, disabled",
                               state)
                     : store_db_fail(s, err, "cameras");
        else
            changed = sqlite3_changes(s->db);
        sqlite3_reset(st);
    }
    if (!rc && !changed) { /* unchanged, or no such camera: say which */
        store_camera c;
        rc = store_camera_get(s, id, &c, err);
    }
    if (!rc && changed)
        rc = append_change(s, id, err);
    if (!rc && store_commit(s, err))
        rc = GC_EIO;
    if (rc)
        store_rollback(s);
    return rc;
}

/* ---- the cameras of a case ---- */

int store_incident_cameras_set(store *s, int64_t incident_id, const store_incident_camera *c,
                               size_t n, const char *media_state, gc_err *err)
{
    if (store_begin(s, err))
        return GC_EIO;
    sqlite3_stmt *del = store_stmt(s, "DELETE FROM incident_cameras WHERE incident_id = ?");
    sqlite3_stmt *ins = store_stmt(
        s, "INSERT INTO incident_cameras(incident_id, camera_id, camera_name, distance_m, "
           "bearing, media_state) VALUES (?, ?, ?, ?, ?, ?)");
    int rc = del && ins ? 0 : store_db_fail(s, err, "incident cameras");
    if (!rc) {
        sqlite3_bind_int64(del, 1, incident_id);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = store_db_fail(s, err, "incident cameras");
        sqlite3_reset(del);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_bind_int64(ins, 1, incident_id);
        sqlite3_bind_text(ins, 2, c[i].camera_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, c[i].name ? c[i].name : c[i].camera_id, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 4, c[i].distance_m);
        sqlite3_bind_double(ins, 5, c[i].bearing);
        sqlite3_bind_text(ins, 6, media_state ? media_state : "pending", -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = store_db_fail(s, err, "incident cameras");
        sqlite3_reset(ins);
    }
    if (!rc && store_commit(s, err))
        rc = GC_EIO;
    if (rc)
        store_rollback(s);
    return rc;
}

int store_incident_cameras(store *s, int64_t incident_id, json_t **arr, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "SELECT camera_id, camera_name, distance_m, bearing, snapshot, snapshot_error, clip, "
           "clip_error, media_state FROM incident_cameras WHERE incident_id = ? "
           "ORDER BY distance_m, camera_id");
    if (!st)
        return store_db_fail(s, err, "incident cameras");
    sqlite3_bind_int64(st, 1, incident_id);
    *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *k = i == 1 ? "name" : sqlite3_column_name(st, i);
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_FLOAT:
            case SQLITE_INTEGER:
                json_object_set_new(o, k, json_real(sqlite3_column_double(st, i)));
                break;
            case SQLITE_TEXT:
                json_object_set_new(o, k, json_string((const char *)sqlite3_column_text(st, i)));
                break;
            default: json_object_set_new(o, k, json_null()); break;
            }
        }
        json_array_append_new(*arr, o);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(*arr);
        *arr = NULL;
        return store_db_fail(s, err, "incident cameras");
    }
    return 0;
}

int store_incident_media_due(store *s, int limit, store_media_due_cb cb, void *ud, gc_err *err)
{
    sqlite3_stmt *st = store_stmt(
        s, "SELECT ic.incident_id, i.case_no, ic.camera_id, i.created_at, "
           "ic.snapshot IS NOT NULL OR ic.snapshot_error IS NOT NULL, "
           "ic.clip IS NOT NULL OR ic.clip_error IS NOT NULL "
           "FROM incident_cameras ic JOIN incidents i ON i.id = ic.incident_id "
           "WHERE ic.media_state = 'pending' ORDER BY ic.incident_id, ic.camera_id LIMIT ?");
    if (!st)
        return store_db_fail(s, err, "incident cameras");
    sqlite3_bind_int(st, 1, limit > 0 ? limit : 64);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_media_due d = {
            .incident_id = sqlite3_column_int64(st, 0),
            .case_no = (const char *)sqlite3_column_text(st, 1),
            .camera_id = (const char *)sqlite3_column_text(st, 2),
            .reported_at = sqlite3_column_int64(st, 3),
            .has_snapshot = sqlite3_column_int(st, 4) != 0,
            .has_clip = sqlite3_column_int(st, 5) != 0,
        };
        stop = cb(ud, &d);
    }
    sqlite3_reset(st);
    if (!stop && rc != SQLITE_DONE)
        return store_db_fail(s, err, "incident cameras");
    return 0;
}

int store_incident_camera_media_set(store *s, int64_t incident_id, const char *camera_id,
                                    const char *kind, const char *path, const char *error,
                                    gc_err *err)
{
    const char *sql;
    if (!g_strcmp0(kind, "snapshot"))
        sql = "UPDATE incident_cameras SET snapshot = ?3, snapshot_error = ?4 "
              "WHERE incident_id = ?1 AND camera_id = ?2";
    else if (!g_strcmp0(kind, "clip"))
        sql = "UPDATE incident_cameras SET clip = ?3, clip_error = ?4 "
              "WHERE incident_id = ?1 AND camera_id = ?2";
    else
        return gc_fail(err, GC_EINVAL, "kind", "media kind must be snapshot or clip");
    if (!path && !error)
        return gc_fail(err, GC_EINVAL, "path", "a stored file's path or why there is none");
    if (store_begin(s, err))
        return GC_EIO;
    /* both resolved: done, failed or partial; one outstanding: pending */
    sqlite3_stmt *st = store_stmt(s, sql);
    sqlite3_stmt *ms = store_stmt(
        s, "UPDATE incident_cameras SET media_state = CASE "
           "WHEN (snapshot IS NULL AND snapshot_error IS NULL) OR (clip IS NULL AND clip_error "
           "IS NULL) THEN 'pending' WHEN snapshot IS NOT NULL AND clip IS NOT NULL THEN 'done' "
           "WHEN snapshot IS NULL AND clip IS NULL THEN 'failed' ELSE 'partial' END "
           "WHERE incident_id = ?1 AND camera_id = ?2");
    int rc = st && ms ? 0 : store_db_fail(s, err, "incident cameras");
    if (!rc) {
        sqlite3_bind_int64(st, 1, incident_id);
        sqlite3_bind_text(st, 2, camera_id, -1, SQLITE_STATIC);
        if (path)
            sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
        else
            sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_db_fail(s, err, "incident cameras");
        else if (sqlite3_changes(s->db) == 0)
            rc = gc_fail(err, GC_ENOTFOUND, "camera", "camera '%s' is not listed on case %lld",
                         camera_id, (long long)incident_id);
        sqlite3_reset(st);
    }
    if (!rc) {
        sqlite3_bind_int64(ms, 1, incident_id);
        sqlite3_bind_text(ms, 2, camera_id, -1, SQLITE_STATIC);
        if (sqlite3_step(ms) != SQLITE_DONE)
            rc = store_db_fail(s, err, "incident cameras");
        sqlite3_reset(ms);
    }
    if (!rc && store_commit(s, err))
        rc = GC_EIO;
    if (rc)
        store_rollback(s);
    return rc;
}
