/* camsim: N simulated RTSP cameras on gst-rtsp-server.
 *
 * One shared pipeline per mount (filesrc ! demux ! parse ! pay), whatever the
 * number of clients, reading a clip encoded once (camsim_clip.c). The clip
 * loops with segment seeks: the first PLAY of a pipeline asks rtsp-media for a
 * flushing seek with GST_SEEK_FLAG_SEGMENT (CamsimClient's adjust_play_mode),
 * and every SEGMENT_DONE gets a non-flushing segment seek back to 0
 * (CamsimMedia's handle_message), so running time, and with it the RTP
 * timestamps, keep increasing across loops. Later PLAYs on a shared pipeline
 * have their Range dropped: a flushing seek would jump every other viewer back
 * and lose the segment flag.
 *
 * Threads: the RTSP server, its clients and the control protocol run on the
 * main loop; each pipeline has its media thread (bus messages) and streaming
 * thread (the pad probe that stalls and times the loops). What those touch in
 * a mount is atomic or under the mount's lock. */
#include "camsim.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"

/* gst-rtsp-server's vfuncs carry no user data; one camsim per process */
static camsim *the_cs;

static camsim_mount *mount_of_path(camsim *cs, const char *abspath)
{
    if (!abspath || abspath[0] != '/')
        return NULL;
    const char *id = abspath + 1;
    size_t n = strcspn(id, "/");
    for (guint i = 0; i < cs->mounts->len; i++) {
        camsim_mount *m = g_ptr_array_index(cs->mounts, i);
        if (strlen(m->id) == n && strncmp(m->id, id, n) == 0)
            return m;
    }
    return NULL;
}

camsim_mount *camsim_mount_find(camsim *cs, const char *id)
{
    for (guint i = 0; i < cs->mounts->len; i++) {
        camsim_mount *m = g_ptr_array_index(cs->mounts, i);
        if (strcmp(m->id, id) == 0)
            return m;
    }
    return NULL;
}

/* ---- the media: loops with segment seeks ---- */

typedef struct media_probe media_probe;
/* what the probe after the parser keeps of one pipeline */
struct media_probe {
    camsim_mount *m;
    GstSegment seg;
    gboolean loop_start;  /* the next buffer is frame 0 */
    GstClockTime pending; /* running time of a frame 0 whose send time is not known yet */
    int frames;           /* buffers since frame 0 */
    gboolean have_seg;    /* seg is the last loop's, not one after a flush */
    GstClockTime end_rt;  /* running time at which the last buffer ends */
    gboolean raw;         /* a raw stream: we stamp its frames */
    guint64 raw_next;     /* the next frame's index in the loop */
    gint loop_seek;       /* atomic: a loop seek was sent, its segment is due */
    gboolean need_key;    /* after a stall: drop up to the next keyframe */
};

#define CAMSIM_TYPE_MEDIA (camsim_media_get_type())
G_DECLARE_FINAL_TYPE(CamsimMedia, camsim_media, CAMSIM, MEDIA, GstRTSPMedia)
struct _CamsimMedia {
    GstRTSPMedia parent;
    camsim_mount *mount;
    GstElement *seek_target;   /* the demuxer, or the parser of a raw file */
    gboolean looping;          /* the first segment seek was asked for */
    struct media_probe *probe; /* freed with the pipeline's pad, after us */
};
G_DEFINE_TYPE(CamsimMedia, camsim_media, GST_TYPE_RTSP_MEDIA)

static gboolean camsim_media_handle_message(GstRTSPMedia *media, GstMessage *msg)
{
    CamsimMedia *self = CAMSIM_MEDIA(media);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_SEGMENT_DONE && self->seek_target) {
        /* straight to the element that loops: the pipeline would send it to
         * every sink and the tees upstream would hand it on more than once */
        if (self->probe)
            g_atomic_int_set(&self->probe->loop_seek, 1);
        if (!gst_element_seek(self->seek_target, 1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_SEGMENT,
                              GST_SEEK_TYPE_SET, 0, GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE))
            log_warn("camsim", "loop seek refused mount=%s", self->mount ? self->mount->id : "?");
    }
    return GST_RTSP_MEDIA_CLASS(camsim_media_parent_class)->handle_message(media, msg);
}

/* The last client gone, rtsp-media winds the pipeline down on its thread while
 * the factory still hands it out: a client arriving then (a camera reconnect,
 * a second ffprobe) got 503. A new generation makes the factory build a
 * fresh pipeline instead (CamsimFactory's gen_key). */
static gboolean camsim_media_unprepare(GstRTSPMedia *media)
{
    CamsimMedia *self = CAMSIM_MEDIA(media);
    if (self->mount)
        g_atomic_int_inc(&self->mount->generation);
    return GST_RTSP_MEDIA_CLASS(camsim_media_parent_class)->unprepare(media);
}

static void camsim_media_finalize(GObject *obj)
{
    CamsimMedia *self = CAMSIM_MEDIA(obj);
    if (self->mount) {
        g_atomic_int_add(&self->mount->pipelines, -1);
        log_info("camsim", "pipeline down mount=%s", self->mount->id);
    }
    g_clear_object(&self->seek_target);
    G_OBJECT_CLASS(camsim_media_parent_class)->finalize(obj);
}

static void camsim_media_class_init(CamsimMediaClass *klass)
{
    GST_RTSP_MEDIA_CLASS(klass)->handle_message = camsim_media_handle_message;
    GST_RTSP_MEDIA_CLASS(klass)->unprepare = camsim_media_unprepare;
    G_OBJECT_CLASS(klass)->finalize = camsim_media_finalize;
}

static void camsim_media_init(CamsimMedia *self) {}

static void record_loop(media_probe *p, GstElement *el)
{
    if (GST_STATE(el) != GST_STATE_PLAYING)
        return;
    GstClock *clock = gst_element_get_clock(el);
    if (!clock)
        return;
    /* the sinks send a buffer when the clock reaches base time + running
     * time (non-live, no latency); the payloader itself runs ahead of
     * them by the queues in gst-rtsp-server's stream */
    GstClockTimeDiff ahead = (GstClockTimeDiff)(gst_element_get_base_time(el) + p->pending) -
                             (GstClockTimeDiff)gst_clock_get_time(clock);
    gst_object_unref(clock);
    int64_t ms = g_get_real_time() / 1000 + ahead / 1000000;
    g_mutex_lock(&p->m->lock);
    p->m->loops[p->m->loop_count % CAMSIM_LOOPS_KEPT] = ms;
    p->m->loop_count++;
    g_mutex_unlock(&p->m->lock);
    p->pending = GST_CLOCK_TIME_NONE;
}

