/* address: the building-name matcher on a small index (address_index_from).
 * A building is found by its own name; numbers a space keeps apart stay
 * apart; full-width digits are digits in a name as in a text; a reason cut
 * to fit ends on a whole character (found by fuzz_address). */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "gridcc/address.h"

static const address_entry buildings[] = {
    {"b1", "松清园1号楼", 116.341, 40.011},    {"b2", "松清园11号楼", 116.342, 40.012},
    {"b3", "松清园2号楼", 116.343, 40.013},    {"b4", "Block 7 2F", 116.344, 40.014},
    {"b5", "双清苑１２号楼", 116.345, 40.015}, {"b6", "学院路小区3号楼", 116.346, 40.016},
};

static address_index *index_new(void)
{
    return address_index_from(buildings, G_N_ELEMENTS(buildings));
}

static void expect(const address_index *ix, const char *text, const char *id)
{
    address_match m;
    address_lookup(ix, text, &m);
    if (!m.found || strcmp(m.building_id, id))
        fail_msg("'%s': want %s, got %s", text, id, m.found ? m.building_id : m.reason);
}

static void test_own_names(void **state)
{
    address_index *ix = index_new();
    assert_int_equal(address_index_count(ix), G_N_ELEMENTS(buildings));
    for (size_t i = 0; i < G_N_ELEMENTS(buildings); i++)
        expect(ix, buildings[i].name, buildings[i].id);
    expect(ix, "海淀区学院路街道松清园小区11号楼", "b2");
    address_match m;
    address_lookup(ix, "松清园111号楼", &m);
    assert_false(m.found);
    address_index_free(ix);
}

static void test_space_between_numbers(void **state)
{
    address_index *ix = index_new();
    /* building 1, room 203: not building 1203 */
    expect(ix, "松清园 1 203室", "b1");
    expect(ix, "Block 7 2F", "b4");
    expect(ix, "Block 7, 2F", "b4");
    address_index_free(ix);
}

static void test_fullwidth_digits_in_a_name(void **state)
{
    address_index *ix = index_new();
    expect(ix, "双清苑12号楼", "b5");
    expect(ix, "双清苑１２号楼", "b5");
    address_index_free(ix);
}

static void test_long_ambiguity_ends_on_a_character(void **state)
{
    /* 30 estates tie for "松清园1号楼", each with a building 1: the list of
     * them is cut to fit the reason, which must stay UTF-8 for JSON; names
     * of four lengths put the cut at every byte of a character */
    for (int pad = 0; pad < 4; pad++) {
        address_entry b[30];
        char names[30][32], ids[30][8];
        for (int i = 0; i < 30; i++) {
            char stem[8] = {0};
            g_unichar_to_utf8(0x4E00 + (gunichar)i, stem);
            snprintf(names[i], sizeof names[i], "松清园%s1号楼%.*s", stem, pad, "xxx");
            snprintf(ids[i], sizeof ids[i], "e%d", i);
            b[i] = (address_entry){ids[i], names[i], 116.3, 40.0};
        }
        address_index *ix = address_index_from(b, 30);
        address_match m;
        address_lookup(ix, "松清园1号楼", &m);
        assert_false(m.found);
        assert_true(g_str_has_prefix(m.reason, "ambiguous: "));
        if (!g_utf8_validate(m.reason, -1, NULL))
            fail_msg("pad %d: reason not UTF-8: %s", pad, m.reason);
        address_index_free(ix);
    }
}

static void test_not_utf8_left_out(void **state)
{
    const address_entry bad[] = {{"x", "\xe6\x9d\xbe\xe6", 1, 1}, {"y", "松清园5号楼", 1, 1}};
    address_index *ix = address_index_from(bad, 2);
    assert_int_equal(address_index_count(ix), 1);
    address_index_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_names),
        cmocka_unit_test(test_space_between_numbers),
        cmocka_unit_test(test_fullwidth_digits_in_a_name),
        cmocka_unit_test(test_long_ambiguity_ends_on_a_character),
        cmocka_unit_test(test_not_utf8_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
