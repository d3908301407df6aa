/* bench_coverage: patrol coverage of one synthetic worker-day over a ~1 km2
 * grid, track_coverage against the naive way in the same run (the same fixes
 * on the same plane, cut at the same gaps; the raw line buffered with GEOS
 * defaults, 8 segments a quarter circle, and intersected with the grid, no
 * clipping, no simplification). Prints median and p99 of each, their ratio,
 * and how far the answers differ; then track_coverage_buildings.
 *
 * The day: a random walk on an irregular street lattice (blocks 80-160 m),
 * ~1.4 m/s, a fix every ~15 s with 4 m GPS noise, a few stops of 3-10 min, a
 * 45-minute lunch gap, the grid's edge along the outer streets.
 *
 *   build/bench/bench_coverage [RUNS] [FIXES] [D] */
#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gridcc/track.h"

#define LON0 116.33
#define LAT0 40.0
#define SIDE 1000.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double kx, ky; /* metres per degree at LAT0 */

static void m2ll(double x, double y, double *lon, double *lat)
{
    *lon = LON0 + x / kx;
    *lat = LAT0 + y / ky;
}

static double gauss(void)
{
    double u = drand48(), v = drand48();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stats(double *ms, int runs, double *med, double *p99)
{
    qsort(ms, (size_t)runs, sizeof *ms, cmp);
    *med = ms[runs / 2];
    *p99 = ms[(int)ceil(0.99 * runs) - 1];
}

/* ---- the synthetic day ---- */

#define NL 10
static double lines[NL]; /* street positions, the same east-west and north-south */

static size_t make_day(track_pt *p, size_t n)
{
    int64_t t = 1700000000000LL; /* 8:00 or so */
    int ix = NL / 2, iy = NL / 2, px = -1, py = -1;
    size_t k = 0;
    int lunch_done = 0;
    double x = lines[ix], y = lines[iy];
    while (k < n) {
        /* next node: a random neighbour, not straight back unless stuck */
        int nx, ny;
        for (int tries = 0;; tries++) {
            int d = (int)(drand48() * 4);
            nx = ix + (d == 0) - (d == 1);
            ny = iy + (d == 2) - (d == 3);
            if (nx < 0 || ny < 0 || nx >= NL || ny >= NL)
                continue;
            if (nx == px && ny == py && tries < 20)
                continue;
            break;
        }
        double tx = lines[nx], ty = lines[ny], len = hypot(tx - x, ty - y);
        double v = 1.4 + 0.2 * gauss();
        double s = 0;
        while (k < n) {
            s += v * (15 + 2 * (drand48() - 0.5));
            if (s >= len)
                break;
            t += 15000 + (int64_t)(2000 * (drand48() - 0.5));
            double f = s / len;
            m2ll(x + f * (tx - x) + 4 * gauss(), y + f * (ty - y) + 4 * gauss(), &p[k].lon,
                 &p[k].lat);
            p[k++].t = t;
        }
        px = ix, py = iy, ix = nx, iy = ny, x = tx, y = ty;
        if (drand48() < 0.03) { /* a stop at the corner */
            int m = 12 + (int)(drand48() * 28);
            for (int i = 0; i < m && k < n; i++) {
                t += 15000;
                m2ll(x + 5 * gauss(), y + 5 * gauss(), &p[k].lon, &p[k].lat);
                p[k++].t = t;
            }
        }
        if (!lunch_done && k > n / 2) { /* lunch: 45 min without fixes, back elsewhere */
            lunch_done = 1;
            t += 45 * 60000;
            px = py = -1;
            ix = (int)(drand48() * NL), iy = (int)(drand48() * NL);
            x = lines[ix], y = lines[iy];
        }
    }
    return k;
}

/* the grid: the outer streets' square, its edges wobbling a few metres */
static GEOSGeometry *make_grid(GEOSContextHandle_t h)
{
    enum { PER = 12 };
    double xy[(4 * PER + 1) * 2];
    int m = 0;
    double c[5][2] = {{lines[0], lines[0]},
                      {lines[NL - 1], lines[0]},
                      {lines[NL - 1], lines[NL - 1]},
                      {lines[0], lines[NL - 1]},
                      {lines[0], lines[0]}};
    for (int e = 0; e < 4; e++)
        for (int i = 0; i < PER; i++) {
            double f = (double)i / PER;
            double x = c[e][0] + f * (c[e + 1][0] - c[e][0]) + (i ? 3 * gauss() : 0);
            double y = c[e][1] + f * (c[e + 1][1] - c[e][1]) + (i ? 3 * gauss() : 0);
            m2ll(x, y, &xy[2 * m], &xy[2 * m + 1]);
            m++;
        }
    xy[2 * m] = xy[0], xy[2 * m + 1] = xy[1];
    m++;
    GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(h, xy, (unsigned)m, 0, 0);
    return GEOSGeom_createPolygon_r(h, GEOSGeom_createLinearRing_r(h, cs), NULL, 0);
}

/* ---- the naive way ---- */

typedef struct plane {
    double lon0, lat0, kx, ky;
} plane;

static int to_plane(double *x, double *y, void *ud)
{
    const plane *pl = ud;
    *x = (*x - pl->lon0) * pl->kx;
    *y = (*y - pl->lat0) * pl->ky;
    return 1;
}

static double naive(GEOSContextHandle_t h, const track_pt *p, size_t n, const unsigned char *wkb,
                    size_t len, double D)
{
    GEOSWKBReader *r = GEOSWKBReader_create_r(h);
    GEOSGeometry *g = GEOSWKBReader_read_r(h, r, wkb, len);
    GEOSWKBReader_destroy_r(h, r);
    double x0, y0, x1, y1;
    GEOSGeom_getXMin_r(h, g, &x0);
    GEOSGeom_getYMin_r(h, g, &y0);
    GEOSGeom_getXMax_r(h, g, &x1);
    GEOSGeom_getYMax_r(h, g, &y1);
    plane pl = {(x0 + x1) / 2, (y0 + y1) / 2, kx, ky};
    GEOSGeometry *pg = GEOSGeom_transformXY_r(h, g, to_plane, &pl);
    /* the same parts as track_coverage's: cut at 5 min / 500 m */
    GEOSGeometry **parts = malloc(sizeof *parts * n);
    double *xy = malloc(sizeof *xy * 2 * n);
    unsigned np = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, m = 0;
        for (; j < n; j++) {
            if (j > i && p[j].t - p[j - 1].t > 300000)
                break;
            xy[2 * m] = (p[j].lon - pl.lon0) * kx;
            xy[2 * m + 1] = (p[j].lat - pl.lat0) * ky;
            m++;
        }
        i = j;
        GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(h, xy, (unsigned)m, 0, 0);
        parts[np++] = m > 1 ? GEOSGeom_createLineString_r(h, cs) : GEOSGeom_createPoint_r(h, cs);
    }
    GEOSGeometry *line = GEOSGeom_createCollection_r(h, GEOS_GEOMETRYCOLLECTION, parts, np);
    GEOSGeometry *buf = GEOSBuffer_r(h, line, D, 8);
    GEOSGeometry *x = GEOSIntersection_r(h, buf, pg);
    double a = 0, total = 1;
    GEOSArea_r(h, x, &a);
    GEOSArea_r(h, pg, &total);
    GEOSGeom_destroy_r(h, x);
    GEOSGeom_destroy_r(h, buf);
    GEOSGeom_destroy_r(h, line);
    GEOSGeom_destroy_r(h, pg);
    GEOSGeom_destroy_r(h, g);
    free(parts);
    free(xy);
    return a / total;
}