/* A dropped buffer must still take its time: with nothing reaching the sinks
 * nothing would hold the demuxer back, it would race through loops and put
 * the running time so far ahead that the stream stayed silent long after the
 * stall ended. */
static void stall_pace(media_probe *p, GstElement *el, GstBuffer *buf)
{
    GstClockTime rt = gst_segment_to_running_time(&p->seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    GstClock *clock = el && GST_STATE(el) == GST_STATE_PLAYING ? gst_element_get_clock(el) : NULL;
    if (!clock || !GST_CLOCK_TIME_IS_VALID(rt)) {
        g_usleep(G_USEC_PER_SEC / 25);
    } else {
        GstClockID id = gst_clock_new_single_shot_id(clock, gst_element_get_base_time(el) + rt);
        gst_clock_id_wait(id, NULL);
        gst_clock_id_unref(id);
    }
    if (clock)
        gst_object_unref(clock);
}

static GstPadProbeReturn media_probe_cb(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    media_probe *p = ud;
    camsim_mount *m = p->m;
    if (info->type & (GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH)) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        /* a parser may send a segment of its own within a loop (h264parse
         * on a raw stream does): only one after a flush or a loop seek
         * begins a loop */
        if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT && p->have_seg &&
            !g_atomic_int_compare_and_exchange(&p->loop_seek, 1, 0)) {
            if (p->raw) {
                GstEvent *same = gst_event_new_segment(&p->seg);
                gst_event_set_seqnum(same, gst_event_get_seqnum(ev));
                gst_event_unref(ev);
                GST_PAD_PROBE_INFO_DATA(info) = same;
            } else {
                gst_event_copy_segment(ev, &p->seg);
            }
        } else if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
            gst_event_copy_segment(ev, &p->seg);
            guint64 base0 = p->seg.base;
            if (p->raw) {
                /* the parser's times of a raw stream do not survive its
                 * segment seeks: each loop is a segment from 0 of our own,
                 * its frames stamped below */
                gst_segment_init(&p->seg, GST_FORMAT_TIME);
                p->raw_next = 0;
            }
            /* a non-flushing seek accumulates running time up to the last
             * buffer's start (qtdemux's position), not its end: the next
             * loop's frame 0 would share the last frame's time. The new
             * loop starts where the last one ended. */
            if (p->have_seg && GST_CLOCK_TIME_IS_VALID(p->end_rt) && p->seg.rate == 1.0 &&
                p->seg.base < p->end_rt)
                p->seg.base = p->end_rt;
            if (p->raw || p->seg.base != base0) {
                GstEvent *fixed = gst_event_new_segment(&p->seg);
                gst_event_set_seqnum(fixed, gst_event_get_seqnum(ev));
                gst_event_unref(ev);
                GST_PAD_PROBE_INFO_DATA(info) = fixed;
            }
            p->have_seg = TRUE;
            p->end_rt = GST_CLOCK_TIME_NONE;
            p->loop_start = TRUE;
        } else if (GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_STOP) {
            /* a frame 0 flushed before it was sent is no loop */
            p->pending = GST_CLOCK_TIME_NONE;
            p->have_seg = FALSE;
        } else if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS && m->file) {
            GstCaps *caps;
            gst_event_parse_caps(ev, &caps);
            int n, d;
            if (gst_structure_get_fraction(gst_caps_get_structure(caps, 0), "framerate", &n, &d) &&
                n > 0 && d > 0) {
                g_mutex_lock(&m->lock);
                m->fps = (double)n / d;
                g_mutex_unlock(&m->lock);
            }
        }
        return GST_PAD_PROBE_OK;
    }
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstElement *el = GST_ELEMENT(GST_OBJECT_PARENT(pad));
    if (p->raw) {
        /* one access unit a buffer (the parser's alignment): unit n of the
         * loop decoded at n / fps and shown at its place in the picture
         * order found when the file was probed, the whole loop shifted by
         * the reordering delay so that no picture is shown before it is
         * decoded (B-frames taken in decode order reached players with
         * times going backwards) */
        g_mutex_lock(&m->lock);
        GstClockTime dur = (GstClockTime)(GST_SECOND / (m->fps > 0 ? m->fps : 25));
        g_mutex_unlock(&m->lock);
        const camsim_file_info *fi = &m->finfo;
        guint64 shown = fi->order && p->raw_next < (guint64)fi->units
                            ? (guint64)fi->order[p->raw_next]
                            : p->raw_next;
        buf = gst_buffer_make_writable(buf);
        GST_PAD_PROBE_INFO_DATA(info) = buf;
        GST_BUFFER_DTS(buf) = p->raw_next * dur;
        GST_BUFFER_PTS(buf) = (shown + (guint64)fi->delay) * dur;
        GST_BUFFER_DURATION(buf) = dur;
        p->raw_next++;
    }
    if (p->loop_start) {
        p->loop_start = FALSE;
        if (m->file && p->frames > 0) {
            g_mutex_lock(&m->lock);
            m->frames = p->frames;
            g_mutex_unlock(&m->lock);
        }
        p->frames = 0;
        p->pending = gst_segment_to_running_time(&p->seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    }
    p->frames++;
    /* a raw loop ends with its last decode time: its shown times run
     * `delay` frames later, and the next loop's do the same */
    GstClockTime pts = p->raw ? GST_BUFFER_DTS(buf) : GST_BUFFER_PTS(buf);
    if (GST_CLOCK_TIME_IS_VALID(pts)) {
        GstClockTime dur = GST_BUFFER_DURATION(buf);
        if (!GST_CLOCK_TIME_IS_VALID(dur)) {
            g_mutex_lock(&m->lock);
            dur = m->fps > 0 ? (GstClockTime)(GST_SECOND / m->fps) : GST_SECOND / 25;
            g_mutex_unlock(&m->lock);
        }
        GstClockTime end = gst_segment_to_running_time(&p->seg, GST_FORMAT_TIME, pts + dur);
        if (GST_CLOCK_TIME_IS_VALID(end) &&
            (!GST_CLOCK_TIME_IS_VALID(p->end_rt) || end > p->end_rt))
            p->end_rt = end;
    }
    if (GST_CLOCK_TIME_IS_VALID(p->pending) && el)
        record_loop(p, el);
    if (g_atomic_int_get(&m->stalled)) {
        p->need_key = TRUE;
        stall_pace(p, el, buf);
        return GST_PAD_PROBE_DROP;
    }
    if (p->need_key) {
        if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT))
            return GST_PAD_PROBE_DROP;
        p->need_key = FALSE;
    }
    return GST_PAD_PROBE_OK;
}

