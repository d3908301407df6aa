/* http: libwebsockets' HTTP server on the GLib loop (LWS_SERVER_OPTION_GLIB
 * with our GMainLoop as its foreign loop). Requests are parsed into an
 * http_req, routed, answered from a buffer written in chunks whenever the
 * socket is writable, so a slow reader costs only itself. */
#include "gridcc/http.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gridcc/log.h"

#define CHUNK 65536
#define FORM_PRESIZE_MAX ((size_t)16 << 20)
#define FORM_MAX_FILES 32
/* A streamed form's last bytes are held back until the body is complete:
 * lws' parser, on seeing the closing boundary, marks the body as ended on the
 * connection, and bytes after it would be read as the next request. */
#define FORM_TAIL 256

typedef struct route {
    char method[8];
    char *pattern;
    bool prefix;
    unsigned roles;
    size_t max_body;
    const char *const *form_names;
    int form_n;
    http_handler h;
    void *ud;
} route;

typedef struct ws_route {
    char *path;
    unsigned roles;
    http_ws_handler h;
    size_t max_message;
    void *ud;
} ws_route;

struct http_server {
    struct lws_context *ctx;
    GMainLoop *loop;
    GPtrArray *routes;
    GPtrArray *ws_routes;
    http_authorize_fn authorize;
    void *authorize_ud;
    lws_retry_bo_t retry;         /* websocket keep-alive */
    GByteArray *ws_buf;           /* LWS_PRE + message, reused by every send */
    http_limits lim;
    int port;
    enum log_level access_level;  /* of the one-line-per-request log */
};

struct http_ws {
    struct lws *wsi;
    http_server *srv;
    ws_route *rt;
    void *conn;
    http_req *upgrade;            /* until open() has seen it */
    GByteArray *rx;               /* a message arriving in fragments */
    bool closing, too_large;
    int close_status;
    char close_reason[124];
    char peer[64];
};

typedef struct form_ctx {
    http_form *f;
    http_form_file *cur;
    size_t size_hint;     /* what is left of the body: no part is larger */
    const char *why;      /* set when a part is refused */
} form_ctx;

/* A form parsed as it arrives. */
typedef struct form_stream {
    struct lws_spa *spa;
    const char *const *names;
    int n;
    form_ctx ctx;
    http_form form;
    size_t length, got;   /* declared, and received so far */
    GByteArray *tail;     /* the held-back end of the body (FORM_TAIL) */
    const char *why;
    bool bad;
} form_stream;

typedef struct req_priv {
    struct lws *wsi;
    http_server *srv;
    form_stream *fs;
    size_t max_body;
    size_t sent;
    gint64 t0;
    bool dispatched, deferred, ready, headers_sent, gone, body_rejected;
} req_priv;

typedef struct pss {
    http_req *req;
    http_ws *ws;
} pss;

static http_req *req_new(struct lws *wsi, http_server *srv)
{
    http_req *r = g_new0(http_req, 1);
    req_priv *p = g_new0(req_priv, 1);
    r->priv = p;
    p->wsi = wsi;
    p->srv = srv;
    p->max_body = srv->lim.max_body;
    p->t0 = g_get_monotonic_time();
    r->qkeys = g_ptr_array_new_with_free_func(g_free);
    r->qvals = g_ptr_array_new_with_free_func(g_free);
    r->body = g_byte_array_new();
    r->out = g_string_new(NULL);
    r->headers = g_string_new(NULL);
    r->status = 0;
    return r;
}

static void form_stream_free(form_stream *fs);

static void req_free(http_req *r)
{
    if (!r)
        return;
    form_stream_free(((req_priv *)r->priv)->fs);
    g_ptr_array_free(r->qkeys, TRUE);
    g_ptr_array_free(r->qvals, TRUE);
    g_byte_array_free(r->body, TRUE);
    g_string_free(r->out, TRUE);
    g_string_free(r->headers, TRUE);
    g_free(r->priv);
    g_free(r);
}

const char *http_query(const http_req *r, const char *key)
{
    for (guint i = 0; i < r->qkeys->len; i++)
        if (!strcmp(g_ptr_array_index(r->qkeys, i), key))
            return g_ptr_array_index(r->qvals, i);
    return NULL;
}

bool http_wants_html(const http_req *r)
{
    const char *f = http_query(r, "f");
    if (f)
        return !strcasecmp(f, "html");
    /* browsers put text/html first; API clients ask for JSON or anything */
    return !strncasecmp(r->accept, "text/html", 9);
}

