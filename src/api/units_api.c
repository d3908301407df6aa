/* units_api: what lies under a unit of the district (a grid, a community, a
 * street): the figures of 人地物事组织 the layers hold (people and
 * households from the buildings' and their units' properties, buildings per
 * use), for the dashboard's grid panel. Cases and workers of the unit come
 * from their own routes. */
#include <string.h>

#include "api.h"

static void h_profile(http_req *r, void *ud)
{
    api_env *e = ud;
    /* /api/units/{id}/profile */
    const char *rest = r->path + strlen("/api/units/");
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/profile") || slash == rest || slash - rest > 64) {
        http_reply_error(r, 404, "not_found", "path", "no route %s (GET /api/units/{id}/profile)",
                         r->path);
        return;
    }
    char id[65];
    g_strlcpy(id, rest, (size_t)(slash - rest) + 1);
    store_unit_profile p;
    gc_err err = {0};
    if (store_unit_profile_get(e->store, id, &p, &err)) {
        http_reply_err(r, &err);
        return;
    }
    http_reply_json(r, 200,
                    json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "id", id, "buildings",
                              (json_int_t)p.buildings, "units", (json_int_t)p.units, "households",
                              (json_int_t)p.households, "population", (json_int_t)p.population,
                              "buildings_by_use", p.by_use));
}

void units_api_register(http_server *h, api_env *e)
{
    http_route(h, "GET", "/api/units/*", ROLE_STAFF, 0, h_profile, e);
}
