/* basemap_api: the operator's own base map (serve --basemap FILE.mbtiles),
 * drawn by the dashboard under the grid.
 *
 *   GET /basemap.json               TileJSON 3.0.0 from the file's metadata
 *   GET /basemap/{z}/{x}/{y}.{ext}  a tile as stored (ext: the file's format)
 *
 * Who may read it: whoever may read /tiles. Without --basemap both answer
 * 404 naming basemap. A tile the file lacks is a 204: MapLibre 6 draws an
 * empty tile for it, raster or vector, and logs nothing. Tiles are read on
 * the loop: one indexed lookup (store_basemap.c says why that is fine). */
#include "api.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"

static const char *content_type(const char *format)
{
    return !strcmp(format, "pbf")   ? "application/x-protobuf"
           : !strcmp(format, "png") ? "image/png"
           : !strcmp(format, "jpg") ? "image/jpeg"
                                    : "image/webp";
}

static bool none_or_reply(http_req *r, store_basemap *b)
{
    if (b)
        return false;
    http_reply_error(r, 404, "not_found", "basemap",
                     "no base map configured: serve --basemap FILE");
    return true;
}

static void h_tilejson(http_req *r, void *ud)
{
    store_basemap *b = ud;
    if (none_or_reply(r, b))
        return;
    const store_basemap_info *in = store_basemap_get_info(b);
    char *tmpl = g_strdup_printf("http://%s/basemap/{z}/{x}/{y}.%s",
                                 r->host[0] ? r->host : "127.0.0.1", in->format);
    json_t *tj = json_pack("{s:s,s:s,s:s,s:s,s:[s],s:i,s:i}", "tilejson", "3.0.0", "name", in->name,
                           "scheme", "xyz", "format", in->format, "tiles", tmpl, "minzoom",
                           in->minzoom, "maxzoom", in->maxzoom);
    g_free(tmpl);
    if (in->has_bounds)
        json_object_set_new(
            tj, "bounds",
            json_pack("[ffff]", in->bounds[0], in->bounds[1], in->bounds[2], in->bounds[3]));
    if (in->has_center)
        json_object_set_new(tj, "center",
                            json_pack("[ffi]", in->center[0], in->center[1], (int)in->center[2]));
    if (in->attribution[0])
        json_object_set_new(tj, "attribution", json_string(in->attribution));
    if (in->vector_layers)
        json_object_set(tj, "vector_layers", in->vector_layers);
    http_reply_json(r, 200, tj);
}

/* The gzipped tile inflated, or NULL with err set. */
static GBytes *gunzip(GBytes *gz, GError **err)
{
    GZlibDecompressor *dec = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    GInputStream *mem = g_memory_input_stream_new_from_bytes(gz);
    GInputStream *in = g_converter_input_stream_new(mem, G_CONVERTER(dec));
    GOutputStream *out = g_memory_output_stream_new_resizable();
    GBytes *res = NULL;
    if (g_output_stream_splice(
            out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
            NULL, err) >= 0)
        res = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
    g_object_unref(out);
    g_object_unref(in);
    g_object_unref(mem);
    g_object_unref(dec);
    return res;
}

static void tile_headers(http_req *r, const char *etag)
{
    http_add_header(r, "ETag", etag);
    /* as /tiles: a minute in the browser, then a question with the ETag;
     * private: the map is the operator's, not for shared caches */
    http_add_header(r, "Cache-Control", "private, max-age=60");
    http_add_header(r, "Vary", "Accept-Encoding, Authorization");
}

static bool seg_int(http_req *r, const char *s, const char *field, int64_t hi, int64_t *out)
{
    gc_err err = {0};
    if (gc_parse_int(s, field, 0, hi, out, &err)) {
        http_reply_error(r, 400, "invalid", field, "%s must be a whole number from 0 to %lld: %s",
                         field, (long long)hi, s);
        return false;
    }
    return true;
}