static void media_configure(GstRTSPMediaFactory *f, GstRTSPMedia *media, gpointer ud)
{
    camsim_mount *m = ud;
    CamsimMedia *cm = CAMSIM_MEDIA(media);
    cm->mount = m;
    g_atomic_int_add(&m->pipelines, 1);
    g_atomic_int_add(&m->pipelines_created, 1);
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *parse = gst_bin_get_by_name(GST_BIN(bin), "parse");
    cm->seek_target = gst_bin_get_by_name(GST_BIN(bin), "demux");
    if (!cm->seek_target && parse)
        cm->seek_target = gst_object_ref(parse);
    if (parse) {
        media_probe *p = g_new0(media_probe, 1);
        cm->probe = p;
        p->m = m;
        p->raw = m->file && m->finfo.container == CAMSIM_RAW;
        p->pending = GST_CLOCK_TIME_NONE;
        p->end_rt = GST_CLOCK_TIME_NONE;
        gst_segment_init(&p->seg, GST_FORMAT_TIME);
        GstPad *pad = gst_element_get_static_pad(parse, "src");
        /* flushes too: a probe sees none unless asked, and the PLAY's
         * flushing seek after preroll then passed for a segment within the
         * loop (a raw stream sent its first picture twice) */
        gst_pad_add_probe(pad,
                          GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                              GST_PAD_PROBE_TYPE_EVENT_FLUSH,
                          media_probe_cb, p, g_free);
        gst_object_unref(pad);
        gst_object_unref(parse);
    }
    gst_object_unref(bin);
    log_info("camsim", "pipeline up mount=%s codec=%s", m->id, camsim_codec_name(m->codec));
}

/* ---- the client: which mount it plays, and the seek of its PLAY ---- */

#define CAMSIM_TYPE_CLIENT (camsim_client_get_type())
G_DECLARE_FINAL_TYPE(CamsimClient, camsim_client, CAMSIM, CLIENT, GstRTSPClient)
struct _CamsimClient {
    GstRTSPClient parent;
    char *mount_id; /* the mount it asked for last */
    gboolean playing;
    char *ip;
};
G_DEFINE_TYPE(CamsimClient, camsim_client, GST_TYPE_RTSP_CLIENT)

static GstRTSPStatusCode camsim_client_adjust_play_mode(GstRTSPClient *client, GstRTSPContext *ctx,
                                                        GstRTSPTimeRange **range,
                                                        GstSeekFlags *flags, gdouble *rate,
                                                        GstClockTime *trickmode_interval,
                                                        gboolean *enable_rate_control)
{
    if (*range) {
        gst_rtsp_range_free(*range);
        *range = NULL;
    }
    *rate = 1.0;
    *flags = 0;
    if (CAMSIM_IS_MEDIA(ctx->media) && !CAMSIM_MEDIA(ctx->media)->looping) {
        CAMSIM_MEDIA(ctx->media)->looping = TRUE;
        gst_rtsp_range_parse("npt=0-", range);
        *flags = GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_SEGMENT;
    }
    return GST_RTSP_STS_OK;
}

static void camsim_client_finalize(GObject *obj)
{
    CamsimClient *self = CAMSIM_CLIENT(obj);
    g_free(self->mount_id);
    g_free(self->ip);
    G_OBJECT_CLASS(camsim_client_parent_class)->finalize(obj);
}

static void camsim_client_class_init(CamsimClientClass *klass)
{
    GST_RTSP_CLIENT_CLASS(klass)->adjust_play_mode = camsim_client_adjust_play_mode;
    G_OBJECT_CLASS(klass)->finalize = camsim_client_finalize;
}

static void camsim_client_init(CamsimClient *self) {}

static void client_note_mount(GstRTSPClient *client, GstRTSPContext *ctx, gpointer ud)
{
    CamsimClient *c = CAMSIM_CLIENT(client);
    camsim_mount *m = ctx->uri ? mount_of_path(the_cs, ctx->uri->abspath) : NULL;
    if (m && (!c->mount_id || strcmp(c->mount_id, m->id) != 0)) {
        g_free(c->mount_id);
        c->mount_id = g_strdup(m->id);
    }
}

static void client_play(GstRTSPClient *client, GstRTSPContext *ctx, gpointer ud)
{
    CamsimClient *c = CAMSIM_CLIENT(client);
    client_note_mount(client, ctx, ud);
    if (!c->playing)
        log_info("camsim", "client playing mount=%s ip=%s", c->mount_id ? c->mount_id : "?", c->ip);
    c->playing = TRUE;
}

static void client_teardown(GstRTSPClient *client, GstRTSPContext *ctx, gpointer ud)
{
    CAMSIM_CLIENT(client)->playing = FALSE;
}

static void client_closed(GstRTSPClient *client, gpointer ud)
{
    CamsimClient *c = CAMSIM_CLIENT(client);
    log_info("camsim", "client disconnected mount=%s ip=%s", c->mount_id ? c->mount_id : "-",
             c->ip);
    c->playing = FALSE;
}

/* ---- the server: makes CamsimClients ---- */

#define CAMSIM_TYPE_SERVER (camsim_server_get_type())
G_DECLARE_FINAL_TYPE(CamsimServer, camsim_server, CAMSIM, SERVER, GstRTSPServer)
struct _CamsimServer {
    GstRTSPServer parent;
};
G_DEFINE_TYPE(CamsimServer, camsim_server, GST_TYPE_RTSP_SERVER)

