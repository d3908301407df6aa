/* tiles: vector tiles of the store's layers by GDAL's MVT writer, with a
 * copy of each layer in EPSG:3857 and an LRU of encoded tiles. See tiles.h.
 *
 * Locking: one mutex guards the layer table, the cache and the set of
 * metatiles being made; a condition wakes whoever waits for a layer copy or a
 * metatile another thread is making, so each is made once however many
 * requests ask for it at the same time. Layer copies are reference-counted
 * and read-only once made: tiles of one layer are made in parallel from the
 * same copy without a lock. The store is read through one connection of the
 * module's own, under its own mutex (loads are rare). */
#include "gridcc/tiles.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gio/gio.h>
#include <math.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"
#include "gridcc/store.h"

#define ORIGIN 20037508.342789244 /* half the Web Mercator world's side, metres */
#define META 4                    /* a metatile is META × META tiles */
#define CACHE_DEFAULT (64u << 20)
#define ENTRY_OVERHEAD 96 /* the bookkeeping of a cached tile, roughly */
/* what a set's cached tile names as its layer: no layer's name holds a
 * control character */
#define SET_LAYER "\x1e"

typedef struct tfeat {
    OGRGeometryH g; /* EPSG:3857 */
    double lx, ly;  /* where its label goes: a point inside it */
    bool has_label;
    OGREnvelope env;
    char *id, *name, *code, *parent;
} tfeat;

/* One layer version in memory. */
typedef struct tsrc {
    gatomicrefcount rc;
    char *name;
    int version;
    gc_level level;
    tfeat *f;
    size_t n;
} tsrc;

typedef struct slot {
    tsrc *src;    /* NULL until loaded */
    bool loading; /* a thread is reading it from the store */
} slot;

typedef struct centry {
    char *key;
    char *layer; /* SET_LAYER for a set's tile */
    int version;
    GBytes *mvt, *gz;
    size_t bytes;
    GList link; /* in t->lru, newest first */
} centry;

struct tiles {
    char *db_path;
    int minzoom[LEVEL_N];
    size_t max_bytes;

    GMutex mu;
    GCond cond;
    GHashTable *layers; /* name → slot* */
    GHashTable *cache;  /* key → centry* (owns) */
    GQueue lru;
    size_t bytes;
    GHashTable *inflight; /* metatile keys being made */
    unsigned sets_dropped; /* how many refreshes have dropped the sets' tiles */
    tiles_stats st;

    GMutex store_mu; /* guards s */
    store *s;
};

/* The tiling's SRS. One each time: an OGRSpatialReference is not to be
 * shared between threads, and one kept per thread in a GPrivate outlives
 * GDAL's own per-thread PROJ context (it is released after it at thread
 * exit, and makes a new one that nothing frees). Caller releases. */
static OGRSpatialReferenceH srs_3857(void)
{
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(s, 3857);
    OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
    return s;
}

/* ---- options ---- */

static int parse_minzoom(tiles *t, const char *spec, gc_err *err)
{
    for (int l = 0; l < LEVEL_N; l++)
        t->minzoom[l] = 0;
    t->minzoom[LEVEL_BUILDING] = 13;
    t->minzoom[LEVEL_UNIT] = 15;
    if (!spec || !*spec)
        return 0;
    gchar **parts = g_strsplit(spec, ",", -1);
    int rc = 0;
    for (gchar **p = parts; *p && !rc; p++) {
        char *eq = strchr(*p, '=');
        gc_level l = LEVEL_NONE;
        int64_t z = 0;
        if (eq) {
            *eq = 0;
            l = level_parse(g_strstrip(*p));
        }
        if (!eq || l == LEVEL_NONE)
            rc = gc_fail(err, GC_EINVAL, "minzoom",
                         "minimum zooms are LEVEL=Z separated by commas (building=13,unit=15): "
                         "'%s' names no level",
                         *p);
        else if (gc_parse_int(g_strstrip(eq + 1), "minzoom", 0, TILES_MAXZOOM, &z, err))
            rc = GC_EINVAL;
        else
            t->minzoom[l] = (int)z;
    }
    g_strfreev(parts);
    return rc;
}

int tiles_minzoom(const tiles *t, gc_level level)
{
    return level >= 0 && level < LEVEL_N ? t->minzoom[level] : 0;
}

/* ---- layer copies ---- */

