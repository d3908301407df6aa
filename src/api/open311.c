/* open311: an Open311 GeoReport v2 server at /open311/v2 over our incidents,
 * so any Open311 client (city apps, SeeClickFix-style tools) works unchanged.
 *   GET  discovery.{json,xml}                  (also at /open311/)
 *   GET  services.{json,xml}                   our categories, one service per leaf class
 *   GET  services/{code}.{json,xml}            service definition (attributes)
 *   POST requests.{json,xml}                   form-encoded, api_key = a gridcc token
 *   GET  requests.{json,xml}                   filters of the spec
 *   GET  requests/{id}.{json,xml}, tokens/{token}.{json,xml}
 * Status maps from our loop: rejected, closed and evaluated are "closed",
 * everything before is "open". Who sees what follows the API's rules: with
 * no api_key (and no Authorization header) a caller gets discovery and the
 * public view of finished cases (/api/public/incidents: no personal data,
 * places rounded); with a key, what that user may see through the API;
 * services and POST need a key. Errors are the spec's list of {code,
 * description}. Answers are built as JSON and written as XML by one
 * converter (libxml2's writer), so the two formats cannot drift apart. */
#include <errno.h>
#include <libxml/xmlwriter.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gridcc/address.h"
#include "api.h"
#include "open311.h"
#include "gridcc/incidents.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

#define BASE "/open311/v2/"
#define DEFAULT_DAYS 90
#define MAX_RESULTS 1000

typedef enum { FMT_JSON, FMT_XML } fmt;

/* ---- output ---- */

static const char *item_name(const char *list)
{
    static const char *map[][2] = {
        {"services", "service"},     {"service_requests", "request"}, {"attributes", "attribute"},
        {"values", "value"},         {"errors", "error"},             {"endpoints", "endpoint"},
        {"formats", "format"}};
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
        if (!strcmp(list, map[i][0]))
            return map[i][1];
    return "item";
}

static void xml_value(xmlTextWriterPtr w, const char *name, json_t *v)
{
    xmlTextWriterStartElement(w, BAD_CAST name);
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) xml_value(w, k, c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) xml_value(w, item_name(name), c);
    } else if (json_is_string(v)) {
        xmlTextWriterWriteString(w, BAD_CAST json_string_value(v));
    } else if (json_is_integer(v)) {
        xmlTextWriterWriteFormatString(w, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        xmlTextWriterWriteFormatString(w, "%.7f", json_real_value(v));
    } else if (json_is_boolean(v)) {
        xmlTextWriterWriteString(w, BAD_CAST(json_is_true(v) ? "true" : "false"));
    }
    xmlTextWriterEndElement(w);
}

/* Sends root (an array named list, or an object named list) in the format
 * asked for. Steals root. */
static void reply(http_req *r, int status, fmt f, const char *list, json_t *root)
{
    if (!root) {   /* a value json_pack refused (a bug, not the client's) */
        http_reply_error(r, 500, "internal", NULL, "the answer could not be encoded");
        return;
    }
    if (f == FMT_JSON) {
        char *s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        http_reply(r, status, "application/json; charset=utf-8", s, strlen(s));
        free(s);
        json_decref(root);
        return;
    }
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    xmlTextWriterStartDocument(w, "1.0", "utf-8", NULL);
    xml_value(w, list, root);
    xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w);
    http_reply(r, status, "text/xml; charset=utf-8", (const char *)xmlBufferContent(buf),
               (size_t)xmlBufferLength(buf));
    xmlBufferFree(buf);
    json_decref(root);
}

