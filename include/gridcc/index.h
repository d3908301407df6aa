/* index: the in-memory geotag index. geotag(lon, lat) returns the whole chain
 * (district, street, community, grid, building, unit) plus every dedicated and
 * department grid containing the point, in one call.
 *
 * A cell index per layer: a raster over the layer's extent whose cells say
 * "inside feature X", "empty", or "test these candidates exactly". The exact
 * test is a crossing-number test on coordinates quantised to 1e-9 degrees
 * with integer (exact) side-of-edge arithmetic, and a half-open rule:
 *
 *   A point on a boundary shared by two features belongs to the feature on
 *   its east; on an east-west boundary, to the feature on its north.
 *
 * So every point of a tiling lands in exactly one feature, shared edges and
 * vertices included. Knows nothing of HTTP or SQL; built once, then read-only
 * and safe to share between threads. */
#ifndef GRIDCC_INDEX_H
#define GRIDCC_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"
#include "gridcc/levels.h"

typedef struct gc_index gc_index;
typedef struct index_builder index_builder;

typedef struct index_hit {
    const char *layer, *fid, *name, *code;
    const char *department;   /* for LEVEL_DEPT layers, else NULL */
    gc_level level;
} index_hit;    /* borrowed from the index; valid until index_free */

#define INDEX_MAX_EXTRA 32

typedef struct index_chain {
    const index_hit *chain[LEVEL_CHAIN_N];   /* NULL where nothing contains the point */
    const index_hit *extra[INDEX_MAX_EXTRA]; /* dedicated and department grids */
    size_t nextra;
} index_chain;

index_builder *index_builder_new(void);
/* Adds one feature of a layer. wkb is a Polygon or MultiPolygon in EPSG:4326.
 * Strings are copied. Layers keep the order of their first feature. */
int index_builder_add(index_builder *b, const char *layer, gc_level level, const char *fid,
                      const char *name, const char *code, const unsigned char *wkb, size_t len,
                      gc_err *err);
/* Names the department of a LEVEL_DEPT layer (before or after its features). */
void index_builder_set_department(index_builder *b, const char *layer, const char *department);
/* Builds the cell rasters; consumes the builder. */
gc_index *index_builder_finish(index_builder *b);
void index_builder_free(index_builder *b);

void index_free(gc_index *ix);
size_t index_feature_count(const gc_index *ix);
/* Features are numbered 0 … index_feature_count - 1, layer by layer, so that a caller can keep
 * its own data per feature in an array. */
const index_hit *index_feature(const gc_index *ix, size_t i);
size_t index_feature_number(const gc_index *ix, const index_hit *h);
/* Data a caller derives from the features (geotag's encoded JSON), kept for exactly the index's
 * lifetime: make runs on the first call, once even when threads race, and destroy in
 * index_free; later calls return what it made. One slot: every call must pass the same make. */
void *index_derived(const gc_index *ix, void *(*make)(const gc_index *ix),
                    void (*destroy)(void *data));
size_t index_memory_bytes(const gc_index *ix);

/* Fills out; a point outside everything gives an empty chain. Returns
 * GC_EINVAL (and an empty chain) for non-finite coordinates. */
int index_geotag(const gc_index *ix, double lon, double lat, index_chain *out);
/* The same, looking only at the chain levels in the mask `levels` (bit 1 << level) and, when
 * `extras`, at the dedicated and department layers; the rest of out stays empty. For callers
 * that want a few levels of many points: each layer skipped is a lookup saved. */
int index_geotag_only(const gc_index *ix, double lon, double lat, unsigned levels, bool extras,
                      index_chain *out);

#endif
