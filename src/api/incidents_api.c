/* incidents_api: the HTTP face of the incidents module.
 *   POST /api/incidents                 a report: JSON, or multipart with JPEG photos
 *   GET  /api/incidents                 list and filter (GeoJSON), paged
 *   GET  /api/incidents/{id}            one case with photos and its audit trail
 *   POST /api/incidents/{id}/actions    take a step of the loop (or several: steps)
 *   GET  /api/incidents/stats           per grid / community / street / district
 *   GET  /api/incidents/ranking         the 红旗网格 of a month
 *   GET  /api/public/incidents          closed cases and their results, anonymous
 *   GET  /api/photos/{hash}             a stored photo
 *   GET|PUT /api/categories, /api/time-limits   the admin-editable catalogue */
#include <errno.h>
#include <gio/gio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "gridcc/hotline.h"
#include "gridcc/incidents.h"
#include "gridcc/log.h"
#include "gridcc/photo.h"
#include "gridcc/parse.h"

#define MAX_PHOTOS 9
#define MAX_REPORT_BODY ((size_t)MAX_PHOTOS * INCIDENT_MAX_PHOTO_BYTES + (1 << 20))

static inc_actor actor_of(const gc_who *u)
{
    return (inc_actor){u->id, u->name, u->role, u->department[0] ? u->department : NULL};
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* A JSON number from a form's text field; NULL if absent, and sets *bad if
 * not a number. */
static json_t *form_number(GHashTable *f, const char *k, bool *bad)
{
    const char *v = g_hash_table_lookup(f, k);
    double d;
    if (!v || !*v)
        return NULL;
    if (gc_parse_double(v, k, -INFINITY, INFINITY, &d, NULL)) {
        *bad = true;
        return NULL;
    }
    return json_real(d);
}

static const char *const REPORT_FIELDS[] = {
    "category", "description", "lon", "lat", "x", "y", "crs", "address", "source",
    "reporter_name", "reporter_phone", "external_id", "action", "note", "department",
    "result", "rating", "comment"};

/* Reads a form into the same JSON a JSON body would give. */
static json_t *form_json(http_req *r, http_form *form, gc_err *err)
{
    if (http_form_parse(r, REPORT_FIELDS, G_N_ELEMENTS(REPORT_FIELDS), form, err))
        return NULL;
    json_t *in = json_object();
    static const char *nums[] = {"lon", "lat", "x", "y", "rating"};
    for (size_t i = 0; i < G_N_ELEMENTS(REPORT_FIELDS); i++) {
        const char *k = REPORT_FIELDS[i];
        bool isnum = false;
        for (size_t j = 0; j < G_N_ELEMENTS(nums); j++)
            isnum |= !strcmp(k, nums[j]);
        if (isnum) {
            bool bad = false;
            json_t *v = form_number(form->fields, k, &bad);
            if (bad) {
                json_decref(in);
                gc_fail(err, GC_EINVAL, k, "%s must be a number", k);
                return NULL;
            }
            if (v) {
                if (!strcmp(k, "rating"))
                    json_object_set_new(in, k, json_integer((json_int_t)json_real_value(v)));
                else
                    json_object_set(in, k, v);
                json_decref(v);
            }
        } else {
            const char *v = g_hash_table_lookup(form->fields, k);
            if (v && *v)
                json_object_set_new(in, k, json_string(v));
        }
    }
    const char *name = g_hash_table_lookup(form->fields, "reporter_name");
    const char *phone = g_hash_table_lookup(form->fields, "reporter_phone");
    if (name || phone) {
        json_t *rep = json_object();
        if (name)
            json_object_set_new(rep, "name", json_string(name));
        if (phone)
            json_object_set_new(rep, "phone", json_string(phone));
        json_object_set_new(in, "reporter", rep);
    }
    return in;
}

/* Checks and stores each photo part. Good ones go to photos[] as {hash,
 * bytes, exif, part}; bad ones to errors[] naming the part. The first GPS
 * position found is returned in *gps. */
static void take_photos(const char *dir, http_form *form, json_t *photos, json_t *errors,
                        json_t **gps)
{
    for (guint i = 0; i < form->files->len; i++) {
        http_form_file *f = form->files->pdata[i];
        char part[300];
        snprintf(part, sizeof part, "%s%s%s", f->name, f->filename[0] ? ":" : "", f->filename);
        if ((int)i >= MAX_PHOTOS) {
            json_array_append_new(errors, json_pack("{s:s,s:s,s:s}", "field", part, "code",
                                                    "too_many", "message",
                                                    "at most 9 photos per report"));
            continue;
        }
        gc_err e = {0};
        json_t *photo;
        bool has_gps;
        double lon, lat;
        if (incident_photo_store(dir, f->data->data, f->data->len, part, &photo, &has_gps, &lon,
                                 &lat, &e)) {
            json_array_append_new(errors, json_pack("{s:s,s:s,s:s}", "field", part, "code",
                                                    e.code == GC_EFULL     ? "insufficient_storage"
                                                    : e.code == GC_EIO     ? "io_error"
                                                    : e.code == GC_ETOOBIG ? "too_big"
                                                                           : "invalid_photo",
                                                    "message", e.msg));
            continue;
        }
        json_array_append_new(photos, photo);
        if (!*gps && has_gps)
            *gps = json_pack("{s:f,s:f,s:s}", "lon", lon, "lat", lat, "part", part);
    }
}

/* The body as JSON, from a form or a JSON object; NULL once it has replied
 * 400. A form's files stay in *form for the caller. */
static json_t *body_json(http_req *r, http_form *form)
{
    gc_err err = {0};
    json_t *in;
    if (!http_is_form(r))
        return http_json_object(r);
    if (!(in = form_json(r, form, &err))) {
        http_form_clear(form);
        http_reply_err(r, &err);
    }
    return in;
}

/* A photo not stored for want of room refuses the whole request with 507:
 * kept without its photo, a report would be acknowledged short of what was
 * sent, and the sender could not tell a retry from a duplicate. True if it
 * answered. */
static bool reply_if_full(http_req *r, json_t *photo_errors)
{
    size_t i;
    json_t *pe;
    json_array_foreach(photo_errors, i, pe)
    {
        if (strcmp(json_string_value(json_object_get(pe, "code")), "insufficient_storage"))
            continue;
        http_reply_error(r, 507, "insufficient_storage",
                         json_string_value(json_object_get(pe, "field")),
                         "%s; nothing was stored, send again when there is room",
                         json_string_value(json_object_get(pe, "message")));
        return true;
    }
    return false;
}

static void reply_incident(http_req *r, int status, json_t *row, json_t *photo_errors)
{
    json_t *f = incident_feature(row);
    json_t *props = json_object_get(f, "properties");
    json_object_set(props, "reporter", json_object_get(row, "reporter"));
    if (photo_errors && json_array_size(photo_errors)) {
        json_t *first = json_array_get(photo_errors, 0);
        http_reply_json(r, 400,
                        json_pack("{s:{s:i,s:s,s:O,s:O,s:O},s:o}", "error", "status", 400, "code",
                                  "invalid_photo", "field", json_object_get(first, "field"),
                                  "message", json_object_get(first, "message"), "photos",
                                  photo_errors, "incident", f));
        return;
    }
    http_reply_json(r, status, f);
}

/* A report on its way: the photo work runs on a worker thread, then the
 * case is written in the next group commit, then the client hears. */
typedef struct report_job {
    api_env *e;
    http_req *r;
    gc_who u;
    json_t *in;
    http_form form;
    json_t *photos, *perrs, *gps;
    char key[128];
    /* set by the write */
    json_t *row;
    bool existing;
    gc_err err;
} report_job;

static void report_job_free(report_job *j)
{
    http_form_clear(&j->form);
    json_decref(j->in);
    json_decref(j->photos);
    json_decref(j->perrs);
    json_decref(j->gps);
    json_decref(j->row);
    g_free(j);
}

static int report_write(store *s, void *ud)
{
    report_job *j = ud;
    inc_actor who = actor_of(&j->u);
    return incident_report(s, j->e->index, &who, j->in, j->key[0] ? j->key : NULL, now_s(),
                           &j->row, &j->existing, &j->err);
}

static void report_done(void *ud, int write_rc, const gc_err *commit_err)
{
    report_job *j = ud;
    http_req *r = j->r;
    if (commit_err) {
        http_reply_err(r, commit_err);
    } else if (write_rc) {
        http_reply_err(r, &j->err);
    } else {
        if (j->existing)
            http_add_header(r, "Idempotent-Replayed", "true");
        else
            api_incidents_changed(j->e);
        char loc[96];
        snprintf(loc, sizeof loc, "/api/incidents/%s",
                 json_string_value(json_object_get(j->row, "case_no")));
        http_add_header(r, "Location", loc);
        cameras_api_incident(j->e, j->row);
        reply_incident(r, j->existing ? 200 : 201, j->row, j->perrs);
    }
    http_complete(r);
    report_job_free(j);
}

/* Back on the loop with the photos stored: decide the place, then queue the
 * case for the next group commit. */
static void report_file(report_job *j)
{
    json_t *in = j->in;
    if (reply_if_full(j->r, j->perrs)) {
        http_complete(j->r);
        report_job_free(j);
        return;
    }
    json_object_set(in, "photos", j->photos);
    bool has_loc = json_object_get(in, "lon") || json_object_get(in, "x");
    if (!has_loc && !j->gps && !json_object_get(in, "address") && !json_array_size(j->perrs)) {
        http_reply_error(j->r, 400, "invalid", "lon",
                         "a report needs a place: lon/lat (or x/y with crs), an address, or a "
                         "photo whose EXIF has GPS");
        http_complete(j->r);
        report_job_free(j);
        return;
    }
    json_t *flags = json_array();
    /* a photo that failed must not lose the text: keep the report, unplaced */
    if (!has_loc && !j->gps && json_array_size(j->perrs))
        json_array_append_new(flags, json_pack("{s:s}", "flag", "unplaced"));
    json_object_set_new(in, "flags", flags);
    if (j->gps)
        json_object_set(in, "photo_position", j->gps);
    store_group_add(j->e->group, report_write, report_done, j);
}

static void photos_work(void *data)
{
    report_job *j = data;
    take_photos(j->e->photo_dir, &j->form, j->photos, j->perrs, &j->gps);
}

static void photos_done(void *data)
{
    report_job *j = data;
    http_form_clear(&j->form);   /* the bytes are on disk now */
    report_file(j);
}

static void h_report(http_req *r, void *ud)
{
    api_env *e = ud;
    const gc_who u = r->who;
    if (r->idempotency_too_long) {
        http_reply_error(r, 400, "invalid", "Idempotency-Key",
                         "Idempotency-Key: at most 127 characters");
        return;
    }
    gc_err err = {0};
    http_form form = {0};
    json_t *in = body_json(r, &form);
    if (!in)
        return;
    const char *key = r->idempotency_key[0] ? r->idempotency_key : NULL;
    /* a retry of a stored report answers at once, before any photo work */
    int64_t prior = 0;
    if (key && !store_incident_find(e->store, u.id, key, NULL, NULL, &prior, &err) && prior) {
        char id[32];
        json_t *row;
        snprintf(id, sizeof id, "%lld", (long long)prior);
        if (!incident_get(e->store, id, false, &row, &err)) {
            http_add_header(r, "Idempotent-Replayed", "true");
            reply_incident(r, 200, row, NULL);
            json_decref(row);
        } else {
            http_reply_err(r, &err);
        }
        json_decref(in);
        http_form_clear(&form);
        return;
    }
    report_job *j = g_new0(report_job, 1);
    j->e = e;
    j->r = r;
    j->u = u;
    j->in = in;
    j->form = form;
    j->photos = json_array();
    j->perrs = json_array();
    snprintf(j->key, sizeof j->key, "%s", key ? key : "");
    http_defer(r);
    if (!form.files || !form.files->len) {
        report_file(j);
        return;
    }
    /* checking, hashing and fsyncing megabytes of JPEG is no work for the loop */
    api_offload(e, r, photos_work, photos_done, j);
}

/* ---- reading ---- */

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    return gc_parse_int(s, "n", lo, hi, out, NULL) == 0;
}

