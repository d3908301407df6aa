/* camsim_clip: the test clips, encoded once per (codec, size, fps, bitrate,
 * length, GOP) into the cache and reused by every later start; and what a
 * --file holds. Serving then encodes nothing: 100 mounts cost demuxing and
 * payloading only.
 *
 * Each frame carries its index within the clip as 16 blocks (black 0, white
 * 1, most significant first) along the top of the picture, width/32 pixels
 * square (40 at 1280x720), big enough to survive 2 Mbit/s, so that a page can
 * read the index back from a canvas; with the loop times of `stats` that
 * gives the time the frame left camsim. */
#include "camsim.h"

#include <errno.h>
#include <gst/pbutils/pbutils.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gridcc/log.h"

#define CLIP_FORMAT_VERSION 1
#define INDEX_BITS 16

const char *camsim_codec_name(camsim_codec c)
{
    return c == CAMSIM_H265 ? "h265" : "h264";
}

int camsim_codec_parse(const char *s, camsim_codec *out)
{
    if (s && strcmp(s, "h264") == 0)
        *out = CAMSIM_H264;
    else if (s && strcmp(s, "h265") == 0)
        *out = CAMSIM_H265;
    else
        return -1;
    return 0;
}

static GstPadProbeReturn stamp_index(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    guint *frame = ud;
    GstBuffer *buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    GstVideoInfo vi;
    GstVideoFrame vf;
    if (caps && gst_video_info_from_caps(&vi, caps) &&
        gst_video_frame_map(&vf, &vi, buf, GST_MAP_WRITE)) {
        int bs = GST_VIDEO_INFO_WIDTH(&vi) / 32;
        if (bs < 2)
            bs = 2;
        guint8 *y = GST_VIDEO_FRAME_PLANE_DATA(&vf, 0);
        int ys = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0);
        for (int bit = 0; bit < INDEX_BITS; bit++) {
            guint8 v = (*frame >> (INDEX_BITS - 1 - bit)) & 1 ? 235 : 16;
            for (int r = 0; r < bs && r < GST_VIDEO_INFO_HEIGHT(&vi); r++)
                memset(y + (size_t)r * ys + (size_t)bit * bs, v, (size_t)bs);
        }
        /* grey chroma under the blocks: black and white in RGB whatever
         * the pattern had there */
        for (int p = 1; p <= 2; p++) {
            guint8 *c = GST_VIDEO_FRAME_PLANE_DATA(&vf, p);
            int cs = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
            for (int r = 0; r < bs / 2; r++)
                memset(c + (size_t)r * cs, 128, (size_t)(INDEX_BITS * bs / 2));
        }
        gst_video_frame_unmap(&vf);
    }
    if (caps)
        gst_caps_unref(caps);
    (*frame)++;
    return GST_PAD_PROBE_OK;
}

static int run_encode(const char *launch, gc_err *err)
{
    GError *gerr = NULL;
    GstElement *p = gst_parse_launch(launch, &gerr);
    if (!p) {
        gc_fail(err, GC_EIO, "", "encoder pipeline: %s", gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        return GC_EIO;
    }
    g_clear_error(&gerr);
    guint frame = 0;
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    GstPad *pad = gst_element_get_static_pad(src, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, stamp_index, &frame, NULL);
    gst_object_unref(pad);
    gst_object_unref(src);
    int rc = 0;
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *msg =
        gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gst_message_parse_error(msg, &e, NULL);
        rc = gc_fail(err, GC_EIO, "", "encoding failed: %s", e ? e->message : "?");
        g_clear_error(&e);
    }
    if (msg)
        gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    return rc;
}