static void src_unref(tsrc *s)
{
    if (!s || !g_atomic_ref_count_dec(&s->rc))
        return;
    for (size_t i = 0; i < s->n; i++) {
        OGR_G_DestroyGeometry(s->f[i].g);
        g_free(s->f[i].id);
        g_free(s->f[i].name);
        g_free(s->f[i].code);
        g_free(s->f[i].parent);
    }
    g_free(s->f);
    g_free(s->name);
    g_free(s);
}

typedef struct loader {
    GArray *feats;
    OGRCoordinateTransformationH ct;
    gc_err *err;
    int rc;
} loader;

static int load_feature(void *ud, const store_feature *f)
{
    loader *ld = ud;
    OGRGeometryH g = NULL;
    if (OGR_G_CreateFromWkb(f->wkb, NULL, &g, (int)f->wkb_len) != OGRERR_NONE || !g) {
        ld->rc = gc_fail(ld->err, GC_EIO, NULL, "layer %s: feature %s: unreadable geometry",
                         f->layer, f->fid);
        return 1;
    }
    if (OGR_G_Transform(g, ld->ct) != OGRERR_NONE) {
        /* a feature Web Mercator cannot show (past ±85°) is left out of the tiles */
        log_warn("tiles", "feature not in Web Mercator's range, not tiled layer=%s id=%s", f->layer,
                 f->fid);
        OGR_G_DestroyGeometry(g);
        return 0;
    }
    tfeat tf = {.g = g,
                .id = g_strdup(f->fid),
                .name = g_strdup(f->name),
                .code = g_strdup(f->code),
                .parent = g_strdup(f->parent_fid)};
    OGR_G_GetEnvelope(g, &tf.env);
    /* one label a feature, in the one tile that holds this point: labels
     * taken from the polygon itself would repeat on every tile's piece */
    OGRGeometryH in = OGR_G_PointOnSurface(g);
    if (in && !OGR_G_IsEmpty(in)) {
        tf.lx = OGR_G_GetX(in, 0);
        tf.ly = OGR_G_GetY(in, 0);
        tf.has_label = true;
    }
    if (in)
        OGR_G_DestroyGeometry(in);
    g_array_append_val(ld->feats, tf);
    return 0;
}

static int store_or_open(tiles *t, gc_err *err)
{
    if (t->s)
        return 0;
    return store_open(t->db_path, &t->s, err);
}

/* Reads the layer's current version from the store; called with store_mu. */
static tsrc *src_load(tiles *t, const char *name, gc_err *err)
{
    if (store_or_open(t, err))
        return NULL;
    gint64 t0 = g_get_monotonic_time();
    OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(wgs, 4326);
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    OGRSpatialReferenceH merc = srs_3857();
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(wgs, merc);
    OSRRelease(wgs);
    OSRRelease(merc);
    if (!ct) {
        gc_fail(err, GC_EIO, NULL, "tiles: no transformation from EPSG:4326 to EPSG:3857");
        return NULL;
    }
    /* the version and the features are read by separate statements: a
     * re-import committed between them shows as a changed version, and the
     * read starts again */
    for (int attempt = 0; attempt < 5; attempt++) {
        store_layer L, L2;
        if (store_layer_get(t->s, name, &L, err))
            break;
        free(L.fields_json);
        loader ld = {g_array_new(FALSE, FALSE, sizeof(tfeat)), ct, err, 0};
        store_query q = {.layer = name, .want_wkb = true};
        int rc = store_features_query(t->s, &q, NULL, load_feature, &ld, err);
        if (!rc)
            rc = ld.rc;
        if (!rc)
            rc = store_layer_get(t->s, name, &L2, err);
        if (!rc)
            free(L2.fields_json);
        tsrc *s = g_new0(tsrc, 1);
        g_atomic_ref_count_init(&s->rc);
        s->name = g_strdup(name);
        s->version = L.version;
        s->level = level_parse(L.level);
        s->n = ld.feats->len;
        s->f = (tfeat *)(void *)g_array_free(ld.feats, FALSE);
        if (rc || L2.version != L.version) {
            src_unref(s);
            if (rc)
                break;
            continue;
        }
        OCTDestroyCoordinateTransformation(ct);
        log_info("tiles", "layer loaded layer=%s version=%d features=%zu ms=%.0f", name, s->version,
                 s->n, (double)(g_get_monotonic_time() - t0) / 1000.0);
        return s;
    }
    OCTDestroyCoordinateTransformation(ct);
    if (!err->code)
        gc_fail(err, GC_EBUSY, "layer", "layer %s kept changing while it was read", name);
    return NULL;
}

