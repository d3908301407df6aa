/* incidents: the closed loop of 事件 as an explicit state machine, its
 * deadlines and escalation, reports and their geotags (statistics and the
 * ranking are in incidents_stats.c). The rules
 * are tables at the top of this file; every operation below is one store
 * transaction that writes the case, its audit trail and a change-log row
 * together, so the live map and the history never disagree with the case. */
#include "gridcc/incidents.h"

#include <glib.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/address.h"
#include "gridcc/cameras.h"
#include "gridcc/crs.h"
#include "gridcc/geotag.h"
#include "gridcc/log.h"
#include "gridcc/photo.h"

static const char *const STATUS[INC_NSTATUS] = {"reported", "registered", "rejected",
                                                 "dispatched", "handled", "verified",
                                                 "closed", "evaluated"};
static const char *const ACTION[ACT_N] = {"register", "reject",    "dispatch", "handle",
                                          "verify",   "send_back", "close",    "evaluate"};

/* The loop: NEXT[status][action] is the state reached, or -1. */
static const int NEXT[INC_NSTATUS][ACT_N] = {
    /*                register        reject        dispatch        handle       verify
                      send_back       close         evaluate */
    [INC_REPORTED] = {INC_REGISTERED, INC_REJECTED, -1, -1, -1, -1, -1, -1},
    [INC_REGISTERED] = {-1, -1, INC_DISPATCHED, -1, -1, -1, -1, -1},
    [INC_REJECTED] = {-1, -1, -1, -1, -1, -1, -1, -1},
    [INC_DISPATCHED] = {-1, -1, -1, INC_HANDLED, -1, -1, -1, -1},
    [INC_HANDLED] = {-1, -1, -1, -1, INC_VERIFIED, INC_DISPATCHED, -1, -1},
    [INC_VERIFIED] = {-1, -1, -1, -1, -1, -1, INC_CLOSED, -1},
    [INC_CLOSED] = {-1, -1, -1, -1, -1, -1, -1, INC_EVALUATED},
    [INC_EVALUATED] = {-1, -1, -1, -1, -1, -1, -1, -1},
};

/* The step whose clock runs in each state. */
static const char *const STEP[INC_NSTATUS] = {
    [INC_REPORTED] = "register", [INC_REGISTERED] = "dispatch", [INC_DISPATCHED] = "handle",
    [INC_HANDLED] = "verify",    [INC_VERIFIED] = "close"};

static const char *const LEVELS[] = {"grid", "community", "street", "district"};

const char *incident_status_name(inc_status s)
{
    return (unsigned)s < INC_NSTATUS ? STATUS[s] : "?";
}

const char *incident_action_name(inc_action a)
{
    return (unsigned)a < ACT_N ? ACTION[a] : "?";
}

const char *incident_level_name(int level)
{
    return level >= 0 && level < (int)G_N_ELEMENTS(LEVELS) ? LEVELS[level] : "?";
}

int incident_status_parse(const char *name)
{
    for (int i = 0; name && i < INC_NSTATUS; i++)
        if (!strcmp(name, STATUS[i]))
            return i;
    return -1;
}

int incident_action_parse(const char *name)
{
    for (int i = 0; name && i < ACT_N; i++)
        if (!strcmp(name, incident_action_name((inc_action)i)))
            return i;
    return -1;
}

bool incident_status_is_closed(inc_status s)
{
    return s == INC_REJECTED || s == INC_CLOSED || s == INC_EVALUATED;
}

int incident_next(inc_status from, inc_action a)
{
    if ((unsigned)from >= INC_NSTATUS || (unsigned)a >= ACT_N)
        return -1;
    return NEXT[from][a];
}

const char *incident_step(inc_status s) { return (unsigned)s < INC_NSTATUS ? STEP[s] : NULL; }