static void reply_error(http_req *r, int status, fmt f, const char *fmtstr, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(http_req *r, int status, fmt f, const char *fmtstr, ...)
{
    va_list ap;
    va_start(ap, fmtstr);
    char *raw = g_strdup_vprintf(fmtstr, ap);
    va_end(ap);
    /* messages quote paths and parameters, which may not be UTF-8 */
    char *msg = g_utf8_make_valid(raw, -1);
    g_free(raw);
    reply(r, status, f, "errors",
          json_pack("[{s:i,s:s}]", "code", status, "description", msg));
    g_free(msg);
}

static char *iso(int64_t t)
{
    GDateTime *d = g_date_time_new_from_unix_local(t);
    char *s = g_date_time_format(d, "%Y-%m-%dT%H:%M:%S%:z");
    g_date_time_unref(d);
    return s;
}

static json_t *iso_json(json_t *v)
{
    if (!json_is_integer(v))
        return json_null();
    char *s = iso(json_integer_value(v));
    json_t *j = json_string(s);
    g_free(s);
    return j;
}

/* "/open311/v2/requests/2026-000001.json" → rest "requests/2026-000001", fmt */
static bool split_path(http_req *r, const char *prefix, char *rest, size_t len, fmt *f)
{
    const char *p = r->path + strlen(prefix);
    const char *dot = strrchr(p, '.');
    if (!dot)
        return false;
    if (!strcmp(dot, ".json"))
        *f = FMT_JSON;
    else if (!strcmp(dot, ".xml"))
        *f = FMT_XML;
    else
        return false;
    snprintf(rest, len, "%.*s", (int)(dot - p), p);
    return true;
}

/* ---- services ---- */

static bool is_leaf(json_t *cats, json_t *c)
{
    const char *code = json_string_value(json_object_get(c, "code"));
    size_t i;
    json_t *o;
    json_array_foreach(cats, i, o) {
        const char *parent = json_string_value(json_object_get(o, "parent"));
        if (parent && !strcmp(parent, code))
            return false;
    }
    return true;
}

static const char *group_of(json_t *cats, json_t *c)
{
    const char *parent = json_string_value(json_object_get(c, "parent"));
    size_t i;
    json_t *o;
    json_array_foreach(cats, i, o)
        if (parent && !strcmp(json_string_value(json_object_get(o, "code")), parent))
            return json_string_value(json_object_get(o, "name"));
    return json_string_value(json_object_get(c, "name"));
}

/* Components (部件) carry their asset tag as an optional attribute. */
static bool has_metadata(json_t *c)
{
    return !g_strcmp0(json_string_value(json_object_get(c, "kind")), "component");
}

static json_t *service_json(json_t *cats, json_t *c)
{
    const char *kind = json_string_value(json_object_get(c, "kind"));
    char *desc = g_strdup_printf("%s (%s, %s)", json_string_value(json_object_get(c, "name")),
                                 !g_strcmp0(kind, "component") ? "部件 component" : "事件 event",
                                 json_string_value(json_object_get(c, "code")));
    char *kw = g_strdup_printf("%s,%s", group_of(cats, c),
                               json_string_value(json_object_get(c, "name")));
    json_t *s = json_pack("{s:O,s:O,s:s,s:b,s:s,s:s,s:s}", "service_code",
                          json_object_get(c, "code"), "service_name", json_object_get(c, "name"),
                          "description", desc, "metadata", has_metadata(c), "type", "realtime",
                          "keywords", kw, "group", group_of(cats, c));
    g_free(desc);
    g_free(kw);
    return s;
}

static json_t *active_services(api_env *e)
{
    json_t *cats = NULL;
    if (store_categories(e->store, &cats, NULL))
        return json_array();
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(cats, i, c)
        if (json_integer_value(json_object_get(c, "active")) && is_leaf(cats, c))
            json_array_append_new(out, service_json(cats, c));
    json_decref(cats);
    return out;
}

static json_t *find_service(api_env *e, const char *code)
{
    json_t *svcs = active_services(e), *hit = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
        if (!strcmp(json_string_value(json_object_get(s, "service_code")), code))
            hit = json_incref(s);
    json_decref(svcs);
    return hit;
}

static json_t *definition(json_t *svc)
{
    json_t *attrs = json_array();
    if (json_is_true(json_object_get(svc, "metadata")))
        json_array_append_new(
            attrs, json_pack("{s:b,s:s,s:s,s:b,s:s,s:i,s:s,s:[]}", "variable", 1, "code",
                             "component_id", "datatype", "string", "required", 0,
                             "datatype_description", "部件编号: the asset tag on the component",
                             "order", 1, "description", "部件编号 (component asset tag)",
                             "values"));
    return json_pack("{s:O,s:o}", "service_code", json_object_get(svc, "service_code"),
                     "attributes", attrs);
}

/* ---- requests ---- */

/* One request as the spec shapes it. public_view: the anonymous view (the
 * public case list's): no address beyond the building, the place rounded. */
static json_t *request_json(api_env *e, json_t *row, bool public_view)
{
    const char *status = json_string_value(json_object_get(row, "status"));
    bool closed = incident_status_is_closed(incident_status_parse(status));
    json_t *pub = incident_public(row);   /* masked description, rounded place */
    json_t *pp = json_object_get(pub, "properties");
    json_t *cat = NULL;
    store_category_get(e->store, json_string_value(json_object_get(row, "category")), &cat,
                       NULL);
    const char *addr = public_view ? NULL : json_string_value(json_object_get(row, "address"));
    json_t *bld = json_object_get(json_object_get(json_object_get(row, "chain"), "chain"),
                                  "building");
    if (!addr && json_is_object(bld))
        addr = json_string_value(json_object_get(bld, "name"));
    const char *notes = json_string_value(json_object_get(row, "result"));
    json_t *lon = json_object_get(row, "lon"), *lat = json_object_get(row, "lat");
    if (public_view) {
        json_t *c = json_object_get(json_object_get(pub, "geometry"), "coordinates");
        lon = json_array_get(c, 0);
        lat = json_array_get(c, 1);
    }
    json_t *props = json_object_get(row, "props");
    json_t *o = json_object();
    json_object_set(o, "service_request_id", json_object_get(row, "case_no"));
    json_object_set_new(o, "status", json_string(closed ? "closed" : "open"));
    json_object_set_new(o, "status_notes", notes ? json_string(notes) : json_null());
    json_object_set_new(o, "service_name",
                        cat ? json_incref(json_object_get(cat, "name")) : json_null());
    json_object_set(o, "service_code", json_object_get(row, "category"));
    json_object_set(o, "description", json_object_get(pp, "description"));
    json_t *dept = json_object_get(row, "department");
    json_object_set_new(o, "agency_responsible", json_is_string(dept) ? json_incref(dept) : json_null());
    json_object_set_new(o, "service_notice", json_null());
    json_object_set_new(o, "requested_datetime", iso_json(json_object_get(row, "created_at")));
    json_object_set_new(o, "updated_datetime", iso_json(json_object_get(row, "updated_at")));
    json_object_set_new(o, "expected_datetime",
                        closed ? json_null() : iso_json(json_object_get(row, "deadline")));
    json_object_set_new(o, "address", addr ? json_string(addr) : json_null());
    json_t *bid = json_object_get(row, "building_id");
    json_object_set_new(o, "address_id", json_is_string(bid) ? json_incref(bid) : json_null());
    json_object_set_new(o, "zipcode", json_null());
    json_object_set_new(o, "lat", json_is_number(lat) ? json_real(json_number_value(lat)) : json_null());
    json_object_set_new(o, "long", json_is_number(lon) ? json_real(json_number_value(lon)) : json_null());
    json_t *media = json_object_get(props, "media_url");
    json_object_set_new(o, "media_url", json_is_string(media) ? json_incref(media) : json_null());
    json_decref(cat);
    json_decref(pub);
    return o;
}

static const char *param(GHashTable *p, const char *k)
{
    const char *v = p ? g_hash_table_lookup(p, k) : NULL;
    return v && *v ? v : NULL;   /* the spec: an empty argument is no argument */
}

static bool number(const char *s, double *v)
{
    return gc_parse_double(s, "n", -INFINITY, INFINITY, v, NULL) == 0;
}

/* Who is calling: the Authorization header (checked before the handler
 * ran), else the spec's api_key. need: anonymous callers are refused.
 * Replies with the spec's error list and returns false when refused. */
static bool caller(http_req *r, api_env *e, fmt f, const char *key, unsigned roles, bool need,
                   gc_who *who)
{
    *who = r->who;
    if (!who->id && key && *key) {
        store_user u;
        gc_err err = {0};
        if (!api_check_token(e, key, ROLE_ANY, &u, &err)) {
            reply_error(r, 403, f, "api_key is not valid");
            return false;
        }
        api_who_from(who, &u);
    }
    if (!who->id) {
        if (need)
            reply_error(r, 403, f, "an api_key is required (a gridcc token)");
        return !need;
    }
    if (!(who->role & roles)) {
        reply_error(r, 403, f, "role %s may not do this", role_name(who->role));
        return false;
    }
    return true;
}

GHashTable *open311_form_params(const void *data, size_t len, GError **ge)
{
    /* an empty body has no data pointer at all */
    char *body = g_strndup(len ? (const char *)data : "", len);
    GHashTable *p = g_uri_parse_params(body, -1, "&", G_URI_PARAMS_WWW_FORM, ge);
    g_free(body);
    return p;
}

void open311_form_people(GHashTable *p, json_t **reporter, json_t **properties)
{
    json_t *rep = json_object(), *props = json_object(), *attrs = json_object();
    static const char *who[] = {"email", "first_name", "last_name", "phone", "device_id",
                                "account_id"};
    for (size_t i = 0; i < G_N_ELEMENTS(who); i++)
        if (param(p, who[i]))
            json_object_set_new(rep, who[i], json_string(param(p, who[i])));
    if (param(p, "media_url"))
        json_object_set_new(props, "media_url", json_string(param(p, "media_url")));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *name = k;
        size_t len = strlen(name);
        if (!strncmp(name, "attribute[", 10) && len > 11 && name[len - 1] == ']') {
            char *code2 = g_strndup(name + 10, len - 11);
            json_object_set_new(attrs, code2, json_string(v));
            g_free(code2);
        }
    }
    json_object_set_new(props, "open311_attributes", attrs);
    json_object_set_new(props, "channel", json_string("open311"));
    *reporter = rep;
    *properties = props;
}

