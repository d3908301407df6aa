/* http: libwebsockets' HTTP server on the GLib loop (LWS_SERVER_OPTION_GLIB
 * with our GMainLoop as its foreign loop): connections, requests parsed into
 * an http_req, routing and dispatch, answers written from a buffer in chunks
 * whenever the socket is writable, so a slow reader costs only itself. Forms
 * are in http_form.c, websockets in http_ws.c. */
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
/* a request's line and headers, together; lws's header table per connection */
#define HEADER_MAX 8192

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

/* ---- connections ----
 * Every connection counts against its client address from accept to close,
 * so that no one address can hold the server. lws gives each connection
 * whose request is not in yet a header table from a pool shared by all; a
 * client that connects and sends nothing holds one until header_timeout_s
 * has passed, and with the pool all held, everyone else waits. The excess of
 * an address is refused at accept, before lws makes a connection of it. */

typedef struct addr_count {
    char addr[64];
    int http, ws;   /* connections; websockets once established */
} addr_count;

typedef struct conn {
    addr_count *addr;
    bool ws;        /* counted as an established websocket */
    bool answered;  /* a 431 went out */
} conn;

/* the live servers, for lws's log hook, which has no context of its own */
static GSList *servers;

static void addr_release(http_server *s, addr_count *a, bool ws)
{
    if (ws)
        a->ws--;
    else
        a->http--;
    if (!a->http && !a->ws)
        g_hash_table_remove(s->addrs, a->addr);
}

static gboolean burst_tick(gpointer ud)
{
    http_server *s = ud;
    if (s->burst_recent) {
        s->burst_recent = 0;
        return G_SOURCE_CONTINUE;
    }
    log_info("http", "refusals ended refused=%u port=%d", s->burst_n, s->port);
    s->burst_n = 0;
    s->burst_timer = 0;
    return G_SOURCE_REMOVE;
}

/* A warning when a burst of refusals begins, a summary once it has been quiet
 * for 10 s: a flood of connections must not become a flood of log lines. */
static void refusal_logged(http_server *s, const char *what, const char *addr, int limit)
{
    s->burst_n++;
    s->burst_recent++;
    if (s->burst_timer)
        return;
    log_warn("http", "refusing %s: too many from one address peer=%s limit=%d port=%d", what, addr,
             limit, s->port);
    GSource *t = g_timeout_source_new_seconds(10);
    g_source_set_callback(t, burst_tick, s, NULL);
    s->burst_timer = g_source_attach(t, g_main_loop_get_context(s->loop));
    g_source_unref(t);
}

/* An answer written straight to a socket that lws is about to close (it makes
 * no transaction of it); small enough for any socket buffer. What the client
 * sent and nobody read is drained, so that the close does not reset the
 * connection and throw the answer away on the client's side. */
static void answer_raw(int fd, int status, const char *reason, const char *code, const char *field,
                       const char *msg, const char *extra_headers)
{
    json_t *e = json_pack("{s:i,s:s,s:s}", "status", status, "code", code, "message", msg);
    json_object_set_new(e, "field", field ? json_string(field) : json_null());
    json_t *j = json_pack("{s:o}", "error", e);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!body)
        return;
    GString *a = g_string_new(NULL);
    g_string_printf(
        a,
        "HTTP/1.1 %d %s\r\nserver: gridcc\r\ncontent-type: application/json\r\n"
        "content-length: %zu\r\ncache-control: no-store\r\nconnection: close\r\n%s\r\n%s",
        status, reason, strlen(body), extra_headers, body);
    free(body);
    if (send(fd, a->str, a->len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)a->len) {
        shutdown(fd, SHUT_WR);
        char junk[4096];
        for (int i = 0; i < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++)
            ;
    }
    g_string_free(a, TRUE);
}

/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: a connection accepted; non-zero
 * refuses it. */
static int conn_accept(http_server *s, const struct lws_filter_network_conn_args *f)
{
    /* accepting runs in the dispatch of the listening socket's GSource,
     * which is of the same kind as every connection's */
    GSource *src = g_main_current_source();
    if (src)
        s->lws_source_funcs = src->source_funcs;
    if (s->accepting) {   /* lws made no connection of the previous one */
        addr_release(s, s->accepting, false);
        s->accepting = NULL;
    }
    char addr[64] = "";
    if (f->cli_addr.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&f->cli_addr)->sin_addr, addr,
                  sizeof addr);
    else if (f->cli_addr.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&f->cli_addr)->sin6_addr, addr,
                  sizeof addr);
    addr_count *a = g_hash_table_lookup(s->addrs, addr);
    int cap = s->lim.max_conns_per_addr;
    if (a && cap > 0 && a->http >= cap) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many connections from %s: at most %d at a time", addr, cap);
        answer_raw(f->accept_fd, 503, "Service Unavailable", "too_many_connections", NULL, msg,
                   "retry-after: 10\r\n");
        refusal_logged(s, "connections", addr, cap);
        return 1;
    }
    if (!a) {
        a = g_new0(addr_count, 1);
        snprintf(a->addr, sizeof a->addr, "%s", addr);
        g_hash_table_insert(s->addrs, a->addr, a);
    }
    a->http++;
    s->accepting = a;
    return 0;
}

