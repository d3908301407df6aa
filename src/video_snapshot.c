/* video_snapshot: JPEG snapshots and MP4 clips from a camera's ring, each
 * in a short pipeline on a worker thread (GTask), answered on the loop. A
 * snapshot decodes only the keyframe before the asked time and the frames
 * from it up to that time (the latest keyframe alone when none is asked); a
 * clip muxes the access units as they are (no transcoding). */
#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <string.h>

#include "gridcc/log.h"
#include "video_priv.h"

typedef struct job {
    video *v;
    char *id;
    video_range r;
    char *desc; /* the pipeline, expanded */
    char *path; /* clips: the file */
    int64_t from_ms, to_ms;
    video_snapshot_cb snap_cb;
    video_clip_cb clip_cb;
    void *ud;
    GBytes *jpeg;
    gc_err err;
    GSource *wait; /* a clip whose end is still to come */
} job;

static void job_free(job *j)
{
    video_range_clear(&j->r);
    g_free(j->id);
    g_free(j->desc);
    g_free(j->path);
    if (j->jpeg)
        g_bytes_unref(j->jpeg);
    g_free(j);
}

/* Pushes the range into appsrc "src" of pipeline desc, timestamps made to
 * start at 0 (the ring's units carry the camera pipeline's running time),
 * then EOS. Returns the pipeline, playing, or NULL with j->err. */
static GstElement *feed(job *j)
{
    GError *e = NULL;
    GstElement *pl = gst_parse_launch_full(j->desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &e);
    if (!pl) {
        gc_fail(&j->err, GC_EIO, NULL, "pipeline: %s", e ? e->message : "?");
        g_clear_error(&e);
        return NULL;
    }
    g_clear_error(&e);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pl), "src");
    if (!src) {
        gc_fail(&j->err, GC_EIO, NULL, "the template has no appsrc named src");
        gst_object_unref(pl);
        return NULL;
    }
    gst_app_src_set_caps(GST_APP_SRC(src), j->r.caps);
    g_object_set(src, "max-bytes", (guint64)0, "block", FALSE, NULL);
    gst_element_set_state(pl, GST_STATE_PLAYING);
    GstBuffer *first = g_ptr_array_index(j->r.bufs, 0);
    GstClockTime base = GST_BUFFER_DTS_OR_PTS(first);
    for (guint i = 0; i < j->r.bufs->len; i++) {
        /* a shallow copy: the memory is shared, the times are ours */
        GstBuffer *b = gst_buffer_copy(g_ptr_array_index(j->r.bufs, i));
        if (GST_CLOCK_TIME_IS_VALID(base)) {
            if (GST_BUFFER_PTS_IS_VALID(b))
                GST_BUFFER_PTS(b) = GST_BUFFER_PTS(b) > base ? GST_BUFFER_PTS(b) - base : 0;
            if (GST_BUFFER_DTS_IS_VALID(b))
                GST_BUFFER_DTS(b) = GST_BUFFER_DTS(b) > base ? GST_BUFFER_DTS(b) - base : 0;
        }
        gst_app_src_push_buffer(GST_APP_SRC(src), b);
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    gst_object_unref(src);
    return pl;
}

/* Waits for EOS or an error on the pipeline's bus; 0 or GC_EIO. */
static int wait_done(GstElement *pl, gc_err *err)
{
    GstBus *bus = gst_element_get_bus(pl);
    GstMessage *m =
        gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    int rc = 0;
    if (!m) {
        rc = gc_fail(err, GC_EIO, NULL, "the pipeline did not finish in 30 s");
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gst_message_parse_error(m, &e, NULL);
        rc = gc_fail(err, GC_EIO, NULL, "%s", e ? e->message : "pipeline error");
        g_clear_error(&e);
    }
    if (m)
        gst_message_unref(m);
    return rc;
}

static void snapshot_thread(GTask *t, gpointer src, gpointer data, GCancellable *c)
{
    job *j = data;
    GstElement *pl = feed(j);
    if (!pl)
        return;
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pl), "sink");
    GstSample *last = NULL, *s;
    /* the decoded frames, in presentation order: the asked one is the last */
    while (sink && (s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND))) {
        if (last)
            gst_sample_unref(last);
        last = s;
    }
    if (!last) {
        wait_done(pl, &j->err);
        if (!j->err.code)
            gc_fail(&j->err, GC_EIO, NULL, "the decoder gave no frame");
    } else {
        GstCaps *jc = gst_caps_new_empty_simple("image/jpeg");
        GError *e = NULL;
        GstSample *jpg = gst_video_convert_sample(last, jc, 10 * GST_SECOND, &e);
        gst_caps_unref(jc);
        if (!jpg) {
            gc_fail(&j->err, GC_EIO, NULL, "JPEG: %s", e ? e->message : "?");
            g_clear_error(&e);
        } else {
            GstBuffer *b = gst_sample_get_buffer(jpg);
            GstMapInfo m;
            if (gst_buffer_map(b, &m, GST_MAP_READ)) {
                j->jpeg = g_bytes_new(m.data, m.size);
                gst_buffer_unmap(b, &m);
            }
            gst_sample_unref(jpg);
        }
        gst_sample_unref(last);
    }
    if (sink)
        gst_object_unref(sink);
    gst_element_set_state(pl, GST_STATE_NULL);
    gst_object_unref(pl);
}