const char *incident_allowed(inc_status s, char *buf, size_t len)
{
    buf[0] = 0;
    size_t used = 0;
    for (int a = 0; a < ACT_N; a++) {
        if (incident_next(s, (inc_action)a) < 0)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                         incident_action_name((inc_action)a));
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

static bool role_is(const inc_actor *who, gc_role role) { return who->role == role; }

int incident_check(const inc_case *c, inc_action a, const inc_actor *who, gc_err *err)
{
    if (incident_next(c->status, a) < 0) {
        char allowed[128];
        incident_allowed(c->status, allowed, sizeof allowed);
        return gc_fail(err, GC_ECONFLICT, "action", "a %s case cannot be %s; allowed: %s",
                       incident_status_name(c->status), incident_action_name(a),
                       allowed[0] ? allowed : "none (the case is finished)");
    }
    bool staff = role_is(who, ROLE_OPERATOR) || role_is(who, ROLE_ADMIN);
    switch (a) {
    case ACT_HANDLE:
        if (role_is(who, ROLE_ADMIN))
            return 0;
        if (!role_is(who, ROLE_DEPARTMENT))
            return gc_fail(err, GC_EFORBIDDEN, "action",
                           "only a user of the department it was dispatched to may handle a "
                           "case; role %s may not",
                           role_name(who->role));
        if (!c->department || !who->department || strcmp(c->department, who->department))
            return gc_fail(err, GC_EFORBIDDEN, "action",
                           "this case is dispatched to %s, not to %s",
                           c->department ? c->department : "no department",
                           who->department ? who->department : "?");
        return 0;
    case ACT_EVALUATE:
        if (role_is(who, ROLE_RESIDENT)) {
            if (c->reporter_id && c->reporter_id == who->id)
                return 0;
            return gc_fail(err, GC_EFORBIDDEN, "action",
                           "a resident evaluates only the cases they reported");
        }
        if (staff) {
            if (c->reporter_id && c->source && !strcmp(c->source, "resident"))
                return gc_fail(err, GC_EFORBIDDEN, "action",
                               "the resident who reported this case evaluates it");
            return 0;   /* the 回访 call's result, for cases no resident account reported */
        }
        return gc_fail(err, GC_EFORBIDDEN, "action", "role %s may not evaluate a case",
                       role_name(who->role));
    default:
        if (staff)
            return 0;
        return gc_fail(err, GC_EFORBIDDEN, "action", "only an operator may %s a case; role %s may not",
                       incident_action_name(a), role_name(who->role));
    }
}

/* ---- deadlines ---- */

int64_t incident_deadline(int64_t start, int64_t limit_s) { return start + limit_s; }

int64_t incident_timer_ms(int64_t earliest, int64_t now_ms, int64_t max_ms)
{
    if (earliest <= 0)
        return max_ms;
    int64_t ms = earliest * 1000 - now_ms;
    return ms < 0 ? 0 : ms > max_ms ? max_ms : ms;
}

void incident_escalation(int level, int64_t now, int64_t limit_s, int *next_level,
                         int64_t *next_deadline)
{
    *next_level = level < INC_LEVEL_DISTRICT ? level + 1 : INC_LEVEL_DISTRICT;
    *next_deadline = incident_deadline(now, limit_s);
}

/* ---- helpers ---- */

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static inc_case case_of(json_t *row)
{
    return (inc_case){.status = incident_status_parse(jstr(row, "status")),
                      .department = jstr(row, "department"),
                      .reporter_id = jint(row, "reporter_id"),
                      .source = jstr(row, "source")};
}

static json_t *history_row(const inc_actor *who, int64_t at, const char *action, const char *from,
                           const char *to, const char *note)
{
    json_t *h = json_pack("{s:I,s:s,s:s,s:s}", "at", (json_int_t)at, "actor",
                          who->name ? who->name : "system", "role",
                          who->role ? role_name(who->role) : "system", "action", action);
    if (who->id)
        json_object_set_new(h, "actor_id", json_integer(who->id));
    if (from)
        json_object_set_new(h, "from_status", json_string(from));
    if (to)
        json_object_set_new(h, "to_status", json_string(to));
    if (note && *note)
        json_object_set_new(h, "note", json_string(note));
    return h;
}

json_t *incident_feature(json_t *row)
{
    /* a shallow copy: the values are shared with row, never changed here */
    json_t *props = json_copy(row);
    json_object_del(props, "reporter");
    json_object_del(props, "token");
    json_t *lon = json_object_get(row, "lon"), *lat = json_object_get(row, "lat");
    json_t *geom = json_is_number(lon) && json_is_number(lat)
                       ? json_pack("{s:s,s:[f,f]}", "type", "Point", "coordinates",
                                   json_number_value(lon), json_number_value(lat))
                       : json_null();
    json_object_del(props, "lon");
    json_object_del(props, "lat");
    return json_pack("{s:s,s:O,s:o,s:o}", "type", "Feature", "id", json_object_get(row, "case_no"),
                     "geometry", geom, "properties", props);
}

/* The change-log row of a case: its feature without personal data, and
 * without the chain's names (the live map filters on the *_id fields; the
 * case itself keeps the chain as tagged): half the bytes of every row a bulk
 * import writes. */
static int publish(store *s, json_t *row, gc_err *err)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)jint(row, "id"));
    json_t *f = incident_feature(row);
    json_t *props = json_object_get(f, "properties");
    static const char *drop[] = {"chain", "src_x", "src_y", "src_crs", "step_started"};
    for (size_t i = 0; i < G_N_ELEMENTS(drop); i++)
        json_object_del(props, drop[i]);
    int rc = store_change_append(s, "incidents", id, f, err);
    json_decref(f);
    return rc;
}

