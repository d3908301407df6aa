/* video_rtsp: cameras read over RTSP/TCP without rtspsrc (video_rtsp.h).
 *
 * Threads. A session's set-up runs on a worker of a pool: blocking calls of
 * GstRTSPConnection, each bounded, the whole within SETUP_DEADLINE_S; close
 * and the deadline end a wait by shutting the socket down. Then the reading
 * thread owns it: holding r->lock for one session at a time it reads, cuts
 * and pushes, and sends the keep-alives; close takes the session out of the
 * epoll set under the same lock, so once that is done nothing reads it any
 * more. The epoll set names sessions by number, never by pointer: a session
 * closed between epoll_wait and the lock is simply not found. Lock order:
 * r->lock, then s->lock; never the other way. */
#include "video_rtsp.h"

#include <errno.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/rtsp/rtsp.h>
#include <gst/sdp/sdp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gridcc/log.h"

/* what one read takes at most; a buffer holds that and one whole packet */
#define READ_SIZE (64 * 1024)
#define BUF_SIZE (READ_SIZE + 4 + 65535)
/* an RTSP message on the interleaved stream (a keep-alive's reply) whose
 * header runs longer than this is not one */
#define MAX_HEADER 8192
#define WORKERS 64
/* the whole set-up (connect to PLAY) ends by then, however a camera
 * trickles its replies (the reading thread shuts its socket down) */
#define SETUP_DEADLINE_S 15
/* a reply's body (the SDP) at most; interleaved packets ahead of a reply */
#define MAX_BODY (64 * 1024)
#define MAX_AHEAD 1000
/* a keep-alive's or TEARDOWN's send (made only when the socket has room) */
#define SEND_US (100 * 1000)
/* After each round of reading, the thread sleeps this long, so the next
 * round finds every camera's socket with a frame or so in it (a frame's
 * time at 25 fps): woken for every camera's every frame, the thread and
 * mp4mux's (one a camera) spent their time being switched in and out. It
 * adds 20 ms on average to a frame's way to the screen, and saves a third
 * of the CPU at 100 cameras (bench/bench_video.py). */
#define ROUND_US 40000
/* RTP time jumping more than this (a camera's restart) is a discontinuity */
#define MAX_JUMP_S 10

struct video_rtsp {
    GMutex lock; /* reading, starting, and the reading of any session in it */
    GHashTable *reading; /* id → session, those in the epoll set */
    GHashTable *starting; /* id → session, those a worker sets up */
    guint64 next_id;
    int ep, wake;
    bool quit;
    GThread *thread;
    GThreadPool *workers;
};

typedef enum { W_QUEUED, W_RUNNING, W_DONE } work_state;

struct video_rtsp_session {
    video_rtsp *r;
    guint64 id;
    char *url;
    gint64 timeout_us;
    video_rtsp_cb cb;
    void *ud;
    /* lock guards work, closing, failed, and conn and sock for interrupt() */
    GMutex lock;
    GCond cond;
    work_state work;
    bool closing, failed;
    GstRTSPConnection *conn;
    GSocket *sock;      /* the connection's, once connected: shut down to end a wait */
    gint64 deadline_us; /* the set-up's end, whatever its waits' */
    GstRTSPUrl *u;
    int cseq;
    char *session, *play_uri;
    gint64 keepalive_us, next_keepalive_us;
    /* the reading thread's */
    GstPad *pad;
    int fd, channel;
    guint clock_rate;
    guint8 *buf;
    size_t len;
    bool have_ts, discont;
    guint32 last_ts;
    gint64 ext; /* RTP time since the first packet, unwrapped */
    guint64 dropped;
    bool refused; /* the branch refused a packet: the session is over */
};

static void session_free(video_rtsp_session *s)
{
    if (s->sock)
        g_object_unref(s->sock);
    if (s->conn)
        gst_rtsp_connection_free(s->conn); /* closes the socket */
    if (s->u)
        gst_rtsp_url_free(s->u);
    if (s->pad) { /* unlinked first: the branch keeps no pointer to a pad gone */
        GstPad *peer = gst_pad_get_peer(s->pad);
        if (peer) {
            gst_pad_unlink(s->pad, peer);
            gst_object_unref(peer);
        }
        gst_pad_set_active(s->pad, FALSE);
        gst_object_unref(s->pad);
    }
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
    g_free(s->buf);
    g_free(s->url);
    g_free(s->session);
    g_free(s->play_uri);
    g_free(s);
}

