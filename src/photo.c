/* photo: the gate for uploaded photos. photo_inspect walks the JPEG marker
 * segments only as far as structure needs (SOI, segment lengths, SOFn for the
 * size, each scan through to EOI) so a truncated or foreign file is refused
 * with a reason, and hands the APP1 "Exif" segment to libexif for every EXIF
 * detail; GPS values are checked before they are believed, because a wrong
 * position files an incident in the wrong grid. photo_save stores the bytes
 * content-addressed and durably. Everything lives on the caller's stack or in
 * per-call libexif objects: no globals, safe from any thread. */
#include "gridcc/photo.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <libexif/exif-data.h>
#include <libexif/exif-log.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gridcc/log.h"

/* ---- refusing what is not a whole JPEG -------------------------------------- */

static int refuse(photo_info *out, photo_error why, gc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(photo_info *out, photo_error why, gc_err *err, const char *fmt, ...)
{
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out->error = why;
    return gc_fail(err, GC_EINVAL, "photo", "%s", msg);
}

/* Text a person would recognise: UTF-8 without control characters (bar
 * whitespace) in the first bytes. A prefix cut inside a character still counts. */
static bool looks_like_text(const unsigned char *b, size_t n)
{
    size_t m = n < 256 ? n : 256;
    const char *end;
    if (!g_utf8_validate((const char *)b, (gssize)m, &end) &&
        m - (size_t)(end - (const char *)b) > 3)
        return false;
    for (const unsigned char *p = b; p < (const unsigned char *)end; p++)
        if (*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t')
            return false;
    return end != (const char *)b;
}

/* The first line of text, at most ~40 bytes, cut on a character boundary. */
static void text_start(const unsigned char *b, size_t n, char *dst, size_t cap)
{
    size_t m = 0;
    while (m < n && m < 40 && b[m] != '\n' && b[m] != '\r')
        m++;
    const char *end;
    g_utf8_validate((const char *)b, (gssize)m, &end);
    m = (size_t)(end - (const char *)b);
    snprintf(dst, cap, "%.*s%s", (int)m, (const char *)b, m < n && b[m] != '\n' ? "..." : "");
}

static int refuse_not_jpeg(const unsigned char *b, size_t n, photo_info *out, gc_err *err)
{
    const char *hint = "send the photo as a JPEG (.jpg) file";
    if (n == 0)
        return refuse(
            out, PHOTO_ERR_NOT_JPEG, err,
            "not a JPEG: the file is empty (0 bytes); choose the photo again and re-send it");
    char what[160];
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        snprintf(what, sizeof what, "a PNG image");
    } else if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) {
        snprintf(what, sizeof what, "a GIF image");
    } else if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) {
        char brand[5] = {0};
        for (int i = 0; i < 4; i++)
            brand[i] = g_ascii_isprint(b[8 + i]) ? (char)b[8 + i] : '?';
        static const char *const heif[] = {"heic", "heix", "hevc", "hevx", "heim",
                                           "heis", "hevm", "hevs", "mif1", "msf1"};
        bool is_heif = false;
        for (size_t i = 0; i < G_N_ELEMENTS(heif); i++)
            is_heif |= !strcmp(brand, heif[i]);
        if (is_heif) {
            snprintf(what, sizeof what, "a HEIC/HEIF image (ftyp brand '%s')", brand);
            hint = "send it as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible)";
        } else if (!strcmp(brand, "avif") || !strcmp(brand, "avis")) {
            snprintf(what, sizeof what, "an AVIF image (ftyp brand '%s')", brand);
        } else {
            snprintf(what, sizeof what, "an ISO media file such as a video (ftyp brand '%s')",
                     brand);
        }
    } else if (n >= 5 && !memcmp(b, "%PDF-", 5)) {
        snprintf(what, sizeof what, "a PDF document");
    } else if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) {
        snprintf(what, sizeof what, "a WebP image");
    } else if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) {
        snprintf(what, sizeof what, "a TIFF image or camera raw file");
    } else if (looks_like_text(b, n)) {
        char start[64];
        text_start(b, n, start, sizeof start);
        bool html = n >= 5 && (!g_ascii_strncasecmp((const char *)b, "<!DOC", 5) ||
                               !g_ascii_strncasecmp((const char *)b, "<html", 5));
        snprintf(what, sizeof what, "%s, starting \"%s\"",
                 html ? "an HTML page (an error page saved in place of the photo?)" : "text",
                 start);
    } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
        snprintf(what, sizeof what, "a BMP image");
    } else {
        int k = snprintf(what, sizeof what, "not an image format we know: it starts with bytes");
        for (size_t i = 0; i < n && i < 8; i++)
            k += snprintf(what + k, sizeof what - (size_t)k, " %02x", b[i]);
        return refuse(out, PHOTO_ERR_NOT_JPEG, err, "not a JPEG: %s (a JPEG starts ff d8 ff); %s",
                      what, hint);
    }
    return refuse(out, PHOTO_ERR_NOT_JPEG, err, "not a JPEG: the file is %s; %s", what, hint);
}

