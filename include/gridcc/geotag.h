/* geotag: the glue between the store and the index: builds an index from
 * every stored layer, and renders a chain as JSON for the CLI and the API,
 * or many chains straight into a buffer (JSON, NDJSON, CSV) for batches. */
#ifndef GRIDCC_GEOTAG_H
#define GRIDCC_GEOTAG_H

#include <glib.h>
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

/* ---- many chains, written straight into a buffer ----
 * A batch of 20,000 chains as a jansson tree spent 98% of its time building,
 * encoding and freeing the tree. Here each feature's JSON object (its id
 * alone, and its id as a CSV field) is encoded once, by jansson (GDAL for
 * CSV), on first use, and kept while the index lives; a chain is then a few
 * appends. A whole chain comes out byte for byte as
 * json_dumps(geotag_chain_json(…), JSON_COMPACT | JSON_REAL_PRECISION(12)),
 * which is how http_reply_json writes it. */
typedef enum { GEOTAG_JSON, GEOTAG_NDJSON, GEOTAG_CSV } geotag_format;
typedef struct geotag_writer geotag_writer;

/* fields NULL: whole chains (CSV: lon, lat, the six chain levels and every
 * other layer of the index, by id). Otherwise a comma-separated list of
 * "lon", "lat", chain levels ("district" … "unit") and names of the index's
 * other layers ("dedicated", "dept-城管"): each point then gets, per name, the
 * id of the feature containing it (null, or an empty CSV field, for none).
 * GC_EINVAL naming "fields" for an empty, unknown or repeated name. The
 * index must outlive the writer (caller frees it with geotag_writer_free). */
int geotag_writer_new(const gc_index *ix, geotag_format fmt, const char *fields,
                      geotag_writer **out, gc_err *err);
/* What the writer shows, as index_geotag_only's arguments: the chain levels
 * (bit 1 << level) and whether the dedicated and department layers. */
void geotag_writer_needs(const geotag_writer *w, unsigned *levels, bool *extras);
/* "application/json", "application/x-ndjson" or "text/csv; charset=utf-8". */
const char *geotag_writer_content_type(const geotag_writer *w);
/* JSON: {"count":N,"results":[ …]}; NDJSON: a line a point; CSV: a header
 * row, then a row a point (CRLF-terminated, RFC 4180). add() is called once
 * per point in order, between begin() and end(); GC_EINVAL if lon or lat is
 * not finite. */
void geotag_writer_begin(geotag_writer *w, GString *out, size_t count);
int geotag_writer_add(geotag_writer *w, GString *out, const index_chain *c, double lon, double lat);
void geotag_writer_end(geotag_writer *w, GString *out);
void geotag_writer_free(geotag_writer *w);

#endif