static int limit_for(store *s, const char *category, inc_status st, int64_t *limit, gc_err *err)
{
    const char *step = incident_step(st);
    *limit = 0;
    return step ? store_time_limit(s, category, step, limit, err) : 0;
}

/* Geotags lon/lat into the row: chain JSON plus the ids the queries filter
 * on. */
static void tag_row(json_t *row, const gc_index *ix, double lon, double lat)
{
    if (!ix)
        return;
    index_chain c;
    if (index_geotag(ix, lon, lat, &c))
        return;
    json_object_set_new(row, "chain", geotag_chain_json(&c, lon, lat));
    static const struct {
        gc_level level;
        const char *col;
    } cols[] = {{LEVEL_DISTRICT, "district_id"}, {LEVEL_STREET, "street_id"},
                {LEVEL_COMMUNITY, "community_id"}, {LEVEL_GRID, "grid_id"},
                {LEVEL_BUILDING, "building_id"}};
    for (size_t i = 0; i < G_N_ELEMENTS(cols); i++)
        if (c.chain[cols[i].level])
            json_object_set_new(row, cols[i].col, json_string(c.chain[cols[i].level]->fid));
}

/* Reads the location of a report: lon/lat in EPSG:4326, or x/y (or lon/lat)
 * in `crs`. 1 if there is one, 0 if none, negative on bad input. */
static int read_location(json_t *in, double *lon, double *lat, json_t *row, gc_err *err)
{
    json_t *jx = json_object_get(in, "lon"), *jy = json_object_get(in, "lat");
    const char *fx = "lon", *fy = "lat";
    if (!jx && !jy) {
        jx = json_object_get(in, "x");
        jy = json_object_get(in, "y");
        fx = "x";
        fy = "y";
    }
    if (!jx && !jy)
        return 0;
    if (!json_is_number(jx))
        return gc_fail(err, GC_EINVAL, fx, "%s must be a number", fx);
    if (!json_is_number(jy))
        return gc_fail(err, GC_EINVAL, fy, "%s must be a number", fy);
    double x = json_number_value(jx), y = json_number_value(jy);
    const char *crs = jstr(in, "crs");
    crs_def def;
    if (crs_parse(crs, &def, err)) {
        snprintf(err->field, sizeof err->field, "crs");
        return GC_EINVAL;
    }
    if (!isfinite(x) || !isfinite(y))
        return gc_fail(err, GC_EINVAL, fx, "coordinates must be finite numbers");
    double ox = x, oy = y;
    if (def.kind == CRS_GCJ02)
        crs_gcj02_to_wgs84(x, y, &ox, &oy);
    else if (def.kind == CRS_BD09)
        crs_bd09_to_wgs84(x, y, &ox, &oy);
    else if (def.kind == CRS_EPSG && def.epsg != 4326) {
        crs_transform *t = crs_transform_new(&def, err);
        if (!t)
            return GC_EINVAL;
        size_t bad;
        int rc = crs_transform_to_wgs84(t, &ox, &oy, 1, &bad, err);
        crs_transform_free(t);
        if (rc) {
            snprintf(err->field, sizeof err->field, "%s", fx);
            return GC_EINVAL;
        }
    }
    if (ox < -180 || ox > 180)
        return gc_fail(err, GC_EINVAL, fx, "longitude %.7f is outside [-180, 180]", ox);
    if (oy < -90 || oy > 90)
        return gc_fail(err, GC_EINVAL, fy, "latitude %.7f is outside [-90, 90]", oy);
    *lon = ox;
    *lat = oy;
    json_object_set_new(row, "src_x", json_real(x));
    json_object_set_new(row, "src_y", json_real(y));
    json_object_set_new(row, "src_crs", json_string(def.name));
    return 1;
}

