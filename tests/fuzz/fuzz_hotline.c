/* fuzz_hotline: hotline_row_report, one 12345 row into an incident report,
 * with the default column map and a small building index. The input is the
 * row's fields one per line (order number, time, content, address, lon, lat,
 * category, status, closing time; an empty line is an empty cell). Besides
 * not crashing: a refused row says why; a kept row carries its number and
 * content unchanged, a category, a time either read or flagged (never
 * dropped), a position in range when placed, and the reason when not; the
 * whole report serialises. */
#include <math.h>

#include "fuzz.h"
#include "gridcc/address.h"
#include "gridcc/hotline.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

static hotline_map *map;
static address_index *ax;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    map = hotline_map_default();
    address_entry b[G_N_ELEMENTS(fuzz_buildings)];
    for (size_t i = 0; i < G_N_ELEMENTS(fuzz_buildings); i++)
        b[i] =
            (address_entry){fuzz_buildings[i].id, fuzz_buildings[i].name, 120.3 + i * 1e-3, 36.06};
    ax = address_index_from(b, G_N_ELEMENTS(b));
    return 0;
}

static size_t count_flags(json_t *in, const char *flag)
{
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(json_object_get(in, "flags"), i, f) n +=
        !g_strcmp0(json_string_value(json_object_get(f, "flag")), flag);
    return n;
}

static bool in_range(json_t *v, double lo, double hi)
{
    return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) >= lo &&
           json_number_value(v) <= hi;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    char **f = g_strsplit(s, "\n", 9);
    const char *v[9] = {0};
    for (guint i = 0; f[i] && i < 9; i++)
        v[i] = *f[i] ? f[i] : NULL;
    hotline_row row = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    char reason[512];
    int placed = -1;
    json_t *in = hotline_row_report(map, &row, ax, reason, sizeof reason, &placed);
    CHECK_TEXT(reason);
    bool utf8 = true;
    for (int i = 0; i < 9; i++)
        utf8 &= !v[i] || g_utf8_validate(v[i], -1, NULL);
    if (!in) {
        CHECK(reason[0], "row refused without a reason");
        CHECK(!row.id || !row.content || !utf8, "a row with number and content refused: %s",
              reason);
        goto out;
    }
    CHECK(row.id && row.content && utf8, "a row kept that lacks number, content or UTF-8");
    CHECK(!g_strcmp0(json_string_value(json_object_get(in, "external_id")), row.id),
          "external_id is not the order number");
    CHECK(!g_strcmp0(json_string_value(json_object_get(in, "description")), row.content),
          "description is not the content");
    const char *cat = json_string_value(json_object_get(in, "category"));
    CHECK(cat && *cat, "no category");
    if (row.category)
        CHECK(!g_strcmp0(json_string_value(
                             json_object_get(json_object_get(in, "props"), "hotline_category")),
                         row.category),
              "the hotline's own category was dropped");
    if (row.address)
        CHECK(!g_strcmp0(json_string_value(json_object_get(in, "address")), row.address),
              "the address was dropped");
    int64_t t;
    if (row.time && gc_time_parse(row.time, &t))
        CHECK(json_integer_value(json_object_get(in, "reported_at")) == t &&
                  json_is_integer(json_object_get(in, "reported_at")),
              "time '%s' read as %lld but reported_at differs", row.time, (long long)t);
    else if (row.time)
        CHECK(count_flags(in, "bad_time") == 1 && !json_object_get(in, "reported_at"),
              "time '%s' neither read nor flagged", row.time);
    json_t *cl = json_object_get(in, "closed_at");
    CHECK(!cl || (json_is_integer(cl) && json_integer_value(cl) != 0), "closed_at 0");
    CHECK(placed >= 0 && placed <= 2, "placed %d", placed);
    if (placed) {
        CHECK(in_range(json_object_get(in, "lon"), -180, 180) &&
                  in_range(json_object_get(in, "lat"), -90, 90),
              "placed (%d) without a position in range", placed);
        CHECK(placed != 2 || json_string_value(json_object_get(in, "building_id")),
              "placed by address without a building");
        CHECK(placed != 2 || count_flags(in, "placed_by_address") == 1,
              "placed by address without its flag");
    } else {
        CHECK(reason[0], "unplaced without a reason");
        CHECK(count_flags(in, "unplaced") == 1, "unplaced without its flag (reason '%s')", reason);
        CHECK(!json_object_get(in, "lon") && !json_object_get(in, "lat"),
              "unplaced with a position");
    }
    if ((row.lon || row.lat) && placed != 1)
        CHECK(count_flags(in, "bad_coordinates") == 1,
              "coordinates '%s','%s' neither used nor "
              "flagged",
              row.lon ? row.lon : "", row.lat ? row.lat : "");
    char *dump = json_dumps(in, JSON_COMPACT);
    CHECK(dump, "the report does not serialise");
    json_t *again = json_loads(dump, 0, NULL);
    CHECK(again && json_equal(again, in), "the report does not read back: %s", dump);
    json_decref(again);
    free(dump);
    json_decref(in);
out:
    g_strfreev(f);
    g_free(s);
    return 0;
}