static GstRTSPClient *camsim_server_create_client(GstRTSPServer *server)
{
    GstRTSPClient *client = g_object_new(CAMSIM_TYPE_CLIENT, NULL);
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(server);
    gst_rtsp_client_set_session_pool(client, pool);
    g_object_unref(pool);
    GstRTSPMountPoints *points = gst_rtsp_server_get_mount_points(server);
    gst_rtsp_client_set_mount_points(client, points);
    g_object_unref(points);
    GstRTSPAuth *auth = gst_rtsp_server_get_auth(server);
    gst_rtsp_client_set_auth(client, auth);
    if (auth)
        g_object_unref(auth);
    GstRTSPThreadPool *threads = gst_rtsp_server_get_thread_pool(server);
    gst_rtsp_client_set_thread_pool(client, threads);
    g_object_unref(threads);
    g_signal_connect(client, "describe-request", G_CALLBACK(client_note_mount), NULL);
    g_signal_connect(client, "setup-request", G_CALLBACK(client_note_mount), NULL);
    g_signal_connect(client, "play-request", G_CALLBACK(client_play), NULL);
    g_signal_connect(client, "teardown-request", G_CALLBACK(client_teardown), NULL);
    g_signal_connect(client, "closed", G_CALLBACK(client_closed), NULL);
    return client;
}

static void camsim_server_class_init(CamsimServerClass *klass)
{
    GST_RTSP_SERVER_CLASS(klass)->create_client = camsim_server_create_client;
}

static void camsim_server_init(CamsimServer *self) {}

static void client_connected(GstRTSPServer *server, GstRTSPClient *client, gpointer ud)
{
    GstRTSPConnection *conn = gst_rtsp_client_get_connection(client);
    CamsimClient *c = CAMSIM_CLIENT(client);
    g_free(c->ip);
    c->ip = g_strdup(conn ? gst_rtsp_connection_get_ip(conn) : "?");
    log_info("camsim", "client connected ip=%s", c->ip);
}

/* ---- auth: per mount, so that one camera can refuse or change password ---- */

#define CAMSIM_TYPE_AUTH (camsim_auth_get_type())
G_DECLARE_FINAL_TYPE(CamsimAuth, camsim_auth, CAMSIM, AUTH, GstRTSPAuth)
struct _CamsimAuth {
    GstRTSPAuth parent;
    GstRTSPToken *token; /* what an accepted request gets */
};
G_DEFINE_TYPE(CamsimAuth, camsim_auth, GST_TYPE_RTSP_AUTH)

#define CAMSIM_ROLE "camera"

static bool credential_ok(GstRTSPContext *ctx, GstRTSPAuthCredential *cr, const char *user,
                          const char *pass, const char **who)
{
    if (cr->scheme == GST_RTSP_AUTH_BASIC && cr->authorization) {
        gsize n = 0;
        guchar *dec = g_base64_decode(cr->authorization, &n);
        char *got = g_strndup((const char *)dec, n);
        g_free(dec);
        char *colon = strchr(got, ':');
        bool ok = false;
        if (colon) {
            *colon = '\0';
            ok = strcmp(got, user) == 0 && strcmp(colon + 1, pass) == 0;
            /* the user name is logged on refusal; the password never */
            static __thread char name[64];
            g_strlcpy(name, got, sizeof name);
            *who = name;
        }
        memset(got, 0, strlen(got) + (colon ? strlen(colon + 1) + 1 : 0));
        g_free(got);
        return ok;
    }
    if (cr->scheme == GST_RTSP_AUTH_DIGEST && cr->params) {
        const char *realm = NULL, *u = NULL, *nonce = NULL, *response = NULL, *uri = NULL;
        for (GstRTSPAuthParam **p = cr->params; *p; p++) {
            const char *v = (*p)->value;
            if (!v)
                continue;
            if (strcmp((*p)->name, "realm") == 0)
                realm = v;
            else if (strcmp((*p)->name, "username") == 0)
                u = v;
            else if (strcmp((*p)->name, "nonce") == 0)
                nonce = v;
            else if (strcmp((*p)->name, "response") == 0)
                response = v;
            else if (strcmp((*p)->name, "uri") == 0)
                uri = v;
        }
        if (!realm || !u || !nonce || !response || !uri)
            return false;
        *who = u;
        if (strcmp(u, user) != 0)
            return false;
        /* the nonce is not checked against the ones handed out: a test
         * camera, not a vault */
        char *want = gst_rtsp_generate_digest_auth_response(
            NULL, gst_rtsp_method_as_text(ctx->method), realm, user, pass, uri, nonce);
        bool ok = want && strcmp(want, response) == 0;
        g_free(want);
        return ok;
    }
    return false;
}

static gboolean camsim_auth_authenticate(GstRTSPAuth *auth, GstRTSPContext *ctx)
{
    CamsimAuth *self = CAMSIM_AUTH(auth);
    camsim *cs = the_cs;
    camsim_mount *m = ctx->uri ? mount_of_path(cs, ctx->uri->abspath) : NULL;
    if (!m) {
        ctx->token = self->token; /* the 404 follows */
        return TRUE;
    }
    if (g_atomic_int_get(&m->refusing)) {
        log_warn("camsim", "unauthorized mount=%s reason=refusing", m->id);
        return TRUE; /* no token: 401 */
    }
    g_mutex_lock(&m->lock);
    char *pass = g_strdup(m->password ? m->password : cs->password);
    g_mutex_unlock(&m->lock);
    if (!pass) {
        ctx->token = self->token;
        return TRUE;
    }
    const char *user = cs->user ? cs->user : "admin";
    GstRTSPAuthCredential **creds =
        gst_rtsp_message_parse_auth_credentials(ctx->request, GST_RTSP_HDR_AUTHORIZATION);
    const char *who = NULL;
    bool ok = false;
    for (GstRTSPAuthCredential **c = creds; c && *c && !ok; c++)
        ok = credential_ok(ctx, *c, user, pass, &who);
    if (ok)
        ctx->token = self->token;
    else if (creds)
        log_warn("camsim", "unauthorized mount=%s user=%s reason=bad_credentials", m->id,
                 who ? who : "?");
    else
        log_info("camsim", "auth challenge mount=%s", m->id);
    if (creds)
        gst_rtsp_auth_credentials_free(creds);
    memset(pass, 0, strlen(pass));
    g_free(pass);
    return TRUE;
}