static void h_post(http_req *r, api_env *e, fmt f)
{
    GError *ge = NULL;
    GHashTable *p = open311_form_params(r->body->data, r->body->len, &ge);
    if (!p) {
        reply_error(r, 400, f, "the body is not application/x-www-form-urlencoded: %s",
                    ge ? ge->message : "unreadable");
        g_clear_error(&ge);
        return;
    }
    gc_who u;
    gc_err err = {0};
    /* who may report: the same roles as POST /api/incidents */
    if (!caller(r, e, f, param(p, "api_key"), ROLE_ANY & ~ROLE_PLANNER, true, &u))
        goto out;
    const char *code = param(p, "service_code");
    if (!code) {
        reply_error(r, 400, f, "service_code is required");
        goto out;
    }
    json_t *svc = find_service(e, code);
    if (!svc) {
        reply_error(r, 404, f, "service_code '%s' is not a service of this endpoint", code);
        goto out;
    }
    json_decref(svc);
    const char *slat = param(p, "lat"), *slon = param(p, "long");
    const char *addr = param(p, "address_string"), *addr_id = param(p, "address_id");
    double lat = 0, lon = 0;
    if ((slat && !slon) || (slon && !slat)) {
        reply_error(r, 400, f, "lat and long go together: %s is missing", slat ? "long" : "lat");
        goto out;
    }
    if (slat && (!number(slat, &lat) || lat < -90 || lat > 90)) {
        reply_error(r, 400, f, "lat must be a number from -90 to 90");
        goto out;
    }
    if (slon && (!number(slon, &lon) || lon < -180 || lon > 180)) {
        reply_error(r, 400, f, "long must be a number from -180 to 180");
        goto out;
    }
    json_t *in = json_pack("{s:s}", "category", code);
    const char *desc = param(p, "description");
    json_object_set_new(in, "description", json_string(desc ? desc : "(no description)"));
    json_object_set_new(in, "flags", json_array());
    address_match m = {0};
    if (slat) {
        json_object_set_new(in, "lon", json_real(lon));
        json_object_set_new(in, "lat", json_real(lat));
    } else if (addr_id && address_by_id(api_addresses(e), addr_id, &m)) {
        incident_place_by_address(in, &m);
    } else if (addr) {
        address_lookup(api_addresses(e), addr, &m);
        incident_place_by_address(in, &m);
    } else {
        json_decref(in);
        reply_error(r, 400, f,
                    "a location is required: lat and long, address_string or address_id");
        goto out;
    }
    if (addr)
        json_object_set_new(in, "address", json_string(addr));
    json_t *rep, *props;
    open311_form_people(p, &rep, &props);
    json_object_set_new(in, "reporter", rep);
    json_object_set_new(in, "props", props);
    inc_actor actor = {u.id, u.name, u.role, u.department[0] ? u.department : NULL};
    json_t *row;
    bool existing;
    int rc = incident_report(e->store, e->index, &actor, in, NULL, (int64_t)time(NULL),
                             &row, &existing, &err);
    json_decref(in);
    if (rc) {
        reply_error(r, err.code == GC_EINVAL ? 400 : 500, f, "%s", err.msg);
        goto out;
    }
    api_incidents_changed(e);
    json_t *acct = json_object_get(rep, "account_id");
    reply(r, 200, f, "service_requests",
          json_pack("[{s:O,s:n,s:O}]", "service_request_id", json_object_get(row, "case_no"),
                    "service_notice", "account_id", acct ? acct : json_null()));
    json_decref(row);
out:
    g_hash_table_destroy(p);
}

