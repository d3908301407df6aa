/* video: cameras, their pipelines and health, and the live view's fan-out.
 *
 * Each camera runs one pipeline: rtsp.pipeline, and once rtspsrc adds its
 * video pad, the branch for that pad's codec (h264/h265.pipeline), so one
 * source template serves both codecs and a camera that switches codec is
 * simply read again. A pad probe takes the access units (the ring) and an
 * appsink mp4mux's fragmented output (split here into init and fragments on
 * the streaming thread). Streaming threads only append to their pipeline's
 * queue under its mutex and attach an idle source to the loop's context;
 * the loop drains the queue, keeps health and calls viewers. A pipeline
 * being torn down is marked stopped first, so nothing it queued afterwards
 * reaches a camera that has moved on.
 *
 * Errors from the bus are mapped to a reason by the GError's domain and
 * code, and for rtspsrc's generic ones by its debug text (recorded from
 * GStreamer 1.22): NOT_AUTHORIZED "Unauthorized (401)" → unauthorized;
 * NOT_FOUND "Not Found (404)" → not_found; OPEN_READ_WRITE "Failed to
 * connect. (Generic error)" → refused (nothing listens); READ "Could not
 * receive message. (Timeout while waiting for server response)" or
 * "(Parse error)" (a host that never answers) → timeout; READ or WRITE
 * otherwise → disconnected; EOS → eos; anything else → error.
 *
 * An H.265 camera watched by a browser that cannot decode HEVC gets one
 * transcode to H.264 (transcode-h264.pipeline): an appsrc fed on the loop
 * with the access units the ring keeps, from the latest keyframe on, and the
 * same fMP4 split and queue as a camera's own pipeline. It runs while any
 * viewer wants H.264 and stops when the last leaves; fed faster than it
 * encodes, it skips to the next keyframe rather than queue without bound. */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <string.h>

#include "gridcc/log.h"
#include "video_rtsp.h"
#include "video_priv.h"

#define MAX_GOP_FRAGMENTS 1024

typedef struct vcam vcam;
typedef struct vpipe vpipe;

typedef enum { IT_AU, IT_CAPS, IT_INIT, IT_FRAG, IT_UNSUPPORTED, IT_BROKEN, IT_MSG } item_kind;
typedef struct item {
    item_kind kind;
    bool key;
    int64_t wall_ms;
    GstBuffer *buf;
    GstCaps *caps;
    GBytes *bytes;
    GstMessage *msg; /* the bus's error, end or warning */
    char what[64];
} item;

struct vpipe {
    gint ref;
    video *v;
    vcam *cam; /* loop only; NULL once stopped */
    GstElement *pipeline;
    video_rtsp_session *rtsp; /* the camera read by video_rtsp, not rtspsrc */
    GstBusFunc bus_fn;        /* the bus's messages, on the loop */
    GMutex lock; /* guards items, queued, stopped */
    GQueue items;
    bool queued; /* in the video's dirty list */
    bool stopped;
    bool linked;      /* streaming thread: a video branch is in */
    bool transcode;   /* the camera's H.264 transcode, not its own stream */
    video_fmp4 *fmp4; /* the fmp4 appsink's thread only */
    GstCaps *au_caps; /* the au appsink's thread only */
    /* also that thread's: the framing of its access units, and when they
     * last held a random access point (monotonic µs) */
    bool au_h265;
    int au_nal_len;
    int64_t au_first_us, au_ra_us;
};

typedef struct ring_ent {
    GstBuffer *buf;
    int64_t wall_ms;
    bool key;
} ring_ent;

struct video_viewer {
    vcam *cam;
    bool h264; /* cannot decode H.265: served the transcode */
    video_viewer_cb cb;
    void *ud;
};

struct vcam {
    video *v;
    char *id, *url, *redacted, *transport, *secret;
    video_state state;
    char reason[32];
    vpipe *pipe;
    GSource *retry;
    int attempt;
    gint64 since_us, last_data_us, playing_since_us, retry_at_us;
    /* health */
    uint64_t tick_bytes, tick_frames;
    double bitrate, fps;
    int64_t last_key_ms;
    char codec[8], mime[96];
    int width, height;
    /* live view */
    GBytes *init;
    GPtrArray *gop; /* GBytes* since the latest keyframe fragment */
    GList *viewers;
    /* the H.265 → H.264 transcode, while an h264 viewer watches */
    vpipe *tpipe;
    GstElement *tsrc;          /* its appsrc */
    bool tneed_key;            /* fed from a keyframe on */
    GBytes *tinit;             /* its init segment */
    GPtrArray *tgop;           /* its fragments since its latest keyframe */
    char tmime[96];
    int theight, twidth;
    gint64 tretry_us;          /* failed: not started again before this */
    uint64_t tskips;
    /* ring */
    ring_ent *ring;
    size_t ring_cap, ring_head, ring_len, ring_bytes;
    GstCaps *ring_caps;
};

struct video {
    GMainContext *ctx;
    video_opts o;
    video_events cb;
    void *ud;
    GHashTable *cams; /* id → vcam* */
    GHashTable *tmpl; /* name → text */
    char *branch[2];  /* h264, h265 expanded */
    GSource *tick;
    gint64 last_tick_us;
    int busy;
    video_rtsp *rtsp; /* from the first camera read without rtspsrc */
    /* the pipelines with items queued, drained together on the loop: one
     * wake-up per DRAIN_MS for every camera, not one per frame of each */
    GMutex dlock;
    GPtrArray *dirty; /* vpipe*, a ref each */
    GSource *drain;
};

static const char *TEMPLATES[] = {"rtsp",      "h264",      "h265",          "snapshot-h264",
                                  "snapshot-h265", "clip-h264", "clip-h265", "transcode-h264"};

/* ---- the pipeline's queue (any thread) ---- */

static vpipe *pipe_ref(vpipe *p)
{
    g_atomic_int_inc(&p->ref);
    return p;
}

static void item_free(item *it)
{
    if (it->buf)
        gst_buffer_unref(it->buf);
    if (it->caps)
        gst_caps_unref(it->caps);
    if (it->bytes)
        g_bytes_unref(it->bytes);
    if (it->msg)
        gst_message_unref(it->msg);
    g_free(it);
}

static void pipe_unref(gpointer ud)
{
    vpipe *p = ud;
    if (!g_atomic_int_dec_and_test(&p->ref))
        return;
    g_queue_clear_full(&p->items, (GDestroyNotify)item_free);
    g_mutex_clear(&p->lock);
    video_fmp4_free(p->fmp4);
    if (p->au_caps)
        gst_caps_unref(p->au_caps);
    g_free(p);
}

static void cam_handle(vcam *c, item *it);
static void trans_handle(vcam *c, item *it);

/* The loop waits this long at most to take what the streaming threads
 * handed over: a hundred cameras' frames and fragments wake it 100 times a
 * second, not 3,500 (a wake-up polls every socket of the loop). */
#define DRAIN_MS 10

static gboolean video_drain(gpointer ud)
{
    video *v = ud;
    g_mutex_lock(&v->dlock);
    GPtrArray *dirty = v->dirty;
    v->dirty = g_ptr_array_new();
    g_source_unref(v->drain);
    v->drain = NULL;
    g_mutex_unlock(&v->dlock);
    for (guint i = 0; i < dirty->len; i++) {
        vpipe *p = g_ptr_array_index(dirty, i);
        g_mutex_lock(&p->lock);
        GQueue q = p->items;
        g_queue_init(&p->items);
        p->queued = false;
        g_mutex_unlock(&p->lock);
        item *it;
        while ((it = g_queue_pop_head(&q))) {
            if (it->kind == IT_MSG)
                p->bus_fn(NULL, it->msg, p);
            else if (p->cam)
                (p->transcode ? trans_handle : cam_handle)(p->cam, it);
            item_free(it);
        }
        pipe_unref(p);
    }
    g_ptr_array_free(dirty, TRUE);
    return G_SOURCE_REMOVE;
}

