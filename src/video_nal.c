/* video_nal: which access units a viewer, a snapshot or the transcode may
 * start on. h264parse calls every I picture a keyframe, but a P picture
 * after a non-IDR I picture may refer to pictures before it (the
 * conformance stream MR1_BT_A decoded 0 of 39 frames from one): an IDR
 * picture (H.264) or an IRAP picture (H.265: BLA, IDR, CRA) starts a clean
 * decode, and so does, as its encoder says, a recovery point SEI (whose
 * picture may be whole only recovery_frame_cnt frames later: encoders with
 * open GOPs or intra refresh send nothing better). Reads only NAL unit
 * headers and the SEI's message headers, in the length-prefixed framing of
 * avcC/hvcC. */
#include "gridcc/video.h"

enum { H264_IDR = 5, H264_SEI = 6, H264_SEI_RECOVERY_POINT = 6 };
enum { H265_IRAP_FIRST = 16, H265_IRAP_LAST = 23 };

int video_nal_length_size(bool h265, const uint8_t *cd, size_t len)
{
    /* avcC: lengthSizeMinusOne in the low bits of byte 4; hvcC: of byte 21 */
    size_t at = h265 ? 21 : 4;
    if (!cd || len <= at || cd[0] != 1)
        return GC_EINVAL;
    int n = (cd[at] & 3) + 1;
    return n == 3 ? GC_EINVAL : n;
}

/* The bytes of an SEI's RBSP: the NAL's payload with its emulation
 * prevention bytes (the 03 of 00 00 03) skipped, as the sizes in the
 * message headers count them. */
typedef struct rbsp {
    const uint8_t *p;
    size_t len, i;
    int zeros;
} rbsp;

static int rbsp_byte(rbsp *r)
{
    if (r->i >= r->len)
        return -1;
    uint8_t b = r->p[r->i++];
    if (r->zeros >= 2 && b == 3) {
        r->zeros = 0;
        if (r->i >= r->len)
            return -1;
        b = r->p[r->i++];
    }
    r->zeros = b ? 0 : r->zeros + 1;
    return b;
}

/* ff ff … xx: a payload type or size */
static long sei_number(rbsp *r)
{
    long v = 0;
    int b;
    while ((b = rbsp_byte(r)) == 0xFF)
        v += 255;
    return b < 0 ? -1 : v + b;
}

/* An H.264 SEI NAL (header byte included): does a message say "recovery point"? */
static bool sei_recovery_point(const uint8_t *p, size_t len)
{
    rbsp r = {p, len, 1, 0};
    /* a message needs a type and a size; 0x80 alone is the RBSP's trailing bits */
    while (r.i + 1 < r.len) {
        long type = sei_number(&r), size = sei_number(&r);
        if (type < 0 || size < 0)
            return false;
        if (type == H264_SEI_RECOVERY_POINT)
            return true;
        for (long k = 0; k < size; k++)
            if (rbsp_byte(&r) < 0)
                return false;
    }
    return false;
}

int video_au_random_access(bool h265, int nal_len, const uint8_t *data, size_t len)
{
    if (nal_len < 1 || nal_len > 4 || nal_len == 3)
        return GC_EINVAL;
    int found = 0;
    size_t i = 0;
    while (i < len) {
        if (len - i < (size_t)nal_len)
            return GC_EINVAL;
        size_t n = 0;
        for (int k = 0; k < nal_len; k++)
            n = n << 8 | data[i++];
        if (n == 0 || n > len - i)
            return GC_EINVAL;
        const uint8_t *nal = data + i;
        i += n;
        if (h265) {
            unsigned type = nal[0] >> 1 & 0x3F;
            if (type >= H265_IRAP_FIRST && type <= H265_IRAP_LAST)
                return VIDEO_AU_IDR;
        } else {
            unsigned type = nal[0] & 0x1F;
            if (type == H264_IDR)
                return VIDEO_AU_IDR;
            if (type == H264_SEI && sei_recovery_point(nal, n))
                found = VIDEO_AU_RECOVERY;
        }
    }
    return found;
}
