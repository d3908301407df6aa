/* cameras_api: the HTTP face of the camera registry.
 *   POST   /api/cameras         add one (admin)
 *   GET    /api/cameras         all, or those whose sector meets bbox= (staff)
 *   GET    /api/cameras/{id}    one, with its health and sector (staff)
 *   PUT    /api/cameras/{id}    replace one (admin)
 *   DELETE /api/cameras/{id}    remove one (admin)
 * Staff here is who sits at the desks: operators, planners, admins and
 * department users; grid workers and residents have no use for the camera
 * map. Only admins get the URL with its credentials; the others the public
 * form. The video engine sets the health columns (state, reason). Each
 * camera comes with the grid, community and street it stands in, from the
 * index of the moment (cameras_place). */
#include <string.h>

#include "api.h"
#include "gridcc/cameras.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"
#include "gridcc/video.h"

#define CAMERAS_READ CAMERAS_READ_ROLES
#define CAMERAS_WRITE ROLE_ADMIN
#define CAMERA_BODY_MAX (64 << 10)

static bool admin(const http_req *r)
{
    return r->who.role == ROLE_ADMIN;
}

static void reply_camera(http_req *r, int status, api_env *e, const char *id)
{
    store_camera c;
    gc_err err = {0};
    if (store_camera_get(e->store, id, &c, &err)) {
        http_reply_err(r, &err);
        return;
    }
    json_t *j = cameras_json(&c, admin(r));
    cameras_place(e->index, c.lon, c.lat, j);
    /* the engine's live word (rates, codec, size) over the stored state */
    json_t *h = e->video ? video_camera_health(e->video, id) : NULL;
    if (h)
        json_object_update(j, h);
    json_decref(h);
    http_reply_json(r, status, j);
}

static void h_create(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *in = http_json_object(r);
    if (!in)
        return;
    store_camera c;
    gc_err err = {0};
    int rc = cameras_from_json(in, NULL, &c, &err);
    json_decref(in);
    if (!rc)
        rc = cameras_save(e->store, &c, CAMERAS_CREATE, NULL, &err);
    if (rc) {
        http_reply_err(r, &err);
        return;
    }
    char *loc = g_strdup_printf("/api/cameras/%s", c.id);
    http_add_header(r, "Location", loc);
    g_free(loc);
    reply_camera(r, 201, e, c.id);
}

typedef struct list {
    json_t *arr;
    bool creds;
    const gc_index *ix;
} list;

static int add_one(void *ud, const store_camera *c)
{
    list *l = ud;
    json_t *j = cameras_json(c, l->creds);
    cameras_place(l->ix, c->lon, c->lat, j);
    json_array_append_new(l->arr, j);
    return 0;
}

static void h_list(http_req *r, void *ud)
{
    api_env *e = ud;
    double bbox[4];
    const char *bb = http_query(r, "bbox");
    gc_err err = {0};
    if (bb && gc_parse_doubles(bb, "bbox", bbox, 4, &err)) {
        http_reply_err(r, &err);
        return;
    }
    list l = {json_array(), admin(r), e->index};
    int64_t matched = 0;
    if (store_cameras_list(e->store, bb ? bbox : NULL, 0, 0, &matched, add_one, &l, &err)) {
        json_decref(l.arr);
        http_reply_err(r, &err);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o,s:I}", "cameras", l.arr, "count", (json_int_t)matched));
}

static void h_path(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *id = r->path + strlen("/api/cameras/");
    if (!*id || strchr(id, '/')) {
        http_reply_error(r, 404, "not_found", "path", "no such resource: %s", r->path);
        return;
    }
    gc_err err = {0};
    if (!strcmp(r->method_name, "GET") || r->method == HTTP_HEAD) {
        reply_camera(r, 200, e, id);
        return;
    }
    if (!strcmp(r->method_name, "DELETE")) {
        if (store_camera_delete(e->store, id, &err)) {
            http_reply_err(r, &err);
            return;
        }
        log_info("cameras", "deleted id=%s by=%s", id, r->who.name);
        http_reply(r, 204, NULL, NULL, 0);
        return;
    }
    json_t *in = http_json_object(r); /* PUT */
    if (!in)
        return;
    store_camera c;
    int rc = cameras_from_json(in, id, &c, &err);
    json_decref(in);
    if (!rc)
        rc = cameras_save(e->store, &c, CAMERAS_REPLACE, NULL, &err);
    if (rc) {
        http_reply_err(r, &err);
        return;
    }
    reply_camera(r, 200, e, c.id);
}

/* A stored file's URL on the case, or null. */
static json_t *media_url(const char *incident, json_t *cam, const char *kind, const char *file)
{
    if (!json_is_string(json_object_get(cam, kind)))
        return json_null();
    char *c =
        g_uri_escape_string(json_string_value(json_object_get(cam, "camera_id")), NULL, FALSE);
    json_t *u = json_sprintf("/api/incidents/%s/cameras/%s/%s", incident, c, file);
    g_free(c);
    return u;
}

void cameras_api_incident(api_env *e, json_t *row)
{
    json_t *arr = NULL;
    gc_err err = {0};
    json_int_t id = json_integer_value(json_object_get(row, "id"));
    if (store_incident_cameras(e->store, id, &arr, &err)) {
        log_warn("cameras", "incident cameras unread id=%lld: %s", (long long)id, err.msg);
        json_object_set_new(row, "cameras", json_array());
        return;
    }
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    json_t *out = json_array(), *c;
    size_t i;
    json_array_foreach(arr, i, c)
    {
        json_array_append_new(out, json_pack("{s:O,s:O,s:O,s:O,s:o,s:o,s:O}", "id",
                                             json_object_get(c, "camera_id"), "name",
                                             json_object_get(c, "name"), "distance_m",
                                             json_object_get(c, "distance_m"), "bearing",
                                             json_object_get(c, "bearing"), "snapshot",
                                             media_url(key, c, "snapshot", "snapshot.jpg"), "clip",
                                             media_url(key, c, "clip", "clip.mp4"), "media_state",
                                             json_object_get(c, "media_state")));
    }
    json_decref(arr);
    json_object_set_new(row, "cameras", out);
}

void cameras_api_register(http_server *s, api_env *e)
{
    http_route(s, "POST", "/api/cameras", CAMERAS_WRITE, CAMERA_BODY_MAX, h_create, e);
    http_route(s, "GET", "/api/cameras", CAMERAS_READ, 0, h_list, e);
    http_route(s, "GET", "/api/cameras/*", CAMERAS_READ, 0, h_path, e);
    http_route(s, "PUT", "/api/cameras/*", CAMERAS_WRITE, CAMERA_BODY_MAX, h_path, e);
    http_route(s, "DELETE", "/api/cameras/*", CAMERAS_WRITE, 0, h_path, e);
}