static const char *marker_name(unsigned m, char buf[16])
{
    if (m == 0xC4)
        return "DHT";
    if (m == 0xDB)
        return "DQT";
    if (m == 0xDA)
        return "SOS (scan header)";
    if (m == 0xDD)
        return "DRI";
    if (m == 0xFE)
        return "COM";
    if (m >= 0xE0 && m <= 0xEF) {
        snprintf(buf, 16, "APP%u", m - 0xE0);
        return buf;
    }
    if (m >= 0xC0 && m <= 0xCF) {
        snprintf(buf, 16, "SOF%u", m - 0xC0);
        return buf;
    }
    snprintf(buf, 16, "0xff%02x", m);
    return buf;
}

static bool is_sof(unsigned m)
{
    /* C4 DHT, C8 JPG (reserved) and CC DAC share the range but are not frames */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

#define TRUNCATED_HINT "an incomplete upload or copy? send the whole file again"

/* Walks the segments; fills width/height and points *exif at the first APP1
 * "Exif" payload (borrowed from buf). */
static int jpeg_walk(const unsigned char *b, size_t n, photo_info *out, const unsigned char **exif,
                     size_t *exif_len, gc_err *err)
{
    bool frame = false, scan = false;
    size_t pos = 2;
    char nb[16];
    for (;;) {
        if (pos >= n)
            return refuse(out, PHOTO_ERR_TRUNCATED, err,
                          "the JPEG is truncated: it ends after %zu bytes with no end-of-image "
                          "marker (%s)",
                          n, TRUNCATED_HINT);
        if (b[pos] != 0xFF)
            return refuse(out, PHOTO_ERR_CORRUPT, err,
                          "the JPEG is damaged: byte %zu should start a marker (ff) but is %02x; "
                          "export the photo again",
                          pos, b[pos]);
        size_t at = pos;
        while (pos < n && b[pos] == 0xFF) /* fill bytes may pad a marker */
            pos++;
        if (pos >= n)
            continue; /* reported as truncated above */
        unsigned m = b[pos++];
        if (m == 0xD9) {
            if (!frame)
                return refuse(out, PHOTO_ERR_NO_FRAME, err,
                              "the JPEG has no frame header (SOF): no image size or picture "
                              "in it; export the photo again");
            if (!scan)
                return refuse(out, PHOTO_ERR_CORRUPT, err,
                              "the JPEG has a frame header but no image data (no scan); "
                              "export the photo again");
            return 0;
        }
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) /* standalone: no length */
            continue;
        if (m == 0x00 || m == 0xD8)
            return refuse(out, PHOTO_ERR_CORRUPT, err,
                          "the JPEG is damaged: a stray %s at byte %zu; export the photo again",
                          m ? "second start-of-image marker" : "ff 00", at);
        if (n - pos < 2)
            return refuse(out, PHOTO_ERR_TRUNCATED, err,
                          "the JPEG is truncated: it ends inside the %s marker at byte %zu (%s)",
                          marker_name(m, nb), at, TRUNCATED_HINT);
        size_t seglen = (size_t)b[pos] << 8 | b[pos + 1];
        if (seglen < 2)
            return refuse(out, PHOTO_ERR_CORRUPT, err,
                          "the JPEG is damaged: the %s segment at byte %zu has length %zu; "
                          "export the photo again",
                          marker_name(m, nb), at, seglen);
        if (seglen > n - pos)
            return refuse(out, PHOTO_ERR_TRUNCATED, err,
                          "the JPEG is truncated: its %s segment at byte %zu needs %zu bytes but "
                          "only %zu are left (%s)",
                          marker_name(m, nb), at, seglen, n - pos, TRUNCATED_HINT);
        const unsigned char *seg = b + pos + 2;
        size_t plen = seglen - 2;
        pos += seglen;

        if (is_sof(m) && !frame) {
            if (plen < 6)
                return refuse(out, PHOTO_ERR_CORRUPT, err,
                              "the JPEG is damaged: its frame header is %zu bytes, too short; "
                              "export the photo again",
                              plen);
            out->height = seg[1] << 8 | seg[2];
            out->width = seg[3] << 8 | seg[4];
            /* height 0 would defer to a DNL marker: legal, never seen from a camera */
            if (!out->width || !out->height)
                return refuse(out, PHOTO_ERR_CORRUPT, err,
                              "the JPEG frame header says %dx%d pixels; export the photo again",
                              out->width, out->height);
            frame = true;
        } else if (m == 0xE1 && !*exif && plen >= 6 && !memcmp(seg, "Exif\0\0", 6)) {
            *exif = seg;
            *exif_len = plen;
        } else if (m == 0xDA) {
            if (!frame)
                return refuse(out, PHOTO_ERR_NO_FRAME, err,
                              "the JPEG has no frame header (SOF) before its image data; "
                              "export the photo again");
            scan = true;
            /* entropy-coded data: ff 00 is a stuffed byte, ff d0-d7 a restart,
             * ff ff fill. Only ff c0-fe can follow a scan; an ff before any
             * other byte is damage inside the data (decoders show it as a
             * smeared block), so the scan goes on to the real next marker. */
            for (;;) {
                const unsigned char *ff = memchr(b + pos, 0xFF, n - pos);
                if (!ff || (size_t)(ff - b) + 1 >= n) {
                    pos = n;
                    break;
                }
                pos = (size_t)(ff - b);
                unsigned x = b[pos + 1];
                if (x == 0x00 || (x >= 0xD0 && x <= 0xD7))
                    pos += 2;
                else if (x == 0xFF || x < 0xC0)
                    pos += 1;
                else
                    break;
            }
            if (pos >= n)
                return refuse(out, PHOTO_ERR_TRUNCATED, err,
                              "the JPEG is truncated: its image data stops after %zu bytes, "
                              "without an end-of-image marker (%s)",
                              n, TRUNCATED_HINT);
        }
    }
}

