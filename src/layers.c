/* layers: OGR in, GEOS to validate, store out. The import reads every feature
 * into memory (a district's buildings are tens of thousands, not millions),
 * validates all of it, and writes only if nothing is wrong: a rejected import
 * leaves the stored version of the layer as it was. */
#include "gridcc/layers.h"

#define GEOS_USE_ONLY_R_API
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <geos_c.h>
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gridcc/crs.h"
#include "gridcc/levels.h"
#include "gridcc/log.h"

#define MAX_REPORTED 200   /* problems printed one by one; the rest are counted */

/* Validation runs on up to three threads (the reader, a per-feature checker
 * fed as features are read, an overlap/gap checker beside the writer). GEOS
 * objects are used by one thread at a time; each thread has its own GEOS
 * context handle. */
static __thread GEOSContextHandle_t tls_geos;

static GEOSContextHandle_t geos_handle(void)
{
    if (!tls_geos)
        tls_geos = GEOS_init_r();
    return tls_geos;
}

static void geos_release(void)
{
    if (tls_geos)
        GEOS_finish_r(tls_geos);
    tls_geos = NULL;
}

#define GH geos_handle()

typedef struct item {
    long k;                 /* 1-based feature number in the file */
    long line;              /* CSV line, 0 if unknown */
    char *fid, *name, *code, *parent_code;
    char *props;            /* JSON object */
    GEOSGeometry *g;
    const GEOSPreparedGeometry *pg;
    double area_m2;
    int parent;             /* index into parents, -1 if none */
    char *ancestors;        /* JSON array */
    unsigned char *wkb;     /* EPSG:4326 WKB as stored */
    size_t wkb_len;
    double bbox[4];
} item;

typedef struct parent_set {
    size_t n;
    char **fid, **code, **ancestors;
    GEOSGeometry **g;
    const GEOSPreparedGeometry **pg;
    GHashTable *by_code;    /* code or fid → index + 1 */
    GEOSSTRtree *tree;
    char layer[128];
} parent_set;

typedef struct ctx {
    const layers_import_opts *o;
    layers_report *rep;
    const char *file;       /* as the user named it */
    gc_level level;
    item **items;           /* stable pointers: the checker thread holds some */
    size_t n, cap;
    GMutex lock;            /* guards reporting (counters and messages) */
    GAsyncQueue *feed;      /* items read, for the per-feature checker */
    bool have_parents;
    parent_set par;
    bool recode;            /* attributes need --encoding → UTF-8 by us */
} ctx;

/* ---- reporting ---- */