void http_add_header(http_req *r, const char *name, const char *value)
{
    g_string_append_printf(r->headers, "%s: %s\r\n", name, value);
}

void http_reply(http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    r->status = status;
    r->ctype = ctype;
    g_string_truncate(r->out, 0);
    if (body)
        g_string_append_len(r->out, body, (gssize)len);
}

void http_reply_json(http_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    if (!s) {   /* a handler built no JSON (a bug, not the client's) */
        static const char fail[] = "{\"error\":{\"status\":500,\"code\":\"internal\","
                                   "\"message\":\"the answer could not be encoded\",\"field\":null}}";
        http_reply(r, 500, "application/json", fail, sizeof fail - 1);
        json_decref(j);
        return;
    }
    http_reply(r, status, "application/json", s, strlen(s));
    free(s);
    json_decref(j);
}

void http_reply_error(http_req *r, int status, const char *code, const char *field,
                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages quote what the client sent, which may not be UTF-8 (or be cut
     * in the middle of a character) */
    char *valid = g_utf8_make_valid(msg, -1);
    json_t *e = json_pack("{s:i,s:s,s:s}", "status", status, "code", code, "message", valid);
    g_free(valid);
    json_object_set_new(e, "field", field && *field ? json_string(field) : json_null());
    http_reply_json(r, status, json_pack("{s:o}", "error", e));
}

void http_reply_err(http_req *r, const gc_err *e)
{
    int status = 400;
    const char *code = "invalid";
    switch (e->code) {
    case GC_ENOTFOUND: status = 404; code = "not_found"; break;
    case GC_ECONFLICT: status = 409; code = "conflict"; break;
    case GC_EAUTH: status = 401; code = "unauthorized"; break;
    case GC_EFORBIDDEN: status = 403; code = "forbidden"; break;
    case GC_ETOOBIG: status = 413; code = "too_large"; break;
    case GC_ERATE: status = 429; code = "rate_limited"; break;
    case GC_EIO: status = 500; code = "internal"; break;
    case GC_EFULL:
        status = 507;
        code = "insufficient_storage";
        break;
    case GC_EBUSY:
        status = 503;
        code = "busy";
        /* the lock is held by another process: worth trying again soon */
        http_add_header(r, "Retry-After", "2");
        break;
    default: break;
    }
    http_reply_error(r, status, code, e->field, "%s", e->msg);
}

void http_defer(http_req *r) { ((req_priv *)r->priv)->deferred = true; }

bool http_gone(const http_req *r) { return ((req_priv *)r->priv)->gone; }

void http_complete(http_req *r)
{
    req_priv *p = r->priv;
    if (p->gone) {
        req_free(r);
        return;
    }
    p->ready = true;
    lws_callback_on_writable(p->wsi);
}

json_t *http_json_object(http_req *r)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body->data, r->body->len, 0, &je);
    if (!j) {
        http_reply_error(r, 400, "invalid_json", "body", "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(r, 400, "invalid", "body", "expected a JSON object");
        return NULL;
    }
    return j;
}

/* ---- forms ---- */

bool http_is_form(const http_req *r)
{
    return !g_ascii_strncasecmp(r->content_type, "multipart/form-data", 19) ||
           !g_ascii_strncasecmp(r->content_type, "application/x-www-form-urlencoded", 33);
}

static int form_file(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states state)
{
    form_ctx *c = data;
    if (state == LWS_UFS_OPEN) {
        if (c->f->files->len >= FORM_MAX_FILES) {
            c->why = "more than 32 file parts";
            return -1;
        }
        c->cur = g_new0(http_form_file, 1);
        c->cur->name = g_strdup(name ? name : "");
        c->cur->filename = g_strdup(filename ? filename : "");
        /* the first file is usually the photo: one allocation of the most it
         * can be (what is left of the body), not a copy per power of two.
         * Later parts grow as they come, so many small parts cost little. */
        c->cur->data = c->f->files->len
                           ? g_byte_array_new()
                           : g_byte_array_sized_new((guint)MIN(c->size_hint, FORM_PRESIZE_MAX));
        g_ptr_array_add(c->f->files, c->cur);
    } else if ((state == LWS_UFS_CONTENT || state == LWS_UFS_FINAL_CONTENT) && c->cur) {
        if (len > 0)
            g_byte_array_append(c->cur->data, (const guint8 *)buf, (guint)len);
        if (state == LWS_UFS_FINAL_CONTENT)
            c->cur = NULL;
    }
    return 0;
}

