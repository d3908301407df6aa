/* http_priv.h: what the three parts of the HTTP server share. http.c owns the
 * server, its connections, requests, routing and responses; http_form.c
 * parses forms as they arrive; http_ws.c runs websockets. Nothing outside
 * src/http*.c includes this: include/gridcc/http.h is the face. */
#ifndef GRIDCC_HTTP_PRIV_H
#define GRIDCC_HTTP_PRIV_H

#include <libwebsockets.h>

#include "gridcc/http.h"

/* a request's line and headers, together; lws's header table per connection */
#define HEADER_MAX 8192

struct http_server {
    struct lws_context *ctx;
    GMainLoop *loop;
    GPtrArray *routes;
    GPtrArray *ws_routes;
    http_authorize_fn authorize;  /* checks a route's roles before its handler */
    void *authorize_ud;
    lws_retry_bo_t retry;         /* websocket keep-alive */
    GByteArray *ws_buf;           /* LWS_PRE + message, reused by every send */
    http_limits lim;
    int port;
    enum log_level access_level;  /* of the one-line-per-request log */
    /* connections by client address (http.c's conn_*) */
    GHashTable *conns;            /* struct lws * → conn */
    GHashTable *addrs;            /* address → addr_count */
    struct addr_count *accepting; /* counted at accept, until lws makes its wsi */
    const GSourceFuncs *lws_source_funcs;   /* of lws's GSource per connection */
    guint burst_timer;            /* a burst of refusals is going on */
    unsigned burst_n, burst_recent;
};

typedef struct form_stream form_stream;

typedef struct req_priv {
    struct lws *wsi;
    http_server *srv;
    form_stream *fs;
    size_t max_body;
    size_t sent;
    gint64 t0;
    bool dispatched, deferred, ready, headers_sent, gone, body_rejected;
    GSource *keep_valid; /* while deferred: see http_defer */
} req_priv;

/* lws's per-session data: an HTTP transaction, or a websocket */
typedef struct pss {
    http_req *req;
    http_ws *ws;
} pss;

/* http_req.c */
void http_copy_header(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t len);
/* http_conn.c: the connection callbacks of the server, and the registry of
 * live servers lws's log hook needs */
int http_conn_accept(http_server *s, const struct lws_filter_network_conn_args *f);
void http_conn_created(http_server *s, struct lws *wsi);
void http_conn_destroyed(http_server *s, struct lws *wsi);
void http_conn_headers_overflowed(void);
void http_conn_server_add(http_server *s);
void http_conn_server_remove(http_server *s);
http_req *http_req_new(struct lws *wsi, http_server *srv);
void http_req_free(http_req *r);
/* Method, path, query and the headers gridcc reads, from lws's parsed headers. */
void http_req_parse(struct lws *wsi, http_req *r);

/* A websocket's connection is established: it leaves the count of its
 * address's HTTP connections for that of its websockets. False when the
 * address has max_ws_per_addr already (the caller closes it). */
bool http_conn_upgraded(http_server *s, struct lws *wsi);

/* http_form.c: a form body parsed while it arrives, length bytes declared */
form_stream *form_stream_new(struct lws *wsi, const char *const *names, int n, size_t length);
void form_stream_feed(form_stream *fs, const void *in, size_t len);
/* The body is complete (or lws thinks so): parses the held-back end. */
void form_stream_end(form_stream *fs);
size_t form_stream_got(const form_stream *fs);
/* True when the closing boundary came before the declared end of the body. */
bool form_stream_short(const form_stream *fs);
void form_stream_free(form_stream *fs);

/* http_ws.c: the websocket reasons of lws's callback; 0 to go on, non-zero
 * to close */
int http_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, pss *ps,
                     http_server *srv, void *in, size_t len);
void http_ws_routes_free(http_server *s);
void http_ws_routes_foreach(const http_server *s, http_route_cb cb, void *ud);

#endif