/* The copy of the layer at `version` or newer, loading it if need be (once,
 * however many threads ask). Caller unrefs. */
static tsrc *src_acquire(tiles *t, const char *name, int version, gc_err *err)
{
    g_mutex_lock(&t->mu);
    slot *sl;
    for (;;) {
        sl = g_hash_table_lookup(t->layers, name);
        if (sl && sl->src && sl->src->version >= version) {
            tsrc *s = sl->src;
            g_atomic_ref_count_inc(&s->rc);
            g_mutex_unlock(&t->mu);
            return s;
        }
        if (sl && sl->loading) {
            g_cond_wait(&t->cond, &t->mu);
            continue;
        }
        break;
    }
    if (!sl) {
        sl = g_new0(slot, 1);
        g_hash_table_insert(t->layers, g_strdup(name), sl);
    }
    sl->loading = true;
    g_mutex_unlock(&t->mu);

    g_mutex_lock(&t->store_mu);
    tsrc *s = src_load(t, name, err);
    g_mutex_unlock(&t->store_mu);

    g_mutex_lock(&t->mu);
    sl = g_hash_table_lookup(t->layers, name); /* still there: only loaders remove loading slots */
    sl->loading = false;
    tsrc *old = NULL;
    if (s) {
        old = sl->src;
        sl->src = s;
        g_atomic_ref_count_inc(&s->rc);
        t->st.loads++;
    }
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->mu);
    src_unref(old);
    return s;
}

/* ---- the cache ---- */

static char *tile_key(const char *layer, int version, int z, int x, int y)
{
    return g_strdup_printf("%s\x1f%d\x1f%d/%d/%d", layer, version, z, x, y);
}

static void centry_free(gpointer p)
{
    centry *e = p;
    g_free(e->key);
    g_free(e->layer);
    g_bytes_unref(e->mvt);
    if (e->gz)
        g_bytes_unref(e->gz);
    g_free(e);
}

/* Called with mu. */
static bool cache_lookup(tiles *t, const char *key, tiles_tile *out)
{
    centry *e = g_hash_table_lookup(t->cache, key);
    if (!e)
        return false;
    g_queue_unlink(&t->lru, &e->link);
    g_queue_push_head_link(&t->lru, &e->link);
    out->mvt = g_bytes_ref(e->mvt);
    out->gz = e->gz ? g_bytes_ref(e->gz) : NULL;
    out->version = e->version;
    return true;
}

static void cache_remove(tiles *t, centry *e)
{
    g_queue_unlink(&t->lru, &e->link);
    t->bytes -= e->bytes;
    g_hash_table_remove(t->cache, e->key); /* frees e */
}

/* Called with mu; takes the references and the key. */
static void cache_put_key(tiles *t, char *key, const char *layer, int version, GBytes *mvt,
                          GBytes *gz)
{
    centry *e = g_new0(centry, 1);
    e->key = key;
    e->layer = g_strdup(layer);
    e->version = version;
    e->mvt = mvt;
    e->gz = gz;
    e->bytes =
        g_bytes_get_size(mvt) + (gz ? g_bytes_get_size(gz) : 0) + strlen(e->key) + ENTRY_OVERHEAD;
    e->link.data = e;
    centry *old = g_hash_table_lookup(t->cache, e->key);
    if (old)
        cache_remove(t, old);
    g_hash_table_insert(t->cache, e->key, e);
    g_queue_push_head_link(&t->lru, &e->link);
    t->bytes += e->bytes;
    while (t->bytes > t->max_bytes && t->lru.length > 1) {
        cache_remove(t, g_queue_peek_tail(&t->lru));
        t->st.evicted++;
    }
}

/* Called with mu; takes the references. */
static void cache_put(tiles *t, const char *layer, int version, int z, int x, int y, GBytes *mvt,
                      GBytes *gz)
{
    cache_put_key(t, tile_key(layer, version, z, x, y), layer, version, mvt, gz);
}

/* ---- making tiles ---- */