/* The session is over: its owner hears once (never after close began). */
static void fail(video_rtsp_session *s, GstResourceError code, const char *debug, const char *fmt,
                 ...) G_GNUC_PRINTF(4, 5);
static void fail(video_rtsp_session *s, GstResourceError code, const char *debug, const char *fmt,
                 ...)
{
    g_mutex_lock(&s->lock);
    bool tell = !s->closing && !s->failed;
    s->failed = true;
    g_mutex_unlock(&s->lock);
    if (!tell)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    s->cb.error(s->ud, code, text, debug);
    g_free(text);
}

/* ---- set-up (a worker) ---- */

static GstRTSPMessage *request(video_rtsp_session *s, GstRTSPMethod m, const char *uri)
{
    GstRTSPMessage *req = NULL;
    gst_rtsp_message_new_request(&req, m, uri);
    char cseq[16];
    snprintf(cseq, sizeof cseq, "%d", ++s->cseq);
    gst_rtsp_message_add_header(req, GST_RTSP_HDR_CSEQ, cseq);
    gst_rtsp_message_add_header(req, GST_RTSP_HDR_USER_AGENT, "gridcc");
    if (s->session)
        gst_rtsp_message_add_header(req, GST_RTSP_HDR_SESSION, s->session);
    return req;
}

/* A credential of the camera's challenge, Digest before Basic; FALSE when
 * it offers neither. */
static gboolean take_challenge(video_rtsp_session *s, GstRTSPMessage *resp)
{
    GstRTSPAuthCredential **creds =
        gst_rtsp_message_parse_auth_credentials(resp, GST_RTSP_HDR_WWW_AUTHENTICATE);
    GstRTSPAuthCredential *pick = NULL;
    for (GstRTSPAuthCredential **c = creds; c && *c; c++)
        if ((*c)->scheme == GST_RTSP_AUTH_DIGEST ||
            ((*c)->scheme == GST_RTSP_AUTH_BASIC && !pick))
            pick = *c;
    if (pick) {
        gst_rtsp_connection_clear_auth_params(s->conn);
        for (GstRTSPAuthParam **p = pick->params; p && *p; p++)
            if ((*p)->name && (*p)->value)
                gst_rtsp_connection_set_auth_param(s->conn, (*p)->name, (*p)->value);
        gst_rtsp_connection_set_auth(s->conn, pick->scheme, s->u->user, s->u->passwd);
    }
    if (creds)
        gst_rtsp_auth_credentials_free(creds);
    return pick != NULL;
}

char *video_rtsp_session_header(const char *value, gint64 *timeout_s)
{
    char **parts = g_strsplit(value, ";", -1);
    char *id = parts[0] ? g_strdup(g_strstrip(parts[0])) : NULL;
    gint64 t = 60;
    for (char **p = parts[0] ? parts + 1 : parts; *p; p++) {
        char *v = g_strstrip(*p);
        guint64 n;
        if (!g_ascii_strncasecmp(v, "timeout=", 8) &&
            g_ascii_string_to_unsigned(v + 8, 10, 1, 86400, &n, NULL))
            t = (gint64)n;
    }
    g_strfreev(parts);
    if (id && (!*id || strlen(id) > 256)) {
        g_free(id);
        id = NULL;
    }
    if (timeout_s)
        *timeout_s = t;
    return id;
}

/* fail() for a GstRTSPResult (its text is allocated) */
static void fail_res(video_rtsp_session *s, GstResourceError code, GstRTSPResult res,
                     const char *what)
{
    char *text = gst_rtsp_strresult(res);
    fail(s, code, res == GST_RTSP_ETIMEOUT ? "Timeout" : "", "%s: %s", what, text);
    g_free(text);
}