/* Reads the list filters from the query; replies 400 and returns false on a
 * bad one. */
static bool read_filter(http_req *r, store_incident_filter *f)
{
    f->statuses = http_query(r, "status");
    if (f->statuses) {
        char **parts = g_strsplit(f->statuses, ",", -1);
        for (char **p = parts; *p; p++)
            if (incident_status_parse(g_strstrip(*p)) < 0) {
                http_reply_error(r, 400, "invalid", "status",
                                 "unknown status '%s': reported, registered, rejected, "
                                 "dispatched, handled, verified, closed, evaluated",
                                 *p);
                g_strfreev(parts);
                return false;
            }
        g_strfreev(parts);
    }
    f->category = http_query(r, "category");
    f->source = http_query(r, "source");
    f->department = http_query(r, "department");
    static const char *levels[] = {"grid", "community", "street", "district", "building"};
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++)
        if (http_query(r, levels[i])) {
            f->unit_level = levels[i];
            f->unit_id = http_query(r, levels[i]);
        }
    const char *keys[] = {"from", "to"};
    int64_t *dst[] = {&f->from, &f->to};
    for (int i = 0; i < 2; i++) {
        const char *v = http_query(r, keys[i]);
        if (v && !gc_time_parse(v, dst[i])) {
            http_reply_error(r, 400, "invalid", keys[i],
                             "%s: Unix seconds, an ISO 8601 date-time or a date", keys[i]);
            return false;
        }
    }
    const char *bbox = http_query(r, "bbox");
    if (bbox) {
        if (gc_parse_doubles(bbox, "bbox", f->bbox, 4, NULL) ||
            f->bbox[0] > f->bbox[2] || f->bbox[1] > f->bbox[3]) {
            http_reply_error(r, 400, "invalid", "bbox", "bbox: minlon,minlat,maxlon,maxlat");
            return false;
        }
        f->has_bbox = true;
    }
    const char *od = http_query(r, "overdue");
    f->overdue = od && (!strcmp(od, "true") || !strcmp(od, "1"));
    const char *up = http_query(r, "unplaced");
    f->unplaced = up && (!strcmp(up, "true") || !strcmp(up, "1"));
    f->now = now_s();
    f->limit = 100;
    const char *lim = http_query(r, "limit"), *off = http_query(r, "offset");
    if (lim && !parse_int(lim, 1, 10000, &f->limit)) {
        http_reply_error(r, 400, "invalid", "limit", "limit: 1 to 10000");
        return false;
    }
    if (off && !parse_int(off, 0, INT64_MAX / 2, &f->offset)) {
        http_reply_error(r, 400, "invalid", "offset", "offset: a whole number >= 0");
        return false;
    }
    return true;
}

