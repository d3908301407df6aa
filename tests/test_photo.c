/* photo: JPEG structure checks, EXIF/GPS reading (both hemispheres, altitude
 * sign, GPS time), the refusal or warning class of each broken photo in
 * tests/data/photos (see make_photos.py), content-addressed storage. */
#define _GNU_SOURCE /* memmem */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "gridcc/photo.h"

static unsigned char *load(const char *name, size_t *len)
{
    const char *dir = getenv("GRIDCC_TEST_DATA");
    assert_non_null(dir);
    char *p = g_build_filename(dir, "photos", name, NULL);
    gchar *buf = NULL;
    gsize n = 0;
    GError *ge = NULL;
    if (!g_file_get_contents(p, &buf, &n, &ge))
        fail_msg("%s: %s", p, ge->message);
    g_free(p);
    *len = n;
    return (unsigned char *)buf;
}

static int inspect_file(const char *name, photo_info *pi, gc_err *e)
{
    size_t n;
    unsigned char *b = load(name, &n);
    gc_err_clear(e);
    int rc = photo_inspect(b, n, pi, e);
    g_free(b);
    return rc;
}

static const struct good {
    const char *file;
    int w, h;
    double lat, lon, alt;
    const char *gps_time, *taken_at, *make, *model;
    int orientation;
} GOOD[] = {
    {"gps-north-east.jpg", 160, 120, 40.0032, 116.3262, 52, "2008-10-23T05:20:14Z",
     "2008-10-23T13:20:14", "Xiaomi", "Redmi Note 12", 1},
    {"gps-south-west.jpg", 120, 160, -34.6037, -58.3816, 25, "2023-03-02T19:45:09Z",
     "2023-03-02T16:45:09", "Apple", "iPhone 13", 6},
    {"gps-south-east.jpg", 128, 96, -33.8688, 151.2093, 3, "2019-12-31T12:59:58Z",
     "2019-12-31T23:59:58", "HUAWEI", "P30 Pro", 1},
    {"gps-north-west.jpg", 96, 128, 40.6782, -73.9442, 12, "2021-07-05T00:30:00Z",
     "2021-07-04T20:30:00", "GoPro", "HERO8 Black", 1},
    {"gps-below-sea-level.jpg", 160, 120, 31.5590, 35.4732, -430, "2015-02-14T09:02:03Z",
     "2015-02-14T11:02:03", "Canon", "Canon EOS 40D", 1},
};

static void test_good_photos(void **st)
{
    for (size_t i = 0; i < G_N_ELEMENTS(GOOD); i++) {
        const struct good *g = &GOOD[i];
        photo_info pi;
        gc_err e;
        print_message("%s\n", g->file);
        assert_int_equal(inspect_file(g->file, &pi, &e), 0);
        assert_int_equal(pi.error, PHOTO_ERR_NONE);
        assert_int_equal(pi.width, g->w);
        assert_int_equal(pi.height, g->h);
        assert_true(pi.has_exif);
        assert_true(pi.has_gps);
        assert_true(fabs(pi.lat - g->lat) < 1e-6);
        assert_true(fabs(pi.lon - g->lon) < 1e-6);
        assert_true(pi.has_alt);
        assert_true(fabs(pi.alt_m - g->alt) < 1e-9);
        assert_string_equal(pi.gps_time, g->gps_time);
        assert_string_equal(pi.taken_at, g->taken_at); /* DateTimeOriginal, not DateTime */
        assert_string_equal(pi.make, g->make);
        assert_string_equal(pi.model, g->model);
        assert_int_equal(pi.orientation, g->orientation);
        assert_string_equal(pi.exif_warning, "");
        assert_int_equal(pi.warnings, 0);
    }
}

static void test_no_gps(void **st)
{
    photo_info pi;
    gc_err e;
    assert_int_equal(inspect_file("exif-no-gps.jpg", &pi, &e), 0);
    assert_true(pi.has_exif);
    assert_false(pi.has_gps);
    assert_false(pi.has_alt);
    assert_string_equal(pi.make, "NIKON CORPORATION");
    assert_string_equal(pi.model, "NIKON D70");
    assert_string_equal(pi.taken_at, "2005-06-01T08:00:00"); /* from DateTime: no original */
    assert_string_equal(pi.gps_time, "");
    assert_int_equal(pi.orientation, 8);
    assert_string_equal(pi.exif_warning, ""); /* no GPS is not a fault */

    assert_int_equal(inspect_file("no-exif.jpg", &pi, &e), 0);
    assert_int_equal(pi.width, 64);
    assert_int_equal(pi.height, 48);
    assert_false(pi.has_exif);
    assert_false(pi.has_gps);
    assert_string_equal(pi.make, "");
    assert_string_equal(pi.taken_at, "");
    assert_int_equal(pi.orientation, 0);
    assert_string_equal(pi.exif_warning, "");
}