static GBytes *gzip_bytes(GBytes *in)
{
    GZlibCompressor *c = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
    GOutputStream *mem = g_memory_output_stream_new_resizable();
    GOutputStream *z = g_converter_output_stream_new(mem, G_CONVERTER(c));
    gsize len;
    const void *data = g_bytes_get_data(in, &len);
    GBytes *out = NULL;
    if (g_output_stream_write_all(z, data, len, NULL, NULL, NULL) &&
        g_output_stream_close(z, NULL, NULL))
        out = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
    g_object_unref(z);
    g_object_unref(mem);
    g_object_unref(c);
    return out;
}

static void tile_bounds(int z, int x, int y, double b[4])
{
    double dim = 2 * ORIGIN / (double)(1u << z);
    b[0] = -ORIGIN + x * dim;
    b[2] = b[0] + dim;
    b[3] = ORIGIN - y * dim;
    b[1] = b[3] - dim;
}

static OGRGeometryH rect(const double b[4])
{
    OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
    OGR_G_AddPoint_2D(ring, b[0], b[1]);
    OGR_G_AddPoint_2D(ring, b[2], b[1]);
    OGR_G_AddPoint_2D(ring, b[2], b[3]);
    OGR_G_AddPoint_2D(ring, b[0], b[3]);
    OGR_G_AddPoint_2D(ring, b[0], b[1]);
    OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
    OGR_G_AddGeometryDirectly(poly, ring);
    return poly;
}

static void set_str(OGRFeatureH f, int i, const char *v)
{
    if (v)
        OGR_F_SetFieldString(f, i, v);
}

static volatile gint seq;

/* Makes the n × n tiles from (x0, y0) at zoom z into out[] (row-major; an
 * empty tile is a 0-byte GBytes). */