static void say(ctx *c, layers_msg_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(ctx *c, layers_msg_kind kind, const char *fmt, ...)
{
    size_t *counter = kind == LAYERS_MSG_ERROR  ? &c->rep->errors
                      : kind == LAYERS_MSG_WARN ? &c->rep->warnings
                                                : NULL;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_mutex_lock(&c->lock);
    if ((!counter || ++*counter <= MAX_REPORTED) && c->o->message)
        c->o->message(c->o->ud, kind, buf);
    g_mutex_unlock(&c->lock);
}

/* "file: feature #k (id X, name Y, line N)" */
static const char *where(ctx *c, const item *it, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s: feature #%ld (id %s", c->file, it->k, it->fid ? it->fid : "?");
    if (it->name && *it->name)
        n += snprintf(buf + n, len - (size_t)n, ", name %s", it->name);
    if (it->line)
        n += snprintf(buf + n, len - (size_t)n, ", line %ld", it->line);
    snprintf(buf + n, len - (size_t)n, ")");
    return buf;
}

static void problem(ctx *c, const item *it, bool topology, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(ctx *c, const item *it, bool topology, const char *fmt, ...)
{
    char w[512], msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    layers_msg_kind kind = topology && c->o->topology_warn ? LAYERS_MSG_WARN : LAYERS_MSG_ERROR;
    say(c, kind, "%s: %s", where(c, it, w, sizeof w), msg);
}

static void progress(ctx *c, const char *phase, size_t done, size_t total)
{
    if (c->o->progress)
        c->o->progress(c->o->ud, phase, done, total);
}

/* ---- geometry helpers ---- */

/* m² per square degree at a latitude: an equirectangular approximation,
 * within 0.5% over a district-sized feature. */
static double m2_per_deg2(double lat) { return 111320.0 * cos(lat * M_PI / 180.0) * 110574.0; }

static double area_m2(ctx *c, const GEOSGeometry *g)
{
    double a = 0, miny = 0, maxy = 0;
    if (!GEOSArea_r(GH, g, &a) || a == 0)
        return 0;
    GEOSGeom_getYMin_r(GH, g, &miny);
    GEOSGeom_getYMax_r(GH, g, &maxy);
    return a * m2_per_deg2((miny + maxy) / 2);
}

static void point_of(ctx *c, const GEOSGeometry *g, double *x, double *y)
{
    *x = *y = NAN;
    GEOSGeometry *p = GEOSPointOnSurface_r(GH, g);
    if (p) {
        GEOSGeomGetX_r(GH, p, x);
        GEOSGeomGetY_r(GH, p, y);
        GEOSGeom_destroy_r(GH, p);
    }
}

/* Keeps the polygonal parts of g (consumed) as one (Multi)Polygon, or NULL. */
static GEOSGeometry *polygonal(ctx *c, GEOSGeometry *g)
{
    int t = GEOSGeomTypeId_r(GH, g);
    if (t == GEOS_POLYGON || t == GEOS_MULTIPOLYGON)
        return g;
    if (t != GEOS_GEOMETRYCOLLECTION) {
        GEOSGeom_destroy_r(GH, g);
        return NULL;
    }
    int n = GEOSGetNumGeometries_r(GH, g);
    GEOSGeometry **parts = malloc(sizeof *parts * (size_t)(n ? n : 1) * 4);
    unsigned int np = 0;
    for (int i = 0; i < n; i++) {
        const GEOSGeometry *s = GEOSGetGeometryN_r(GH, g, i);
        int st = GEOSGeomTypeId_r(GH, s);
        if (st == GEOS_POLYGON) {
            parts[np++] = GEOSGeom_clone_r(GH, s);
        } else if (st == GEOS_MULTIPOLYGON) {
            int m = GEOSGetNumGeometries_r(GH, s);
            parts = realloc(parts, sizeof *parts * (np + (unsigned)m + (unsigned)n));
            for (int j = 0; j < m; j++)
                parts[np++] = GEOSGeom_clone_r(GH, GEOSGetGeometryN_r(GH, s, j));
        }
    }
    GEOSGeom_destroy_r(GH, g);
    GEOSGeometry *out = NULL;
    if (np)
        out = GEOSGeom_createCollection_r(GH, GEOS_MULTIPOLYGON, parts, np);
    free(parts);
    return out;
}

/* ---- reading ---- */

static const char *pick_field(OGRFeatureDefnH defn, const char *given, const char *const *cands)
{
    if (given)
        return OGR_FD_GetFieldIndex(defn, given) >= 0 ? given : NULL;
    for (int i = 0; cands[i]; i++) {
        int idx = OGR_FD_GetFieldIndex(defn, cands[i]);
        if (idx >= 0)
            return OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(defn, idx));
    }
    return NULL;
}

static char *field_string(ctx *c, OGRFeatureH f, int idx, bool *bad_utf8)
{
    if (idx < 0 || !OGR_F_IsFieldSetAndNotNull(f, idx))
        return NULL;
    const char *raw = OGR_F_GetFieldAsString(f, idx);
    char *s;
    if (c->recode) {
        char *r = CPLRecode(raw, c->o->encoding, CPL_ENC_UTF8);
        s = strdup(r);
        CPLFree(r);
    } else
        s = strdup(raw);
    if (!g_utf8_validate(s, -1, NULL)) {
        *bad_utf8 = true;
        char *fixed = g_utf8_make_valid(s, -1);
        free(s);
        s = strdup(fixed);
        g_free(fixed);
    }
    return s;
}

static bool all_finite(OGRGeometryH g)
{
    int n = OGR_G_GetGeometryCount(g);
    if (n > 0) {
        for (int i = 0; i < n; i++)
            if (!all_finite(OGR_G_GetGeometryRef(g, i)))
                return false;
        return true;
    }
    int np = OGR_G_GetPointCount(g);
    for (int i = 0; i < np; i++)
        if (!isfinite(OGR_G_GetX(g, i)) || !isfinite(OGR_G_GetY(g, i)))
            return false;
    return true;
}

/* The Chinese offsets are not in PROJ: move every vertex ourselves. */
static int apply_crs(OGRGeometryH g, crs_transform *t)
{
    int n = OGR_G_GetGeometryCount(g);
    if (n > 0) {
        for (int i = 0; i < n; i++)
            if (apply_crs(OGR_G_GetGeometryRef(g, i), t))
                return -1;
        return 0;
    }
    int np = OGR_G_GetPointCount(g);
    for (int i = 0; i < np; i++) {
        double x = OGR_G_GetX(g, i), y = OGR_G_GetY(g, i);
        if (crs_transform_to_wgs84(t, &x, &y, 1, NULL, NULL))
            return -1;
        OGR_G_SetPoint_2D(g, i, x, y);
    }
    return 0;
}

static const char *const ID_FIELDS[] = {"id", "ID", "Id", "fid", "FID", "code", "CODE", "Code",
                                        "编码", "编号", NULL};
static const char *const NAME_FIELDS[] = {"name", "Name", "NAME", "名称", "mc", "MC", NULL};
static const char *const CODE_FIELDS[] = {"code", "CODE", "Code", "编码", "编号", NULL};

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static int read_source(ctx *c, gc_err *err)
{
    const layers_import_opts *o = c->o;
    struct stat sb;
    if (stat(o->path, &sb) != 0)
        return gc_fail(err, GC_EINVAL, "file", "%s: no such file", o->path);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0)
        return gc_fail(err, GC_EINVAL, "file", "%s: empty file", o->path);

    char *open_path = has_suffix(o->path, ".gz") && strncmp(o->path, "/vsi", 4)
                          ? g_strconcat("/vsigzip/", o->path, NULL)
                          : g_strdup(o->path);
    char **oo = NULL;
    bool is_csv = has_suffix(o->path, ".csv") || has_suffix(o->path, ".csv.gz");
    bool is_shp = has_suffix(o->path, ".shp") || has_suffix(o->path, ".dbf") ||
                  has_suffix(o->path, ".zip");
    if (is_csv) {
        oo = CSLSetNameValue(oo, "GEOM_POSSIBLE_NAMES", "wkt,WKT,geom,the_geom,geometry,Geometry,WKT_GEOM");
        oo = CSLSetNameValue(oo, "X_POSSIBLE_NAMES", "lon,lng,longitude,Longitude,LONGITUDE,x,X");
        oo = CSLSetNameValue(oo, "Y_POSSIBLE_NAMES", "lat,latitude,Latitude,LATITUDE,y,Y");
        oo = CSLSetNameValue(oo, "KEEP_GEOM_COLUMNS", "NO");
    }
    /* the Shapefile driver recodes DBF text itself; other drivers hand us bytes */
    if (is_shp && o->encoding)
        oo = CSLSetNameValue(oo, "ENCODING", o->encoding);
    c->recode = o->encoding && !is_shp && strcasecmp(o->encoding, "UTF-8") &&
                strcasecmp(o->encoding, "UTF8");
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(open_path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL,
                                 (const char *const *)oo, NULL);
    CPLPopErrorHandler();
    CSLDestroy(oo);
    g_free(open_path);
    if (!ds)
        return gc_fail(err, GC_EINVAL, "file", "%s: cannot read as a vector source: %s", o->path,
                       CPLGetLastErrorMsg()[0] ? CPLGetLastErrorMsg()
                                               : "not a format GDAL recognises (truncated?)");
    OGRLayerH lyr = NULL;
    if (o->source_layer) {
        lyr = GDALDatasetGetLayerByName(ds, o->source_layer);
        if (!lyr) {
            GString *names = g_string_new(NULL);
            for (int i = 0; i < GDALDatasetGetLayerCount(ds); i++)
                g_string_append_printf(names, "%s%s", i ? ", " : "",
                                       OGR_L_GetName(GDALDatasetGetLayer(ds, i)));
            gc_fail(err, GC_EINVAL, "source-layer", "%s: no layer '%s' (it has: %s)", o->path,
                    o->source_layer, names->str);
            g_string_free(names, TRUE);
            GDALClose(ds);
            return GC_EINVAL;
        }
    }
    for (int i = 0; i < GDALDatasetGetLayerCount(ds) && !lyr; i++) {
        OGRLayerH l = GDALDatasetGetLayer(ds, i);
        OGRwkbGeometryType t = wkbFlatten(OGR_L_GetGeomType(l));
        if (t == wkbPolygon || t == wkbMultiPolygon || t == wkbUnknown ||
            t == wkbCurvePolygon || t == wkbMultiSurface || t == wkbGeometryCollection)
            lyr = l;
    }
    if (!lyr && GDALDatasetGetLayerCount(ds) > 0)
        lyr = GDALDatasetGetLayer(ds, 0);
    if (!lyr) {
        GDALClose(ds);
        return gc_fail(err, GC_EINVAL, "file", "%s: contains no layer", o->path);
    }
    if (GDALDatasetGetLayerCount(ds) > 1 && !o->source_layer)
        say(c, LAYERS_MSG_INFO, "%s: %d layers; importing '%s' (--source-layer picks another)",
            c->file, GDALDatasetGetLayerCount(ds), OGR_L_GetName(lyr));

    /* CRS: --srs, else the file's, else lon/lat if every coordinate fits */
    crs_def src = {0};
    if (o->srs && crs_parse(o->srs, &src, err)) {
        GDALClose(ds);
        return GC_EINVAL;
    }
    OGRSpatialReferenceH file_srs = OGR_L_GetSpatialRef(lyr);
    OGRSpatialReferenceH from = NULL, to = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(to, 4326);
    OSRSetAxisMappingStrategy(to, OAMS_TRADITIONAL_GIS_ORDER);
    crs_transform *chinese = NULL;
    if (o->srs && (src.kind == CRS_GCJ02 || src.kind == CRS_BD09)) {
        chinese = crs_transform_new(&src, err);
    } else if (o->srs) {
        from = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(from, src.epsg);
    } else if (file_srs) {
        from = OSRClone(file_srs);
    } else {
        OGREnvelope env;
        if (OGR_L_GetExtent(lyr, &env, TRUE) == OGRERR_NONE &&
            (env.MinX < -180 || env.MaxX > 180 || env.MinY < -90 || env.MaxY > 90)) {
            OSRDestroySpatialReference(to);
            GDALClose(ds);
            return gc_fail(err, GC_EINVAL, "srs",
                           "%s: the file names no CRS%s and its coordinates (%.1f..%.1f, "
                           "%.1f..%.1f) are not lon/lat: pass --srs EPSG:N",
                           o->path, is_shp ? " (no .prj beside the Shapefile)" : "", env.MinX, env.MaxX, env.MinY, env.MaxY);
        }
        say(c, LAYERS_MSG_WARN,
            "%s: the file names no CRS%s; its coordinates fit lon/lat, so EPSG:4326 is "
            "assumed: pass --srs to say otherwise",
            c->file, is_shp ? " (no .prj beside the Shapefile)" : "");
    }
    OGRCoordinateTransformationH ct = NULL;
    if (from) {
        OSRSetAxisMappingStrategy(from, OAMS_TRADITIONAL_GIS_ORDER);
        if (!OSRIsSame(from, to)) {
            CPLPushErrorHandler(CPLQuietErrorHandler);
            ct = OCTNewCoordinateTransformation(from, to);
            CPLPopErrorHandler();
            if (!ct) {
                OSRDestroySpatialReference(from);
                OSRDestroySpatialReference(to);
                GDALClose(ds);
                return gc_fail(err, GC_EINVAL, "srs",
                               "%s: no transformation from the file's CRS to EPSG:4326: %s",
                               o->path, CPLGetLastErrorMsg());
            }
        }
    }

    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(lyr);
    const char *idf = pick_field(defn, o->id_field, ID_FIELDS);
    const char *namef = pick_field(defn, o->name_field, NAME_FIELDS);
    const char *codef = pick_field(defn, o->code_field, CODE_FIELDS);
    const char *parf = o->parent_field ? pick_field(defn, o->parent_field, NULL) : NULL;
    int rc = 0;
    if (o->id_field && !idf)
        rc = gc_fail(err, GC_EINVAL, "id-field", "%s: no field '%s'", o->path, o->id_field);
    else if (o->name_field && !namef)
        rc = gc_fail(err, GC_EINVAL, "name-field", "%s: no field '%s'", o->path, o->name_field);
    else if (o->code_field && !codef)
        rc = gc_fail(err, GC_EINVAL, "code-field", "%s: no field '%s'", o->path, o->code_field);
    else if (o->parent_field && !parf)
        rc = gc_fail(err, GC_EINVAL, "parent-field", "%s: no field '%s'", o->path,
                     o->parent_field);
    int nfields = OGR_FD_GetFieldCount(defn);
    int idi = idf ? OGR_FD_GetFieldIndex(defn, idf) : -1;
    int namei = namef ? OGR_FD_GetFieldIndex(defn, namef) : -1;
    int codei = codef ? OGR_FD_GetFieldIndex(defn, codef) : -1;
    int pari = parf ? OGR_FD_GetFieldIndex(defn, parf) : -1;

    GEOSWKBReader *rd = GEOSWKBReader_create_r(GH);
    GIntBig total = OGR_L_GetFeatureCount(lyr, FALSE);
    OGR_L_ResetReading(lyr);
    OGRFeatureH f;
    long k = 0;
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    for (;;) {
        CPLErrorReset();
        if (rc || !(f = OGR_L_GetNextFeature(lyr)))
            break;
        /* an error raised while reading this feature belongs to it */
        char gdal_msg[512] = "";
        if (CPLGetLastErrorType() >= CE_Failure)
            snprintf(gdal_msg, sizeof gdal_msg, " (%s)", CPLGetLastErrorMsg());
        CPLErrorReset();
        k++;
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 1024;
            c->items = realloc(c->items, c->cap * sizeof *c->items);
        }
        item *it = c->items[c->n++] = calloc(1, sizeof *it);
        it->k = k;
        it->parent = -1;
        if (is_csv)
            it->line = (long)OGR_F_GetFID(f) + 1;
        bool bad_utf8 = false;
        it->fid = field_string(c, f, idi, &bad_utf8);
        if (!it->fid || !*it->fid) {
            free(it->fid);
            it->fid = g_strdup_printf("%lld", (long long)OGR_F_GetFID(f));
            if (o->id_field)
                problem(c, it, false, "no value in id field '%s'", o->id_field);
        }
        it->name = field_string(c, f, namei, &bad_utf8);
        it->code = field_string(c, f, codei, &bad_utf8);
        if (!it->code)
            it->code = strdup(it->fid);
        it->parent_code = field_string(c, f, pari, &bad_utf8);

        json_t *props = json_object();
        for (int i = 0; i < nfields; i++) {
            OGRFieldDefnH fd = OGR_FD_GetFieldDefn(defn, i);
            const char *fname = OGR_Fld_GetNameRef(fd);
            if (!OGR_F_IsFieldSetAndNotNull(f, i)) {
                json_object_set_new(props, fname, json_null());
                continue;
            }
            switch (OGR_Fld_GetType(fd)) {
            case OFTInteger:
                json_object_set_new(props, fname, json_integer(OGR_F_GetFieldAsInteger(f, i)));
                break;
            case OFTInteger64:
                json_object_set_new(props, fname, json_integer(OGR_F_GetFieldAsInteger64(f, i)));
                break;
            case OFTReal: {
                double v = OGR_F_GetFieldAsDouble(f, i);
                json_object_set_new(props, fname, isfinite(v) ? json_real(v) : json_null());
                break;
            }
            default: {
                char *s = field_string(c, f, i, &bad_utf8);
                json_object_set_new(props, fname, json_string(s ? s : ""));
                free(s);
            }
            }
        }
        it->props = json_dumps(props, JSON_COMPACT);
        json_decref(props);
        if (bad_utf8)
            problem(c, it, false,
                    "attributes are not valid UTF-8: pass --encoding (GBK, Big5 …) or add a "
                    ".cpg file");

        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (!g) {
            problem(c, it, false, "no geometry%s", gdal_msg[0] ? gdal_msg
                                    : is_csv ? " (no WKT or lon/lat column, or it does not parse)"
                                             : "");
        } else if (OGR_G_IsEmpty(g)) {
            problem(c, it, false, "empty geometry");
        } else {
            OGRGeometryH gg = OGR_G_Clone(g);
            if (OGR_G_HasCurveGeometry(gg, TRUE)) {
                OGRGeometryH lin = OGR_G_GetLinearGeometry(gg, 0, NULL);
                OGR_G_DestroyGeometry(gg);
                gg = lin;
            }
            OGR_G_FlattenTo2D(gg);
            OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(gg));
            if (t == wkbGeometryCollection) {
                gg = OGR_G_ForceToMultiPolygon(gg);
                t = wkbFlatten(OGR_G_GetGeometryType(gg));
            }
            if (t != wkbPolygon && t != wkbMultiPolygon) {
                problem(c, it, false, "wrong geometry type %s: a %s layer needs polygons",
                        OGRGeometryTypeToName(t), o->level);
            } else if (!all_finite(gg)) {
                problem(c, it, false, "coordinate is NaN or infinite");
            } else if ((ct && OGR_G_Transform(gg, ct) != OGRERR_NONE) ||
                       (chinese && apply_crs(gg, chinese))) {
                problem(c, it, false, "cannot transform to EPSG:4326 from %s",
                        o->srs ? o->srs : "the file's CRS");
            } else {
                OGREnvelope e;
                OGR_G_GetEnvelope(gg, &e);
                if (!all_finite(gg) || e.MinX < -180 || e.MaxX > 180 || e.MinY < -90 ||
                    e.MaxY > 90) {
                    problem(c, it, false,
                            "coordinates out of range (%.6g..%.6g, %.6g..%.6g): not lon/lat "
                            "degrees; wrong --srs?",
                            e.MinX, e.MaxX, e.MinY, e.MaxY);
                } else {
                    it->wkb_len = (size_t)OGR_G_WkbSize(gg);
                    it->wkb = malloc(it->wkb_len);
                    OGR_G_ExportToWkb(gg, wkbNDR, it->wkb);
                    it->bbox[0] = e.MinX;
                    it->bbox[1] = e.MinY;
                    it->bbox[2] = e.MaxX;
                    it->bbox[3] = e.MaxY;
                    it->g = GEOSWKBReader_read_r(GH, rd, it->wkb, it->wkb_len);
                    if (!it->g)
                        problem(c, it, false, "geometry GEOS cannot read");
                }
            }
            OGR_G_DestroyGeometry(gg);
        }
        OGR_F_Destroy(f);
        g_async_queue_push(c->feed, it);
        if (k % 2000 == 0)
            progress(c, "reading", (size_t)k, total > 0 ? (size_t)total : 0);
    }
    CPLPopErrorHandler();
    if (!rc && CPLGetLastErrorType() >= CE_Failure && CPLGetLastErrorMsg()[0])
        rc = gc_fail(err, GC_EINVAL, "file", "%s: read failed after feature #%ld: %s", o->path,
                     k, CPLGetLastErrorMsg());
    if (!rc && k == 0)
        rc = gc_fail(err, GC_EINVAL, "file", "%s: no features", o->path);
    progress(c, "reading", (size_t)k, (size_t)k);
    GEOSWKBReader_destroy_r(GH, rd);
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    crs_transform_free(chinese);
    if (from)
        OSRDestroySpatialReference(from);
    OSRDestroySpatialReference(to);
    GDALClose(ds);
    return rc;
}