/* ---- EXIF, through libexif ---------------------------------------------------- */

typedef struct exif_ctx {
    photo_info *p;
    ExifByteOrder order;
    char corrupt[160]; /* libexif's first complaint about the EXIF block itself */
    bool gps_pointer;  /* IFD0 points at a GPS IFD (libexif follows it, maybe to nothing) */
} exif_ctx;

static void warn(exif_ctx *c, unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends to exif_warning, "; " between reasons; a reason that does not fit is dropped whole. */
static void warn(exif_ctx *c, unsigned bit, const char *fmt, ...)
{
    char one[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    c->p->warnings |= bit;
    char *w = c->p->exif_warning;
    size_t used = strlen(w), need = strlen(one) + (used ? 2 : 0);
    if (used + need < sizeof c->p->exif_warning)
        snprintf(w + used, sizeof c->p->exif_warning - used, "%s%s", used ? "; " : "", one);
}

/* libexif reports through its log. Two things matter here: its complaints
 * about the block (to say why nothing could be read), and whether IFD0 held a
 * GPS pointer, which is otherwise invisible when the GPS IFD has no entries.
 * If a libexif release rewords that debug line, only the "empty GPS IFD"
 * warning for zero-entry IFDs is lost. */
static void exif_log_cb(ExifLog *log, ExifLogCode code, const char *domain, const char *format,
                        va_list args, void *data)
{
    exif_ctx *c = data;
    if (!domain || !format || strcmp(domain, "ExifData"))
        return;
    if (code == EXIF_LOG_CODE_CORRUPT_DATA && !c->corrupt[0]) {
        va_list ap;
        va_copy(ap, args);
        vsnprintf(c->corrupt, sizeof c->corrupt, format, ap);
        va_end(ap);
    } else if (code == EXIF_LOG_CODE_DEBUG && !strcmp(format, "Sub-IFD entry 0x%x ('%s') at %u.")) {
        va_list ap;
        va_copy(ap, args);
        unsigned tag = va_arg(ap, unsigned);
        va_end(ap);
        if (tag == EXIF_TAG_GPS_INFO_IFD_POINTER)
            c->gps_pointer = true;
    }
}

static ExifEntry *tag_in(ExifData *ed, ExifIfd ifd, unsigned tag)
{
    return exif_content_get_entry(ed->ifd[ifd], (ExifTag)tag);
}

/* A value for a message: printable ASCII, anything else as '?'. */
static const char *show(const unsigned char *s, size_t n, char *dst, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] && k + 1 < cap; i++)
        dst[k++] = g_ascii_isprint(s[i]) ? (char)s[i] : '?';
    dst[k] = 0;
    return dst;
}

