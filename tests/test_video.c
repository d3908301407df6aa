/* test_video: the video engine's pure parts. Templates substitute and quote
 * (a URL cannot add a filesink to the pipeline); the fMP4 reader on real
 * mp4mux output (a keyframe fragment first) and on malformed input; the
 * codec strings; the backoff schedule's doubling, cap and jitter bounds; the
 * RTSP/TCP reader's cutting of a camera's stream and its Session header. */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gridcc/video.h"
#include "video_rtsp.h"

static void template_quotes_values(void **state)
{
    const char *keys[] = {"url", "latency"};
    const char *vals[] = {"rtsp://u:p@h/a\" ! filesink location=/tmp/gridcc-injected name=\"x",
                          "200"};
    char *out = NULL;
    gc_err err = {0};
    assert_int_equal(video_template_expand("# comment\nrtspsrc name=src location={url}\n"
                                           "  latency={latency} ! fakesink",
                                           keys, vals, 2, &out, &err),
                     0);
    assert_non_null(strstr(out, "location=\"rtsp://u:p@h/a\\\" ! filesink"));
    assert_null(strstr(out, "comment"));
    /* gst_parse_launch makes one rtspsrc and one fakesink, no filesink */
    GError *e = NULL;
    GstElement *p = gst_parse_launch(out, &e);
    assert_non_null(p);
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    assert_non_null(src);
    char *loc = NULL;
    g_object_get(src, "location", &loc, NULL);
    assert_string_equal(loc, vals[0]);
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(p));
    GValue v = G_VALUE_INIT;
    int n = 0;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstElement *el = g_value_get_object(&v);
        assert_string_not_equal(G_OBJECT_TYPE_NAME(el), "GstFileSink");
        n++;
        g_value_reset(&v);
    }
    assert_int_equal(n, 2);
    g_value_unset(&v);
    gst_iterator_free(it);
    g_free(loc);
    gst_object_unref(src);
    gst_object_unref(p);
    g_free(out);

    /* a backslash at the end cannot eat the closing quote */
    const char *v2[] = {"rtsp://h/a\\", "1"};
    assert_int_equal(video_template_expand("x={url}", keys, v2, 2, &out, &err), 0);
    assert_string_equal(out, "x=\"rtsp://h/a\\\\\"");
    g_free(out);
    assert_int_equal(video_template_expand("x={nope}", keys, v2, 2, &out, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "{nope}"));
    const char *v3[] = {"rtsp://h/a\nfilesink", "1"};
    assert_int_equal(video_template_expand("x={url}", keys, v3, 2, &out, &err), GC_EINVAL);
    assert_string_equal(err.field, "url");
}

static void backoff_doubles_caps_and_jitters(void **state)
{
    assert_int_equal(video_backoff_ms(0, 0.5, 1000, 60000), 1000);
    assert_int_equal(video_backoff_ms(1, 0.5, 1000, 60000), 2000);
    assert_int_equal(video_backoff_ms(5, 0.5, 1000, 60000), 32000);
    assert_int_equal(video_backoff_ms(6, 0.5, 1000, 60000), 60000);
    assert_int_equal(video_backoff_ms(1000, 0.5, 1000, 60000), 60000);
    for (int a = 0; a < 12; a++)
        for (double u = 0; u < 1; u += 0.01) {
            int64_t mid = video_backoff_ms(a, 0.5, 1000, 60000);
            int64_t d = video_backoff_ms(a, u, 1000, 60000);
            assert_true(d >= mid * 8 / 10 && d <= mid * 12 / 10);
        }
    assert_int_equal(video_backoff_ms(0, 0.0, 1000, 60000), 800);
}

static void redact_hides_user_info(void **state)
{
    char *r = video_url_redact("rtsp://admin:p@ss:w0rd@10.0.0.5:554/Streaming/101");
    assert_string_equal(r, "rtsp://***@10.0.0.5:554/Streaming/101");
    g_free(r);
    r = video_url_redact("rtsp://10.0.0.5/a@b");
    assert_string_equal(r, "rtsp://10.0.0.5/a@b");
    g_free(r);
}

typedef struct units {
    int inits, frags, keys;
    bool first_key;
    size_t bytes;
} units;