/* Sends req (taken) and waits for its reply: 200, or the session fails (a
 * 401 is answered once with the URL's credentials). NULL when it failed. */
static GstRTSPMessage *exchange(video_rtsp_session *s, GstRTSPMessage *req)
{
    const char *what = gst_rtsp_method_as_text(req->type_data.request.method);
    bool authed = false;
    for (;;) {
        GstRTSPResult res = gst_rtsp_connection_send_usec(s->conn, req, s->timeout_us);
        if (res != GST_RTSP_OK) {
            char *w = g_strdup_printf("%s not sent", what);
            fail_res(s, GST_RESOURCE_ERROR_OPEN_READ_WRITE, res, w);
            g_free(w);
            break;
        }
        GstRTSPMessage *resp = NULL;
        gst_rtsp_message_new(&resp);
        int ahead = 0;
        do { /* data ahead of the reply is not ours yet */
            gst_rtsp_message_unset(resp);
            res = gst_rtsp_connection_receive_usec(s->conn, resp, s->timeout_us);
        } while (res == GST_RTSP_OK && gst_rtsp_message_get_type(resp) == GST_RTSP_MESSAGE_DATA &&
                 ++ahead < MAX_AHEAD);
        GstRTSPStatusCode code = 0;
        if (res != GST_RTSP_OK) {
            char *w = g_strdup_printf("no reply to %s", what);
            fail_res(s, GST_RESOURCE_ERROR_OPEN_READ_WRITE, res, w);
            g_free(w);
        } else if (gst_rtsp_message_parse_response(resp, &code, NULL, NULL)) {
            fail(s, GST_RESOURCE_ERROR_OPEN_READ_WRITE, "", "no reply to %s: not a response", what);
        } else if (code == GST_RTSP_STS_OK) {
            gst_rtsp_message_free(req);
            return resp;
        } else if (code == GST_RTSP_STS_UNAUTHORIZED && !authed && s->u->user &&
                   take_challenge(s, resp)) {
            authed = true;
            gst_rtsp_message_free(resp);
            char cseq[16];
            snprintf(cseq, sizeof cseq, "%d", ++s->cseq);
            gst_rtsp_message_remove_header(req, GST_RTSP_HDR_CSEQ, -1);
            gst_rtsp_message_add_header(req, GST_RTSP_HDR_CSEQ, cseq);
            gst_rtsp_message_remove_header(req, GST_RTSP_HDR_AUTHORIZATION, -1);
            continue;
        } else {
            GstResourceError e = code == GST_RTSP_STS_UNAUTHORIZED ? GST_RESOURCE_ERROR_NOT_AUTHORIZED
                                 : code == GST_RTSP_STS_NOT_FOUND  ? GST_RESOURCE_ERROR_NOT_FOUND
                                                                   : GST_RESOURCE_ERROR_OPEN_READ;
            fail(s, e, "", "%s answered %d %s", what, code, gst_rtsp_status_as_text(code));
        }
        gst_rtsp_message_free(resp);
        break;
    }
    gst_rtsp_message_free(req);
    return NULL;
}

/* control resolved against base (RFC 2326 C.1.1: absolute, "*", relative) */
static char *control_uri(const char *base, const char *control)
{
    if (!control || !*control || !strcmp(control, "*"))
        return g_strdup(base);
    if (strstr(control, "://"))
        return g_strdup(control);
    return g_strdup_printf("%s%s%s", base, g_str_has_suffix(base, "/") ? "" : "/", control);
}

/* The first video medium of the SDP that carries RTP. */
static const GstSDPMedia *video_media(const GstSDPMessage *sdp)
{
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(sdp, i);
        if (!g_strcmp0(gst_sdp_media_get_media(m), "video") && gst_sdp_media_formats_len(m) &&
            g_str_has_prefix(gst_sdp_media_get_proto(m), "RTP/"))
            return m;
    }
    return NULL;
}

