/* fuzz_osmand: the OsmAnd/Traccar protocol reader (osmand_read_kv on a query
 * or form body, osmand_read_json on a JSON body: Traccar Client's shape, flat
 * objects, and the arrays of POST /batch and /api/positions), then the
 * device time. Besides not crashing: a message read has lon/lat NaN or
 * finite and every number NaN or finite; its strings are NUL-terminated
 * UTF-8 or NULL; a refusal names its field; osmand_msg_clear always frees. */
#include <math.h>

#include "fuzz.h"
#include "gridcc/parse.h"
#include "osmand.h"

static void check_str(const char *s, const char *what)
{
    CHECK(!s || g_utf8_validate(s, -1, NULL), "%s not UTF-8", what);
}

static void check_msg(int rc, const osmand_msg *m, const gc_err *err)
{
    if (rc) {
        CHECK(rc == GC_EINVAL, "rc %d", rc);
        CHECK(err->field[0] && err->msg[0], "a refusal without field or message");
        return;
    }
    const store_fix *f = &m->f;
    const double v[] = {f->lon, f->lat, f->speed, f->bearing, f->altitude, f->accuracy, f->batt};
    for (size_t i = 0; i < G_N_ELEMENTS(v); i++)
        CHECK(isnan(v[i]) || isfinite(v[i]), "number %zu is %g", i, v[i]);
    CHECK(m->source && *m->source, "no source");
    check_str(m->id, "id");
    check_str(m->crs, "crs");
    check_str(m->ts, "ts");
    if (m->ts && *m->ts) {
        int64_t ms;
        if (gc_time_parse_device(m->ts, &ms))
            CHECK(ms >= 946684800000LL && ms <= GC_TIME_MAX * 1000 + 999, "time %lld",
                  (long long)ms);
    }
}

static void read_json(json_t *o)
{
    osmand_msg m = {0};
    gc_err err = {0};
    int rc = osmand_read_json(o, &m, &err);
    check_msg(rc, &m, &err);
    osmand_msg_clear(&m);
    CHECK(!m.kv, "kv left after clear");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) { /* a query or form body */
        char *s = fuzz_str((const uint8_t *)in, len);
        GHashTable *p = g_uri_parse_params(s, -1, "&", G_URI_PARAMS_WWW_FORM, NULL);
        if (p) {
            osmand_msg m = {0};
            gc_err err = {0};
            check_msg(osmand_read_kv(p, &m, &err), &m, &err);
            osmand_msg_clear(&m);
            g_hash_table_destroy(p);
        }
        g_free(s);
        return 0;
    }
    json_error_t je;
    json_t *doc = json_loadb(in, len, 0, &je);
    if (!doc)
        return 0;
    if (json_is_array(doc)) { /* a batch: each item alone */
        size_t i;
        json_t *o;
        json_array_foreach(doc, i, o) read_json(o);
    } else {
        read_json(doc);
        json_t *locs = json_object_get(doc, "locations");
        size_t i;
        json_t *o;
        json_array_foreach(locs, i, o) read_json(o);
    }
    json_decref(doc);
    return 0;
}