static void on_unit(void *ud, bool init, bool key, const uint8_t *d, size_t len)
{
    units *u = ud;
    u->bytes += len;
    if (init) {
        u->inits++;
        return;
    }
    assert_int_equal(video_fmp4_moof_key(d, (size_t)(d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3])),
                     key);
    if (!u->frags)
        u->first_key = key;
    u->frags++;
    u->keys += key;
}

/* mp4mux's fragmented output of 60 frames with a keyframe every 15. */
static GByteArray *mp4mux_output(const char *enc)
{
    char *desc = g_strdup_printf("videotestsrc num-buffers=60 ! video/x-raw,width=64,height=48,"
                                 "framerate=25/1 ! %s ! mp4mux fragment-duration=100 "
                                 "streamable=true ! appsink name=out sync=false",
                                 enc);
    GError *e = NULL;
    GstElement *p = gst_parse_launch(desc, &e);
    g_free(desc);
    assert_non_null(p);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "out");
    gst_element_set_state(p, GST_STATE_PLAYING);
    GByteArray *all = g_byte_array_new();
    GstSample *s;
    while ((s = gst_app_sink_pull_sample(GST_APP_SINK(sink)))) {
        GstMapInfo m;
        GstBuffer *b = gst_sample_get_buffer(s);
        gst_buffer_map(b, &m, GST_MAP_READ);
        g_byte_array_append(all, m.data, (guint)m.size);
        gst_buffer_unmap(b, &m);
        gst_sample_unref(s);
    }
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(p);
    return all;
}

static void fmp4_splits_mp4mux_output(void **state)
{
    const char *encs[] = {"x264enc key-int-max=15 speed-preset=ultrafast ! h264parse",
                          "x265enc key-int-max=15 speed-preset=ultrafast ! h265parse"};
    for (int i = 0; i < 2; i++) {
        GByteArray *all = mp4mux_output(encs[i]);
        assert_true(all->len > 1000);
        /* fed in odd pieces, as buffers arrive */
        units u = {0};
        video_fmp4 *f = video_fmp4_new(on_unit, &u);
        gc_err err = {0};
        for (size_t off = 0; off < all->len; off += 777)
            assert_int_equal(video_fmp4_push(f, all->data + off, MIN(777, all->len - off), &err),
                             0);
        video_fmp4_free(f);
        assert_int_equal(u.inits, 1);
        assert_true(u.first_key);
        assert_int_equal(u.keys, 4); /* frames 0, 15, 30, 45 */
        assert_true(u.frags >= 4);
        g_byte_array_free(all, TRUE);
    }
}

static void fmp4_rejects_malformed(void **state)
{
    units u = {0};
    gc_err err = {0};
    /* a size smaller than its header */
    static const uint8_t small[] = {0, 0, 0, 4, 'f', 't', 'y', 'p'};
    video_fmp4 *f = video_fmp4_new(on_unit, &u);
    assert_int_equal(video_fmp4_push(f, small, sizeof small, &err), GC_EINVAL);
    assert_int_equal(video_fmp4_push(f, small, 0, &err), GC_EINVAL); /* stays broken */
    video_fmp4_free(f);
    /* a fragment before any init segment */
    static const uint8_t moof[] = {0, 0, 0, 8, 'm', 'o', 'o', 'f'};
    f = video_fmp4_new(on_unit, &u);
    assert_int_equal(video_fmp4_push(f, moof, sizeof moof, &err), GC_EINVAL);
    video_fmp4_free(f);
    /* an unknown top-level box, a 64-bit size of 2^40 */
    static const uint8_t huge[] = {0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 1, 0, 0, 0, 0, 0};
    f = video_fmp4_new(on_unit, &u);
    assert_int_equal(video_fmp4_push(f, huge, sizeof huge, &err), GC_EINVAL);
    video_fmp4_free(f);
    /* a moof whose trun claims more samples than it holds */
    static const uint8_t bad[] = {0, 0, 0, 48, 'm', 'o', 'o', 'f', 0, 0, 0, 40, 't', 'r', 'a', 'f',
                                  0, 0, 0, 16, 't', 'f', 'h', 'd', 0, 0, 0, 0,  0,   0,   0,   1,
                                  0, 0, 0, 16, 't', 'r', 'u', 'n', 0, 0, 4, 0,  0,   0,   0,   9};
    assert_int_equal(video_fmp4_moof_key(bad, sizeof bad), GC_EINVAL);
    assert_int_equal(u.inits + u.frags, 0);
}