static void form_file_free(gpointer p)
{
    http_form_file *f = p;
    g_free(f->name);
    g_free(f->filename);
    g_byte_array_free(f->data, TRUE);
    g_free(f);
}

int http_form_parse(http_req *r, const char *const *names, int n, http_form *out, gc_err *err)
{
    req_priv *p = r->priv;
    out->fields = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    out->files = g_ptr_array_new_with_free_func(form_file_free);
    if (!g_ascii_strncasecmp(r->content_type, "multipart/", 10) &&
        !strstr(r->content_type, "boundary="))
        return gc_fail(err, GC_EINVAL, "Content-Type", "multipart body without a boundary");
    if (p->fs) {   /* parsed on arrival */
        form_stream *fs = p->fs;
        g_hash_table_destroy(out->fields);
        g_ptr_array_free(out->files, TRUE);
        *out = fs->form;
        fs->form = (http_form){0};
        if (fs->bad)
            return gc_fail(err, GC_EINVAL, "body", "%s",
                           fs->why ? fs->why
                           : fs->ctx.why ? fs->ctx.why
                                         : "malformed form body");
        return 0;
    }
    form_ctx c = {out, NULL, r->body->len, NULL};
    lws_spa_create_info_t info = {.param_names = names, .count_params = n,
                                  .max_storage = 65536, .opt_cb = form_file, .opt_data = &c};
    struct lws_spa *spa = lws_spa_create_via_info(p->wsi, &info);
    if (!spa)
        return gc_fail(err, GC_EINVAL, "Content-Type", "cannot parse a %s body", r->content_type);
    int rc = lws_spa_process(spa, (const char *)r->body->data, (int)r->body->len);
    if (rc >= 0)
        rc = lws_spa_finalize(spa);
    if (rc < 0) {
        lws_spa_destroy(spa);
        return gc_fail(err, GC_EINVAL, "body", "%s", c.why ? c.why : "malformed form body");
    }
    for (int i = 0; i < n; i++) {
        const char *v = lws_spa_get_string(spa, i);
        if (v)
            g_hash_table_insert(out->fields, (gpointer)names[i], g_strdup(v));
    }
    lws_spa_destroy(spa);
    return 0;
}

void http_form_clear(http_form *f)
{
    if (f->fields)
        g_hash_table_destroy(f->fields);
    if (f->files)
        g_ptr_array_free(f->files, TRUE);
    f->fields = NULL;
    f->files = NULL;
}

static void form_stream_free(form_stream *fs)
{
    if (!fs)
        return;
    if (fs->spa)
        lws_spa_destroy(fs->spa);
    http_form_clear(&fs->form);
    g_byte_array_free(fs->tail, TRUE);
    g_free(fs);
}

static form_stream *form_stream_new(struct lws *wsi, const route *rt, size_t length)
{
    form_stream *fs = g_new0(form_stream, 1);
    fs->names = rt->form_names;
    fs->n = rt->form_n;
    fs->length = length;
    fs->tail = g_byte_array_new();
    fs->form.fields = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    fs->form.files = g_ptr_array_new_with_free_func(form_file_free);
    fs->ctx = (form_ctx){&fs->form, NULL, length, NULL};
    lws_spa_create_info_t info = {.param_names = rt->form_names, .count_params = rt->form_n,
                                  .max_storage = 65536, .opt_cb = form_file,
                                  .opt_data = &fs->ctx};
    fs->spa = lws_spa_create_via_info(wsi, &info);
    fs->bad = !fs->spa;
    return fs;
}

/* Parses len bytes that start `at` bytes into the body. */
static void form_stream_parse(form_stream *fs, const void *in, size_t len, size_t at)
{
    if (fs->bad || !len)
        return;
    fs->ctx.size_hint = fs->length > at ? fs->length - at : 0;
    if (lws_spa_process(fs->spa, in, (int)len) < 0)
        fs->bad = true;
}

static void form_stream_feed(form_stream *fs, const void *in, size_t len)
{
    size_t before = fs->got;
    fs->got += len;
    if (fs->bad)
        return;   /* the rest is drained; the handler answers 400 */
    size_t hold_from = fs->length > FORM_TAIL ? fs->length - FORM_TAIL : 0;
    size_t now = before >= hold_from ? 0 : MIN(len, hold_from - before);
    form_stream_parse(fs, in, now, before);
    g_byte_array_append(fs->tail, (const guint8 *)in + now, (guint)(len - now));
}

