/* rtsp_probe: a way of ingesting RTSP that gridcc does not use, measured
 * against gridcc's (bench/bench_rtsp_probe.py). N cameras over RTSP/TCP are
 * read on ONE thread by GStreamer's RTSP library (GstRTSPConnection, a
 * GstRTSPWatch per camera on the GLib main loop), no rtspsrc, no rtpbin, no
 * jitter buffer: each RTP packet is pushed, in that thread, straight into
 * gridcc's chain (rtph264depay ! h264parse ! h264timestamper ! mp4mux !
 * appsink), RTP time unwrapped into the buffer's PTS. What it leaves out
 * (auth, UDP, RTCP, keep-alive, reconnecting, loss) makes it a floor, not a
 * client: it says what the stack's elements cost without rtspsrc.
 *   rtsp_probe PORT N    reads rtsp://127.0.0.1:PORT/cam1 … camN; prints
 *                        "ready", then each second the bytes in and out
 * PROBE_IO=epoll reads the sockets itself (epoll, 64 KiB reads) instead of
 * GstRTSPWatch; PROBE_CHAIN=parse leaves mp4mux out, =none drops the
 * packets read. What these showed (GstRTSPWatch's reading alone cost more
 * than ffmpeg) is why src/video_rtsp.c reads as it does. */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/rtsp/rtsp.h>
#include <gst/sdp/sdp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct cam {
    GstRTSPConnection *conn;
    GstRTSPWatch *watch;
    GstElement *pipe;
    GstPad *src;
    guint32 last_ts;
    gint64 ext; /* RTP time since the first packet, unwrapped (may go below 0 with B-frames) */
    gboolean have_first;
    guint64 bytes_out, bytes_in, pkts;
    int fd;            /* PROBE_IO=epoll: the socket, read here in large reads */
    guint8 *rbuf;
    size_t rlen;
} cam;

/* PROBE_IO: watch (GstRTSPWatch, the default) or epoll (one epoll loop, 64 KiB reads);
 * PROBE_CHAIN: full (default), parse (no mp4mux), none (packets read and dropped) */
static const char *io_mode = "watch", *chain_mode = "full";

static int cseq = 1;

static GstRTSPMessage *req(GstRTSPConnection *c, GstRTSPMethod m, const char *uri, const char *session,
                           const char *hname, const char *hval)
{
    GstRTSPMessage *r;
    gst_rtsp_message_new_request(&r, m, uri);
    char cs[16];
    snprintf(cs, sizeof cs, "%d", cseq++);
    gst_rtsp_message_add_header(r, GST_RTSP_HDR_CSEQ, cs);
    if (session)
        gst_rtsp_message_add_header(r, GST_RTSP_HDR_SESSION, session);
    if (hname)
        gst_rtsp_message_add_header_by_name(r, hname, hval);
    gint64 to = 5 * G_USEC_PER_SEC;
    if (gst_rtsp_connection_send_usec(c, r, to) != GST_RTSP_OK) {
        fprintf(stderr, "rtsp_probe: %s: cannot send %s\n", uri, gst_rtsp_method_as_text(m));
        exit(1);
    }
    gst_rtsp_message_free(r);
    GstRTSPMessage *resp;
    gst_rtsp_message_new(&resp);
    GstRTSPStatusCode code = 0;
    if (gst_rtsp_connection_receive_usec(c, resp, to) != GST_RTSP_OK ||
        gst_rtsp_message_parse_response(resp, &code, NULL, NULL) != GST_RTSP_OK || code != GST_RTSP_STS_OK) {
        fprintf(stderr, "rtsp_probe: %s: %s answered %d\n", uri, gst_rtsp_method_as_text(m), code);
        exit(1);
    }
    return resp;
}

static GstFlowReturn on_sample(GstAppSink *s, gpointer ud)
{
    cam *c = ud;
    GstSample *smp = gst_app_sink_pull_sample(s);
    if (smp) {
        c->bytes_out += gst_buffer_get_size(gst_sample_get_buffer(smp));
        gst_sample_unref(smp);
    }
    return GST_FLOW_OK;
}

