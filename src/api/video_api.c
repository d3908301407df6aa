/* video_api: the live view and snapshots over HTTP.
 *   WS  /video/{id}                      fMP4 for Media Source Extensions
 *   GET /api/cameras/{id}/snapshot.jpg   [?at=ms|ISO 8601] a JPEG
 * The websocket sends {"type":"init","mime","codec","width","height"} and
 * the init segment (binary), then media fragments (binary), the first one
 * holding a keyframe. Every viewer of a camera shares its one pipeline (the
 * engine's); each viewer has its own bounded queue, and one that falls
 * behind drops what is queued and waits for the next keyframe fragment,
 * told with {"type":"skip","dropped":N}. Camera states arrive as
 * {"type":"state","state","reason"}; a camera back after a fall sends a new
 * init. Viewers are staff at the desks (CAMERAS_READ_ROLES), with a token
 * in ?access_token= or the Authorization header. */
#include <string.h>

#include "api.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"
#include "gridcc/video.h"

#define VIDEO_ROLES CAMERAS_READ_ROLES
/* a viewer whose oldest queued fragment waits this long is behind and skips
 * to the next keyframe (mp4mux cuts a fragment per keyframe or per 100 ms,
 * so a count of fragments says little of time); the bytes bound a camera of
 * a very high rate */
#define QUEUE_MAX_MS 2000
#define QUEUE_MAX_BYTES (8u << 20)

typedef enum { OUT_TEXT, OUT_INIT, OUT_FRAG } out_kind;
typedef struct out {
    out_kind kind;
    GBytes *b;
    gint64 at; /* when it was queued (monotonic us) */
} out;

typedef struct viewer {
    api_env *e;
    http_ws *ws;
    char id[80];
    video_viewer *w;
    GQueue q; /* out* */
    size_t qbytes, qfrags;
    bool need_key; /* after an init or a skip: nothing until a keyframe */
    bool skipping; /* fell behind: what is dropped until then is counted */
    int64_t dropped, skips;
    bool closing;     /* takes nothing more */
    int close_status; /* closes once the queue is out (an error said first) */
    const char *close_reason;
} viewer;

static void out_free(out *o)
{
    g_bytes_unref(o->b);
    g_free(o);
}

static void pump(viewer *v)
{
    while (v->q.length && http_ws_writable_now(v->ws)) {
        out *o = g_queue_pop_head(&v->q);
        gsize n;
        const void *d = g_bytes_get_data(o->b, &n);
        v->qbytes -= n;
        if (o->kind == OUT_FRAG)
            v->qfrags--;
        int rc = o->kind == OUT_TEXT ? http_ws_send(v->ws, d, n) : http_ws_send_binary(v->ws, d, n);
        out_free(o);
        if (rc)
            return; /* close() follows */
    }
    if (v->q.length)
        http_ws_want_write(v->ws);
    else if (v->close_status)
        http_ws_close(v->ws, v->close_status, v->close_reason);
}

/* Says why in a last text message, then closes. */
static void finish(viewer *v, int status, const char *reason)
{
    v->closing = true;
    v->close_status = status;
    v->close_reason = reason;
    pump(v);
}

static void enqueue(viewer *v, out_kind kind, GBytes *b)
{
    out *o = g_new(out, 1);
    o->kind = kind;
    o->b = b;
    o->at = g_get_monotonic_time();
    v->qbytes += g_bytes_get_size(b);
    if (kind == OUT_FRAG)
        v->qfrags++;
    g_queue_push_tail(&v->q, o);
}

static void send_json(viewer *v, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enqueue(v, OUT_TEXT, g_bytes_new_take(s, strlen(s)));
    pump(v);
}

