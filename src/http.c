/* http: libwebsockets' HTTP server on the GLib loop (LWS_SERVER_OPTION_GLIB
 * with our GMainLoop as its foreign loop): connections, requests parsed into
 * an http_req, routing and dispatch, answers written from a buffer in chunks
 * whenever the socket is writable, so a slow reader costs only itself. Forms
 * are in http_form.c, websockets in http_ws.c. */
#include "gridcc/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gridcc/log.h"
#include "http_priv.h"

#define CHUNK 65536

typedef struct route {
    char method[8];
    char *pattern;
    bool prefix;
    size_t max_body;
    const char *const *form_names;
    int form_n;
    http_handler h;
    void *ud;
} route;

http_req *http_req_new(struct lws *wsi, http_server *srv)
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

void http_req_free(http_req *r)
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
        http_req_free(r);
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

void http_req_parse(struct lws *wsi, http_req *r)
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

/* Answers the Expect: 100-continue that curl and many HTTP libraries send
 * before bodies over 1 MB (then waiting a second before sending anyway);
 * lws does not answer it itself. */
static int answer_continue(struct lws *wsi)
{
    char expect[32] = "";
    copy_header(wsi, WSI_TOKEN_HTTP_EXPECT, expect, sizeof expect);
    if (g_ascii_strcasecmp(expect, "100-continue"))
        return 0;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof cont];
    memcpy(buf + LWS_PRE, cont, sizeof cont - 1);
    return lws_write(wsi, buf + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP_HEADERS_CONTINUATION) <
                   (int)sizeof cont - 1
               ? -1
               : 0;
}

/* A request with no route: 404 or 405, once any body has been drained. */
static int on_no_route(struct lws *wsi, http_req *r, bool known, bool has_body)
{
    req_priv *p = r->priv;
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

/* A request that carries a body: refused at once when too large or without a
 * length, otherwise read (a form parsed as it comes) and dispatched when
 * complete. */
static int on_body_start(struct lws *wsi, http_req *r, route *rt)
{
    req_priv *p = r->priv;
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
        p->fs = form_stream_new(wsi, rt->form_names, rt->form_n, (size_t)n);
    } else {
        /* the whole body in one allocation */
        g_byte_array_set_size(r->body, (guint)n);
        g_byte_array_set_size(r->body, 0);
    }
    r->user = rt;   /* remembered until the body is complete */
    return answer_continue(wsi);
}

/* LWS_CALLBACK_HTTP: the headers of a request are in. */
static int on_request(struct lws *wsi, pss *ps, http_server *srv)
{
    if (ps->req) {   /* a previous transaction on this connection, finished */
        http_req_free(ps->req);
        ps->req = NULL;
    }
    http_req *r = ps->req = http_req_new(wsi, srv);
    http_req_parse(wsi, r);
    bool known;
    route *rt = find_route(srv, r, &known);
    req_priv *p = r->priv;
    if (rt && rt->max_body)
        p->max_body = rt->max_body;
    bool has_body = r->method == HTTP_POST || r->method == HTTP_PUT || r->method == HTTP_PATCH;
    if (!rt)
        return on_no_route(wsi, r, known, has_body);
    if (has_body)
        return on_body_start(wsi, r, rt);
    dispatch(r, rt);
    return 0;
}

/* LWS_CALLBACK_HTTP_BODY: a piece of the body. */
static int on_body(pss *ps, void *in, size_t len)
{
    http_req *r = ps->req;
    if (!r)
        return -1;
    req_priv *p = r->priv;
    if (p->dispatched || p->body_rejected)
        return 0;
    size_t got = p->fs ? form_stream_got(p->fs) : r->body->len;
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

/* LWS_CALLBACK_HTTP_BODY_COMPLETION */
static int on_body_end(pss *ps)
{
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
            if (form_stream_short(p->fs))
                p->body_rejected = true;
        }
        dispatch(r, rt);
    }
    return 0;
}

/* LWS_CALLBACK_HTTP_WRITEABLE: the answer's headers, then its body a CHUNK
 * at a time; the transaction ends after the last. */
static int on_writable(struct lws *wsi, pss *ps)
{
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

/* CLOSED_HTTP or HTTP_DROP_PROTOCOL: either may be the last word on a
 * connection, depending on how it ended. */
static void on_closed(pss *ps)
{
    if (!ps->req)
        return;
    req_priv *p = ps->req->priv;
    if (p->deferred && !p->ready)
        p->gone = true;   /* http_complete frees it */
    else
        http_req_free(ps->req);
    ps->req = NULL;
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
        return http_ws_callback(wsi, reason, ps, srv, in, len);
    case LWS_CALLBACK_HTTP: return on_request(wsi, ps, srv);
    case LWS_CALLBACK_HTTP_BODY: return on_body(ps, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return on_body_end(ps);
    case LWS_CALLBACK_HTTP_WRITEABLE: return on_writable(wsi, ps);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: on_closed(ps); return 0;
    default: break;
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

void http_route(http_server *s, const char *method, const char *pattern, size_t max_body,
                http_handler h, void *ud)
{
    route *rt = g_new0(route, 1);
    snprintf(rt->method, sizeof rt->method, "%s", method);
    size_t n = strlen(pattern);
    rt->prefix = n && pattern[n - 1] == '*';
    rt->pattern = g_strndup(pattern, rt->prefix ? n - 1 : n);
    rt->max_body = max_body;
    rt->h = h;
    rt->ud = ud;
    g_ptr_array_add(s->routes, rt);
}

void http_route_form(http_server *s, const char *method, const char *pattern, size_t max_body,
                     const char *const *names, int n, http_handler h, void *ud)
{
    http_route(s, method, pattern, max_body, h, ud);
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
    http_ws_routes_free(s);
    g_byte_array_free(s->ws_buf, TRUE);
    g_free(s);
}
