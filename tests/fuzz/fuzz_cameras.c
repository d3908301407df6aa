/* fuzz_cameras: a camera as POST/PUT /api/cameras and the import hand it
 * over (cameras_from_json, which checks the RTSP URL with cameras_url_check
 * and reprojects lon/lat from crs). Besides not crashing: a refusal names
 * its field; a camera taken has its values in range, a public URL that
 * carries no credentials of the one given and is itself a good URL, and a
 * view sector that holds the camera's own spot. */
#include <jansson.h>
#include <math.h>

#include "fuzz.h"
#include "gridcc/cameras.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *in = json_loadb((const char *)data, size, 0, &je);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    store_camera c;
    gc_err err = {0};
    if (cameras_from_json(in, NULL, &c, &err)) {
        CHECK(err.field[0] && err.msg[0], "a refusal with no field or reason");
        json_decref(in);
        return 0;
    }
    CHECK(isfinite(c.lon) && isfinite(c.lat) && fabs(c.lon) <= 180 && fabs(c.lat) <= 90,
          "position %g %g", c.lon, c.lat);
    CHECK(c.heading >= 0 && c.heading < 360, "heading %g", c.heading);
    CHECK(c.fov > 0 && c.fov <= 360, "fov %g", c.fov);
    CHECK(c.range_m > 0 && c.range_m <= CAMERAS_MAX_RANGE_M, "range %g", c.range_m);
    char *user = NULL, *password = NULL;
    CHECK(g_uri_split_with_user(c.url_public, G_URI_FLAGS_HAS_PASSWORD, NULL, &user, &password,
                                NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          "the public url does not read back: %s", c.url_public);
    CHECK(!user && !password, "the public url keeps credentials: %s", c.url_public);
    g_free(user);
    g_free(password);
    /* nor a credential parameter in its path or query */
    for (const char *q = c.url_public; *q; q++)
        if (strchr("/&;?", *q))
            CHECK(g_ascii_strncasecmp(q + 1, "password=", 9) && g_ascii_strncasecmp(q + 1, "pwd=", 4),
                  "the public url keeps a password parameter: %s", c.url_public);
    char pub2[1024];
    gc_err e2 = {0};
    CHECK(cameras_url_check(c.url_public, pub2, sizeof pub2, &e2) == 0,
          "the public url is not a good url: %s (%s)", c.url_public, e2.msg);
    CHECK(!strcmp(pub2, c.url_public), "redacting twice changed it: %s -> %s", c.url_public,
          pub2);
    double d = -1;
    CHECK(cameras_sees(&c, c.lon, c.lat, &d, NULL) && d == 0, "the camera's spot unseen");
    json_decref(in);
    return 0;
}
