/* app: the daemon. One GLib main loop runs libwebsockets, timers and the
 * completion of off-loop work (index rebuilds). */
#ifndef GRIDCC_APP_H
#define GRIDCC_APP_H

#include <stdbool.h>

#include "gridcc/live.h"

typedef struct tracker_opts {
    int port;                 /* OsmAnd port; default 5055; -1: none */
    const char *bind;         /* default: the API's */
    double outside_min;       /* outside the assigned grids this long: alert; default 10 */
    double silent_min;        /* no fix this long: alert; default 15 */
    int batch_max;            /* fixes in one POST /batch; default 10000 */
    int max_conns_per_addr;   /* per client address; 0: default 64, -1: no cap */
} tracker_opts;

typedef struct app_opts {
    const char *db;
    const char *bind;       /* default 127.0.0.1 */
    int port;               /* default 8080 */
    bool public_read;       /* OGC API readable without a token */
    int idle_timeout_s;     /* close idle connections after this; default 30 */
    int max_conns_per_addr; /* per client address; 0: default 64, -1: no cap */
    live_opts live;         /* the /live bus (zeros: defaults) */
    struct tracker_opts tracker;   /* the OsmAnd port and patrol rules */
} app_opts;

/* Runs until SIGINT/SIGTERM. Returns a process exit status. */
int app_serve(const app_opts *o);

#endif

/* For the API modules (http layer): the daemon's shared state. */
#ifndef GRIDCC_APP_API_H
#define GRIDCC_APP_API_H
#include "gridcc/http.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

typedef struct app app;

enum { ROLE_OPERATOR = 1, ROLE_WORKER = 2, ROLE_PLANNER = 4, ROLE_ADMIN = 8,
       ROLE_DEPARTMENT = 16, ROLE_RESIDENT = 32, ROLE_STAFF = 31, ROLE_ANY = 63 };

/* True if the request carries a valid token of one of the roles; otherwise
 * it has replied 401 (no or bad token) or 403 (wrong role). */
bool app_authorize(app *a, http_req *r, unsigned roles);
/* The same, filling in who it is. */
bool app_authorize_user(app *a, http_req *r, unsigned roles, store_user *u);
/* Where photos live: beside the database, DB.photos/. */
const char *app_photo_dir(app *a);
/* Cases changed: re-arm the deadline timer for the earliest deadline. */
void app_incidents_changed(app *a);
/* The current index, borrowed: valid while the handler runs on the loop. */
const gc_index *app_index(app *a);
store *app_store(app *a);
/* Group commit on the daemon's store: see store_group_add. */
store_group *app_group(app *a);
/* Work in flight off the loop (+1 when handed to a thread, -1 when back):
 * shutdown waits for it. */
void app_busy(app *a, int delta);
live *app_live(app *a);
struct tracker *app_tracker(app *a);
GMainLoop *app_loop(app *a);
void workers_api_register(http_server *s, app *a);

void geotag_api_register(http_server *s, app *a);
void incidents_api_register(http_server *s, app *a);
void open311_register(http_server *s, app *a);
/* Building names for address matching, built on first use from the store
 * and dropped when the layers change. Borrowed, like app_index. */
struct address_index;
const struct address_index *app_address_index(app *a);

#endif