static bool setup_stream(video_rtsp_session *s, GstRTSPMessage *described, const char *req_uri)
{
    guint8 *body = NULL;
    guint blen = 0;
    gst_rtsp_message_get_body(described, &body, &blen);
    GstSDPMessage *sdp = NULL;
    gst_sdp_message_new(&sdp);
    const GstSDPMedia *m = NULL;
    if (!body || gst_sdp_message_parse_buffer(body, blen, sdp) != GST_SDP_OK ||
        !(m = video_media(sdp))) {
        gst_sdp_message_free(sdp);
        fail(s, GST_RESOURCE_ERROR_NOT_FOUND, "", "its SDP has no video stream");
        return false;
    }
    int pt = atoi(gst_sdp_media_get_format(m, 0));
    GstCaps *caps = gst_sdp_media_get_caps_from_media(m, pt);
    if (!caps) {
        gst_sdp_message_free(sdp);
        fail(s, GST_RESOURCE_ERROR_NOT_FOUND, "", "its SDP's video has no rtpmap");
        return false;
    }
    gst_sdp_message_attributes_to_caps(sdp, caps);
    gst_sdp_media_attributes_to_caps(m, caps);
    GstStructure *st = gst_caps_get_structure(caps, 0);
    gst_structure_set_name(st, "application/x-rtp");
    gint rate = 0;
    gst_structure_get_int(st, "clock-rate", &rate);
    s->clock_rate = rate > 0 ? (guint)rate : 90000;

    gchar *base = NULL;
    if (gst_rtsp_message_get_header(described, GST_RTSP_HDR_CONTENT_BASE, &base, 0) != GST_RTSP_OK &&
        gst_rtsp_message_get_header(described, GST_RTSP_HDR_CONTENT_LOCATION, &base, 0) != GST_RTSP_OK)
        base = (gchar *)req_uri;
    char *setup_uri = control_uri(base, gst_sdp_media_get_attribute_val(m, "control"));
    s->play_uri = control_uri(base, gst_sdp_message_get_attribute_val(sdp, "control"));
    if (!gst_sdp_message_get_attribute_val(sdp, "control")) {
        g_free(s->play_uri);
        s->play_uri = g_strdup(req_uri);
    }
    gst_sdp_message_free(sdp);

    /* the owner says whether it reads this codec before anything is set up */
    s->pad = s->cb.stream(s->ud, caps);
    gst_caps_unref(caps);
    if (!s->pad) {
        g_free(setup_uri);
        g_mutex_lock(&s->lock);
        s->failed = true; /* the owner said why */
        g_mutex_unlock(&s->lock);
        return false;
    }

    GstRTSPMessage *req = request(s, GST_RTSP_SETUP, setup_uri);
    g_free(setup_uri);
    gst_rtsp_message_add_header(req, GST_RTSP_HDR_TRANSPORT, "RTP/AVP/TCP;unicast;interleaved=0-1");
    GstRTSPMessage *resp = exchange(s, req);
    if (!resp)
        return false;
    gchar *tr = NULL, *sess = NULL;
    GstRTSPTransport *t = NULL;
    gst_rtsp_transport_new(&t);
    bool ok = gst_rtsp_message_get_header(resp, GST_RTSP_HDR_TRANSPORT, &tr, 0) == GST_RTSP_OK &&
              gst_rtsp_transport_parse(tr, t) == GST_RTSP_OK &&
              t->lower_transport == GST_RTSP_LOWER_TRANS_TCP && t->interleaved.min <= 255 &&
              gst_rtsp_message_get_header(resp, GST_RTSP_HDR_SESSION, &sess, 0) == GST_RTSP_OK;
    gint64 timeout_s = 60;
    if (ok && !(s->session = video_rtsp_session_header(sess, &timeout_s)))
        ok = false;
    if (ok) {
        s->channel = t->interleaved.min >= 0 ? t->interleaved.min : 0;
        s->keepalive_us = CLAMP(timeout_s, 2, 3600) * G_USEC_PER_SEC / 2;
    }
    gst_rtsp_transport_free(t);
    gst_rtsp_message_free(resp);
    if (!ok) {
        fail(s, GST_RESOURCE_ERROR_OPEN_READ, "", "SETUP gave no interleaved TCP transport or no session");
        return false;
    }
    req = request(s, GST_RTSP_PLAY, s->play_uri);
    gst_rtsp_message_add_header(req, GST_RTSP_HDR_RANGE, "npt=0-");
    resp = exchange(s, req);
    if (!resp)
        return false;
    gst_rtsp_message_free(resp);
    return true;
}