static int metatile_make(const tsrc *s, int z, int x0, int y0, int n, GBytes **out, gc_err *err)
{
    double lo[4], hi[4], m[4];
    tile_bounds(z, x0, y0, lo);
    tile_bounds(z, x0 + n - 1, y0 + n - 1, hi);
    double buf = (lo[2] - lo[0]) * TILES_BUFFER / TILES_EXTENT;
    /* the metatile and the buffer of its edge tiles, and a little more so
     * that our cut is never the one a tile shows */
    m[0] = lo[0] - 2 * buf;
    m[3] = lo[3] + 2 * buf;
    m[2] = hi[2] + 2 * buf;
    m[1] = hi[1] - 2 * buf;

    char dir[128], db[160];
    snprintf(dir, sizeof dir, "/vsimem/gridcc-tiles/%d", g_atomic_int_add(&seq, 1));
    snprintf(db, sizeof db, "%s.db", dir);
    char zs[8];
    snprintf(zs, sizeof zs, "%d", z);
    char **o = NULL;
    o = CSLSetNameValue(o, "FORMAT", "DIRECTORY");
    o = CSLSetNameValue(o, "MINZOOM", zs);
    o = CSLSetNameValue(o, "MAXZOOM", zs);
    o = CSLSetNameValue(o, "COMPRESS", "NO");
    o = CSLSetNameValue(o, "TEMPORARY_DB", db);
    /* GDAL's defaults (500 kB, 200,000 features) would coarsen or drop
     * features of a full tile without a word; a district never comes near these */
    o = CSLSetNameValue(o, "MAX_SIZE", "100000000");
    o = CSLSetNameValue(o, "MAX_FEATURES", "100000000");
    /* no SIMPLIFICATION: each feature would be simplified on its own, and
     * neighbours that share an edge would part (slivers, cracks). Quantised
     * to the tile's grid, a shared edge stays one line. */
    /* the writer starts a pool of threads per dataset (one a core) unless
     * told not to: requests already run in parallel, and the pool's start
     * and hand-offs cost more than they save on a metatile (a third more CPU) */
    CPLSetThreadLocalConfigOption("GDAL_NUM_THREADS", "1");
    GDALDriverH drv = GDALGetDriverByName("MVT");
    GDALDatasetH ds = drv ? GDALCreate(drv, dir, 0, 0, 0, GDT_Unknown, o) : NULL;
    CSLDestroy(o);
    if (!ds)
        return gc_fail(err, GC_EIO, NULL, "tiles: GDAL's MVT writer: %s", CPLGetLastErrorMsg());
    OGRSpatialReferenceH merc = srs_3857();
    OGRLayerH lyr = GDALDatasetCreateLayer(ds, s->name, merc, wkbMultiPolygon, NULL);
    /* areas get a layer of label points beside them ("grid_label");
     * buildings and their units are too many and too small to name on a map */
    bool labels = s->level != LEVEL_BUILDING && s->level != LEVEL_UNIT;
    char label_name[160];
    snprintf(label_name, sizeof label_name, "%s_label", s->name);
    OGRLayerH lbl =
        lyr && labels ? GDALDatasetCreateLayer(ds, label_name, merc, wkbPoint, NULL) : NULL;
    OSRRelease(merc);
    int rc = lyr && (lbl || !labels)
                 ? 0
                 : gc_fail(err, GC_EIO, NULL, "tiles: MVT layer: %s", CPLGetLastErrorMsg());
    static const char *fields[] = {"id", "name", "code", "parent"};
    for (int i = 0; i < 4 && !rc; i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(fields[i], OFTString);
        if (OGR_L_CreateField(lyr, fd, TRUE) != OGRERR_NONE ||
            (lbl && OGR_L_CreateField(lbl, fd, TRUE) != OGRERR_NONE))
            rc = gc_fail(err, GC_EIO, NULL, "tiles: MVT field %s", fields[i]);
        OGR_Fld_Destroy(fd);
    }
    OGRGeometryH clip = rect(m);
    size_t fed = 0;
    for (size_t i = 0; i < s->n && !rc; i++) {
        const tfeat *tf = &s->f[i];
        if (tf->env.MaxX < m[0] || tf->env.MinX > m[2] || tf->env.MaxY < m[1] ||
            tf->env.MinY > m[3])
            continue;
        OGRGeometryH g = tf->g, cut = NULL;
        /* a feature reaching past the metatile is cut to it first (GEOS):
         * the writer would otherwise encode it for every tile it covers at
         * this zoom, thousands for a district at zoom 17 */
        if (tf->env.MinX < m[0] || tf->env.MaxX > m[2] || tf->env.MinY < m[1] ||
            tf->env.MaxY > m[3]) {
            cut = OGR_G_Intersection(g, clip);
            if (!cut || OGR_G_IsEmpty(cut)) {
                if (cut)
                    OGR_G_DestroyGeometry(cut);
                continue;
            }
            g = cut;
        }
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(lyr));
        OGR_F_SetFID(f, (GIntBig)i + 1);
        set_str(f, 0, tf->id);
        set_str(f, 1, tf->name);
        set_str(f, 2, tf->code);
        set_str(f, 3, tf->parent);
        OGR_F_SetGeometry(f, g);
        if (OGR_L_CreateFeature(lyr, f) != OGRERR_NONE)
            rc = gc_fail(err, GC_EIO, NULL, "tiles: layer %s feature %s: %s", s->name, tf->id,
                         CPLGetLastErrorMsg());
        OGR_F_Destroy(f);
        if (cut)
            OGR_G_DestroyGeometry(cut);
        fed++;
        if (!rc && labels && tf->has_label && tf->lx >= lo[0] && tf->lx < hi[2] &&
            tf->ly <= lo[3] && tf->ly > hi[1]) {
            OGRFeatureH lf = OGR_F_Create(OGR_L_GetLayerDefn(lbl));
            OGR_F_SetFID(lf, (GIntBig)i + 1);
            set_str(lf, 0, tf->id);
            set_str(lf, 1, tf->name);
            set_str(lf, 2, tf->code);
            set_str(lf, 3, tf->parent);
            OGRGeometryH pt = OGR_G_CreateGeometry(wkbPoint);
            OGR_G_SetPoint_2D(pt, 0, tf->lx, tf->ly);
            OGR_F_SetGeometryDirectly(lf, pt);
            if (OGR_L_CreateFeature(lbl, lf) != OGRERR_NONE)
                rc = gc_fail(err, GC_EIO, NULL, "tiles: layer %s label %s: %s", s->name, tf->id,
                             CPLGetLastErrorMsg());
            OGR_F_Destroy(lf);
        }
    }
    OGR_G_DestroyGeometry(clip);
    GDALClose(ds); /* the writer makes the tiles here */
    for (int j = 0; j < n * n && !rc; j++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%d/%d/%d.pbf", dir, z, x0 + j % n, y0 + j / n);
        vsi_l_offset len = 0;
        GByte *data = VSIGetMemFileBuffer(path, &len, TRUE);
        out[j] = data ? g_bytes_new_with_free_func(data, (gsize)len, VSIFree, data)
                      : g_bytes_new(NULL, 0);
    }
    VSIRmdirRecursive(dir);
    VSIUnlink(db);
    log_debug("tiles", "metatile layer=%s z=%d x=%d y=%d n=%d features=%zu", s->name, z, x0, y0, n,
              fed);
    return rc;
}