/* An ASCII (or byte) tag as a C string, up to its first NUL; false if it is some other format. */
static bool entry_text(const ExifEntry *e, char *dst, size_t cap)
{
    dst[0] = 0;
    if (!e || !e->data ||
        (e->format != EXIF_FORMAT_ASCII && e->format != EXIF_FORMAT_UNDEFINED &&
         e->format != EXIF_FORMAT_BYTE))
        return false;
    size_t n = 0;
    while (n < e->size && e->data[n] && n + 1 < cap)
        n++;
    memcpy(dst, e->data, n);
    dst[n] = 0;
    return true;
}

/* Make/Model into valid UTF-8 for JSON: invalid bytes and controls become '?',
 * spaces trimmed, never cut inside a character. */
static void entry_utf8(const ExifEntry *e, char *dst, size_t cap)
{
    char raw[256];
    dst[0] = 0;
    if (!entry_text(e, raw, sizeof raw))
        return;
    const char *s = raw, *end = raw + strlen(raw);
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    size_t k = 0;
    while (s < end) {
        gunichar ch = g_utf8_get_char_validated(s, end - s);
        if (ch == (gunichar)-1 || ch == (gunichar)-2 || ch < 0x20 || ch == 0x7F) {
            if (k + 2 > cap)
                break;
            dst[k++] = '?';
            s++;
            continue;
        }
        size_t len = (size_t)(g_utf8_next_char(s) - s);
        if (k + len + 1 > cap)
            break;
        memcpy(dst + k, s, len);
        k += len;
        s += len;
    }
    dst[k] = 0;
}

/* Up to max rationals of a GPS tag as doubles; false (with a warning) if unusable.
 * as: the warning bit to raise, 0 for the position's own (type, zero denominator). */