static void h_tile(http_req *r, void *ud)
{
    store_basemap *b = ud;
    if (none_or_reply(r, b))
        return;
    const store_basemap_info *in = store_basemap_get_info(b);
    const char *rest = r->path + strlen("/basemap/");
    gchar **seg = g_strsplit(rest, "/", -1);
    char ext[16];
    snprintf(ext, sizeof ext, ".%s", in->format);
    char *last = g_strv_length(seg) == 3 ? seg[2] : NULL;
    if (!last || !g_str_has_suffix(last, ext)) {
        http_reply_error(r, 404, "not_found", "path",
                         "no resource at %s: base map tiles are /basemap/{z}/{x}/{y}%s", r->path,
                         ext);
        g_strfreev(seg);
        return;
    }
    last[strlen(last) - strlen(ext)] = 0;
    int64_t z, x, y;
    bool ok = seg_int(r, seg[0], "z", 30, &z);
    ok = ok && seg_int(r, seg[1], "x", ((int64_t)1 << z) - 1, &x);
    ok = ok && seg_int(r, seg[2], "y", ((int64_t)1 << z) - 1, &y);
    g_strfreev(seg);
    if (!ok)
        return;
    GBytes *t;
    gc_err err = {0};
    int rc = store_basemap_tile(b, (int)z, (int)x, (int)y, &t, &err);
    if (rc == GC_ENOTFOUND) {
        http_add_header(r, "Cache-Control", "private, max-age=60");
        http_reply(r, 204, content_type(in->format), NULL, 0);
        return;
    }
    if (rc) {
        http_reply_err(r, &err);
        return;
    }
    gsize len;
    const guint8 *d = g_bytes_get_data(t, &len);
    /* the stored bytes name the tile: a file replaced under the same name
     * and re-served sends new ETags only where tiles changed */
    char *sum = g_compute_checksum_for_bytes(G_CHECKSUM_SHA1, t);
    char etag[64];
    snprintf(etag, sizeof etag, "W/\"%.20s\"", sum);
    g_free(sum);
    if (r->if_none_match[0] &&
        (strstr(r->if_none_match, etag + 2) || !strcmp(g_strstrip(r->if_none_match), "*"))) {
        tile_headers(r, etag);
        http_reply(r, 304, content_type(in->format), NULL, 0);
        g_bytes_unref(t);
        return;
    }
    bool gz = len >= 2 && d[0] == 0x1f && d[1] == 0x8b;
    if (gz && http_accepts_gzip(r)) {
        tile_headers(r, etag);
        http_add_header(r, "Content-Encoding", "gzip");
        http_reply(r, 200, content_type(in->format), (const char *)d, len);
    } else if (gz) {
        GError *ge = NULL;
        GBytes *plain = gunzip(t, &ge);
        if (!plain) {
            log_warn("basemap", "tile %d/%d/%d is not valid gzip: %s", (int)z, (int)x, (int)y,
                     ge->message);
            http_reply_error(r, 500, "internal", "basemap",
                             "base map tile %d/%d/%d is not valid gzip: %s", (int)z, (int)x, (int)y,
                             ge->message);
            g_error_free(ge);
        } else {
            gsize pl;
            const char *pd = g_bytes_get_data(plain, &pl);
            tile_headers(r, etag);
            http_reply(r, 200, content_type(in->format), pd, pl);
            g_bytes_unref(plain);
        }
    } else {
        tile_headers(r, etag);
        http_reply(r, 200, content_type(in->format), (const char *)d, len);
    }
    g_bytes_unref(t);
}

void basemap_api_register(http_server *s, api_env *e, store_basemap *b)
{
    unsigned read = e->public_read ? ROLE_ANY | HTTP_OPTIONAL : ROLE_ANY; /* as tiles_api.c */
    http_route(s, "GET", "/basemap.json", read, 0, h_tilejson, b);
    http_route(s, "GET", "/basemap/*", read, 0, h_tile, b);
}