/* LWS_CALLBACK_WSI_CREATE: lws makes its connection of the socket just
 * accepted (or of its own listening socket and pipes: not counted). */
static void conn_created(http_server *s, struct lws *wsi)
{
    if (!s->accepting)
        return;
    conn *c = g_new0(conn, 1);
    c->addr = s->accepting;
    s->accepting = NULL;
    g_hash_table_insert(s->conns, wsi, c);
}

/* LWS_CALLBACK_WSI_DESTROY */
static void conn_destroyed(http_server *s, struct lws *wsi)
{
    conn *c = g_hash_table_lookup(s->conns, wsi);
    if (!c)
        return;
    addr_release(s, c->addr, c->ws);
    g_hash_table_remove(s->conns, wsi);
}

bool http_conn_upgraded(http_server *s, struct lws *wsi)
{
    conn *c = g_hash_table_lookup(s->conns, wsi);
    if (!c || c->ws)
        return true;
    addr_count *a = c->addr;
    int cap = s->lim.max_ws_per_addr;
    if (cap > 0 && a->ws >= cap) {
        refusal_logged(s, "websockets", a->addr, cap);
        return false;
    }
    a->http--;
    a->ws++;
    c->ws = true;
    return true;
}

/* What lws's GLib event library makes of each connection: a GSource that
 * begins like this (lws_io_watcher_glib_subclass, the same in lws 4.1.6 and
 * in lws's tree today). */
typedef struct lws_glib_source {
    GSource base;
    struct lws *wsi;
} lws_glib_source;

/* lws closes a connection whose request line and headers overflow its header
 * table without a word, and calls nothing of ours first. It logs the
 * overflow, though, from inside the dispatch of that connection's GSource:
 * the connection is found from the source (and must be one we know, so that
 * a wrong guess costs the answer, nothing else) and gets its 431 before lws
 * closes it. A request pipelined behind another (sent before the first
 * answer came) is parsed from lws's idle source instead: it is closed
 * without the 431. */
static void headers_overflowed(void)
{
    GSource *src = g_main_current_source();
    if (!src)
        return;
    for (GSList *l = servers; l; l = l->next) {
        http_server *s = l->data;
        if (!s->lws_source_funcs || src->source_funcs != s->lws_source_funcs)
            continue;
        struct lws *wsi = ((lws_glib_source *)src)->wsi;
        conn *c = g_hash_table_lookup(s->conns, wsi);
        if (!c || c->answered)
            continue;
        c->answered = true;
        if (lws_partial_buffered(wsi))
            return;   /* an earlier answer is still going out */
        char msg[96];
        snprintf(msg, sizeof msg, "the request line and headers exceed the limit of %d bytes",
                 HEADER_MAX);
        answer_raw(lws_get_socket_fd(wsi), 431, "Request Header Fields Too Large",
                   "headers_too_large", "headers", msg, "");
        log_info("http", "headers too large status=431 limit=%d peer=%s", HEADER_MAX,
                 c->addr->addr);
        return;
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
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: return conn_accept(srv, user);
    case LWS_CALLBACK_WSI_CREATE: conn_created(srv, wsi); return 0;
    case LWS_CALLBACK_WSI_DESTROY: conn_destroyed(srv, wsi); break;
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
        headers_overflowed();
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
    servers = g_slist_prepend(servers, s);
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

void http_routes_foreach(const http_server *s, http_route_cb cb, void *ud)
{
    for (guint i = 0; i < s->routes->len; i++) {
        const route *rt = g_ptr_array_index(s->routes, i);
        char *pat = g_strconcat(rt->pattern, rt->prefix ? "*" : "", NULL);
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
    servers = g_slist_remove(servers, s);
    if (s->burst_timer)
        g_source_destroy(
            g_main_context_find_source_by_id(g_main_loop_get_context(s->loop), s->burst_timer));
    g_hash_table_destroy(s->conns);
    g_hash_table_destroy(s->addrs);
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
