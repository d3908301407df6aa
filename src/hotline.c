/* hotline: 12345 work orders (CSV through OGR's CSV driver, or one order as
 * JSON) into incidents. Every row ends as exactly one of: created, existing
 * (imported before), or rejected with its line and reason; created rows are
 * placed by coordinates, by address, or kept unplaced with the reason. */
#define _XOPEN_SOURCE 700 /* strptime */
#define _DEFAULT_SOURCE
#include "gridcc/hotline.h"

#include <gdal.h>
#include <glib.h>
#include <ogr_api.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"

struct hotline_map {
    char *id, *time, *content, *address, *lon, *lat, *category, *status, *closed_time, *crs;
    char *default_category;
    json_t *categories, *statuses;
};

static hotline_map *map_new(void)
{
    hotline_map *m = g_new0(hotline_map, 1);
    m->categories = json_object();
    m->statuses = json_object();
    return m;
}

hotline_map *hotline_map_default(void)
{
    hotline_map *m = map_new();
    m->id = g_strdup("工单编号");
    m->time = g_strdup("受理时间");
    m->content = g_strdup("诉求内容");
    m->address = g_strdup("地址");
    m->lon = g_strdup("经度");
    m->lat = g_strdup("纬度");
    m->category = g_strdup("诉求类别");
    m->status = g_strdup("状态");
    m->closed_time = g_strdup("办结时间");
    m->default_category = g_strdup("E99");
    /* the usual 12345 classes onto GB/T 30428 codes */
    static const char *cats[][2] = {
        {"噪音扰民", "E05.07"}, {"噪声扰民", "E05.07"}, {"垃圾清运", "E01.02"},
        {"暴露垃圾", "E01.02"}, {"道路不洁", "E01.04"}, {"违章建筑", "E01.01"},
        {"私搭乱建", "E01.01"}, {"小广告", "E02.01"},   {"占道经营", "E05.02"},
        {"无照经营", "E05.01"}, {"乱停车", "E05.04"},   {"机动车乱停放", "E05.04"},
        {"共享单车", "E05.05"}, {"施工扰民", "E03.01"}, {"扬尘", "E03.02"},
        {"井盖", "C01.01"},     {"路灯", "C01.05"},     {"积水", "E04.05"},
        {"下水道", "E04.04"},   {"露天烧烤", "E05.06"}};
    for (size_t i = 0; i < G_N_ELEMENTS(cats); i++)
        json_object_set_new(m->categories, cats[i][0], json_string(cats[i][1]));
    json_object_set_new(m->statuses, "已办结", json_string("closed"));
    json_object_set_new(m->statuses, "办结", json_string("closed"));
    return m;
}

void hotline_map_free(hotline_map *m)
{
    if (!m)
        return;
    char **f[] = {&m->id,       &m->time,        &m->content, &m->address, &m->lon, &m->lat,
                  &m->category, &m->status,      &m->closed_time, &m->crs, &m->default_category};
    for (size_t i = 0; i < G_N_ELEMENTS(f); i++)
        g_free(*f[i]);
    json_decref(m->categories);
    json_decref(m->statuses);
    g_free(m);
}

hotline_map *hotline_map_load(const char *path, gc_err *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        gc_fail(err, GC_EINVAL, "map", "%s: line %d: %s", path, je.line, je.text);
        return NULL;
    }
    hotline_map *m = map_new();
    struct {
        const char *key;
        char **dst;
    } keys[] = {{"id", &m->id},           {"time", &m->time},       {"content", &m->content},
                {"address", &m->address}, {"lon", &m->lon},         {"lat", &m->lat},
                {"category", &m->category}, {"status", &m->status}, {"closed_time", &m->closed_time},
                {"crs", &m->crs},         {"default_category", &m->default_category}};
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *v = json_string_value(json_object_get(j, keys[i].key));
        if (v)
            *keys[i].dst = g_strdup(v);
    }
    if (json_is_object(json_object_get(j, "categories")))
        json_object_update(m->categories, json_object_get(j, "categories"));
    if (json_is_object(json_object_get(j, "statuses")))
        json_object_update(m->statuses, json_object_get(j, "statuses"));
    json_decref(j);
    if (!m->id || !m->content) {
        hotline_map_free(m);
        gc_fail(err, GC_EINVAL, "map", "%s: the map needs at least \"id\" and \"content\"", path);
        return NULL;
    }
    if (!m->default_category)
        m->default_category = g_strdup("E99");
    return m;
}

