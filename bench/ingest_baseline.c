/* The OsmAnd ingest bench's baseline: the same kind of fixes inserted into
 * the same SpatiaLite schema one transaction (one fsync) each, as a naive
 * tracker server would. Prints fixes/s.
 *   ingest_baseline DB USER_ID SECONDS */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "gridcc/fixes.h"
#include "gridcc/store.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ingest_baseline DB USER_ID SECONDS\n");
        return 2;
    }
    store *s;
    gc_err err = {0};
    if (store_open(argv[1], &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int64_t uid = atoll(argv[2]);
    double secs = atof(argv[3]);
    gint64 t0 = g_get_monotonic_time();
    int64_t base = g_get_real_time() / 1000 - 86400000, n = 0;
    while (g_get_monotonic_time() - t0 < secs * 1e6) {
        store_fix f = fix_blank();
        f.user_id = uid;
        f.t = base + n;
        f.lon = 116.34 + (n % 1000) * 1e-6;
        f.lat = 40.01;
        f.device_id = "baseline";
        f.source = "osmand";
        f.received_at = base;
        if (store_fixes_insert(s, &f, 1, NULL, &err)) {   /* its own transaction */
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        n++;
    }
    double el = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("%.0f\n", (double)n / el);
    store_close(s);
    return 0;
}
