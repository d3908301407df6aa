/* app: the daemon. One GLib main loop runs libwebsockets, timers and the
 * completion of off-loop work (index rebuilds). This is all the CLI needs of
 * it: the options and the call that serves until a signal. */
#ifndef GRIDCC_APP_H
#define GRIDCC_APP_H

#include <stdbool.h>

#include "gridcc/live.h"

/* Grid workers' positions: the OsmAnd port and the patrol rules. */
typedef struct tracker_opts {
    int port;                 /* OsmAnd port; default 5055; -1: none; -2: any free */
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
    const char *web_dir;    /* the dashboard's files; default: web/dist of the build's source */
    const char *glyphs_dir; /* the map's glyph ranges; default: glyphs/ of the build */
    live_opts live;         /* the /live bus (zeros: defaults) */
    const char *tile_minzoom; /* per level, "building=13,unit=15" (tiles.h) */
    int tile_cache_mb;      /* encoded vector tiles kept; 0: 64 */
    const char *basemap;    /* an MBTiles drawn under the grid; NULL: none */
    const char *video_ingest; /* video_opts.ingest: "direct" (NULL) or "rtspsrc" */
    struct tracker_opts tracker;   /* the OsmAnd port and patrol rules */
} app_opts;

/* Runs until SIGINT/SIGTERM. Returns a process exit status. */
int app_serve(const app_opts *o);

#endif