void hotline_report_clear(hotline_report *rep)
{
    json_decref(rep->problems);
    memset(rep, 0, sizeof *rep);
}
/* A cell's number; exports pad cells with blanks. */
static bool parse_coord(const char *s, double *v)
{
    if (!s)
        return false;
    char *t = g_strstrip(g_strdup(s));
    bool ok = !gc_parse_double(t, "coordinate", -INFINITY, INFINITY, v, NULL);
    g_free(t);
    return ok;
}

/* A reason cut to fit ends on a whole character: jansson drops a string
 * that is not UTF-8, and the row's flag or problem with it. */
static void utf8_fit(char *s)
{
    const char *end;
    if (!g_utf8_validate(s, -1, &end))
        *(char *)end = 0;
}

json_t *hotline_row_report(const hotline_map *m, const hotline_row *o, const address_index *ax,
                           char *reason, size_t rlen, int *placed)
{
    *placed = 0;
    reason[0] = 0;
    /* a GBK export read as UTF-8 would store mojibake (and jansson refuses
     * it): say so instead */
    const struct {
        const char *v, *col;
    } text[] = {{o->id, m->id},
                {o->time, m->time},
                {o->content, m->content},
                {o->address, m->address},
                {o->lon, m->lon},
                {o->lat, m->lat},
                {o->category, m->category},
                {o->status, m->status},
                {o->closed_time, m->closed_time}};
    for (size_t i = 0; i < G_N_ELEMENTS(text); i++)
        if (text[i].v && !g_utf8_validate(text[i].v, -1, NULL)) {
            snprintf(reason, rlen,
                     "column %s is not UTF-8 (a GBK export? convert it with iconv -f GB18030)",
                     text[i].col ? text[i].col : "?");
            utf8_fit(reason);
            return NULL;
        }
    if (!o->id || !*o->id) {
        snprintf(reason, rlen, "no work-order number (column %s)", m->id);
        utf8_fit(reason);
        return NULL;
    }
    if (!o->content || !*o->content) {
        snprintf(reason, rlen, "no content (column %s)", m->content);
        utf8_fit(reason);
        return NULL;
    }
    const char *code = NULL;
    if (o->category && *o->category) {
        code = json_string_value(json_object_get(m->categories, o->category));
        if (!code) {   /* a class text containing a known key: "噪音扰民-夜间施工" */
            const char *k;
            json_t *v;
            json_object_foreach(m->categories, k, v) if (!code && strstr(o->category, k)) code =
                json_string_value(v);
        }
    }
    json_t *in = json_pack("{s:s,s:s,s:s,s:s}", "category", code ? code : m->default_category,
                           "description", o->content, "source", "hotline", "external_id", o->id);
    json_t *props = json_object();
    if (o->category && *o->category)
        json_object_set_new(props, "hotline_category", json_string(o->category));
    json_object_set_new(in, "props", props);
    json_t *flags = json_array();
    int64_t t;
    if (o->time && *o->time) {
        if (gc_time_parse(o->time, &t))
            json_object_set_new(in, "reported_at", json_integer(t));
        else
            json_array_append_new(flags, json_pack("{s:s,s:s}", "flag", "bad_time", "value",
                                                   o->time));
    }
    if (o->status && *o->status) {
        const char *st = json_string_value(json_object_get(m->statuses, o->status));
        if (st && !strcmp(st, "closed")) {
            int64_t ct;
            if (!(o->closed_time && gc_time_parse(o->closed_time, &ct)))
                ct = json_integer_value(json_object_get(in, "reported_at"));
            if (ct)
                json_object_set_new(in, "closed_at", json_integer(ct));
        }
    }
    double lon, lat;
    bool has_lon = o->lon && *o->lon, has_lat = o->lat && *o->lat;
    if (has_lon || has_lat) {
        if (parse_coord(o->lon, &lon) && parse_coord(o->lat, &lat) && lon >= -180 && lon <= 180 &&
            lat >= -90 && lat <= 90 && !(lon == 0 && lat == 0)) {
            json_object_set_new(in, "lon", json_real(lon));
            json_object_set_new(in, "lat", json_real(lat));
            if (m->crs)
                json_object_set_new(in, "crs", json_string(m->crs));
            *placed = 1;
        } else {
            json_array_append_new(flags, json_pack("{s:s,s:s,s:s}", "flag", "bad_coordinates",
                                                   "lon", o->lon ? o->lon : "", "lat",
                                                   o->lat ? o->lat : ""));
        }
    }
    if (o->address && *o->address)
        json_object_set_new(in, "address", json_string(o->address));
    if (!*placed) {
        address_match am;
        if (o->address && *o->address) {
            address_lookup(ax, o->address, &am);
        } else {
            memset(&am, 0, sizeof am);
            if (has_lon || has_lat)
                snprintf(am.reason, sizeof am.reason,
                         "the coordinates are not a position (lon '%s', lat '%s') and there is "
                         "no address",
                         o->lon ? o->lon : "", o->lat ? o->lat : "");
            else
                snprintf(am.reason, sizeof am.reason, "neither coordinates nor an address");
            utf8_fit(am.reason);
        }
        json_object_set_new(in, "flags", flags);
        if (incident_place_by_address(in, &am))
            *placed = 2;
        else
            snprintf(reason, rlen, "%s", am.reason);
        utf8_fit(reason);
        return in;
    }
    json_object_set_new(in, "flags", flags);
    return in;
}