static void job_done(GObject *src, GAsyncResult *res, gpointer ud)
{
    job *j = ud;
    video_busy(j->v, -1);
    if (j->snap_cb) {
        j->snap_cb(j->ud, j->err.code ? NULL : j->jpeg, j->err.code ? &j->err : NULL);
    } else {
        if (!j->err.code)
            log_info("video", "clip written id=%s path=%s units=%u ms=%lld", j->id, j->path,
                     j->r.bufs->len, (long long)(j->r.last_ms - j->r.first_ms));
        j->clip_cb(j->ud, j->err.code ? &j->err : NULL);
    }
    job_free(j);
}

static void job_run(job *j, GTaskThreadFunc fn)
{
    GMainContext *ctx = video_context(j->v);
    /* the task answers on the loop's context */
    g_main_context_push_thread_default(ctx);
    GTask *t = g_task_new(NULL, NULL, job_done, j);
    g_main_context_pop_thread_default(ctx);
    g_task_set_task_data(t, j, NULL);
    video_busy(j->v, 1);
    g_task_run_in_thread(t, fn);
    g_object_unref(t);
}

static char *expand(video *v, const char *name, const char *path, gc_err *err)
{
    const char *keys[] = {"path"};
    const char *vals[] = {path ? path : ""};
    char *out = NULL;
    const char *t = video_template(v, name);
    if (!t) {
        gc_fail(err, GC_EIO, NULL, "no template %s", name);
        return NULL;
    }
    if (video_template_expand(t, keys, vals, path ? 1 : 0, &out, err))
        return NULL;
    return out;
}

void video_snapshot(video *v, const char *id, int64_t at_ms, video_snapshot_cb cb, void *ud)
{
    job *j = g_new0(job, 1);
    j->v = v;
    j->id = g_strdup(id);
    j->snap_cb = cb;
    j->ud = ud;
    char name[32];
    if (!video_ring_take(v, id, at_ms, at_ms, &j->r, &j->err)) {
        snprintf(name, sizeof name, "snapshot-%s", j->r.codec);
        j->desc = expand(v, name, NULL, &j->err);
    }
    if (j->err.code) {
        cb(ud, NULL, &j->err);
        job_free(j);
        return;
    }
    job_run(j, snapshot_thread);
}

static void clip_thread(GTask *t, gpointer src, gpointer data, GCancellable *c)
{
    job *j = data;
    GstElement *pl = feed(j);
    if (!pl)
        return;
    wait_done(pl, &j->err);
    gst_element_set_state(pl, GST_STATE_NULL);
    gst_object_unref(pl);
}

static void clip_start(job *j)
{
    char name[32];
    if (!video_ring_take(j->v, j->id, j->from_ms, j->to_ms, &j->r, &j->err)) {
        snprintf(name, sizeof name, "clip-%s", j->r.codec);
        j->desc = expand(j->v, name, j->path, &j->err);
    }
    if (j->err.code) {
        j->clip_cb(j->ud, &j->err);
        job_free(j);
        return;
    }
    job_run(j, clip_thread);
}

static gboolean clip_wait(gpointer ud)
{
    job *j = ud;
    int64_t newest = video_ring_newest(j->v, j->id);
    if (newest >= 0 && newest < j->to_ms)
        return G_SOURCE_CONTINUE;
    g_source_unref(j->wait);
    j->wait = NULL;
    video_busy(j->v, -1);
    clip_start(j); /* a camera gone meanwhile answers not found */
    return G_SOURCE_REMOVE;
}

void video_clip(video *v, const char *id, int64_t from_ms, int64_t to_ms, const char *path,
                video_clip_cb cb, void *ud)
{
    job *j = g_new0(job, 1);
    j->v = v;
    j->id = g_strdup(id);
    j->path = g_strdup(path);
    j->from_ms = from_ms;
    j->to_ms = to_ms;
    j->clip_cb = cb;
    j->ud = ud;
    if (from_ms <= 0 || to_ms < from_ms) {
        gc_fail(&j->err, GC_EINVAL, "from", "a clip needs 0 < from <= to");
        cb(ud, &j->err);
        job_free(j);
        return;
    }
    int64_t newest = video_ring_newest(v, id);
    if (newest >= 0 && newest < to_ms) {
        /* the end is still to come: looked at twice a second until it is in */
        video_busy(v, 1);
        j->wait = g_timeout_source_new(500);
        g_source_set_callback(j->wait, clip_wait, j, NULL);
        g_source_attach(j->wait, video_context(v));
        return;
    }
    clip_start(j);
}