/* ---- validation ---- */

/* The stored geometry (WKB and bounding box) follows it->g after a repair. */
static void store_geometry(item *it)
{
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(GH);
    GEOSWKBWriter_setByteOrder_r(GH, w, GEOS_WKB_NDR);
    size_t len;
    unsigned char *wkb = GEOSWKBWriter_write_r(GH, w, it->g, &len);
    GEOSWKBWriter_destroy_r(GH, w);
    free(it->wkb);
    it->wkb = malloc(len);
    memcpy(it->wkb, wkb, len);
    it->wkb_len = len;
    GEOSFree_r(GH, wkb);
    GEOSGeom_getXMin_r(GH, it->g, &it->bbox[0]);
    GEOSGeom_getYMin_r(GH, it->g, &it->bbox[1]);
    GEOSGeom_getXMax_r(GH, it->g, &it->bbox[2]);
    GEOSGeom_getYMax_r(GH, it->g, &it->bbox[3]);
}

static void check_geometry(ctx *c, item *it)
{
    if (!it->g)
        return;
    char *reason = NULL;
    GEOSGeometry *loc = NULL;
    char valid = GEOSisValidDetail_r(GH, it->g, 0, &reason, &loc);
    if (valid != 1) {
        double x = NAN, y = NAN;
        if (loc) {
            GEOSGeomGetX_r(GH, loc, &x);
            GEOSGeomGetY_r(GH, loc, &y);
        }
        if (c->o->repair) {
            double before = area_m2(c, it->g);
            GEOSGeometry *fixed = polygonal(c, GEOSMakeValid_r(GH, it->g));
            if (fixed && !GEOSisEmpty_r(GH, fixed)) {
                GEOSGeom_destroy_r(GH, it->g);
                it->g = fixed;
                store_geometry(it);
                g_mutex_lock(&c->lock);
                c->rep->repaired++;
                g_mutex_unlock(&c->lock);
                char w[512];
                say(c, LAYERS_MSG_WARN,
                    "%s: repaired: %s at %.7f %.7f (area %.1f m² before, %.1f m² after)",
                    where(c, it, w, sizeof w), reason ? reason : "invalid", x, y, before,
                    area_m2(c, it->g));
            } else {
                if (fixed)
                    GEOSGeom_destroy_r(GH, fixed);
                problem(c, it, false,
                        "invalid geometry: %s at %.7f %.7f, and repair left no area",
                        reason ? reason : "?", x, y);
                GEOSGeom_destroy_r(GH, it->g);
                it->g = NULL;
            }
        } else {
            problem(c, it, false, "invalid geometry: %s at %.7f %.7f (--repair fixes it)",
                    reason ? reason : "?", x, y);
            GEOSGeom_destroy_r(GH, it->g);
            it->g = NULL;
        }
    }
    if (reason)
        GEOSFree_r(GH, reason);
    if (loc)
        GEOSGeom_destroy_r(GH, loc);
    if (it->g) {
        it->area_m2 = area_m2(c, it->g);
        it->pg = GEOSPrepare_r(GH, it->g);
    }
}

