/* bench_geotag: full-chain geotag over the sample district on one core,
 * against SpatiaLite's ST_Within through its R*Tree spatial index on the same
 * store and the same random points (the baseline). Also counts how often the
 * two disagree (points on shared boundaries may differ by rule).
 *
 *   build/bench/bench_geotag DB [POINTS] [BASELINE_POINTS] */
#include <glib.h>
#include <sqlite3.h>
#include <spatialite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gridcc/geotag.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_geotag DB [POINTS] [BASELINE_POINTS]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 2000000;
    long nb = argc > 3 ? atol(argv[3]) : 20000;
    store *s;
    gc_err err = {0};
    if (store_open(argv[1], &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    store_layer L;
    if (store_layer_for_level(s, "district", &L, &err)) {
        fprintf(stderr, "no district layer: run gridcc seed first\n");
        return 1;
    }
    free(L.fields_json);
    double t0 = now();
    gc_index *ix = geotag_build_index(s, &err);
    double tb = now() - t0;
    store_close(s);
    printf("index: %zu features, %.1f MiB, built in %.0f ms\n", index_feature_count(ix),
           index_memory_bytes(ix) / 1048576.0, tb * 1000);

    /* random points over the district's bounding box (fixed seed) */
    double *xs = malloc(sizeof *xs * (size_t)n), *ys = malloc(sizeof *ys * (size_t)n);
    srand48(42);
    for (long i = 0; i < n; i++) {
        xs[i] = L.bbox[0] + drand48() * (L.bbox[2] - L.bbox[0]);
        ys[i] = L.bbox[1] + drand48() * (L.bbox[3] - L.bbox[1]);
    }
    index_chain c;
    long hits = 0, levels = 0;
    t0 = now();
    for (long i = 0; i < n; i++) {
        index_geotag(ix, xs[i], ys[i], &c);
        hits += c.chain[LEVEL_GRID] != NULL;
        for (int k = 0; k < LEVEL_CHAIN_N; k++)
            levels += c.chain[k] != NULL;
        levels += (long)c.nextra;
    }
    double tg = now() - t0;
    double rate = n / tg;
    printf("gridcc index:      %10.0f points/s  (%ld points, %.2f s, %.1f%% in a grid, %.2f features/point)\n",
           rate, n, tg, 100.0 * hits / n, (double)levels / n);

    /* baseline: one SpatiaLite query per point returning every containing
     * feature of every layer (the full chain in one statement) */
    /* the store keeps its own R*Tree; the baseline gets SpatiaLite's own
     * spatial index (CreateSpatialIndex) on a private copy of the store */
    char *copy = g_build_filename(g_get_tmp_dir(), "gridcc-bench-geotag.db", NULL);
    remove(copy);
    sqlite3 *src, *db;
    sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL);
    sqlite3_open(copy, &db);
    sqlite3_backup *bk = sqlite3_backup_init(db, "main", src, "main");
    sqlite3_backup_step(bk, -1);
    sqlite3_backup_finish(bk);
    sqlite3_close(src);
    void *cache = spatialite_alloc_connection();
    spatialite_init_ex(db, cache, 0);
    double ti = now();
    sqlite3_exec(db, "SELECT CreateSpatialIndex('features', 'geom')", NULL, NULL, NULL);
    printf("baseline: SpatiaLite spatial index built in %.0f ms on a copy of the store\n",
           (now() - ti) * 1000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT layer, fid FROM features WHERE uid IN (SELECT pkid FROM "
                           "idx_features_geom WHERE xmin <= ?1 AND xmax >= ?1 AND ymin <= ?2 AND "
                           "ymax >= ?2) AND ST_Within(MakePoint(?1, ?2, 4326), geom)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    long bl_levels = 0, differ = 0;
    if (nb > n)
        nb = n;
    t0 = now();
    for (long i = 0; i < nb; i++) {
        sqlite3_reset(st);
        sqlite3_bind_double(st, 1, xs[i]);
        sqlite3_bind_double(st, 2, ys[i]);
        long found = 0;
        while (sqlite3_step(st) == SQLITE_ROW)
            found++;
        bl_levels += found;
        /* compare: same number of containing features */
        index_geotag(ix, xs[i], ys[i], &c);
        long ours = (long)c.nextra;
        for (int k = 0; k < LEVEL_CHAIN_N; k++)
            ours += c.chain[k] != NULL;
        differ += ours != found;
    }
    double tq = now() - t0;
    double brate = nb / tq;
    printf("SpatiaLite ST_Within + R*Tree: %5.0f points/s  (%ld points, %.2f s, %.2f features/point)\n",
           brate, nb, tq, (double)bl_levels / nb);
    printf("ratio: %.0fx   (target: >= 1,000,000 points/s and >= 100x)\n", rate / brate);
    printf("agreement: %ld of %ld baseline points give a different number of features\n", differ, nb);
    sqlite3_finalize(st);
    sqlite3_close(db);
    spatialite_cleanup_ex(cache);
    remove(copy);
    g_free(copy);
    index_free(ix);
    free(xs);
    free(ys);
    return 0;
}
