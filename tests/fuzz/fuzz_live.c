/* fuzz_live: live_msg_parse, a /live client's text message (auth, subscribe
 * with topics, bbox, grid ids and since, ping). Besides not crashing: an
 * error names its field; a subscription read is one the bus can use (known
 * topics, a finite ordered bbox, non-empty UTF-8 ids, since -1 or >= 0); and
 * a message read, written again as JSON, reads back the same. */
#include <math.h>

#include "fuzz.h"
#include "gridcc/live.h"

static json_t *format(const live_msg *m)
{
    json_t *j = json_pack("{s:s}", "type", m->type_name);
    if (m->type == LIVE_MSG_AUTH)
        json_object_set_new(j, "token", json_string(m->token));
    if (m->type != LIVE_MSG_SUBSCRIBE)
        return j;
    json_t *t = json_array();
    for (unsigned i = 0; live_topic_name(i); i++)
        if (m->filter.topics & 1u << i)
            json_array_append_new(t, json_string(live_topic_name(i)));
    json_object_set_new(j, "topics", t);
    if (m->filter.has_box)
        json_object_set_new(j, "bbox",
                            json_pack("[f,f,f,f]", m->filter.box[0], m->filter.box[1],
                                      m->filter.box[2], m->filter.box[3]));
    if (m->filter.ids) {
        json_t *g = json_array();
        for (char **id = m->filter.ids; *id; id++)
            json_array_append_new(g, json_string(*id));
        json_object_set_new(j, "grid", g);
    }
    if (m->since >= 0)
        json_object_set_new(j, "since", json_integer(m->since));
    return j;
}

static void check_msg(const live_msg *m)
{
    CHECK(m->type != LIVE_MSG_BAD, "read without error but BAD");
    CHECK(m->type_name && g_utf8_validate(m->type_name, -1, NULL), "type name");
    CHECK(m->type != LIVE_MSG_AUTH || m->token, "auth without a token");
    if (m->type != LIVE_MSG_SUBSCRIBE)
        return;
    unsigned all = 0;
    for (unsigned i = 0; live_topic_name(i); i++)
        all |= 1u << i;
    CHECK(m->filter.topics && !(m->filter.topics & ~all), "topics %#x", m->filter.topics);
    if (m->filter.has_box) {
        const double *b = m->filter.box;
        for (int i = 0; i < 4; i++)
            CHECK(isfinite(b[i]), "bbox[%d] %g", i, b[i]);
        CHECK(b[0] <= b[2] && b[1] <= b[3] && b[1] >= -90 && b[3] <= 90, "bbox %g,%g,%g,%g", b[0],
              b[1], b[2], b[3]);
    }
    if (m->filter.ids) {
        CHECK(m->filter.ids[0], "an empty id list instead of NULL");
        for (char **id = m->filter.ids; *id; id++)
            CHECK(**id && g_utf8_validate(*id, -1, NULL), "id '%s'", *id);
    }
    CHECK(m->since >= -1, "since %lld", (long long)m->since);
}

static bool same(const live_msg *a, const live_msg *b)
{
    if (a->type != b->type || g_strcmp0(a->type_name, b->type_name) ||
        g_strcmp0(a->token, b->token) || a->since != b->since ||
        a->filter.topics != b->filter.topics || a->filter.has_box != b->filter.has_box ||
        memcmp(a->filter.box, b->filter.box, sizeof a->filter.box) ||
        !a->filter.ids != !b->filter.ids)
        return false;
    return !a->filter.ids ||
           g_strv_equal((const char *const *)a->filter.ids, (const char *const *)b->filter.ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    live_msg m;
    gc_err err = {0};
    int rc = live_msg_parse((const char *)data, size, &m, &err);
    if (rc) {
        CHECK(rc == GC_EINVAL, "rc %d", rc);
        CHECK(err.field[0] && err.msg[0], "an error without field or message");
        CHECK(m.type == LIVE_MSG_BAD || m.type == LIVE_MSG_AUTH || m.type == LIVE_MSG_SUBSCRIBE,
              "an error for type %d", m.type);
        live_msg_clear(&m);
        return 0;
    }
    check_msg(&m);
    json_t *j = format(&m);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text, "not serialisable");
    live_msg again;
    gc_err err2 = {0};
    CHECK(live_msg_parse(text, strlen(text), &again, &err2) == 0, "'%s' refused: %s", text,
          err2.msg);
    CHECK(same(&m, &again), "'%s' reads back differently", text);
    live_msg_clear(&again);
    free(text);
    json_decref(j);
    live_msg_clear(&m);
    return 0;
}