/* The body is complete (or lws thinks so): parse the held-back end. */
static void form_stream_end(form_stream *fs)
{
    if (!fs->spa)
        return;
    if (fs->got != fs->length) {
        /* the closing boundary came before the declared end: what follows
         * it must not be taken for another request */
        fs->bad = true;
        fs->why = "the form's closing boundary comes before the end of the body";
    }
    form_stream_parse(fs, fs->tail->data, fs->tail->len, fs->got - fs->tail->len);
    if (!fs->bad && lws_spa_finalize(fs->spa) < 0)
        fs->bad = true;
    for (int i = 0; i < fs->n && !fs->bad; i++) {
        const char *v = lws_spa_get_string(fs->spa, i);
        if (v)
            g_hash_table_insert(fs->form.fields, (gpointer)fs->names[i], g_strdup(v));
    }
    lws_spa_destroy(fs->spa);
    fs->spa = NULL;
}

/* ---- parsing ---- */

static http_method method_of(struct lws *wsi, const char **name, char *uri, size_t len)
{
    static const struct {
        enum lws_token_indexes tok;
        http_method m;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, HTTP_GET, "GET"},         {WSI_TOKEN_POST_URI, HTTP_POST, "POST"},
        {WSI_TOKEN_PUT_URI, HTTP_PUT, "PUT"},         {WSI_TOKEN_PATCH_URI, HTTP_PATCH, "PATCH"},
        {WSI_TOKEN_DELETE_URI, HTTP_DELETE, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, HTTP_OPTIONS, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, HTTP_HEAD, "HEAD"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            lws_hdr_copy(wsi, uri, (int)len, methods[i].tok);
            *name = methods[i].name;
            return methods[i].m;
        }
    }
    *name = "?";
    uri[0] = 0;
    return HTTP_OTHER;
}

static void copy_header(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t len)
{
    dst[0] = 0;
    if (lws_hdr_total_length(wsi, tok) > 0 && lws_hdr_total_length(wsi, tok) < (int)len)
        lws_hdr_copy(wsi, dst, (int)len, tok);
}

static void parse_request(struct lws *wsi, http_req *r)
{
    r->method = method_of(wsi, &r->method_name, r->path, sizeof r->path);
    copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, r->authorization, sizeof r->authorization);
    copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, r->content_type, sizeof r->content_type);
    copy_header(wsi, WSI_TOKEN_HTTP_ACCEPT, r->accept, sizeof r->accept);
    copy_header(wsi, WSI_TOKEN_HOST, r->host, sizeof r->host);
    int il = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
    if (il > 0 && il < (int)sizeof r->idempotency_key)
        lws_hdr_custom_copy(wsi, r->idempotency_key, sizeof r->idempotency_key,
                            "idempotency-key:", 16);
    else if (il >= (int)sizeof r->idempotency_key)
        r->idempotency_too_long = true;
    lws_get_peer_simple(wsi, r->peer, sizeof r->peer);
    char frag[4096];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char *eq = strchr(frag, '=');
        if (eq)
            *eq = 0;
        g_ptr_array_add(r->qkeys, g_strdup(frag));
        g_ptr_array_add(r->qvals, g_strdup(eq ? eq + 1 : ""));
    }
}

static route *find_route(http_server *s, http_req *r, bool *path_known)
{
    *path_known = false;
    for (guint i = s->routes->len; i-- > 0;) {
        route *rt = g_ptr_array_index(s->routes, i);
        bool match = rt->prefix ? !strncmp(r->path, rt->pattern, strlen(rt->pattern))
                                : !strcmp(r->path, rt->pattern);
        if (!match)
            continue;
        *path_known = true;
        if (!strcmp(rt->method, r->method_name) ||
            (r->method == HTTP_HEAD && !strcmp(rt->method, "GET")))
            return rt;
    }
    return NULL;
}

static void dispatch(http_req *r, route *rt)
{
    req_priv *p = r->priv;
    p->dispatched = true;
    if (rt && rt->roles != HTTP_PUBLIC) {
        if (!p->srv->authorize) {   /* a route that names roles on a server that checks none */
            http_reply_error(r, 500, "internal", NULL, "no authorizer for %s", r->path);
            rt = NULL;
        } else if (!p->srv->authorize(p->srv->authorize_ud, r, rt->roles)) {
            rt = NULL;   /* it has replied */
        }
    }
    if (rt)
        rt->h(r, rt->ud);
    if (p->deferred)
        return;   /* the handler answers later through http_complete */
    if (!r->status)
        http_reply_error(r, 500, "internal", NULL, "handler gave no response");
    if (!p->deferred) {
        p->ready = true;
        lws_callback_on_writable(p->wsi);
    }
}