static void camsim_auth_finalize(GObject *obj)
{
    gst_rtsp_token_unref(CAMSIM_AUTH(obj)->token);
    G_OBJECT_CLASS(camsim_auth_parent_class)->finalize(obj);
}

static void camsim_auth_class_init(CamsimAuthClass *klass)
{
    GST_RTSP_AUTH_CLASS(klass)->authenticate = camsim_auth_authenticate;
    G_OBJECT_CLASS(klass)->finalize = camsim_auth_finalize;
}

static void camsim_auth_init(CamsimAuth *self)
{
    self->token =
        gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, CAMSIM_ROLE, NULL);
}

/* ---- the factory: one per mount, its shared pipeline keyed by generation ---- */

#define CAMSIM_TYPE_FACTORY (camsim_factory_get_type())
G_DECLARE_FINAL_TYPE(CamsimFactory, camsim_factory, CAMSIM, FACTORY, GstRTSPMediaFactory)
struct _CamsimFactory {
    GstRTSPMediaFactory parent;
    camsim_mount *mount;
};
G_DEFINE_TYPE(CamsimFactory, camsim_factory, GST_TYPE_RTSP_MEDIA_FACTORY)

static gchar *camsim_factory_gen_key(GstRTSPMediaFactory *f, const GstRTSPUrl *url)
{
    camsim_mount *m = CAMSIM_FACTORY(f)->mount;
    return g_strdup_printf("%s#%d", m->path, g_atomic_int_get(&m->generation));
}

static void camsim_factory_class_init(CamsimFactoryClass *klass)
{
    GST_RTSP_MEDIA_FACTORY_CLASS(klass)->gen_key = camsim_factory_gen_key;
}

static void camsim_factory_init(CamsimFactory *self) {}

/* ---- mounts ---- */

static GstRTSPMediaFactory *make_factory(camsim_mount *m)
{
    const char *parse = m->codec == CAMSIM_H265 ? "h265parse" : "h264parse";
    const char *pay = m->codec == CAMSIM_H265 ? "rtph265pay" : "rtph264pay";
    const char *caps = m->codec == CAMSIM_H265 ? "video/x-h265" : "video/x-h264";
    char *launch;
    if (!m->file || m->finfo.container != CAMSIM_RAW) {
        const char *demux =
            m->file && m->finfo.container == CAMSIM_MKV ? "matroskademux" : "qtdemux";
        launch = g_strdup_printf("( filesrc location=\"%s\" ! %s name=demux demux.video_0 ! "
                                 "%s name=parse ! %s name=pay0 pt=96 config-interval=-1 )",
                                 m->clip, demux, parse, pay);
    } else {
        /* a raw stream has no times of its own: the parser makes them up
         * from the frame rate, the stream's or 25 */
        char rate[48] = "";
        if (m->finfo.fps <= 0)
            snprintf(rate, sizeof rate, ",framerate=25/1");
        /* access units: the probe stamps one frame a buffer */
        launch = g_strdup_printf("( filesrc location=\"%s\" ! %s,stream-format=byte-stream%s ! "
                                 "%s name=parse ! %s,alignment=au ! %s name=pay0 pt=96 "
                                 "config-interval=-1 )",
                                 m->clip, caps, rate, parse, caps, pay);
    }
    GstRTSPMediaFactory *f = g_object_new(CAMSIM_TYPE_FACTORY, NULL);
    CAMSIM_FACTORY(f)->mount = m;
    gst_rtsp_media_factory_set_launch(f, launch);
    g_free(launch);
    gst_rtsp_media_factory_set_shared(f, TRUE);
    gst_rtsp_media_factory_set_media_gtype(f, CAMSIM_TYPE_MEDIA);
    gst_rtsp_media_factory_add_role(f, CAMSIM_ROLE, GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                    G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                    G_TYPE_BOOLEAN, TRUE, NULL);
    g_signal_connect(f, "media-configure", G_CALLBACK(media_configure), m);
    return f;
}

static camsim_mount *mount_new(const char *id)
{
    camsim_mount *m = g_new0(camsim_mount, 1);
    m->id = g_strdup(id);
    m->path = g_strconcat("/", id, NULL);
    g_mutex_init(&m->lock);
    return m;
}

static void mount_free(camsim_mount *m)
{
    if (m->stall_timer)
        g_source_remove(m->stall_timer);
    g_clear_object(&m->factory);
    g_free(m->id);
    g_free(m->path);
    g_free(m->file);
    g_free(m->clip);
    g_free(m->finfo.order);
    g_free(m->password);
    g_mutex_clear(&m->lock);
    g_free(m);
}

static void mount_publish(camsim *cs, camsim_mount *m)
{
    m->up = true;
    gst_rtsp_mount_points_add_factory(cs->points, m->path, g_object_ref(m->factory));
    log_info("camsim", "mount up mount=%s codec=%s url=rtsp://%s:%d%s", m->id,
             camsim_codec_name(m->codec), cs->bind, cs->port, m->path);
}

