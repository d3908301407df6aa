/* fuzz_geotag_body: the POST /api/geotag body readers, the yajl fast path
 * for bare arrays and the jansson path for GeoJSON and everything else.
 * Besides not crashing: whatever the fast path takes, jansson takes too and
 * reads the same points (so the fast path changes the speed, never the
 * answer); every point read is finite; a refusal names its field; and (once,
 * at start, as no fuzzed input is that long) 100,000 points are read and
 * 100,001 refused by both paths. */
#include <math.h>

#include "fuzz.h"
#include "geotag_api.h"

static void check_limit(void)
{
    GString *b = g_string_new("[");
    for (int i = 0; i < GEOTAG_MAX_POINTS; i++)
        g_string_append_printf(b, "%s[%d.5,%d]", i ? "," : "", i % 180, i % 90);
    g_string_append_c(b, ']');
    geotag_pts p = {0};
    char field[128] = "";
    json_error_t je;
    CHECK(geotag_read_body(b->str, b->len, &p, field, sizeof field, &je) == 0 &&
              p.n == GEOTAG_MAX_POINTS,
          "%d points not read (%zu)", GEOTAG_MAX_POINTS, p.n);
    geotag_pts_clear(&p);
    /* and the fast path takes it (else every bulk body would go the slow way) */
    CHECK(geotag_read_plain(b->str, b->len, &p) && p.n == GEOTAG_MAX_POINTS,
          "the fast path refuses %d points", GEOTAG_MAX_POINTS);
    geotag_pts_clear(&p);
    g_string_truncate(b, b->len - 1);
    g_string_append(b, ",[1,2]]");
    CHECK(!geotag_read_plain(b->str, b->len, &p), "the fast path read %zu points", p.n);
    geotag_pts_clear(&p);
    CHECK(geotag_read_body(b->str, b->len, &p, field, sizeof field, &je) == -2,
          "%d points not refused", GEOTAG_MAX_POINTS + 1);
    geotag_pts_clear(&p);
    g_string_free(b, TRUE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check_limit();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    geotag_pts a = {0}, b = {0}, c = {0};
    char field[128] = "";
    bool plain = geotag_read_plain(data, size, &a);
    json_error_t je;
    json_t *doc = json_loadb((const char *)data, size, 0, &je);
    int rcj = doc ? geotag_read_doc(doc, &b, field, sizeof field) : -3;
    if (plain) {
        CHECK(rcj == 0, "the fast path read %zu points, jansson refuses (%d) at '%s'", a.n, rcj,
              field);
        CHECK(a.n == b.n, "fast path %zu points, jansson %zu", a.n, b.n);
        for (size_t i = 0; i < a.n; i++)
            CHECK(a.x[i] == b.x[i] && a.y[i] == b.y[i], "point %zu: %.17g,%.17g vs %.17g,%.17g", i,
                  a.x[i], a.y[i], b.x[i], b.y[i]);
    }
    if (rcj == -1)
        CHECK(field[0], "a refusal without a field");
    if (rcj == 0 || plain) {
        geotag_pts *p = plain ? &a : &b;
        CHECK(p->n <= GEOTAG_MAX_POINTS, "%zu points", p->n);
        for (size_t i = 0; i < p->n; i++)
            CHECK(isfinite(p->x[i]) && isfinite(p->y[i]), "point %zu %g,%g", i, p->x[i], p->y[i]);
    }
    /* the handler's reading is one of the two */
    char f2[128] = "";
    int rc = geotag_read_body(data, size, &c, f2, sizeof f2, &je);
    CHECK(rc == (plain ? 0 : rcj), "geotag_read_body %d, the paths %d/%d", rc, plain, rcj);
    CHECK(c.n == (plain ? a.n : rcj == 0 ? b.n : c.n), "geotag_read_body read %zu points", c.n);
    json_decref(doc);
    geotag_pts_clear(&a);
    geotag_pts_clear(&b);
    geotag_pts_clear(&c);
    return 0;
}