/* Reads a field by its column name; NULL when the map names no such column. */
static const char *field(OGRFeatureH f, int idx)
{
    return idx >= 0 && OGR_F_IsFieldSetAndNotNull(f, idx) ? OGR_F_GetFieldAsString(f, idx) : NULL;
}

int hotline_import(store *s, const gc_index *ix, const address_index *ax, const char *path,
                   const hotline_map *m, hotline_progress progress, void *ud,
                   hotline_report *rep, gc_err *err)
{
    memset(rep, 0, sizeof *rep);
    rep->problems = json_array();
    GDALAllRegister();
    const char *drivers[] = {"CSV", NULL};
    const char *oo[] = {"AUTODETECT_TYPE=NO", "EMPTY_STRING_AS_NULL=YES", NULL};
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, oo, NULL);
    if (!ds)
        return gc_fail(err, GC_EINVAL, "file", "%s: cannot read as CSV: %s", path,
                       CPLGetLastErrorMsg());
    OGRLayerH L = GDALDatasetGetLayer(ds, 0);
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(L);
    const char *names[] = {m->id,       m->time,   m->content, m->address, m->lon,
                           m->lat,      m->category, m->status, m->closed_time};
    int idx[G_N_ELEMENTS(names)];
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        idx[i] = names[i] ? OGR_FD_GetFieldIndex(d, names[i]) : -1;
    if (idx[0] < 0 || idx[2] < 0) {
        GDALClose(ds);
        return gc_fail(err, GC_EINVAL, "file",
                       "%s: no column '%s' (work-order number) or '%s' (content); the header "
                       "has other names: give a --map",
                       path, m->id, m->content);
    }
    inc_actor who = {0, "hotline", ROLE_OPERATOR, NULL};
    int64_t now = (int64_t)time(NULL);
    if (store_begin(s, err)) {
        GDALClose(ds);
        return GC_EIO;
    }
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(L))) {
        rep->rows++;
        /* the CSV driver numbers data rows from 1; the header is line 1 */
        long line = (long)OGR_F_GetFID(f) + 1;
        hotline_row o = {field(f, idx[0]), field(f, idx[1]), field(f, idx[2]),
                         field(f, idx[3]), field(f, idx[4]), field(f, idx[5]),
                         field(f, idx[6]), field(f, idx[7]), field(f, idx[8])};
        char reason[512] = "";
        int placed;
        json_t *in = hotline_row_report(m, &o, ax, reason, sizeof reason, &placed);
        if (!in) {
            rep->rejected++;
            /* an order number that is not UTF-8 is named by its printable bytes */
            char *order = o.id ? g_utf8_make_valid(o.id, -1) : g_strdup("");
            json_array_append_new(rep->problems,
                                  json_pack("{s:I,s:s,s:s,s:s}", "line", (json_int_t)line, "order",
                                            order, "kind", "rejected", "reason", reason));
            g_free(order);
            OGR_F_Destroy(f);
            continue;
        }
        bool existing;
        gc_err e = {0};
        int r = incident_report(s, ix, &who, in, NULL, now, NULL, &existing, &e);
        json_decref(in);
        if (r == GC_EINVAL) {
            rep->rejected++;
            json_array_append_new(rep->problems,
                                  json_pack("{s:I,s:s,s:s,s:s}", "line", (json_int_t)line, "order",
                                            o.id, "kind", "rejected", "reason", e.msg));
        } else if (r) {
            rc = r;
            *err = e;
        } else if (existing) {
            rep->existing++;
        } else {
            rep->created++;
            if (placed == 1)
                rep->placed_by_coords++;
            else if (placed == 2)
                rep->placed_by_address++;
            else {
                rep->unplaced++;
                json_array_append_new(rep->problems,
                                      json_pack("{s:I,s:s,s:s,s:s}", "line", (json_int_t)line,
                                                "order", o.id, "kind", "unplaced", "reason",
                                                reason));
            }
        }
        OGR_F_Destroy(f);
        if (progress && rep->rows % 5000 == 0)
            progress(ud, rep->rows);
    }
    GDALClose(ds);
    if (!rc)
        rc = store_commit(s, err);
    if (rc) {
        store_rollback(s);
        return rc;
    }
    if (progress)
        progress(ud, rep->rows);
    log_info("hotline", "imported file=%s rows=%d created=%d existing=%d by_address=%d "
                        "unplaced=%d rejected=%d",
             path, rep->rows, rep->created, rep->existing, rep->placed_by_address, rep->unplaced,
             rep->rejected);
    return 0;
}

