/* layers_read: opens any OGR source (GeoJSON, Shapefile, GeoPackage, KML,
 * CSV with WKT or lon/lat, also gzipped), picks the layer and the id, name,
 * code and parent fields, recodes attributes to UTF-8, reprojects to
 * EPSG:4326 (PROJ, or our GCJ-02/BD-09 code) and hands each feature to the
 * checker thread as soon as it is read. */
#include "layers_priv.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <jansson.h>
#include <math.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gridcc/crs.h"

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

static const char *const ID_FIELDS[] = {"id",   "ID",   "Id",   "fid",  "FID", "code",
                                        "CODE", "Code", "编码", "编号", NULL};
static const char *const NAME_FIELDS[] = {"name", "Name", "NAME", "名称", "mc", "MC", NULL};
static const char *const CODE_FIELDS[] = {"code", "CODE", "Code", "编码", "编号", NULL};

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

int layers_read_source(ctx *c, gc_err *err)
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
    bool is_shp =
        has_suffix(o->path, ".shp") || has_suffix(o->path, ".dbf") || has_suffix(o->path, ".zip");
    if (is_csv) {
        oo = CSLSetNameValue(oo, "GEOM_POSSIBLE_NAMES",
                             "wkt,WKT,geom,the_geom,geometry,Geometry,WKT_GEOM");
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
        if (t == wkbPolygon || t == wkbMultiPolygon || t == wkbUnknown || t == wkbCurvePolygon ||
            t == wkbMultiSurface || t == wkbGeometryCollection)
            lyr = l;
    }
    if (!lyr && GDALDatasetGetLayerCount(ds) > 0)
        lyr = GDALDatasetGetLayer(ds, 0);
    if (!lyr) {
        GDALClose(ds);
        return gc_fail(err, GC_EINVAL, "file", "%s: contains no layer", o->path);
    }
    if (GDALDatasetGetLayerCount(ds) > 1 && !o->source_layer)
        layers_say(c, LAYERS_MSG_INFO,
                   "%s: %d layers; importing '%s' (--source-layer picks another)", c->file,
                   GDALDatasetGetLayerCount(ds), OGR_L_GetName(lyr));

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
                           o->path, is_shp ? " (no .prj beside the Shapefile)" : "", env.MinX,
                           env.MaxX, env.MinY, env.MaxY);
        }
        layers_say(c, LAYERS_MSG_WARN,
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
        rc = gc_fail(err, GC_EINVAL, "parent-field", "%s: no field '%s'", o->path, o->parent_field);
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
                layers_problem(c, it, false, "no value in id field '%s'", o->id_field);
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
            layers_problem(c, it, false,
                           "attributes are not valid UTF-8: pass --encoding (GBK, Big5 …) or add a "
                           ".cpg file");

        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (!g) {
            layers_problem(c, it, false, "no geometry%s",
                           gdal_msg[0] ? gdal_msg
                           : is_csv    ? " (no WKT or lon/lat column, or it does not parse)"
                                       : "");
        } else if (OGR_G_IsEmpty(g)) {
            layers_problem(c, it, false, "empty geometry");
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
                layers_problem(c, it, false, "wrong geometry type %s: a %s layer needs polygons",
                               OGRGeometryTypeToName(t), o->level);
            } else if (!all_finite(gg)) {
                layers_problem(c, it, false, "coordinate is NaN or infinite");
            } else if ((ct && OGR_G_Transform(gg, ct) != OGRERR_NONE) ||
                       (chinese && apply_crs(gg, chinese))) {
                layers_problem(c, it, false, "cannot transform to EPSG:4326 from %s",
                               o->srs ? o->srs : "the file's CRS");
            } else {
                OGREnvelope e;
                OGR_G_GetEnvelope(gg, &e);
                if (!all_finite(gg) || e.MinX < -180 || e.MaxX > 180 || e.MinY < -90 ||
                    e.MaxY > 90) {
                    layers_problem(c, it, false,
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
                        layers_problem(c, it, false, "geometry GEOS cannot read");
                }
            }
            OGR_G_DestroyGeometry(gg);
        }
        OGR_F_Destroy(f);
        g_async_queue_push(c->feed, it);
        if (k % 2000 == 0)
            layers_progress(c, "reading", (size_t)k, total > 0 ? (size_t)total : 0);
    }
    CPLPopErrorHandler();
    if (!rc && CPLGetLastErrorType() >= CE_Failure && CPLGetLastErrorMsg()[0])
        rc = gc_fail(err, GC_EINVAL, "file", "%s: read failed after feature #%ld: %s", o->path, k,
                     CPLGetLastErrorMsg());
    if (!rc && k == 0)
        rc = gc_fail(err, GC_EINVAL, "file", "%s: no features", o->path);
    layers_progress(c, "reading", (size_t)k, (size_t)k);
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
