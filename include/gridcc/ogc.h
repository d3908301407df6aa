/* ogc: OGC API - Features Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0) over the
 * stored layers, rooted at /ogc. One collection per layer. */
#ifndef GRIDCC_OGC_H
#define GRIDCC_OGC_H

#include <stdbool.h>

#include "gridcc/http.h"
#include "gridcc/store.h"

#define OGC_LIMIT_DEFAULT 100
#define OGC_LIMIT_MAX 10000

typedef struct ogc_env {
    store *store;
    /* Returns true if the request may read layers; otherwise it has replied
     * (401/403). open: the resource is public (landing page, conformance). */
    bool (*authorize)(void *ud, http_req *r, bool open);
    void *ud;
} ogc_env;

void ogc_register(http_server *s, ogc_env *env);

#endif