static bool set_up(video_rtsp_session *s)
{
    GstRTSPConnection *conn = NULL;
    if (gst_rtsp_url_parse(s->url, &s->u) != GST_RTSP_OK ||
        gst_rtsp_connection_create(s->u, &conn) != GST_RTSP_OK) {
        fail(s, GST_RESOURCE_ERROR_NOT_FOUND, "", "not an rtsp:// URL");
        return false;
    }
    gst_rtsp_connection_set_content_length_limit(conn, MAX_BODY);
    g_mutex_lock(&s->lock);
    s->conn = conn;
    bool closing = s->closing;
    g_mutex_unlock(&s->lock);
    if (closing)
        return false;
    GstRTSPResult res = gst_rtsp_connection_connect_usec(conn, s->timeout_us);
    if (res != GST_RTSP_OK) {
        fail_res(s, GST_RESOURCE_ERROR_OPEN_READ_WRITE, res, "cannot connect");
        return false;
    }
    /* GstRTSPConnection stops heeding its cancellable once a message has
     * begun: the socket itself is shut down to end a wait (close, deadline) */
    g_mutex_lock(&s->lock);
    s->sock = g_object_ref(gst_rtsp_connection_get_read_socket(conn));
    closing = s->closing || s->failed; /* the deadline may have passed meanwhile */
    g_mutex_unlock(&s->lock);
    if (closing)
        return false;
    char *uri = gst_rtsp_url_get_request_uri(s->u); /* no credentials in it */
    GstRTSPMessage *req = request(s, GST_RTSP_DESCRIBE, uri);
    gst_rtsp_message_add_header(req, GST_RTSP_HDR_ACCEPT, "application/sdp");
    GstRTSPMessage *resp = exchange(s, req);
    bool ok = resp && setup_stream(s, resp, uri);
    if (resp)
        gst_rtsp_message_free(resp);
    g_free(uri);
    return ok;
}

static void reader_add(video_rtsp_session *s);

static void work(gpointer data, gpointer user)
{
    video_rtsp_session *s = data;
    g_mutex_lock(&s->lock);
    if (s->closing) { /* closed while queued: it was left to us */
        g_mutex_unlock(&s->lock);
        session_free(s);
        return;
    }
    s->work = W_RUNNING;
    s->deadline_us = g_get_monotonic_time() + SETUP_DEADLINE_S * G_USEC_PER_SEC;
    g_mutex_unlock(&s->lock);
    video_rtsp *r = s->r;
    g_mutex_lock(&r->lock);
    g_hash_table_insert(r->starting, &s->id, s);
    g_mutex_unlock(&r->lock);
    bool ok = set_up(s);
    g_mutex_lock(&r->lock);
    g_hash_table_remove(r->starting, &s->id);
    g_mutex_unlock(&r->lock);
    g_mutex_lock(&s->lock);
    bool closing = s->closing;
    g_mutex_unlock(&s->lock);
    /* not under s->lock: never s->lock, then r->lock (the reading thread
     * takes them the other way); close waits for W_DONE, then takes it out */
    if (ok && !closing)
        reader_add(s);
    g_mutex_lock(&s->lock);
    s->work = W_DONE;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

/* s->lock held: ends whatever wait the set-up is in */
static void interrupt(video_rtsp_session *s)
{
    if (s->conn)
        gst_rtsp_connection_flush(s->conn, TRUE);
    if (s->sock)
        g_socket_shutdown(s->sock, TRUE, TRUE, NULL);
}

/* ---- reading (the reading thread, under r->lock but for reader_add) ---- */

static void reader_add(video_rtsp_session *s)
{
    video_rtsp *r = s->r;
    s->fd = g_socket_get_fd(s->sock);
    s->buf = g_malloc(BUF_SIZE);
    s->next_keepalive_us = g_get_monotonic_time() + s->keepalive_us;
    g_mutex_lock(&r->lock);
    g_hash_table_insert(r->reading, &s->id, s);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = s->id};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, s->fd, &ev))
        log_warn("video", "epoll_ctl: %s", g_strerror(errno));
    g_mutex_unlock(&r->lock);
}