typedef struct list_ctx {
    json_t *list;
    api_env *e;
    bool public_view;
} list_ctx;

static int add_request(void *ud, json_t *row)
{
    list_ctx *c = ud;
    json_array_append_new(c->list, request_json(c->e, row, c->public_view));
    return 0;
}

static void h_requests(http_req *r, api_env *e, fmt f, const gc_who *who)
{
    store_incident_filter flt = {.limit = MAX_RESULTS};
    bool public_view = who->role == ROLE_NONE;
    const char *ids = http_query(r, "service_request_id");
    json_t *list = json_array();
    if (ids && *ids) {
        flt.ids = ids;   /* the spec: ids override every other argument */
    } else {
        const char *sd = http_query(r, "start_date"), *ed = http_query(r, "end_date");
        if (sd && *sd && !gc_time_parse(sd, &flt.from)) {
            json_decref(list);
            reply_error(r, 400, f, "start_date must be a w3c date-time");
            return;
        }
        if (ed && *ed && !gc_time_parse(ed, &flt.to)) {
            json_decref(list);
            reply_error(r, 400, f, "end_date must be a w3c date-time");
            return;
        }
        if (flt.to)
            flt.to += 1;   /* inclusive */
        int64_t now = (int64_t)time(NULL);
        if (!flt.from)
            flt.from = (flt.to ? flt.to : now) - DEFAULT_DAYS * 86400;
        const char *st = http_query(r, "status");
        if (st && *st) {
            bool open = strstr(st, "open") != NULL, closed = strstr(st, "closed") != NULL;
            if (!open && !closed) {
                json_decref(list);
                reply_error(r, 400, f, "status must be open or closed");
                return;
            }
            if (open != closed)
                flt.statuses = open ? "reported,registered,dispatched,handled,verified"
                                    : "rejected,closed,evaluated";
        }
        const char *sc = http_query(r, "service_code");
        if (sc && *sc)
            flt.category = sc;
        const char *lim = http_query(r, "limit");   /* a common extension */
        if (lim && *lim) {
            int64_t v;
            if (gc_parse_int(lim, "limit", 1, MAX_RESULTS, &v, NULL)) {
                json_decref(list);
                reply_error(r, 400, f, "limit must be a whole number from 1 to %d", MAX_RESULTS);
                return;
            }
            flt.limit = v;
        }
    }
    /* the same rules as the API: anonymous callers get the public view */
    if (public_view)
        flt.statuses = "closed,evaluated";
    else
        incidents_visibility(who, &flt);
    list_ctx ctx = {list, e, public_view};
    gc_err err = {0};
    if (store_incidents_query(e->store, &flt, NULL, add_request, &ctx, &err)) {
        json_decref(list);
        reply_error(r, 500, f, "%s", err.msg);
        return;
    }
    reply(r, 200, f, "service_requests", list);
}