static bool valid_source(const char *s)
{
    static const char *ok[] = {"worker", "resident", "department", "hotline", "camera"};
    for (size_t i = 0; s && i < G_N_ELEMENTS(ok); i++)
        if (!strcmp(s, ok[i]))
            return true;
    return false;
}

/* Where a report comes from follows from who sends it; operators and admins
 * enter calls and camera finds, so they may say. */
static const char *source_for(const inc_actor *who, const char *asked)
{
    if (role_is(who, ROLE_WORKER))
        return "worker";
    if (role_is(who, ROLE_RESIDENT))
        return "resident";
    if (role_is(who, ROLE_DEPARTMENT))
        return "department";
    return asked ? asked : "resident";
}

int incident_get(store *s, const char *id, bool with_history, json_t **out, gc_err *err)
{
    json_t *row;
    if (store_incident_get(s, id, &row, err))
        return err ? err->code : GC_ENOTFOUND;
    json_t *photos;
    if (store_incident_photos(s, jint(row, "id"), &photos, err)) {
        json_decref(row);
        return GC_EIO;
    }
    json_object_set_new(row, "photos", photos);
    if (with_history) {
        json_t *h;
        if (store_incident_history(s, jint(row, "id"), &h, err)) {
            json_decref(row);
            return GC_EIO;
        }
        json_object_set_new(row, "history", h);
    }
    *out = row;
    return 0;
}

/* ---- report ---- */