typedef struct list_ctx {
    json_t *features;
    bool public_view;
} list_ctx;

static int list_row(void *ud, json_t *row)
{
    list_ctx *c = ud;
    json_array_append_new(c->features, c->public_view ? incident_public(row) : incident_feature(row));
    return 0;
}

static void reply_list(http_req *r, api_env *e, store_incident_filter *f, bool public_view)
{
    list_ctx c = {json_array(), public_view};
    int64_t matched = 0;
    gc_err err = {0};
    if (store_incidents_query(e->store, f, &matched, list_row, &c, &err)) {
        json_decref(c.features);
        http_reply_err(r, &err);
        return;
    }
    http_reply_json(r, 200,
                    json_pack("{s:s,s:I,s:I,s:o}", "type", "FeatureCollection", "numberMatched",
                              (json_int_t)matched, "numberReturned",
                              (json_int_t)json_array_size(c.features), "features", c.features));
}

/* Who sees which cases, one rule for the list and for each case read: a
 * resident their own reports, a department user what was dispatched to
 * their department, staff everything. */
void incidents_visibility(const gc_who *u, store_incident_filter *f)
{
    if (u->role == ROLE_RESIDENT)
        f->reporter_id = u->id;
    else if (u->role == ROLE_DEPARTMENT)
        f->department = u->department;
}