static void pipe_push(vpipe *p, item *it)
{
    g_mutex_lock(&p->lock);
    if (p->stopped) {
        g_mutex_unlock(&p->lock);
        item_free(it);
        return;
    }
    g_queue_push_tail(&p->items, it);
    bool first = !p->queued;
    p->queued = true;
    g_mutex_unlock(&p->lock);
    if (!first)
        return;
    video *v = p->v;
    g_mutex_lock(&v->dlock);
    g_ptr_array_add(v->dirty, pipe_ref(p));
    if (!v->drain) {
        v->drain = g_timeout_source_new(DRAIN_MS);
        g_source_set_callback(v->drain, video_drain, v, NULL);
        g_source_attach(v->drain, v->ctx);
    }
    g_mutex_unlock(&v->dlock);
}

/* Any thread: the bus's errors, ends and warnings go to the pipeline's
 * queue (a bus watch would add a socket per camera to every poll of the
 * loop); the rest is dropped unread (and freed here: GstBusSyncHandler's
 * contract for GST_BUS_DROP). */
static GstBusSyncReply pipe_bus_sync(GstBus *bus, GstMessage *m, gpointer ud)
{
    GstMessageType t = GST_MESSAGE_TYPE(m);
    if (t == GST_MESSAGE_ERROR || t == GST_MESSAGE_EOS || t == GST_MESSAGE_WARNING) {
        item *it = g_new0(item, 1);
        it->kind = IT_MSG;
        it->msg = gst_message_ref(m);
        pipe_push(ud, it);
    }
    gst_message_unref(m); /* a handler that drops the message frees it */
    return GST_BUS_DROP;
}

/* ---- streaming threads ---- */

/* A camera that sends I pictures but no IDR picture nor recovery point for
 * this long has its I pictures taken as starting points after all (some do,
 * after the first): a picture with a few wrong blocks beats no picture. */
#define NO_IDR_FALLBACK_US (10 * G_USEC_PER_SEC)

static void au_framing(vpipe *p, GstCaps *caps)
{
    GstStructure *st = gst_caps_get_structure(caps, 0);
    p->au_h265 = gst_structure_has_name(st, "video/x-h265");
    p->au_nal_len = 0;
    const GValue *cdv = gst_structure_get_value(st, "codec_data");
    GstBuffer *cd = cdv && G_VALUE_HOLDS(cdv, GST_TYPE_BUFFER) ? gst_value_get_buffer(cdv) : NULL;
    GstMapInfo m;
    if (cd && gst_buffer_map(cd, &m, GST_MAP_READ)) {
        int n = video_nal_length_size(p->au_h265, m.data, m.size);
        p->au_nal_len = n > 0 ? n : 0;
        gst_buffer_unmap(cd, &m);
    }
}

/* h264parse's keyframe (any I picture): may a decode start on it? */
static bool au_random_access(vpipe *p, GstBuffer *b)
{
    int64_t now = g_get_monotonic_time();
    if (!p->au_first_us)
        p->au_first_us = now;
    if (!p->au_nal_len)
        return true; /* framing unknown: the parser's word */
    GstMapInfo m;
    if (!gst_buffer_map(b, &m, GST_MAP_READ))
        return true;
    int ra = video_au_random_access(p->au_h265, p->au_nal_len, m.data, m.size);
    gst_buffer_unmap(b, &m);
    if (ra < 0)
        return true;
    if (ra > 0) {
        p->au_ra_us = now;
        return true;
    }
    return now - MAX(p->au_ra_us, p->au_first_us) > NO_IDR_FALLBACK_US;
}

static GstPadProbeReturn on_au(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    vpipe *p = ud;
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!b)
        return GST_PAD_PROBE_OK;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (caps && caps != p->au_caps) {
        gst_caps_replace(&p->au_caps, caps);
        au_framing(p, caps);
        item *ci = g_new0(item, 1);
        ci->kind = IT_CAPS;
        ci->caps = gst_caps_ref(caps);
        pipe_push(p, ci);
    }
    if (caps)
        gst_caps_unref(caps);
    bool key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
    if (key && !au_random_access(p, b)) {
        /* mp4mux marks the sample as it finds the flag: not a sync sample */
        b = gst_buffer_make_writable(b);
        GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
        GST_PAD_PROBE_INFO_DATA(info) = b;
        key = false;
    }
    item *it = g_new0(item, 1);
    it->kind = IT_AU;
    it->buf = gst_buffer_ref(b);
    it->key = key;
    it->wall_ms = g_get_real_time() / 1000;
    pipe_push(p, it);
    return GST_PAD_PROBE_OK;
}

static void on_fmp4_unit(void *ud, bool init, bool key, const uint8_t *data, size_t len)
{
    vpipe *p = ud;
    item *it = g_new0(item, 1);
    it->kind = init ? IT_INIT : IT_FRAG;
    it->key = key;
    it->bytes = g_bytes_new(data, len);
    pipe_push(p, it);
}

static GstFlowReturn on_fmp4(GstAppSink *sink, gpointer ud)
{
    vpipe *p = ud;
    GstSample *s = gst_app_sink_pull_sample(sink);
    if (!s)
        return GST_FLOW_EOS;
    GstBuffer *b = gst_sample_get_buffer(s);
    GstMapInfo m;
    GstFlowReturn ret = GST_FLOW_OK;
    if (gst_buffer_map(b, &m, GST_MAP_READ)) {
        gc_err err = {0};
        if (video_fmp4_push(p->fmp4, m.data, m.size, &err)) {
            item *it = g_new0(item, 1);
            it->kind = IT_BROKEN;
            g_strlcpy(it->what, err.msg, sizeof it->what);
            pipe_push(p, it);
            ret = GST_FLOW_ERROR;
        }
        gst_buffer_unmap(b, &m);
    }
    gst_sample_unref(s);
    return ret;
}

/* The same finite range reaches mp4mux as the segment's stop: an aggregator
 * clips every buffer past it, so the live view froze after the server's
 * announced length (camsim's loop: 10 s) while the ring went on filling. A
 * live camera's segment has no end. */
static GstPadProbeReturn open_segment(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) != GST_EVENT_SEGMENT)
        return GST_PAD_PROBE_OK;
    const GstSegment *seg;
    gst_event_parse_segment(ev, &seg);
    if (!GST_CLOCK_TIME_IS_VALID(seg->stop))
        return GST_PAD_PROBE_OK;
    GstSegment open = *seg;
    open.stop = GST_CLOCK_TIME_NONE;
    GstEvent *n = gst_event_new_segment(&open);
    gst_event_set_seqnum(n, gst_event_get_seqnum(ev));
    gst_event_unref(ev);
    GST_PAD_PROBE_INFO_DATA(info) = n;
    return GST_PAD_PROBE_OK;
}

static void sink_callbacks(GstElement *bin, const char *name,
                           GstFlowReturn (*fn)(GstAppSink *, gpointer), vpipe *p)
{
    GstElement *e = gst_bin_get_by_name(GST_BIN(bin), name);
    if (!e)
        return;
    GstAppSinkCallbacks cb = {.new_sample = fn};
    gst_app_sink_set_callbacks(GST_APP_SINK(e), &cb, p, NULL);
    gst_object_unref(e);
}

static void link_fakesink(GstElement *pipeline, GstPad *pad)
{
    GstElement *f = gst_element_factory_make("fakesink", NULL);
    g_object_set(f, "sync", FALSE, "async", FALSE, NULL);
    gst_bin_add(GST_BIN(pipeline), f);
    gst_element_sync_state_with_parent(f);
    GstPad *sink = gst_element_get_static_pad(f, "sink");
    gst_pad_link(pad, sink);
    gst_object_unref(sink);
}

static void pipe_taps(vpipe *p, GstElement *bin);

/* Any thread: the pipeline cannot go on (the camera fails with "error"). */
static void pipe_broken(vpipe *p, const char *what)
{
    item *it = g_new0(item, 1);
    it->kind = IT_BROKEN;
    g_strlcpy(it->what, what, sizeof it->what);
    pipe_push(p, it);
}

