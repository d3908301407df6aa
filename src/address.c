/* address: building names split into an estate ("松清园小区") and a number
 * ("1" of "1号楼"). A text is matched first to estates by the longest common
 * subsequence of characters (so a missing "小区" or an extra "海淀区学院路"
 * costs nothing), then to the building whose number the text names as a
 * whole number. Ties between estates that the number does not settle are
 * reported as ambiguous, never guessed. */
#include "gridcc/address.h"

#include <glib.h>
#include <ogr_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SCORE 0.6

typedef struct building {
    char *id, *name, *number;
    double lon, lat;
} building;

typedef struct estate {
    gunichar *chars;
    glong n;
    char *name;
    GArray *members;   /* indices into buildings */
} estate;

struct address_index {
    GArray *buildings;   /* building */
    GPtrArray *estates;  /* estate* */
    GHashTable *by_id;   /* id → index + 1 */
};

static gunichar ascii_digit(gunichar c)
{
    return c >= 0xFF10 && c <= 0xFF19 ? '0' + (c - 0xFF10) : c;
}

static bool is_digit(gunichar c)
{
    return c >= '0' && c <= '9';
}

/* Full-width digits to ASCII, spaces dropped: what people type varies. A
 * space between two numbers stays (as one), or "1 203" would read as 1203. */
static gunichar *normalize(const char *text, glong *n)
{
    glong len;
    gunichar *u = g_utf8_to_ucs4_fast(text, -1, &len);
    glong k = 0;
    for (glong i = 0; i < len; i++) {
        gunichar c = ascii_digit(u[i]);
        if (g_unichar_isspace(c)) {
            glong j = i;
            while (j + 1 < len && g_unichar_isspace(u[j + 1]))
                j++;
            if (k && is_digit(u[k - 1]) && j + 1 < len && is_digit(ascii_digit(u[j + 1])))
                u[k++] = ' ';
            i = j;
            continue;
        }
        u[k++] = c;
    }
    *n = k;
    return u;
}

