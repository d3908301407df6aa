/* fuzz_open311_form: an Open311 POST requests body (urlencoded) as the
 * handler reads it, into the reporter and props that go into the incident.
 * Besides not crashing: every parameter that goes into them arrives there,
 * under its name and with its value (none silently dropped: a value JSON
 * cannot hold would be), every attribute[CODE] as the CODE sent, and the
 * result writes out as JSON. */
#include "fuzz.h"
#include "open311.h"

static void check_value(json_t *o, const char *key, const char *want, const char *what)
{
    const char *got = json_string_value(json_object_get(o, key));
    CHECK(got, "%s '%s' sent as '%s' is missing", what, key, want);
    CHECK(!strcmp(got, want), "%s '%s': sent '%s', kept '%s'", what, key, want, got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *ge = NULL;
    GHashTable *p = open311_form_params(size ? data : NULL, size, &ge);
    if (!p) {
        CHECK(ge && ge->message && *ge->message, "a refusal without a message");
        g_error_free(ge);
        return 0;
    }
    json_t *rep, *props;
    open311_form_people(p, &rep, &props);
    static const char *who[] = {"email", "first_name", "last_name",
                                "phone", "device_id",  "account_id"};
    for (size_t i = 0; i < G_N_ELEMENTS(who); i++) {
        const char *v = g_hash_table_lookup(p, who[i]);
        if (v && *v)
            check_value(rep, who[i], v, "reporter");
        else
            CHECK(!json_object_get(rep, who[i]), "empty %s kept", who[i]);
    }
    const char *media = g_hash_table_lookup(p, "media_url");
    if (media && *media)
        check_value(props, "media_url", media, "props");
    json_t *attrs = json_object_get(props, "open311_attributes");
    CHECK(json_is_object(attrs), "no open311_attributes");
    size_t n = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *name = k;
        size_t len = strlen(name);
        if (g_str_has_prefix(name, "attribute[") && len > 11 && name[len - 1] == ']') {
            char *code = g_strndup(name + 10, len - 11);
            check_value(attrs, code, v, "attribute");
            g_free(code);
            n++;
        }
    }
    CHECK(json_object_size(attrs) == n, "%zu attributes kept of %zu sent", json_object_size(attrs),
          n);
    char *out = json_dumps(rep, 0), *out2 = json_dumps(props, 0);
    CHECK(out && out2 && g_utf8_validate(out, -1, NULL) && g_utf8_validate(out2, -1, NULL),
          "not written as JSON");
    free(out);
    free(out2);
    json_decref(rep);
    json_decref(props);
    g_hash_table_destroy(p);
    return 0;
}
