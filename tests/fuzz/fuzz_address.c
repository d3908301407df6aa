/* fuzz_address: address_lookup, the building-name matcher. The input is
 * lines: every line but the last is one more building's name, the last is
 * the text looked up. Besides not crashing: every string out is valid UTF-8
 * (it goes into JSON); a match is a building of the index, found again by its
 * id, with a score in 0..1 and no reason; a miss says why; and a building is
 * found by its own name (or the name is said to be ambiguous). */
#include "fuzz.h"
#include "gridcc/address.h"

#define MAX_EXTRA 16

static void check_match(const address_index *ix, const char *text, const address_match *m)
{
    CHECK_TEXT(m->building_id);
    CHECK_TEXT(m->building_name);
    CHECK_TEXT(m->reason);
    if (!m->found) {
        CHECK(m->reason[0], "'%s': not found and no reason", text);
        return;
    }
    CHECK(!m->reason[0], "'%s': found with a reason '%s'", text, m->reason);
    CHECK(m->score >= 0.6 - 1e-9 && m->score <= 1 + 1e-9, "'%s': score %g", text, m->score);
    address_match by;
    CHECK(address_by_id(ix, m->building_id, &by), "'%s': found %s, unknown by id", text,
          m->building_id);
    CHECK(!strcmp(by.building_name, m->building_name), "'%s': %s is '%s' by id but '%s' here", text,
          m->building_id, by.building_name, m->building_name);
}

static bool is_digit(gunichar c)
{
    return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19);
}

/* Does name have a number (ASCII or full-width digits) after an estate of two
 * characters or more? */
static bool findable(const char *name)
{
    const char *d = name;
    glong chars = 0;
    for (; *d && !is_digit(g_utf8_get_char(d)); d = g_utf8_next_char(d))
        chars += !g_unichar_isspace(g_utf8_get_char(d));
    return *d && chars >= 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    char **lines = g_strsplit(s, "\n", MAX_EXTRA + 1);
    guint n = g_strv_length(lines);
    address_entry b[G_N_ELEMENTS(fuzz_buildings) + MAX_EXTRA];
    char ids[MAX_EXTRA][16];
    size_t nb = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(fuzz_buildings); i++)
        b[nb++] =
            (address_entry){fuzz_buildings[i].id, fuzz_buildings[i].name, 120.3 + i * 1e-3, 36.06};
    for (guint i = 0; i + 1 < n; i++) {
        snprintf(ids[i], sizeof ids[i], "x%u", i);
        b[nb++] = (address_entry){ids[i], lines[i], 120.4 + i * 1e-3, 36.07};
    }
    address_index *ix = address_index_from(b, nb);
    address_match m;
    const char *text = n ? lines[n - 1] : "";
    address_lookup(ix, text, &m);
    check_match(ix, text, &m);
    for (guint i = 0; i + 1 < n; i++) {
        if (!g_utf8_validate(lines[i], -1, NULL))
            continue;
        address_lookup(ix, lines[i], &m);
        check_match(ix, lines[i], &m);
        if (findable(lines[i]))
            CHECK((m.found && !strcmp(m.building_id, ids[i])) ||
                      g_str_has_prefix(m.reason, "ambiguous"),
                  "'%s' not found by its own name: %s%s", lines[i], m.found ? "found " : "",
                  m.found ? m.building_name : m.reason);
    }
    address_index_free(ix);
    g_strfreev(lines);
    g_free(s);
    return 0;
}
