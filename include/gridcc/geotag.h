/* geotag: the glue between the store and the index: builds an index from
 * every stored layer, and renders a chain as JSON for the CLI and the API. */
#ifndef GRIDCC_GEOTAG_H
#define GRIDCC_GEOTAG_H

#include <jansson.h>

#include "gridcc/err.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

/* Reads every layer of the store into a new index (caller frees). */
gc_index *geotag_build_index(store *s, gc_err *err);

/* {"lon":…, "lat":…, "chain":{"district":{id,name,code}|null, …},
 *  "dedicated":[…], "departments":[{layer,department,id,name,code}…]}
 * lon/lat are the EPSG:4326 coordinates looked up. New reference. */
json_t *geotag_chain_json(const index_chain *c, double lon, double lat);

#endif
