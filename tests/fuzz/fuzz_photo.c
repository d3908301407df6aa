/* fuzz_photo: photo_inspect, the JPEG segment walk and the EXIF read through
 * libexif, on any bytes. Besides not crashing: a refusal names a reason and
 * leaves nothing else set; an accepted photo has a size; a position is in
 * range and not 0,0; every string is valid UTF-8 and reaches the JSON. */
#include <math.h>

#include "fuzz.h"
#include "gridcc/log.h"
#include "gridcc/photo.h"
#include "gridcc/parse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    photo_info p;
    gc_err err = {0};
    int rc = photo_inspect(data, size, &p, &err);
    if (rc) {
        CHECK(rc == GC_EINVAL, "rc %d", rc);
        CHECK(p.error != PHOTO_ERR_NONE, "refused without a reason code");
        CHECK(err.msg[0], "refused without a message");
        CHECK_TEXT(err.msg);
        CHECK(!p.width && !p.height && !p.has_gps && !p.has_exif && !p.warnings,
              "a refusal left fields set");
        return 0;
    }
    CHECK(p.error == PHOTO_ERR_NONE, "accepted with error %d", p.error);
    CHECK(p.width > 0 && p.width <= 65535 && p.height > 0 && p.height <= 65535, "size %dx%d",
          p.width, p.height);
    if (p.has_gps) {
        CHECK(p.has_exif, "GPS without EXIF");
        CHECK(isfinite(p.lat) && fabs(p.lat) <= 90, "lat %g", p.lat);
        CHECK(isfinite(p.lon) && fabs(p.lon) <= 180, "lon %g", p.lon);
        CHECK(p.lat != 0 || p.lon != 0, "0,0 taken as a position");
    }
    CHECK(!p.has_alt || (p.has_gps && isfinite(p.alt_m)), "altitude %g without a position",
          p.alt_m);
    CHECK(p.orientation >= 0 && p.orientation <= 8, "orientation %d", p.orientation);
    CHECK_TEXT(p.gps_time);
    CHECK_TEXT(p.taken_at);
    CHECK_TEXT(p.make);
    CHECK_TEXT(p.model);
    CHECK_TEXT(p.exif_warning);
    CHECK(!p.warnings == !p.exif_warning[0], "warnings %#x but exif_warning '%s'", p.warnings,
          p.exif_warning);
    CHECK(p.has_exif || (!p.warnings && !p.make[0] && !p.taken_at[0] && !p.gps_time[0]),
          "EXIF fields without an EXIF segment");
    /* the times are what the API hands on: they must read back as times */
    int64_t t;
    GTimeZone *utc = g_time_zone_new_utc();
    if (p.gps_time[0]) {
        CHECK(strlen(p.gps_time) == 20 && p.gps_time[19] == 'Z', "gps_time '%s'", p.gps_time);
        CHECK(gc_time_parse_in(p.gps_time, utc, &t) || !strncmp(p.gps_time + 17, "60", 2),
              "gps_time '%s' not a time", p.gps_time);
    }
    if (p.taken_at[0]) {
        CHECK(strlen(p.taken_at) == 19, "taken_at '%s'", p.taken_at);
        /* second 60 (a leap second EXIF allows) is the one form GLib refuses */
        CHECK(gc_time_parse_in(p.taken_at, utc, &t) || !strcmp(p.taken_at + 17, "60"),
              "taken_at '%s' not a time", p.taken_at);
    }
    g_time_zone_unref(utc);
    /* every field photo_info_json promises is there: none dropped by jansson */
    json_t *j = photo_info_json(&p);
    size_t want = 2 + (p.has_gps ? 2 : 0) + (p.has_alt ? 1 : 0) + !!p.gps_time[0] +
                  !!p.taken_at[0] + !!p.make[0] + !!p.model[0] + !!p.exif_warning[0] +
                  !!p.orientation;
    CHECK(json_object_size(j) == want, "JSON has %zu fields, want %zu", json_object_size(j), want);
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK(s != NULL, "JSON not dumpable");
    free(s);
    json_decref(j);
    return 0;
}