/* A valid JPEG with bad EXIF: inspected fine, GPS withheld, the reason given. */
static const struct bad_exif {
    const char *file;
    unsigned warnings;
    const char *says;
    bool has_gps;
} BAD_EXIF[] = {
    {"gps-empty-ifd.jpg", PHOTO_WARN_GPS_EMPTY, "GPS IFD is empty", false},
    {"gps-version-only.jpg", PHOTO_WARN_GPS_EMPTY, "no GPSLatitude/GPSLongitude", false},
    {"gps-bad-latitude.jpg", PHOTO_WARN_GPS_RANGE, "GPSLatitude 95.000000 is beyond 90", false},
    {"gps-zero-denominator.jpg", PHOTO_WARN_GPS_ZERO_DENOM, "GPSLatitude seconds is 1152/0", false},
    {"gps-wrong-type.jpg", PHOTO_WARN_GPS_TYPE, "GPSLatitude is 8 value(s) of type ASCII", false},
    {"gps-wrong-count.jpg", PHOTO_WARN_GPS_TYPE, "GPSLongitude is 5 value(s) of type Rational",
     false},
    {"gps-no-ref.jpg", PHOTO_WARN_GPS_REF,
     "GPSLatitudeRef missing, read as N; GPSLongitudeRef missing, read as E", true},
    {"exif-garbage.jpg", PHOTO_WARN_EXIF_UNREADABLE, "EXIF segment unreadable", false},
    {"gps-srational-negative.jpg", PHOTO_WARN_GPS_TYPE, "GPSLatitude degrees is negative (-60/1)",
     false},
    {"gps-srational.jpg", 0, "", true}, /* out of spec, but unambiguous: read silently */
};

static void test_bad_exif(void **st)
{
    for (size_t i = 0; i < G_N_ELEMENTS(BAD_EXIF); i++) {
        const struct bad_exif *b = &BAD_EXIF[i];
        photo_info pi;
        gc_err e;
        print_message("%s\n", b->file);
        assert_int_equal(inspect_file(b->file, &pi, &e), 0);
        assert_int_equal(pi.width, 80);
        assert_int_equal(pi.height, 60);
        assert_true(pi.has_exif);
        assert_int_equal(pi.warnings, b->warnings);
        if (!strstr(pi.exif_warning, b->says))
            fail_msg("%s: warning \"%s\" lacks \"%s\"", b->file, pi.exif_warning, b->says);
        assert_int_equal(pi.has_gps, b->has_gps);
        if (!b->has_gps) {
            assert_false(pi.has_alt);
            assert_true(pi.lat == 0 && pi.lon == 0);
        }
        if (b->warnings != PHOTO_WARN_EXIF_UNREADABLE) {
            /* the rest of the EXIF still counts */
            assert_string_equal(pi.make, "Xiaomi");
            assert_string_equal(pi.taken_at, "2024-05-17T09:41:27");
        }
    }
    photo_info pi;
    gc_err e;
    assert_int_equal(inspect_file("gps-no-ref.jpg", &pi, &e), 0);
    assert_true(fabs(pi.lat - 40.0032) < 1e-6 && fabs(pi.lon - 116.3262) < 1e-6);
    assert_int_equal(inspect_file("gps-srational.jpg", &pi, &e), 0);
    assert_true(fabs(pi.lat - (60 + 8 / 60.0 + 48.14 / 3600)) < 1e-9);
    assert_true(fabs(pi.lon - (24 + 54 / 60.0 + 24.38 / 3600)) < 1e-9);
    assert_string_equal(pi.exif_warning, "");
}

/* ff followed by a non-marker byte inside the image data is damage, not the end of the scan */
static void test_scan_damage(void **st)
{
    photo_info pi;
    gc_err e;
    assert_int_equal(inspect_file("scan-damaged.jpg", &pi, &e), 0);
    assert_int_equal(pi.width, 160);
    assert_int_equal(pi.height, 120);
    assert_string_equal(pi.make, "Xiaomi");
}