static bool gps_rationals(exif_ctx *c, const ExifEntry *e, const char *name, unsigned min,
                          unsigned max, const char *const part[], double *v, unsigned as)
{
    /* SRational is out of spec but phones write it (HMD Nokia 8.3): its
     * non-negative values mean the same, so they are read without a word */
    bool sig = e->format == EXIF_FORMAT_SRATIONAL;
    if ((e->format != EXIF_FORMAT_RATIONAL && !sig) || e->components < min || e->components > max ||
        !e->data || e->size < 8 * e->components) {
        const char *f = exif_format_get_name(e->format);
        warn(c, as ? as : PHOTO_WARN_GPS_TYPE, "%s is %lu value(s) of type %s, not %u rational(s)",
             name, e->components, f ? f : "unknown", max);
        return false;
    }
    for (unsigned i = 0; i < e->components; i++) {
        if (sig) {
            ExifSRational r = exif_get_srational(e->data + 8 * i, c->order);
            if (!r.denominator) {
                warn(c, as ? as : PHOTO_WARN_GPS_ZERO_DENOM, "%s %s is %d/0", name, part[i],
                     r.numerator);
                return false;
            }
            v[i] = (double)r.numerator / r.denominator;
            if (v[i] < 0) {
                /* the sign belongs in the Ref tag; with both, which one is meant? */
                warn(c, as ? as : PHOTO_WARN_GPS_TYPE, "%s %s is negative (%d/%d)", name, part[i],
                     r.numerator, r.denominator);
                return false;
            }
            continue;
        }
        ExifRational r = exif_get_rational(e->data + 8 * i, c->order);
        if (!r.denominator) {
            warn(c, as ? as : PHOTO_WARN_GPS_ZERO_DENOM, "%s %s is %u/0", name, part[i],
                 r.numerator);
            return false;
        }
        v[i] = (double)r.numerator / r.denominator;
    }
    for (unsigned i = e->components; i < max; i++)
        v[i] = 0;
    return true;
}

static const char *const DMS[] = {"degrees", "minutes", "seconds"};

/* One coordinate with its hemisphere ref: signed degrees, or false with a warning. */
static bool gps_coord(exif_ctx *c, ExifData *ed, unsigned tag, unsigned ref_tag, const char *name,
                      char pos, char neg, double limit, double *out)
{
    double v[3];
    /* one or two values (degrees[, minutes]) are read too: the arithmetic is the same */
    if (!gps_rationals(c, tag_in(ed, EXIF_IFD_GPS, tag), name, 1, 3, DMS, v, 0))
        return false;
    if (v[1] >= 60 || v[2] >= 60) {
        warn(c, PHOTO_WARN_GPS_RANGE, "%s has %g minutes %g seconds (must be below 60)", name, v[1],
             v[2]);
        return false;
    }
    double deg = v[0] + v[1] / 60 + v[2] / 3600;
    if (deg > limit) {
        warn(c, PHOTO_WARN_GPS_RANGE, "%s %.6f is beyond %g degrees", name, deg, limit);
        return false;
    }
    const ExifEntry *r = tag_in(ed, EXIF_IFD_GPS, ref_tag);
    char txt[8], shown[8];
    if (!r) {
        warn(c, PHOTO_WARN_GPS_REF, "%sRef missing, read as %c", name, pos);
    } else if (!entry_text(r, txt, sizeof txt) ||
               (g_ascii_toupper(txt[0]) != pos && g_ascii_toupper(txt[0]) != neg)) {
        warn(c, PHOTO_WARN_GPS_REF, "%sRef is '%s', not %c or %c", name,
             r->data ? show(r->data, r->size, shown, sizeof shown) : "", pos, neg);
        return false;
    } else if (g_ascii_toupper(txt[0]) == neg) {
        deg = -deg;
    }
    *out = deg;
    return true;
}

static void gps_altitude(exif_ctx *c, ExifData *ed)
{
    photo_info *p = c->p;
    const ExifEntry *e = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE);
    if (!e)
        return;
    double v;
    static const char *const part[] = {"value"};
    if (!gps_rationals(c, e, "GPSAltitude", 1, 1, part, &v, PHOTO_WARN_ALTITUDE))
        return;
    const ExifEntry *r = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE_REF);
    int ref = 0; /* the EXIF default: above sea level */
    if (r) {
        if ((r->format != EXIF_FORMAT_BYTE && r->format != EXIF_FORMAT_UNDEFINED) || !r->data ||
            r->size < 1 || r->data[0] > 1) {
            warn(c, PHOTO_WARN_ALTITUDE, "GPSAltitudeRef is not 0 or 1; altitude dropped");
            return;
        }
        ref = r->data[0];
    }
    p->alt_m = ref ? -v : v;
    p->has_alt = true;
}