int hotline_order(store *s, const gc_index *ix, const address_index *ax, const inc_actor *who,
                  json_t *order, json_t **out, bool *existing, gc_err *err)
{
    char num[4][64];
    const char *keys[] = {"lon", "lat", "time"};
    const char *vals[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(order, keys[i]);
        if (json_is_number(v)) {
            g_ascii_dtostr(num[i], sizeof num[i], json_number_value(v));
            vals[i] = num[i];
        } else if (json_is_string(v)) {
            vals[i] = json_string_value(v);
        } else if (v && !json_is_null(v)) {
            return gc_fail(err, GC_EINVAL, keys[i], "%s must be a number or a string", keys[i]);
        }
    }
    hotline_row o = {json_string_value(json_object_get(order, "order_no")),
                     vals[2],
                     json_string_value(json_object_get(order, "content")),
                     json_string_value(json_object_get(order, "address")),
                     vals[0],
                     vals[1],
                     json_string_value(json_object_get(order, "category")),
                     NULL,
                     NULL};
    hotline_map *m = hotline_map_default();
    g_free(m->crs);
    m->crs = g_strdup(json_string_value(json_object_get(order, "crs")));
    char reason[512] = "";
    int placed;
    json_t *in = hotline_row_report(m, &o, ax, reason, sizeof reason, &placed);
    hotline_map_free(m);
    if (!in)
        return gc_fail(err, GC_EINVAL, !o.id || !*o.id ? "order_no" : "content", "%s", reason);
    json_t *bad = NULL;
    size_t i;
    json_t *fl;
    json_array_foreach(json_object_get(in, "flags"), i, fl) if (!g_strcmp0(
        json_string_value(json_object_get(fl, "flag")), "bad_coordinates")) bad = fl;
    if (bad && placed != 2) {
        json_decref(in);
        return gc_fail(err, GC_EINVAL, "lon", "lon/lat are not coordinates (%s, %s)",
                       o.lon ? o.lon : "", o.lat ? o.lat : "");
    }
    int rc = incident_report(s, ix, who, in, NULL, (int64_t)time(NULL), out, existing, err);
    json_decref(in);
    return rc;
}
