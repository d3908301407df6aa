/* live: a /live client's message as live_msg_parse reads it. Each bad field
 * is named (the error goes back to the client as {"field": …}); a subscribe
 * keeps its type when its filter is bad, so the bus can ask an
 * unauthenticated client to authenticate first. */
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "gridcc/live.h"

static int parse(const char *text, live_msg *m, gc_err *err)
{
    gc_err_clear(err);
    return live_msg_parse(text, strlen(text), m, err);
}

static void test_subscribe(void **state)
{
    live_msg m;
    gc_err err;
    assert_int_equal(parse("{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\"],"
                           "\"bbox\":[116.3,39.9,116.4,40.05],\"grid\":\"g1\",\"chain\":[\"c1\"],"
                           "\"since\":\"1200\"}",
                           &m, &err),
                     0);
    assert_int_equal(m.type, LIVE_MSG_SUBSCRIBE);
    assert_int_equal(m.filter.topics, 1u << 0 | 1u << 1);
    assert_string_equal(live_topic_name(0), "incidents");
    assert_true(m.filter.has_box);
    assert_true(m.filter.box[3] == 40.05);
    assert_string_equal(m.filter.ids[0], "g1");
    assert_string_equal(m.filter.ids[1], "c1");
    assert_null(m.filter.ids[2]);
    assert_int_equal(m.since, 1200);
    live_msg_clear(&m);

    assert_int_equal(parse("{\"type\":\"subscribe\"}", &m, &err), 0);
    assert_int_equal(m.filter.topics, 255);
    assert_null(m.filter.ids);
    assert_int_equal(m.since, -1);
    live_msg_clear(&m);
}

static void test_bad_fields_named(void **state)
{
    static const struct {
        const char *text, *field;
        live_msg_type type;
    } cases[] = {
        {"not json", "message", LIVE_MSG_BAD},
        {"[1]", "type", LIVE_MSG_BAD},
        {"{\"type\":\"auth\"}", "token", LIVE_MSG_AUTH},
        {"{\"type\":\"subscribe\",\"topics\":[\"weather\"]}", "topics", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"topics\":[]}", "topics", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"bbox\":[116,40,115]}", "bbox", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"bbox\":[117,40,116,41]}", "bbox", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"grid\":[]}", "grid", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"unit\":[\"u1\",\"\"]}", "unit", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"since\":-3}", "since", LIVE_MSG_SUBSCRIBE},
        {"{\"type\":\"subscribe\",\"since\":\"yesterday\"}", "since", LIVE_MSG_SUBSCRIBE},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        live_msg m;
        gc_err err;
        if (parse(cases[i].text, &m, &err) != GC_EINVAL || strcmp(err.field, cases[i].field) ||
            m.type != cases[i].type || !err.msg[0])
            fail_msg("%s: field '%s' type %d: %s", cases[i].text, err.field, m.type, err.msg);
        live_msg_clear(&m);
    }
}

static void test_other_types(void **state)
{
    live_msg m;
    gc_err err;
    assert_int_equal(parse("{\"type\":\"ping\"}", &m, &err), 0);
    assert_int_equal(m.type, LIVE_MSG_PING);
    live_msg_clear(&m);
    assert_int_equal(parse("{\"type\":\"dance\"}", &m, &err), 0);
    assert_int_equal(m.type, LIVE_MSG_OTHER);
    assert_string_equal(m.type_name, "dance");
    live_msg_clear(&m);
    assert_int_equal(parse("{\"type\":\"auth\",\"token\":\"t\"}", &m, &err), 0);
    assert_string_equal(m.token, "t");
    live_msg_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_bad_fields_named),
        cmocka_unit_test(test_other_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