/* ---- buildings: a few rectangles in every block, set back from the streets ---- */

static size_t make_buildings(GEOSContextHandle_t h, unsigned char ***wkbs, size_t **lens)
{
    size_t cap = 1024, nb = 0;
    *wkbs = malloc(sizeof **wkbs * cap);
    *lens = malloc(sizeof **lens * cap);
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(h);
    for (int i = 0; i + 1 < NL; i++)
        for (int j = 0; j + 1 < NL; j++)
            for (int b = 0; b < 4 && nb < cap; b++) {
                double bx0 = lines[i], bx1 = lines[i + 1], by0 = lines[j], by1 = lines[j + 1];
                double set = 8 + 12 * drand48(), wdt = 12 + 10 * drand48(),
                       dep = 15 + 20 * drand48();
                double x = b % 2 ? bx1 - set - wdt : bx0 + set;
                double y = b / 2 ? by1 - set - dep : by0 + set;
                if (x < bx0 + 5 || x + wdt > bx1 - 5 || y < by0 + 5 || y + dep > by1 - 5)
                    continue;
                double r[10] = {x, y, x + wdt, y, x + wdt, y + dep, x, y + dep, x, y};
                for (int k = 0; k < 5; k++)
                    m2ll(r[2 * k], r[2 * k + 1], &r[2 * k], &r[2 * k + 1]);
                GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(h, r, 5, 0, 0);
                GEOSGeometry *g =
                    GEOSGeom_createPolygon_r(h, GEOSGeom_createLinearRing_r(h, cs), NULL, 0);
                (*wkbs)[nb] = GEOSWKBWriter_write_r(h, w, g, &(*lens)[nb]);
                nb++;
                GEOSGeom_destroy_r(h, g);
            }
    GEOSWKBWriter_destroy_r(h, w);
    return nb;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 2000;
    double D = argc > 3 ? atof(argv[3]) : 25;
    if (runs < 1 || n < 1 || !(D > 0)) {
        fprintf(stderr, "usage: bench_coverage [RUNS] [FIXES] [D]\n");
        return 2;
    }
    const double a = 6378137.0, e2 = 6.69437999014e-3, d = M_PI / 180.0;
    double s = sin(LAT0 * d), w = 1 - e2 * s * s;
    kx = d * a * cos(LAT0 * d) / sqrt(w);
    ky = d * a * (1 - e2) / (w * sqrt(w));

    srand48(7);
    lines[0] = 0;
    for (int i = 1; i < NL; i++)
        lines[i] = lines[i - 1] + 80 + 80 * drand48();
    double scale = SIDE / lines[NL - 1];
    for (int i = 0; i < NL; i++)
        lines[i] *= scale;
    track_pt *p = malloc(sizeof *p * n);
    n = make_day(p, n);

    GEOSContextHandle_t h = GEOS_init_r();
    GEOSGeometry *grid = make_grid(h);
    GEOSWKBWriter *wr = GEOSWKBWriter_create_r(h);
    size_t len;
    unsigned char *wkb = GEOSWKBWriter_write_r(h, wr, grid, &len);
    GEOSWKBWriter_destroy_r(h, wr);
    GEOSGeom_destroy_r(h, grid);
    printf("worker-day: %zu fixes over %.1f h, grid ~%.0f m square, D = %.0f m, %d runs\n", n,
           (p[n - 1].t - p[0].t) / 3.6e6, SIDE, D, runs);

    double *t_ours = malloc(sizeof(double) * (size_t)runs);
    double *t_base = malloc(sizeof(double) * (size_t)runs);
    track_opts o = {.distance_m = D};
    track_cov c = {0};
    gc_err err = {0};
    double base_ratio = 0;
    for (int i = 0; i < runs; i++) { /* interleaved: both see the same machine */
        double t0 = now();
        if (track_coverage(p, n, wkb, len, &o, &c, &err)) {
            fprintf(stderr, "track_coverage: %s\n", err.msg);
            return 1;
        }
        double t1 = now();
        base_ratio = naive(h, p, n, wkb, len, D);
        double t2 = now();
        t_ours[i] = (t1 - t0) * 1000;
        t_base[i] = (t2 - t1) * 1000;
    }
    double om, o99, bm, b99;
    stats(t_ours, runs, &om, &o99);
    stats(t_base, runs, &bm, &b99);
    printf("track_coverage:          median %7.2f ms  p99 %7.2f ms  min %6.2f ms  ratio %.4f  "
           "(%.0f of %.0f m2)\n",
           om, o99, t_ours[0], c.ratio, c.covered_m2, c.total_m2);
    printf("naive buffer+intersect:  median %7.2f ms  p99 %7.2f ms  min %6.2f ms  ratio %.4f\n", bm,
           b99, t_base[0], base_ratio);
    printf("speed-up %.1fx (median), answers differ by %.4f (%.2f%% of the naive one)\n", bm / om,
           c.ratio - base_ratio, 100 * (c.ratio - base_ratio) / base_ratio);

    /* what the pre-buffer simplification costs in accuracy, tolerance by tolerance */
    double tols[] = {-1, D / 10, D / 4, D / 3, D / 2};
    const char *names[] = {"none", "D/10", "D/4", "D/3", "D/2"};
    for (int k = 0; k < 5; k++) {
        track_opts ok = {.distance_m = D, .simplify_m = tols[k]};
        double ts[21];
        for (int i = 0; i < 21; i++) {
            double t0 = now();
            track_coverage(p, n, wkb, len, &ok, &c, &err);
            ts[i] = (now() - t0) * 1000;
        }
        qsort(ts, 21, sizeof *ts, cmp);
        printf("  simplify %-4s  median %7.2f ms  ratio %.5f\n", names[k], ts[10], c.ratio);
    }

    unsigned char **bw;
    size_t *bl;
    size_t nb = make_buildings(h, &bw, &bl);
    double *tb = malloc(sizeof(double) * (size_t)runs);
    for (int i = 0; i < runs; i++) {
        double t0 = now();
        if (track_coverage_buildings(p, n, (const unsigned char *const *)bw, bl, nb, &o, &c,
                                     &err)) {
            fprintf(stderr, "track_coverage_buildings: %s\n", err.msg);
            return 1;
        }
        tb[i] = (now() - t0) * 1000;
    }
    double bmed, bp99;
    stats(tb, runs, &bmed, &bp99);
    printf("track_coverage_buildings: %zu footprints, median %.2f ms  p99 %.2f ms  ratio %.4f, "
           "%d touched\n",
           nb, bmed, bp99, c.ratio, c.buildings_touched);

    for (size_t i = 0; i < nb; i++)
        GEOSFree_r(h, bw[i]);
    free(bw);
    free(bl);
    GEOSFree_r(h, wkb);
    GEOS_finish_r(h);
    free(tb);
    free(t_ours);
    free(t_base);
    free(p);
    return 0;
}
