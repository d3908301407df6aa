/* photo: checks an uploaded photo is a whole JPEG, reads what its EXIF says
 * (where and when it was taken, by which camera) through libexif, and stores
 * it content-addressed (BLAKE2b-256) on disk. No globals: safe to call from
 * HTTP handlers and worker threads at once. */
#ifndef GRIDCC_PHOTO_H
#define GRIDCC_PHOTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"

/* Why photo_inspect refused a buffer (photo_info.error); the message is in the gc_err. */
typedef enum photo_error {
    PHOTO_ERR_NONE = 0,
    PHOTO_ERR_NOT_JPEG,  /* empty, PNG, GIF, HEIC, PDF, text, ... */
    PHOTO_ERR_TRUNCATED, /* no EOI, or a segment runs past the end */
    PHOTO_ERR_NO_FRAME,  /* no SOFn frame header before the scan or the end */
    PHOTO_ERR_CORRUPT,   /* marker structure broken (garbage where a marker must be, ...) */
} photo_error;

/* What exif_warning is about (photo_info.warnings, bits). */
enum {
    PHOTO_WARN_EXIF_UNREADABLE = 1 << 0, /* an EXIF segment libexif could get nothing from */
    PHOTO_WARN_GPS_EMPTY = 1 << 1,       /* a GPS IFD with no position in it */
    PHOTO_WARN_GPS_TYPE = 1 << 2,        /* a GPS tag with the wrong format or count (SRational
                                            is read as Rational if not negative) */
    PHOTO_WARN_GPS_ZERO_DENOM = 1 << 3,  /* a GPS rational n/0 */
    PHOTO_WARN_GPS_RANGE = 1 << 4,       /* latitude > 90, longitude > 180, minutes >= 60, 0,0 */
    PHOTO_WARN_GPS_REF = 1 << 5,         /* a hemisphere ref missing (read as N/E) or not N/S/E/W */
    PHOTO_WARN_GPS_INCOMPLETE = 1 << 6,  /* latitude without longitude or the reverse */
    PHOTO_WARN_ALTITUDE = 1 << 7,        /* altitude unusable (dropped; position kept) */
    PHOTO_WARN_TIME = 1 << 8,            /* a date/time tag malformed (left "") */
};

typedef struct photo_info {
    int width, height;          /* from the JPEG SOFn frame header */
    bool has_gps;
    double lat, lon;            /* signed decimal degrees (S and W negative) */
    bool has_alt; double alt_m; /* GPSAltitudeRef 1 = below sea level -> negative */
    char gps_time[32];          /* GPSDateStamp+GPSTimeStamp as ISO 8601 UTC "2008-10-23T05:20:14Z", or "" */
    char taken_at[32];          /* DateTimeOriginal (else DateTime) as "2008-10-23T13:20:14" (camera local time, no zone), or "" */
    char make[64], model[64];   /* UTF-8 (invalid bytes become '?'), trimmed, or "" */
    int orientation;            /* 1-8, 0 unknown */
    char exif_warning[256];     /* EXIF present but malformed/unusable (e.g. GPS IFD with wrong types, latitude > 90, empty GPS IFD): say why; "" otherwise */
    bool has_exif;              /* an APP1 "Exif" segment was found */
    unsigned warnings;          /* PHOTO_WARN_* bits behind exif_warning */
    photo_error error;          /* set when photo_inspect fails, else PHOTO_ERR_NONE */
} photo_info;

/* Checks buf is a whole JPEG and reads its EXIF with libexif. GC_EINVAL with a message a user can act on for:
   not a JPEG (name what it looks like: PNG, GIF, HEIC/ftyp, PDF, empty, else first bytes in hex), truncated (no EOI / segment runs past the end),
   no frame header. A valid JPEG with bad EXIF is NOT an error: fill exif_warning, has_gps=false.
   out is always cleared first; on failure only out->error is set. Bytes after EOI are ignored, and so is
   an ff before a non-marker byte inside the image data (damage a decoder can live with).
   Two warnings are notes that keep has_gps: a missing GPSLatitudeRef/GPSLongitudeRef (read as N/E) and an
   unusable altitude (has_alt false). has_alt is only ever true with has_gps. */
int photo_inspect(const unsigned char *buf, size_t len, photo_info *out, gc_err *err);
json_t *photo_info_json(const photo_info *p);   /* new reference; jansson; omit absent fields */
void photo_hash(const unsigned char *buf, size_t len, char hex[65]);  /* BLAKE2b-256 (libsodium crypto_generichash), lowercase hex */
/* Stores buf as DIR/ab/<hash>.jpg (ab = first 2 hex chars) durably: write to a temp file in the same dir, fsync, rename, fsync the directory. Creates dirs as needed. If the file exists already, does nothing (content-addressed).
   hash must be photo_hash(buf) (not re-checked); GC_EINVAL if it is not photo_hash_valid, GC_EIO on a file system failure. Files are mode 0640. */
int photo_save(const char *dir, const unsigned char *buf, size_t len, const char *hash, gc_err *err);
char *photo_path(const char *dir, const char *hash);  /* caller frees (g_free); NULL if !photo_hash_valid(hash) */
bool photo_hash_valid(const char *hash);  /* 64 lowercase hex chars: safe to put in a path */

#endif
