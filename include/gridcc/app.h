/* app: the daemon. One GLib main loop runs libwebsockets, timers and the
 * completion of off-loop work (index rebuilds). */
#ifndef GRIDCC_APP_H
#define GRIDCC_APP_H

#include <stdbool.h>

typedef struct app_opts {
    const char *db;
    const char *bind;       /* default 127.0.0.1 */
    int port;               /* default 8080 */
    bool public_read;       /* OGC API readable without a token */
} app_opts;

/* Runs until SIGINT/SIGTERM. Returns a process exit status. */
int app_serve(const app_opts *o);

#endif