int camsim_clip_ensure(const char *dir, const camsim_clip_spec *s, char **path, bool *encoded,
                       gc_err *err)
{
    *path = NULL;
    *encoded = false;
    if (g_mkdir_with_parents(dir, 0755) != 0)
        return gc_fail(err, GC_EIO, "--cache", "%s: %s", dir, g_strerror(errno));
    char name[256];
    snprintf(name, sizeof name, "%s-%dx%d-%dfps-%dk-%ds-g%d-v%d.mp4", camsim_codec_name(s->codec),
             s->width, s->height, s->fps, s->kbit, s->seconds, s->gop, CLIP_FORMAT_VERSION);
    char *final = g_build_filename(dir, name, NULL);
    if (g_file_test(final, G_FILE_TEST_IS_REGULAR)) {
        log_info("camsim", "clip cached path=%s", final);
        *path = final;
        return 0;
    }
    /* written under a name of our own and renamed: a camsim starting at the
     * same time never reads half a clip, it encodes its own and one rename
     * wins */
    char *tmpname = g_strdup_printf(".%s.%d.tmp", name, (int)getpid());
    char *tmp = g_build_filename(dir, tmpname, NULL);
    g_free(tmpname);
    if (strchr(tmp, '"')) {
        g_free(tmp);
        g_free(final);
        return gc_fail(err, GC_EINVAL, "--cache", "%s: a path with '\"' is not supported", dir);
    }
    char enc[256];
    if (s->codec == CAMSIM_H264)
        snprintf(enc, sizeof enc,
                 "x264enc tune=zerolatency speed-preset=ultrafast bitrate=%d key-int-max=%d "
                 "bframes=0 ! h264parse",
                 s->kbit, s->gop);
    else
        snprintf(enc, sizeof enc,
                 "x265enc tune=zerolatency speed-preset=ultrafast bitrate=%d key-int-max=%d "
                 "option-string=bframes=0 ! h265parse",
                 s->kbit, s->gop);
    int fsize = s->height / 18 > 8 ? s->height / 18 : 8;
    char *launch =
        g_strdup_printf("videotestsrc name=src pattern=smpte horizontal-speed=4 num-buffers=%d ! "
                        "video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! "
                        "timeoverlay halignment=right valignment=bottom font-desc=\"Sans %d\" "
                        "text=\"camsim %s\" ! %s ! mp4mux ! filesink location=\"%s\"",
                        s->seconds * s->fps, s->width, s->height, s->fps, fsize * 3 / 4,
                        camsim_codec_name(s->codec), enc, tmp);
    gint64 t0 = g_get_monotonic_time();
    int rc = run_encode(launch, err);
    g_free(launch);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = gc_fail(err, GC_EIO, "--cache", "%s: %s", final, g_strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        g_free(tmp);
        g_free(final);
        return rc;
    }
    g_free(tmp);
    log_info("camsim", "clip encoded path=%s ms=%" G_GINT64_FORMAT, final,
             (g_get_monotonic_time() - t0) / 1000);
    *encoded = true;
    *path = final;
    return 0;
}

