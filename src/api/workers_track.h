/* workers_track: a worker's track and patrol coverage as HTTP answers
 * (GET /api/workers/{id}/track and …/coverage), from the store's fixes and
 * the track module's geometry. */
#ifndef GRIDCC_WORKERS_TRACK_H
#define GRIDCC_WORKERS_TRACK_H

#include "api.h"

void workers_track_reply(api_env *e, http_req *r, const store_user *u);
void workers_coverage_reply(api_env *e, http_req *r, const store_user *u);

#endif
