/* tiles: Mapbox Vector Tiles (2.1) of the store's layers, XYZ in Web
 * Mercator (EPSG:3857), made by GDAL's MVT writer and kept in a cache.
 *
 * Per layer version one copy of its features lives in memory, reprojected to
 * EPSG:3857 once and read by every tile of that version. A tile is made with
 * the 4 × 4 tiles around it (a metatile) in one pass of the writer: a map
 * asks for its neighbours next, and the writer's fixed cost is paid once for
 * sixteen. Encoded tiles (and their gzip) are kept in an LRU bounded in
 * bytes, keyed by layer, layer version and z/x/y, so a re-imported layer is
 * never served stale even before tiles_refresh has dropped the old ones.
 *
 * No HTTP here. Every call but tiles_peek may block (the store is read through a
 * connection of the module's own, tiles are encoded): call from a worker
 * thread, never from the loop. All calls are thread-safe. */
#ifndef GRIDCC_TILES_H
#define GRIDCC_TILES_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/err.h"
#include "gridcc/levels.h"

/* Zoom levels served: tiles below a level's minimum are empty; clients
 * over-zoom past TILES_MAXZOOM, and requests past TILES_ZMAX are refused. */
#define TILES_MAXZOOM 18
#define TILES_ZMAX 22
/* MVT geometry units per tile side and the buffer around it (GDAL's defaults) */
#define TILES_EXTENT 4096
#define TILES_BUFFER 80

typedef struct tiles tiles;

typedef struct tiles_opts {
    const char *db_path; /* the store; read through connections of the module's own */
    size_t cache_bytes;  /* encoded tiles kept; 0: 64 MiB */
    /* per level, the lowest zoom with features: "building=13,unit=15". Unnamed
     * levels keep the defaults (building 13, unit 15, others 0). */
    const char *minzoom;
} tiles_opts;

/* GC_EINVAL naming "minzoom" for a bad list. */
int tiles_new(const tiles_opts *o, tiles **out, gc_err *err);
void tiles_free(tiles *t);

/* The lowest zoom at which a layer of this level has features. */
int tiles_minzoom(const tiles *t, gc_level level);

typedef struct tiles_tile {
    GBytes *mvt; /* the tile; empty (0 bytes) when no feature meets it */
    GBytes *gz;  /* the same, gzip-compressed; NULL when mvt is empty */
    int version; /* the layer version it was made from */
} tiles_tile;    /* owns a reference to each GBytes: tiles_tile_clear */

/* The tile z/x/y of a layer. version: the one the caller saw in the store; a
 * newer one (a re-import since) is served if the store has it. GC_ENOTFOUND
 * naming "layer" when the store has no such layer, GC_EINVAL naming "z", "x"
 * or "y" when outside the tiling. */
int tiles_get(tiles *t, const char *layer, int version, int z, int x, int y, tiles_tile *out,
              gc_err *err);
void tiles_tile_clear(tiles_tile *tile);
/* The tile if the cache has it (true), never making one: this one call is
 * fit for the loop (it takes the module's mutex, which no one holds while
 * making tiles or reading the store). z, x, y must be valid. */
bool tiles_peek(tiles *t, const char *layer, int version, int z, int x, int y, tiles_tile *out);

/* Several layers' tiles z/x/y as one tile (a map's areas, drawn from one
 * source: one request, one tile to parse for the lot). Each layer's own
 * tile, as tiles_get gives it, one after the other: a Tile's layers are a
 * repeated field, so the concatenation is one valid tile holding every
 * layer. Cached as one, keyed by every layer's version; any tiles_refresh
 * that finds a layer changed drops every set's tiles. parts[i].version: in,
 * the version the caller saw; out, the one served. out->version is the first
 * part's. Errors as tiles_get, and GC_EINVAL naming "layer" for more than
 * TILES_SET_MAX parts or none. */
#define TILES_SET_MAX 8
typedef struct tiles_part {
    const char *layer;
    int version;
} tiles_part;
int tiles_get_set(tiles *t, tiles_part *parts, size_t n, int z, int x, int y, tiles_tile *out,
                  gc_err *err);
/* As tiles_peek, for a set (n from 1 to TILES_SET_MAX). */
bool tiles_peek_set(tiles *t, const tiles_part *parts, size_t n, int z, int x, int y,
                    tiles_tile *out);

/* Layers changed in the store (a re-import): the copies and cached tiles of
 * versions the store no longer has are dropped, and the copies that were in
 * use are made again from the new versions (so the first tile after a
 * re-import is not the one that waits). Returns how many layers changed. */
int tiles_refresh(tiles *t, gc_err *err);

typedef struct tiles_stats {
    size_t tiles, bytes; /* in the cache */
    size_t layers;       /* layer copies in memory */
    uint64_t hits, misses, generated, evicted;
    uint64_t loads; /* layer copies read from the store */
} tiles_stats;
void tiles_get_stats(tiles *t, tiles_stats *out);

#endif