/* ---- the face ---- */

int tiles_new(const tiles_opts *o, tiles **out, gc_err *err)
{
    tiles *t = g_new0(tiles, 1);
    if (parse_minzoom(t, o->minzoom, err)) {
        g_free(t);
        return GC_EINVAL;
    }
    GDALAllRegister();
    if (!GDALGetDriverByName("MVT")) {
        g_free(t);
        return gc_fail(err, GC_EIO, NULL, "tiles: this GDAL has no MVT driver");
    }
    t->db_path = g_strdup(o->db_path);
    t->max_bytes = o->cache_bytes ? o->cache_bytes : CACHE_DEFAULT;
    g_mutex_init(&t->mu);
    g_cond_init(&t->cond);
    g_mutex_init(&t->store_mu);
    t->layers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->cache = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, centry_free);
    t->inflight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *out = t;
    return 0;
}

void tiles_free(tiles *t)
{
    if (!t)
        return;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t->layers);
    while (g_hash_table_iter_next(&it, &k, &v))
        src_unref(((slot *)v)->src);
    g_hash_table_destroy(t->layers);
    g_hash_table_destroy(t->cache);
    g_hash_table_destroy(t->inflight);
    if (t->s)
        store_close(t->s);
    g_mutex_clear(&t->mu);
    g_mutex_clear(&t->store_mu);
    g_cond_clear(&t->cond);
    g_free(t->db_path);
    g_free(t);
}

void tiles_tile_clear(tiles_tile *tile)
{
    if (tile->mvt)
        g_bytes_unref(tile->mvt);
    if (tile->gz)
        g_bytes_unref(tile->gz);
    memset(tile, 0, sizeof *tile);
}

/* The cached tile under key (freed here), counted as a hit; out zeroed on a miss. */
static bool peek_key(tiles *t, char *key, tiles_tile *out)
{
    memset(out, 0, sizeof *out);
    g_mutex_lock(&t->mu);
    bool hit = cache_lookup(t, key, out);
    if (hit)
        t->st.hits++;
    g_mutex_unlock(&t->mu);
    g_free(key);
    return hit;
}

bool tiles_peek(tiles *t, const char *layer, int version, int z, int x, int y, tiles_tile *out)
{
    return peek_key(t, tile_key(layer, version, z, x, y), out);
}

int tiles_get(tiles *t, const char *layer, int version, int z, int x, int y, tiles_tile *out,
              gc_err *err)
{
    memset(out, 0, sizeof *out);
    if (z < 0 || z > TILES_ZMAX)
        return gc_fail(err, GC_EINVAL, "z", "zoom %d is outside 0…%d", z, TILES_ZMAX);
    int side = 1 << z;
    if (x < 0 || x >= side)
        return gc_fail(err, GC_EINVAL, "x", "x %d is outside 0…%d at zoom %d", x, side - 1, z);
    if (y < 0 || y >= side)
        return gc_fail(err, GC_EINVAL, "y", "y %d is outside 0…%d at zoom %d", y, side - 1, z);
    if (peek_key(t, tile_key(layer, version, z, x, y), out))
        return 0;

    tsrc *s = src_acquire(t, layer, version, err);
    if (!s) {
        if (err->code == GC_ENOTFOUND)
            snprintf(err->field, sizeof err->field, "layer");
        return err->code ? err->code : GC_EIO;
    }
    int n = side < META ? side : META;
    int x0 = x - x % n, y0 = y - y % n;
    char *mkey = g_strdup_printf("%s\x1f%d\x1f%d/%d/%d", s->name, s->version, z, x0, y0);
    char *key = tile_key(layer, s->version, z, x, y);
    int rc = 0;
    g_mutex_lock(&t->mu);
    for (;;) {
        if (cache_lookup(t, key, out)) {
            t->st.hits++;
            goto done_locked;
        }
        if (!g_hash_table_contains(t->inflight, mkey))
            break;
        g_cond_wait(&t->cond, &t->mu);
    }
    t->st.misses++;
    g_hash_table_add(t->inflight, g_strdup(mkey));
    g_mutex_unlock(&t->mu);

    GBytes *made[META * META] = {0}, *gz[META * META] = {0};
    rc = metatile_make(s, z, x0, y0, n, made, err);
    for (int j = 0; j < n * n && !rc; j++)
        if (g_bytes_get_size(made[j]) && !(gz[j] = gzip_bytes(made[j])))
            rc = gc_fail(err, GC_EIO, NULL, "tiles: gzip failed");

    g_mutex_lock(&t->mu);
    g_hash_table_remove(t->inflight, mkey);
    if (!rc) {
        /* the requested tile last, so the budget never evicts it first */
        int want = (y - y0) * n + (x - x0);
        for (int j = 0; j < n * n; j++)
            if (j != want)
                cache_put(t, s->name, s->version, z, x0 + j % n, y0 + j / n, made[j], gz[j]);
        cache_put(t, s->name, s->version, z, x, y, made[want], gz[want]);
        t->st.generated += (uint64_t)(n * n);
        cache_lookup(t, key, out);
    } else {
        for (int j = 0; j < n * n; j++) {
            if (made[j])
                g_bytes_unref(made[j]);
            if (gz[j])
                g_bytes_unref(gz[j]);
        }
    }
    g_cond_broadcast(&t->cond);
done_locked:
    g_mutex_unlock(&t->mu);
    g_free(mkey);
    g_free(key);
    src_unref(s);
    return rc;
}

