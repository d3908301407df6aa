/* hotline: one 12345 row into an incident report (hotline_row_report). A
 * field that is not UTF-8 refuses the row and names its column; before, the
 * order number made the row vanish with an empty reason and a category, time
 * or coordinate was dropped without a word (jansson refuses such strings). */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "gridcc/hotline.h"

static const address_entry buildings[] = {{"b1", "松清园1号楼", 116.341, 40.011}};

static void test_row_placed_by_address(void **state)
{
    hotline_map *m = hotline_map_default();
    address_index *ax = address_index_from(buildings, 1);
    hotline_row r = {.id = "GD20261101002",
                     .time = "2026-11-01 09:12:00",
                     .content = "夜间施工噪音扰民",
                     .address = "海淀区松清园小区1号楼",
                     .category = "噪音扰民"};
    char reason[512];
    int placed;
    json_t *in = hotline_row_report(m, &r, ax, reason, sizeof reason, &placed);
    assert_non_null(in);
    assert_int_equal(placed, 2);
    assert_string_equal(json_string_value(json_object_get(in, "building_id")), "b1");
    assert_string_equal(json_string_value(json_object_get(in, "category")), "E05.07");
    assert_string_equal(json_string_value(json_object_get(in, "external_id")), r.id);
    json_decref(in);
    address_index_free(ax);
    hotline_map_free(m);
}

static void test_field_not_utf8(void **state)
{
    hotline_map *m = hotline_map_default();
    address_index *ax = address_index_from(buildings, 1);
    static const char gbk[] = "\xd4\xeb\xd2\xf4"; /* 噪音 in GBK */
    struct {
        size_t off;
        const char *column;
    } cases[] = {{offsetof(hotline_row, id), "工单编号"},
                 {offsetof(hotline_row, time), "受理时间"},
                 {offsetof(hotline_row, category), "诉求类别"},
                 {offsetof(hotline_row, lon), "经度"}};
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        hotline_row r = {.id = "GD1", .content = "路灯不亮", .address = "松清园1号楼"};
        *(const char **)((char *)&r + cases[i].off) = gbk;
        char reason[512];
        int placed;
        json_t *in = hotline_row_report(m, &r, ax, reason, sizeof reason, &placed);
        if (in)
            fail_msg("column %s not UTF-8: row kept as %s", cases[i].column,
                     json_dumps(in, JSON_COMPACT));
        if (!strstr(reason, cases[i].column) || !strstr(reason, "not UTF-8"))
            fail_msg("column %s not UTF-8: reason '%s'", cases[i].column, reason);
    }
    address_index_free(ax);
    hotline_map_free(m);
}

static void test_long_reason_ends_on_a_character(void **state)
{
    /* coordinates that are not a position and no address: the reason quotes
     * them, cut to fit; cut inside a character, jansson dropped the row's
     * "unplaced" flag (found by fuzz_hotline) */
    hotline_map *m = hotline_map_default();
    address_index *ax = address_index_from(buildings, 1);
    for (int pad = 0; pad < 3; pad++) {
        GString *lat = g_string_new(NULL);
        g_string_append_len(lat, "xx", pad);
        for (int i = 0; i < 200; i++)
            g_string_append(lat, "噪");
        hotline_row r = {.id = "GD1", .content = "路灯不亮", .lon = "x", .lat = lat->str};
        char reason[512];
        int placed;
        json_t *in = hotline_row_report(m, &r, ax, reason, sizeof reason, &placed);
        assert_non_null(in);
        assert_int_equal(placed, 0);
        if (!g_utf8_validate(reason, -1, NULL))
            fail_msg("pad %d: reason not UTF-8", pad);
        size_t i, unplaced = 0;
        json_t *f;
        json_array_foreach(json_object_get(in, "flags"), i, f) unplaced +=
            !g_strcmp0(json_string_value(json_object_get(f, "flag")), "unplaced");
        if (unplaced != 1)
            fail_msg("pad %d: %zu unplaced flags", pad, unplaced);
        json_decref(in);
        g_string_free(lat, TRUE);
    }
    address_index_free(ax);
    hotline_map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_placed_by_address),
        cmocka_unit_test(test_field_not_utf8),
        cmocka_unit_test(test_long_reason_ends_on_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