int incident_report(store *s, const gc_index *ix, const inc_actor *who, json_t *in,
                    const char *idem_key, int64_t now, json_t **out, bool *existing,
                    gc_err *err)
{
    if (out)
        *out = NULL;
    *existing = false;
    const char *category = jstr(in, "category");
    const char *desc = jstr(in, "description");
    json_t *cat = NULL;
    if (!category || !*category)
        return gc_fail(err, GC_EINVAL, "category", "category is required (a code such as E01.02)");
    if (store_category_get(s, category, &cat, err))
        return gc_fail(err, GC_EINVAL, "category",
                       "unknown category '%s'; GET /api/categories lists them", category);
    bool active = jint(cat, "active") != 0;
    char *cat_dept = g_strdup(jstr(cat, "department"));
    json_decref(cat);
    if (!active) {
        g_free(cat_dept);
        return gc_fail(err, GC_EINVAL, "category", "category '%s' is retired", category);
    }
    if (!desc || !*desc) {
        g_free(cat_dept);
        return gc_fail(err, GC_EINVAL, "description", "description is required");
    }
    if (g_utf8_strlen(desc, -1) > 4000) {
        g_free(cat_dept);
        return gc_fail(err, GC_EINVAL, "description", "description: at most 4000 characters");
    }
    const char *asked = jstr(in, "source");
    if (asked && !valid_source(asked)) {
        g_free(cat_dept);
        return gc_fail(err, GC_EINVAL, "source",
                       "source must be worker, resident, department, hotline or camera");
    }
    const char *source = source_for(who, asked);

    json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "category", category,
                            "description", desc, "source", source, "status", "reported",
                            "step_started", (json_int_t)now, "created_at", (json_int_t)now,
                            "updated_at", (json_int_t)now);
    if (cat_dept)
        json_object_set_new(row, "department", json_string(cat_dept));
    g_free(cat_dept);
    json_t *rat = json_object_get(in, "reported_at"), *cat_closed = json_object_get(in, "closed_at");
    if (json_is_integer(rat))
        json_object_set(row, "created_at", rat);
    bool closed_already = json_is_integer(cat_closed);
    if (closed_already) {
        json_object_set_new(row, "status", json_string("closed"));
        json_object_set(row, "closed_at", cat_closed);
    }
    double lon = 0, lat = 0;
    int has = read_location(in, &lon, &lat, row, err);
    if (has < 0) {
        json_decref(row);
        return has;
    }
    json_t *flags = json_array();
    json_array_extend(flags, json_object_get(in, "flags"));
    json_t *pp = json_object_get(in, "photo_position");
    if (json_is_object(pp)) {
        double plon = json_number_value(json_object_get(pp, "lon"));
        double plat = json_number_value(json_object_get(pp, "lat"));
        if (!has) {
            lon = plon;
            lat = plat;
            has = 1;
            json_array_append_new(flags, json_pack("{s:s,s:O}", "flag", "location_from_photo",
                                                   "part", json_object_get(pp, "part")));
        } else {
            /* both a place and a photo position: far apart is worth an operator's look */
            double d = crs_distance_m(lon, lat, plon, plat);
            if (d > INCIDENT_MISMATCH_M)
                json_array_append_new(
                    flags, json_pack("{s:s,s:f,s:O,s:f,s:f}", "flag", "location_mismatch",
                                     "distance_m", round(d), "part", json_object_get(pp, "part"),
                                     "photo_lon", plon, "photo_lat", plat));
        }
    }
    json_object_set_new(row, "flags", flags);
    if (has) {
        json_object_set_new(row, "lon", json_real(lon));
        json_object_set_new(row, "lat", json_real(lat));
        tag_row(row, ix, lon, lat);
    }
    static const char *copy[] = {"address", "reporter", "props", "external_id", "photos"};
    for (size_t i = 0; i < G_N_ELEMENTS(copy); i++)
        if (json_object_get(in, copy[i]) && !json_is_null(json_object_get(in, copy[i])))
            json_object_set(row, copy[i], json_object_get(in, copy[i]));
    if (json_object_get(in, "building_id") && has)
        json_object_set(row, "building_id", json_object_get(in, "building_id"));
    /* the reporter is an account only when the report is its own (a worker's,
     * a resident's, a department's); a case an operator enters for a caller
     * has none, and its evaluation is the operator's 回访 call. Who entered
     * it is in the audit trail either way. */
    if (who->id && !strcmp(source, source_for(who, NULL)) &&
        !role_is(who, ROLE_OPERATOR) && !role_is(who, ROLE_ADMIN))
        json_object_set_new(row, "reporter_id", json_integer(who->id));
    /* The Open311 token: the time in µs (so new tokens append at the end of
     * their unique index instead of landing on a random page) and 64
     * random bits (so they cannot be guessed). */
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char hex[2 * sizeof rnd + 1], token[40];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(token, sizeof token, "%013" G_GINT64_MODIFIER "x%s", g_get_real_time(), hex);
    json_object_set_new(row, "token", json_string(token));

    int64_t limit;
    if (store_begin(s, err)) {
        json_decref(row);
        return GC_EIO;
    }
    int64_t found = 0;
    int rc = store_incident_find(s, who->id, idem_key, source, jstr(in, "external_id"), &found, err);
    if (!rc && found) {
        store_rollback(s);
        json_decref(row);
        *existing = true;
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)found);
        return out ? incident_get(s, key, false, out, err) : 0;
    }
    if (!rc && !closed_already)
        rc = limit_for(s, category, INC_REPORTED, &limit, err);
    if (!rc) {
        if (!closed_already)
            json_object_set_new(row, "deadline", json_integer(incident_deadline(now, limit)));
        rc = store_incident_insert(s, row, who->id, idem_key, err);
    }
    if (!rc) {
        json_t *h = history_row(who, now, closed_already ? "import" : "report", NULL,
                                jstr(row, "status"), closed_already ? "closed at the source" : NULL);
        json_object_set_new(h, "data", json_pack("{s:s}", "source", source));
        rc = store_incident_history_add(s, jint(row, "id"), h, err);
        json_decref(h);
    }
    /* the cameras that saw it: every way in (API, Open311, 12345, the demo)
     * passes here. A case from the past gets "none": no camera still holds
     * footage of its moment. */
    if (!rc && has) {
        bool past = closed_already || (json_is_integer(rat) && json_integer_value(rat) < now - 300);
        rc = cameras_match_incident(s, jint(row, "id"), lon, lat, past ? "none" : "pending", NULL,
                                    err);
    }
    if (!rc)
        rc = publish(s, row, err);
    if (!rc)
        rc = store_commit(s, err);
    if (rc) {
        store_rollback(s);
        json_decref(row);
        return rc;
    }
    if (!out) {   /* bulk callers need no copy back */
        json_decref(row);
        return 0;
    }
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)jint(row, "id"));
    json_decref(row);
    return incident_get(s, key, false, out, err);
}