static bool id_ok(const char *id)
{
    if (!id || !*id || strlen(id) > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

camsim_mount *camsim_mount_add_clip(camsim *cs, const char *id, camsim_codec codec, gc_err *err)
{
    if (!id_ok(id)) {
        gc_fail(err, GC_EINVAL, "id", "mount id \"%s\" must be 1 to 64 of A-Z a-z 0-9 _ -",
                id ? id : "");
        return NULL;
    }
    if (camsim_mount_find(cs, id)) {
        gc_fail(err, GC_ECONFLICT, "id", "mount %s exists already", id);
        return NULL;
    }
    char *clip = NULL;
    /* one look at the cache per clip, not one per mount */
    for (guint i = 0; i < cs->mounts->len && !clip; i++) {
        camsim_mount *o = g_ptr_array_index(cs->mounts, i);
        if (!o->file && o->codec == codec)
            clip = g_strdup(o->clip);
    }
    camsim_clip_spec spec = cs->clip;
    spec.codec = codec;
    bool encoded;
    if (!clip && camsim_clip_ensure(cs->cache, &spec, &clip, &encoded, err) != 0)
        return NULL;
    camsim_mount *m = mount_new(id);
    m->codec = codec;
    m->clip = clip;
    m->fps = cs->clip.fps;
    m->frames = cs->clip.fps * cs->clip.seconds;
    m->factory = make_factory(m);
    g_ptr_array_add(cs->mounts, m);
    mount_publish(cs, m);
    return m;
}

static camsim_mount *mount_add_file(camsim *cs, const char *id, const char *file, gc_err *err)
{
    camsim_file_info fi;
    if (camsim_file_probe(file, &fi, err) != 0)
        return NULL;
    if (fi.container == CAMSIM_RAW && camsim_file_order(file, &fi, err) != 0) {
        /* served anyway, in decode order: a stream whose pictures the
         * decoder cannot show is worth trying too */
        log_warn("camsim", "picture order unknown mount=%s detail=\"%s\"", id, err->msg);
        *err = (gc_err){0};
    }
    camsim_mount *m = mount_new(id);
    m->file = g_strdup(file);
    m->clip = g_strdup(file);
    m->finfo = fi;
    m->codec = fi.codec;
    m->fps = fi.fps > 0 ? fi.fps : 25;
    m->factory = make_factory(m);
    g_ptr_array_add(cs->mounts, m);
    log_info("camsim", "file probed mount=%s file=%s codec=%s size=%dx%d fps=%.3f", id, file,
             camsim_codec_name(fi.codec), fi.width, fi.height, fi.fps);
    mount_publish(cs, m);
    return m;
}

static GstRTSPFilterResult session_of_mount(GstRTSPSessionPool *pool, GstRTSPSession *sess,
                                            gpointer ud)
{
    camsim_mount *m = ud;
    gint matched = 0;
    GstRTSPSessionMedia *sm = gst_rtsp_session_get_media(sess, m->path, &matched);
    return sm && matched == (gint)strlen(m->path) ? GST_RTSP_FILTER_REMOVE : GST_RTSP_FILTER_KEEP;
}

typedef struct drop_ctx {
    camsim_mount *m;
    int n;
} drop_ctx;

static GstRTSPFilterResult client_of_mount(GstRTSPServer *server, GstRTSPClient *client,
                                           gpointer ud)
{
    drop_ctx *d = ud;
    CamsimClient *c = CAMSIM_CLIENT(client);
    if (c->mount_id && strcmp(c->mount_id, d->m->id) == 0) {
        d->n++;
        return GST_RTSP_FILTER_REMOVE;
    }
    return GST_RTSP_FILTER_KEEP;
}

int camsim_mount_drop(camsim *cs, camsim_mount *m)
{
    /* the sessions too: a UDP client's session would keep the pipeline
     * going without its connection */
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(cs->server);
    GList *left = gst_rtsp_session_pool_filter(pool, session_of_mount, m);
    g_list_free_full(left, g_object_unref);
    g_object_unref(pool);
    drop_ctx d = {m, 0};
    GList *kept = gst_rtsp_server_client_filter(cs->server, client_of_mount, &d);
    g_list_free_full(kept, g_object_unref);
    log_info("camsim", "clients dropped mount=%s count=%d", m->id, d.n);
    return d.n;
}

static GstRTSPFilterResult count_client(GstRTSPServer *server, GstRTSPClient *client, gpointer ud)
{
    drop_ctx *d = ud;
    CamsimClient *c = CAMSIM_CLIENT(client);
    if (c->playing && c->mount_id && strcmp(c->mount_id, d->m->id) == 0)
        d->n++;
    return GST_RTSP_FILTER_KEEP;
}

int camsim_mount_clients(camsim *cs, camsim_mount *m)
{
    drop_ctx d = {m, 0};
    GList *l = gst_rtsp_server_client_filter(cs->server, count_client, &d);
    g_list_free_full(l, g_object_unref);
    return d.n;
}

void camsim_mount_set_up(camsim *cs, camsim_mount *m, bool up)
{
    if (up == m->up)
        return;
    if (up) {
        mount_publish(cs, m);
        return;
    }
    m->up = false;
    gst_rtsp_mount_points_remove_factory(cs->points, m->path);
    log_info("camsim", "mount down mount=%s", m->id);
    camsim_mount_drop(cs, m);
}

int camsim_mount_set_codec(camsim *cs, camsim_mount *m, camsim_codec codec, gc_err *err)
{
    if (m->file)
        return gc_fail(err, GC_EINVAL, "codec", "%s serves %s as it is: its codec is fixed", m->id,
                       m->file);
    camsim_clip_spec spec = cs->clip;
    spec.codec = codec;
    char *clip;
    bool encoded;
    if (camsim_clip_ensure(cs->cache, &spec, &clip, &encoded, err) != 0)
        return err->code;
    g_free(m->clip);
    m->clip = clip;
    m->codec = codec;
    g_clear_object(&m->factory);
    m->factory = make_factory(m);
    log_info("camsim", "codec switched mount=%s codec=%s", m->id, camsim_codec_name(codec));
    if (m->up) /* the same path: replaces the old factory */
        gst_rtsp_mount_points_add_factory(cs->points, m->path, g_object_ref(m->factory));
    camsim_mount_drop(cs, m);
    return 0;
}

static gboolean stall_over(gpointer ud)
{
    camsim_mount *m = ud;
    m->stall_timer = 0;
    camsim_mount_resume(the_cs, m);
    return G_SOURCE_REMOVE;
}

void camsim_mount_stall(camsim *cs, camsim_mount *m, int seconds)
{
    if (m->stall_timer)
        g_source_remove(m->stall_timer);
    m->stall_timer = seconds > 0 ? g_timeout_add_seconds((guint)seconds, stall_over, m) : 0;
    g_atomic_int_set(&m->stalled, 1);
    log_info("camsim", "mount stalled mount=%s seconds=%d", m->id, seconds);
}

void camsim_mount_resume(camsim *cs, camsim_mount *m)
{
    if (m->stall_timer) {
        g_source_remove(m->stall_timer);
        m->stall_timer = 0;
    }
    if (g_atomic_int_get(&m->stalled))
        log_info("camsim", "mount resumed mount=%s", m->id);
    g_atomic_int_set(&m->stalled, 0);
}

void camsim_mount_set_password(camsim_mount *m, const char *password)
{
    g_mutex_lock(&m->lock);
    g_free(m->password);
    m->password = g_strdup(password);
    g_mutex_unlock(&m->lock);
    log_info("camsim", "password changed mount=%s", m->id);
}

/* ---- the command line ---- */

static int usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "camsim: %s\n", msg);
    fprintf(stderr,
            "usage: camsim --port 8554 [--bind 127.0.0.1] --streams N [--codec h264|h265|mix]\n"
            "              [--width 1280 --height 720 --fps 25 --bitrate KBIT --seconds 10 "
            "--gop FRAMES]\n"
            "              [--user U --password P] [--cache DIR] [--control PORT] [--file PATH "
            "...]\n");
    return 2;
}

