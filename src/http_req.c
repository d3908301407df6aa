/* http_req: one HTTP request and its answer: the request read from lws's
 * header table (method, path, query, the headers gridcc uses), the helpers
 * handlers use, and the answer they fill (status, type, body, headers),
 * including answers given later from the loop (http_defer, http_complete). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"
#include "http_priv.h"

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

static void keep_valid_stop(req_priv *p);

void http_req_free(http_req *r)
{
    if (!r)
        return;
    keep_valid_stop(r->priv);
    form_stream_free(((req_priv *)r->priv)->fs);
    g_ptr_array_free(r->qkeys, TRUE);
    g_ptr_array_free(r->qvals, TRUE);
    g_byte_array_free(r->body, TRUE);
    g_string_free(r->out, TRUE);
    g_string_free(r->headers, TRUE);
    g_free(r->priv);
    g_free(r);
}

/* Accept-Encoding names gzip (or *) without q=0 (RFC 9110 12.5.3). */
bool http_accepts_gzip(const http_req *r)
{
    const char *h = r->accept_encoding;
    bool gzip = false, star = false, gzip_named = false;
    gchar **parts = g_strsplit(h, ",", -1);
    for (gchar **p = parts; *p; p++) {
        gchar **kv = g_strsplit(*p, ";", -1);
        if (!kv[0]) {   /* an empty item (", ,"): g_strsplit gives no strings at all */
            g_strfreev(kv);
            continue;
        }
        char *coding = g_strstrip(kv[0]);
        bool ok = true;
        for (gchar **q = kv + 1; *q; q++) {
            char *param = g_strstrip(*q);
            if (!g_ascii_strncasecmp(param, "q=", 2)) {
                double v;
                ok = !gc_parse_double(param + 2, "q", 0, 1, &v, NULL) && v > 0;
            }
        }
        if (!g_ascii_strcasecmp(coding, "gzip") || !g_ascii_strcasecmp(coding, "x-gzip")) {
            gzip_named = true;
            gzip = ok;
        } else if (!strcmp(coding, "*")) {
            star = ok;
        }
        g_strfreev(kv);
    }
    g_strfreev(parts);
    return gzip_named ? gzip : star;
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
    case GC_EFULL: status = 507; code = "insufficient_storage"; break;
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

/* lws hangs up a connection that has shown no two-way traffic for
 * secs_since_valid_hangup (70 s): not one whose answer is being worked on */
#define KEEP_VALID_S 20

static gboolean keep_valid(gpointer ud)
{
    req_priv *p = ud;
    if (!p->gone && p->wsi)
        lws_validity_confirmed(p->wsi);
    return G_SOURCE_CONTINUE;
}

static void keep_valid_stop(req_priv *p)
{
    if (p->keep_valid) {
        g_source_destroy(p->keep_valid);
        g_source_unref(p->keep_valid);
        p->keep_valid = NULL;
    }
}

void http_defer(http_req *r)
{
    req_priv *p = r->priv;
    p->deferred = true;
    /* the server is the slow party now (work off the loop: a cold tile, a
     * coverage, 10,000 features under ASan on a loaded machine): neither the
     * idle timeout nor the validity timer, both for clients that go quiet,
     * may close a connection whose answer is on its way. A client that
     * leaves is still seen (the socket closes, http_gone says so). */
    if (p->wsi) {
        lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
        lws_validity_confirmed(p->wsi);
        if (!p->keep_valid) {
            p->keep_valid = g_timeout_source_new_seconds(KEEP_VALID_S);
            g_source_set_callback(p->keep_valid, keep_valid, p, NULL);
            g_source_attach(p->keep_valid, g_main_loop_get_context(p->srv->loop));
        }
    }
}

bool http_gone(const http_req *r) { return ((req_priv *)r->priv)->gone; }

void http_complete(http_req *r)
{
    req_priv *p = r->priv;
    keep_valid_stop(p);
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

void http_copy_header(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t len)
{
    dst[0] = 0;
    if (lws_hdr_total_length(wsi, tok) > 0 && lws_hdr_total_length(wsi, tok) < (int)len)
        lws_hdr_copy(wsi, dst, (int)len, tok);
}

void http_req_parse(struct lws *wsi, http_req *r)
{
    r->method = method_of(wsi, &r->method_name, r->path, sizeof r->path);
    http_copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, r->authorization, sizeof r->authorization);
    http_copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, r->content_type, sizeof r->content_type);
    http_copy_header(wsi, WSI_TOKEN_HTTP_ACCEPT, r->accept, sizeof r->accept);
    http_copy_header(wsi, WSI_TOKEN_HOST, r->host, sizeof r->host);
    http_copy_header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, r->accept_encoding,
                     sizeof r->accept_encoding);
    http_copy_header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, r->if_none_match,
                     sizeof r->if_none_match);
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