bool incidents_may_see(const gc_who *u, json_t *row)
{
    if (u->role == ROLE_RESIDENT)
        return json_integer_value(json_object_get(row, "reporter_id")) == u->id;
    if (u->role == ROLE_DEPARTMENT)
        return !g_strcmp0(json_string_value(json_object_get(row, "department")), u->department);
    return u->role != ROLE_NONE;
}

static void h_list(http_req *r, void *ud)
{
    api_env *e = ud;
    store_incident_filter f = {0};
    if (!read_filter(r, &f))
        return;
    incidents_visibility(&r->who, &f);
    reply_list(r, e, &f, false);
}

static void h_public(http_req *r, void *ud)
{
    api_env *e = ud;
    store_incident_filter f = {0};
    if (!read_filter(r, &f))
        return;
    f.statuses = "closed,evaluated";   /* 结果公开: finished cases only */
    f.department = NULL;
    reply_list(r, e, &f, true);
}

static void h_one(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *rest = r->path + strlen("/api/incidents/");
    if (strchr(rest, '/') && !incident_media_serve(r, e, rest)) {
        http_reply_error(r, 404, "not_found", "path", "no such resource: %s", r->path);
        return;
    }
    if (strchr(rest, '/'))   /* a camera's footage of the case, answered */
        return;
    json_t *row;
    gc_err err = {0};
    if (incident_get(e->store, rest, true, &row, &err) || !incidents_may_see(&r->who, row)) {
        if (!err.code) {
            json_decref(row);
            gc_fail(&err, GC_ENOTFOUND, "id", "no incident '%s'", rest);
        }
        http_reply_err(r, &err);
        return;
    }
    cameras_api_incident(e, row);
    reply_incident(r, 200, row, NULL);
    json_decref(row);
}

