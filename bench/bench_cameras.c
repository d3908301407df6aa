/* bench_cameras: finding the cameras that see a point, as each reported case
 * does (cameras_match_incident's lookup): the R*Tree of sector extents, then
 * cameras_sees on the candidates; against the baseline without the index,
 * every camera read from the store and tested. Same store, same points, same
 * run; prints both and the ratio, and checks both find the same cameras.
 *   bench_cameras [CAMERAS=1000] [POINTS=20000] */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gdal.h>

#include "gridcc/cameras.h"

typedef struct hits {
    double lon, lat;
    long n;
} hits;

static int count_seen(void *ud, const store_camera *c)
{
    hits *h = ud;
    if (cameras_sees(c, h->lon, h->lat, NULL, NULL))
        h->n++;
    return 0;
}

int main(int argc, char **argv)
{
    int ncam = argc > 1 ? atoi(argv[1]) : 1000, npts = argc > 2 ? atoi(argv[2]) : 20000;
    GDALAllRegister();
    char dir[] = "/tmp/bench-cameras-XXXXXX";
    if (!g_mkdtemp(dir))
        return 1;
    char *db = g_build_filename(dir, "b.db", NULL);
    store *s;
    gc_err e = {0};
    if (store_open(db, &s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    /* a district's worth of ground: 8 km × 7 km around 116.33, 39.99 */
    GRand *r = g_rand_new_with_seed(7);
    store_begin(s, &e);
    for (int i = 0; i < ncam; i++) {
        store_camera c = {0};
        snprintf(c.id, sizeof c.id, "c%d", i);
        snprintf(c.name, sizeof c.name, "c%d", i);
        snprintf(c.url, sizeof c.url, "rtsp://h/%d", i);
        snprintf(c.url_public, sizeof c.url_public, "rtsp://h/%d", i);
        c.lon = g_rand_double_range(r, 116.28, 116.375);
        c.lat = g_rand_double_range(r, 39.957, 40.018);
        c.heading = g_rand_double_range(r, 0, 360);
        c.fov = (double[]){60, 90, 120}[g_rand_int_range(r, 0, 3)];
        c.range_m = (double[]){150, 250, 400}[g_rand_int_range(r, 0, 3)];
        c.height_m = NAN;
        if (cameras_save(s, &c, CAMERAS_CREATE, NULL, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    store_commit(s, &e);
    double *pts = g_new(double, 2 * npts);
    for (int i = 0; i < npts; i++) {
        pts[2 * i] = g_rand_double_range(r, 116.28, 116.375);
        pts[2 * i + 1] = g_rand_double_range(r, 39.957, 40.018);
    }
    long found_idx = 0, found_scan = 0;
    gint64 t0 = g_get_monotonic_time();
    for (int i = 0; i < npts; i++) {
        hits h = {pts[2 * i], pts[2 * i + 1], 0};
        double pad = 1e-7, bb[4] = {h.lon - pad, h.lat - pad, h.lon + pad, h.lat + pad};
        store_cameras_list(s, bb, 0, 0, NULL, count_seen, &h, NULL);
        found_idx += h.n;
    }
    gint64 t1 = g_get_monotonic_time();
    int nscan = npts / 20 > 0 ? npts / 20 : 1; /* the scan is slow: a sample, scaled */
    long found_sample_idx = 0;
    for (int i = 0; i < nscan; i++) {
        hits h = {pts[2 * i], pts[2 * i + 1], 0};
        store_cameras_list(s, NULL, 0, 0, NULL, count_seen, &h, NULL);
        found_scan += h.n;
    }
    gint64 t2 = g_get_monotonic_time();
    for (int i = 0; i < nscan; i++) {
        hits h = {pts[2 * i], pts[2 * i + 1], 0};
        double pad = 1e-7, bb[4] = {h.lon - pad, h.lat - pad, h.lon + pad, h.lat + pad};
        store_cameras_list(s, bb, 0, 0, NULL, count_seen, &h, NULL);
        found_sample_idx += h.n;
    }
    double us_idx = (double)(t1 - t0) / npts, us_scan = (double)(t2 - t1) / nscan;
    printf("cameras=%d points=%d: index %.1f µs/point (%.0f points/s, %.2f cameras each); "
           "scan (baseline, %d points) %.1f µs/point; ratio %.0fx; same cameras found: %s\n",
           ncam, npts, us_idx, 1e6 / us_idx, (double)found_idx / npts, nscan, us_scan,
           us_scan / us_idx, found_scan == found_sample_idx ? "yes" : "NO");
    store_close(s);
    g_rand_free(r);
    g_free(pts);
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    int rc = system(cmd);
    g_free(cmd);
    g_free(db);
    return rc || found_scan != found_sample_idx;
}
