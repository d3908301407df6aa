/* store_layers: the layer tables (layers, features with their R*Tree):
 * replacing a layer in one transaction, and reading features by id, bbox and
 * property. */
#include <sqlite3.h>
#include <spatialite/gaiageo.h>
#include <spatialite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/log.h"
#include "store_priv.h"

/* ---- layers ---- */

static void layer_from_row(sqlite3_stmt *st, store_layer *l)
{
    memset(l, 0, sizeof *l);
#define COPY(dst, col)                                                                         \
    snprintf(dst, sizeof dst, "%s",                                                            \
             sqlite3_column_text(st, col) ? (const char *)sqlite3_column_text(st, col) : "")
    COPY(l->name, 0);
    COPY(l->level, 1);
    COPY(l->department, 2);
    COPY(l->title, 3);
    l->version = sqlite3_column_int(st, 4);
    l->count = sqlite3_column_int64(st, 5);
    l->fields_json = strdup(sqlite3_column_text(st, 6) ? (const char *)sqlite3_column_text(st, 6)
                                                       : "[]");
    const char *bbox = (const char *)sqlite3_column_text(st, 7);
    if (bbox && sscanf(bbox, "[%lf,%lf,%lf,%lf]", &l->bbox[0], &l->bbox[1], &l->bbox[2],
                       &l->bbox[3]) == 4)
        l->has_bbox = true;
    COPY(l->source, 8);
    COPY(l->source_crs, 9);
    COPY(l->imported_at, 10);
#undef COPY
}

#define LAYER_COLS                                                                             \
    "name, level, department, title, version, feature_count, fields, bbox, source, "          \
    "source_crs, imported_at"

int store_layers_list(store *s, store_layer **out, size_t *n, gc_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    /* hierarchy order first, then dedicated, then departments by name */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " LAYER_COLS " FROM layers ORDER BY CASE level "
                           "WHEN 'district' THEN 1 WHEN 'street' THEN 2 WHEN 'community' THEN 3 "
                           "WHEN 'grid' THEN 4 WHEN 'building' THEN 5 WHEN 'unit' THEN 6 "
                           "WHEN 'dedicated' THEN 7 ELSE 8 END, name",
                           -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "layers");
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = realloc(*out, cap * sizeof **out);
        }
        layer_from_row(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    return 0;
}

void store_layers_free(store_layer *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i].fields_json);
    free(l);
}

