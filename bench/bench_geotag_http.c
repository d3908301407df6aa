/* bench_geotag_http: batch geotag through HTTP against the SpatiaLite R*Tree
 * baseline, in one run. Posts POINTS random points of the district's bounding
 * box to a running daemon's POST /api/geotag: whole chains, then ids only
 * (fields=grid,building); and asks SpatiaLite for every feature containing
 * each of the same points, one query a point, on a copy of the store with
 * SpatiaLite's own spatial index (the query of bench_geotag.c). REPS rounds of
 * both requests and a slice of the baseline, so that both sides see the same
 * state of a shared machine. Points are written with 7 decimals (1 cm, finer
 * than any GPS fix), as a client would send them. Times are the client's:
 * from the body sent to the answer read; with the daemon's pid, its CPU time
 * per request too.
 *
 *   build/bench/bench_geotag_http DB PORT TOKEN [POINTS] [REPS] [DAEMON_PID]
 * (bench/bench_geotag_http.sh seeds a store and starts the daemon) */
#include <curl/curl.h>
#include <glib.h>
#include <sqlite3.h>
#include <spatialite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gridcc/store.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    g_byte_array_append(ud, (const guint8 *)data, (guint)(size * n));
    return size * n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The daemon's CPU time so far (user + system), in seconds; 0 without a pid. */
static double daemon_cpu(long pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    /* fields 14 and 15 after the command name, which is in parentheses */
    const char *p = strrchr(text, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    g_free(text);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct run {
    const char *what, *url;
    double *rates, *cpu;
    size_t bytes;
} run;

/* One request; false after printing why. */
static bool post(CURL *c, run *r, const GString *body, GByteArray *answer, long n, long pid,
                 int i)
{
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->str);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    g_byte_array_set_size(answer, 0);
    double c0 = daemon_cpu(pid), t0 = now();
    CURLcode rc = curl_easy_perform(c);
    double dt = now() - t0, dc = daemon_cpu(pid) - c0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "%s: %s, HTTP %ld: %.*s\n", r->what, curl_easy_strerror(rc), status,
                (int)MIN(answer->len, 300), (const char *)answer->data);
        return false;
    }
    if (i >= 0) {
        r->rates[i] = n / dt;
        r->cpu[i] = dc * 1000;
    }
    r->bytes = answer->len;
    return true;
}

static double report(run *r, int reps)
{
    qsort(r->rates, (size_t)reps, sizeof *r->rates, cmp_double);
    qsort(r->cpu, (size_t)reps, sizeof *r->cpu, cmp_double);
    printf("%-34s %9.0f points/s median of %d (%.0f-%.0f; answer %.1f MB", r->what,
           r->rates[reps / 2], reps, r->rates[0], r->rates[reps - 1], r->bytes / 1e6);
    if (r->cpu[reps - 1] > 0)
        printf("; daemon CPU %.0f ms a request, median", r->cpu[reps / 2]);
    printf(")\n");
    return r->rates[reps / 2];
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_geotag_http DB PORT TOKEN [POINTS] [REPS] [DAEMON_PID]\n");
        return 2;
    }
    int port = atoi(argv[2]);
    long n = argc > 4 ? atol(argv[4]) : 20000;
    int reps = argc > 5 ? atoi(argv[5]) : 7;
    long pid = argc > 6 ? atol(argv[6]) : 0;
    if (n < 1 || reps < 1)
        return 2;
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
    store_close(s);

    /* the points as the client sends them, and as the server reads them back */
    GString *body = g_string_new("[");
    double *xs = malloc(sizeof *xs * (size_t)n), *ys = malloc(sizeof *ys * (size_t)n);
    srand48(42);
    for (long i = 0; i < n; i++) {
        char x[32], y[32];
        g_ascii_formatd(x, sizeof x, "%.7f", L.bbox[0] + drand48() * (L.bbox[2] - L.bbox[0]));
        g_ascii_formatd(y, sizeof y, "%.7f", L.bbox[1] + drand48() * (L.bbox[3] - L.bbox[1]));
        g_string_append_printf(body, "%s[%s,%s]", i ? "," : "", x, y);
        xs[i] = g_ascii_strtod(x, NULL);
        ys[i] = g_ascii_strtod(y, NULL);
    }
    g_string_append_c(body, ']');
    printf("%ld points in the district's bounding box, body %.2f MB\n", n, body->len / 1e6);

    /* the baseline, as in bench_geotag.c: SpatiaLite's own spatial index on a
     * private copy of the store, every containing feature of every layer in
     * one statement a point */
    char *copy = g_build_filename(g_get_tmp_dir(), "gridcc-bench-geotag-http.db", NULL);
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
    sqlite3_exec(db, "SELECT CreateSpatialIndex('features', 'geom')", NULL, NULL, NULL);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT layer, fid FROM features WHERE uid IN (SELECT pkid FROM "
                           "idx_features_geom WHERE xmin <= ?1 AND xmax >= ?1 AND ymin <= ?2 AND "
                           "ymax >= ?2) AND ST_Within(MakePoint(?1, ?2, 4326), geom)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(db));
        return 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    char auth[600], url_full[128], url_ids[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[3]);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    snprintf(url_full, sizeof url_full, "http://127.0.0.1:%d/api/geotag", port);
    snprintf(url_ids, sizeof url_ids, "http://127.0.0.1:%d/api/geotag?fields=grid,building", port);
    run full = {"HTTP, whole chains:", url_full, calloc((size_t)reps, sizeof(double)),
                calloc((size_t)reps, sizeof(double)), 0};
    run ids = {"HTTP, ids (fields=grid,building):", url_ids, calloc((size_t)reps, sizeof(double)),
               calloc((size_t)reps, sizeof(double)), 0};
    GByteArray *answer = g_byte_array_new();
    /* The machine is shared: each round posts both kinds and then queries a
     * slice of the same points through SpatiaLite, so that both sides see the
     * same load; the first round (the daemon encodes its features then) is
     * not counted. */
    long found = 0;
    double tq = 0;
    for (int i = -1; i < reps; i++) {
        if (!post(c, &full, body, answer, n, pid, i) || !post(c, &ids, body, answer, n, pid, i))
            return 1;
        if (i < 0)
            continue;
        double t0 = now();
        for (long k = n * i / reps; k < n * (i + 1) / reps; k++) {
            sqlite3_reset(st);
            sqlite3_bind_double(st, 1, xs[k]);
            sqlite3_bind_double(st, 2, ys[k]);
            while (sqlite3_step(st) == SQLITE_ROW)
                found++;
        }
        tq += now() - t0;
    }
    double rfull = report(&full, reps), rids = report(&ids, reps);
    double base = n / tq;
    printf("%-34s %9.0f points/s (%.2f features/point; %.2f s over the %d rounds)\n",
           "SpatiaLite ST_Within + R*Tree:", base, (double)found / n, tq, reps);
    printf("ratio, whole chains through HTTP / SpatiaLite: %.1fx   (target >= 30x)\n", rfull / base);
    printf("ids only through HTTP: %.0f points/s   (target >= 300,000)\n", rids);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    g_byte_array_free(answer, TRUE);
    for (run *r = &full; r; r = r == &full ? &ids : NULL) {
        free(r->rates);
        free(r->cpu);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    spatialite_cleanup_ex(cache);
    remove(copy);
    g_free(copy);
    free(xs);
    free(ys);
    g_string_free(body, TRUE);
    return 0;
}