static void codec_strings(void **state)
{
    char s[64];
    static const uint8_t avcc[] = {1, 0x64, 0x00, 0x28, 0xff};
    assert_int_equal(video_codec_string("h264", avcc, sizeof avcc, s, sizeof s), 0);
    assert_string_equal(s, "avc1.640028");
    /* Main profile, level 3.1 (93), compat flags 0x60000000 → 6, constraint 0xB0 */
    static const uint8_t hvcc[] = {1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93};
    assert_int_equal(video_codec_string("h265", hvcc, sizeof hvcc, s, sizeof s), 0);
    assert_string_equal(s, "hvc1.1.6.L93.B0");
    assert_int_equal(video_codec_string("h265", hvcc, 5, s, sizeof s), GC_EINVAL);
}

static void random_access_points(void **state)
{
    /* avcC with 4-byte lengths; hvcC with 2-byte lengths */
    static const uint8_t avcc[] = {1, 0x64, 0x00, 0x28, 0xff};
    assert_int_equal(video_nal_length_size(false, avcc, sizeof avcc), 4);
    uint8_t hvcc[23] = {1};
    hvcc[21] = 0xfd;
    assert_int_equal(video_nal_length_size(true, hvcc, sizeof hvcc), 2);
    hvcc[21] = 0xfe; /* 3-byte lengths do not exist */
    assert_int_equal(video_nal_length_size(true, hvcc, sizeof hvcc), GC_EINVAL);
    assert_int_equal(video_nal_length_size(true, hvcc, 20), GC_EINVAL);
    /* H.264: SPS, PPS, IDR slice */
    static const uint8_t idr[] = {0, 0, 0, 2, 0x67, 0x64, 0, 0, 0, 2, 0x68, 0xee,
                                  0, 0, 0, 3, 0x65, 0x88, 0x84};
    assert_int_equal(video_au_random_access(false, 4, idr, sizeof idr), VIDEO_AU_IDR);
    /* an I slice that is not IDR (type 1): h264parse calls it a keyframe */
    static const uint8_t islice[] = {0, 0, 0, 3, 0x41, 0x88, 0x84};
    assert_int_equal(video_au_random_access(false, 4, islice, sizeof islice), 0);
    /* the same after a SEI of user data (5) then a recovery point (6) */
    static const uint8_t rp[] = {0, 0, 0, 8, 0x06, 5, 2, 0xaa, 0xbb, 6, 1, 0x84,
                                 0, 0, 0, 3, 0x41, 0x88, 0x84};
    assert_int_equal(video_au_random_access(false, 4, rp, sizeof rp), VIDEO_AU_RECOVERY);
    /* a SEI of user data alone does not make it one */
    static const uint8_t ud[] = {0, 0, 0, 5, 0x06, 5, 1, 0xaa, 0x80,
                                 0, 0, 0, 3, 0x41, 0x88, 0x84};
    assert_int_equal(video_au_random_access(false, 4, ud, sizeof ud), 0);
    /* user data whose 3 bytes are 00 00 00, escaped to 00 00 03 00: the size
     * (3) counts them unescaped, so the recovery point after is found */
    static const uint8_t esc[] = {0, 0, 0, 10, 0x06, 5, 3, 0, 0, 3, 0, 6, 1, 0x84,
                                  0, 0, 0, 3, 0x41, 0x88, 0x84};
    assert_int_equal(video_au_random_access(false, 4, esc, sizeof esc), VIDEO_AU_RECOVERY);
    /* H.265: CRA (21) is IRAP, TRAIL_R (1) is not; 2-byte lengths */
    static const uint8_t cra[] = {0, 3, 21 << 1, 1, 0xaf};
    static const uint8_t trail[] = {0, 3, 1 << 1, 1, 0xaf};
    assert_int_equal(video_au_random_access(true, 2, cra, sizeof cra), VIDEO_AU_IDR);
    assert_int_equal(video_au_random_access(true, 2, trail, sizeof trail), 0);
    /* broken framing: a length past the end, a zero length, 3-byte lengths */
    assert_int_equal(video_au_random_access(false, 4, idr, sizeof idr - 1), GC_EINVAL);
    static const uint8_t zero[] = {0, 0, 0, 0};
    assert_int_equal(video_au_random_access(false, 4, zero, sizeof zero), GC_EINVAL);
    assert_int_equal(video_au_random_access(false, 3, idr, sizeof idr), GC_EINVAL);
}