static void reader_drop(video_rtsp_session *s)
{
    epoll_ctl(s->r->ep, EPOLL_CTL_DEL, s->fd, NULL);
    g_hash_table_remove(s->r->reading, &s->id);
}

/* FALSE when the branch refused the stream (the session is over) */
static bool push_rtp(video_rtsp_session *s, const guint8 *p, size_t len)
{
    if (len < 12) { /* not even an RTP header */
        s->dropped++;
        return true;
    }
    GstBuffer *b = gst_buffer_new_memdup(p, len);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(b, GST_MAP_READ, &rtp)) {
        if (!s->dropped++)
            log_debug("video", "rtsp: a packet on the video channel is not RTP; dropped");
        gst_buffer_unref(b);
        return true;
    }
    guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
    gst_rtp_buffer_unmap(&rtp);
    gint64 d = s->have_ts ? (gint32)(ts - s->last_ts) : 0;
    if (d > (gint64)s->clock_rate * MAX_JUMP_S || d < -(gint64)s->clock_rate * MAX_JUMP_S) {
        d = MAX(s->clock_rate / 25, 1); /* the camera started again: on from here */
        s->discont = true;
    }
    s->have_ts = true;
    s->last_ts = ts;
    s->ext += d;
    /* a second ahead of the first packet keeps B-frames' earlier times above 0 */
    gint64 t = s->ext + s->clock_rate;
    GST_BUFFER_PTS(b) = gst_util_uint64_scale((guint64)MAX(t, 0), GST_SECOND, s->clock_rate);
    if (s->discont) {
        GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
        s->discont = false;
    }
    /* the branch's elements tell their own errors on the bus; a refusal
     * that nothing else reports (caps it cannot take) ends the session */
    GstFlowReturn flow = gst_pad_push(s->pad, b);
    if (flow >= GST_FLOW_EOS || flow == GST_FLOW_FLUSHING)
        return true;
    fail(s, GST_RESOURCE_ERROR_FAILED, "", "the codec branch refused the stream: %s",
         gst_flow_get_name(flow));
    return false;
}

/* The end of an RTSP message's header at p (avail bytes, at most
 * MAX_HEADER looked at): past its blank line ("\r\n\r\n" or "\n\n"), 0 when
 * not yet there. */
static size_t header_end(const guint8 *p, size_t avail)
{
    gssize n = (gssize)MIN(avail, MAX_HEADER);
    const char *crlf = g_strstr_len((const char *)p, n, "\r\n\r\n");
    const char *lf = g_strstr_len((const char *)p, n, "\n\n");
    if (lf && (!crlf || lf < crlf))
        return (size_t)(lf - (const char *)p) + 2;
    return crlf ? (size_t)(crlf - (const char *)p) + 4 : 0;
}

gssize video_rtsp_cut(const guint8 *buf, size_t len, video_rtsp_packet_fn fn, void *ud)
{
    size_t at = 0;
    while (at < len) {
        const guint8 *p = buf + at;
        if (p[0] == '\r' || p[0] == '\n') { /* between messages, as GStreamer's parser allows */
            at++;
            continue;
        }
        if (len - at < 4)
            break;
        if (p[0] == '$') {
            size_t n = (size_t)p[2] << 8 | p[3];
            if (len - at < 4 + n)
                break;
            fn(ud, p[1], p + 4, n);
            at += 4 + n;
            continue;
        }
        /* an RTSP message: a keep-alive's reply, or the camera's request */
        size_t avail = len - at;
        if (!g_ascii_isupper(p[0]))
            return -1;
        size_t hlen = header_end(p, avail);
        if (!hlen) {
            if (avail >= MAX_HEADER)
                return -1;
            break;
        }
        guint64 body = 0;
        char *head = g_strndup((const char *)p, hlen);
        char **lines = g_strsplit(head, "\n", -1);
        bool bad = false;
        for (char **l = lines; *l; l++)
            if (!g_ascii_strncasecmp(*l, "Content-Length:", 15)) {
                char *v = g_strstrip(*l + 15);
                bad = !g_ascii_string_to_unsigned(v, 10, 0, MAX_HEADER, &body, NULL);
            }
        g_strfreev(lines);
        g_free(head);
        if (bad)
            return -1;
        if (avail < hlen + body)
            break;
        at += hlen + (size_t)body;
    }
    return (gssize)at;
}