static void on_packet(cam *c, guint8 *data, guint size)
{
    if (size < 12 || chain_mode[0] == 'n') {
        c->bytes_in += size;
        c->pkts++;
        g_free(data);
        return;
    }
    guint32 ts = (guint32)data[4] << 24 | (guint32)data[5] << 16 | (guint32)data[6] << 8 | data[7];
    if (!c->have_first) {
        c->last_ts = ts;
        c->have_first = TRUE;
    }
    c->ext += (gint32)(ts - c->last_ts);
    c->last_ts = ts;
    c->bytes_in += size;
    c->pkts++;
    GstBuffer *b = gst_buffer_new_wrapped(data, size);
    /* a second of margin keeps B-frames' earlier times above 0 */
    GST_BUFFER_PTS(b) = gst_util_uint64_scale((guint64)(c->ext + 90000), GST_SECOND, 90000);
    gst_pad_push(c->src, b);
}

static GstRTSPResult on_msg(GstRTSPWatch *w, GstRTSPMessage *m, gpointer ud)
{
    cam *c = ud;
    if (gst_rtsp_message_get_type(m) != GST_RTSP_MESSAGE_DATA)
        return GST_RTSP_OK;
    guint8 ch;
    gst_rtsp_message_parse_data(m, &ch);
    if (ch != 0)
        return GST_RTSP_OK;
    guint8 *data;
    guint size;
    gst_rtsp_message_steal_body(m, &data, &size);
    on_packet(c, data, size);
    return GST_RTSP_OK;
}

#define RBUF (64 * 1024)

/* reads what the socket has and hands on every whole interleaved packet */
static void epoll_read(cam *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            fprintf(stderr, "rtsp_probe: a camera closed\n");
            exit(1);
        }
        c->rlen += (size_t)n;
        size_t at = 0;
        while (c->rlen - at >= 4) {
            guint8 *p = c->rbuf + at;
            if (p[0] != '$') { /* an RTSP reply (keep-alive): skip to the next '$' */
                guint8 *d = memchr(p, '$', c->rlen - at);
                at = d ? (size_t)(d - c->rbuf) : c->rlen;
                continue;
            }
            size_t len = (size_t)p[2] << 8 | p[3];
            if (c->rlen - at < 4 + len)
                break;
            if (p[1] == 0)
                on_packet(c, g_memdup2(p + 4, len), (guint)len);
            at += 4 + len;
        }
        memmove(c->rbuf, c->rbuf + at, c->rlen - at);
        c->rlen -= at;
        if ((size_t)n < RBUF / 2)
            return;
    }
}

static GstRTSPWatchFuncs funcs = {.message_received = on_msg};

static int epfd = -1;

