/* http_ws: websocket endpoints on the HTTP server's port. The upgrade
 * request is parsed like any request; messages arrive whole; writes are made
 * from lws's writeable callback, or straight away when nothing of an earlier
 * write is still buffered (http_ws_writable_now). */
#include <stdio.h>
#include <string.h>

#include "http_priv.h"

typedef struct ws_route {
    char *path;
    unsigned roles;
    http_ws_handler h;
    size_t max_message;
    void *ud;
} ws_route;

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

/* An exact path wins; then the longest prefix (a path ending in a star). */
static ws_route *find_ws_route(http_server *s, const char *path)
{
    ws_route *best = NULL;
    size_t best_n = 0;
    for (guint i = 0; i < s->ws_routes->len; i++) {
        ws_route *rt = g_ptr_array_index(s->ws_routes, i);
        size_t n = strlen(rt->path);
        if (n && rt->path[n - 1] == '*') {
            if (!strncmp(rt->path, path, n - 1) && n - 1 > best_n) {
                best = rt;
                best_n = n - 1;
            }
        } else if (!strcmp(rt->path, path)) {
            return rt;
        }
    }
    return best;
}

static void ws_free(http_ws *ws)
{
    if (!ws)
        return;
    http_req_free(ws->upgrade);
    if (ws->rx)
        g_byte_array_free(ws->rx, TRUE);
    g_free(ws);
}

static int ws_send(http_ws *ws, const void *data, size_t len, enum lws_write_protocol kind)
{
    GByteArray *b = ws->srv->ws_buf;
    g_byte_array_set_size(b, (guint)(LWS_PRE + len));
    memcpy(b->data + LWS_PRE, data, len);
    int w = lws_write(ws->wsi, b->data + LWS_PRE, len, kind);
    if (b->len > (1u << 20))
        g_byte_array_set_size(b, 0);   /* one large message does not pin its buffer */
    return w < (int)len ? -1 : 0;
}

int http_ws_send(http_ws *ws, const char *data, size_t len)
{
    return ws_send(ws, data, len, LWS_WRITE_TEXT);
}

int http_ws_send_binary(http_ws *ws, const void *data, size_t len)
{
    return ws_send(ws, data, len, LWS_WRITE_BINARY);
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

void http_ws_routes_foreach(const http_server *s, http_route_cb cb, void *ud)
{
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

int http_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, pss *ps, http_server *srv,
                     void *in, size_t len)
{
    http_ws *ws = ps->ws;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        http_req *r = http_req_new(wsi, srv);
        http_req_parse(wsi, r);
        ws_route *rt = find_ws_route(srv, r->path);
        if (!rt) {
            log_warn("http", "websocket refused: no endpoint at %s peer=%s", r->path, r->peer);
            http_req_free(r);
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
        if (!ws || !http_conn_upgraded(srv, wsi))
            return -1;
        ws->conn = ws->rt->h.open(ws, ws->upgrade, ws->rt->ud);
        http_req_free(ws->upgrade);
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

void http_ws_routes_free(http_server *s)
{
    for (guint i = 0; i < s->ws_routes->len; i++) {
        ws_route *rt = g_ptr_array_index(s->ws_routes, i);
        g_free(rt->path);
        g_free(rt);
    }
    g_ptr_array_free(s->ws_routes, TRUE);
}