static int write_headers(struct lws *wsi, http_req *r)
{
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)r->status,
                                    r->ctype ? r->ctype : "application/json",
                                    (lws_filepos_t)r->out->len, &p, end))
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    char *line = r->headers->str;
    while (line && *line) {
        char *eol = strstr(line, "\r\n");
        char *colon = strchr(line, ':');
        if (!eol || !colon || colon > eol)
            break;
        char name[128];
        size_t nl = (size_t)(colon - line);
        if (nl + 2 > sizeof name)
            break;
        memcpy(name, line, nl);
        name[nl] = ':';
        name[nl + 1] = 0;
        for (char *c = name; *c; c++)
            *c = (char)g_ascii_tolower(*c);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)v, (int)(eol - v), &p, end))
            return -1;
        line = eol + 2;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return 0;
}

static void log_access(http_req *r)
{
    req_priv *p = r->priv;
    log_msg(r->status >= 400 ? LOG_INFO : p->srv->access_level, "http",
            "%s %s status=%d bytes=%zu ms=%.1f peer=%s", r->method_name, r->path, r->status,
            r->out->len, (double)(g_get_monotonic_time() - p->t0) / 1000.0, r->peer);
}

/* ---- websockets ---- */

static ws_route *find_ws_route(http_server *s, const char *path)
{
    for (guint i = 0; i < s->ws_routes->len; i++) {
        ws_route *rt = g_ptr_array_index(s->ws_routes, i);
        if (!strcmp(rt->path, path))
            return rt;
    }
    return NULL;
}

static void ws_free(http_ws *ws)
{
    if (!ws)
        return;
    req_free(ws->upgrade);
    if (ws->rx)
        g_byte_array_free(ws->rx, TRUE);
    g_free(ws);
}

int http_ws_send(http_ws *ws, const char *data, size_t len)
{
    GByteArray *b = ws->srv->ws_buf;
    g_byte_array_set_size(b, (guint)(LWS_PRE + len));
    memcpy(b->data + LWS_PRE, data, len);
    int w = lws_write(ws->wsi, b->data + LWS_PRE, len, LWS_WRITE_TEXT);
    if (b->len > (1u << 20))
        g_byte_array_set_size(b, 0);   /* one large message does not pin its buffer */
    return w < (int)len ? -1 : 0;
}

void http_ws_want_write(http_ws *ws) { lws_callback_on_writable(ws->wsi); }

bool http_ws_choked(http_ws *ws) { return lws_send_pipe_choked(ws->wsi) != 0; }

/* lws wants its writes made from the writeable callback; on an HTTP/1.1
 * websocket a write outside it is safe as long as nothing of an earlier
 * write is still buffered (lws then appends, and drains in order), and the
 * connection is neither opening nor closing. */
bool http_ws_writable_now(http_ws *ws)
{
    return ws->conn && !ws->closing && !lws_partial_buffered(ws->wsi);
}

const char *http_ws_peer(const http_ws *ws) { return ws->peer; }

