/* api: what every HTTP face of gridcc is handed, and the helpers they share.
 *
 * The daemon (app.c) owns the state and fills one api_env; each face's
 * *_register takes the server and that env, and nothing else of the
 * daemon's. A face declares who may call each route (http_route's roles);
 * api_authorize, the server's authorizer, checks once before the handler
 * runs and leaves the caller in r->who. */
#ifndef GRIDCC_API_H
#define GRIDCC_API_H

#include <glib.h>
#include <stdbool.h>

#include "gridcc/auth.h"
#include "gridcc/http.h"
#include "gridcc/index.h"
#include "gridcc/live.h"
#include "gridcc/store.h"

#include "gridcc/patrol.h"

struct address_index;
struct osmand;
struct tiles;
struct video;

typedef struct api_env api_env;
struct api_env {
    store *store;                 /* the loop's connection */
    store_group *group;           /* group commit of small writes (reports) */
    live *live;                   /* the /live bus */
    patrol *patrol;               /* workers' newest fixes, patrol rules, alerts */
    struct osmand *osmand;        /* the OsmAnd port and the fix writer */
    const gc_index *index;        /* swapped by the daemon after a rebuild: read it per request */
    struct tiles *tiles;          /* vector tiles and their cache (thread-safe) */
    struct video *video;          /* the camera engine; NULL in tools without one */
    const char *photo_dir;        /* DB.photos/ */
    const char *media_dir;        /* DB.media/: the footage of the cameras that saw a case */
    bool public_read;             /* OGC API readable without a token */
    int busy;                     /* work on threads not yet back: shutdown waits for it */
    auth_limiter *lim_user;       /* failed logins per user name */
    auth_limiter *lim_peer;       /* failed logins and bad credentials per address */
    /* Building names for address matching, built on first use from the
     * store and dropped when the layers change. Borrowed, like index. */
    const struct address_index *(*addresses)(api_env *e);
    /* Cases changed: the deadline timer is re-armed for the earliest one. */
    void (*incidents_changed)(api_env *e);
    void *daemon;                 /* the daemon's own state, for the two hooks */
};

/* The server's authorizer (http_server_authorize with the env as ud):
 * Authorization: Bearer TOKEN, or Basic with a user name and one of that
 * user's tokens as the password (clients such as QGIS that can send no other
 * header). 401 with WWW-Authenticate naming both schemes when none or a bad
 * one is sent, 403 for a role the route does not take, 429 when an address
 * has sent too many bad credentials. */
bool api_authorize(void *env, http_req *r, unsigned roles);
/* The same check for a bare token (the /live websocket's): true and *who
 * filled, or false with err saying why. */
bool api_check_token(api_env *e, const char *token, unsigned roles, store_user *u, gc_err *err);

void api_who_from(gc_who *w, const store_user *u);

/* Work that must not run on the loop (argon2id, photos, GEOS): the request
 * is deferred, work(data) runs on a thread, then done(data) on the loop,
 * which answers and calls http_complete. Shutdown waits for it. */
typedef void (*api_work_fn)(void *data);
typedef void (*api_done_fn)(void *data);
void api_offload(api_env *e, http_req *r, api_work_fn work, api_done_fn done, void *data);

static inline const struct address_index *api_addresses(api_env *e) { return e->addresses(e); }
static inline void api_incidents_changed(api_env *e) { e->incidents_changed(e); }

/* Who sees which cases, one rule for every way in (the API's list and
 * case reads, Open311): a resident their own reports, a department user
 * what was dispatched to their department, other staff everything. */
void incidents_visibility(const gc_who *u, store_incident_filter *f);
bool incidents_may_see(const gc_who *u, json_t *row);

/* The faces. */
void auth_api_register(http_server *s, api_env *e);
void geotag_api_register(http_server *s, api_env *e);
void incidents_api_register(http_server *s, api_env *e);
void catalogue_api_register(http_server *s, api_env *e);
void open311_register(http_server *s, api_env *e);
void ogc_register(http_server *s, api_env *e);
void workers_api_register(http_server *s, api_env *e);
void units_api_register(http_server *s, api_env *e);
void tiles_api_register(http_server *s, api_env *e);
/* Layers changed in the store: stale tiles are dropped off the loop. */
void tiles_api_layers_changed(api_env *e);
void history_api_register(http_server *s, api_env *e);
/* Who may read the camera registry (its API and the OGC collection). */
#define CAMERAS_READ_ROLES (ROLE_OPERATOR | ROLE_PLANNER | ROLE_ADMIN | ROLE_DEPARTMENT)
void cameras_api_register(http_server *s, api_env *e);
/* Adds "cameras" to a case read: the cameras that saw it when it was
 * reported, with the URLs of their snapshot and clip once stored. */
void cameras_api_incident(api_env *e, json_t *row);
/* The live view (/video/{id}) and snapshots; register after cameras_api
 * (its GET of any path under /api/cameras/ would take the snapshot's). */
void video_api_register(http_server *s, api_env *e);
/* The footage of the cameras that saw a case (src/api/incident_media.c):
 * a snapshot at the case's time and a clip around it from each, stored
 * under media_dir and recorded on the case, read from the store once a
 * second. incident_media_free stops it; jobs still out end on their own. */
typedef struct incident_media incident_media;
incident_media *incident_media_new(api_env *e, const char *dir, int before_s, int after_s);
void incident_media_free(incident_media *m);
/* GET /api/incidents/{id}/cameras/{camera}/snapshot.jpg|clip.mp4, for the
 * incidents face's case route: false when rest is not such a path. */
bool incident_media_serve(http_req *r, api_env *e, const char *rest);
/* b: the operator's base map, NULL without one (the routes answer 404). */
void basemap_api_register(http_server *s, api_env *e, store_basemap *b);

#endif