bool incident_place_by_address(json_t *in, const address_match *m)
{
    json_t *flags = json_object_get(in, "flags");
    if (!json_is_array(flags)) {
        flags = json_array();
        json_object_set_new(in, "flags", flags);
    }
    if (!m->found) {
        json_array_append_new(flags, json_pack("{s:s,s:s}", "flag", "unplaced", "reason",
                                               m->reason));
        return false;
    }
    json_object_set_new(in, "lon", json_real(m->lon));
    json_object_set_new(in, "lat", json_real(m->lat));
    json_object_del(in, "crs");
    json_object_set_new(in, "building_id", json_string(m->building_id));
    json_array_append_new(flags, json_pack("{s:s,s:s,s:f}", "flag", "placed_by_address",
                                           "building", m->building_name, "score", m->score));
    return true;
}

/* ---- actions ---- */

int incident_act(store *s, const char *id, inc_action a, const inc_actor *who, json_t *params,
                 int64_t now, json_t **out, gc_err *err)
{
    *out = NULL;
    if (store_begin(s, err))
        return GC_EIO;
    json_t *row = NULL, *set = NULL, *h = NULL;
    inc_status to = INC_REPORTED;
    int rc = store_incident_get(s, id, &row, err);
    if (rc)
        goto done;
    inc_case c = case_of(row);
    rc = incident_check(&c, a, who, err);
    if (rc)
        goto done;
    to = (inc_status)incident_next(c.status, a);
    /* a step recorded after the fact keeps the trail in order: a reported
     * case's clock may have started at its import, later than the report */
    if (json_object_get(params, "at")) {
        int64_t after = c.status == INC_REPORTED ? jint(row, "created_at")
                                                 : jint(row, "step_started");
        if (now < after) {
            rc = gc_fail(err, GC_EINVAL, "at",
                         "at %lld is before the case's %s (%lld)", (long long)now,
                         c.status == INC_REPORTED ? "report" : "last step", (long long)after);
            goto done;
        }
    }
    const char *note = jstr(params, "note");
    set = json_pack("{s:s,s:I,s:I}", "status", incident_status_name(to), "step_started",
                    (json_int_t)now, "updated_at", (json_int_t)now);
    json_t *data = json_object();
    if (a == ACT_DISPATCH) {
        const char *dept = jstr(params, "department");
        if (!dept)
            dept = c.department;
        if (!dept || !*dept) {
            json_decref(data);
            rc = gc_fail(err, GC_EINVAL, "department",
                         "dispatch needs a department (this category names none)");
            goto done;
        }
        json_object_set_new(set, "department", json_string(dept));
        json_object_set_new(data, "department", json_string(dept));
    } else if (a == ACT_HANDLE) {
        const char *result = jstr(params, "result");
        if (!result)
            result = note;
        if (!result || !*result) {
            json_decref(data);
            rc = gc_fail(err, GC_EINVAL, "result", "handling needs a result: what was done");
            goto done;
        }
        json_object_set_new(set, "result", json_string(result));
    } else if (a == ACT_EVALUATE) {
        json_t *jr = json_object_get(params, "rating");
        if (!json_is_integer(jr) || json_integer_value(jr) < 1 || json_integer_value(jr) > 5) {
            json_decref(data);
            rc = gc_fail(err, GC_EINVAL, "rating", "rating must be an integer from 1 to 5");
            goto done;
        }
        json_object_set(set, "rating", jr);
        json_object_set(data, "rating", jr);
        if (jstr(params, "comment"))
            json_object_set(set, "rating_comment", json_object_get(params, "comment"));
    } else if ((a == ACT_REJECT || a == ACT_SEND_BACK) && (!note || !*note)) {
        json_decref(data);
        rc = gc_fail(err, GC_EINVAL, "note", "%s needs a note saying why",
                     incident_action_name(a));
        goto done;
    }
    if (a == ACT_CLOSE || a == ACT_REJECT)
        json_object_set_new(set, "closed_at", json_integer(now));
    /* the step just finished: was it on time? */
    json_t *dl = json_object_get(row, "deadline");
    if (json_is_integer(dl) && json_integer_value(dl) < now && jint(row, "level") == 0)
        json_object_set_new(set, "overdue_count", json_integer(jint(row, "overdue_count") + 1));
    int64_t limit;
    rc = limit_for(s, jstr(row, "category"), to, &limit, err);
    if (rc) {
        json_decref(data);
        goto done;
    }
    json_object_set_new(set, "deadline", limit ? json_integer(incident_deadline(now, limit))
                                               : json_null());
    if (limit)   /* a new step starts at the grid level again */
        json_object_set_new(set, "level", json_integer(0));
    rc = store_incident_update(s, jint(row, "id"), incident_status_name(c.status), set, err);
    if (rc) {
        json_decref(data);
        goto done;
    }
    h = history_row(who, now, incident_action_name(a), incident_status_name(c.status),
                    incident_status_name(to), note);
    json_object_set_new(h, "data", data);
    rc = store_incident_history_add(s, jint(row, "id"), h, err);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(params, "photos"), i, p) if (!rc) rc =
        store_incident_photo_add(s, jint(row, "id"), p, incident_action_name(a), err);
    if (!rc) {
        json_object_update(row, set);
        rc = publish(s, row, err);
    }
    if (!rc)
        rc = store_commit(s, err);