static void on_packet(void *ud, guint8 channel, const guint8 *data, size_t len)
{
    g_string_append_printf(ud, "%u:%.*s,", channel, (int)len, (const char *)data);
}

static gssize cut(const char *in, size_t len, GString *log)
{
    g_string_truncate(log, 0);
    return video_rtsp_cut((const guint8 *)in, len, on_packet, log);
}

static void rtsp_cuts_interleaved_stream(void **state)
{
    GString *log = g_string_new(NULL);
    /* two packets, then the first 3 of a third's 5 bytes: that waits */
    static const char two[] = "$\0\0\3abc$\1\0\2xy$\0\0\5" "12";
    assert_int_equal(cut(two, sizeof two - 1, log), 13);
    assert_string_equal(log->str, "0:abc,1:xy,");
    /* a keep-alive's reply with a body between packets is read past, whole */
    static const char reply[] = "$\0\0\1a"
                                "RTSP/1.0 200 OK\r\nCSeq: 9\r\ncontent-length: 4\r\n\r\nbody"
                                "$\0\0\1b";
    assert_int_equal(cut(reply, sizeof reply - 1, log), (gssize)(sizeof reply - 1));
    assert_string_equal(log->str, "0:a,0:b,");
    /* the reply's body not all here yet: it waits, the packet before went */
    static const char part[] = "$\0\0\1aRTSP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nbod";
    assert_int_equal(cut(part, sizeof part - 1, log), 5);
    /* a header not ended yet waits; one that never ends, or garbage, is refused */
    assert_int_equal(cut("RTSP/1.0 200 OK\r\n", 17, log), 0);
    char *long_head = g_strnfill(9000, 'A');
    assert_int_equal(cut(long_head, 9000, log), -1);
    g_free(long_head);
    assert_int_equal(cut("\x80\x60\0\1", 4, log), -1);
    assert_int_equal(cut("rtsp", 4, log), -1);
    static const char bad_len[] = "RTSP/1.0 200 OK\r\nContent-Length: -4\r\n\r\n";
    assert_int_equal(cut(bad_len, sizeof bad_len - 1, log), -1);
    static const char big_len[] = "RTSP/1.0 200 OK\r\nContent-Length: 99999\r\n\r\n";
    assert_int_equal(cut(big_len, sizeof big_len - 1, log), -1);
    /* CR and LF between messages are read past (GStreamer's parser allows
     * them); a reply whose lines end in LF alone ends at its blank line */
    static const char loose[] = "\r\n$\0\0\1a\nRTSP/1.0 200 OK\nContent-Length: 2\n\nok$\0\0\1b";
    assert_int_equal(cut(loose, sizeof loose - 1, log), (gssize)(sizeof loose - 1));
    assert_string_equal(log->str, "0:a,0:b,");
    /* fewer than 4 bytes: nothing yet */
    assert_int_equal(cut("$\0\0", 3, log), 0);
    g_string_free(log, TRUE);
}

static void rtsp_session_header(void **state)
{
    gint64 t = 0;
    char *id = video_rtsp_session_header("12AB;timeout=30", &t);
    assert_string_equal(id, "12AB");
    assert_int_equal(t, 30);
    g_free(id);
    id = video_rtsp_session_header(" x9 ", &t);
    assert_string_equal(id, "x9");
    assert_int_equal(t, 60);
    g_free(id);
    id = video_rtsp_session_header("s; timeout=0", &t); /* not 1..86400: the default */
    assert_string_equal(id, "s");
    assert_int_equal(t, 60);
    g_free(id);
    assert_null(video_rtsp_session_header(";timeout=5", &t));
    assert_null(video_rtsp_session_header("", &t));
}

int main(void)
{
    gst_init(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_quotes_values),
        cmocka_unit_test(backoff_doubles_caps_and_jitters),
        cmocka_unit_test(redact_hides_user_info),
        cmocka_unit_test(fmp4_splits_mp4mux_output),
        cmocka_unit_test(fmp4_rejects_malformed),
        cmocka_unit_test(codec_strings),
        cmocka_unit_test(random_access_points),
        cmocka_unit_test(rtsp_cuts_interleaved_stream),
        cmocka_unit_test(rtsp_session_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
