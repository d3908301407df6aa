/* fuzz_rtsp: what the RTSP/TCP reader (src/video_rtsp.c) takes from a
 * camera's socket: video_rtsp_cut on the stream, video_rtsp_session_header
 * on a SETUP reply's Session value. Besides not crashing: the input is fed
 * as the reader feeds it (appended to what was left, cut, the used bytes
 * dropped) in pieces whose size the first byte picks, and the packets are
 * the same as when it is fed whole (a packet depends on the bytes, not on
 * how they arrived); a cut never uses more than it was given, and every
 * packet lies within it. */
#include "fuzz.h"
#include "video_rtsp.h"

typedef struct seen {
    GString *log;
    const guint8 *lo, *hi;
} seen;

static void on_packet(void *ud, guint8 channel, const guint8 *d, size_t len)
{
    seen *s = ud;
    CHECK(d >= s->lo && d + len <= s->hi, "a packet outside its buffer");
    char *sum = g_compute_checksum_for_data(G_CHECKSUM_MD5, d, len);
    g_string_append_printf(s->log, "%u:%zu:%s,", channel, len, sum);
    g_free(sum);
}

/* the reader's way: returns FALSE when the stream was refused */
static gboolean feed(const uint8_t *data, size_t size, size_t piece, seen *s)
{
    GByteArray *buf = g_byte_array_new();
    gboolean ok = TRUE;
    for (size_t off = 0; off < size && ok; off += piece) {
        g_byte_array_append(buf, data + off, (guint)MIN(piece, size - off));
        s->lo = buf->data;
        s->hi = buf->data + buf->len;
        gssize used = video_rtsp_cut(buf->data, buf->len, on_packet, s);
        CHECK(used <= (gssize)buf->len, "used %zd of %u", used, buf->len);
        if (used < 0)
            ok = FALSE;
        else
            g_byte_array_remove_range(buf, 0, (guint)used);
    }
    g_byte_array_free(buf, TRUE);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 200;
    data++, size--;
    seen a = {g_string_new(NULL), NULL, NULL}, b = {g_string_new(NULL), NULL, NULL};
    gboolean ra = feed(data, size, size ? size : 1, &a);
    gboolean rb = feed(data, size, piece, &b);
    /* whole or in pieces: the same packets up to where either stopped */
    if (ra && rb)
        CHECK(!strcmp(a.log->str, b.log->str), "packets differ: %s / %s", a.log->str, b.log->str);
    char *str = fuzz_str(data, size);
    gint64 t = 0;
    char *id = video_rtsp_session_header(str, &t);
    CHECK(t >= 1 && t <= 86400, "timeout %" G_GINT64_FORMAT, t);
    CHECK(!id || (*id && strlen(id) <= 256), "an id of %zu bytes", id ? strlen(id) : 0);
    g_free(id);
    g_free(str);
    g_string_free(a.log, TRUE);
    g_string_free(b.log, TRUE);
    return 0;
}