static void on_init(void *ud, const video_stream_info *i, GBytes *init)
{
    viewer *v = ud;
    /* fragments of the old stream still queued are of no use with the new init */
    for (GList *l = v->q.head, *next; l; l = next) {
        next = l->next;
        out *o = l->data;
        if (o->kind != OUT_TEXT) {
            v->qbytes -= g_bytes_get_size(o->b);
            if (o->kind == OUT_FRAG)
                v->qfrags--;
            out_free(o);
            g_queue_delete_link(&v->q, l);
        }
    }
    json_t *j = json_pack("{s:s,s:s,s:s}", "type", "init", "mime", i->mime, "codec", i->codec);
    json_object_set_new(j, "width", i->width ? json_integer(i->width) : json_null());
    json_object_set_new(j, "height", i->height ? json_integer(i->height) : json_null());
    json_object_set_new(j, "transcoded", json_boolean(i->transcoded));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enqueue(v, OUT_TEXT, g_bytes_new_take(s, strlen(s)));
    enqueue(v, OUT_INIT, g_bytes_ref(init));
    v->need_key = true;
    pump(v);
}

/* Drops the queued fragments (never an init or a text message). */
static int64_t drop_fragments(viewer *v)
{
    int64_t n = 0;
    for (GList *l = v->q.head, *next; l; l = next) {
        next = l->next;
        out *o = l->data;
        if (o->kind == OUT_FRAG) {
            v->qbytes -= g_bytes_get_size(o->b);
            v->qfrags--;
            out_free(o);
            g_queue_delete_link(&v->q, l);
            n++;
        }
    }
    return n;
}

static bool behind(viewer *v)
{
    for (GList *l = v->q.head; l; l = l->next) {
        out *o = l->data;
        if (o->kind == OUT_FRAG)
            return g_get_monotonic_time() - o->at > (gint64)QUEUE_MAX_MS * 1000;
    }
    return false;
}

static void on_fragment(void *ud, GBytes *frag, bool key)
{
    viewer *v = ud;
    if (v->closing)
        return;
    if (!v->need_key && v->qfrags && (v->qbytes > QUEUE_MAX_BYTES || behind(v))) {
        v->dropped += drop_fragments(v);
        v->need_key = v->skipping = true;
        v->skips++;
        log_info("video", "viewer behind, skipping to the next keyframe id=%s peer=%s skips=%lld",
                 v->id, http_ws_peer(v->ws), (long long)v->skips);
    }
    if (v->need_key) {
        if (!key) {
            v->dropped += v->skipping;
            return;
        }
        v->need_key = false;
        if (v->skipping) {
            v->skipping = false;
            send_json(v, json_pack("{s:s,s:I}", "type", "skip", "dropped", (json_int_t)v->dropped));
            v->dropped = 0;
        }
    }
    enqueue(v, OUT_FRAG, g_bytes_ref(frag));
    pump(v);
}

static void on_state(void *ud, const char *state, const char *reason)
{
    viewer *v = ud;
    if (v->closing)
        return;
    send_json(v, json_pack("{s:s,s:s,s:s}", "type", "state", "state", state, "reason", reason));
    if (!strcmp(state, "removed"))
        finish(v, 1000, "camera removed"); /* on_close lets go of v->w */
}

static const video_viewer_cb viewer_cb = {on_init, on_fragment, on_state};

static void *on_open(http_ws *ws, const http_req *r, void *ud)
{
    api_env *e = ud;
    viewer *v = g_new0(viewer, 1);
    v->e = e;
    v->ws = ws;
    g_queue_init(&v->q);
    g_strlcpy(v->id, r->path + strlen("/video/"), sizeof v->id);
    const char *tok = http_query(r, "access_token");
    if (!tok && !g_ascii_strncasecmp(r->authorization, "Bearer ", 7))
        tok = r->authorization + 7;
    store_user u;
    gc_err err = {0};
    if (!tok || !api_check_token(e, tok, VIDEO_ROLES, &u, &err)) {
        bool forbidden = tok && err.code == GC_EFORBIDDEN;
        log_info("video", "viewer refused id=%s peer=%s why=%s", v->id, http_ws_peer(ws),
                 tok ? err.msg : "no token");
        send_json(v,
                  json_pack("{s:s,s:s,s:s}", "type", "error", "code",
                            forbidden ? "forbidden" : "unauthorized", "message",
                            tok ? err.msg : "a token is needed: ?access_token= or Authorization"));
        finish(v, forbidden ? 4403 : 4401, forbidden ? "forbidden" : "unauthorized");
        return v;
    }
    /* ?codec=h264: a browser that cannot decode H.265 says so at once */
    const char *codec = http_query(r, "codec");
    bool h264 = codec && !strcmp(codec, "h264");
    if (codec && !h264 && strcmp(codec, "any")) {
        send_json(v, json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "code", "invalid", "field",
                               "codec", "message", "codec: h264 or any"));
        finish(v, 4400, "codec: h264 or any");
        return v;
    }
    v->w = e->video ? video_watch(e->video, v->id, h264, &viewer_cb, v) : NULL;
    if (!v->w) {
        send_json(v, json_pack("{s:s,s:s,s:s}", "type", "error", "code", "not_found", "message",
                               "no such camera"));
        finish(v, 4404, "no such camera");
        return v;
    }
    log_info("video", "viewer open id=%s peer=%s user=%s", v->id, http_ws_peer(ws), u.name);
    return v;
}