/* One step of the loop on case id: in is {"action", "note", …, "at"}. "at"
 * records a step that happened in the past, for history brought in from
 * another system; only an admin may, since it sets the clocks the
 * statistics read. */
static int act_step(api_env *e, const gc_who *u, const char *id, json_t *in, json_t **row,
                    gc_err *err)
{
    int act = incident_action_parse(json_string_value(json_object_get(in, "action")));
    if (act < 0)
        return gc_fail(err, GC_EINVAL, "action",
                       "action must be register, reject, dispatch, handle, verify, send_back, "
                       "close or evaluate");
    int64_t now = now_s(), at = now;
    json_t *jat = json_object_get(in, "at");
    if (jat && !json_is_null(jat)) {
        if (u->role != ROLE_ADMIN)
            return gc_fail(err, GC_EFORBIDDEN, "at",
                           "only an admin may record a step at a past time");
        if (json_is_integer(jat))
            at = json_integer_value(jat);
        else if (!json_is_string(jat) || !gc_time_parse(json_string_value(jat), &at))
            return gc_fail(err, GC_EINVAL, "at", "at must be Unix seconds or an ISO 8601 time");
        if (at > now)
            return gc_fail(err, GC_EINVAL, "at", "at may not be in the future");
        json_object_set_new(in, "at", json_integer(at));
    } else {
        json_object_del(in, "at");
    }
    inc_actor who = actor_of(u);
    return incident_act(e->store, id, (inc_action)act, &who, in, at, row, err);
}

/* The loop's 409 names the actions legal from the case's status, also
 * machine-readable. step: the index of the refused step of a "steps" list
 * (its field is then named steps[N].field), or -1. */
static void reply_act_error(http_req *r, api_env *e, const char *id, int rc, gc_err *err,
                            int step)
{
    bool illegal = rc == GC_ECONFLICT && !strcmp(err->field, "action");
    if (step >= 0) {
        char field[sizeof err->field];
        snprintf(field, sizeof field, "steps[%d]%s%.100s", step, err->field[0] ? "." : "",
                 err->field);
        snprintf(err->field, sizeof err->field, "%s", field);
    }
    if (!illegal) {
        http_reply_err(r, err);
        return;
    }
    json_t *cur;
    char allowed[128] = "";
    if (!store_incident_get(e->store, id, &cur, NULL)) {
        incident_allowed(incident_status_parse(json_string_value(json_object_get(cur, "status"))),
                         allowed, sizeof allowed);
        json_decref(cur);
    }
    json_t *al = json_array();
    char **parts = g_strsplit(allowed, ",", -1);
    for (char **p = parts; *p; p++)
        if (**p)
            json_array_append_new(al, json_string(*p));
    g_strfreev(parts);
    http_reply_json(r, 409,
                    json_pack("{s:{s:i,s:s,s:s,s:s,s:o}}", "error", "status", 409, "code",
                              "illegal_transition", "field", err->field, "message", err->msg,
                              "allowed", al));
}

