/* web_api: the operators' dashboard (web/dist, built by esbuild) and the map's
 * glyphs, served as static files to anyone: the page itself holds no data;
 * everything it shows comes from routes that check the caller. */
#ifndef GRIDCC_WEB_API_H
#define GRIDCC_WEB_API_H

#include "gridcc/http.h"

/* web_dir: the built page (index.html, app.js …); glyphs_dir: glyph ranges
 * as <fontstack>/<start>-<end>.pbf, served at /glyphs/. Either may be NULL
 * (then its paths answer 404 saying the dashboard was not built). Register
 * before every other module: the last route added wins, and this one
 * answers every GET no other route takes. */
void web_api_register(http_server *h, const char *web_dir, const char *glyphs_dir);

/* The Content-Security-Policy every answer of the page carries: nothing
 * from elsewhere, no inline script. */
extern const char *const web_csp;

#endif