/* A streaming thread (rtspsrc's, or video_rtsp's worker): the RTP caps of
 * the camera's video name the codec; its branch is parsed and linked to pad.
 * FALSE when there is none (the pipeline's queue is told why). */
static bool branch_link(vpipe *p, GstPad *pad, GstCaps *caps)
{
    const GstStructure *st = gst_caps_get_structure(caps, 0);
    const char *enc = gst_structure_get_string(st, "encoding-name");
    int which = -1;
    if (enc && !g_ascii_strcasecmp(enc, "H264"))
        which = 0;
    else if (enc && !g_ascii_strcasecmp(enc, "H265"))
        which = 1;
    if (which < 0) {
        item *it = g_new0(item, 1);
        it->kind = IT_UNSUPPORTED;
        g_strlcpy(it->what, enc ? enc : "?", sizeof it->what);
        pipe_push(p, it);
        return false;
    }
    GError *e = NULL;
    GstElement *bin = gst_parse_bin_from_description(p->v->branch[which], TRUE, &e);
    if (!bin) {
        pipe_broken(p, e ? e->message : "branch");
        g_clear_error(&e);
        return false;
    }
    g_clear_error(&e); /* a warning for a property left out, say */
    pipe_taps(p, bin);
    gst_bin_add(GST_BIN(p->pipeline), bin);
    gst_element_sync_state_with_parent(bin);
    GstPad *sink = gst_element_get_static_pad(bin, "sink");
    bool ok = gst_pad_link(pad, sink) == GST_PAD_LINK_OK;
    gst_object_unref(sink);
    if (ok)
        p->linked = true;
    else
        pipe_broken(p, "the codec branch cannot be linked to the camera");
    return ok;
}

/* rtspsrc's thread: a pad of the camera's; the first video one is read. */
static void on_pad_added(GstElement *src, GstPad *pad, gpointer ud)
{
    vpipe *p = ud;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps)
        caps = gst_pad_query_caps(pad, NULL);
    const char *media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
    if (!media || strcmp(media, "video") || p->linked)
        link_fakesink(p->pipeline, pad); /* audio, metadata: read and dropped */
    else if (!branch_link(p, pad, caps))
        link_fakesink(p->pipeline, pad);
    gst_caps_unref(caps);
}

/* video_rtsp's worker: the camera's video from its SDP; the branch is
 * linked to a pad of ours, which the reading thread pushes into. */
static GstPad *on_rtsp_stream(void *ud, GstCaps *caps)
{
    vpipe *p = ud;
    GstPad *src = gst_pad_new("rtp", GST_PAD_SRC);
    gst_pad_set_active(src, TRUE);
    if (!branch_link(p, src, caps)) {
        gst_object_unref(src);
        return NULL;
    }
    /* sticky events are "accepted" whatever the branch makes of them: ask */
    if (!gst_pad_peer_query_accept_caps(src, caps)) {
        pipe_broken(p, "the codec branch refused the camera's caps");
        GstPad *peer = gst_pad_get_peer(src);
        if (peer) {
            gst_pad_unlink(src, peer);
            gst_object_unref(peer);
        }
        gst_object_unref(src);
        return NULL;
    }
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_pad_push_event(src, gst_event_new_stream_start("camera"));
    gst_pad_push_event(src, gst_event_new_caps(caps));
    gst_pad_push_event(src, gst_event_new_segment(&seg));
    return src;
}

/* video_rtsp's threads: the session ended; said on the bus as rtspsrc
 * would have said it. */
static void on_rtsp_error(void *ud, GstResourceError code, const char *text, const char *debug)
{
    vpipe *p = ud;
    GError *e = g_error_new_literal(GST_RESOURCE_ERROR, code, text);
    gst_element_post_message(p->pipeline, gst_message_new_error(GST_OBJECT(p->pipeline), e, debug));
    g_error_free(e);
}

/* A camera is live: it has no end. A server that announces a finite range
 * (a=range:npt=0-2, as gst-rtsp-server does for a looped file) makes
 * rtspsrc put npt-stop in its caps, and the jitter buffer ends the stream
 * with EOS there ("got the NPT timeout"): the stop is taken out of the caps
 * on their way in. */
static GstPadProbeReturn drop_npt_stop(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS)
        return GST_PAD_PROBE_OK;
    GstCaps *caps;
    gst_event_parse_caps(ev, &caps);
    if (!gst_structure_has_field(gst_caps_get_structure(caps, 0), "npt-stop"))
        return GST_PAD_PROBE_OK;
    GstCaps *c = gst_caps_copy(caps);
    gst_structure_remove_field(gst_caps_get_structure(c, 0), "npt-stop");
    GstEvent *n = gst_event_new_caps(c);
    gst_caps_unref(c);
    gst_event_unref(ev);
    GST_PAD_PROBE_INFO_DATA(info) = n;
    return GST_PAD_PROBE_OK;
}

static void on_new_jitterbuffer(GstElement *rtpbin, GstElement *jb, guint session, guint ssrc,
                                gpointer ud)
{
    GstPad *sink = gst_element_get_static_pad(jb, "sink");
    if (sink) {
        gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, drop_npt_stop, NULL, NULL);
        gst_object_unref(sink);
    }
}

static void on_new_manager(GstElement *src, GstElement *manager, gpointer ud)
{
    if (g_signal_lookup("new-jitterbuffer", G_OBJECT_TYPE(manager)))
        g_signal_connect(manager, "new-jitterbuffer", G_CALLBACK(on_new_jitterbuffer), NULL);
}

/* ---- cameras (the loop) ---- */

static char *scrub(vcam *c, const char *text)
{
    if (!text)
        return g_strdup("");
    char *out = g_strdup(text);
    if (c->secret && *c->secret) {
        char **parts = g_strsplit(out, c->secret, -1);
        g_free(out);
        out = g_strjoinv("***", parts);
        g_strfreev(parts);
    }
    return out;
}

static void cam_state(vcam *c, video_state s, const char *reason)
{
    reason = reason ? reason : "";
    if (c->state == s && !strcmp(c->reason, reason))
        return;
    c->state = s;
    g_strlcpy(c->reason, reason, sizeof c->reason);
    c->since_us = g_get_monotonic_time();
    if (s == VIDEO_PLAYING)
        c->playing_since_us = c->since_us;
    log_info("video", "camera state id=%s state=%s reason=%s url=%s", c->id, video_state_name(s),
             *reason ? reason : "-", c->redacted);
    if (c->v->cb.state)
        c->v->cb.state(c->v->ud, c->id, video_state_name(s), reason);
    for (GList *l = c->viewers, *next; l; l = next) {
        next = l->next;
        video_viewer *w = l->data;
        w->cb.state(w->ud, video_state_name(s), reason);
    }
}

static void pipe_stop(vpipe *p)
{
    if (!p)
        return;
    p->cam = NULL;
    g_mutex_lock(&p->lock);
    p->stopped = true; /* what is queued is dropped by the next drain */
    g_mutex_unlock(&p->lock);
    /* synchronous: nothing pushes into the pipeline after this */
    video_rtsp_close(p->rtsp);
    p->rtsp = NULL;
    /* synchronous: rtspsrc joins its threads (teardown-timeout bounds the
     * TEARDOWN it sends on the way) */
    gst_element_set_state(p->pipeline, GST_STATE_NULL);
    GstBus *bus = gst_element_get_bus(p->pipeline);
    gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
    gst_object_unref(bus);
    gst_object_unref(p->pipeline);
    p->pipeline = NULL;
    pipe_unref(p);
}

static void ring_clear(vcam *c)
{
    for (size_t i = 0; i < c->ring_len; i++)
        gst_buffer_unref(c->ring[(c->ring_head + i) % c->ring_cap].buf);
    c->ring_head = c->ring_len = c->ring_bytes = 0;
}

static void gop_clear(vcam *c)
{
    g_ptr_array_set_size(c->gop, 0);
}

static void cam_start(vcam *c);