static void open_cam(cam *c, const char *uri, GMainContext *ctx)
{
    GstRTSPUrl *url;
    gst_rtsp_url_parse(uri, &url);
    gst_rtsp_connection_create(url, &c->conn);
    if (gst_rtsp_connection_connect_usec(c->conn, 5 * G_USEC_PER_SEC) != GST_RTSP_OK) {
        fprintf(stderr, "rtsp_probe: cannot connect to %s\n", uri);
        exit(1);
    }
    GstRTSPMessage *r = req(c->conn, GST_RTSP_DESCRIBE, uri, NULL, "Accept", "application/sdp");
    guint8 *body;
    guint bl;
    gst_rtsp_message_get_body(r, &body, &bl);
    GstSDPMessage *sdp;
    gst_sdp_message_new(&sdp);
    gst_sdp_message_parse_buffer(body, bl, sdp);
    const GstSDPMedia *md = gst_sdp_message_get_media(sdp, 0);
    int pt = atoi(gst_sdp_media_get_format(md, 0));
    GstCaps *caps = gst_sdp_media_get_caps_from_media(md, pt);
    gst_sdp_media_attributes_to_caps(md, caps);
    GstStructure *st = gst_caps_get_structure(caps, 0);
    gst_structure_set_name(st, "application/x-rtp");
    const char *control = gst_sdp_media_get_attribute_val(md, "control");
    if (!md || !control || !caps) {
        fprintf(stderr, "rtsp_probe: %s: no video stream with a control URL in its SDP\n", uri);
        exit(1);
    }
    gchar *base = NULL;
    gst_rtsp_message_get_header(r, GST_RTSP_HDR_CONTENT_BASE, &base, 0);
    gchar *setup_uri = g_str_has_prefix(control, "rtsp://") ? g_strdup(control)
                       : g_strdup_printf("%s%s%s", base ? base : uri, (base && g_str_has_suffix(base, "/")) ? "" : "/", control);
    gst_rtsp_message_free(r);
    r = req(c->conn, GST_RTSP_SETUP, setup_uri, NULL, "Transport", "RTP/AVP/TCP;unicast;interleaved=0-1");
    gchar *sess = NULL;
    gst_rtsp_message_get_header(r, GST_RTSP_HDR_SESSION, &sess, 0);
    if (!sess) {
        fprintf(stderr, "rtsp_probe: %s: SETUP gave no session\n", uri);
        exit(1);
    }
    gchar *session = g_strdup(sess);
    char *semi = strchr(session, ';');
    if (semi)
        *semi = 0;
    gst_rtsp_message_free(r);

    GError *e = NULL;
    c->pipe = gst_parse_launch(chain_mode[0] == 'p' ?
                               "rtph264depay name=d ! h264parse config-interval=-1 ! h264timestamper "
                               "! capsfilter caps=video/x-h264,stream-format=avc,alignment=au "
                               "! appsink name=s sync=false async=false emit-signals=false" :
                               "rtph264depay name=d ! h264parse config-interval=-1 ! h264timestamper "
                               "! capsfilter caps=video/x-h264,stream-format=avc,alignment=au "
                               "! mp4mux fragment-duration=100 streamable=true ! appsink name=s sync=false async=false emit-signals=false", &e);
    if (!c->pipe) {
        fprintf(stderr, "rtsp_probe: %s\n", e->message);
        exit(1);
    }
    GstElement *d = gst_bin_get_by_name(GST_BIN(c->pipe), "d");
    GstElement *s = gst_bin_get_by_name(GST_BIN(c->pipe), "s");
    GstAppSinkCallbacks cb = {.new_sample = on_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(s), &cb, c, NULL);
    c->src = gst_pad_new("src", GST_PAD_SRC);
    gst_pad_set_active(c->src, TRUE);
    GstPad *sink = gst_element_get_static_pad(d, "sink");
    gst_pad_link(c->src, sink);
    gst_element_set_state(c->pipe, GST_STATE_PLAYING);
    gst_pad_push_event(c->src, gst_event_new_stream_start("cam"));
    gst_pad_push_event(c->src, gst_event_new_caps(caps));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_pad_push_event(c->src, gst_event_new_segment(&seg));

    r = req(c->conn, GST_RTSP_PLAY, uri, session, "Range", "npt=0-");
    gst_rtsp_message_free(r);
    if (io_mode[0] == 'e') {
        c->fd = g_socket_get_fd(gst_rtsp_connection_get_read_socket(c->conn));
        c->rbuf = g_malloc(RBUF);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        g_socket_set_blocking(gst_rtsp_connection_get_read_socket(c->conn), FALSE);
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    } else {
        c->watch = gst_rtsp_watch_new(c->conn, &funcs, c, NULL);
        gst_rtsp_watch_attach(c->watch, ctx);
    }
    gst_sdp_message_free(sdp);
    g_free(setup_uri);
    g_free(session);
}

static int ncams;

static gboolean report(gpointer ud)
{
    cam *cs = ud;
    guint64 t = 0, in = 0, pk = 0;
    for (int i = 0; i < ncams; i++) {
        t += cs[i].bytes_out;
        in += cs[i].bytes_in;
        pk += cs[i].pkts;
    }
    printf("out %" G_GUINT64_FORMAT " in %" G_GUINT64_FORMAT " pkts %" G_GUINT64_FORMAT "\n", t, in, pk);
    fflush(stdout);
    return TRUE;
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: rtsp_probe PORT N\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (getenv("PROBE_IO"))
        io_mode = getenv("PROBE_IO");
    if (getenv("PROBE_CHAIN"))
        chain_mode = getenv("PROBE_CHAIN");
    epfd = epoll_create1(0);
    ncams = atoi(argv[2]);
    GMainContext *ctx = g_main_context_default();
    cam *cs = g_new0(cam, ncams);
    for (int i = 0; i < ncams; i++) {
        char uri[128];
        snprintf(uri, sizeof uri, "rtsp://127.0.0.1:%d/cam%d", port, i + 1);
        open_cam(&cs[i], uri, ctx);
    }
    printf("ready\n");
    fflush(stdout);
    if (io_mode[0] == 'e') {
        gint64 next = g_get_monotonic_time() + G_USEC_PER_SEC;
        for (;;) {
            struct epoll_event ev[64];
            int n = epoll_wait(epfd, ev, 64, 100);
            for (int i = 0; i < n; i++)
                epoll_read(ev[i].data.ptr);
            if (g_get_monotonic_time() >= next) {
                report(cs);
                next += G_USEC_PER_SEC;
            }
        }
    }
    g_timeout_add_seconds(1, report, cs);
    GMainLoop *loop = g_main_loop_new(ctx, FALSE);
    g_main_loop_run(loop);
    return 0;
}
