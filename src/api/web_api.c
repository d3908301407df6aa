/* web_api: static files of the dashboard. A path maps to a file under the
 * root only through plain names (letters, digits, '-', '_', '.', and no name
 * starting with '.'), so no request reaches outside it, a dotfile or a
 * symlink's target elsewhere. Paths that name no file and have no
 * extension are the page's own views (/replay, /login): index.html. */
#include "web_api.h"

#include <string.h>
#include <sys/stat.h>

#define WEB_FILE_MAX ((gsize)32 << 20)

const char *const web_csp =
    "default-src 'none'; script-src 'self'; worker-src 'self'; child-src 'self'; "
    "style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
    "media-src 'self' blob:; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

typedef struct web_root {
    const char *dir;    /* resolved, no trailing slash; NULL when not built */
    char buf[4096];
    const char *what;   /* for the 404 */
    const char *prefix; /* the URL path it serves */
} web_root;

typedef struct web_api {
    web_root page, glyphs;
} web_api;

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".pbf", "application/x-protobuf"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < G_N_ELEMENTS(TYPES); i++)
            if (!strcmp(dot, TYPES[i].ext))
                return TYPES[i].type;
    return "application/octet-stream";
}

/* True when rel is made of plain names only (see the top of the file). */
static bool plain_path(const char *rel)
{
    if (!*rel)
        return false;
    const char *p = rel;
    while (*p) {
        if (*p == '.' || *p == '/')
            return false;   /* a name starting with '.', or an empty name */
        while (*p && *p != '/') {
            unsigned char c = (unsigned char)*p;
            /* glyph font stacks are named "Noto Sans Regular": spaces and
             * commas too (a stack of several fonts) */
            if (!(g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == ' ' || c == ','))
                return false;
            p++;
        }
        if (*p == '/')
            p++;
    }
    return p[-1] != '/';
}

static void security_headers(http_req *r)
{
    http_add_header(r, "Content-Security-Policy", web_csp);
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_add_header(r, "X-Frame-Options", "DENY");
}

/* Sends the file; false when there is no such regular file. */
static bool send_file(http_req *r, const web_root *root, const char *rel)
{
    char *path = g_build_filename(root->dir, rel, NULL);
    struct stat st;
    bool ok = !stat(path, &st) && S_ISREG(st.st_mode);
    if (!ok) {
        g_free(path);
        return false;
    }
    if ((gsize)st.st_size > WEB_FILE_MAX) {
        g_free(path);
        http_reply_error(r, 500, "internal", NULL, "%s is larger than the web server sends", rel);
        return true;
    }
    gchar *data = NULL;
    gsize len = 0;
    GError *ge = NULL;
    if (!g_file_get_contents(path, &data, &len, &ge)) {
        log_warn("web", "cannot read %s: %s", path, ge->message);
        http_reply_error(r, 500, "internal", NULL, "cannot read %s", rel);
        g_error_free(ge);
        g_free(path);
        return true;
    }
    security_headers(r);
    /* the page's files change only with a new build; revalidating costs a
     * round trip on a closed network, and a wall never shows a stale page */
    http_add_header(r, "Cache-Control", "no-cache");
    http_reply(r, 200, type_of(rel), data, len);
    g_free(data);
    g_free(path);
    return true;
}

static void not_built(http_req *r, const web_root *root)
{
    http_reply_error(r, 404, "not_found", "path",
                     "%s is not built (bash scripts/setup.sh builds it)", root->what);
}

static void h_glyphs(http_req *r, void *ud)
{
    web_api *w = ud;
    const char *rel = r->path + strlen(w->glyphs.prefix);
    if (!w->glyphs.dir)
        return not_built(r, &w->glyphs);
    if (!plain_path(rel) || !send_file(r, &w->glyphs, rel))
        http_reply_error(r, 404, "not_found", "path", "no glyph range %s", rel);
}

static void h_page(http_req *r, void *ud)
{
    web_api *w = ud;
    const char *rel = r->path + 1;
    /* the API's own spaces answer in JSON, never with the page */
    static const char *const api[] = {"api", "ogc", "tiles", "glyphs", "open311", "video", "live"};
    size_t first = strcspn(rel, "/");
    for (size_t i = 0; i < G_N_ELEMENTS(api); i++)
        if (first == strlen(api[i]) && !strncmp(rel, api[i], first)) {
            http_reply_error(r, 404, "not_found", "path", "no route %s", r->path);
            return;
        }
    if (!w->page.dir)
        return not_built(r, &w->page);
    if (!*rel)
        rel = "index.html";
    if (plain_path(rel) && send_file(r, &w->page, rel))
        return;
    /* a view of the page (/replay): no extension in its last name */
    const char *last = strrchr(r->path, '/');
    if (!strchr(last ? last : r->path, '.') && plain_path(rel) &&
        send_file(r, &w->page, "index.html"))
        return;
    http_reply_error(r, 404, "not_found", "path", "no file %s", r->path);
}

static void resolve(web_root *root, const char *dir, const char *what, const char *prefix)
{
    root->what = what;
    root->prefix = prefix;
    root->dir = NULL;
    if (!dir)
        return;
    char *real = realpath(dir, NULL);
    struct stat st;
    if (!real || stat(real, &st) || !S_ISDIR(st.st_mode) || strlen(real) >= sizeof root->buf) {
        log_warn("web", "%s not served: %s is not a directory", what, dir);
        free(real);
        return;
    }
    g_strlcpy(root->buf, real, sizeof root->buf);
    root->dir = root->buf;
    free(real);
    log_info("web", "serving %s from %s", what, root->dir);
}

void web_api_register(http_server *h, const char *web_dir, const char *glyphs_dir)
{
    /* one daemon a process: the server keeps a pointer to it until exit */
    static web_api w;
    resolve(&w.page, web_dir, "the dashboard (web/dist)", "/");
    resolve(&w.glyphs, glyphs_dir, "the map's glyphs", "/glyphs/");
    http_route(h, "GET", "/*", HTTP_PUBLIC, 0, h_page, &w);
    http_route(h, "GET", "/glyphs/*", HTTP_PUBLIC, 0, h_glyphs, &w);
}
