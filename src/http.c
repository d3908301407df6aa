/* http: libwebsockets' HTTP server on the GLib loop (LWS_SERVER_OPTION_GLIB
 * with our GMainLoop as its foreign loop): connections, requests parsed into
 * an http_req, routing and dispatch, answers written from a buffer in chunks
 * whenever the socket is writable, so a slow reader costs only itself.
 * Requests and answers are in http_req.c, connections by address in
 * http_conn.c, forms in http_form.c, websockets in http_ws.c. */
#include "gridcc/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "gridcc/log.h"
#include "http_priv.h"

#define CHUNK 65536

typedef struct route {
    char method[8];
    char *pattern;
    bool prefix;
    char *suffix;                 /* after a star inside the pattern ("/snapshot.jpg"), or NULL */
    unsigned roles;
    size_t max_body;
    const char *const *form_names;
    int form_n;
    http_handler h;
    void *ud;
} route;

static route *find_route(http_server *s, http_req *r, bool *path_known)
{
    *path_known = false;
    for (guint i = s->routes->len; i-- > 0;) {
        route *rt = g_ptr_array_index(s->routes, i);
        bool match = rt->prefix ? !strncmp(r->path, rt->pattern, strlen(rt->pattern))
                                : !strcmp(r->path, rt->pattern);
        if (match && rt->suffix) {   /* one path segment between prefix and suffix */
            size_t pl = strlen(rt->pattern), sl = strlen(rt->suffix), n = strlen(r->path);
            match = n > pl + sl && !strcmp(r->path + n - sl, rt->suffix) &&
                    !memchr(r->path + pl, '/', n - pl - sl);
        }
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
        /* however long the handler took on the loop, the client waited for
         * it: lws's validity timer must not close it before the answer */
        lws_validity_confirmed(p->wsi);
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
    /* answers are not cached unless the handler says otherwise */
    gchar *lower = g_ascii_strdown(r->headers->str, (gssize)r->headers->len);
    bool own_cache = strstr(lower, "cache-control:") != NULL;
    g_free(lower);
    if (!own_cache && lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
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
    http_copy_header(wsi, WSI_TOKEN_HTTP_EXPECT, expect, sizeof expect);
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
    http_copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
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
    http_copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
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

/* lws reads a body by its Content-Length and knows no other framing: a
 * chunked body, or bytes past a length that a proxy in front reads another
 * way, would be taken for the next request on the connection. So a request
 * framed any other way than by one plain Content-Length is answered with an
 * error naming the header, and the connection closed. False when refused. */
static bool framing_ok(struct lws *wsi, http_req *r)
{
    req_priv *p = r->priv;
    int cll = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    char cl[32] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        if (cll > 0)
            http_reply_error(r, 400, "invalid", "Transfer-Encoding",
                             "a request may not carry both Content-Length and Transfer-Encoding "
                             "(where its body ends would be ambiguous)");
        else
            http_reply_error(r, 411, "length_required", "Transfer-Encoding",
                             "Transfer-Encoding is not supported: send the body with a "
                             "Content-Length");
    } else if (cll > 0 && (cll > 19 ||
                           lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) != cll ||
                           strspn(cl, "0123456789") != (size_t)cll)) {
        /* two Content-Length headers arrive joined by a comma */
        http_reply_error(r, 400, "invalid", "Content-Length",
                         "Content-Length must be one decimal number of bytes, not '%s'",
                         cl[0] ? cl : "(too long)");
    } else {
        return true;
    }
    p->body_rejected = true;
    dispatch(r, NULL);
    return false;
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
    if (!framing_ok(wsi, r))
        return 0;
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
        lws_validity_confirmed(wsi);   /* an answer ready after a long wait */
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
    /* the client takes what it asked for, however slowly: a valid connection */
    lws_validity_confirmed(wsi);
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
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: return http_conn_accept(srv, user);
    case LWS_CALLBACK_WSI_CREATE: http_conn_created(srv, wsi); return 0;
    case LWS_CALLBACK_WSI_DESTROY: http_conn_destroyed(srv, wsi); break;
    default: break;
    }
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
    /* a client's headers over the limit: its 431, no error of ours */
    if (strstr(line, "Ran out of header data space") ||
        strstr(line, "More hdr frags than we can deal with")) {
        http_conn_headers_overflowed();
        return;
    }
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
    s->lim.header_timeout_s = lim && lim->header_timeout_s ? lim->header_timeout_s : 10;
    s->lim.max_conns_per_addr = lim && lim->max_conns_per_addr ? lim->max_conns_per_addr : 64;
    s->lim.max_ws_per_addr = lim && lim->max_ws_per_addr ? lim->max_ws_per_addr : 4096;
    s->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    s->addrs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
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
    info.max_http_header_data = HEADER_MAX;
    /* header tables are made when a connection needs one and freed after:
     * the pool bounds their memory (16 MiB), the cap per address who holds
     * them, header_timeout_s for how long */
    info.max_http_header_pool = 2048;
    info.timeout_secs_ah_idle = (unsigned int)s->lim.header_timeout_s;
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
        g_hash_table_destroy(s->conns);
        g_hash_table_destroy(s->addrs);
        g_free(s);
        return NULL;
    }
    http_conn_server_add(s);
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
    const char *star = strchr(pattern, '*');
    if (star && star[1]) {
        rt->prefix = true;
        rt->pattern[star - pattern] = 0;
        rt->suffix = g_strdup(star + 1);
    }
    rt->max_body = max_body;
    rt->h = h;
    rt->ud = ud;
    g_ptr_array_add(s->routes, rt);
}

void http_routes_foreach(const http_server *s, http_route_cb cb, void *ud)
{
    for (guint i = 0; i < s->routes->len; i++) {
        const route *rt = g_ptr_array_index(s->routes, i);
        char *pat = g_strconcat(rt->pattern, rt->prefix ? "*" : "", rt->suffix, NULL);
        cb(ud, rt->method, pat, rt->roles);
        g_free(pat);
    }
    http_ws_routes_foreach(s, cb, ud);
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
    http_conn_server_remove(s);
    for (guint i = 0; i < s->routes->len; i++) {
        route *rt = g_ptr_array_index(s->routes, i);
        g_free(rt->pattern);
        g_free(rt->suffix);
        g_free(rt);
    }
    g_ptr_array_free(s->routes, TRUE);
    http_ws_routes_free(s);
    g_byte_array_free(s->ws_buf, TRUE);
    g_free(s);
}