static void h_act(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *rest = r->path + strlen("/api/incidents/");
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/actions")) {
        http_reply_error(r, 404, "not_found", "path", "no such resource: %s", r->path);
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)(slash - rest), rest);
    gc_err err = {0};
    http_form form = {0};
    json_t *in = body_json(r, &form);
    if (!in)
        return;
    /* "steps": a case's history in one request, so that nothing (the
     * escalation timer) acts on it between two recorded steps */
    json_t *steps = json_object_get(in, "steps");
    if (steps && (!json_is_array(steps) || !json_array_size(steps) || form.files)) {
        http_form_clear(&form);
        json_decref(in);
        http_reply_error(r, 400, "invalid", "steps",
                         "steps must be a non-empty array of actions, in a JSON body");
        return;
    }
    if (!steps && incident_action_parse(json_string_value(json_object_get(in, "action"))) < 0) {
        http_form_clear(&form);
        json_decref(in);
        http_reply_error(r, 400, "invalid", "action",
                         "action must be register, reject, dispatch, handle, verify, "
                         "send_back, close or evaluate");
        return;
    }
    /* a case the caller may not see gets no more than a 403 (not its status
     * through a 409, nor photos written for it); a missing one a 404 */
    json_t *seen = NULL;
    if (incident_get(e->store, id, false, &seen, &err) || !incidents_may_see(&r->who, seen)) {
        http_form_clear(&form);
        json_decref(in);
        if (err.code) {
            http_reply_err(r, &err);
        } else {
            json_decref(seen);
            http_reply_error(r, 403, "forbidden", "action", "role %s may not act on this case",
                             role_name(r->who.role));
        }
        return;
    }
    json_decref(seen);
    json_t *perrs = json_array();
    if (form.files) {
        json_t *photos = json_array(), *gps = NULL;
        take_photos(e->photo_dir, &form, photos, perrs, &gps);
        json_decref(gps);
        json_object_set_new(in, "photos", photos);
    }
    http_form_clear(&form);
    if (reply_if_full(r, perrs)) {
        json_decref(perrs);
        json_decref(in);
        return;
    }
    if (json_array_size(perrs)) {
        json_t *first = json_array_get(perrs, 0);
        http_reply_error(r, 400, "invalid_photo", json_string_value(json_object_get(first, "field")),
                         "%s", json_string_value(json_object_get(first, "message")));
        json_decref(perrs);
        json_decref(in);
        return;
    }
    json_decref(perrs);
    /* who may take which step is the loop's rule (incident_check): its 403
     * names the action, and the answer carries the case only to those it
     * allows */
    json_t *row = NULL;
    int rc = 0, failed = -1;
    if (!steps) {
        rc = act_step(e, &r->who, id, in, &row, &err);
    } else {
        /* each step is a savepoint of one transaction (one fsync for a
         * case's history): the steps before a refused one stay, and the
         * error names the refused one's index */
        if (store_begin(e->store, &err)) {
            json_decref(in);
            http_reply_err(r, &err);
            return;
        }
        size_t i;
        json_t *st;
        json_array_foreach(steps, i, st)
        {
            json_decref(row);
            row = NULL;
            if (!json_is_object(st))
                rc = gc_fail(&err, GC_EINVAL, "", "steps[%zu] is not an object", i);
            else
                rc = act_step(e, &r->who, id, st, &row, &err);
            if (rc) {
                failed = (int)i;
                break;
            }
        }
        gc_err cerr = {0};
        if (store_commit(e->store, &cerr)) {
            store_rollback(e->store);
            json_decref(row);
            json_decref(in);
            http_reply_err(r, &cerr);
            return;
        }
        if (failed > 0)
            api_incidents_changed(e);
    }
    json_decref(in);
    if (rc) {
        reply_act_error(r, e, id, rc, &err, failed);
        return;
    }
    api_incidents_changed(e);
    reply_incident(r, 200, row, NULL);
    json_decref(row);
}


/* ---- statistics ---- */

