/* store_basemap: an operator's own base map, an MBTiles file (SQLite), read
 * on its own read-only connection: it is not the gridcc store and nothing is
 * ever written to it.
 *
 * The daemon's loop reads tiles here directly: a tile is one lookup on the
 * tiles table's (zoom_level, tile_column, tile_row) index, a few hundred
 * microseconds at most, cheaper than handing it to a thread. One connection,
 * one prepared statement, used by the loop only. */
#include "gridcc/store.h"

#include <glib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcc/parse.h"

struct store_basemap {
    sqlite3 *db;
    sqlite3_stmt *tile;
    store_basemap_info info;
};

static bool has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    bool yes = false;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE name=? AND type IN "
                           "('table','view')",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        yes = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return yes;
}

/* "a,b,c,d" into n doubles; false when it is not n numbers */
static bool parse_doubles(const char *s, double *out, int n)
{
    gchar **parts = g_strsplit(s, ",", -1);
    bool ok = (int)g_strv_length(parts) == n;
    for (int i = 0; ok && i < n; i++)
        ok = !gc_parse_double(g_strstrip(parts[i]), "number", -1e9, 1e9, &out[i], NULL);
    g_strfreev(parts);
    return ok;
}

static int read_metadata(store_basemap *b, const char *path, gc_err *err)
{
    store_basemap_info *in = &b->info;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(b->db, "SELECT name, value FROM metadata", -1, &st, NULL) != SQLITE_OK)
        return gc_fail(err, GC_EINVAL, "basemap", "%s: not an MBTiles file: metadata: %s", path,
                       sqlite3_errmsg(b->db));
    char minz[32] = "", maxz[32] = "", fmt[32] = "";
    char *json_text = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v)
            continue;
        if (!strcmp(k, "name"))
            snprintf(in->name, sizeof in->name, "%s", v);
        else if (!strcmp(k, "format"))
            snprintf(fmt, sizeof fmt, "%s", v);
        else if (!strcmp(k, "attribution"))
            snprintf(in->attribution, sizeof in->attribution, "%s", v);
        else if (!strcmp(k, "minzoom"))
            snprintf(minz, sizeof minz, "%s", v);
        else if (!strcmp(k, "maxzoom"))
            snprintf(maxz, sizeof maxz, "%s", v);
        else if (!strcmp(k, "bounds"))
            in->has_bounds = parse_doubles(v, in->bounds, 4);
        else if (!strcmp(k, "center"))
            in->has_center = parse_doubles(v, in->center, 3);
        else if (!strcmp(k, "json")) {
            free(json_text);
            json_text = strdup(v);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(json_text);
        return gc_fail(err, GC_EIO, "basemap", "%s: reading metadata: %s", path,
                       sqlite3_errmsg(b->db));
    }
    if (!strcmp(fmt, "jpeg"))
        snprintf(fmt, sizeof fmt, "jpg");
    if (strcmp(fmt, "pbf") && strcmp(fmt, "png") && strcmp(fmt, "jpg") && strcmp(fmt, "webp")) {
        free(json_text);
        return gc_fail(err, GC_EINVAL, "basemap",
                       "%s: metadata format is '%s': a base map's tiles must be pbf, png, jpg or "
                       "webp",
                       path, fmt);
    }
    g_strlcpy(in->format, fmt, sizeof in->format); /* one of the four above: it fits */
    if (!strcmp(fmt, "pbf")) {
        json_error_t je;
        json_t *j = json_text ? json_loads(json_text, 0, &je) : NULL;
        json_t *vl = json_object_get(j, "vector_layers");
        if (!json_is_array(vl)) {
            json_decref(j);
            free(json_text);
            return gc_fail(err, GC_EINVAL, "basemap",
                           "%s: a vector (pbf) MBTiles needs metadata 'json' with vector_layers",
                           path);
        }
        in->vector_layers = json_incref(vl);
        json_decref(j);
    }
    free(json_text);
    /* zooms the metadata leaves out: the tiles say */
    int64_t zl = -1, zh = -1;
    if (sqlite3_prepare_v2(b->db, "SELECT min(zoom_level), max(zoom_level) FROM tiles", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        zl = sqlite3_column_int64(st, 0);
        zh = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    int64_t v;
    in->minzoom = minz[0] && !gc_parse_int(minz, "minzoom", 0, 30, &v, NULL) ? (int)v
                  : zl >= 0                                                  ? (int)zl
                                                                             : 0;
    in->maxzoom = maxz[0] && !gc_parse_int(maxz, "maxzoom", 0, 30, &v, NULL) ? (int)v
                  : zh >= 0                                                  ? (int)zh
                                                                             : 14;
    if (!in->name[0])
        snprintf(in->name, sizeof in->name, "basemap");
    return 0;
}

int store_basemap_open(const char *path, store_basemap **out, gc_err *err)
{
    *out = NULL;
    store_basemap *b = calloc(1, sizeof *b);
    if (!b)
        return gc_fail(err, GC_EIO, "basemap", "out of memory");
    if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        gc_fail(err, GC_EINVAL, "basemap", "%s: cannot open: %s", path,
                b->db ? sqlite3_errmsg(b->db) : "out of memory");
        store_basemap_close(b);
        return GC_EINVAL;
    }
    /* a file that is not SQLite opens fine and fails at its first read */
    const char *missing = !has_table(b->db, "tiles")      ? "tiles"
                          : !has_table(b->db, "metadata") ? "metadata"
                                                          : NULL;
    if (missing) {
        const char *why = sqlite3_errcode(b->db) == SQLITE_NOTADB ? ": not an SQLite file" : "";
        gc_fail(err, GC_EINVAL, "basemap", "%s: not an MBTiles file: no '%s' table%s", path,
                missing, why);
        store_basemap_close(b);
        return GC_EINVAL;
    }
    int rc = read_metadata(b, path, err);
    if (!rc && sqlite3_prepare_v2(b->db,
                                  "SELECT tile_data FROM tiles WHERE zoom_level=? AND "
                                  "tile_column=? AND tile_row=?",
                                  -1, &b->tile, NULL) != SQLITE_OK)
        rc = gc_fail(err, GC_EINVAL, "basemap", "%s: not an MBTiles file: tiles: %s", path,
                     sqlite3_errmsg(b->db));
    if (rc) {
        store_basemap_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

const store_basemap_info *store_basemap_get_info(const store_basemap *b)
{
    return &b->info;
}

int store_basemap_tile(store_basemap *b, int z, int x, int y, GBytes **out, gc_err *err)
{
    *out = NULL;
    if (z < 0 || z > 30 || x < 0 || y < 0 || x >= (1 << z) || y >= (1 << z))
        return gc_fail(err, GC_EINVAL, "z", "no tile %d/%d/%d", z, x, y);
    /* MBTiles rows count from the south (TMS); the web's from the north */
    int row = (1 << z) - 1 - y;
    sqlite3_reset(b->tile);
    sqlite3_bind_int(b->tile, 1, z);
    sqlite3_bind_int(b->tile, 2, x);
    sqlite3_bind_int(b->tile, 3, row);
    int rc = sqlite3_step(b->tile);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(b->tile, 0);
        int n = sqlite3_column_bytes(b->tile, 0);
        *out = g_bytes_new(p, (gsize)n);
        sqlite3_reset(b->tile);
        return 0;
    }
    sqlite3_reset(b->tile);
    if (rc == SQLITE_DONE)
        return gc_fail(err, GC_ENOTFOUND, "tile", "no tile %d/%d/%d in the base map", z, x, y);
    return gc_fail(err, GC_EIO, "basemap", "reading tile %d/%d/%d: %s", z, x, y,
                   sqlite3_errmsg(b->db));
}

void store_basemap_close(store_basemap *b)
{
    if (!b)
        return;
    sqlite3_finalize(b->tile);
    sqlite3_close(b->db);
    json_decref(b->info.vector_layers);
    free(b);
}