static const struct refused {
    const char *file;
    photo_error error;
    const char *says;
} REFUSED[] = {
    {"truncated.jpg", PHOTO_ERR_TRUNCATED, "truncated: its image data stops"},
    {"not-a-jpeg.png", PHOTO_ERR_NOT_JPEG, "the file is a PNG image"},
    {"empty.jpg", PHOTO_ERR_NOT_JPEG, "the file is empty (0 bytes)"},
    {"text-as-jpg.jpg", PHOTO_ERR_NOT_JPEG, "the file is text, starting \"This is not a photo"},
};

static void expect_refused(const unsigned char *b, size_t n, photo_error error, const char *says)
{
    photo_info pi;
    gc_err e;
    gc_err_clear(&e);
    assert_int_equal(photo_inspect(b, n, &pi, &e), GC_EINVAL);
    assert_int_equal(e.code, GC_EINVAL);
    assert_string_equal(e.field, "photo");
    if (pi.error != error || !strstr(e.msg, says))
        fail_msg("refused as %d \"%s\", expected %d \"%s\"", pi.error, e.msg, error, says);
    assert_false(pi.has_gps);
    assert_int_equal(pi.width, 0);
}

static void test_refused_files(void **st)
{
    for (size_t i = 0; i < G_N_ELEMENTS(REFUSED); i++) {
        size_t n;
        unsigned char *b = load(REFUSED[i].file, &n);
        print_message("%s\n", REFUSED[i].file);
        expect_refused(b, n, REFUSED[i].error, REFUSED[i].says);
        g_free(b);
    }
    expect_refused(NULL, 0, PHOTO_ERR_NOT_JPEG, "empty");
}

#define B(s) (const unsigned char *)(s), sizeof(s) - 1

static void test_refused_shapes(void **st)
{
    expect_refused(B("GIF89a\x01\0\x01\0"), PHOTO_ERR_NOT_JPEG, "a GIF image");
    expect_refused(B("\0\0\0\x18"
                     "ftypheic\0\0\0\0mif1heic"),
                   PHOTO_ERR_NOT_JPEG, "HEIC/HEIF image (ftyp brand 'heic')");
    expect_refused(B("\0\0\0\x18"
                     "ftypisom\0\0\0\0"),
                   PHOTO_ERR_NOT_JPEG, "ftyp brand 'isom'");
    expect_refused(B("%PDF-1.7\n"), PHOTO_ERR_NOT_JPEG, "a PDF document");
    expect_refused(B("RIFF\x10\0\0\0WEBPVP8 "), PHOTO_ERR_NOT_JPEG, "a WebP image");
    expect_refused(B("<!DOCTYPE html><html>"), PHOTO_ERR_NOT_JPEG, "an HTML page");
    expect_refused(B("\x00\x01\x02\xfe\x80\x81\x82\x83\x84\x85"), PHOTO_ERR_NOT_JPEG,
                   "starts with bytes 00 01 02 fe 80 81 82 83 (a JPEG starts ff d8 ff)");
    expect_refused(B("\xff"), PHOTO_ERR_NOT_JPEG, "bytes ff");
    /* SOI then EOI: a JPEG with nothing in it */
    expect_refused(B("\xff\xd8\xff\xd9"), PHOTO_ERR_NO_FRAME, "no frame header");
    /* a scan with no frame before it */
    expect_refused(B("\xff\xd8\xff\xda\0\x02\x12\x34\xff\xd9"), PHOTO_ERR_NO_FRAME,
                   "no frame header (SOF) before its image data");
    expect_refused(B("\xff\xd8"), PHOTO_ERR_TRUNCATED, "ends after 2 bytes");
    expect_refused(B("\xff\xd8\xff\xe1\x10\x00"
                     "Exif"),
                   PHOTO_ERR_TRUNCATED,
                   "its APP1 segment at byte 2 needs 4096 bytes but only 6 are left");
    expect_refused(B("\xff\xd8\xff\xe0\0\x04\0\0garbage"), PHOTO_ERR_CORRUPT,
                   "byte 8 should start a marker (ff) but is 67");
    expect_refused(B("\xff\xd8\xff\xfe\0\x01"), PHOTO_ERR_CORRUPT, "has length 1");

    /* a good photo cut anywhere is refused, never read past its end; with bytes
     * after EOI it is still good */
    size_t n;
    unsigned char *b = load("gps-north-east.jpg", &n);
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *c = g_memdup2(b, cut); /* exact size: ASan sees any overread */
        photo_info pi;
        gc_err e;
        int rc = photo_inspect(c, cut, &pi, &e);
        assert_int_equal(rc, GC_EINVAL);
        assert_true(pi.error == PHOTO_ERR_TRUNCATED || (cut < 2 && pi.error == PHOTO_ERR_NOT_JPEG));
        g_free(c);
    }
    unsigned char *more = g_malloc(n + 5);
    memcpy(more, b, n);
    memcpy(more + n, "extra", 5);
    photo_info pi;
    gc_err e;
    assert_int_equal(photo_inspect(more, n + 5, &pi, &e), 0);
    assert_true(pi.has_gps);
    g_free(more);
    g_free(b);
}