static bool month_range(const char *m, int64_t *from, int64_t *to)
{
    int y, mo;
    char extra;
    if (!m || sscanf(m, "%d-%d%c", &y, &mo, &extra) != 2 || mo < 1 || mo > 12 || y < 1970 ||
        y > 9999)
        return false;
    GTimeZone *tz = g_time_zone_new_local();
    GDateTime *a = g_date_time_new(tz, y, mo, 1, 0, 0, 0);
    GDateTime *b = g_date_time_add_months(a, 1);
    *from = g_date_time_to_unix(a);
    *to = g_date_time_to_unix(b);
    g_date_time_unref(a);
    g_date_time_unref(b);
    g_time_zone_unref(tz);
    return true;
}

static void h_stats(http_req *r, void *ud)
{
    api_env *e = ud;
    store_incident_filter f = {0};
    if (!read_filter(r, &f))
        return;
    const char *level = http_query(r, "level");
    json_t *out;
    gc_err err = {0};
    if (incident_stats(e->store, level ? level : "grid", f.from, f.to, now_s(), &out, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 200, out);
}

static void h_ranking(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *m = http_query(r, "month");
    int64_t from, to;
    char cur[16];
    if (!m) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(cur, sizeof cur, "%Y-%m", &tm);
        m = cur;
    }
    if (!month_range(m, &from, &to)) {
        http_reply_error(r, 400, "invalid", "month", "month: YYYY-MM");
        return;
    }
    json_t *out;
    gc_err err = {0};
    if (incident_ranking(e->store, from, to, now_s(), &out, &err)) {
        http_reply_err(r, &err);
        return;
    }
    json_object_set_new(out, "month", json_string(m));
    http_reply_json(r, 200, out);
}

/* ---- photos ---- */

static void h_photo(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *hash = r->path + strlen("/api/photos/");
    char h[80];
    snprintf(h, sizeof h, "%s", hash);
    char *dot = strstr(h, ".jpg");
    if (dot && !dot[4])
        *dot = 0;
    char *path = photo_path(e->photo_dir, h);
    gchar *data = NULL;
    gsize len = 0;
    if (!path || !g_file_get_contents(path, &data, &len, NULL)) {
        g_free(path);
        http_reply_error(r, 404, "not_found", "hash", "no photo %s", h);
        return;
    }
    g_free(path);
    http_add_header(r, "Cache-Control", "private, max-age=31536000, immutable");
    http_reply(r, 200, "image/jpeg", data, len);
    g_free(data);
}

/* One 12345 work order, as the hotline system pushes it. */
static void h_hotline(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *in = http_json_object(r);
    if (!in)
        return;
    inc_actor who = actor_of(&r->who);
    json_t *row;
    bool existing;
    gc_err err = {0};
    if (hotline_order(e->store, e->index, api_addresses(e), &who, in, &row,
                      &existing, &err)) {
        http_reply_err(r, &err);
    } else {
        if (!existing)
            api_incidents_changed(e);
        else
            http_add_header(r, "Idempotent-Replayed", "true");
        reply_incident(r, existing ? 200 : 201, row, NULL);
        json_decref(row);
    }
    json_decref(in);
}

void incidents_api_register(http_server *h, api_env *e)
{
    http_route(h, "POST", "/api/hotline", ROLE_OPERATOR | ROLE_ADMIN, 0, h_hotline, e);
    http_route(h, "GET", "/api/incidents", ROLE_ANY, 0, h_list, e);
    http_route_form(h, "POST", "/api/incidents", ROLE_ANY & ~ROLE_PLANNER, MAX_REPORT_BODY,
                    REPORT_FIELDS, G_N_ELEMENTS(REPORT_FIELDS), h_report, e);
    http_route(h, "GET", "/api/incidents/*", ROLE_ANY, 0, h_one, e);
    /* acting on a case: the loop's rules say which step each role may take,
     * and their 403 names the action */
    http_route_form(h, "POST", "/api/incidents/*", ROLE_ANY, MAX_REPORT_BODY, REPORT_FIELDS,
                    G_N_ELEMENTS(REPORT_FIELDS), h_act, e);
    http_route(h, "GET", "/api/incidents/stats", ROLE_STAFF, 0, h_stats, e);
    http_route(h, "GET", "/api/incidents/ranking", ROLE_STAFF, 0, h_ranking, e);
    http_route(h, "GET", "/api/public/incidents", HTTP_PUBLIC, 0, h_public, e);
    http_route(h, "GET", "/api/photos/*", ROLE_ANY, 0, h_photo, e);
}