int camsim_file_probe(const char *path, camsim_file_info *info, gc_err *err)
{
    memset(info, 0, sizeof *info);
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
        return gc_fail(err, GC_EINVAL, "--file", "%s: no such file", path);
    if (strchr(path, '"'))
        return gc_fail(err, GC_EINVAL, "--file", "%s: a path with '\"' is not supported", path);
    char *lower = g_ascii_strdown(path, -1);
    if (g_str_has_suffix(lower, ".mp4") || g_str_has_suffix(lower, ".mov") ||
        g_str_has_suffix(lower, ".m4v"))
        info->container = CAMSIM_MP4;
    else if (g_str_has_suffix(lower, ".mkv") || g_str_has_suffix(lower, ".webm"))
        info->container = CAMSIM_MKV;
    else
        info->container = CAMSIM_RAW;
    g_free(lower);

    GError *gerr = NULL;
    GstDiscoverer *d = gst_discoverer_new(10 * GST_SECOND, &gerr);
    if (!d) {
        int rc = gc_fail(err, GC_EIO, "--file", "discoverer: %s", gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        return rc;
    }
    char *uri = gst_filename_to_uri(path, NULL);
    GstDiscovererInfo *di = gst_discoverer_discover_uri(d, uri, &gerr);
    g_free(uri);
    int rc = 0;
    GList *videos = di ? gst_discoverer_info_get_video_streams(di) : NULL;
    if (!videos) {
        rc = gc_fail(err, GC_EINVAL, "--file", "%s: no video found%s%s", path, gerr ? ": " : "",
                     gerr ? gerr->message : "");
    } else {
        GstDiscovererVideoInfo *v = videos->data;
        GstCaps *caps = gst_discoverer_stream_info_get_caps(GST_DISCOVERER_STREAM_INFO(v));
        const char *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
        if (strcmp(name, "video/x-h264") == 0)
            info->codec = CAMSIM_H264;
        else if (strcmp(name, "video/x-h265") == 0)
            info->codec = CAMSIM_H265;
        else
            rc =
                gc_fail(err, GC_EINVAL, "--file", "%s: codec %s is not H.264 or H.265", path, name);
        gst_caps_unref(caps);
        info->width = (int)gst_discoverer_video_info_get_width(v);
        info->height = (int)gst_discoverer_video_info_get_height(v);
        guint num = gst_discoverer_video_info_get_framerate_num(v);
        guint den = gst_discoverer_video_info_get_framerate_denom(v);
        info->fps = den && num ? (double)num / den : 0;
    }
    gst_discoverer_stream_info_list_free(videos);
    if (di)
        gst_discoverer_info_unref(di);
    g_clear_error(&gerr);
    g_object_unref(d);
    return rc;
}

/* ---- the presentation order of a raw stream ---- */

typedef struct order_pass {
    GstCaps *ref;  /* names the meta that carries a unit's decode index */
    GArray *order; /* int per unit */
    int shown;     /* pictures the decoder has output so far */
} order_pass;

static GstPadProbeReturn order_tag(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    order_pass *o = ud;
    GstBuffer *buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    int none = -1;
    gst_buffer_add_reference_timestamp_meta(buf, o->ref, o->order->len, GST_CLOCK_TIME_NONE);
    /* times in decode order: the decoder needs some, and keeps the meta of
     * each picture with it through its reordering */
    GST_BUFFER_PTS(buf) = GST_BUFFER_DTS(buf) = o->order->len * (GST_SECOND / 25);
    g_array_append_val(o->order, none);
    return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn order_shown(GstPad *pad, GstPadProbeInfo *info, gpointer ud)
{
    order_pass *o = ud;
    GstReferenceTimestampMeta *meta =
        gst_buffer_get_reference_timestamp_meta(GST_PAD_PROBE_INFO_BUFFER(info), o->ref);
    if (meta && meta->timestamp < o->order->len)
        g_array_index(o->order, int, meta->timestamp) = o->shown;
    o->shown++;
    return GST_PAD_PROBE_OK;
}

static gint by_key_cmp(gconstpointer a, gconstpointer b, gpointer ud)
{
    const double *key = ud;
    double ka = key[*(const int *)a], kb = key[*(const int *)b];
    return ka < kb ? -1 : ka > kb;
}

int camsim_file_order(const char *path, camsim_file_info *info, gc_err *err)
{
    const char *caps = info->codec == CAMSIM_H265 ? "video/x-h265" : "video/x-h264";
    const char *parse = info->codec == CAMSIM_H265 ? "h265parse" : "h264parse";
    const char *dec = info->codec == CAMSIM_H265 ? "avdec_h265" : "avdec_h264";
    /* the parser as camsim.c serves the file, so that its access units are
     * the ones counted here; packetized into the decoder, so that each unit
     * is one frame to it and each picture keeps its unit's meta */
    char *launch =
        g_strdup_printf("filesrc location=\"%s\" ! %s,stream-format=byte-stream ! %s "
                        "name=parse ! %s,stream-format=%s,alignment=au ! %s name=dec ! "
                        "fakesink",
                        path, caps, parse, caps, info->codec == CAMSIM_H265 ? "hvc1" : "avc", dec);
    GError *gerr = NULL;
    GstElement *p = gst_parse_launch(launch, &gerr);
    g_free(launch);
    if (!p) {
        int rc = gc_fail(err, GC_EIO, "--file", "%s: decoder pipeline: %s", path,
                         gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        return rc;
    }
    g_clear_error(&gerr);
    order_pass o = {gst_caps_new_empty_simple("timestamp/x-camsim-unit"),
                    g_array_new(FALSE, FALSE, sizeof(int)), 0};
    GstElement *els[2] = {gst_bin_get_by_name(GST_BIN(p), "parse"),
                          gst_bin_get_by_name(GST_BIN(p), "dec")};
    GstPadProbeCallback cbs[2] = {order_tag, order_shown};
    for (int i = 0; i < 2; i++) {
        GstPad *pad = gst_element_get_static_pad(els[i], "src");
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, cbs[i], &o, NULL);
        gst_object_unref(pad);
        gst_object_unref(els[i]);
    }
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *msg =
        gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    int rc = 0;
    if (!msg || GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        if (msg)
            gst_message_parse_error(msg, &e, NULL);
        rc = gc_fail(err, GC_EIO, "--file", "%s: decoding for the picture order failed: %s", path,
                     e ? e->message : "timed out");
        g_clear_error(&e);
    }
    if (msg)
        gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    gst_caps_unref(o.ref);
    if (rc == 0 && o.shown == 0)
        rc = gc_fail(err, GC_EIO, "--file", "%s: the decoder showed no picture", path);
    if (rc != 0) {
        g_array_free(o.order, TRUE);
        return rc;
    }
    /* a permutation of the units: one the decoder never showed (lost
     * references, a leading picture it skips) goes after the last one shown
     * before it in decode order, so that no two units share a time */
    int n = (int)o.order->len;
    int *shown = (int *)g_array_free(o.order, FALSE);
    double *key = g_new(double, n);
    int *by_key = g_new(int, n);
    double prev = -1;
    for (int i = 0; i < n; i++) {
        key[i] = shown[i] >= 0 ? shown[i] : prev + 0.5 + (double)i / (2.0 * n + 2);
        if (shown[i] >= 0)
            prev = shown[i];
        by_key[i] = i;
    }
    g_qsort_with_data(by_key, n, sizeof(int), by_key_cmp, key);
    info->order = g_new(int, n);
    for (int r = 0; r < n; r++)
        info->order[by_key[r]] = r;
    info->units = n;
    info->delay = 0;
    for (int i = 0; i < n; i++)
        if (i - info->order[i] > info->delay)
            info->delay = i - info->order[i];
    log_info("camsim", "picture order file=%s units=%d shown=%d delay=%d", path, n, o.shown,
             info->delay);
    g_free(shown);
    g_free(key);
    g_free(by_key);
    return 0;
}