static void on_cut(void *ud, guint8 channel, const guint8 *p, size_t len)
{
    video_rtsp_session *s = ud;
    if (channel == s->channel && !s->refused && !push_rtp(s, p, len))
        s->refused = true; /* RTCP and other channels are read past */
}

/* reads a socket takes at most in a round: a camera that sends faster than
 * it is read waits for the next round, the others are read first (256 KiB
 * a round: 50 Mbit/s a camera at 40 ms rounds, more when the rounds follow
 * each other without a sleep, as they do while any camera has more) */
#define MAX_READS 4

/* Reads what the socket has, up to MAX_READS: TRUE when it has more. */
static bool session_read(video_rtsp_session *s)
{
    for (int reads = 0; reads < MAX_READS; reads++) {
        size_t room = MIN((size_t)READ_SIZE, BUF_SIZE - s->len);
        ssize_t n = recv(s->fd, s->buf + s->len, room, MSG_DONTWAIT);
        int err = errno;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
            return false;
        if (n <= 0) {
            reader_drop(s);
            fail(s, GST_RESOURCE_ERROR_READ, "", "%s",
                 n == 0 ? "the camera closed the connection" : g_strerror(err));
            return false;
        }
        s->len += (size_t)n;
        gssize at = video_rtsp_cut(s->buf, s->len, on_cut, s);
        if (s->refused) { /* push_rtp said why */
            reader_drop(s);
            return false;
        }
        if (at < 0) {
            reader_drop(s);
            fail(s, GST_RESOURCE_ERROR_READ, "", "the camera sent what is neither RTP nor RTSP");
            return false;
        }
        memmove(s->buf, s->buf + at, s->len - (size_t)at);
        s->len -= (size_t)at;
        if ((size_t)n < room)
            return false; /* the socket had no more */
    }
    return true;
}

/* A request sent only when the socket has room for it: the thread that
 * reads every camera never waits on one that does not read (GstRTSPConnection
 * rounds a send's timeout up to whole seconds). FALSE when it was not sent. */
static bool send_if_room(video_rtsp_session *s, GstRTSPMethod m)
{
    struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
    if (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLOUT))
        return false;
    GstRTSPMessage *req = request(s, m, s->play_uri);
    GstRTSPResult res = gst_rtsp_connection_send_usec(s->conn, req, SEND_US);
    gst_rtsp_message_free(req);
    return res == GST_RTSP_OK;
}

static void keepalive(video_rtsp_session *s, gint64 now)
{
    if (now < s->next_keepalive_us)
        return;
    /* not writable now: tried again in a second, well within the timeout */
    if (send_if_room(s, GST_RTSP_OPTIONS))
        s->next_keepalive_us = now + s->keepalive_us;
}

/* Once a second: keep-alives, and set-ups past their deadline ended. */
static void housekeeping(video_rtsp *r, gint64 now)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, r->reading);
    while (g_hash_table_iter_next(&it, &k, &v))
        keepalive(v, now);
    g_hash_table_iter_init(&it, r->starting);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        video_rtsp_session *s = v;
        g_mutex_lock(&s->lock);
        if (now > s->deadline_us && !s->failed) {
            s->deadline_us = G_MAXINT64;
            interrupt(s);
            g_mutex_unlock(&s->lock);
            fail(s, GST_RESOURCE_ERROR_OPEN_READ_WRITE, "Timeout",
                 "the set-up took more than %d s", SETUP_DEADLINE_S);
            continue;
        }
        g_mutex_unlock(&s->lock);
    }
}