static int layer_get_by(store *s, const char *col, const char *val, store_layer *out,
                        gc_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT " LAYER_COLS " FROM layers WHERE %s = ? LIMIT 1", col);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_db_fail(s, err, "layers");
    sqlite3_bind_text(st, 1, val, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        layer_from_row(st, out);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return gc_fail(err, GC_ENOTFOUND, "layer", "no layer %s = '%s'", col, val);
    return 0;
}

int store_layer_get(store *s, const char *name, store_layer *out, gc_err *err)
{
    return layer_get_by(s, "name", name, out, err);
}

int store_layer_for_level(store *s, const char *level, store_layer *out, gc_err *err)
{
    return layer_get_by(s, "level", level, out, err);
}

int store_layer_replace(store *s, store_layer *meta, const store_feature_in *f, size_t n,
                        store_approve_cb approve, void *ud, gc_err *err)
{
    gint64 t_start = g_get_monotonic_time();
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return GC_EIO;
    sqlite3_stmt *st = NULL, *rt = NULL;
    int version = 1;

    if (sqlite3_prepare_v2(s->db, "SELECT version FROM layers WHERE name = ?", -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0) + 1;
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM features_rtree WHERE uid IN "
                           "(SELECT uid FROM features WHERE layer = ?)",
                           -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->db, "DELETE FROM features WHERE layer = ?", -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    char bbox[160] = "";
    if (meta->has_bbox)
        snprintf(bbox, sizeof bbox, "[%.9g,%.9g,%.9g,%.9g]", meta->bbox[0], meta->bbox[1],
                 meta->bbox[2], meta->bbox[3]);
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT INTO layers(" LAYER_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,"
            "strftime('%Y-%m-%dT%H:%M:%SZ','now')) ON CONFLICT(name) DO UPDATE SET "
            "level=excluded.level, department=excluded.department, title=excluded.title, "
            "version=excluded.version, feature_count=excluded.feature_count, "
            "fields=excluded.fields, bbox=excluded.bbox, source=excluded.source, "
            "source_crs=excluded.source_crs, imported_at=excluded.imported_at",
            -1, &st, NULL))
        goto fail;
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meta->level, -1, SQLITE_STATIC);
    if (meta->department[0])
        sqlite3_bind_text(st, 3, meta->department, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, meta->title[0] ? meta->title : meta->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, version);
    sqlite3_bind_int64(st, 6, (int64_t)n);
    sqlite3_bind_text(st, 7, meta->fields_json ? meta->fields_json : "[]", -1, SQLITE_STATIC);
    if (bbox[0])
        sqlite3_bind_text(st, 8, bbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, meta->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, meta->source_crs, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO features(layer, fid, name, code, level, parent_layer, "
                           "parent_fid, ancestors, props, geom) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) ||
        sqlite3_prepare_v2(s->db, "INSERT INTO features_rtree VALUES (?,?,?,?,?)", -1, &rt,
                           NULL))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        /* SpatiaLite's blob straight from WKB: no SQL function per row */
        gaiaGeomCollPtr g = gaiaFromWkb(f[i].wkb, (int)f[i].wkb_len);
        if (!g || (g->FirstPoint || g->FirstLinestring) || !g->FirstPolygon) {
            if (g)
                gaiaFreeGeomColl(g);
            gc_fail(err, GC_EINVAL, "geometry", "store: feature %s: not a polygon WKB", f[i].fid);
            goto fail_quiet;
        }
        g->Srid = 4326;
        g->DeclaredType = GAIA_MULTIPOLYGON;
        gaiaMbrGeometry(g);
        unsigned char *blob;
        int blob_len;
        gaiaToSpatiaLiteBlobWkb(g, &blob, &blob_len);
        double mbr[4] = {g->MinX, g->MaxX, g->MinY, g->MaxY};
        gaiaFreeGeomColl(g);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, f[i].fid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, f[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, f[i].code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, meta->level, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, f[i].parent_layer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, f[i].parent_fid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, f[i].ancestors_json ? f[i].ancestors_json : "[]", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 9, f[i].props_json ? f[i].props_json : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 10, blob, blob_len, free);
        if (sqlite3_step(st) != SQLITE_DONE) {
            gc_fail(err, GC_EIO, NULL, "store: feature %s: %s", f[i].fid,
                    sqlite3_errmsg(s->db));
            goto fail_quiet;
        }
        sqlite3_reset(rt);
        sqlite3_bind_int64(rt, 1, sqlite3_last_insert_rowid(s->db));
        for (int k = 0; k < 4; k++)
            sqlite3_bind_double(rt, 2 + k, mbr[k]);
        if (sqlite3_step(rt) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(rt);
    st = rt = NULL;

    char json[1024];
    snprintf(json, sizeof json,
             "{\"layer\":\"%s\",\"level\":\"%s\",\"version\":%d,\"count\":%zu,"
             "\"action\":\"replaced\"}",
             meta->name, meta->level, version, n);
    if (store_change_text(s, "layers", meta->name, json, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    int verdict = approve ? approve(ud) : 0;
    if (verdict) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return gc_fail(err, verdict, NULL, "layer %s: not approved; rolled back", meta->name);
    }
    gint64 tc = g_get_monotonic_time();
    if (store_exec(s, "COMMIT", err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return GC_EIO;
    }
    log_debug("store", "layer=%s rows=%zu insert_ms=%.0f commit_ms=%.0f", meta->name, n,
              (double)(tc - t_start) / 1000.0, (double)(g_get_monotonic_time() - tc) / 1000.0);
    meta->version = version;
    return 0;

fail:
    store_db_fail(s, err, "replacing layer");
fail_quiet:
    if (st)
        sqlite3_finalize(st);
    if (rt)
        sqlite3_finalize(rt);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return err ? (err->code ? err->code : GC_EIO) : GC_EIO;
}

/* ---- feature reads ---- */

static const char *builtin_column(const char *key)
{
    if (!strcmp(key, "id"))
        return "fid";
    if (!strcmp(key, "name") || !strcmp(key, "code") || !strcmp(key, "level"))
        return key;
    if (!strcmp(key, "parent"))
        return "parent_fid";
    return NULL;
}

static void where_clause(const store_query *q, GString *sql)
{
    g_string_append(sql, " FROM features WHERE layer = ?");
    if (q->fid)
        g_string_append(sql, " AND fid = ?");
    if (q->has_bbox)
        g_string_append(sql, " AND uid IN (SELECT uid FROM features_rtree WHERE "
                             "minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)"
                             " AND Intersects(geom, BuildMbr(?, ?, ?, ?, 4326))");
    for (size_t i = 0; i < q->nprops; i++) {
        const char *col = builtin_column(q->prop_keys[i]);
        if (col)
            g_string_append_printf(sql, " AND %s = ?", col);
        else
            g_string_append(sql, " AND CAST(json_extract(props, ?) AS TEXT) = ?");
    }
}

static void bind_where(sqlite3_stmt *st, const store_query *q, int *k)
{
    sqlite3_bind_text(st, (*k)++, q->layer, -1, SQLITE_STATIC);
    if (q->fid)
        sqlite3_bind_text(st, (*k)++, q->fid, -1, SQLITE_STATIC);
    if (q->has_bbox) {
        sqlite3_bind_double(st, (*k)++, q->bbox[2]);
        sqlite3_bind_double(st, (*k)++, q->bbox[0]);
        sqlite3_bind_double(st, (*k)++, q->bbox[3]);
        sqlite3_bind_double(st, (*k)++, q->bbox[1]);
        for (int i = 0; i < 4; i++)
            sqlite3_bind_double(st, (*k)++, q->bbox[i]);
    }
    for (size_t i = 0; i < q->nprops; i++) {
        if (!builtin_column(q->prop_keys[i])) {
            char *path = sqlite3_mprintf("$.\"%w\"", q->prop_keys[i]);
            sqlite3_bind_text(st, (*k)++, path, -1, sqlite3_free);
        }
        sqlite3_bind_text(st, (*k)++, q->prop_vals[i], -1, SQLITE_STATIC);
    }
}

int store_features_query(store *s, const store_query *q, int64_t *matched, store_feature_cb cb,
                         void *ud, gc_err *err)
{
    for (size_t i = 0; i < q->nprops; i++)
        if (strchr(q->prop_keys[i], '"'))
            return gc_fail(err, GC_EINVAL, q->prop_keys[i], "property names cannot contain '\"'");
    GString *sql = g_string_new(NULL);
    sqlite3_stmt *st;
    int k = 1;
    if (matched) {
        g_string_assign(sql, "SELECT count(*)");
        where_clause(q, sql);
        if (sqlite3_prepare_v2(s->db, sql->str, -1, &st, NULL) != SQLITE_OK) {
            g_string_free(sql, TRUE);
            return store_db_fail(s, err, "query");
        }
        bind_where(st, q, &k);
        *matched = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
    }
    if (!cb) {
        g_string_free(sql, TRUE);
        return 0;
    }
    g_string_assign(sql, "SELECT uid, layer, level, fid, name, code, parent_layer, parent_fid, "
                         "ancestors, props, ");
    if (q->want_wkb)
        g_string_append(sql, "AsBinary(geom)");
    else
        g_string_append_printf(sql, "AsGeoJSON(geom, %d)", q->precision ? q->precision : 7);
    /* page over uids first, so columns are computed only for the page */
    g_string_append(sql, " FROM features WHERE uid IN (SELECT uid");
    where_clause(q, sql);
    g_string_append(sql, " ORDER BY uid LIMIT ? OFFSET ?) ORDER BY uid");
    if (sqlite3_prepare_v2(s->db, sql->str, -1, &st, NULL) != SQLITE_OK) {
        g_string_free(sql, TRUE);
        return store_db_fail(s, err, "query");
    }
    g_string_free(sql, TRUE);
    k = 1;
    bind_where(st, q, &k);
    sqlite3_bind_int64(st, k++, q->limit > 0 ? q->limit : -1);
    sqlite3_bind_int64(st, k++, q->offset > 0 ? q->offset : 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_feature f = {
            .uid = sqlite3_column_int64(st, 0),
            .layer = (const char *)sqlite3_column_text(st, 1),
            .level = (const char *)sqlite3_column_text(st, 2),
            .fid = (const char *)sqlite3_column_text(st, 3),
            .name = (const char *)sqlite3_column_text(st, 4),
            .code = (const char *)sqlite3_column_text(st, 5),
            .parent_layer = (const char *)sqlite3_column_text(st, 6),
            .parent_fid = (const char *)sqlite3_column_text(st, 7),
            .ancestors_json = (const char *)sqlite3_column_text(st, 8),
            .props_json = (const char *)sqlite3_column_text(st, 9),
        };
        if (q->want_wkb) {
            f.wkb = sqlite3_column_blob(st, 10);
            f.wkb_len = (size_t)sqlite3_column_bytes(st, 10);
        } else {
            f.geojson = (const char *)sqlite3_column_text(st, 10);
        }
        if (cb(ud, &f))
            break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_db_fail(s, err, "query");
    return 0;
}


int store_unit_profile_get(store *s, const char *unit_id, store_unit_profile *out, gc_err *err)
{
    *out = (store_unit_profile){0};
    sqlite3_stmt *st = store_stmt(s, "SELECT level FROM features WHERE fid = ? LIMIT 1");
    if (!st)
        return store_db_fail(s, err, "features");
    sqlite3_bind_text(st, 1, unit_id, -1, SQLITE_STATIC);
    int found = sqlite3_step(st);
    sqlite3_reset(st);
    if (found != SQLITE_ROW)
        return found == SQLITE_DONE ? gc_fail(err, GC_ENOTFOUND, "id", "no unit '%s'", unit_id)
                                    : store_db_fail(s, err, "features");
    /* ancestors is JSON [{"level","id"}…]; ids are unique across levels, so
     * the quoted id is enough to find a feature's place under the unit */
    GString *pat = g_string_new("%\"");
    for (const char *c = unit_id; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\')
            g_string_append_c(pat, '\\');
        g_string_append_c(pat, *c);
    }
    g_string_append(pat, "\"%");
    char *pattern = g_string_free(pat, FALSE);
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT coalesce(json_extract(b.props, '$.use'), ''), count(*), total(u.n), "
            "total(CASE WHEN u.n > 0 THEN u.hh ELSE json_extract(b.props, '$.households') END), "
            "total(CASE WHEN u.n > 0 THEN u.pop ELSE json_extract(b.props, '$.population') END) "
            "FROM features b LEFT JOIN (SELECT parent_fid, count(*) AS n, "
            "  total(json_extract(props, '$.households')) AS hh, "
            "  total(json_extract(props, '$.population')) AS pop "
            "  FROM features WHERE level = 'unit' GROUP BY parent_fid) u ON u.parent_fid = b.fid "
            "WHERE b.level = 'building' AND (b.parent_fid = ?1 OR b.ancestors LIKE ?2 ESCAPE '\\') "
            "GROUP BY 1",
            -1, &st, NULL) != SQLITE_OK) {
        g_free(pattern);
        return store_db_fail(s, err, "features");
    }
    sqlite3_bind_text(st, 1, unit_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pattern, -1, SQLITE_STATIC);
    out->by_use = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *use = (const char *)sqlite3_column_text(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        out->buildings += n;
        out->units += (int64_t)sqlite3_column_double(st, 2);
        out->households += sqlite3_column_double(st, 3);
        out->population += sqlite3_column_double(st, 4);
        json_object_set_new(out->by_use, use && *use ? use : "unknown", json_integer(n));
    }
    sqlite3_finalize(st);
    g_free(pattern);
    if (rc != SQLITE_DONE) {
        json_decref(out->by_use);
        out->by_use = NULL;
        return store_db_fail(s, err, "features");
    }
    return 0;
}