done:
    if (rc)
        store_rollback(s);
    char key[32];
    if (!rc)
        snprintf(key, sizeof key, "%lld", (long long)jint(row, "id"));
    json_decref(row);
    json_decref(set);
    json_decref(h);
    if (rc)
        return rc;
    log_info("incidents", "case=%s action=%s by=%s status=%s", id, incident_action_name(a),
             who->name ? who->name : "system", incident_status_name(to));
    return incident_get(s, key, false, out, err);
}

/* ---- escalation ---- */

static int escalate_one(store *s, int64_t id, int64_t now, gc_err *err)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    if (store_begin(s, err))
        return GC_EIO;
    json_t *row = NULL, *set = NULL, *h = NULL, *alert = NULL;
    int done = 0;
    int rc = store_incident_get(s, key, &row, err);
    json_t *dl = row ? json_object_get(row, "deadline") : NULL;
    /* another process may have escalated it, or moved it on, meanwhile */
    if (rc || !json_is_integer(dl) || json_integer_value(dl) > now)
        goto out;
    inc_status st = incident_status_parse(jstr(row, "status"));
    int64_t limit;
    rc = limit_for(s, jstr(row, "category"), st, &limit, err);
    if (rc || !limit)
        goto out;
    int level = (int)jint(row, "level"), next;
    int64_t deadline;
    incident_escalation(level, now, limit, &next, &deadline);
    set = json_pack("{s:i,s:I,s:I,s:I}", "level", next, "deadline", (json_int_t)deadline,
                    "updated_at", (json_int_t)now, "overdue_count",
                    (json_int_t)(jint(row, "overdue_count") + (level == 0)));
    rc = store_incident_update(s, id, jstr(row, "status"), set, err);
    if (rc)
        goto out;
    /* who answers now: the chain's unit at the new level */
    json_t *unit = json_object_get(json_object_get(json_object_get(row, "chain"), "chain"),
                                   incident_level_name(next));
    const char *uname = json_string_value(json_object_get(unit, "name"));
    char note[256];
    snprintf(note, sizeof note, "step %s overdue since %lld; escalated to %s %s",
             incident_step(st), (long long)json_integer_value(dl), incident_level_name(next),
             uname ? uname : "(not in the chain)");
    inc_actor sys = {0, "system", ROLE_NONE, NULL};
    h = history_row(&sys, now, "escalate", jstr(row, "status"), jstr(row, "status"), note);
    json_object_set_new(h, "data", json_pack("{s:s,s:s,s:I}", "from_level",
                                             incident_level_name(level), "to_level",
                                             incident_level_name(next), "deadline_was",
                                             json_integer_value(dl)));
    rc = store_incident_history_add(s, id, h, err);
    if (rc)
        goto out;
    json_object_update(row, set);
    rc = publish(s, row, err);
    if (rc)
        goto out;
    alert = json_pack("{s:s,s:O,s:O,s:s,s:s,s:O,s:I}", "kind", "overdue", "case_no",
                      json_object_get(row, "case_no"), "status", json_object_get(row, "status"),
                      "step", incident_step(st), "level", incident_level_name(next), "unit",
                      unit ? unit : json_null(), "deadline", (json_int_t)deadline);
    rc = store_change_append(s, "alerts", key, alert, err);
    if (!rc)
        rc = store_commit(s, err);
    if (!rc) {
        done = 1;
        log_warn("incidents", "overdue case=%s step=%s escalated to=%s unit=%s",
                 jstr(row, "case_no"), incident_step(st), incident_level_name(next),
                 uname ? uname : "-");
    }
out:
    if (!done)
        store_rollback(s);
    json_decref(row);
    json_decref(set);
    json_decref(h);
    json_decref(alert);
    return rc ? rc : done;
}