/* Fields are range-checked by the callers; the wide buffer only quiets the compiler. */
static void iso_time(char *dst, size_t cap, int y, int mo, int d, int h, int mi, int s,
                     const char *zone)
{
    char t[96];
    snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, mo, d, h, mi, s, zone);
    g_strlcpy(dst, t, cap);
}

static void gps_time(exif_ctx *c, ExifData *ed)
{
    const ExifEntry *t = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_TIME_STAMP);
    const ExifEntry *d = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_DATE_STAMP);
    if (!t || !d)
        return;
    double hms[3];
    static const char *const part[] = {"hours", "minutes", "seconds"};
    if (!gps_rationals(c, t, "GPSTimeStamp", 3, 3, part, hms, PHOTO_WARN_TIME))
        return;
    char s[16], shown[16];
    int y, mo, dd;
    char tail;
    if (!entry_text(d, s, sizeof s) ||
        sscanf(s, "%4d%*1[:-]%2d%*1[:-]%2d%c", &y, &mo, &dd, &tail) != 3 || y < 1 || mo < 1 ||
        dd < 1 || !g_date_valid_dmy((GDateDay)dd, (GDateMonth)mo, (GDateYear)y)) {
        warn(c, PHOTO_WARN_TIME, "GPSDateStamp '%s' is not a date",
             d->data ? show(d->data, d->size, shown, sizeof shown) : "");
        return;
    }
    if (hms[0] >= 24 || hms[1] >= 60 || hms[2] >= 61) {
        warn(c, PHOTO_WARN_TIME, "GPSTimeStamp %g:%g:%g is not a time of day", hms[0], hms[1],
             hms[2]);
        return;
    }
    iso_time(c->p->gps_time, sizeof c->p->gps_time, y, mo, dd, (int)hms[0], (int)hms[1],
             (int)hms[2], "Z");
}

static void gps_read(exif_ctx *c, ExifData *ed)
{
    photo_info *p = c->p;
    ExifContent *g = ed->ifd[EXIF_IFD_GPS];
    gps_time(c, ed);
    bool has_lat = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE) != NULL;
    bool has_lon = tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE) != NULL;
    if (!has_lat && !has_lon) {
        if (g->count)
            warn(c, PHOTO_WARN_GPS_EMPTY,
                 "GPS IFD has no GPSLatitude/GPSLongitude (no fix when the photo was taken?)");
        else if (c->gps_pointer)
            warn(c, PHOTO_WARN_GPS_EMPTY, "GPS IFD is empty");
        return;
    }
    if (!has_lat || !has_lon) {
        warn(c, PHOTO_WARN_GPS_INCOMPLETE, "GPS IFD has %s but no %s",
             has_lat ? "GPSLatitude" : "GPSLongitude", has_lat ? "GPSLongitude" : "GPSLatitude");
        return;
    }
    double lat, lon;
    bool ok_lat = gps_coord(c, ed, EXIF_TAG_GPS_LATITUDE, EXIF_TAG_GPS_LATITUDE_REF, "GPSLatitude",
                            'N', 'S', 90, &lat);
    bool ok_lon = gps_coord(c, ed, EXIF_TAG_GPS_LONGITUDE, EXIF_TAG_GPS_LONGITUDE_REF,
                            "GPSLongitude", 'E', 'W', 180, &lon);
    if (!ok_lat || !ok_lon)
        return;
    if (lat == 0 && lon == 0) {
        /* what a camera without a fix writes; nothing a city grid holds is there */
        warn(c, PHOTO_WARN_GPS_RANGE, "GPS position is 0,0 (no fix)");
        return;
    }
    p->lat = lat;
    p->lon = lon;
    p->has_gps = true;
    gps_altitude(c, ed);
}

/* "YYYY:MM:DD HH:MM:SS" (also with - or / in the date, T between) into
 * ISO 8601; 1 done, 0 blank/unknown (all zeros or spaces), -1 malformed. */
