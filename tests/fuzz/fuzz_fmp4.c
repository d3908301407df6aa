/* fuzz_fmp4: the fMP4 reader of the video engine (video_fmp4_push and
 * video_fmp4_moof_key). Besides not crashing: the input is fed in pieces
 * whose sizes the input's first byte picks, and the units it cuts are the
 * same whatever the pieces (a unit depends on the bytes, not on how they
 * arrived); every unit lies within what was fed; a fragment's keyframe flag
 * is what video_fmp4_moof_key says of its moof when that can tell (found
 * by an hour's run: a moof that relies on the init's trex defaults).
 * The same bytes go to the other byte reader of the engine, the NAL scan
 * of an access unit (video_au_random_access), framed as the first byte
 * says: an answer from its set, or a refusal. */
#include "fuzz.h"
#include "gridcc/video.h"

typedef struct seen {
    GString *log;
    size_t bytes;
} seen;

static void on_unit(void *ud, bool init, bool key, const uint8_t *d, size_t len)
{
    seen *s = ud;
    CHECK(len >= 8, "a unit of %zu bytes", len);
    s->bytes += len;
    if (!init) {
        size_t moof = (size_t)d[0] << 24 | (size_t)d[1] << 16 | (size_t)d[2] << 8 | d[3];
        CHECK(moof <= len, "moof of %zu in a unit of %zu", moof, len);
        /* alone, a moof whose flags are the init's trex defaults is unread */
        int k = video_fmp4_moof_key(d, moof);
        CHECK(k == (key ? 1 : 0) || k == GC_EINVAL, "key flag differs");
    }
    g_string_append_printf(s->log, "%d%d:%zu,", init, key, len);
}

static int feed(const uint8_t *data, size_t size, size_t piece, seen *s)
{
    video_fmp4 *f = video_fmp4_new(on_unit, s);
    gc_err err = {0};
    int rc = 0;
    for (size_t off = 0; off < size && !rc; off += piece)
        rc = video_fmp4_push(f, data + off, MIN(piece, size - off), &err);
    video_fmp4_free(f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 64;
    data++, size--;
    seen a = {g_string_new(NULL), 0}, b = {g_string_new(NULL), 0};
    int ra = feed(data, size, size ? size : 1, &a);
    int rb = feed(data, size, piece, &b);
    CHECK(a.bytes <= size && b.bytes <= size, "more out than in");
    /* whole or in pieces: the same units up to where either stopped */
    if (ra == 0 && rb == 0)
        CHECK(!strcmp(a.log->str, b.log->str), "units differ: %s / %s", a.log->str, b.log->str);
    video_fmp4_moof_key(data, size);
    static const int lens[] = {1, 2, 4, 3};
    int r = video_au_random_access(data[-1] & 0x80, lens[data[-1] >> 5 & 3], data, size);
    CHECK(r == 0 || r == VIDEO_AU_IDR || r == VIDEO_AU_RECOVERY || r == GC_EINVAL,
          "random access answered %d", r);
    g_string_free(a.log, TRUE);
    g_string_free(b.log, TRUE);
    return 0;
}
