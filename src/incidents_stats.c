/* incidents_stats: what the cases add up to per unit of the hierarchy
 * (totals, statuses, major classes, overdue, on-time rate, handling time,
 * satisfaction) and the monthly 红旗网格 ranking of grids. Reads only. */
#include "gridcc/incidents.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

typedef struct unit_stats {
    char *id, *name;
    int64_t total, overdue_now, finished, on_time, rated, rating_sum, satisfied;
    GHashTable *by_status, *by_category;   /* name → count (GINT_TO_POINTER) */
    GArray *handle_s;                      /* report → close, seconds */
} unit_stats;

static void unit_free(gpointer p)
{
    unit_stats *u = p;
    g_free(u->id);
    g_free(u->name);
    g_hash_table_destroy(u->by_status);
    g_hash_table_destroy(u->by_category);
    g_array_free(u->handle_s, TRUE);
    g_free(u);
}

typedef struct stats_ctx {
    const char *col, *level;
    int64_t now;
    GHashTable *units;   /* id → unit_stats */
} stats_ctx;

static void count(GHashTable *t, const char *k)
{
    gpointer old = g_hash_table_lookup(t, k);
    g_hash_table_replace(t, g_strdup(k), GINT_TO_POINTER(GPOINTER_TO_INT(old) + 1));
}

static int stats_row(void *ud, json_t *row)
{
    stats_ctx *x = ud;
    const char *id = jstr(row, x->col);
    if (!id)
        id = "";   /* cases outside every unit of the level: listed as "" */
    unit_stats *u = g_hash_table_lookup(x->units, id);
    if (!u) {
        u = g_new0(unit_stats, 1);
        u->id = g_strdup(id);
        json_t *unit = json_object_get(json_object_get(json_object_get(row, "chain"), "chain"),
                                       x->level);
        u->name = g_strdup(json_string_value(json_object_get(unit, "name")));
        u->by_status = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        u->by_category = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        u->handle_s = g_array_new(FALSE, FALSE, sizeof(double));
        g_hash_table_insert(x->units, u->id, u);
    }
    u->total++;
    const char *status = jstr(row, "status");
    count(u->by_status, status);
    /* counted by major class: 市容环境, 街面秩序 … */
    char major[16];
    snprintf(major, sizeof major, "%s", jstr(row, "category"));
    major[strcspn(major, ".")] = 0;
    count(u->by_category, major);
    json_t *dl = json_object_get(row, "deadline");
    json_t *closed = json_object_get(row, "closed_at");
    int st = incident_status_parse(status);
    /* 超期: an open case past its deadline, or one that went past a deadline
     * before (escalation gives it a new one, but it stays an overdue case
     * until it is closed) */
    if (!json_is_integer(closed) && st != INC_REJECTED &&
        ((json_is_integer(dl) && json_integer_value(dl) < x->now) || jint(row, "overdue_count") > 0))
        u->overdue_now++;
    if (json_is_integer(closed) && st != INC_REJECTED) {
        u->finished++;
        if (jint(row, "overdue_count") == 0)
            u->on_time++;
        double d = (double)(json_integer_value(closed) - jint(row, "created_at"));
        g_array_append_val(u->handle_s, d);
    }
    json_t *r = json_object_get(row, "rating");
    if (json_is_integer(r)) {
        u->rated++;
        u->rating_sum += json_integer_value(r);
        if (json_integer_value(r) >= 4)
            u->satisfied++;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_t *counts_json(GHashTable *t)
{
    json_t *o = json_object();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v))
        json_object_set_new(o, k, json_integer(GPOINTER_TO_INT(v)));
    return o;
}

static json_t *unit_json(unit_stats *u)
{
    json_t *o = json_pack("{s:s,s:I,s:o,s:o,s:I,s:I}", "id", u->id, "total",
                          (json_int_t)u->total, "by_status", counts_json(u->by_status),
                          "by_category", counts_json(u->by_category), "overdue",
                          (json_int_t)u->overdue_now, "finished", (json_int_t)u->finished);
    json_object_set_new(o, "name", u->name ? json_string(u->name) : json_null());
    json_object_set_new(o, "on_time_rate",
                        u->finished ? json_real((double)u->on_time / (double)u->finished)
                                    : json_null());
    if (u->handle_s->len) {
        double *d = (double *)(void *)u->handle_s->data;
        size_t n = u->handle_s->len;
        qsort(d, n, sizeof *d, cmp_double);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += d[i];
        /* nearest-rank 90th percentile */
        size_t rank = (size_t)ceil(0.9 * (double)n);
        json_object_set_new(o, "handling_mean_s", json_real(sum / (double)n));
        json_object_set_new(o, "handling_p90_s", json_real(d[rank ? rank - 1 : 0]));
    } else {
        json_object_set_new(o, "handling_mean_s", json_null());
        json_object_set_new(o, "handling_p90_s", json_null());
    }
    json_object_set_new(o, "rated", json_integer(u->rated));
    json_object_set_new(o, "satisfaction",
                        u->rated ? json_real((double)u->rating_sum / (double)u->rated)
                                 : json_null());
    json_object_set_new(o, "satisfied_rate",
                        u->rated ? json_real((double)u->satisfied / (double)u->rated)
                                 : json_null());
    return o;
}