static int exif_datetime(const ExifEntry *e, char *dst, size_t cap)
{
    char s[64];
    if (!entry_text(e, s, sizeof s))
        return -1;
    if (strspn(s, " :0") == strlen(s))
        return 0;
    int y, mo, d, h, mi, sec; /* anything after the seconds (a fraction, a zone) is ignored */
    if (sscanf(s, "%4d%*1[:/-]%2d%*1[:/-]%2d%*1[ T]%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6 ||
        y < 1 || mo < 1 || d < 1 || !g_date_valid_dmy((GDateDay)d, (GDateMonth)mo, (GDateYear)y) ||
        h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;
    iso_time(dst, cap, y, mo, d, h, mi, sec, "");
    return 1;
}

static void taken_read(exif_ctx *c, ExifData *ed)
{
    static const struct {
        ExifIfd ifd;
        unsigned tag;
        const char *name;
    } src[] = {{EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "DateTimeOriginal"},
               {EXIF_IFD_0, EXIF_TAG_DATE_TIME, "DateTime"}};
    for (size_t i = 0; i < G_N_ELEMENTS(src); i++) {
        const ExifEntry *e = tag_in(ed, src[i].ifd, src[i].tag);
        if (!e)
            continue;
        int r = exif_datetime(e, c->p->taken_at, sizeof c->p->taken_at);
        if (r > 0)
            return;
        if (r < 0) {
            char shown[24];
            warn(c, PHOTO_WARN_TIME, "%s '%s' is not a date and time", src[i].name,
                 e->data ? show(e->data, e->size, shown, sizeof shown) : "");
        }
    }
}

static void exif_read(photo_info *p, const unsigned char *exif, size_t len)
{
    exif_ctx c = {.p = p};
    ExifData *ed = exif_data_new();
    ExifLog *lg = exif_log_new();
    if (!ed || !lg) {
        if (ed)
            exif_data_unref(ed);
        if (lg)
            exif_log_unref(lg);
        snprintf(p->exif_warning, sizeof p->exif_warning, "EXIF not read: out of memory");
        p->warnings |= PHOTO_WARN_EXIF_UNREADABLE;
        return;
    }
    exif_log_set_func(lg, exif_log_cb, &c);
    exif_data_log(ed, lg);
    /* read what the file says: the "fix-up" would drop or rewrite the very tags
     * whose wrong types we need to see */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, exif, (unsigned)len); /* an APP1 payload is < 64 KiB */
    c.order = exif_data_get_byte_order(ed);

    size_t entries = 0;
    for (int i = 0; i < EXIF_IFD_COUNT; i++)
        entries += ed->ifd[i]->count;
    if (!entries && !c.gps_pointer) {
        warn(&c, PHOTO_WARN_EXIF_UNREADABLE, "EXIF segment unreadable (%s)",
             c.corrupt[0] ? c.corrupt : "no entries in it");
    } else {
        entry_utf8(tag_in(ed, EXIF_IFD_0, EXIF_TAG_MAKE), p->make, sizeof p->make);
        entry_utf8(tag_in(ed, EXIF_IFD_0, EXIF_TAG_MODEL), p->model, sizeof p->model);
        const ExifEntry *o = tag_in(ed, EXIF_IFD_0, EXIF_TAG_ORIENTATION);
        if (o && o->data && o->components >= 1 && o->format == EXIF_FORMAT_SHORT && o->size >= 2) {
            int v = exif_get_short(o->data, c.order);
            p->orientation = v >= 1 && v <= 8 ? v : 0;
        }
        taken_read(&c, ed);
        gps_read(&c, ed);
    }
    exif_data_unref(ed);
    exif_log_unref(lg);
}

int photo_inspect(const unsigned char *buf, size_t len, photo_info *out, gc_err *err)
{
    memset(out, 0, sizeof *out);
    if (!buf)
        len = 0;
    if (len < 2 || buf[0] != 0xFF || buf[1] != 0xD8)
        return refuse_not_jpeg(buf, len, out, err);
    const unsigned char *exif = NULL;
    size_t exif_len = 0;
    int rc = jpeg_walk(buf, len, out, &exif, &exif_len, err);
    if (rc) {
        int error = out->error;
        memset(out, 0, sizeof *out);
        out->error = error;
        return rc;
    }
    if (exif) {
        out->has_exif = true;
        exif_read(out, exif, exif_len);
    }
    return 0;
}

json_t *photo_info_json(const photo_info *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "width", json_integer(p->width));
    json_object_set_new(o, "height", json_integer(p->height));
    if (p->has_gps) {
        json_object_set_new(o, "lat", json_real(p->lat));
        json_object_set_new(o, "lon", json_real(p->lon));
        if (p->has_alt)
            json_object_set_new(o, "alt_m", json_real(p->alt_m));
    }
    /* every string here is valid UTF-8 (ASCII we wrote, or sanitised Make/Model);
     * json_string would return NULL otherwise and set_new would drop it */
    static const struct {
        const char *key;
        size_t off;
    } strs[] = {{"gps_time", offsetof(photo_info, gps_time)},
                {"taken_at", offsetof(photo_info, taken_at)},
                {"make", offsetof(photo_info, make)},
                {"model", offsetof(photo_info, model)},
                {"exif_warning", offsetof(photo_info, exif_warning)}};
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++) {
        const char *s = (const char *)p + strs[i].off;
        if (s[0])
            json_object_set_new(o, strs[i].key, json_string(s));
    }
    if (p->orientation)
        json_object_set_new(o, "orientation", json_integer(p->orientation));
    return o;
}

