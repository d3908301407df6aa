/* http: an HTTP/1.1 server on libwebsockets, driven by the GLib main loop.
 * It owns connections, limits (header and body sizes, idle time), routing
 * and JSON errors; handlers fill a response and return. Handlers run on the
 * loop; one that finishes later (work handed to a thread) calls
 * http_defer() and then http_complete(). */
#ifndef GRIDCC_HTTP_H
#define GRIDCC_HTTP_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"
#include "gridcc/log.h"
#include "gridcc/roles.h"

typedef struct http_server http_server;

typedef enum { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE,
               HTTP_OPTIONS, HTTP_OTHER } http_method;

typedef struct http_req {
    http_method method;
    const char *method_name;
    char path[1024];              /* URL-decoded path, no query */
    GPtrArray *qkeys, *qvals;     /* query parameters in order, decoded */
    char authorization[512];
    char content_type[256];
    char accept[512];
    char host[256];
    char accept_encoding[256];
    char if_none_match[256];
    char peer[64];
    char idempotency_key[128];    /* Idempotency-Key header, or "" */
    bool idempotency_too_long;
    GByteArray *body;
    void *user;                   /* per-request data for the handler's use */
    gc_who who;                   /* who is calling, once the route's authorizer has said */
    /* response */
    int status;
    const char *ctype;
    GString *out;
    GString *headers;             /* extra "Name: value\r\n" lines */
    /* private */
    void *priv;
} http_req;

typedef void (*http_handler)(http_req *r, void *ud);

typedef struct http_limits {
    size_t max_body;              /* default 1 MiB */
    int idle_timeout_s;           /* keep-alive and body silence; default 30 */
    int header_timeout_s;         /* to send a request's headers whole; default 10 */
    /* Connections open at once from one client address (websockets once
     * established are counted apart, by max_ws_per_addr); more are refused
     * when they connect, with a 503. 0: default 64; negative: no cap. */
    int max_conns_per_addr;
    int max_ws_per_addr;          /* 0: default 4096; negative: no cap */
} http_limits;

http_server *http_server_new(GMainLoop *loop, const char *bind, int port,
                             const http_limits *lim, gc_err *err);
void http_server_free(http_server *s);
int http_server_port(const http_server *s);
/* The level at which answered requests are logged (default LOG_INFO); 4xx
 * and 5xx answers are logged at LOG_INFO or above whatever this says. A port
 * that takes thousands of small requests a second logs them at LOG_DEBUG. */
void http_server_access_log(http_server *s, enum log_level ok_level);
/* ---- who may call a route ----
 * Every route declares it: a mask of roles (gridcc/roles.h), checked once by
 * the server's authorizer before the handler runs, or HTTP_PUBLIC. With
 * HTTP_OPTIONAL beside the roles, a request with no credential is served
 * as anonymous (r->who.role ROLE_NONE); one that sends a credential has it
 * checked. A handler may narrow further (a worker's own track). */
#define HTTP_PUBLIC 0x10000u
#define HTTP_OPTIONAL 0x20000u
/* True to go on, with r->who filled in; false once it has replied (401,
 * 403, 429). */
typedef bool (*http_authorize_fn)(void *ud, http_req *r, unsigned roles);
void http_server_authorize(http_server *s, http_authorize_fn fn, void *ud);

/* The last route added wins when several match. pattern: an exact path, a
 * prefix ending in '*', or a prefix and a suffix with one path segment
 * between (for /api/cameras/{id}/snapshot.jpg: "/api/cameras/" star
 * "/snapshot.jpg"). max_body overrides the default for this route (0: default). */
void http_route(http_server *s, const char *method, const char *pattern, unsigned roles,
                size_t max_body, http_handler h, void *ud);
/* The same for a route that takes forms: a multipart or urlencoded body is
 * parsed while it arrives (never held whole), keeping the text fields named
 * (names must outlive the server) and every file part; the handler then gets
 * it from http_form_parse. Other bodies arrive as usual. */
void http_route_form(http_server *s, const char *method, const char *pattern, unsigned roles,
                     size_t max_body, const char *const *names, int n, http_handler h, void *ud);
/* Every route as registered (websocket endpoints with method "WS"), for the
 * route table the tests check against README. */
typedef void (*http_route_cb)(void *ud, const char *method, const char *pattern, unsigned roles);
void http_routes_foreach(const http_server *s, http_route_cb cb, void *ud);