/* Every byte of every EXIF block set to each of a few values: libexif and the
 * checks above it must neither crash nor let an impossible position through. */
static void test_exif_mutations(void **st)
{
    static const char *files[] = {"gps-north-east.jpg", "gps-below-sea-level.jpg", "gps-no-ref.jpg",
                                  "gps-empty-ifd.jpg"};
    static const unsigned char vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    unsigned inspected = 0;
    for (size_t f = 0; f < G_N_ELEMENTS(files); f++) {
        size_t n;
        unsigned char *b = load(files[f], &n);
        /* the APP1 segment: after SOI (and PIL's APP0 if any) */
        unsigned char *app1 = memmem(b, n, "Exif\0\0", 6);
        assert_non_null(app1);
        size_t start = (size_t)(app1 - b), seglen = (size_t)app1[-2] << 8 | app1[-1];
        for (size_t i = start + 6; i < start + seglen - 2; i++) {
            for (size_t v = 0; v < sizeof vals; v++) {
                unsigned char *c = g_memdup2(b, n);
                c[i] = vals[v];
                photo_info pi;
                gc_err e;
                if (photo_inspect(c, n, &pi, &e) != 0)
                    fail_msg("%s byte %zu = %02x: %s", files[f], i, vals[v], e.msg);
                if (pi.has_gps) {
                    assert_true(fabs(pi.lat) <= 90 && fabs(pi.lon) <= 180);
                    assert_true(pi.lat != 0 || pi.lon != 0);
                }
                assert_true(pi.orientation >= 0 && pi.orientation <= 8);
                assert_true(g_utf8_validate(pi.make, -1, NULL) &&
                            g_utf8_validate(pi.model, -1, NULL));
                json_t *j = photo_info_json(&pi);
                assert_non_null(j);
                assert_int_equal(json_object_size(j) >= 2, 1);
                json_decref(j);
                g_free(c);
                inspected++;
            }
        }
        g_free(b);
    }
    print_message("%u mutated photos inspected\n", inspected);
}

static void test_json(void **st)
{
    photo_info pi;
    gc_err e;
    assert_int_equal(inspect_file("gps-south-west.jpg", &pi, &e), 0);
    json_t *j = photo_info_json(&pi);
    assert_int_equal(json_integer_value(json_object_get(j, "width")), 120);
    assert_true(fabs(json_real_value(json_object_get(j, "lat")) + 34.6037) < 1e-6);
    assert_true(fabs(json_real_value(json_object_get(j, "lon")) + 58.3816) < 1e-6);
    assert_true(fabs(json_real_value(json_object_get(j, "alt_m")) - 25) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(j, "gps_time")), "2023-03-02T19:45:09Z");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "iPhone 13");
    assert_int_equal(json_integer_value(json_object_get(j, "orientation")), 6);
    assert_null(json_object_get(j, "exif_warning"));
    json_decref(j);

    assert_int_equal(inspect_file("gps-bad-latitude.jpg", &pi, &e), 0);
    j = photo_info_json(&pi);
    assert_null(json_object_get(j, "lat"));
    assert_null(json_object_get(j, "alt_m"));
    assert_null(json_object_get(j, "gps_time"));
    assert_non_null(strstr(json_string_value(json_object_get(j, "exif_warning")), "beyond 90"));
    json_decref(j);

    assert_int_equal(inspect_file("no-exif.jpg", &pi, &e), 0);
    j = photo_info_json(&pi);
    assert_int_equal(json_object_size(j), 2); /* width, height */
    json_decref(j);
}

