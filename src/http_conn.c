/* http_conn: connections counted by client address, refused cheaply at
 * accept when an address holds too many, and the 431 for headers that
 * overflow lws's header table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gridcc/log.h"
#include "http_priv.h"

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
int http_conn_accept(http_server *s, const struct lws_filter_network_conn_args *f)
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
void http_conn_created(http_server *s, struct lws *wsi)
{
    if (!s->accepting)
        return;
    conn *c = g_new0(conn, 1);
    c->addr = s->accepting;
    s->accepting = NULL;
    g_hash_table_insert(s->conns, wsi, c);
}

/* LWS_CALLBACK_WSI_DESTROY */
void http_conn_destroyed(http_server *s, struct lws *wsi)
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
void http_conn_headers_overflowed(void)
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

void http_conn_server_add(http_server *s) { servers = g_slist_prepend(servers, s); }

void http_conn_server_remove(http_server *s)
{
    servers = g_slist_remove(servers, s);
    if (s->burst_timer)
        g_source_destroy(
            g_main_context_find_source_by_id(g_main_loop_get_context(s->loop), s->burst_timer));
    g_hash_table_destroy(s->conns);
    g_hash_table_destroy(s->addrs);
}