static gboolean retry_fire(gpointer ud)
{
    vcam *c = ud;
    g_source_unref(c->retry);
    c->retry = NULL;
    cam_start(c);
    return G_SOURCE_REMOVE;
}

static void trans_stop(vcam *c);

static void cam_stop(vcam *c)
{
    trans_stop(c); /* it is fed by this pipeline */
    pipe_stop(c->pipe);
    c->pipe = NULL;
    if (c->retry) {
        g_source_destroy(c->retry);
        g_source_unref(c->retry);
        c->retry = NULL;
    }
}

/* The pipeline failed: down it goes, and a retry is armed. */
static void cam_fail(vcam *c, const char *reason, const char *detail)
{
    char *d = scrub(c, detail);
    cam_stop(c);
    int64_t delay;
    video_state s;
    if (!strcmp(reason, "unsupported_codec")) {
        delay = (int64_t)c->v->o.failed_retry_s * 1000;
        s = VIDEO_FAILED;
    } else {
        delay = video_backoff_ms(c->attempt, g_random_double(), c->v->o.backoff_min_ms,
                                 c->v->o.backoff_max_ms);
        if (c->attempt < 30)
            c->attempt++;
        s = VIDEO_RETRYING;
    }
    log_warn("video", "camera down id=%s reason=%s retry_ms=%lld detail=\"%s\" url=%s", c->id,
             reason, (long long)delay, d, c->redacted);
    g_free(d);
    c->retry_at_us = g_get_monotonic_time() + delay * 1000;
    c->retry = g_timeout_source_new((guint)delay);
    g_source_set_callback(c->retry, retry_fire, c, NULL);
    g_source_attach(c->retry, c->v->ctx);
    cam_state(c, s, reason);
}

static const char *map_error(const GError *e, const char *debug)
{
    debug = debug ? debug : "";
    if (e->domain == GST_RESOURCE_ERROR) {
        switch (e->code) {
        case GST_RESOURCE_ERROR_NOT_AUTHORIZED: return "unauthorized";
        case GST_RESOURCE_ERROR_NOT_FOUND: return "not_found";
        case GST_RESOURCE_ERROR_OPEN_READ:
        case GST_RESOURCE_ERROR_OPEN_WRITE:
        case GST_RESOURCE_ERROR_OPEN_READ_WRITE:
            if (strstr(debug, "401"))
                return "unauthorized";
            if (strstr(debug, "404"))
                return "not_found";
            return strstr(debug, "Timeout") ? "timeout" : "refused";
        case GST_RESOURCE_ERROR_READ:
        case GST_RESOURCE_ERROR_WRITE:
            if (strstr(debug, "Timeout") || strstr(debug, "Parse error"))
                return "timeout";
            return "disconnected";
        default: break;
        }
    }
    if (e->domain == GST_STREAM_ERROR && e->code == GST_STREAM_ERROR_CODEC_NOT_FOUND)
        return "unsupported_codec";
    return "error";
}

static gboolean on_bus(GstBus *bus, GstMessage *m, gpointer ud)
{
    vpipe *p = ud;
    vcam *c = p->cam;
    if (!c)
        return G_SOURCE_CONTINUE;
    switch (GST_MESSAGE_TYPE(m)) {
    case GST_MESSAGE_ERROR: {
        GError *e = NULL;
        char *dbg = NULL;
        gst_message_parse_error(m, &e, &dbg);
        const char *reason = map_error(e, dbg);
        char *detail = g_strdup_printf("%s: %s (%s %d)", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
                                       e->message, g_quark_to_string(e->domain), e->code);
        cam_fail(c, reason, detail); /* p is freed here */
        g_free(detail);
        g_clear_error(&e);
        g_free(dbg);
        return G_SOURCE_REMOVE;
    }
    case GST_MESSAGE_EOS: cam_fail(c, "eos", "end of stream"); return G_SOURCE_REMOVE;
    case GST_MESSAGE_WARNING: {
        GError *e = NULL;
        gst_message_parse_warning(m, &e, NULL);
        char *d = scrub(c, e ? e->message : "");
        log_debug("video", "warning id=%s msg=\"%s\"", c->id, d);
        g_free(d);
        g_clear_error(&e);
        return G_SOURCE_CONTINUE;
    }
    default: return G_SOURCE_CONTINUE;
    }
}

/* The queue and bus watch of a parsed pipeline (the camera's or its
 * transcode's); the pipeline is the vpipe's from here. */
static vpipe *pipe_new(vcam *c, GstElement *pl, GstBusFunc bus_fn, bool transcode)
{
    vpipe *p = g_new0(vpipe, 1);
    p->ref = 1;
    p->v = c->v;
    p->cam = c;
    p->pipeline = pl;
    p->transcode = transcode;
    g_mutex_init(&p->lock);
    g_queue_init(&p->items);
    p->fmp4 = video_fmp4_new(on_fmp4_unit, p);
    p->bus_fn = bus_fn;
    GstBus *bus = gst_element_get_bus(pl);
    gst_bus_set_sync_handler(bus, pipe_bus_sync, p, NULL);
    gst_object_unref(bus);
    return p;
}

/* The au capsfilter's output (a probe on its src pad) and mp4mux's
 * fragments (the appsink named fmp4) go to the pipeline's queue. */
static void pipe_taps(vpipe *p, GstElement *bin)
{
    GstElement *au = gst_bin_get_by_name(GST_BIN(bin), "au");
    if (au) {
        GstPad *src = gst_element_get_static_pad(au, "src");
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_au, p, NULL);
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, open_segment, NULL, NULL);
        gst_object_unref(src);
        gst_object_unref(au);
    }
    sink_callbacks(bin, "fmp4", on_fmp4, p);
}