static void test_hash(void **st)
{
    char hex[65];
    photo_hash((const unsigned char *)"abc", 3, hex);
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    photo_hash(NULL, 0, hex);
    assert_string_equal(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    assert_true(photo_hash_valid(hex));

    assert_false(photo_hash_valid(NULL));
    assert_false(photo_hash_valid(""));
    assert_false(photo_hash_valid("../etc"));
    assert_false(
        photo_hash_valid("../etc/passwd/../../../../../../../../../../../../../../../../x"));
    assert_false(
        photo_hash_valid("0E5751C026E543B2E8AB2EB06099DAA1D1E5DF47778F7787FAAB45CDF12FE3A8"));
    assert_false(photo_hash_valid("0e5751c026e543b2e8ab2eb06099daa1")); /* short */
    assert_false(
        photo_hash_valid("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a80"));
    assert_false(
        photo_hash_valid("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a/"));
    assert_false(
        photo_hash_valid("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3ag"));

    char *p = photo_path("/srv/photos", hex);
    assert_string_equal(
        p, "/srv/photos/0e/0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8.jpg");
    g_free(p);
    assert_null(photo_path("/srv/photos", "../etc"));
}

static void test_save(void **st)
{
    char *dir = g_dir_make_tmp("gridcc-photo-XXXXXX", NULL);
    char *store = g_build_filename(dir, "a", "photos", NULL); /* made on demand */
    size_t n;
    unsigned char *b = load("gps-north-east.jpg", &n);
    char hex[65];
    photo_hash(b, n, hex);
    gc_err e;
    gc_err_clear(&e);
    assert_int_equal(photo_save(store, b, n, hex, &e), 0);
    char *path = photo_path(store, hex);
    gchar *got;
    gsize gn;
    assert_true(g_file_get_contents(path, &got, &gn, NULL));
    assert_int_equal(gn, n);
    assert_memory_equal(got, b, n);
    g_free(got);
    struct stat s1, s2;
    assert_int_equal(stat(path, &s1), 0);
    assert_int_equal(s1.st_mode & 0137, 0); /* 0640 at most (the umask may take more) */

    /* again: nothing changes (same inode, nothing new beside it) */
    assert_int_equal(photo_save(store, b, n, hex, &e), 0);
    assert_int_equal(stat(path, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino);
    char *sub = g_path_get_dirname(path);
    GDir *d = g_dir_open(sub, 0, NULL);
    int files = 0;
    while (g_dir_read_name(d))
        files++;
    g_dir_close(d);
    assert_int_equal(files, 1); /* no temp file left */

    assert_int_equal(photo_save(store, b, n, "../../etc/passwd", &e), GC_EINVAL);
    assert_string_equal(e.field, "hash");
    /* a file where the directory should be */
    char *blocker = g_build_filename(dir, "file", NULL);
    assert_true(g_file_set_contents(blocker, "x", 1, NULL));
    assert_int_equal(photo_save(blocker, b, n, hex, &e), GC_EIO);

    g_unlink(path);
    g_rmdir(sub);
    g_rmdir(store);
    char *a = g_build_filename(dir, "a", NULL);
    g_rmdir(a);
    g_unlink(blocker);
    assert_int_equal(g_rmdir(dir), 0); /* everything accounted for */
    g_free(a);
    g_free(blocker);
    g_free(sub);
    g_free(path);
    g_free(b);
    g_free(store);
    g_free(dir);
}

/* Many threads inspecting at once get what one thread gets. */
static gpointer inspect_all(gpointer data)
{
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < G_N_ELEMENTS(GOOD); i++) {
            photo_info pi;
            gc_err e;
            if (inspect_file(GOOD[i].file, &pi, &e) != 0 || fabs(pi.lat - GOOD[i].lat) > 1e-6 ||
                strcmp(pi.gps_time, GOOD[i].gps_time))
                return GINT_TO_POINTER(1);
        }
    return NULL;
}

static void test_threads(void **st)
{
    GThread *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = g_thread_new("inspect", inspect_all, NULL);
    for (int i = 0; i < 8; i++)
        assert_null(g_thread_join(t[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_photos),    cmocka_unit_test(test_no_gps),
        cmocka_unit_test(test_bad_exif),       cmocka_unit_test(test_scan_damage),
        cmocka_unit_test(test_refused_files),  cmocka_unit_test(test_refused_shapes),
        cmocka_unit_test(test_exif_mutations), cmocka_unit_test(test_json),
        cmocka_unit_test(test_hash),           cmocka_unit_test(test_save),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