static int collect_units(store *s, const char *level, int64_t from, int64_t to, int64_t now,
                         GHashTable **units, gc_err *err)
{
    static const char *levels[][2] = {{"grid", "grid_id"},
                                      {"community", "community_id"},
                                      {"street", "street_id"},
                                      {"district", "district_id"}};
    const char *col = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++)
        if (!strcmp(level, levels[i][0]))
            col = levels[i][1];
    if (!col)
        return gc_fail(err, GC_EINVAL, "level", "level must be grid, community, street or district");
    stats_ctx x = {col, level, now, g_hash_table_new_full(g_str_hash, g_str_equal, NULL, unit_free)};
    store_incident_filter f = {.from = from, .to = to, .oldest_first = true};
    if (store_incidents_query(s, &f, NULL, stats_row, &x, err)) {
        g_hash_table_destroy(x.units);
        return GC_EIO;
    }
    *units = x.units;
    return 0;
}

/* GLib 2.74 (Debian 12) has no g_hash_table_get_values_as_ptr_array. */
static GPtrArray *units_array(GHashTable *units)
{
    GPtrArray *a = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, units);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(a, v);
    return a;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    return strcmp((*(unit_stats *const *)a)->id, (*(unit_stats *const *)b)->id);
}

int incident_stats(store *s, const char *level, int64_t from, int64_t to, int64_t now,
                   json_t **out, gc_err *err)
{
    GHashTable *units;
    if (collect_units(s, level, from, to, now, &units, err))
        return err ? err->code : GC_EINVAL;
    GPtrArray *list = units_array(units);
    g_ptr_array_sort(list, by_id);
    json_t *arr = json_array();
    for (guint i = 0; i < list->len; i++)
        json_array_append_new(arr, unit_json(list->pdata[i]));
    g_ptr_array_free(list, TRUE);
    g_hash_table_destroy(units);
    *out = json_pack("{s:s,s:I,s:I,s:o}", "level", level, "from", (json_int_t)from, "to",
                     (json_int_t)to, "units", arr);
    return 0;
}

/* The 红旗网格 score, out of 100: on-time rate 40, satisfaction 30 (mean
 * rating / 5), closure rate 20 (finished / reported), minus 2 per case
 * overdue now (at most 10). Grids with no case in the month are not ranked. */
static double grid_score(unit_stats *u)
{
    double on_time = u->finished ? (double)u->on_time / (double)u->finished : 0;
    double sat = u->rated ? (double)u->rating_sum / (double)u->rated / 5.0 : 0.6;
    double closure = u->total ? (double)u->finished / (double)u->total : 0;
    double penalty = fmin(10.0, 2.0 * (double)u->overdue_now);
    return 40 * on_time + 30 * sat + 20 * closure - penalty;
}

static gint by_score(gconstpointer a, gconstpointer b)
{
    unit_stats *x = *(unit_stats *const *)a, *y = *(unit_stats *const *)b;
    double d = grid_score(y) - grid_score(x);
    if (d != 0)
        return d > 0 ? 1 : -1;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;   /* more cases handled ranks higher on a tie */
    return strcmp(x->id, y->id);
}

int incident_ranking(store *s, int64_t from, int64_t to, int64_t now, json_t **out, gc_err *err)
{
    GHashTable *units;
    if (collect_units(s, "grid", from, to, now, &units, err))
        return err ? err->code : GC_EINVAL;
    g_hash_table_remove(units, "");   /* cases outside every grid */
    GPtrArray *list = units_array(units);
    g_ptr_array_sort(list, by_score);
    json_t *arr = json_array();
    for (guint i = 0; i < list->len; i++) {
        json_t *u = unit_json(list->pdata[i]);
        json_object_set_new(u, "rank", json_integer(i + 1));
        json_object_set_new(u, "score", json_real(round(grid_score(list->pdata[i]) * 100) / 100));
        json_array_append_new(arr, u);
    }
    g_ptr_array_free(list, TRUE);
    g_hash_table_destroy(units);
    *out = json_pack("{s:I,s:I,s:s,s:o}", "from", (json_int_t)from, "to", (json_int_t)to,
                     "formula",
                     "40*on_time_rate + 30*mean_rating/5 + 20*finished/total - 2*overdue(max 10)",
                     "grids", arr);
    return 0;
}