/* The camera's pipeline p is in: connecting, and it goes to PLAYING. */
static void cam_connecting(vcam *c, vpipe *p)
{
    c->pipe = p;
    c->last_data_us = 0;
    cam_state(c, VIDEO_CONNECTING, c->attempt ? c->reason : "");
    c->since_us = g_get_monotonic_time();
    if (gst_element_set_state(p->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        log_debug("video", "set_state PLAYING failed id=%s; the bus says why", c->id);
}

/* Over TCP the camera is read by video_rtsp (one thread for them all);
 * over UDP, or with --video-ingest rtspsrc, by rtsp.pipeline's rtspsrc. */
static bool cam_direct(const vcam *c)
{
    return strcmp(c->v->o.ingest, "rtspsrc") && (!c->transport || !strcmp(c->transport, "tcp"));
}

#define DIRECT_TIMEOUT_MS 10000

static void cam_start_direct(vcam *c)
{
    video *v = c->v;
    if (!v->rtsp)
        v->rtsp = video_rtsp_new();
    /* empty: its branch joins when the camera's SDP is read */
    vpipe *p = pipe_new(c, gst_pipeline_new("rtsp"), on_bus, false);
    cam_connecting(c, p);
    video_rtsp_cb cb = {.stream = on_rtsp_stream, .error = on_rtsp_error};
    p->rtsp = video_rtsp_open(v->rtsp, c->url, DIRECT_TIMEOUT_MS, &cb, p);
}

static void cam_start(vcam *c)
{
    video *v = c->v;
    if (cam_direct(c)) {
        cam_start_direct(c);
        return;
    }
    char latency[16];
    snprintf(latency, sizeof latency, "%d", v->o.latency_ms);
    const char *keys[] = {"url", "protocols", "latency"};
    const char *vals[] = {c->url, c->transport ? c->transport : "tcp", latency};
    char *desc = NULL;
    gc_err err = {0};
    if (video_template_expand(video_template(v, "rtsp"), keys, vals, 3, &desc, &err)) {
        cam_fail(c, "error", err.msg);
        return;
    }
    GError *e = NULL;
    GstElement *pl = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &e);
    g_free(desc);
    if (!pl) {
        cam_fail(c, "error", e ? e->message : "gst_parse_launch");
        g_clear_error(&e);
        return;
    }
    g_clear_error(&e);
    if (!GST_IS_PIPELINE(pl)) { /* a template of one element parses to that element */
        GstElement *top = gst_pipeline_new(NULL);
        gst_bin_add(GST_BIN(top), pl);
        pl = top;
    }
    GstElement *src = gst_bin_get_by_name(GST_BIN(pl), "src");
    if (!src) {
        gst_object_unref(pl);
        cam_fail(c, "error", "rtsp.pipeline has no element named src");
        return;
    }
    vpipe *p = pipe_new(c, pl, on_bus, false);
    g_signal_connect(src, "pad-added", G_CALLBACK(on_pad_added), p);
    g_signal_connect(src, "new-manager", G_CALLBACK(on_new_manager), NULL);
    gst_object_unref(src);
    cam_connecting(c, p);
}

/* ---- what the pipeline hands over (the loop) ---- */

static void ring_push(vcam *c, GstBuffer *b, int64_t wall, bool key)
{
    video *v = c->v;
    if (c->ring_len == c->ring_cap) {
        size_t ncap = c->ring_cap ? c->ring_cap * 2 : 256;
        ring_ent *n = g_new(ring_ent, ncap);
        for (size_t i = 0; i < c->ring_len; i++)
            n[i] = c->ring[(c->ring_head + i) % c->ring_cap];
        g_free(c->ring);
        c->ring = n;
        c->ring_cap = ncap;
        c->ring_head = 0;
    }
    c->ring[(c->ring_head + c->ring_len) % c->ring_cap] =
        (ring_ent){.buf = gst_buffer_ref(b), .wall_ms = wall, .key = key};
    c->ring_len++;
    c->ring_bytes += gst_buffer_get_size(b);
    /* old units go by age and by bytes, but the oldest kept is a keyframe */
    int64_t horizon = wall - (int64_t)v->o.ring_s * 1000;
    while (c->ring_len > 1) {
        ring_ent *h = &c->ring[c->ring_head];
        if (h->wall_ms >= horizon && c->ring_bytes <= v->o.ring_bytes)
            break;
        size_t n = 1; /* drop the whole GOP the head begins */
        while (n < c->ring_len && !c->ring[(c->ring_head + n) % c->ring_cap].key)
            n++;
        if (n == c->ring_len)
            break; /* the only GOP: kept however old */
        for (size_t i = 0; i < n; i++) {
            ring_ent *e = &c->ring[c->ring_head];
            c->ring_bytes -= gst_buffer_get_size(e->buf);
            gst_buffer_unref(e->buf);
            c->ring_head = (c->ring_head + 1) % c->ring_cap;
            c->ring_len--;
        }
    }
}

static void stream_info(vcam *c, video_stream_info *i)
{
    i->codec = c->codec;
    i->mime = c->mime;
    i->width = c->width;
    i->height = c->height;
    i->transcoded = false;
}

/* The codec, size and MSE type of an access unit's caps. */
static void caps_info(GstCaps *caps, char codec[8], int *width, int *height, char *mime,
                      size_t mime_len)
{
    const GstStructure *st = gst_caps_get_structure(caps, 0);
    const char *name = gst_structure_get_name(st);
    g_strlcpy(codec, !strcmp(name, "video/x-h265") ? "h265" : "h264", 8);
    gst_structure_get_int(st, "width", width);
    gst_structure_get_int(st, "height", height);
    const GValue *cd = gst_structure_get_value(st, "codec_data");
    char cs[64] = "";
    if (cd && G_VALUE_HOLDS(cd, GST_TYPE_BUFFER)) {
        GstMapInfo m;
        GstBuffer *b = gst_value_get_buffer(cd);
        if (gst_buffer_map(b, &m, GST_MAP_READ)) {
            video_codec_string(codec, m.data, m.size, cs, sizeof cs);
            gst_buffer_unmap(b, &m);
        }
    }
    if (!*cs)
        g_strlcpy(cs, !strcmp(codec, "h265") ? "hvc1.1.6.L93.B0" : "avc1.640028", sizeof cs);
    snprintf(mime, mime_len, "video/mp4; codecs=\"%s\"", cs);
}

static void cam_caps(vcam *c, GstCaps *caps)
{
    caps_info(caps, c->codec, &c->width, &c->height, c->mime, sizeof c->mime);
    /* the units before were timed by another pipeline (or coded otherwise);
     * so was the transcode's input: the next keyframe starts a new one */
    ring_clear(c);
    gst_caps_replace(&c->ring_caps, caps);
    trans_stop(c);
}

/* A fragment into a GOP cache: a keyframe fragment begins it anew. */
static void gop_add(GPtrArray *gop, item *it)
{
    if (it->key || gop->len >= MAX_GOP_FRAGMENTS)
        g_ptr_array_set_size(gop, 0);
    if (it->key || gop->len)
        g_ptr_array_add(gop, g_bytes_ref(it->bytes));
}

/* ---- the H.265 → H.264 transcode (the loop) ---- */

/* the transcode's appsrc holds at most this much not yet decoded */
#define TRANSCODE_QUEUE_BYTES ((guint64)16 << 20)
/* a transcode that failed is not started again before this */
#define TRANSCODE_RETRY_US (10 * G_USEC_PER_SEC)

static bool is_h265(const vcam *c)
{
    return !strcmp(c->codec, "h265");
}

/* A viewer served the transcode rather than the camera's own stream. */
static bool transcoded(const vcam *c, const video_viewer *w)
{
    return w->h264 && is_h265(c);
}

static bool wants_transcode(const vcam *c)
{
    for (GList *l = c->viewers; l; l = l->next)
        if (transcoded(c, l->data))
            return true;
    return false;
}

static void trans_info(vcam *c, video_stream_info *i)
{
    i->codec = "h264";
    i->mime = c->tmime;
    i->width = c->twidth ? c->twidth : c->width;
    i->height = c->theight ? c->theight : c->height;
    i->transcoded = true;
}

/* A viewer joining or switching: the transcode's init and GOP so far, if
 * it has them; otherwise they come when it has. */
static void trans_join(vcam *c, video_viewer *w)
{
    if (!c->tinit)
        return; /* with no fragment yet, the init all the same (see video_watch) */
    video_stream_info info;
    trans_info(c, &info);
    w->cb.init(w->ud, &info, c->tinit);
    for (guint i = 0; i < c->tgop->len; i++)
        w->cb.fragment(w->ud, g_ptr_array_index(c->tgop, i), i == 0);
}

static void trans_stop(vcam *c)
{
    if (!c->tpipe)
        return;
    pipe_stop(c->tpipe);
    c->tpipe = NULL;
    gst_object_unref(c->tsrc);
    c->tsrc = NULL;
    if (c->tinit)
        g_bytes_unref(c->tinit);
    c->tinit = NULL;
    g_ptr_array_set_size(c->tgop, 0);
    *c->tmime = 0;
    c->twidth = c->theight = 0;
    log_info("video", "transcode stopped id=%s skips=%llu", c->id, (unsigned long long)c->tskips);
}

static void trans_fail(vcam *c, const char *detail)
{
    char *d = scrub(c, detail);
    log_warn("video", "transcode failed id=%s detail=\"%s\"", c->id, d);
    g_free(d);
    trans_stop(c);
    c->tretry_us = g_get_monotonic_time() + TRANSCODE_RETRY_US;
    for (GList *l = c->viewers, *next; l; l = next) {
        next = l->next;
        video_viewer *w = l->data;
        if (transcoded(c, w))
            w->cb.state(w->ud, "failed", "transcode_failed");
    }
}

static gboolean trans_bus(GstBus *bus, GstMessage *m, gpointer ud)
{
    vpipe *p = ud;
    vcam *c = p->cam;
    if (!c || GST_MESSAGE_TYPE(m) != GST_MESSAGE_ERROR)
        return G_SOURCE_CONTINUE;
    GError *e = NULL;
    gst_message_parse_error(m, &e, NULL);
    char *d = g_strdup_printf("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
                              e ? e->message : "error");
    trans_fail(c, d); /* p is freed here */
    g_free(d);
    g_clear_error(&e);
    return G_SOURCE_REMOVE;
}

/* An access unit into the transcode; one that falls behind (a camera of
 * more pixels than the cores can encode) skips to the next keyframe. */
static void trans_feed(vcam *c, GstBuffer *b, bool key)
{
    if (c->tneed_key && !key)
        return;
    if (gst_app_src_get_current_level_bytes(GST_APP_SRC(c->tsrc)) > TRANSCODE_QUEUE_BYTES) {
        if (!c->tneed_key) {
            c->tskips++;
            log_warn("video", "transcode behind, skipping to the next keyframe id=%s skips=%llu",
                     c->id, (unsigned long long)c->tskips);
        }
        c->tneed_key = true;
        return;
    }
    c->tneed_key = false;
    gst_app_src_push_buffer(GST_APP_SRC(c->tsrc), gst_buffer_ref(b));
}

/* The transcode's streaming thread: decoded pictures on their way to the
 * encoder. One without a time, or not after the one before, is dropped:
 * the encoder would pass it on and mp4mux refuse the whole stream ("Buffer
 * has no PTS"); the decoder gives such pictures for H.265 with B-frames
 * (cros_codecs/bear.h265). A raw picture dropped costs one frame shown,
 * nothing that later frames refer to. */
static GstPadProbeReturn trans_raw_probe(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    (void)pad;
    GstClockTime *last = ud;
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    GstClockTime pts = b ? GST_BUFFER_PTS(b) : GST_CLOCK_TIME_NONE;
    if (!GST_CLOCK_TIME_IS_VALID(pts) || (GST_CLOCK_TIME_IS_VALID(*last) && pts <= *last))
        return GST_PAD_PROBE_DROP;
    *last = pts;
    return GST_PAD_PROBE_OK;
}

/* The probe above on the src pad of the element named raw, if the template
 * has one. */
static void trans_raw_guard(GstElement *pl)
{
    GstElement *raw = gst_bin_get_by_name(GST_BIN(pl), "raw");
    if (!raw)
        return;
    GstPad *pad = gst_element_get_static_pad(raw, "src");
    if (pad) {
        GstClockTime *last = g_new(GstClockTime, 1);
        *last = GST_CLOCK_TIME_NONE;
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, trans_raw_probe, last, g_free);
        gst_object_unref(pad);
    }
    gst_object_unref(raw);
}