static void check_duplicates(ctx *c)
{
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < c->n; i++) {
        item *it = c->items[i];
        gpointer prev = g_hash_table_lookup(seen, it->fid);
        if (prev)
            problem(c, it, false, "duplicate id %s (also feature #%ld)", it->fid,
                    c->items[GPOINTER_TO_SIZE(prev) - 1]->k);
        else
            g_hash_table_insert(seen, it->fid, GSIZE_TO_POINTER(i + 1));
    }
    g_hash_table_destroy(seen);
}

typedef struct query_hits {
    size_t *v;
    size_t n, cap;
} query_hits;

static void collect(void *item_, void *ud)
{
    query_hits *h = ud;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = (size_t)(uintptr_t)item_ - 1;
}

static double tolerance(ctx *c) { return c->o->tolerance_m2 > 0 ? c->o->tolerance_m2 : 1.0; }

static void check_overlaps(ctx *c)
{
    GEOSSTRtree *tree = GEOSSTRtree_create_r(GH, 10);
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i]->g)
            GEOSSTRtree_insert_r(GH, tree, c->items[i]->g, (void *)(uintptr_t)(i + 1));
    query_hits h = {0};
    for (size_t i = 0; i < c->n; i++) {
        item *a = c->items[i];
        if (!a->g)
            continue;
        h.n = 0;
        GEOSSTRtree_query_r(GH, tree, a->g, collect, &h);
        for (size_t q = 0; q < h.n; q++) {
            size_t j = h.v[q];
            if (j <= i)
                continue;
            item *b = c->items[j];
            if (GEOSPreparedIntersects_r(GH, a->pg, b->g) != 1)
                continue;
            GEOSGeometry *x = GEOSIntersection_r(GH, a->g, b->g);
            double ar = x ? area_m2(c, x) : 0;
            if (ar > tolerance(c)) {
                double px, py;
                point_of(c, x, &px, &py);
                problem(c, a, true, "overlaps its sibling %s by %.1f m² near %.7f %.7f", b->fid,
                        ar, px, py);
            }
            if (x)
                GEOSGeom_destroy_r(GH, x);
        }
    }
    free(h.v);
    GEOSSTRtree_destroy_r(GH, tree);
}

