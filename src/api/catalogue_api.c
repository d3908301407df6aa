/* catalogue_api: the admin-editable catalogue of incident categories and
 * the time limits of each step.
 *   GET /api/categories, PUT /api/categories/{code} (admin)
 *   GET /api/time-limits, PUT /api/time-limits (admin) */
#include <string.h>

#include "api.h"

static void h_categories(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *arr;
    gc_err err = {0};
    if (store_categories(e->store, &arr, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 200, json_pack("{s:o}", "categories", arr));
}

static void h_category_put(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *code = r->path + strlen("/api/categories/");
    json_t *in = http_json_object(r);
    if (!in)
        return;
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *kind = json_string_value(json_object_get(in, "kind"));
    gc_err err = {0};
    if (!*code || strlen(code) > 32 || strchr(code, '/'))
        http_reply_error(r, 400, "invalid", "code", "a category code has 1 to 32 characters");
    else if (!name || !*name)
        http_reply_error(r, 400, "invalid", "name", "name is required");
    else if (!kind)
        http_reply_error(r, 400, "invalid", "kind", "kind must be event or component");
    else {
        json_object_set_new(in, "code", json_string(code));
        json_t *act = json_object_get(in, "active");
        if (json_is_boolean(act))
            json_object_set_new(in, "active", json_integer(json_is_true(act)));
        if (store_category_put(e->store, in, &err))
            http_reply_err(r, &err);
        else
            http_reply_json(r, 200, json_incref(in));
    }
    json_decref(in);
}

static void h_limits(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *arr;
    gc_err err = {0};
    if (store_time_limits(e->store, &arr, &err))
        http_reply_err(r, &err);
    else
        http_reply_json(r, 200, json_pack("{s:o}", "time_limits", arr));
}

static void h_limit_put(http_req *r, void *ud)
{
    api_env *e = ud;
    json_t *in = http_json_object(r);
    if (!in)
        return;
    const char *cat = json_string_value(json_object_get(in, "category"));
    const char *step = json_string_value(json_object_get(in, "step"));
    json_t *sec = json_object_get(in, "seconds");
    gc_err err = {0};
    json_t *c = NULL;
    if (!cat || (strcmp(cat, "*") && store_category_get(e->store, cat, &c, NULL)))
        http_reply_error(r, 400, "invalid", "category", "category: a known code, or \"*\"");
    else if (!step)
        http_reply_error(r, 400, "invalid", "step",
                         "step must be register, dispatch, handle, verify or close");
    else if (!json_is_integer(sec) || json_integer_value(sec) <= 0)
        http_reply_error(r, 400, "invalid", "seconds", "seconds: a whole number > 0");
    else if (store_time_limit_put(e->store, cat, step, json_integer_value(sec), &err)) {
        snprintf(err.field, sizeof err.field, "step");
        http_reply_err(r, &err);
    } else
        http_reply_json(r, 200, json_incref(in));
    json_decref(c);
    json_decref(in);
}

void catalogue_api_register(http_server *s, api_env *e)
{
    http_route(s, "GET", "/api/categories", ROLE_ANY, 0, h_categories, e);
    http_route(s, "PUT", "/api/categories/*", ROLE_ADMIN, 0, h_category_put, e);
    http_route(s, "GET", "/api/time-limits", ROLE_ANY, 0, h_limits, e);
    http_route(s, "PUT", "/api/time-limits", ROLE_ADMIN, 0, h_limit_put, e);
}