/* Started when a viewer needs it and the ring has the camera's caps; fed at
 * once from the latest keyframe the ring holds, so a picture comes now. */
static void trans_start(vcam *c)
{
    video *v = c->v;
    if (c->tpipe || !c->ring_caps || !is_h265(c) || g_get_monotonic_time() < c->tretry_us)
        return;
    char frag[16], kbps[16];
    snprintf(frag, sizeof frag, "%d", v->o.fragment_ms);
    /* about 0.1 bit per pixel at 25 fps: 5 Mbit/s for 1080p (ultrafast
     * spends bits for speed) */
    int64_t px = (int64_t)(c->width > 0 ? c->width : 1920) * (c->height > 0 ? c->height : 1080);
    snprintf(kbps, sizeof kbps, "%d", (int)CLAMP(px / 400, 600, 12000));
    const char *keys[] = {"fragment_ms", "kbps"};
    const char *vals[] = {frag, kbps};
    char *desc = NULL;
    gc_err err = {0};
    if (video_template_expand(video_template(v, "transcode-h264"), keys, vals, 2, &desc, &err)) {
        trans_fail(c, err.msg);
        return;
    }
    GError *e = NULL;
    GstElement *pl = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &e);
    g_free(desc);
    if (!pl) {
        trans_fail(c, e ? e->message : "gst_parse_launch");
        g_clear_error(&e);
        return;
    }
    g_clear_error(&e);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pl), "src");
    if (!src || !GST_IS_APP_SRC(src)) {
        if (src)
            gst_object_unref(src);
        gst_object_unref(pl);
        trans_fail(c, "transcode-h264.pipeline has no appsrc named src");
        return;
    }
    gst_app_src_set_caps(GST_APP_SRC(src), c->ring_caps);
    g_object_set(src, "max-bytes", TRANSCODE_QUEUE_BYTES, NULL);
    trans_raw_guard(pl);
    vpipe *p = pipe_new(c, pl, trans_bus, true);
    pipe_taps(p, pl);
    c->tpipe = p;
    c->tsrc = src;
    c->tneed_key = true;
    if (gst_element_set_state(pl, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        trans_fail(c, "the transcode would not start");
        return;
    }
    log_info("video", "transcode started id=%s kbps=%s", c->id, kbps);
    size_t k = c->ring_len;
    while (k > 0 && !c->ring[(c->ring_head + k - 1) % c->ring_cap].key)
        k--;
    for (size_t i = k ? k - 1 : c->ring_len; i < c->ring_len; i++) {
        ring_ent *r = &c->ring[(c->ring_head + i) % c->ring_cap];
        trans_feed(c, r->buf, r->key);
    }
}

static void trans_handle(vcam *c, item *it)
{
    switch (it->kind) {
    case IT_CAPS: {
        char codec[8];
        caps_info(it->caps, codec, &c->twidth, &c->theight, c->tmime, sizeof c->tmime);
        break;
    }
    case IT_INIT: {
        if (c->tinit)
            g_bytes_unref(c->tinit);
        c->tinit = g_bytes_ref(it->bytes);
        g_ptr_array_set_size(c->tgop, 0);
        video_stream_info info;
        trans_info(c, &info);
        for (GList *l = c->viewers, *next; l; l = next) {
            next = l->next;
            video_viewer *w = l->data;
            if (transcoded(c, w))
                w->cb.init(w->ud, &info, c->tinit);
        }
        break;
    }
    case IT_FRAG:
        gop_add(c->tgop, it);
        for (GList *l = c->viewers, *next; l; l = next) {
            next = l->next;
            video_viewer *w = l->data;
            if (transcoded(c, w))
                w->cb.fragment(w->ud, it->bytes, it->key);
        }
        break;
    case IT_BROKEN: trans_fail(c, it->what); break;
    default: break; /* its access units: the camera's ring keeps the source's */
    }
}

static void cam_handle(vcam *c, item *it)
{
    switch (it->kind) {
    case IT_AU:
        c->last_data_us = g_get_monotonic_time();
        c->tick_bytes += gst_buffer_get_size(it->buf);
        c->tick_frames++;
        if (it->key)
            c->last_key_ms = it->wall_ms;
        if (c->ring_caps)
            ring_push(c, it->buf, it->wall_ms, it->key);
        if (c->tpipe)
            trans_feed(c, it->buf, it->key);
        else if (it->key && wants_transcode(c))
            trans_start(c);
        if (c->state != VIDEO_PLAYING)
            cam_state(c, VIDEO_PLAYING, "");
        break;
    case IT_CAPS: cam_caps(c, it->caps); break;
    case IT_INIT: {
        if (c->init)
            g_bytes_unref(c->init);
        c->init = g_bytes_ref(it->bytes);
        gop_clear(c);
        video_stream_info info;
        stream_info(c, &info);
        for (GList *l = c->viewers, *next; l; l = next) {
            next = l->next;
            video_viewer *w = l->data;
            if (!transcoded(c, w))
                w->cb.init(w->ud, &info, c->init);
        }
        break;
    }
    case IT_FRAG:
        gop_add(c->gop, it);
        for (GList *l = c->viewers, *next; l; l = next) {
            next = l->next;
            video_viewer *w = l->data;
            if (!transcoded(c, w))
                w->cb.fragment(w->ud, it->bytes, it->key);
        }
        break;
    case IT_UNSUPPORTED: {
        char d[96];
        snprintf(d, sizeof d, "encoding %s", it->what);
        cam_fail(c, "unsupported_codec", d);
        break;
    }
    case IT_BROKEN: cam_fail(c, "error", it->what); break;
    case IT_MSG: break; /* the drain gives these to the bus function */
    }
}