typedef struct load_ctx {
    ctx *c;
    GEOSWKBReader *rd;
} load_ctx;

static int load_parent(void *ud, const store_feature *f)
{
    load_ctx *l = ud;
    parent_set *p = &l->c->par;
    GEOSGeometry *g = GEOSWKBReader_read_r(GH, l->rd, f->wkb, f->wkb_len);
    if (!g)
        return 0;
    size_t i = p->n++;
    p->fid = realloc(p->fid, p->n * sizeof *p->fid);
    p->code = realloc(p->code, p->n * sizeof *p->code);
    p->ancestors = realloc(p->ancestors, p->n * sizeof *p->ancestors);
    p->g = realloc(p->g, p->n * sizeof *p->g);
    p->pg = realloc(p->pg, p->n * sizeof *p->pg);
    p->fid[i] = strdup(f->fid);
    p->code[i] = strdup(f->code ? f->code : f->fid);
    p->ancestors[i] = strdup(f->ancestors_json ? f->ancestors_json : "[]");
    p->g[i] = g;
    p->pg[i] = GEOSPrepare_r(GH, g);
    return 0;
}

/* 1: parents loaded; 0: no parent level in the store; <0 error */
static int load_parents(ctx *c, store *s, gc_level pl, gc_err *err)
{
    store_layer L;
    if (store_layer_for_level(s, level_name(pl), &L, NULL))
        return 0;
    free(L.fields_json);
    snprintf(c->par.layer, sizeof c->par.layer, "%s", L.name);
    load_ctx lc = {c, GEOSWKBReader_create_r(GH)};
    store_query q = {.layer = L.name, .want_wkb = true};
    int rc = store_features_query(s, &q, NULL, load_parent, &lc, err);
    GEOSWKBReader_destroy_r(GH, lc.rd);
    if (rc)
        return rc;
    parent_set *p = &c->par;
    p->by_code = g_hash_table_new(g_str_hash, g_str_equal);
    p->tree = GEOSSTRtree_create_r(GH, 10);
    for (size_t i = 0; i < p->n; i++) {
        g_hash_table_insert(p->by_code, p->code[i], GSIZE_TO_POINTER(i + 1));
        if (!g_hash_table_contains(p->by_code, p->fid[i]))
            g_hash_table_insert(p->by_code, p->fid[i], GSIZE_TO_POINTER(i + 1));
        GEOSSTRtree_insert_r(GH, p->tree, p->g[i], (void *)(uintptr_t)(i + 1));
    }
    return 1;
}