static int opt_int(const char *s, const char *name, int lo, int hi, int *out)
{
    if (!s)
        return 0;
    gc_err err = {0};
    int64_t v;
    if (gc_parse_int(s, name, lo, hi, &v, &err) != 0) {
        fprintf(stderr, "camsim: %s\n", err.msg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static gboolean on_signal(gpointer ud)
{
    camsim *cs = ud;
    log_info("camsim", "stopping");
    g_main_loop_quit(cs->loop);
    return G_SOURCE_CONTINUE;
}

static GstRTSPFilterResult remove_all_sessions(GstRTSPSessionPool *pool, GstRTSPSession *s,
                                               gpointer ud)
{
    return GST_RTSP_FILTER_REMOVE;
}

static GstRTSPFilterResult remove_all_clients(GstRTSPServer *server, GstRTSPClient *c, gpointer ud)
{
    return GST_RTSP_FILTER_REMOVE;
}

/* The end of every session and client, run in the clients' own thread
 * (the pool's; their watches are dispatched there): done from the main
 * thread it raced a client closing itself in that thread, whose watch then
 * read a freed stream for ever (90 % of a core) and
 * gst_rtsp_thread_pool_cleanup waited on it: camsim never ended on SIGTERM. */
typedef struct closing {
    GstRTSPServer *server;
    GMutex lock;
    GCond cond;
    gboolean done;
} closing;

static gboolean close_all_here(gpointer ud)
{
    closing *cl = ud;
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(cl->server);
    g_list_free_full(gst_rtsp_session_pool_filter(pool, remove_all_sessions, NULL),
                     g_object_unref);
    g_object_unref(pool);
    g_list_free_full(gst_rtsp_server_client_filter(cl->server, remove_all_clients, NULL),
                     g_object_unref);
    g_mutex_lock(&cl->lock);
    cl->done = TRUE;
    g_cond_signal(&cl->cond);
    g_mutex_unlock(&cl->lock);
    return G_SOURCE_REMOVE;
}

static void close_all(GstRTSPServer *server)
{
    closing cl = {.server = server};
    g_mutex_init(&cl.lock);
    g_cond_init(&cl.cond);
    GstRTSPThreadPool *threads = gst_rtsp_server_get_thread_pool(server);
    GstRTSPThread *t = gst_rtsp_thread_pool_get_thread(threads, GST_RTSP_THREAD_TYPE_CLIENT, NULL);
    if (t) {
        g_main_context_invoke(t->context, close_all_here, &cl);
        g_mutex_lock(&cl.lock);
        while (!cl.done)
            g_cond_wait(&cl.cond, &cl.lock);
        g_mutex_unlock(&cl.lock);
        gst_rtsp_thread_stop(t);
    } else {
        close_all_here(&cl);
    }
    g_object_unref(threads);
    g_mutex_clear(&cl.lock);
    g_cond_clear(&cl.cond);
}

static gboolean quit_loop(gpointer ud)
{
    g_main_loop_quit(ud);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    char *port_s = NULL, *bind = NULL, *streams_s = NULL, *codec_s = NULL, *width_s = NULL,
         *height_s = NULL, *fps_s = NULL, *kbit_s = NULL, *seconds_s = NULL, *gop_s = NULL,
         *user = NULL, *password = NULL, *cache = NULL, *control_s = NULL;
    char **files = NULL;
    GOptionEntry entries[] = {
        {"port", 0, 0, G_OPTION_ARG_STRING, &port_s, "RTSP port (0: any free one)", "PORT"},
        {"bind", 0, 0, G_OPTION_ARG_STRING, &bind, "address to listen on", "ADDR"},
        {"streams", 0, 0, G_OPTION_ARG_STRING, &streams_s, "mounts /cam1 ... /camN", "N"},
        {"codec", 0, 0, G_OPTION_ARG_STRING, &codec_s, "h264, h265 or mix", "CODEC"},
        {"width", 0, 0, G_OPTION_ARG_STRING, &width_s, "clip width", "PX"},
        {"height", 0, 0, G_OPTION_ARG_STRING, &height_s, "clip height", "PX"},
        {"fps", 0, 0, G_OPTION_ARG_STRING, &fps_s, "clip frame rate", "FPS"},
        {"bitrate", 0, 0, G_OPTION_ARG_STRING, &kbit_s, "clip bitrate", "KBIT"},
        {"seconds", 0, 0, G_OPTION_ARG_STRING, &seconds_s, "clip length", "S"},
        {"gop", 0, 0, G_OPTION_ARG_STRING, &gop_s, "frames from keyframe to keyframe", "FRAMES"},
        {"user", 0, 0, G_OPTION_ARG_STRING, &user, "RTSP user", "U"},
        {"password", 0, 0, G_OPTION_ARG_STRING, &password, "RTSP password", "P"},
        {"cache", 0, 0, G_OPTION_ARG_FILENAME, &cache, "where clips are encoded once", "DIR"},
        {"control", 0, 0, G_OPTION_ARG_STRING, &control_s, "misbehaviour port (0: any)", "PORT"},
        {"file", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, "serve a file as is, /fileK", "PATH"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *octx = g_option_context_new("- simulated RTSP cameras");
    g_option_context_add_main_entries(octx, entries, NULL);
    GError *gerr = NULL;
    int rc = 0;
    camsim cs = {0};
    the_cs = &cs;
    cs.bind = "127.0.0.1";
    cs.port = 8554;
    cs.control_port = -1;
    cs.clip = (camsim_clip_spec){CAMSIM_H264, 1280, 720, 25, 2000, 10, 50};
    int streams = -1;
    bool mix = false;
    camsim_codec codec = CAMSIM_H264;
    if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
        rc = usage(gerr->message);
        g_clear_error(&gerr);
        goto out_opts;
    }
    if (argc > 1) {
        rc = usage("unexpected argument");
        goto out_opts;
    }
    if (opt_int(port_s, "--port", 0, 65535, &cs.port) ||
        opt_int(streams_s, "--streams", 0, 10000, &streams) ||
        opt_int(width_s, "--width", 16, 7680, &cs.clip.width) ||
        opt_int(height_s, "--height", 16, 4320, &cs.clip.height) ||
        opt_int(fps_s, "--fps", 1, 120, &cs.clip.fps) ||
        opt_int(kbit_s, "--bitrate", 16, 200000, &cs.clip.kbit) ||
        opt_int(seconds_s, "--seconds", 1, 600, &cs.clip.seconds) ||
        opt_int(gop_s, "--gop", 1, 1000, &cs.clip.gop) ||
        opt_int(control_s, "--control", 0, 65535, &cs.control_port)) {
        rc = 2;
        goto out_opts;
    }
    if (!gop_s)
        cs.clip.gop = cs.clip.fps * 2;
    if (streams < 0 && !files) {
        rc = usage("--streams is missing");
        goto out_opts;
    }
    if (streams < 0)
        streams = 0;
    if (cs.clip.width % 2 || cs.clip.height % 2) {
        rc = usage("--width and --height must be even (4:2:0 video)");
        goto out_opts;
    }
    if (codec_s && strcmp(codec_s, "mix") == 0)
        mix = true;
    else if (codec_s && camsim_codec_parse(codec_s, &codec) != 0) {
        rc = usage("--codec must be h264, h265 or mix");
        goto out_opts;
    }
    if (!!user != !!password) {
        rc = usage("--user and --password go together");
        goto out_opts;
    }
    if (bind)
        cs.bind = bind;
    cs.user = user;
    cs.password = password;
    if (cache)
        cs.cache = g_strdup(cache);
    else if (g_getenv("XDG_CACHE_HOME") && *g_getenv("XDG_CACHE_HOME"))
        cs.cache = g_build_filename(g_getenv("XDG_CACHE_HOME"), "gridcc", "camsim", NULL);
    else
        cs.cache = g_strdup("/tmp/camsim-cache");

    cs.loop = g_main_loop_new(NULL, FALSE);
    cs.mounts = g_ptr_array_new_with_free_func((GDestroyNotify)mount_free);
    cs.server = g_object_new(CAMSIM_TYPE_SERVER, NULL);
    gst_rtsp_server_set_address(cs.server, cs.bind);
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", cs.port);
    gst_rtsp_server_set_service(cs.server, port_str);
    cs.points = gst_rtsp_server_get_mount_points(cs.server);
    cs.auth = g_object_new(CAMSIM_TYPE_AUTH, NULL);
    gst_rtsp_auth_set_realm(cs.auth, "camsim");
    gst_rtsp_auth_set_supported_methods(cs.auth, GST_RTSP_AUTH_BASIC | GST_RTSP_AUTH_DIGEST);
    gst_rtsp_server_set_auth(cs.server, cs.auth);
    g_signal_connect(cs.server, "client-connected", G_CALLBACK(client_connected), NULL);

    /* the socket first: the URLs logged by the mounts carry the port */
    GSource *server_src = NULL;
    guint server_id = gst_rtsp_server_attach(cs.server, NULL);
    if (!server_id) {
        fprintf(stderr, "camsim: cannot listen on %s:%d\n", cs.bind, cs.port);
        rc = 1;
        goto out;
    }
    server_src = g_main_context_find_source_by_id(NULL, server_id);
    cs.port = gst_rtsp_server_get_bound_port(cs.server);

    gc_err err = {0};
    for (int i = 1; i <= streams; i++) {
        char id[32];
        snprintf(id, sizeof id, "cam%d", i);
        camsim_codec c = mix ? (i % 2 ? CAMSIM_H264 : CAMSIM_H265) : codec;
        if (!camsim_mount_add_clip(&cs, id, c, &err)) {
            fprintf(stderr, "camsim: %s\n", err.msg);
            rc = 1;
            goto out;
        }
    }
    for (int i = 0; files && files[i]; i++) {
        char id[32];
        snprintf(id, sizeof id, "file%d", i + 1);
        if (!mount_add_file(&cs, id, files[i], &err)) {
            fprintf(stderr, "camsim: %s\n", err.msg);
            rc = 1;
            goto out;
        }
    }
    if (cs.control_port >= 0 && camsim_control_start(&cs, &err) != 0) {
        fprintf(stderr, "camsim: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, &cs);
    guint sigint = g_unix_signal_add(SIGINT, on_signal, &cs);
    printf("camsim: ready port=%d control=%d streams=%u\n", cs.port,
           cs.control_port >= 0 ? cs.control_port : 0, cs.mounts->len);
    fflush(stdout);
    g_main_loop_run(cs.loop);
    g_source_remove(sigterm);
    g_source_remove(sigint);

out:
    camsim_control_stop(&cs);
    if (server_src)
        g_source_destroy(server_src);
    if (cs.server) {
        close_all(GST_RTSP_SERVER(cs.server));
        for (guint i = 0; i < cs.mounts->len; i++)
            gst_rtsp_mount_points_remove_factory(
                cs.points, ((camsim_mount *)g_ptr_array_index(cs.mounts, i))->path);
        /* media threads finish their unprepare; a moment of loop lets the
         * clients' closing callbacks run */
        g_timeout_add(200, quit_loop, cs.loop);
        g_main_loop_run(cs.loop);
        gst_rtsp_thread_pool_cleanup();
    }
    g_clear_object(&cs.points);
    g_clear_object(&cs.auth);
    g_clear_object(&cs.server);
    if (cs.mounts)
        g_ptr_array_free(cs.mounts, TRUE);
    if (cs.loop)
        g_main_loop_unref(cs.loop);
    g_free(cs.cache);
out_opts:
    g_option_context_free(octx);
    g_free(port_s);
    g_free(bind);
    g_free(streams_s);
    g_free(codec_s);
    g_free(width_s);
    g_free(height_s);
    g_free(fps_s);
    g_free(kbit_s);
    g_free(seconds_s);
    g_free(gop_s);
    g_free(user);
    if (password)
        memset(password, 0, strlen(password));
    g_free(password);
    g_free(cache);
    g_free(control_s);
    g_strfreev(files);
    gst_deinit();
    return rc;
}