/* Once a second: rates, stalls, the backoff's reset. */
static gboolean on_tick(gpointer ud)
{
    video *v = ud;
    gint64 now = g_get_monotonic_time();
    double dt = (double)(now - v->last_tick_us) / 1e6;
    v->last_tick_us = now;
    GHashTableIter hi;
    gpointer key, val;
    g_hash_table_iter_init(&hi, v->cams);
    GPtrArray *fail = g_ptr_array_new();
    while (g_hash_table_iter_next(&hi, &key, &val)) {
        vcam *c = val;
        if (dt > 0.05) {
            c->bitrate = 0.5 * c->bitrate + 0.5 * (double)c->tick_bytes * 8 / dt;
            c->fps = 0.5 * c->fps + 0.5 * (double)c->tick_frames / dt;
        }
        c->tick_bytes = c->tick_frames = 0;
        gint64 quiet = now - (c->last_data_us ? c->last_data_us : c->since_us);
        if (c->state == VIDEO_PLAYING && quiet > (gint64)v->o.stall_s * 1000000) {
            cam_state(c, VIDEO_STALLED, "timeout");
        } else if ((c->state == VIDEO_STALLED || c->state == VIDEO_CONNECTING) &&
                   quiet > (gint64)v->o.stall_restart_s * 1000000) {
            g_ptr_array_add(fail, c);
        }
        if (c->state == VIDEO_PLAYING && c->attempt &&
            now - c->playing_since_us > (gint64)v->o.stable_s * 1000000)
            c->attempt = 0;
        if (c->state != VIDEO_PLAYING && c->state != VIDEO_STALLED)
            c->bitrate = c->fps = 0;
    }
    for (guint i = 0; i < fail->len; i++)
        cam_fail(g_ptr_array_index(fail, i), "timeout", "no data");
    g_ptr_array_free(fail, TRUE);
    return G_SOURCE_CONTINUE;
}

/* ---- the face ---- */

static void cam_free(gpointer ud)
{
    vcam *c = ud;
    cam_stop(c);
    GList *ws = c->viewers;
    c->viewers = NULL;
    for (GList *l = ws; l; l = l->next) {
        video_viewer *w = l->data;
        w->cam = NULL;
        w->cb.state(w->ud, "removed", "");
    }
    g_list_free(ws);
    ring_clear(c);
    g_free(c->ring);
    if (c->ring_caps)
        gst_caps_unref(c->ring_caps);
    if (c->init)
        g_bytes_unref(c->init);
    g_ptr_array_free(c->gop, TRUE);
    g_ptr_array_free(c->tgop, TRUE);
    g_free(c->id);
    g_free(c->url);
    g_free(c->redacted);
    g_free(c->transport);
    g_free(c->secret);
    g_free(c);
}

video *video_new(GMainContext *ctx, const video_opts *o, const video_events *cb, void *ud,
                 gc_err *err)
{
    video *v = g_new0(video, 1);
    v->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref(g_main_context_default());
    if (o)
        v->o = *o;
    if (cb)
        v->cb = *cb;
    v->ud = ud;
#define DEF(f, d)                                                                                  \
    if (!v->o.f)                                                                                   \
        v->o.f = d;
    DEF(pipelines_dir, GRIDCC_PIPELINES_DIR);
    DEF(ring_s, 30);
    DEF(ring_bytes, (size_t)32 << 20);
    DEF(latency_ms, 200);
    DEF(fragment_ms, 100);
    DEF(stall_s, 5);
    DEF(stall_restart_s, 20);
    DEF(backoff_min_ms, 1000);
    DEF(backoff_max_ms, 60000);
    DEF(stable_s, 30);
    DEF(failed_retry_s, 300);
    DEF(ingest, "direct");
#undef DEF
    v->tmpl = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(TEMPLATES); i++) {
        char *path = g_strdup_printf("%s/%s.pipeline", v->o.pipelines_dir, TEMPLATES[i]);
        char *text = NULL;
        GError *e = NULL;
        if (!g_file_get_contents(path, &text, NULL, &e)) {
            gc_fail(err, GC_EINVAL, "pipelines_dir", "pipeline template %s: %s", path, e->message);
            g_error_free(e);
            g_free(path);
            video_free(v);
            return NULL;
        }
        g_free(path);
        g_hash_table_insert(v->tmpl, (gpointer)TEMPLATES[i], text);
    }
    char frag[16];
    snprintf(frag, sizeof frag, "%d", v->o.fragment_ms);
    const char *keys[] = {"fragment_ms"};
    const char *vals[] = {frag};
    for (int i = 0; i < 2; i++)
        if (video_template_expand(video_template(v, i ? "h265" : "h264"), keys, vals, 1,
                                  &v->branch[i], err)) {
            video_free(v);
            return NULL;
        }
    v->cams = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, cam_free);
    g_mutex_init(&v->dlock);
    v->dirty = g_ptr_array_new();
    v->last_tick_us = g_get_monotonic_time();
    v->tick = g_timeout_source_new(1000);
    g_source_set_callback(v->tick, on_tick, v, NULL);
    g_source_attach(v->tick, v->ctx);
    return v;
}

void video_free(video *v)
{
    if (!v)
        return;
    if (v->cams)
        g_hash_table_destroy(v->cams); /* every pipeline down, viewers told */
    v->cams = NULL;
    while (v->busy > 0) /* snapshots and clips come back on the loop */
        g_main_context_iteration(v->ctx, TRUE);
    if (v->tick) {
        g_source_destroy(v->tick);
        g_source_unref(v->tick);
    }
    video_rtsp_free(v->rtsp); /* every session closed with its camera */
    if (v->dirty) { /* every pipeline is down: no more is queued */
        if (v->drain) {
            g_source_destroy(v->drain);
            g_source_unref(v->drain);
        }
        g_ptr_array_foreach(v->dirty, (GFunc)(void (*)(void))pipe_unref, NULL);
        g_ptr_array_free(v->dirty, TRUE);
        g_mutex_clear(&v->dlock);
    }
    g_free(v->branch[0]);
    g_free(v->branch[1]);
    if (v->tmpl)
        g_hash_table_destroy(v->tmpl);
    g_main_context_unref(v->ctx);
    g_free(v);
}

/* The user info of a URL, what scrub() hides in GStreamer's messages. */
static char *url_secret(const char *url)
{
    char *userinfo = NULL;
    if (!g_uri_split(url, G_URI_FLAGS_ENCODED, NULL, &userinfo, NULL, NULL, NULL, NULL, NULL, NULL))
        return NULL;
    return userinfo;
}

int video_camera_set(video *v, const video_camera *in, gc_err *err)
{
    if (!in->id || !*in->id)
        return gc_fail(err, GC_EINVAL, "id", "a camera needs an id");
    if (!in->url || g_ascii_strncasecmp(in->url, "rtsp://", 7) || strpbrk(in->url, "\r\n"))
        return gc_fail(err, GC_EINVAL, "url", "url: an rtsp:// URL is needed");
    if (in->transport && strcmp(in->transport, "tcp") && strcmp(in->transport, "udp"))
        return gc_fail(err, GC_EINVAL, "transport", "transport: tcp or udp, not %s", in->transport);
    /* GStreamer is loaded with the first camera: a gridcc with none pays
     * nothing for it (nor leaves GLib's first quark block behind at exit) */
    if (!gst_is_initialized())
        gst_init(NULL, NULL);
    vcam *c = g_hash_table_lookup(v->cams, in->id);
    if (c && !strcmp(c->url, in->url) && !g_strcmp0(c->transport, in->transport))
        return 0;
    if (!c) {
        c = g_new0(vcam, 1);
        c->v = v;
        c->id = g_strdup(in->id);
        c->gop = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        c->tgop = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        c->state = VIDEO_CONNECTING;
        g_hash_table_insert(v->cams, c->id, c);
    } else {
        cam_stop(c);
        g_free(c->url);
        g_free(c->redacted);
        g_free(c->transport);
        g_free(c->secret);
    }
    c->url = g_strdup(in->url);
    c->redacted = video_url_redact(in->url);
    c->transport = g_strdup(in->transport);
    c->secret = url_secret(in->url);
    c->attempt = 0;
    log_info("video", "camera set id=%s url=%s transport=%s ingest=%s", c->id, c->redacted,
             c->transport ? c->transport : "tcp", cam_direct(c) ? "direct" : "rtspsrc");
    cam_start(c);
    return 0;
}

