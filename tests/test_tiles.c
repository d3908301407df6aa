/* tiles: vector tiles of tiny layers made here, stored in a real store and
 * read back with GDAL's own MVT reader: a tile's features and properties,
 * the cut at the tile's edge (within the buffer), neighbours that still share
 * their edge at low zoom, an empty tile, refusals naming the field, the
 * cache following the layer's version, and several layers in one tile. */
#include <glib.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "gridcc/store.h"
#include "gridcc/tiles.h"

#define ORIGIN 20037508.342789244
#define Z 14

typedef struct fixture {
    char *dir, *db;
    store *s;
    tiles *t;
    int x, y;    /* the tile at zoom Z holding (116.3, 40.0) */
    double b[4]; /* its bounds, EPSG:3857 */
    int version;
} fixture;

static void bounds(int z, int x, int y, double b[4])
{
    double d = 2 * ORIGIN / (double)(1 << z);
    b[0] = -ORIGIN + x * d;
    b[2] = b[0] + d;
    b[3] = ORIGIN - y * d;
    b[1] = b[3] - d;
}

/* A polygon given in EPSG:3857 as WKT, stored as EPSG:4326 WKB. */
static unsigned char *wkb_4326(const char *wkt_3857, size_t *len)
{
    OGRSpatialReferenceH m = OSRNewSpatialReference(NULL), w = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(m, 3857);
    OSRImportFromEPSG(w, 4326);
    OSRSetAxisMappingStrategy(m, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(w, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(m, w);
    OGRGeometryH g = NULL;
    char *p = (char *)wkt_3857;
    assert_int_equal(OGR_G_CreateFromWkt(&p, NULL, &g), OGRERR_NONE);
    assert_int_equal(OGR_G_Transform(g, ct), OGRERR_NONE);
    *len = (size_t)OGR_G_WkbSize(g);
    unsigned char *buf = g_malloc(*len);
    OGR_G_ExportToWkb(g, wkbNDR, buf);
    OGR_G_DestroyGeometry(g);
    OCTDestroyCoordinateTransformation(ct);
    OSRRelease(m);
    OSRRelease(w);
    return buf;
}

/* how far the i-th point of a wiggling side strays east or west: irregular,
 * from a few units at zoom 14 to under one at zoom 8 */
static double jag(int i)
{
    return ((i * 7919) % 13 - 6) * 0.0015;
}

/* x0..x1 × y0..y1 in tile units (0..1 across the tile at zoom Z); the west
 * and east sides wiggle through `wiggle` points (a shared edge of many
 * vertices, as real grids have). */
static char *box(const fixture *f, double x0, double y0, double x1, double y1, int wiggle)
{
    double d = f->b[2] - f->b[0];
    GString *s = g_string_new("POLYGON((");
#define PX(u) (f->b[0] + (u)*d)
#define PY(v) (f->b[1] + (v)*d)
    g_string_append_printf(s, "%.6f %.6f", PX(x0), PY(y0));
    g_string_append_printf(s, ",%.6f %.6f", PX(x1), PY(y0));
    for (int i = 1; i < wiggle; i++) /* east side, going north */
        g_string_append_printf(s, ",%.6f %.6f", PX(x1 + jag(i)), PY(y0 + (y1 - y0) * i / wiggle));
    g_string_append_printf(s, ",%.6f %.6f", PX(x1), PY(y1));
    g_string_append_printf(s, ",%.6f %.6f", PX(x0), PY(y1));
    for (int i = wiggle - 1; i >= 1; i--) /* west side, going south */
        g_string_append_printf(s, ",%.6f %.6f", PX(x0 + jag(i)), PY(y0 + (y1 - y0) * i / wiggle));
    g_string_append_printf(s, ",%.6f %.6f))", PX(x0), PY(y0));
#undef PX
#undef PY
    return g_string_free(s, FALSE);
}

/* The grid layer: A and B share a wiggly edge, C crosses the tile's east
 * edge. name_a: A's name (changed by a re-import). */
static void put_grid(fixture *f, const char *name_a)
{
    char *wkt[3] = {box(f, 0.2, 0.2, 0.5, 0.6, 40), box(f, 0.5, 0.2, 0.8, 0.6, 40),
                    box(f, 0.9, 0.7, 1.3, 0.8, 0)};
    static const char *ids[3] = {"A", "B", "C"}, *codes[3] = {"0101", "0102", "0103"};
    const char *names[3] = {name_a, "网格乙", "网格丙"};
    store_feature_in in[3];
    unsigned char *wkb[3];
    for (int i = 0; i < 3; i++) {
        size_t len;
        wkb[i] = wkb_4326(wkt[i], &len);
        in[i] = (store_feature_in){.fid = ids[i],
                                   .name = names[i],
                                   .code = codes[i],
                                   .parent_layer = "community",
                                   .parent_fid = "P1",
                                   .wkb = wkb[i],
                                   .wkb_len = len};
    }
    store_layer meta = {0};
    snprintf(meta.name, sizeof meta.name, "grid");
    snprintf(meta.level, sizeof meta.level, "grid");
    snprintf(meta.title, sizeof meta.title, "grids");
    gc_err err = {0};
    assert_int_equal(store_layer_replace(f->s, &meta, in, 3, NULL, NULL, &err), 0);
    f->version = meta.version;
    for (int i = 0; i < 3; i++) {
        g_free(wkb[i]);
        g_free(wkt[i]);
    }
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->dir = g_dir_make_tmp("gridcc-tiles-XXXXXX", NULL);
    f->db = g_build_filename(f->dir, "t.db", NULL);
    gc_err err = {0};
    assert_int_equal(store_open(f->db, &f->s, &err), 0);
    double lon = 116.3, lat = 40.0, r = lat * M_PI / 180;
    f->x = (int)floor((lon + 180) / 360 * (1 << Z));
    f->y = (int)floor((1 - log(tan(r) + 1 / cos(r)) / M_PI) / 2 * (1 << Z));
    bounds(Z, f->x, f->y, f->b);
    put_grid(f, "网格甲");
    tiles_opts o = {.db_path = f->db};
    assert_int_equal(tiles_new(&o, &f->t, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tiles_free(f->t);
    store_close(f->s);
    char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    g_free(cmd);
    g_free(f->db);
    g_free(f->dir);
    g_free(f);
    return 0;
}

/* ---- reading a tile back with GDAL's MVT reader ---- */

typedef struct decoded {
    GDALDatasetH ds;
    OGRLayerH lyr;
    char path[128];
} decoded;

/* Opens the tile as z/x/y.pbf (so the reader puts it in EPSG:3857), unclipped
 * (so what the writer kept past the edge shows). */
static void decode(decoded *d, GBytes *mvt, int z, int x, int y)
{
    static int n;
    snprintf(d->path, sizeof d->path, "/vsimem/test_tiles/%d/%d/%d/%d.pbf", n++, z, x, y);
    gsize len;
    const void *data = g_bytes_get_data(mvt, &len);
    VSILFILE *fp = VSIFileFromMemBuffer(d->path, (GByte *)data, len, FALSE);
    VSIFCloseL(fp);
    const char *oo[] = {"CLIP=NO", NULL};
    d->ds = GDALOpenEx(d->path, GDAL_OF_VECTOR, (const char *const[]){"MVT", NULL}, oo, NULL);
    assert_non_null(d->ds);
    /* the areas, and beside them their label points */
    assert_int_equal(GDALDatasetGetLayerCount(d->ds), 2);
    d->lyr = GDALDatasetGetLayerByName(d->ds, "grid");
    assert_non_null(d->lyr);
}

static void decoded_close(decoded *d)
{
    GDALClose(d->ds);
    VSIUnlink(d->path);
}

/* The feature whose id is `id` (caller destroys), or NULL. */
static OGRFeatureH feature(decoded *d, const char *id)
{
    OGR_L_ResetReading(d->lyr);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(d->lyr))) {
        int i = OGR_F_GetFieldIndex(f, "id");
        if (i >= 0 && !strcmp(OGR_F_GetFieldAsString(f, i), id))
            return f;
        OGR_F_Destroy(f);
    }
    return NULL;
}

static const char *field(OGRFeatureH f, const char *name)
{
    int i = OGR_F_GetFieldIndex(f, name);
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsString(f, i) : NULL;
}

static void get(fixture *f, int version, int z, int x, int y, tiles_tile *out)
{
    gc_err err = {0};
    int rc = tiles_get(f->t, "grid", version, z, x, y, out, &err);
    if (rc)
        fail_msg("tiles_get %d/%d/%d: %s", z, x, y, err.msg);
}

/* ---- tests ---- */

static void test_features_and_properties(void **state)
{
    fixture *f = *state;
    tiles_tile t;
    get(f, f->version, Z, f->x, f->y, &t);
    assert_true(g_bytes_get_size(t.mvt) > 0);
    assert_non_null(t.gz);
    assert_int_equal(t.version, f->version);
    decoded d;
    decode(&d, t.mvt, Z, f->x, f->y);
    assert_string_equal(OGR_L_GetName(d.lyr), "grid"); /* the MVT layer is the gridcc layer */
    assert_int_equal(OGR_L_GetFeatureCount(d.lyr, TRUE), 3);
    static const char *ids[] = {"A", "B", "C"}, *names[] = {"网格甲", "网格乙", "网格丙"},
                      *codes[] = {"0101", "0102", "0103"};
    for (int i = 0; i < 3; i++) {
        OGRFeatureH ft = feature(&d, ids[i]);
        assert_non_null(ft);
        assert_string_equal(field(ft, "name"), names[i]);
        assert_string_equal(field(ft, "code"), codes[i]);
        assert_string_equal(field(ft, "parent"), "P1");
        OGR_F_Destroy(ft);
    }
    /* one label point a feature, with its name, inside the feature and
     * inside this tile (the only tile that holds it) */
    OGRLayerH lbl = GDALDatasetGetLayerByName(d.ds, "grid_label");
    assert_non_null(lbl);
    OGRLayerH areas = d.lyr;
    for (int i = 0; i < 3; i++) {
        d.lyr = lbl;
        OGRFeatureH lf = feature(&d, ids[i]);
        d.lyr = areas;
        if (!lf)
            continue; /* its point lies in another tile */
        assert_string_equal(field(lf, "name"), names[i]);
        OGRGeometryH p = OGR_F_GetGeometryRef(lf);
        assert_true(OGR_G_GetX(p, 0) >= f->b[0] && OGR_G_GetX(p, 0) <= f->b[2]);
        assert_true(OGR_G_GetY(p, 0) >= f->b[1] && OGR_G_GetY(p, 0) <= f->b[3]);
        OGRFeatureH af = feature(&d, ids[i]);
        assert_true(OGR_G_Contains(OGR_F_GetGeometryRef(af), p));
        OGR_F_Destroy(af);
        OGR_F_Destroy(lf);
    }
    assert_true(OGR_L_GetFeatureCount(lbl, TRUE) >= 1);
    decoded_close(&d);
    tiles_tile_clear(&t);
}

static void test_cut_at_the_edge_within_the_buffer(void **state)
{
    fixture *f = *state;
    tiles_tile t;
    get(f, f->version, Z, f->x, f->y, &t);
    decoded d;
    decode(&d, t.mvt, Z, f->x, f->y);
    double dim = f->b[2] - f->b[0], unit = dim / TILES_EXTENT, buf = TILES_BUFFER * unit;
    OGR_L_ResetReading(d.lyr);
    OGRFeatureH ft;
    while ((ft = OGR_L_GetNextFeature(d.lyr))) {
        OGREnvelope e;
        OGR_G_GetEnvelope(OGR_F_GetGeometryRef(ft), &e);
        assert_true(e.MinX >= f->b[0] - buf - unit && e.MaxX <= f->b[2] + buf + unit);
        assert_true(e.MinY >= f->b[1] - buf - unit && e.MaxY <= f->b[3] + buf + unit);
        OGR_F_Destroy(ft);
    }
    /* C reaches 0.3 of a tile past the east edge: it is cut at the buffer,
     * not at the edge itself (neighbouring tiles' strokes meet) */
    ft = feature(&d, "C");
    assert_non_null(ft);
    OGREnvelope e;
    OGR_G_GetEnvelope(OGR_F_GetGeometryRef(ft), &e);
    assert_true(fabs(e.MaxX - (f->b[2] + buf)) <= unit);
    assert_true(fabs(e.MinX - (f->b[0] + 0.9 * dim)) <= unit);
    OGR_F_Destroy(ft);
    decoded_close(&d);
    tiles_tile_clear(&t);
    /* the tile east of it has C's other part */
    get(f, f->version, Z, f->x + 1, f->y, &t);
    decode(&d, t.mvt, Z, f->x + 1, f->y);
    ft = feature(&d, "C");
    assert_non_null(ft);
    OGR_F_Destroy(ft);
    assert_null(feature(&d, "A"));
    decoded_close(&d);
    tiles_tile_clear(&t);
}

/* At every zoom from the tile's down to 8 (where A and B are a few dozen
 * units wide), A and B meet along their whole shared edge: no overlap, no
 * gap (their union is one polygon with no hole and the sum of their areas). */
static void test_neighbours_share_their_edge(void **state)
{
    fixture *f = *state;
    for (int z = Z; z >= 8; z--) {
        int x = f->x >> (Z - z), y = f->y >> (Z - z);
        tiles_tile t;
        get(f, f->version, z, x, y, &t);
        decoded d;
        decode(&d, t.mvt, z, x, y);
        OGRFeatureH fa = feature(&d, "A"), fb = feature(&d, "B");
        assert_non_null(fa);
        assert_non_null(fb);
        OGRGeometryH a = OGR_F_GetGeometryRef(fa), b = OGR_F_GetGeometryRef(fb);
        double unit = (2 * ORIGIN / (double)(1 << z)) / TILES_EXTENT;
        OGRGeometryH i = OGR_G_Intersection(a, b), u = OGR_G_Union(a, b);
        /* touching along the edge, they meet in a line (no area) */
        double area_i = OGR_G_GetDimension(i) == 2 ? OGR_G_Area(i) : 0, area_a = OGR_G_Area(a),
               area_b = OGR_G_Area(b);
        /* a crack one unit wide along the edge would be hundreds of units² */
        assert_true(area_i < unit * unit);
        assert_int_equal(wkbFlatten(OGR_G_GetGeometryType(u)), wkbPolygon);
        assert_int_equal(OGR_G_GetGeometryCount(u), 1); /* the outer ring only: no crack */
        assert_true(fabs(OGR_G_Area(u) - (area_a + area_b)) < unit * unit);
        OGR_G_DestroyGeometry(i);
        OGR_G_DestroyGeometry(u);
        OGR_F_Destroy(fa);
        OGR_F_Destroy(fb);
        decoded_close(&d);
        tiles_tile_clear(&t);
    }
}

static void test_empty_tile(void **state)
{
    fixture *f = *state;
    tiles_tile t;
    get(f, f->version, Z, f->x + 5, f->y + 5, &t);
    assert_non_null(t.mvt);
    assert_int_equal(g_bytes_get_size(t.mvt), 0);
    assert_null(t.gz);
    tiles_tile_clear(&t);
}

static void test_refusals_name_the_field(void **state)
{
    fixture *f = *state;
    tiles_tile t;
    gc_err err = {0};
    assert_int_equal(tiles_get(f->t, "grid", f->version, TILES_ZMAX + 1, 0, 0, &t, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "z");
    gc_err_clear(&err);
    assert_int_equal(tiles_get(f->t, "grid", f->version, 3, 8, 0, &t, &err), GC_EINVAL);
    assert_string_equal(err.field, "x");
    gc_err_clear(&err);
    assert_int_equal(tiles_get(f->t, "grid", f->version, 3, 0, -1, &t, &err), GC_EINVAL);
    assert_string_equal(err.field, "y");
    gc_err_clear(&err);
    assert_int_equal(tiles_get(f->t, "nope", 1, 3, 0, 0, &t, &err), GC_ENOTFOUND);
    assert_string_equal(err.field, "layer");

    tiles *t2;
    tiles_opts o = {.db_path = f->db, .minzoom = "building=14,grid=3"};
    assert_int_equal(tiles_new(&o, &t2, &err), 0);
    assert_int_equal(tiles_minzoom(t2, LEVEL_BUILDING), 14);
    assert_int_equal(tiles_minzoom(t2, LEVEL_GRID), 3);
    assert_int_equal(tiles_minzoom(t2, LEVEL_UNIT), 15);
    tiles_free(t2);
    gc_err_clear(&err);
    o.minzoom = "roof=3";
    assert_int_equal(tiles_new(&o, &t2, &err), GC_EINVAL);
    assert_string_equal(err.field, "minzoom");
    assert_non_null(strstr(err.msg, "roof"));
}

static void test_cache_follows_the_layer_version(void **state)
{
    fixture *f = *state;
    tiles_tile t;
    tiles_stats st0, st1;
    get(f, f->version, Z, f->x, f->y, &t);
    tiles_tile_clear(&t);
    tiles_get_stats(f->t, &st0);
    get(f, f->version, Z, f->x, f->y, &t); /* again: from the cache, made by nobody */
    tiles_tile_clear(&t);
    tiles_get_stats(f->t, &st1);
    assert_int_equal(st1.generated, st0.generated);
    assert_int_equal(st1.hits, st0.hits + 1);
    assert_true(st1.tiles > 0);

    /* a re-import renames A: the next tile comes from the new version even
     * before anyone asks for a refresh (the caller has seen the new version) */
    int old = f->version;
    put_grid(f, "网格甲（新）");
    assert_int_equal(f->version, old + 1);
    get(f, f->version, Z, f->x, f->y, &t);
    assert_int_equal(t.version, f->version);
    decoded d;
    decode(&d, t.mvt, Z, f->x, f->y);
    OGRFeatureH fa = feature(&d, "A");
    assert_non_null(fa);
    assert_string_equal(field(fa, "name"), "网格甲（新）");
    OGR_F_Destroy(fa);
    decoded_close(&d);
    tiles_tile_clear(&t);

    /* the refresh drops what the old version left in the cache */
    tiles_get_stats(f->t, &st0);
    gc_err err = {0};
    put_grid(f, "网格甲（三）");
    assert_int_equal(tiles_refresh(f->t, &err), 1);
    tiles_get_stats(f->t, &st1);
    assert_int_equal(st1.tiles, 0);
    assert_int_equal(st1.layers, 1); /* made again from the new version, ready */
    assert_int_equal(tiles_refresh(f->t, &err), 0);
    get(f, f->version, Z, f->x, f->y, &t);
    decode(&d, t.mvt, Z, f->x, f->y);
    fa = feature(&d, "A");
    assert_string_equal(field(fa, "name"), "网格甲（三）");
    OGR_F_Destroy(fa);
    decoded_close(&d);
    tiles_tile_clear(&t);
}

/* The cache is bounded in bytes: with room for little, a metatile's other
 * fifteen tiles are let go and the one asked for is kept and served. */
static void test_cache_bounded_in_bytes(void **state)
{
    fixture *f = *state;
    tiles *small;
    gc_err err = {0};
    tiles_opts o = {.db_path = f->db, .cache_bytes = 64};
    assert_int_equal(tiles_new(&o, &small, &err), 0);
    tiles_tile t;
    assert_int_equal(tiles_get(small, "grid", f->version, Z, f->x, f->y, &t, &err), 0);
    assert_true(g_bytes_get_size(t.mvt) > 0);
    tiles_tile_clear(&t);
    tiles_stats st;
    tiles_get_stats(small, &st);
    assert_int_equal(st.tiles, 1);
    assert_int_equal(st.evicted, 15);
    assert_true(tiles_peek(small, "grid", f->version, Z, f->x, f->y, &t));
    tiles_tile_clear(&t);
    assert_false(tiles_peek(small, "grid", f->version, Z, f->x ^ 1, f->y, &t));
    tiles_free(small);
}

typedef struct racer {
    fixture *f;
    int i;
    int rc;
} racer;

static gpointer race(gpointer data)
{
    racer *r = data;
    tiles_tile t;
    gc_err err = {0};
    int x0 = r->f->x - r->f->x % 4, y0 = r->f->y - r->f->y % 4;
    r->rc =
        tiles_get(r->f->t, "grid", r->f->version, Z, x0 + r->i % 4, y0 + (r->i / 4) % 4, &t, &err);
    tiles_tile_clear(&t);
    return NULL;
}

/* Many requests for the tiles of one metatile at once (a map opening): the
 * layer is read once and the metatile made once. */
static void test_made_once_however_many_ask(void **state)
{
    fixture *f = *state;
    enum { N = 32 };
    racer r[N];
    GThread *th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){f, i, -1};
        th[i] = g_thread_new("race", race, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        g_thread_join(th[i]);
        assert_int_equal(r[i].rc, 0);
    }
    tiles_stats st;
    tiles_get_stats(f->t, &st);
    assert_int_equal(st.generated, 16);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, N - 1);
    assert_int_equal(st.layers, 1);
    assert_int_equal(st.loads, 1);
}

/* A community layer of one area over grids A and B; returns its version. */
static int put_community(fixture *f, const char *name)
{
    char *wkt = box(f, 0.15, 0.15, 0.85, 0.65, 0);
    size_t len;
    unsigned char *wkb = wkb_4326(wkt, &len);
    store_feature_in in = {.fid = "P1", .name = name, .code = "01", .wkb = wkb, .wkb_len = len};
    store_layer meta = {0};
    snprintf(meta.name, sizeof meta.name, "community");
    snprintf(meta.level, sizeof meta.level, "community");
    snprintf(meta.title, sizeof meta.title, "communities");
    gc_err err = {0};
    assert_int_equal(store_layer_replace(f->s, &meta, &in, 1, NULL, NULL, &err), 0);
    g_free(wkb);
    g_free(wkt);
    return meta.version;
}

/* The layers' names in the tile, in order, joined by ' '. */
static char *layer_names(GBytes *mvt, int z, int x, int y)
{
    char path[128];
    snprintf(path, sizeof path, "/vsimem/test_tiles/set/%d/%d/%d.pbf", z, x, y);
    gsize len;
    const void *data = g_bytes_get_data(mvt, &len);
    VSIFCloseL(VSIFileFromMemBuffer(path, (GByte *)data, len, FALSE));
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, (const char *const[]){"MVT", NULL}, NULL, NULL);
    assert_non_null(ds);
    GString *names = g_string_new("");
    for (int i = 0; i < GDALDatasetGetLayerCount(ds); i++) {
        OGRLayerH l = GDALDatasetGetLayer(ds, i);
        g_string_append_printf(names, "%s%s:%lld", i ? " " : "", OGR_L_GetName(l),
                               (long long)OGR_L_GetFeatureCount(l, TRUE));
    }
    GDALClose(ds);
    VSIUnlink(path);
    return g_string_free(names, FALSE);
}