void http_ws_close(http_ws *ws, int status, const char *reason)
{
    if (ws->closing)
        return;
    ws->closing = true;
    ws->close_status = status;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    lws_callback_on_writable(ws->wsi);
    /* a peer that never reads never lets the close frame out */
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

void http_ws_keepalive(http_server *s, int ping_s, int hangup_s)
{
    s->retry.secs_since_valid_ping = (uint16_t)ping_s;
    s->retry.secs_since_valid_hangup = (uint16_t)hangup_s;
}

void http_routes_foreach(const http_server *s, http_route_cb cb, void *ud)
{
    for (guint i = 0; i < s->routes->len; i++) {
        const route *rt = g_ptr_array_index(s->routes, i);
        char *pat = g_strconcat(rt->pattern, rt->prefix ? "*" : "", NULL);
        cb(ud, rt->method, pat, rt->roles);
        g_free(pat);
    }
    for (guint i = 0; i < s->ws_routes->len; i++) {
        const ws_route *rt = g_ptr_array_index(s->ws_routes, i);
        cb(ud, "WS", rt->path, rt->roles);
    }
}

void http_route_ws(http_server *s, const char *path, unsigned roles, const http_ws_handler *h,
                   size_t max_message, void *ud)
{
    ws_route *rt = g_new0(ws_route, 1);
    rt->roles = roles;
    rt->path = g_strdup(path);
    rt->h = *h;
    rt->max_message = max_message ? max_message : 65536;
    rt->ud = ud;
    g_ptr_array_add(s->ws_routes, rt);
}

/* The websocket reasons of the callback; 0 to go on, non-zero to close. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, pss *ps,
                       http_server *srv, void *in, size_t len)
{
    http_ws *ws = ps->ws;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        http_req *r = req_new(wsi, srv);
        parse_request(wsi, r);
        ws_route *rt = find_ws_route(srv, r->path);
        if (!rt) {
            log_warn("http", "websocket refused: no endpoint at %s peer=%s", r->path, r->peer);
            req_free(r);
            return 1;
        }
        ws = ps->ws = g_new0(http_ws, 1);
        ws->wsi = wsi;
        ws->srv = srv;
        ws->rt = rt;
        ws->upgrade = r;
        snprintf(ws->peer, sizeof ws->peer, "%s", r->peer);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        if (!ws)
            return -1;
        ws->conn = ws->rt->h.open(ws, ws->upgrade, ws->rt->ud);
        req_free(ws->upgrade);
        ws->upgrade = NULL;
        return ws->conn ? 0 : -1;
    case LWS_CALLBACK_RECEIVE:
        if (!ws || !ws->conn)
            return -1;
        if (lws_frame_is_binary(wsi)) {
            http_ws_close(ws, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text messages only");
            return 0;
        }
        if (!ws->rx)
            ws->rx = g_byte_array_new();
        if (ws->rx->len + len > ws->rt->max_message) {
            char why[64];
            snprintf(why, sizeof why, "a message may be at most %zu bytes", ws->rt->max_message);
            log_warn("http", "websocket message too large peer=%s", ws->peer);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                             strlen(why));
            return -1;
        }
        g_byte_array_append(ws->rx, in, (guint)len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            ws->rt->h.message(ws->conn, (const char *)ws->rx->data, ws->rx->len);
            g_byte_array_set_size(ws->rx, 0);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!ws || !ws->conn)
            return -1;
        if (ws->closing) {
            lws_close_reason(wsi, (enum lws_close_status)ws->close_status,
                             (unsigned char *)ws->close_reason, strlen(ws->close_reason));
            return -1;
        }
        ws->rt->h.writable(ws->conn);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (ws) {
            if (ws->conn)
                ws->rt->h.close(ws->conn);
            ws_free(ws);
            ps->ws = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

/* lws's GLib plugin gives each connection a GSource of its own. GLib blocks a
 * source while dispatching it unless it may recurse, and blocking and
 * unblocking each walk the context's list of polled fds, one per connection:
 * with 1,000 /live clients that cost a tenth of the daemon's CPU (16.8 s
 * against 15.2 s in bench_fanout). Nothing here runs a main loop inside a
 * dispatch, so the block protects nothing; the source being dispatched may
 * recurse instead (set the first time it leads here; a flag check after). */
static void unblock_current_source(void)
{
    GSource *src = g_main_current_source();
    if (src && !g_source_get_can_recurse(src))
        g_source_set_can_recurse(src, TRUE);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    pss *ps = user;
    http_server *srv = lws_context_user(lws_get_context(wsi));
    /* lws calls some reasons (a connection refused while parsing headers)
     * before any per-session data exists */
    if (!ps)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    unblock_current_source();
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return ws_callback(wsi, reason, ps, srv, in, len);
    case LWS_CALLBACK_HTTP: {
        if (ps->req) {   /* a previous transaction on this connection, finished */
            req_free(ps->req);
            ps->req = NULL;
        }
        http_req *r = ps->req = req_new(wsi, srv);
        parse_request(wsi, r);
        bool known;
        route *rt = find_route(srv, r, &known);
        req_priv *p = r->priv;
        if (rt && rt->max_body)
            p->max_body = rt->max_body;
        bool has_body = r->method == HTTP_POST || r->method == HTTP_PUT || r->method == HTTP_PATCH;
        if (!rt) {
            p->body_rejected = has_body;
            if (known)
                http_reply_error(r, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
                                 r->method_name, r->path);
            else
                http_reply_error(r, 404, "not_found", "path", "no resource at %s", r->path);
            char cl[32] = "";
            copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
            /* answer now unless a body is on its way (it is drained first) */
            if (!has_body || g_ascii_strtoull(cl, NULL, 10) == 0)
                dispatch(r, NULL);
            return 0;
        }
        if (has_body) {
            char cl[32] = "";
            copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
            if (!cl[0]) {
                http_reply_error(r, 411, "length_required", "Content-Length",
                                 "a request body needs a Content-Length header");
                dispatch(r, NULL);
                return 0;
            }
            unsigned long long n = g_ascii_strtoull(cl, NULL, 10);
            if (n > p->max_body) {
                http_reply_error(r, 413, "too_large", "body",
                                 "request body of %llu bytes exceeds the limit of %zu bytes", n,
                                 p->max_body);
                dispatch(r, NULL);
                /* answer without reading the body, then close */
                return 0;
            }
            if (n == 0) {
                dispatch(r, rt);
                return 0;
            }
            if (rt->form_names && http_is_form(r) &&
                (g_ascii_strncasecmp(r->content_type, "multipart/", 10) ||
                 strstr(r->content_type, "boundary="))) {
                p->fs = form_stream_new(wsi, rt, (size_t)n);
            } else {
                /* the whole body in one allocation */
                g_byte_array_set_size(r->body, (guint)n);
                g_byte_array_set_size(r->body, 0);
            }
            r->user = rt;   /* remembered until the body is complete */
            /* curl and many HTTP libraries ask first for bodies over 1 MB,
             * then wait a second for this before sending anyway; lws does
             * not answer it itself */
            char expect[32] = "";
            copy_header(wsi, WSI_TOKEN_HTTP_EXPECT, expect, sizeof expect);
            if (!g_ascii_strcasecmp(expect, "100-continue")) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                unsigned char buf[LWS_PRE + sizeof cont];
                memcpy(buf + LWS_PRE, cont, sizeof cont - 1);
                if (lws_write(wsi, buf + LWS_PRE, sizeof cont - 1,
                              LWS_WRITE_HTTP_HEADERS_CONTINUATION) < (int)sizeof cont - 1)
                    return -1;
            }
            return 0;
        }
        dispatch(r, rt);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY: {
        http_req *r = ps->req;
        if (!r)
            return -1;
        req_priv *p = r->priv;
        if (p->dispatched || p->body_rejected)
            return 0;
        size_t got = p->fs ? p->fs->got : r->body->len;
        if (got + len > p->max_body) {
            p->body_rejected = true;
            http_reply_error(r, 413, "too_large", "body", "request body exceeds the limit of %zu bytes",
                             p->max_body);
            dispatch(r, NULL);
            return 0;
        }
        if (p->fs)
            form_stream_feed(p->fs, in, len);
        else
            g_byte_array_append(r->body, in, (guint)len);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        http_req *r = ps->req;
        if (!r)
            return -1;
        req_priv *p = r->priv;
        if (!p->dispatched) {
            route *rt = r->user;
            r->user = NULL;
            if (p->fs) {
                form_stream_end(p->fs);
                /* whatever came after an early closing boundary is no
                 * request of its own: answer, then close */
                if (p->fs->got != p->fs->length)
                    p->body_rejected = true;
            }
            dispatch(r, rt);
        }
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        http_req *r = ps->req;
        if (!r)
            return 0;
        req_priv *p = r->priv;
        if (!p->ready)
            return 0;
        if (!p->headers_sent) {
            if (write_headers(wsi, r))
                return -1;
            p->headers_sent = true;
            if (r->method == HTTP_HEAD || r->out->len == 0) {
                log_access(r);
                return lws_http_transaction_completed(wsi) ? -1 : 0;
            }
            lws_callback_on_writable(wsi);
            return 0;
        }
        size_t left = r->out->len - p->sent, n = left > CHUNK ? CHUNK : left;
        unsigned char *buf = g_malloc(LWS_PRE + n);
        memcpy(buf + LWS_PRE, r->out->str + p->sent, n);
        bool last = n == left;
        int w = lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
        g_free(buf);
        if (w < (int)n)
            return -1;
        p->sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        log_access(r);
        if (p->body_rejected)
            return -1;   /* the unread body makes the connection unusable */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        /* either may be the last word on a connection, depending on how it ended */
        if (ps->req) {
            req_priv *p = ps->req->priv;
            if (p->deferred && !p->ready) {
                p->gone = true;   /* http_complete frees it */
            } else {
                req_free(ps->req);
            }
            ps->req = NULL;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* rx_buffer_size: websocket messages are read this much at a time.
     * tx_packet_size: what one send() may carry. Left at 0, lws caps a
     * send at rx_buffer_size and keeps the rest of the message for later
     * POLLOUT rounds, 4 KiB each: a 22 KiB /live frame took six trips round
     * the loop, and with 1,000 clients that queueing was most of the
     * fan-out's latency (p99 350 ms, now 36 ms). The kernel still takes
     * only what fits; lws keeps any remainder as before. */
    {"http", callback, sizeof(pss), 4096, 0, NULL, 1u << 20},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    buf[strcspn(buf, "\n")] = 0;
    if (level & LLL_ERR)
        log_error("lws", "%s", buf);
    else
        log_warn("lws", "%s", buf);
}

http_server *http_server_new(GMainLoop *loop, const char *bind, int port, const http_limits *lim,
                             gc_err *err)
{
    http_server *s = g_new0(http_server, 1);
    s->loop = loop;
    s->routes = g_ptr_array_new();
    s->ws_routes = g_ptr_array_new();
    s->ws_buf = g_byte_array_new();
    s->access_level = LOG_INFO;
    s->retry.secs_since_valid_ping = 30;
    s->retry.secs_since_valid_hangup = 70;
    s->lim.max_body = lim && lim->max_body ? lim->max_body : 1 << 20;
    s->lim.idle_timeout_s = lim && lim->idle_timeout_s ? lim->idle_timeout_s : 30;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *foreign[1] = {loop};
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.foreign_loops = foreign;
    info.port = port;
    info.iface = bind;
    info.protocols = protocols;
    info.user = s;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 256;
    /* bodies are read this much at a time: 4 KiB (the default) means 500
     * reads and callbacks for one 2 MB photo */
    info.pt_serv_buf_size = 65536;
    info.timeout_secs = (unsigned int)s->lim.idle_timeout_s;
    info.keepalive_timeout = s->lim.idle_timeout_s;
    info.server_string = "gridcc";
    info.retry_and_idle_policy = &s->retry;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        gc_fail(err, GC_EIO, "port",
                "cannot listen on %s:%d (in use? libwebsockets-evlib-glib missing?)", bind, port);
        g_ptr_array_free(s->routes, TRUE);
        g_ptr_array_free(s->ws_routes, TRUE);
        g_byte_array_free(s->ws_buf, TRUE);
        g_free(s);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "default");
    s->port = vh ? lws_get_vhost_listen_port(vh) : port;
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_access_log(http_server *s, enum log_level ok_level) { s->access_level = ok_level; }

void http_server_authorize(http_server *s, http_authorize_fn fn, void *ud)
{
    s->authorize = fn;
    s->authorize_ud = ud;
}

void http_route(http_server *s, const char *method, const char *pattern, unsigned roles,
                size_t max_body, http_handler h, void *ud)
{
    route *rt = g_new0(route, 1);
    rt->roles = roles;
    snprintf(rt->method, sizeof rt->method, "%s", method);
    size_t n = strlen(pattern);
    rt->prefix = n && pattern[n - 1] == '*';
    rt->pattern = g_strndup(pattern, rt->prefix ? n - 1 : n);
    rt->max_body = max_body;
    rt->h = h;
    rt->ud = ud;
    g_ptr_array_add(s->routes, rt);
}

void http_route_form(http_server *s, const char *method, const char *pattern, unsigned roles,
                     size_t max_body, const char *const *names, int n, http_handler h, void *ud)
{
    http_route(s, method, pattern, roles, max_body, h, ud);
    route *rt = g_ptr_array_index(s->routes, s->routes->len - 1);
    rt->form_names = names;
    rt->form_n = n;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    lws_context_destroy(s->ctx);
    /* let lws finish closing on the loop */
    while (g_main_context_iteration(g_main_loop_get_context(s->loop), FALSE))
        ;
    for (guint i = 0; i < s->routes->len; i++) {
        route *rt = g_ptr_array_index(s->routes, i);
        g_free(rt->pattern);
        g_free(rt);
    }
    g_ptr_array_free(s->routes, TRUE);
    for (guint i = 0; i < s->ws_routes->len; i++) {
        ws_route *rt = g_ptr_array_index(s->ws_routes, i);
        g_free(rt->path);
        g_free(rt);
    }
    g_ptr_array_free(s->ws_routes, TRUE);
    g_byte_array_free(s->ws_buf, TRUE);
    g_free(s);
}