static gpointer reader_main(gpointer ud)
{
    video_rtsp *r = ud;
    gint64 next_check = 0;
    for (;;) {
        struct epoll_event ev[256];
        int n = epoll_wait(r->ep, ev, G_N_ELEMENTS(ev), 1000);
        bool more = n == (int)G_N_ELEMENTS(ev);
        /* the lock a session at a time: a close waits for one read, not a round */
        for (int i = 0; i < n; i++) {
            guint64 id = ev[i].data.u64;
            if (!id) {
                guint64 x;
                if (read(r->wake, &x, sizeof x) < 0)
                    continue;
                continue;
            }
            g_mutex_lock(&r->lock);
            video_rtsp_session *s = g_hash_table_lookup(r->reading, &id);
            if (s && session_read(s))
                more = true;
            g_mutex_unlock(&r->lock);
        }
        g_mutex_lock(&r->lock);
        if (r->quit) {
            g_mutex_unlock(&r->lock);
            return NULL;
        }
        gint64 now = g_get_monotonic_time();
        if (now >= next_check) {
            next_check = now + G_USEC_PER_SEC;
            housekeeping(r, now);
        }
        g_mutex_unlock(&r->lock);
        if (n > 0 && !more)
            g_usleep(ROUND_US);
    }
}

/* ---- the face ---- */

video_rtsp *video_rtsp_new(void)
{
    video_rtsp *r = g_new0(video_rtsp, 1);
    g_mutex_init(&r->lock);
    r->reading = g_hash_table_new(g_int64_hash, g_int64_equal);
    r->starting = g_hash_table_new(g_int64_hash, g_int64_equal);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(r->ep, EPOLL_CTL_ADD, r->wake, &ev);
    r->thread = g_thread_new("rtsp-read", reader_main, r);
    r->workers = g_thread_pool_new(work, r, WORKERS, FALSE, NULL);
    return r;
}

void video_rtsp_free(video_rtsp *r)
{
    if (!r)
        return;
    /* waits for the queued set-ups (closed: they only free themselves) */
    g_thread_pool_free(r->workers, FALSE, TRUE);
    g_mutex_lock(&r->lock);
    r->quit = true;
    g_mutex_unlock(&r->lock);
    guint64 one = 1;
    if (write(r->wake, &one, sizeof one) < 0)
        log_warn("video", "rtsp: cannot wake the reading thread: %s", g_strerror(errno));
    g_thread_join(r->thread);
    close(r->ep);
    close(r->wake);
    g_hash_table_destroy(r->reading);
    g_hash_table_destroy(r->starting);
    g_mutex_clear(&r->lock);
    g_free(r);
}

video_rtsp_session *video_rtsp_open(video_rtsp *r, const char *url, int timeout_ms,
                                    const video_rtsp_cb *cb, void *ud)
{
    video_rtsp_session *s = g_new0(video_rtsp_session, 1);
    s->r = r;
    s->url = g_strdup(url);
    s->timeout_us = (gint64)timeout_ms * 1000;
    s->cb = *cb;
    s->ud = ud;
    s->fd = -1;
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    g_mutex_lock(&r->lock);
    s->id = ++r->next_id;
    g_mutex_unlock(&r->lock);
    g_thread_pool_push(r->workers, s, NULL);
    return s;
}

void video_rtsp_close(video_rtsp_session *s)
{
    if (!s)
        return;
    video_rtsp *r = s->r;
    g_mutex_lock(&s->lock);
    s->closing = true;
    if (s->work == W_QUEUED) { /* the worker frees it when it comes to it */
        g_mutex_unlock(&s->lock);
        return;
    }
    if (s->work == W_RUNNING)
        interrupt(s); /* its waits end now */
    while (s->work != W_DONE)
        g_cond_wait(&s->cond, &s->lock);
    g_mutex_unlock(&s->lock);
    g_mutex_lock(&r->lock);
    bool reading = g_hash_table_lookup(r->reading, &s->id) != NULL;
    if (reading)
        reader_drop(s);
    g_mutex_unlock(&r->lock);
    if (reading) /* still playing: goodbye, if the socket has room for it */
        send_if_room(s, GST_RTSP_TEARDOWN);
    session_free(s);
}