/* Two layers in one tile: each layer's own tile one after the other, read by
 * GDAL's MVT reader as one tile of both; cached as one; a re-import of
 * either drops it at the refresh, and the next holds the new version. */
static void test_set_holds_every_layer(void **state)
{
    fixture *f = *state;
    int cv = put_community(f, "社区甲");
    tiles_part parts[2] = {{"community", cv}, {"grid", f->version}};
    tiles_tile set, a, b;
    gc_err err = {0};
    assert_int_equal(tiles_get_set(f->t, parts, 2, Z, f->x, f->y, &set, &err), 0);
    assert_non_null(set.gz);
    char *names = layer_names(set.mvt, Z, f->x, f->y);
    assert_string_equal(names, "community:1 community_label:1 grid:3 grid_label:2");
    g_free(names);
    /* byte for byte the two layers' own tiles */
    assert_int_equal(tiles_get(f->t, "community", cv, Z, f->x, f->y, &a, &err), 0);
    get(f, f->version, Z, f->x, f->y, &b);
    GByteArray *cat = g_byte_array_new();
    gsize la, lb;
    const guint8 *da = g_bytes_get_data(a.mvt, &la), *db = g_bytes_get_data(b.mvt, &lb);
    g_byte_array_append(cat, da, (guint)la);
    g_byte_array_append(cat, db, (guint)lb);
    assert_int_equal(g_bytes_get_size(set.mvt), cat->len);
    assert_memory_equal(g_bytes_get_data(set.mvt, NULL), cat->data, cat->len);
    g_byte_array_unref(cat);
    tiles_tile_clear(&a);
    tiles_tile_clear(&b);
    tiles_tile_clear(&set);

    /* again: the set's own cached tile, and tiles_peek_set finds it */
    tiles_stats st0, st1;
    tiles_get_stats(f->t, &st0);
    assert_true(tiles_peek_set(f->t, parts, 2, Z, f->x, f->y, &set));
    tiles_tile_clear(&set);
    assert_int_equal(tiles_get_set(f->t, parts, 2, Z, f->x, f->y, &set, &err), 0);
    tiles_tile_clear(&set);
    tiles_get_stats(f->t, &st1);
    assert_int_equal(st1.hits, st0.hits + 2);
    assert_int_equal(st1.generated, st0.generated);

    /* a re-import of the community: the refresh drops the set's tile too */
    int cv2 = put_community(f, "社区甲（新）");
    assert_int_equal(tiles_refresh(f->t, &err), 1);
    assert_false(tiles_peek_set(f->t, parts, 2, Z, f->x, f->y, &set));
    parts[0].version = cv2;
    assert_int_equal(tiles_get_set(f->t, parts, 2, Z, f->x, f->y, &set, &err), 0);
    assert_int_equal(parts[0].version, cv2);
    char path[128];
    snprintf(path, sizeof path, "/vsimem/test_tiles/set2/%d/%d/%d.pbf", Z, f->x, f->y);
    VSIFCloseL(VSIFileFromMemBuffer(path, (GByte *)g_bytes_get_data(set.mvt, NULL),
                                    g_bytes_get_size(set.mvt), FALSE));
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, (const char *const[]){"MVT", NULL}, NULL, NULL);
    OGRLayerH cl = GDALDatasetGetLayerByName(ds, "community");
    assert_non_null(cl);
    OGRFeatureH cf = OGR_L_GetNextFeature(cl);
    assert_non_null(cf);
    assert_string_equal(field(cf, "name"), "社区甲（新）");
    OGR_F_Destroy(cf);
    GDALClose(ds);
    VSIUnlink(path);
    tiles_tile_clear(&set);

    /* refusals: no part, too many, a layer the store lacks */
    tiles_part many[TILES_SET_MAX + 1];
    for (int i = 0; i <= TILES_SET_MAX; i++)
        many[i] = (tiles_part){"grid", f->version};
    gc_err_clear(&err);
    assert_int_equal(tiles_get_set(f->t, many, TILES_SET_MAX + 1, Z, f->x, f->y, &set, &err),
                     GC_EINVAL);
    assert_string_equal(err.field, "layer");
    gc_err_clear(&err);
    assert_int_equal(tiles_get_set(f->t, many, 0, Z, f->x, f->y, &set, &err), GC_EINVAL);
    gc_err_clear(&err);
    tiles_part lacking[2] = {{"grid", f->version}, {"nope", 1}};
    assert_int_equal(tiles_get_set(f->t, lacking, 2, Z, f->x, f->y, &set, &err), GC_ENOTFOUND);
    assert_string_equal(err.field, "layer");
    assert_null(set.mvt);
}

int main(void)
{
    GDALAllRegister();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_features_and_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_at_the_edge_within_the_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_neighbours_share_their_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_tile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_name_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_follows_the_layer_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_made_once_however_many_ask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_bounded_in_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_holds_every_layer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