/* ---- sets of layers in one tile ---- */

static char *set_key(const tiles_part *parts, size_t n, int z, int x, int y)
{
    GString *k = g_string_new(SET_LAYER);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(k, "%s\x1f%d" SET_LAYER, parts[i].layer, parts[i].version);
    g_string_append_printf(k, "%d/%d/%d", z, x, y);
    return g_string_free(k, FALSE);
}

bool tiles_peek_set(tiles *t, const tiles_part *parts, size_t n, int z, int x, int y,
                    tiles_tile *out)
{
    if (n == 1)
        return tiles_peek(t, parts[0].layer, parts[0].version, z, x, y, out);
    bool hit = peek_key(t, set_key(parts, n, z, x, y), out);
    if (hit)
        out->version = parts[0].version;
    return hit;
}

int tiles_get_set(tiles *t, tiles_part *parts, size_t n, int z, int x, int y, tiles_tile *out,
                  gc_err *err)
{
    memset(out, 0, sizeof *out);
    if (n == 0 || n > TILES_SET_MAX)
        return gc_fail(err, GC_EINVAL, "layer", "a tile holds 1 to %d layers, not %zu",
                       TILES_SET_MAX, n);
    if (n == 1) {
        int rc = tiles_get(t, parts[0].layer, parts[0].version, z, x, y, out, err);
        if (!rc)
            parts[0].version = out->version;
        return rc;
    }
    if (tiles_peek_set(t, parts, n, z, x, y, out))
        return 0;
    g_mutex_lock(&t->mu);
    unsigned gen = t->sets_dropped;
    g_mutex_unlock(&t->mu);
    /* a Tile's layers are a repeated field: tiles written one after the
     * other are one tile holding all their layers (a protobuf parser merges
     * concatenated messages), so each layer's own cached tile is reused as is */
    GByteArray *all = g_byte_array_new();
    for (size_t i = 0; i < n; i++) {
        tiles_tile one;
        int rc = tiles_get(t, parts[i].layer, parts[i].version, z, x, y, &one, err);
        if (rc) {
            g_byte_array_unref(all);
            return rc;
        }
        parts[i].version = one.version; /* a re-import since: the key says which */
        gsize len;
        const guint8 *d = g_bytes_get_data(one.mvt, &len);
        if (len)
            g_byte_array_append(all, d, (guint)len);
        tiles_tile_clear(&one);
    }
    GBytes *mvt = g_byte_array_free_to_bytes(all), *gz = NULL;
    if (g_bytes_get_size(mvt) && !(gz = gzip_bytes(mvt))) {
        g_bytes_unref(mvt);
        return gc_fail(err, GC_EIO, NULL, "tiles: gzip failed");
    }
    /* the caller's references, then the cache's (which tiles_refresh drops
     * whenever any layer changes) */
    out->mvt = g_bytes_ref(mvt);
    out->gz = gz ? g_bytes_ref(gz) : NULL;
    out->version = parts[0].version;
    g_mutex_lock(&t->mu);
    /* not kept when a refresh dropped the sets' tiles while it was made */
    if (gen == t->sets_dropped) {
        cache_put_key(t, set_key(parts, n, z, x, y), SET_LAYER, 0, mvt, gz);
    } else {
        g_bytes_unref(mvt);
        if (gz)
            g_bytes_unref(gz);
    }
    g_mutex_unlock(&t->mu);
    return 0;
}