static void h_get(http_req *r, void *ud)
{
    api_env *e = ud;
    char rest[512];
    fmt f = FMT_JSON;
    if (!split_path(r, BASE, rest, sizeof rest, &f)) {
        reply_error(r, 404, strstr(r->path, ".xml") ? FMT_XML : FMT_JSON,
                    "no such resource: %s (ask for .json or .xml)", r->path);
        return;
    }
    gc_who who;
    bool open = !strcmp(rest, "discovery") || !strcmp(rest, "requests") ||
                !strncmp(rest, "requests/", 9) || !strncmp(rest, "tokens/", 7);
    if (!caller(r, e, f, http_query(r, "api_key"), ROLE_ANY, !open, &who))
        return;
    bool public_view = who.role == ROLE_NONE;
    if (!strcmp(rest, "discovery")) {
        char url[512];
        snprintf(url, sizeof url, "http://%s/open311/v2", r->host[0] ? r->host : "localhost");
        reply(r, 200, f, "discovery",
              json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:s,s:[s,s]}]}", "changeset",
                        "2026-11-24T00:00:00Z", "contact", "the command center's operators",
                        "key_service", "an api_key is a gridcc token (gridcc user add … --role resident)",
                        "endpoints", "specification", "http://wiki.open311.org/GeoReport_v2",
                        "url", url, "changeset", "2026-11-24T00:00:00Z", "type", "production",
                        "formats", "text/xml", "application/json"));
        return;
    }
    if (!strcmp(rest, "services")) {
        reply(r, 200, f, "services", active_services(e));
        return;
    }
    if (!strncmp(rest, "services/", 9)) {
        json_t *svc = find_service(e, rest + 9);
        if (!svc) {
            reply_error(r, 404, f, "service_code '%s' is not a service of this endpoint", rest + 9);
            return;
        }
        reply(r, 200, f, "service_definition", definition(svc));
        json_decref(svc);
        return;
    }
    if (!strcmp(rest, "requests")) {
        h_requests(r, e, f, &who);
        return;
    }
    if (!strncmp(rest, "requests/", 9)) {
        json_t *row;
        /* service_request_id is the case number (2026-000123), not our row id */
        if (!strchr(rest + 9, '-') || store_incident_get(e->store, rest + 9, &row, NULL)) {
            reply_error(r, 404, f, "no service request '%s'", rest + 9);
            return;
        }
        /* what the caller may not see does not exist: anonymous callers see
         * finished cases only, as on the public list */
        bool visible = public_view ? !g_strcmp0(json_string_value(json_object_get(row, "status")),
                                                "closed") ||
                                         !g_strcmp0(json_string_value(json_object_get(row, "status")),
                                                    "evaluated")
                                   : incidents_may_see(&who, row);
        if (!visible) {
            json_decref(row);
            reply_error(r, 404, f, "no service request '%s'", rest + 9);
            return;
        }
        reply(r, 200, f, "service_requests", json_pack("[o]", request_json(e, row, public_view)));
        json_decref(row);
        return;
    }
    if (!strncmp(rest, "tokens/", 7)) {
        json_t *list = json_array();
        store_incident_filter flt = {.token = rest + 7, .limit = 1};
        json_t *hit = NULL;
        list_ctx ctx = {list, e, true};
        if (!store_incidents_query(e->store, &flt, NULL, add_request, &ctx, NULL))
            hit = json_array_get(list, 0);
        if (!hit) {
            json_decref(list);
            reply_error(r, 404, f, "no token '%s'", rest + 7);
            return;
        }
        reply(r, 200, f, "service_requests",
              json_pack("[{s:O,s:s}]", "service_request_id",
                        json_object_get(hit, "service_request_id"), "token", rest + 7));
        json_decref(list);
        return;
    }
    reply_error(r, 404, f, "no such resource: %s", r->path);
}