static double outside_m2(ctx *c, const item *it, size_t pi)
{
    if (GEOSPreparedContains_r(GH, c->par.pg[pi], it->g) == 1)
        return 0;
    GEOSGeometry *d = GEOSDifference_r(GH, it->g, c->par.g[pi]);
    double a = d ? area_m2(c, d) : 0;
    if (d)
        GEOSGeom_destroy_r(GH, d);
    return a;
}

static void assign_parent(ctx *c, item *it, query_hits *hits)
{
    const char *plname = level_name(level_parent(c->level));
    bool required = c->level != LEVEL_DEDICATED;
    query_hits h = *hits;
    do {
        if (!it->g)
            break;
        long best = -1;
        double out = 0;
        if (c->o->parent_field) {
            gpointer v = it->parent_code ? g_hash_table_lookup(c->par.by_code, it->parent_code)
                                         : NULL;
            if (!v) {
                problem(c, it, false, "missing parent: %s '%s' is not in layer %s", plname,
                        it->parent_code ? it->parent_code : "(empty)", c->par.layer);
                break;
            }
            best = (long)GPOINTER_TO_SIZE(v) - 1;
            out = outside_m2(c, it, (size_t)best);
        } else {
            h.n = 0;
            GEOSSTRtree_query_r(GH, c->par.tree, it->g, collect, &h);
            double best_area = 0;
            for (size_t q = 0; q < h.n && best < 0; q++)
                if (GEOSPreparedContains_r(GH, c->par.pg[h.v[q]], it->g) == 1)
                    best = (long)h.v[q];
            if (best < 0) {
                for (size_t q = 0; q < h.n; q++) {
                    size_t pi = h.v[q];
                    if (GEOSPreparedIntersects_r(GH, c->par.pg[pi], it->g) != 1)
                        continue;
                    GEOSGeometry *x = GEOSIntersection_r(GH, it->g, c->par.g[pi]);
                    double a = x ? area_m2(c, x) : 0;
                    if (x)
                        GEOSGeom_destroy_r(GH, x);
                    if (a > best_area) {
                        best_area = a;
                        best = (long)pi;
                    }
                }
                if (best >= 0)
                    out = fmax(0, it->area_m2 - best_area);
            }
            if (best < 0) {
                if (required)
                    problem(c, it, false, "missing parent: it overlaps no %s of layer %s",
                            plname, c->par.layer);
                else {
                    char w[512];
                    say(c, LAYERS_MSG_WARN, "%s: lies in no %s; stored without a parent",
                        where(c, it, w, sizeof w), plname);
                }
                break;
            }
        }
        it->parent = (int)best;
        if (out > tolerance(c))
            problem(c, it, true, "partly outside its parent %s %s: %.1f m² (%.4g%%) outside",
                    plname, c->par.fid[best], out,
                    it->area_m2 > 0 ? 100.0 * out / it->area_m2 : 0.0);
        /* ancestors: the parent's, then the parent */
        json_t *anc = json_loads(c->par.ancestors[best], 0, NULL);
        if (!json_is_array(anc)) {
            json_decref(anc);
            anc = json_array();
        }
        json_array_append_new(anc, json_pack("{s:s,s:s}", "level", plname, "id",
                                             c->par.fid[best]));
        it->ancestors = json_dumps(anc, JSON_COMPACT);
        json_decref(anc);
    } while (0);
    *hits = h;
}