/* ---- invalidation ---- */

/* The store's version of a layer now, -1 when it is gone. */
static int version_now(GHashTable *now, const char *layer)
{
    gpointer v;
    return g_hash_table_lookup_extended(now, layer, NULL, &v) ? GPOINTER_TO_INT(v) : -1;
}

int tiles_refresh(tiles *t, gc_err *err)
{
    store_layer *ls = NULL;
    size_t nl = 0;
    g_mutex_lock(&t->store_mu);
    int rc = store_or_open(t, err);
    if (!rc)
        rc = store_layers_list(t->s, &ls, &nl, err);
    g_mutex_unlock(&t->store_mu);
    if (rc)
        return rc;
    GHashTable *now = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < nl; i++)
        g_hash_table_insert(now, ls[i].name, GINT_TO_POINTER(ls[i].version));
    GHashTable *changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *drop = g_ptr_array_new();
    GPtrArray *reload = g_ptr_array_new_with_free_func(g_free);
    size_t dropped = 0;

    g_mutex_lock(&t->mu);
    /* tiles of versions the store no longer has (a request that saw the new
     * version first has already made the copy of it: the old tiles remain) */
    for (GList *l = t->lru.head, *next; l; l = next) {
        next = l->next;
        centry *e = l->data;
        if (!strcmp(e->layer, SET_LAYER) || e->version == version_now(now, e->layer))
            continue;
        g_hash_table_add(changed, g_strdup(e->layer));
        cache_remove(t, e);
        dropped++;
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t->layers);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        slot *sl = v;
        if (!sl->src || sl->src->version == version_now(now, k))
            continue;
        g_hash_table_add(changed, g_strdup(k));
        g_ptr_array_add(drop, sl->src);
        sl->src = NULL;
        if (version_now(now, k) >= 0)
            g_ptr_array_add(reload, g_strdup(k));
    }
    /* sets' tiles, whichever of their layers changed (and any being made now
     * is not kept) */
    if (g_hash_table_size(changed))
        t->sets_dropped++;
    for (GList *l = t->lru.head, *next; l && g_hash_table_size(changed); l = next) {
        next = l->next;
        centry *e = l->data;
        if (!strcmp(e->layer, SET_LAYER)) {
            cache_remove(t, e);
            dropped++;
        }
    }
    g_mutex_unlock(&t->mu);

    for (guint i = 0; i < drop->len; i++)
        src_unref(drop->pdata[i]); /* freed here, off the loop, unless a tile holds it */
    for (guint i = 0; i < reload->len; i++) {
        gc_err e2 = {0};
        const char *name = reload->pdata[i];
        tsrc *s = src_acquire(t, name, version_now(now, name), &e2);
        if (!s)
            log_warn("tiles", "reloading layer=%s: %s", name, e2.msg);
        src_unref(s);
    }
    int n = (int)g_hash_table_size(changed);
    if (n)
        log_info("tiles",
                 "layers changed in the store; their old tiles dropped layers=%d "
                 "tiles=%zu",
                 n, dropped);
    g_hash_table_destroy(changed);
    g_hash_table_destroy(now);
    store_layers_free(ls, nl);
    g_ptr_array_free(drop, TRUE);
    g_ptr_array_free(reload, TRUE);
    return n;
}

void tiles_get_stats(tiles *t, tiles_stats *out)
{
    g_mutex_lock(&t->mu);
    *out = t->st;
    out->tiles = g_hash_table_size(t->cache);
    out->bytes = t->bytes;
    size_t nl = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t->layers);
    while (g_hash_table_iter_next(&it, &k, &v))
        nl += ((slot *)v)->src != NULL;
    out->layers = nl;
    g_mutex_unlock(&t->mu);
}
