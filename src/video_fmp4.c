/* video_fmp4: reads mp4mux's fragmented output as it streams. Top-level
 * boxes are cut whole; ftyp+moov make the init segment, each moof with the
 * mdat after it a media fragment, whose first sample's flags (trun, else
 * tfhd's defaults, else trex's of the moov) say whether it starts on a
 * keyframe. Strict: a size that cannot be, a child that overruns its
 * parent, or a box order other than mp4mux's is an error, not a guess. */
#include <stdio.h>
#include <string.h>

#include "gridcc/video.h"

#define FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
/* a fragment of a few seconds of 4K at 50 Mbit/s stays far below this */
#define MAX_BOX (64u << 20)
#define NON_SYNC 0x00010000u

struct video_fmp4 {
    video_fmp4_cb cb;
    void *ud;
    GByteArray *buf;
    size_t moof_at; /* where the pending moof starts in buf, or SIZE_MAX */
    bool have_init, broken;
    uint32_t trex_flags; /* trex's default_sample_flags */
    bool have_trex;
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The box at p (at most len bytes): 1 with hdr, size and type when its header
 * is whole, 0 when more bytes are needed, GC_EINVAL when malformed. */
static int box_head(const uint8_t *p, size_t len, size_t *hdr, uint64_t *size, uint32_t *type)
{
    if (len < 8)
        return 0;
    uint64_t sz = rd32(p);
    *type = rd32(p + 4);
    *hdr = 8;
    if (sz == 1) {
        if (len < 16)
            return 0;
        sz = (uint64_t)rd32(p + 8) << 32 | rd32(p + 12);
        *hdr = 16;
    }
    if (sz < *hdr || sz > MAX_BOX) /* 0 (to the end of file) has no place in a stream */
        return GC_EINVAL;
    *size = sz;
    return 1;
}

/* Finds the child of type t inside [p, p+len); GC_EINVAL when the children
 * do not tile their parent exactly. */
static int find_child(const uint8_t *p, size_t len, uint32_t t, const uint8_t **out, size_t *olen)
{
    *out = NULL;
    while (len) {
        size_t hdr;
        uint64_t sz;
        uint32_t type;
        int r = box_head(p, len, &hdr, &sz, &type);
        if (r <= 0 || sz > len)
            return GC_EINVAL;
        if (type == t && !*out) {
            *out = p + hdr;
            *olen = (size_t)sz - hdr;
        }
        p += sz;
        len -= (size_t)sz;
    }
    return 0;
}

/* The default sample flags of moov/mvex/trex, if any. */
static int read_trex(const uint8_t *moov, size_t len, bool *have, uint32_t *flags)
{
    const uint8_t *mvex, *trex;
    size_t ml, tl;
    *have = false;
    if (find_child(moov, len, FOURCC('m', 'v', 'e', 'x'), &mvex, &ml))
        return GC_EINVAL;
    if (!mvex)
        return 0;
    if (find_child(mvex, ml, FOURCC('t', 'r', 'e', 'x'), &trex, &tl))
        return GC_EINVAL;
    if (!trex)
        return 0;
    /* version+flags, track_ID, description index, duration, size, flags */
    if (tl < 24)
        return GC_EINVAL;
    *flags = rd32(trex + 20);
    *have = true;
    return 0;
}

static int moof_key(const uint8_t *body, size_t len, bool have_trex, uint32_t trex_flags)
{
    const uint8_t *traf, *tfhd, *trun;
    size_t al, hl, rl;
    if (find_child(body, len, FOURCC('t', 'r', 'a', 'f'), &traf, &al) || !traf)
        return GC_EINVAL;
    if (find_child(traf, al, FOURCC('t', 'f', 'h', 'd'), &tfhd, &hl) || !tfhd)
        return GC_EINVAL;
    if (find_child(traf, al, FOURCC('t', 'r', 'u', 'n'), &trun, &rl) || !trun)
        return GC_EINVAL;
    if (hl < 8)
        return GC_EINVAL;
    uint32_t tf = rd32(tfhd) & 0xffffff;
    size_t need = 8 + (tf & 0x01 ? 8 : 0) + (tf & 0x02 ? 4 : 0) + (tf & 0x08 ? 4 : 0) +
                  (tf & 0x10 ? 4 : 0) + (tf & 0x20 ? 4 : 0);
    if (hl < need)
        return GC_EINVAL;
    bool have = have_trex;
    uint32_t flags = trex_flags;
    if (tf & 0x20) {
        flags = rd32(tfhd + need - 4);
        have = true;
    }
    if (rl < 8)
        return GC_EINVAL;
    uint32_t rf = rd32(trun) & 0xffffff;
    uint32_t count = rd32(trun + 4);
    size_t off = 8 + (rf & 0x01 ? 4 : 0);
    size_t per =
        (rf & 0x100 ? 4 : 0) + (rf & 0x200 ? 4 : 0) + (rf & 0x400 ? 4 : 0) + (rf & 0x800 ? 4 : 0);
    if (count == 0)
        return GC_EINVAL;
    if (rf & 0x04) {
        if (rl < off + 4)
            return GC_EINVAL;
        flags = rd32(trun + off);
        have = true;
        off += 4;
    }
    if ((uint64_t)count * per > rl - off) /* every sample's entry is there */
        return GC_EINVAL;
    if (!(rf & 0x04) && (rf & 0x400)) {
        flags = rd32(trun + off + (rf & 0x100 ? 4 : 0) + (rf & 0x200 ? 4 : 0));
        have = true;
    }
    if (!have)
        return GC_EINVAL;
    return (flags & NON_SYNC) ? 0 : 1;
}

int video_fmp4_moof_key(const uint8_t *moof, size_t len)
{
    size_t hdr;
    uint64_t sz;
    uint32_t type;
    if (box_head(moof, len, &hdr, &sz, &type) != 1 || type != FOURCC('m', 'o', 'o', 'f') ||
        sz != len)
        return GC_EINVAL;
    return moof_key(moof + hdr, len - hdr, false, 0);
}

video_fmp4 *video_fmp4_new(video_fmp4_cb cb, void *ud)
{
    video_fmp4 *f = g_new0(video_fmp4, 1);
    f->cb = cb;
    f->ud = ud;
    f->buf = g_byte_array_new();
    f->moof_at = SIZE_MAX;
    return f;
}

void video_fmp4_free(video_fmp4 *f)
{
    if (!f)
        return;
    g_byte_array_free(f->buf, TRUE);
    g_free(f);
}

static int fail(video_fmp4 *f, gc_err *err, const char *what, size_t at)
{
    f->broken = true;
    return gc_fail(err, GC_EINVAL, "fmp4", "fMP4 stream: %s at byte %zu of the pending data", what,
                   at);
}

int video_fmp4_push(video_fmp4 *f, const uint8_t *data, size_t len, gc_err *err)
{
    if (f->broken)
        return gc_fail(err, GC_EINVAL, "fmp4", "fMP4 stream: broken earlier");
    g_byte_array_append(f->buf, data, (guint)len);
    size_t pos = f->moof_at == SIZE_MAX ? 0 : f->moof_at;
    size_t scan = pos;
    /* walk the complete boxes from where the unfinished unit begins */
    if (f->moof_at != SIZE_MAX) {
        size_t hdr;
        uint64_t sz;
        uint32_t type;
        box_head(f->buf->data + scan, f->buf->len - scan, &hdr, &sz, &type);
        scan += (size_t)sz; /* the moof is known whole */
    }
    size_t ftyp_at = SIZE_MAX;
    for (;;) {
        size_t avail = f->buf->len - scan, hdr;
        uint64_t sz;
        uint32_t type;
        int r = box_head(f->buf->data + scan, avail, &hdr, &sz, &type);
        if (r < 0)
            return fail(f, err, "impossible box size", scan);
        if (r == 0 || sz > avail)
            break;
        const uint8_t *b = f->buf->data + scan;
        switch (type) {
        case FOURCC('f', 't', 'y', 'p'):
            if (f->moof_at != SIZE_MAX)
                return fail(f, err, "ftyp inside a fragment", scan);
            ftyp_at = scan;
            f->have_init = false;
            break;
        case FOURCC('m', 'o', 'o', 'v'): {
            if (ftyp_at == SIZE_MAX && scan != 0)
                return fail(f, err, "moov without ftyp", scan);
            if (read_trex(b + hdr, (size_t)sz - hdr, &f->have_trex, &f->trex_flags))
                return fail(f, err, "malformed moov", scan);
            size_t start = ftyp_at == SIZE_MAX ? scan : ftyp_at;
            f->cb(f->ud, true, false, f->buf->data + start, scan + (size_t)sz - start);
            f->have_init = true;
            ftyp_at = SIZE_MAX;
            g_byte_array_remove_range(f->buf, 0, (guint)(scan + sz));
            scan = 0;
            continue;
        }
        case FOURCC('m', 'o', 'o', 'f'):
            if (!f->have_init)
                return fail(f, err, "moof before the init segment", scan);
            if (f->moof_at != SIZE_MAX)
                return fail(f, err, "moof without its mdat", scan);
            f->moof_at = scan;
            break;
        case FOURCC('m', 'd', 'a', 't'): {
            if (f->moof_at == SIZE_MAX)
                return fail(f, err, "mdat without a moof", scan);
            const uint8_t *m = f->buf->data + f->moof_at;
            size_t mhdr;
            uint64_t msz;
            uint32_t mt;
            box_head(m, scan - f->moof_at, &mhdr, &msz, &mt);
            int key = moof_key(m + mhdr, (size_t)msz - mhdr, f->have_trex, f->trex_flags);
            if (key < 0)
                return fail(f, err, "malformed moof", f->moof_at);
            f->cb(f->ud, false, key == 1, m, scan + (size_t)sz - f->moof_at);
            g_byte_array_remove_range(f->buf, 0, (guint)(scan + sz));
            f->moof_at = SIZE_MAX;
            scan = 0;
            continue;
        }
        case FOURCC('m', 'f', 'r', 'a'): /* at EOS: the random access index, not needed */
        case FOURCC('f', 'r', 'e', 'e'):
        case FOURCC('s', 'k', 'i', 'p'):
            if (f->moof_at == SIZE_MAX && ftyp_at == SIZE_MAX) {
                g_byte_array_remove_range(f->buf, 0, (guint)(scan + sz));
                scan = 0;
                continue;
            }
            break;
        default: return fail(f, err, "unexpected box", scan);
        }
        scan += (size_t)sz;
    }
    return 0;
}

int video_codec_string(const char *codec, const uint8_t *cd, size_t len, char *out, size_t outlen)
{
    if (!strcmp(codec, "h264")) {
        if (len < 4 || cd[0] != 1)
            return GC_EINVAL;
        snprintf(out, outlen, "avc1.%02x%02x%02x", cd[1], cd[2], cd[3]);
        return 0;
    }
    if (!strcmp(codec, "h265")) {
        if (len < 13 || cd[0] != 1)
            return GC_EINVAL;
        static const char *space[] = {"", "A", "B", "C"};
        uint32_t compat = rd32(cd + 2), rev = 0;
        for (int i = 0; i < 32; i++) /* the flags are written bit-reversed (ISO 14496-15 E.3) */
            if (compat & (1u << i))
                rev |= 1u << (31 - i);
        int n = snprintf(out, outlen, "hvc1.%s%d.%X.%c%d", space[cd[1] >> 6], cd[1] & 0x1f, rev,
                         cd[1] & 0x20 ? 'H' : 'L', cd[12]);
        int last = 5; /* trailing zero bytes of the constraint flags are left out */
        while (last >= 0 && cd[6 + last] == 0)
            last--;
        for (int i = 0; i <= last && n > 0 && (size_t)n < outlen; i++)
            n += snprintf(out + n, outlen - (size_t)n, ".%X", cd[6 + i]);
        return 0;
    }
    return GC_EINVAL;
}