/* ---- request helpers ---- */
const char *http_query(const http_req *r, const char *key);   /* first value or NULL */
bool http_wants_html(const http_req *r);                     /* f=html, or Accept: text/html */
/* Accept-Encoding names gzip (or *) without q=0 (RFC 9110 12.5.3). */
bool http_accepts_gzip(const http_req *r);

/* The body as a JSON object, or NULL after replying 400 naming what is wrong. */
json_t *http_json_object(http_req *r);

/* ---- forms ----
 * A multipart/form-data or application/x-www-form-urlencoded body, parsed by
 * libwebsockets' lws_spa. Call from the handler itself (before http_defer). */
typedef struct http_form_file {
    char *name, *filename;        /* as the client sent them: untrusted */
    GByteArray *data;
} http_form_file;
typedef struct http_form {
    GHashTable *fields;           /* name → value, for the names asked for */
    GPtrArray *files;             /* http_form_file*, in order */
} http_form;
bool http_is_form(const http_req *r);
/* names: the text fields wanted (others are ignored); file parts are all
 * kept. GC_EINVAL when the body is not a well-formed form. On a route added
 * with http_route_form this hands over what was parsed on arrival (names
 * are then the route's). */
int http_form_parse(http_req *r, const char *const *names, int n, http_form *out, gc_err *err);
void http_form_clear(http_form *f);

/* ---- responses ---- */
void http_reply(http_req *r, int status, const char *ctype, const char *body, size_t len);
void http_reply_json(http_req *r, int status, json_t *j);    /* steals j */
/* {"error":{"status":…,"code":…,"field":…,"message":…}} */
void http_reply_error(http_req *r, int status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void http_reply_err(http_req *r, const gc_err *e);           /* status from e->code */
/* A Cache-Control added here replaces the default "no-store". */
void http_add_header(http_req *r, const char *name, const char *value);

/* For handlers that answer later, from the loop. */
void http_defer(http_req *r);
/* Sends the response now filled in; if the client left meanwhile, frees it. */
void http_complete(http_req *r);
/* True when the client has gone (the deferred response will be dropped). */
bool http_gone(const http_req *r);

/* ---- websockets ----
 * A websocket endpoint at an exact path, or at a prefix ending in '*'
 * ("/video/" and a star: the handler reads the rest of upgrade->path), on the same
 * port; an exact path wins over a prefix, a longer prefix over a shorter. The upgrade
 * request is parsed like any request (path, query, Authorization, peer);
 * open() gets it once the connection is established and returns the
 * connection's own state. Messages arrive whole (fragments joined, at most
 * max_message bytes: a larger one closes the connection with 1009).
 * Writes happen from writable(): the handler asks with http_ws_want_write()
 * and sends one message a call; or, when http_ws_writable_now() says so,
 * from anywhere outside the server's own callbacks. Ping/pong keep-alive is
 * libwebsockets': a peer silent for ping_s gets a PING, one that answers
 * nothing for hangup_s is closed. */
typedef struct http_ws http_ws;
typedef struct http_ws_handler {
    void *(*open)(http_ws *ws, const http_req *upgrade, void *ud);
    void (*message)(void *conn, const char *data, size_t len);
    void (*writable)(void *conn);
    void (*close)(void *conn);    /* the connection is gone; free conn */
} http_ws_handler;
/* roles: who may connect, as for http_route; the endpoint authenticates on
 * its own (a token may come in a first message), so this is its declaration. */
void http_route_ws(http_server *s, const char *path, unsigned roles, const http_ws_handler *h,
                   size_t max_message, void *ud);
/* Sends one text message; from writable(), or when http_ws_writable_now(). 0, or -1 when the
 * connection failed (close() follows). */
int http_ws_send(http_ws *ws, const char *data, size_t len);
/* The same for a binary message. */
int http_ws_send_binary(http_ws *ws, const void *data, size_t len);
void http_ws_want_write(http_ws *ws);
/* True while what was sent has not all reached the socket. */
bool http_ws_choked(http_ws *ws);
/* True when a message may be sent now, outside the writeable callback (the
 * socket has taken everything sent before); saves a POLLOUT round. */
bool http_ws_writable_now(http_ws *ws);
/* Closes with a status and a reason (at most 123 bytes) sent in the close
 * frame; a peer that reads nothing is dropped after a few seconds anyway. */
void http_ws_close(http_ws *ws, int status, const char *reason);
const char *http_ws_peer(const http_ws *ws);
/* Keep-alive timing for every websocket of the server (before any connects). */
void http_ws_keepalive(http_server *s, int ping_s, int hangup_s);

#endif
