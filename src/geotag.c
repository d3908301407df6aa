/* geotag: store → index, chain → JSON. */
#include "gridcc/geotag.h"

#include <stdlib.h>
#include <string.h>

#include "gridcc/levels.h"
#include "gridcc/log.h"

typedef struct load {
    index_builder *b;
    const store_layer *l;
    gc_err *err;
    int rc;
} load;

static int add_feature(void *ud, const store_feature *f)
{
    load *ld = ud;
    ld->rc = index_builder_add(ld->b, ld->l->name, level_parse(ld->l->level), f->fid, f->name,
                               f->code, f->wkb, f->wkb_len, ld->err);
    return ld->rc;
}

gc_index *geotag_build_index(store *s, gc_err *err)
{
    store_layer *layers;
    size_t n;
    if (store_layers_list(s, &layers, &n, err))
        return NULL;
    index_builder *b = index_builder_new();
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        load ld = {b, &layers[i], err, 0};
        store_query q = {.layer = layers[i].name, .want_wkb = true};
        rc = store_features_query(s, &q, NULL, add_feature, &ld, err);
        if (!rc)
            rc = ld.rc;
        if (!rc && layers[i].department[0])
            index_builder_set_department(b, layers[i].name, layers[i].department);
    }
    store_layers_free(layers, n);
    if (rc) {
        index_builder_free(b);
        return NULL;
    }
    return index_builder_finish(b);
}

static json_t *hit_json(const index_hit *h)
{
    if (!h)
        return json_null();
    json_t *o = json_pack("{s:s,s:s}", "id", h->fid, "layer", h->layer);
    json_object_set_new(o, "name", h->name ? json_string(h->name) : json_null());
    json_object_set_new(o, "code", h->code ? json_string(h->code) : json_null());
    return o;
}

json_t *geotag_chain_json(const index_chain *c, double lon, double lat)
{
    json_t *chain = json_object();
    for (int lv = 0; lv < LEVEL_CHAIN_N; lv++)
        json_object_set_new(chain, level_name((gc_level)lv), hit_json(c->chain[lv]));
    json_t *ded = json_array(), *dept = json_array();
    for (size_t i = 0; i < c->nextra; i++) {
        json_t *h = hit_json(c->extra[i]);
        if (c->extra[i]->level == LEVEL_DEPT) {
            const char *d = c->extra[i]->department ? c->extra[i]->department : c->extra[i]->layer;
            json_object_set_new(h, "department", json_string(d));
            json_array_append_new(dept, h);
        } else {
            json_array_append_new(ded, h);
        }
    }
    return json_pack("{s:f,s:f,s:o,s:o,s:o}", "lon", lon, "lat", lat, "chain", chain,
                     "dedicated", ded, "departments", dept);
}