static int lcs(const gunichar *a, glong na, const gunichar *b, glong nb)
{
    int *prev = g_new0(int, nb + 1), *cur = g_new0(int, nb + 1);
    for (glong i = 1; i <= na; i++) {
        for (glong j = 1; j <= nb; j++)
            cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : MAX(prev[j], cur[j - 1]);
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int r = prev[nb];
    g_free(prev);
    g_free(cur);
    return r;
}

static void estate_free(gpointer p)
{
    estate *e = p;
    g_free(e->chars);
    g_free(e->name);
    g_array_free(e->members, TRUE);
    g_free(e);
}

typedef struct build_ctx {
    address_index *ix;
    GHashTable *estates;   /* name → estate* */
} build_ctx;

static void add_named(build_ctx *c, const char *id, const char *name, double lon, double lat)
{
    if (!g_utf8_validate(name, -1, NULL))
        return; /* no text could name it, and reading it as characters would overrun */
    building b = {g_strdup(id), g_strdup(name), NULL, lon, lat};
    /* estate: the name up to its first digit; number: that digit run, read
     * as normalize reads the text (full-width digits are digits) */
    const char *d = name;
    while (*d && !is_digit(ascii_digit(g_utf8_get_char(d))))
        d = g_utf8_next_char(d);
    const char *e = d;
    GString *num = g_string_new(NULL);
    for (gunichar c; *e && is_digit(c = ascii_digit(g_utf8_get_char(e))); e = g_utf8_next_char(e))
        g_string_append_c(num, (char)c);
    b.number = g_string_free(num, FALSE);
    char *ename = g_strndup(name, (gsize)(d - name));
    guint idx = c->ix->buildings->len;
    g_array_append_val(c->ix->buildings, b);
    g_hash_table_insert(c->ix->by_id, b.id, GUINT_TO_POINTER(idx + 1));
    estate *es = g_hash_table_lookup(c->estates, ename);
    if (!es) {
        es = g_new0(estate, 1);
        es->name = ename;
        es->chars = normalize(ename, &es->n);
        es->members = g_array_new(FALSE, FALSE, sizeof(guint));
        g_hash_table_insert(c->estates, es->name, es);
        g_ptr_array_add(c->ix->estates, es);
    } else {
        g_free(ename);
    }
    g_array_append_val(es->members, idx);
}

static int add_building(void *ud, const store_feature *f)
{
    if (!f->name || !f->wkb)
        return 0;
    OGRGeometryH g = NULL;
    if (OGR_G_CreateFromWkb(f->wkb, NULL, &g, (int)f->wkb_len) != OGRERR_NONE || !g)
        return 0;
    OGRGeometryH p = OGR_G_PointOnSurface(g);
    OGR_G_DestroyGeometry(g);
    if (!p)
        return 0;
    add_named(ud, f->fid, f->name, OGR_G_GetX(p, 0), OGR_G_GetY(p, 0));
    OGR_G_DestroyGeometry(p);
    return 0;
}

static address_index *index_new(void)
{
    address_index *ix = g_new0(address_index, 1);
    ix->buildings = g_array_new(FALSE, FALSE, sizeof(building));
    ix->estates = g_ptr_array_new_with_free_func(estate_free);
    ix->by_id = g_hash_table_new(g_str_hash, g_str_equal);
    return ix;
}

address_index *address_index_from(const address_entry *b, size_t n)
{
    address_index *ix = index_new();
    build_ctx c = {ix, g_hash_table_new(g_str_hash, g_str_equal)};
    for (size_t i = 0; i < n; i++)
        if (b[i].id && b[i].name)
            add_named(&c, b[i].id, b[i].name, b[i].lon, b[i].lat);
    g_hash_table_destroy(c.estates);
    return ix;
}

address_index *address_index_build(store *s, gc_err *err)
{
    address_index *ix = index_new();
    store_layer l;
    if (store_layer_for_level(s, "building", &l, NULL))
        return ix;   /* no buildings: every lookup says so */
    free(l.fields_json);
    build_ctx c = {ix, g_hash_table_new(g_str_hash, g_str_equal)};
    store_query q = {.layer = l.name, .want_wkb = true};
    int rc = store_features_query(s, &q, NULL, add_building, &c, err);
    g_hash_table_destroy(c.estates);
    if (rc) {
        address_index_free(ix);
        return NULL;
    }
    return ix;
}

void address_index_free(address_index *ix)
{
    if (!ix)
        return;
    for (guint i = 0; i < ix->buildings->len; i++) {
        building *b = &g_array_index(ix->buildings, building, i);
        g_free(b->id);
        g_free(b->name);
        g_free(b->number);
    }
    g_array_free(ix->buildings, TRUE);
    g_ptr_array_free(ix->estates, TRUE);
    g_hash_table_destroy(ix->by_id);
    g_free(ix);
}

size_t address_index_count(const address_index *ix) { return ix ? ix->buildings->len : 0; }

/* A text snprintf cut to fit ends on a whole character: it goes into JSON,
 * and jansson drops a string that is not UTF-8 without a word. */
static void utf8_fit(char *s)
{
    const char *end;
    if (!g_utf8_validate(s, -1, &end))
        *(char *)end = 0;
}

static void fill(address_match *m, const building *b, double score)
{
    m->found = true;
    m->lon = b->lon;
    m->lat = b->lat;
    m->score = score;
    snprintf(m->building_id, sizeof m->building_id, "%s", b->id);
    snprintf(m->building_name, sizeof m->building_name, "%s", b->name);
    utf8_fit(m->building_id);
    utf8_fit(m->building_name);
}

bool address_by_id(const address_index *ix, const char *id, address_match *out)
{
    memset(out, 0, sizeof *out);
    guint k = ix && id ? GPOINTER_TO_UINT(g_hash_table_lookup(ix->by_id, id)) : 0;
    if (!k) {
        snprintf(out->reason, sizeof out->reason, "no building with id '%s'", id ? id : "");
        utf8_fit(out->reason);
        return false;
    }
    fill(out, &g_array_index(ix->buildings, building, k - 1), 1.0);
    return true;
}

/* Is `num` one of the text's whole digit runs? */
static bool names_number(const gunichar *t, glong n, const char *num)
{
    size_t len = strlen(num);
    if (!len)
        return false;
    for (glong i = 0; i < n;) {
        if (t[i] < '0' || t[i] > '9') {
            i++;
            continue;
        }
        glong j = i;
        while (j < n && t[j] >= '0' && t[j] <= '9')
            j++;
        if ((size_t)(j - i) == len) {
            bool same = true;
            for (size_t k = 0; k < len && same; k++)
                same = t[i + (glong)k] == (gunichar)num[k];
            if (same)
                return true;
        }
        i = j;
    }
    return false;
}

void address_lookup(const address_index *ix, const char *text, address_match *out)
{
    memset(out, 0, sizeof *out);
    if (!ix || !ix->buildings->len) {
        snprintf(out->reason, sizeof out->reason, "no building layer to match addresses against");
        return;
    }
    if (!text || !*text || !g_utf8_validate(text, -1, NULL)) {
        snprintf(out->reason, sizeof out->reason, "empty or not UTF-8");
        return;
    }
    glong n;
    gunichar *t = normalize(text, &n);
    double best = 0;
    const building *hit = NULL;
    int hits = 0;
    const estate *best_estate = NULL;
    char others[256] = "";
    for (guint i = 0; i < ix->estates->len; i++) {
        const estate *e = ix->estates->pdata[i];
        if (e->n < 2)
            continue;
        double score = (double)lcs(e->chars, e->n, t, n) / (double)e->n;
        if (score < MIN_SCORE || score < best - 1e-9)
            continue;
        if (score > best + 1e-9) {
            best = score;
            best_estate = e;
            hit = NULL;
            hits = 0;
            others[0] = 0;
        }
        for (guint k = 0; k < e->members->len; k++) {
            const building *b =
                &g_array_index(ix->buildings, building, g_array_index(e->members, guint, k));
            if (names_number(t, n, b->number)) {
                if (hit && strcmp(hit->name, b->name)) {
                    size_t used = strlen(others);
                    snprintf(others + used, sizeof others - used, "%s%s", used ? ", " : "",
                             b->name);
                }
                if (!hit)
                    hit = b;
                hits++;
            }
        }
    }
    g_free(t);
    utf8_fit(others);
    if (hits == 1) {
        fill(out, hit, best);
    } else if (hits > 1) {
        snprintf(out->reason, sizeof out->reason, "ambiguous: %s or %s", hit->name, others);
    } else if (best_estate) {
        snprintf(out->reason, sizeof out->reason,
                 "%s found, but no building of it with a number the address names",
                 best_estate->name);
    } else {
        snprintf(out->reason, sizeof out->reason, "no estate or building name like it");
    }
    utf8_fit(out->reason);
}