int incident_escalate_due(store *s, int64_t now, gc_err *err)
{
    int64_t *ids;
    size_t n;
    if (store_incidents_due(s, now, &ids, &n, err))
        return GC_EIO;
    int count = 0, rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = escalate_one(s, ids[i], now, err);
        if (rc > 0)
            count++;
    }
    g_free(ids);
    return rc < 0 ? rc : count;
}

/* ---- photos ---- */

int incident_photo_store(const char *dir, const unsigned char *buf, size_t len,
                         const char *part, json_t **photo, bool *has_gps, double *lon,
                         double *lat, gc_err *err)
{
    *photo = NULL;
    *has_gps = false;
    if (len > INCIDENT_MAX_PHOTO_BYTES)
        return gc_fail(err, GC_ETOOBIG, part, "%s: a photo may have at most 10 MiB", part);
    photo_info pi;
    if (photo_inspect(buf, len, &pi, err)) {
        snprintf(err->field, sizeof err->field, "%s", part);
        return GC_EINVAL;
    }
    char hash[65];
    photo_hash(buf, len, hash);
    if (photo_save(dir, buf, len, hash, err)) {
        log_error("incidents", "photo not stored part=%s: %s", part, err->msg);
        return GC_EIO;
    }
    *photo = json_pack("{s:s,s:I,s:o,s:s}", "hash", hash, "bytes", (json_int_t)len, "exif",
                       photo_info_json(&pi), "part", part);
    if (pi.has_gps) {
        *has_gps = true;
        *lon = pi.lon;
        *lat = pi.lat;
    }
    return 0;
}

/* ---- public ---- */

/* Masks mainland mobile numbers (138****1234) and ID-card numbers in text. */
static char *mask_personal(const char *text)
{
    static GRegex *phone, *idcard;
    if (g_once_init_enter(&phone)) {
        GRegex *p = g_regex_new("(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])",
                                G_REGEX_OPTIMIZE, 0, NULL);
        g_once_init_leave(&phone, p);
    }
    if (g_once_init_enter(&idcard)) {
        GRegex *p = g_regex_new("(?<![0-9])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])",
                                G_REGEX_OPTIMIZE, 0, NULL);
        g_once_init_leave(&idcard, p);
    }
    char *a = g_regex_replace(idcard, text, -1, 0, "\\1********\\2", 0, NULL);
    char *b = a ? g_regex_replace(phone, a, -1, 0, "\\1****\\2", 0, NULL) : NULL;
    g_free(a);
    return b ? b : g_strdup("");
}

json_t *incident_public(json_t *row)
{
    json_t *o = json_object();
    static const char *keep[] = {"case_no", "category", "status", "department", "rating",
                                 "created_at", "closed_at", "grid_id", "community_id",
                                 "street_id"};
    for (size_t i = 0; i < G_N_ELEMENTS(keep); i++) {
        json_t *v = json_object_get(row, keep[i]);
        if (v && !json_is_null(v))
            json_object_set(o, keep[i], v);
    }
    static const char *masked[] = {"description", "result"};
    for (size_t i = 0; i < G_N_ELEMENTS(masked); i++) {
        const char *t = jstr(row, masked[i]);
        if (t) {
            char *m = mask_personal(t);
            json_object_set_new(o, masked[i], json_string(m));
            g_free(m);
        }
    }
    json_t *chain = json_object_get(json_object_get(row, "chain"), "chain");
    json_t *grid = json_object_get(chain, "grid"), *comm = json_object_get(chain, "community");
    if (json_is_object(grid))
        json_object_set(o, "grid", json_object_get(grid, "name"));
    if (json_is_object(comm))
        json_object_set(o, "community", json_object_get(comm, "name"));
    /* the place to about ten metres: enough to find the pothole, not the flat */
    json_t *lon = json_object_get(row, "lon"), *lat = json_object_get(row, "lat");
    json_t *geom = json_null();
    if (json_is_number(lon) && json_is_number(lat))
        geom = json_pack("{s:s,s:[f,f]}", "type", "Point", "coordinates",
                         round(json_number_value(lon) * 1e4) / 1e4,
                         round(json_number_value(lat) * 1e4) / 1e4);
    return json_pack("{s:s,s:O,s:o,s:o}", "type", "Feature", "id", json_object_get(row, "case_no"),
                     "geometry", geom, "properties", o);
}