static void h_post_route(http_req *r, void *ud)
{
    char rest[64];
    fmt f = FMT_JSON;
    if (!split_path(r, BASE, rest, sizeof rest, &f) || strcmp(rest, "requests")) {
        reply_error(r, 404, f, "POST goes to requests.json or requests.xml");
        return;
    }
    h_post(r, ud, f);
}

static void h_discovery_root(http_req *r, void *ud)
{
    /* /open311/discovery.json is where clients look first */
    char tail[64];
    snprintf(tail, sizeof tail, "%s", r->path + strlen("/open311/"));
    snprintf(r->path, sizeof r->path, BASE "%s", tail);
    h_get(r, ud);
}

void open311_register(http_server *h, api_env *e)
{
    /* Open311 clients send api_key, not a header; the handlers check it (and
     * a header, when one is sent) by the API's rules */
    unsigned any = ROLE_ANY | HTTP_OPTIONAL;
    http_route(h, "GET", BASE "*", any, 0, h_get, e);
    http_route(h, "POST", BASE "*", any, 0, h_post_route, e);
    http_route(h, "GET", "/open311/discovery.json", HTTP_PUBLIC, 0, h_discovery_root, e);
    http_route(h, "GET", "/open311/discovery.xml", HTTP_PUBLIC, 0, h_discovery_root, e);
}