int video_camera_remove(video *v, const char *id)
{
    if (!g_hash_table_contains(v->cams, id))
        return GC_ENOTFOUND;
    log_info("video", "camera removed id=%s", id);
    g_hash_table_remove(v->cams, id);
    return 0;
}

json_t *video_camera_health(video *v, const char *id)
{
    vcam *c = g_hash_table_lookup(v->cams, id);
    if (!c)
        return NULL;
    gint64 now = g_get_monotonic_time();
    json_t *j =
        json_pack("{s:s,s:s,s:i,s:i,s:i,s:I,s:i}", "state", video_state_name(c->state), "reason",
                  c->reason, "bitrate_bps", (int)c->bitrate, "fps", (int)(c->fps + 0.5), "since_ms",
                  0, "viewers", (json_int_t)g_list_length(c->viewers), "attempt", c->attempt);
    json_object_set_new(j, "since_ms",
                        json_integer(g_get_real_time() / 1000 - (now - c->since_us) / 1000));
    json_object_set_new(j, "codec", *c->codec ? json_string(c->codec) : json_null());
    json_object_set_new(j, "mime", *c->mime ? json_string(c->mime) : json_null());
    json_object_set_new(j, "width", c->width ? json_integer(c->width) : json_null());
    json_object_set_new(j, "height", c->height ? json_integer(c->height) : json_null());
    json_object_set_new(j, "last_keyframe_ms",
                        c->last_key_ms ? json_integer(c->last_key_ms) : json_null());
    json_object_set_new(j, "retry_in_ms",
                        c->retry ? json_integer((c->retry_at_us - now) / 1000) : json_null());
    int64_t span = c->ring_len ? c->ring[(c->ring_head + c->ring_len - 1) % c->ring_cap].wall_ms -
                                     c->ring[c->ring_head].wall_ms
                               : 0;
    json_object_set_new(j, "ring_ms", json_integer(span));
    json_object_set_new(j, "ring_bytes", json_integer((json_int_t)c->ring_bytes));
    int tv = 0;
    for (GList *l = c->viewers; l; l = l->next)
        tv += transcoded(c, l->data);
    json_object_set_new(j, "transcoding", json_boolean(c->tpipe != NULL));
    json_object_set_new(j, "transcode_viewers", json_integer(tv));
    json_object_set_new(j, "transcode_skips", json_integer((json_int_t)c->tskips));
    return j;
}

video_viewer *video_watch(video *v, const char *id, bool h264, const video_viewer_cb *cb,
                          void *ud)
{
    vcam *c = g_hash_table_lookup(v->cams, id);
    if (!c)
        return NULL;
    video_viewer *w = g_new0(video_viewer, 1);
    w->cam = c;
    w->h264 = h264;
    w->cb = *cb;
    w->ud = ud;
    c->viewers = g_list_prepend(c->viewers, w);
    if (c->state != VIDEO_PLAYING)
        w->cb.state(ud, video_state_name(c->state), c->reason);
    if (transcoded(c, w)) {
        trans_join(c, w);
        trans_start(c); /* when not running yet */
    } else if (c->init) {
        /* with no fragment yet (a pipeline just started, or a GOP too long to
         * keep) the init all the same: the fragments that come next would
         * otherwise reach a viewer that never had one */
        video_stream_info info;
        stream_info(c, &info);
        w->cb.init(ud, &info, c->init);
        for (guint i = 0; i < c->gop->len; i++)
            w->cb.fragment(ud, g_ptr_array_index(c->gop, i), i == 0);
    }
    return w;
}

void video_viewer_want_h264(video_viewer *w)
{
    vcam *c = w->cam;
    if (w->h264 || !c)
        return;
    w->h264 = true;
    if (!is_h265(c))
        return; /* served as it is */
    trans_join(c, w);
    trans_start(c);
}

void video_unwatch(video_viewer *w)
{
    if (!w)
        return;
    vcam *c = w->cam;
    if (c) {
        c->viewers = g_list_remove(c->viewers, w);
        if (c->tpipe && !wants_transcode(c))
            trans_stop(c); /* the last who needed it has gone */
    }
    g_free(w);
}

/* ---- for video_snapshot.c ---- */

void video_range_clear(video_range *r)
{
    if (r->bufs)
        g_ptr_array_free(r->bufs, TRUE);
    if (r->caps)
        gst_caps_unref(r->caps);
    memset(r, 0, sizeof *r);
}

int video_ring_take(video *v, const char *id, int64_t from_ms, int64_t to_ms, video_range *out,
                    gc_err *err)
{
    memset(out, 0, sizeof *out);
    vcam *c = v->cams ? g_hash_table_lookup(v->cams, id) : NULL;
    if (!c)
        return gc_fail(err, GC_ENOTFOUND, "id", "no camera %s", id);
    if (!c->ring_len || !c->ring_caps)
        return gc_fail(err, GC_ECONFLICT, "id", "camera %s has no keyframe yet (state %s%s%s)", id,
                       video_state_name(c->state), *c->reason ? ", " : "", c->reason);
#define ENT(i) (&c->ring[(c->ring_head + (i)) % c->ring_cap])
    size_t start = SIZE_MAX, end;
    if (!from_ms) {
        for (size_t i = c->ring_len; i-- > 0;)
            if (ENT(i)->key) {
                start = i;
                break;
            }
        if (start == SIZE_MAX)
            return gc_fail(err, GC_ECONFLICT, "id", "camera %s has no keyframe yet", id);
        end = start;
    } else {
        int64_t oldest = ENT(0)->wall_ms, newest = ENT(c->ring_len - 1)->wall_ms;
        /* a clip reaching back before what the ring holds (the camera came
         * up, or the daemon started, just before) starts where it begins:
         * part of the moment is better than none; a snapshot is exact */
        if (to_ms > from_ms && from_ms < oldest && to_ms >= oldest)
            from_ms = oldest;
        if (from_ms < oldest || from_ms > newest + 1000)
            return gc_fail(err, GC_ENOTFOUND, "at",
                           "camera %s holds video from %lld to %lld ms, not %lld", id,
                           (long long)oldest, (long long)newest, (long long)from_ms);
        for (size_t i = 0; i < c->ring_len && ENT(i)->wall_ms <= from_ms; i++)
            if (ENT(i)->key)
                start = i;
        if (start == SIZE_MAX)
            return gc_fail(err, GC_ENOTFOUND, "at", "no keyframe at or before %lld in camera %s",
                           (long long)from_ms, id);
        end = start;
        while (end + 1 < c->ring_len && ENT(end + 1)->wall_ms <= to_ms)
            end++;
    }
    out->bufs = g_ptr_array_new_with_free_func((GDestroyNotify)gst_buffer_unref);
    for (size_t i = start; i <= end; i++)
        g_ptr_array_add(out->bufs, gst_buffer_ref(ENT(i)->buf));
    out->caps = gst_caps_ref(c->ring_caps);
    g_strlcpy(out->codec, c->codec, sizeof out->codec);
    out->first_ms = ENT(start)->wall_ms;
    out->last_ms = ENT(end)->wall_ms;
#undef ENT
    return 0;
}

int64_t video_ring_newest(video *v, const char *id)
{
    vcam *c = v->cams ? g_hash_table_lookup(v->cams, id) : NULL;
    if (!c)
        return -1;
    return c->ring_len ? c->ring[(c->ring_head + c->ring_len - 1) % c->ring_cap].wall_ms : 0;
}

const char *video_template(video *v, const char *name)
{
    return g_hash_table_lookup(v->tmpl, name);
}

GMainContext *video_context(video *v)
{
    return v->ctx;
}

void video_busy(video *v, int delta)
{
    v->busy += delta;
}