static void on_message(void *conn, const char *data, size_t len)
{
    viewer *v = conn;
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *want = json_string_value(json_object_get(j, "want"));
    if (type && !strcmp(type, "codec") && want && !strcmp(want, "h264")) {
        if (v->w && !v->closing)
            video_viewer_want_h264(v->w); /* the transcode's init follows */
    } else if (type && !strcmp(type, "codec")) {
        send_json(v, json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "code", "invalid", "field",
                               "want", "message", "want: only h264 may be asked for"));
    } else {
        send_json(v, json_pack("{s:s,s:s,s:s}", "type", "error", "code", "invalid", "message",
                               "messages: {\"type\":\"codec\",\"want\":\"h264\"}"));
    }
    json_decref(j);
}

static void on_writable(void *conn)
{
    pump(conn);
}

static void on_close(void *conn)
{
    viewer *v = conn;
    if (v->w) {
        video_unwatch(v->w);
        log_info("video", "viewer closed id=%s peer=%s skips=%lld", v->id, http_ws_peer(v->ws),
                 (long long)v->skips);
    }
    g_queue_clear_full(&v->q, (GDestroyNotify)out_free);
    g_free(v);
}

static const http_ws_handler ws_handler = {on_open, on_message, on_writable, on_close};

/* ---- snapshots ---- */

typedef struct snap {
    api_env *e;
    http_req *r;
} snap;

static void snap_done(void *ud, GBytes *jpeg, const gc_err *err)
{
    snap *s = ud;
    http_req *r = s->r;
    s->e->busy--;
    g_free(s);
    if (http_gone(r)) {
        http_complete(r);
        return;
    }
    if (jpeg) {
        gsize n;
        const char *d = g_bytes_get_data(jpeg, &n);
        http_reply(r, 200, "image/jpeg", d, n);
    } else if (err->code == GC_ECONFLICT) {
        http_reply_error(r, 503, "no_keyframe", err->field, "%s", err->msg);
        http_add_header(r, "Retry-After", "1");
    } else {
        http_reply_err(r, err);
    }
    http_complete(r);
}

static void h_snapshot(http_req *r, void *ud)
{
    api_env *e = ud;
    const char *id0 = r->path + strlen("/api/cameras/");
    char id[80];
    g_strlcpy(id, id0, MIN(sizeof id, (size_t)(strchr(id0, '/') - id0) + 1));
    const char *at = http_query(r, "at");
    int64_t at_ms = 0;
    if (at && !gc_time_parse_device(at, &at_ms)) {
        http_reply_error(r, 400, "invalid", "at",
                         "at: a time in ms since the epoch or ISO 8601, not \"%s\"", at);
        return;
    }
    if (!e->video) {
        http_reply_error(r, 503, "no_video", NULL, "the video engine is not running");
        return;
    }
    snap *s = g_new0(snap, 1);
    s->e = e;
    s->r = r;
    e->busy++;
    http_defer(r);
    video_snapshot(e->video, id, at_ms, snap_done, s);
}

void video_api_register(http_server *s, api_env *e)
{
    http_route_ws(s, "/video/*", VIDEO_ROLES, &ws_handler, 4096, e);
    http_route(s, "GET", "/api/cameras/*/snapshot.jpg", VIDEO_ROLES, 0, h_snapshot, e);
}
