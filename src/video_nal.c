/* video_nal: which access units a viewer, a snapshot or the transcode may
 * start on. h264parse calls every I picture a keyframe, but a P picture
 * after a non-IDR I picture may refer to pictures before it (the
 * conformance stream MR1_BT_A decoded 0 of 39 frames from one): only an
 * IDR picture (H.264), an IRAP picture (H.265: BLA, IDR, CRA) or a recovery
 * point SEI starts a clean decode. Reads only NAL unit headers and the
 * SEI's message headers, in the length-prefixed framing of avcC/hvcC. */
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

/* An H.264 SEI NAL (header byte included): does a message say "recovery point"? */
static bool sei_recovery_point(const uint8_t *p, size_t len)
{
    size_t i = 1;
    while (i < len && p[i] != 0x80) { /* 0x80: the RBSP's trailing bits */
        unsigned type = 0, size = 0;
        while (i < len && p[i] == 0xFF)
            type += 255, i++;
        if (i >= len)
            return false;
        type += p[i++];
        while (i < len && p[i] == 0xFF)
            size += 255, i++;
        if (i >= len)
            return false;
        size += p[i++];
        if (type == H264_SEI_RECOVERY_POINT)
            return true;
        if (size > len - i)
            return false;
        i += size;
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