static void check_gaps(ctx *c)
{
    const char *plname = level_name(level_parent(c->level));
    for (size_t pi = 0; pi < c->par.n; pi++) {
        GPtrArray *kids = g_ptr_array_new();
        for (size_t i = 0; i < c->n; i++)
            if (c->items[i]->parent == (int)pi && c->items[i]->g)
                g_ptr_array_add(kids, GEOSGeom_clone_r(GH, c->items[i]->g));
        GEOSGeometry *u = NULL;
        if (kids->len) {
            GEOSGeometry *coll = GEOSGeom_createCollection_r(
                GH, GEOS_GEOMETRYCOLLECTION, (GEOSGeometry **)kids->pdata, kids->len);
            u = GEOSUnaryUnion_r(GH, coll);
            GEOSGeom_destroy_r(GH, coll);
        }
        g_ptr_array_free(kids, TRUE);
        GEOSGeometry *gap = u ? GEOSDifference_r(GH, c->par.g[pi], u)
                              : GEOSGeom_clone_r(GH, c->par.g[pi]);
        if (u)
            GEOSGeom_destroy_r(GH, u);
        if (!gap)
            continue;
        int np = GEOSGetNumGeometries_r(GH, gap);
        for (int k = 0; k < np; k++) {
            const GEOSGeometry *part = GEOSGetGeometryN_r(GH, gap, k);
            double a = area_m2(c, part);
            if (a <= tolerance(c))
                continue;
            double x, y;
            point_of(c, part, &x, &y);
            layers_msg_kind kind = c->o->topology_warn ? LAYERS_MSG_WARN : LAYERS_MSG_ERROR;
            say(c, kind, "%s: gap inside parent %s %s: %.1f m² not covered by any %s, near %.7f %.7f",
                c->file, plname, c->par.fid[pi], a, level_name(c->level), x, y);
        }
        GEOSGeom_destroy_r(GH, gap);
    }
}

/* ---- writing ---- */

/* The writer touches no GEOS object: the overlap/gap checker may be working
 * on them meanwhile; approve() waits for its verdict before the commit. */
static int write_layer(ctx *c, store *s, const char *lname, const char *dept, const char *fields,
                       const char *srcname, int (*approve)(void *), void *approve_ud, gc_err *err)
{
    store_feature_in *in = calloc(c->n ? c->n : 1, sizeof *in);
    store_layer meta = {0};
    meta.bbox[0] = meta.bbox[1] = INFINITY;
    meta.bbox[2] = meta.bbox[3] = -INFINITY;
    for (size_t i = 0; i < c->n; i++) {
        item *it = c->items[i];
        meta.bbox[0] = fmin(meta.bbox[0], it->bbox[0]);
        meta.bbox[1] = fmin(meta.bbox[1], it->bbox[1]);
        meta.bbox[2] = fmax(meta.bbox[2], it->bbox[2]);
        meta.bbox[3] = fmax(meta.bbox[3], it->bbox[3]);
        in[i] = (store_feature_in){
            .fid = it->fid, .name = it->name, .code = it->code,
            .parent_layer = it->parent >= 0 ? c->par.layer : NULL,
            .parent_fid = it->parent >= 0 ? c->par.fid[it->parent] : NULL,
            .ancestors_json = it->ancestors, .props_json = it->props,
            .wkb = it->wkb, .wkb_len = it->wkb_len};
    }
    meta.has_bbox = c->n > 0;
    snprintf(meta.name, sizeof meta.name, "%s", lname);
    snprintf(meta.level, sizeof meta.level, "%s", level_name(c->level));
    snprintf(meta.department, sizeof meta.department, "%s", dept ? dept : "");
    if (dept)
        snprintf(meta.title, sizeof meta.title, "%s grid (%s)", dept, lname);
    meta.fields_json = (char *)fields;
    snprintf(meta.source, sizeof meta.source, "%s", srcname);
    snprintf(meta.source_crs, sizeof meta.source_crs, "%s", c->o->srs ? c->o->srs : "");
    int rc = store_layer_replace(s, &meta, in, c->n, approve, approve_ud, err);
    if (!rc)
        c->rep->version = meta.version;
    free(in);
    return rc;
}

static void ctx_free(ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        item *it = c->items[i];
        free(it->wkb);
        free(it->fid);
        free(it->name);
        free(it->code);
        free(it->parent_code);
        free(it->props);
        free(it->ancestors);
        if (it->pg)
            GEOSPreparedGeom_destroy_r(GH, it->pg);
        if (it->g)
            GEOSGeom_destroy_r(GH, it->g);
        free(it);
    }
    free(c->items);
    parent_set *p = &c->par;
    for (size_t i = 0; i < p->n; i++) {
        free(p->fid[i]);
        free(p->code[i]);
        free(p->ancestors[i]);
        GEOSPreparedGeom_destroy_r(GH, p->pg[i]);
        GEOSGeom_destroy_r(GH, p->g[i]);
    }
    free(p->fid);
    free(p->code);
    free(p->ancestors);
    free(p->g);
    free(p->pg);
    if (p->by_code)
        g_hash_table_destroy(p->by_code);
    if (p->tree)
        GEOSSTRtree_destroy_r(GH, p->tree);
    g_mutex_clear(&c->lock);
    if (c->feed)
        g_async_queue_unref(c->feed);
}