/* ---- storing ------------------------------------------------------------------- */

void photo_hash(const unsigned char *buf, size_t len, char hex[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, buf, len, NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

bool photo_hash_valid(const char *hash)
{
    if (!hash)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f')))
            return false; /* also stops at the NUL of a short string */
    return hash[64] == 0;
}

char *photo_path(const char *dir, const char *hash)
{
    if (!dir || !photo_hash_valid(hash))
        return NULL;
    char sub[3] = {hash[0], hash[1], 0};
    char *name = g_strconcat(hash, ".jpg", NULL);
    char *p = g_build_filename(dir, sub, name, NULL);
    g_free(name);
    return p;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int io_fail(gc_err *err, const char *what, const char *path)
{
    int e = errno;
    if (e == ENOSPC || e == EDQUOT)
        return gc_fail(err, GC_EFULL, "", "photo store: %s %s: disk full (%s)", what, path,
                       g_strerror(e));
    return gc_fail(err, GC_EIO, "", "photo store: %s %s: %s", what, path, g_strerror(e));
}

int photo_save(const char *dir, const unsigned char *buf, size_t len, const char *hash, gc_err *err)
{
    if (!dir || !photo_hash_valid(hash))
        return gc_fail(err, GC_EINVAL, "hash",
                       "photo store: the hash is not 64 lowercase hex digits");
    int rc = 0, fd = -1;
    char *path = photo_path(dir, hash);
    char *sub = g_path_get_dirname(path);
    char *tmp = NULL;
    struct stat st;
    if (stat(path, &st) == 0)
        goto out; /* same name, same bytes */
    if (errno != ENOENT) {
        rc = io_fail(err, "cannot look at", path);
        goto out;
    }
    if (g_mkdir_with_parents(dir, 0750) != 0) {
        rc = io_fail(err, "cannot create directory", dir);
        goto out;
    }
    bool new_sub = mkdir(sub, 0750) == 0;
    if (!new_sub && errno != EEXIST) {
        rc = io_fail(err, "cannot create directory", sub);
        goto out;
    }
    tmp = g_strdup_printf("%s/.%s.XXXXXX", sub, hash);
    fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = io_fail(err, "cannot create", tmp);
        goto out;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = io_fail(err, "cannot write", tmp);
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = io_fail(err, "cannot fsync", tmp);
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        rc = io_fail(err, "cannot close", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = io_fail(err, "cannot rename into", path);
        goto out;
    }
    g_free(tmp);
    tmp = NULL;
    if (fsync_dir(sub) != 0 || (new_sub && fsync_dir(dir) != 0)) {
        rc = io_fail(err, "cannot fsync directory of", path);
        goto out;
    }
    log_info("photo", "stored path=%s bytes=%zu", path, len);
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    g_free(tmp);
    g_free(sub);
    g_free(path);
    return rc;
}
