#include "gridcc/workers_track.h"
void workers_track_reply(app *a, http_req *r, const store_user *u) { (void)a; (void)u; http_reply_error(r, 501, "todo", NULL, "not yet"); }
void workers_coverage_reply(app *a, http_req *r, const store_user *u) { (void)a; (void)u; http_reply_error(r, 501, "todo", NULL, "not yet"); }