/* The per-feature checker: geometry validity, then the parent, for each
 * feature as the reader hands it over. The context itself ends the feed. */
static gpointer check_feed(gpointer ud)
{
    ctx *c = ud;
    query_hits h = {0};
    for (;;) {
        void *p = g_async_queue_pop(c->feed);
        if (p == c)
            break;
        item *it = p;
        check_geometry(c, it);
        if (c->have_parents)
            assign_parent(c, it, &h);
    }
    free(h.v);
    geos_release();
    return NULL;
}

static void check_siblings(ctx *c)
{
    check_overlaps(c);
    if (c->have_parents && level_tiles_parent(c->level))
        check_gaps(c);
}

static gpointer check_siblings_thread(gpointer ud)
{
    check_siblings(ud);
    geos_release();
    return NULL;
}

typedef struct approval {
    ctx *c;
    GThread *thread;
} approval;

/* Called by the store before it commits: 0 lets the commit go ahead. */
static int approve(void *ud)
{
    approval *a = ud;
    g_thread_join(a->thread);
    a->thread = NULL;
    return a->c->rep->errors ? GC_EINVAL : 0;
}

int layers_import(store *s, const layers_import_opts *o, layers_report *rep, gc_err *err)
{
    memset(rep, 0, sizeof *rep);
    gc_level level = level_parse(o->level);
    if (level == LEVEL_NONE)
        return gc_fail(err, GC_EINVAL, "level",
                       "unknown level '%s': use district, street, community, grid, building, "
                       "unit, dedicated or dept:NAME",
                       o->level ? o->level : "");
    const char *dept = level == LEVEL_DEPT ? o->level + 5 : NULL;
    if (dept && !*dept)
        return gc_fail(err, GC_EINVAL, "level", "dept:NAME needs a department name, e.g. dept:城管");
    char lname[128];
    if (o->layer_name && *o->layer_name)
        snprintf(lname, sizeof lname, "%s", o->layer_name);
    else if (dept)
        snprintf(lname, sizeof lname, "dept-%s", dept);
    else
        snprintf(lname, sizeof lname, "%s", level_name(level));
    for (const char *p = lname; *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == '%' || (unsigned char)*p < 0x20)
            return gc_fail(err, GC_EINVAL, "layer",
                           "layer name '%s' cannot hold '/', '?', '#', '%%' or control characters",
                           lname);
    /* a hierarchy level has one layer, whatever it is called */
    if (level != LEVEL_DEPT) {
        store_layer L;
        if (store_layer_for_level(s, level_name(level), &L, NULL) == 0) {
            free(L.fields_json);
            if (strcmp(L.name, lname))
                return gc_fail(err, GC_ECONFLICT, "layer",
                               "level %s is already held by layer '%s': re-import it under that "
                               "name (or leave out --layer)",
                               level_name(level), L.name);
        }
    }
    snprintf(rep->layer, sizeof rep->layer, "%s", lname);

    ctx c = {.o = o, .rep = rep, .level = level, .file = o->path, .feed = g_async_queue_new()};
    g_mutex_init(&c.lock);
    gint64 t0 = g_get_monotonic_time(), t1;
#define PHASE(name)                                                                            \
    do {                                                                                       \
        t1 = g_get_monotonic_time();                                                           \
        log_debug("layers", "phase=%s ms=%.0f", name, (double)(t1 - t0) / 1000.0);             \
        t0 = t1;                                                                               \
    } while (0)
    /* parents first: the checker assigns them while the file is still read */
    gc_level pl = level_parent(level);
    int rc = 0;
    if (pl != LEVEL_NONE) {
        int have = load_parents(&c, s, pl, err);
        if (have < 0)
            rc = have;
        else if (have == 0)
            say(&c, LAYERS_MSG_WARN,
                "%s: no %s layer in the store yet: features are stored without parents", c.file,
                level_name(pl));
        c.have_parents = have > 0;
    }
    GThread *checker = NULL;
    if (!rc) {
        checker = g_thread_new("layers-check", check_feed, &c);
        rc = read_source(&c, err);
        g_async_queue_push(c.feed, &c);   /* the end of the feed */
        g_thread_join(checker);
        PHASE("read+check");
    }
    rep->features = c.n;
    if (!rc)
        check_duplicates(&c);
    bool write = !rc && !o->dry_run && rep->errors == 0;
    if (!rc && !write) {
        /* report every problem, nothing to write */
        check_siblings(&c);
        PHASE("overlaps+gaps");
    }
    if (write) {
        /* field names, in file order, for queryables */
        json_t *fields = json_array();
        if (c.n) {
            json_t *p = json_loads(c.items[0]->props, 0, NULL);
            const char *key;
            json_t *v;
            json_object_foreach(p, key, v) json_array_append_new(fields, json_string(key));
            json_decref(p);
        }
        char *fj = json_dumps(fields, JSON_COMPACT);
        json_decref(fields);
        progress(&c, "writing", 0, c.n);
        GThread *sib = g_thread_new("layers-siblings", check_siblings_thread, &c);
        approval ap = {&c, sib};
        rc = write_layer(&c, s, lname, dept, fj, o->path, approve, &ap, err);
        if (ap.thread)   /* the write failed before asking */
            g_thread_join(ap.thread);
        progress(&c, "writing", c.n, c.n);
        PHASE("write+overlaps+gaps");
        free(fj);
    }
    if ((!rc || rc == GC_EINVAL) && rep->errors)
        rc = gc_fail(err, GC_EINVAL, "file", "%s: %zu problem%s: import rejected, layer %s left as it was",
                     o->path, rep->errors, rep->errors == 1 ? "" : "s", lname);
    ctx_free(&c);
    geos_release();
    return rc;
}
