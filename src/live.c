/* live: see live.h. Everything here runs on the GLib loop's thread. */
#include "gridcc/live.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"

#define FRAME_MAX 65536      /* bytes of items a frame carries (one may exceed it) */
#define FRAME_ITEMS 1000
#define DB_BATCH 500         /* change-log rows read at a time for a cursor behind the ring */
#define CLOSE_AUTH 4401
#define CLOSE_RESUME 4000
#define CLOSE_RESYNC 4002

enum {
    T_INCIDENTS = 1, T_POSITIONS = 2, T_ALERTS = 4, T_CAMERAS = 8, T_LAYERS = 16,
    T_WORKERS = 32, T_CATEGORIES = 64, T_TIME_LIMITS = 128, T_ALL = 255
};
static const struct {
    const char *name;
    unsigned bit;
} topics[] = {{"incidents", T_INCIDENTS}, {"positions", T_POSITIONS}, {"alerts", T_ALERTS},
              {"cameras", T_CAMERAS},     {"layers", T_LAYERS},       {"workers", T_WORKERS},
              {"categories", T_CATEGORIES}, {"time_limits", T_TIME_LIMITS}};

static unsigned topic_bit(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(topics); i++)
        if (!strcmp(topics[i].name, name))
            return topics[i].bit;
    return 0;
}

#define NIDS 5
/* One change (or one position) as clients get it: its item text made once,
 * and what filters look at. Shared by the ring and every client holding it. */
typedef struct entry {
    int refs;
    int64_t seq;
    unsigned topic;
    bool has_loc;
    double box[4];
    char *ids[NIDS];           /* the units it lies in, any level */
    char *department;          /* incidents: the department it is dispatched to */
    int64_t key, t;            /* positions: the worker and the fix time */
    char *text;
    size_t len;
} entry;

static entry *entry_ref(entry *e)
{
    e->refs++;
    return e;
}

static void entry_unref(entry *e)
{
    if (!e || --e->refs)
        return;
    for (int i = 0; i < NIDS; i++)
        g_free(e->ids[i]);
    g_free(e->department);
    g_free(e->text);
    g_free(e);
}

/* The bounding box of a GeoJSON geometry's coordinates. */
static void box_add(json_t *c, double box[4], bool *any)
{
    if (!json_is_array(c))
        return;
    if (json_array_size(c) >= 2 && json_is_number(json_array_get(c, 0))) {
        double x = json_number_value(json_array_get(c, 0)),
               y = json_number_value(json_array_get(c, 1));
        if (!*any) {
            box[0] = box[2] = x;
            box[1] = box[3] = y;
            *any = true;
        }
        box[0] = fmin(box[0], x);
        box[1] = fmin(box[1], y);
        box[2] = fmax(box[2], x);
        box[3] = fmax(box[3], y);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v) box_add(v, box, any);
}

static void entry_index(entry *e, json_t *data)
{
    json_t *geom = json_object_get(data, "geometry");
    if (json_is_object(geom))
        box_add(json_object_get(geom, "coordinates"), e->box, &e->has_loc);
    json_t *props = json_object_get(data, "properties");
    if (!json_is_object(props))
        props = data;
    static const char *keys[NIDS] = {"grid_id", "community_id", "street_id", "district_id",
                                     "building_id"};
    for (int i = 0; i < NIDS; i++) {
        const char *v = json_string_value(json_object_get(props, keys[i]));
        if (v)
            e->ids[i] = g_strdup(v);
    }
    if (e->topic == T_INCIDENTS)
        e->department = g_strdup(json_string_value(json_object_get(props, "department")));
}

static char *json_quote(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *t = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return t;
}

char *live_change_text(const store_change *c)
{
    char *id = json_quote(c->id);
    char *t = g_strdup_printf("{\"seq\":%lld,\"topic\":\"%s\",\"id\":%s,\"ts\":\"%s\",\"data\":%s}",
                              (long long)c->seq, c->topic, id, c->ts, c->data);
    free(id);
    return t;
}

typedef struct client client;

struct live {
    http_server *srv;
    store *s;
    live_opts o;
    live_auth_fn auth;
    void *auth_ud;
    /* the ring: the newest changes, oldest first, circular */
    entry **ring;
    int cap, start, count;
    int64_t floor;             /* every change after this seq is in the ring */
    int64_t head;              /* the newest seq read */
    GHashTable *latest;        /* worker → entry: newest position */
    GList *clients;
    GPtrArray *dirty;          /* clients with news, woken at the next tick */
    guint tick, sweep;
    uint64_t frames, items, kicked;
    live_decorate_fn decorate;
    void *decorate_ud;
};

static entry *entry_from_change(live *l, const store_change *c)
{
    entry *e = g_new0(entry, 1);
    e->refs = 1;
    e->seq = c->seq;
    e->topic = topic_bit(c->topic);
    json_t *data = json_loads(c->data, 0, NULL);
    bool decorated = data && l->decorate && l->decorate(l->decorate_ud, c->topic, data);
    if (data)
        entry_index(e, data);
    if (decorated) {
        /* the store's precision: what it wrote reads back the same */
        char *d = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(12));
        store_change dc = *c;
        dc.data = d;
        e->text = live_change_text(&dc);
        free(d);
    } else {
        e->text = live_change_text(c);
    }
    json_decref(data);
    e->len = strlen(e->text);
    return e;
}

typedef live_filter filter;

struct client {
    live *l;
    http_ws *ws;
    GList *link;
    store_user user;
    bool authed, subscribed, dirty, kicked, catching_up;
    filter f;
    int64_t cursor;            /* every change up to here was sent or passed over */
    GHashTable *pos;           /* worker → entry: positions not yet sent */
    GQueue ctrl;               /* control messages (char*) not yet sent */
    gint64 opened, progress;   /* monotonic µs: connected, last frame out */
    gint64 waiting_since;      /* news waiting since (0: nothing waits) */
    guint auth_timer, kick_timer;
    int kick_status;
    char kick_reason[124];
};

/* ---- the ring ---- */

static entry *ring_at(live *l, int i) { return l->ring[(l->start + i) % l->cap]; }

static void ring_push(live *l, entry *e)
{
    if (l->count == l->cap) {
        entry *old = l->ring[l->start];
        l->floor = old->seq;
        entry_unref(old);
        l->start = (l->start + 1) % l->cap;
        l->count--;
    }
    l->ring[(l->start + l->count) % l->cap] = e;
    l->count++;
}

/* The index of the first ring entry with seq > after (count if none). */
static int ring_find(live *l, int64_t after)
{
    int lo = 0, hi = l->count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ring_at(l, mid)->seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- filters ---- */

static bool filter_match(const filter *f, const entry *e)
{
    if (!(f->topics & e->topic))
        return false;
    if (f->department && e->topic == T_INCIDENTS && g_strcmp0(f->department, e->department))
        return false;
    if (f->has_box && e->has_loc &&
        (e->box[2] < f->box[0] || e->box[0] > f->box[2] || e->box[3] < f->box[1] ||
         e->box[1] > f->box[3]))
        return false;
    if (f->ids && e->has_loc) {
        for (char **id = f->ids; *id; id++)
            for (int i = 0; i < NIDS; i++)
                if (e->ids[i] && !strcmp(e->ids[i], *id))
                    return true;
        return false;
    }
    return true;
}

static void filter_clear(filter *f)
{
    g_strfreev(f->ids);
    g_free(f->department);
    memset(f, 0, sizeof *f);
}

/* ---- sending ---- */

static void wake(client *c)
{
    live *l = c->l;
    if (!c->waiting_since)
        c->waiting_since = g_get_monotonic_time();
    if (c->dirty || c->kicked)
        return;
    c->dirty = true;
    g_ptr_array_add(l->dirty, c);
}

static void flush(client *c);

static gboolean on_tick(gpointer ud)
{
    live *l = ud;
    l->tick = 0;
    for (guint i = 0; i < l->dirty->len; i++) {
        client *c = g_ptr_array_index(l->dirty, i);
        c->dirty = false;
        flush(c);
    }
    g_ptr_array_set_size(l->dirty, 0);
    return G_SOURCE_REMOVE;
}

static void arm_tick(live *l)
{
    if (!l->tick && l->dirty->len)
        l->tick = g_timeout_add(l->o.tick_ms, on_tick, l);
}

static void kick(client *c, int status, const char *why);

/* Replies wait in a short queue: a client that keeps asking without reading
 * the answers is closed instead of growing it. */
#define CTRL_MAX 64

static void send_ctrl(client *c, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        return;
    if (c->ctrl.length >= CTRL_MAX) {
        free(text);
        kick(c, 1008, "too many replies left unread");
        return;
    }
    g_queue_push_tail(&c->ctrl, text);
    http_ws_want_write(c->ws);
}

static void send_error(client *c, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_error(client *c, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *raw = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *m = g_utf8_make_valid(raw, -1);   /* it may quote what the client sent */
    g_free(raw);
    json_t *j = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", m);
    if (field)
        json_object_set_new(j, "field", json_string(field));
    g_free(m);
    send_ctrl(c, j);
}

static gboolean force_close(gpointer ud)
{
    client *c = ud;
    c->kick_timer = 0;
    http_ws_close(c->ws, c->kick_status, c->kick_reason);
    return G_SOURCE_REMOVE;
}

/* Closes the connection once the control messages queued (the reason) are
 * out, or after 2 s for a client that reads nothing. */
static void kick(client *c, int status, const char *why)
{
    if (c->kicked)
        return;
    c->kicked = true;
    c->l->kicked++;
    c->kick_status = status;
    snprintf(c->kick_reason, sizeof c->kick_reason, "%s", why);
    log_warn("live", "closing client peer=%s user=%s status=%d reason=%s", http_ws_peer(c->ws),
             c->user.name, status, why);
    c->kick_timer = g_timeout_add_seconds(2, force_close, c);
    http_ws_want_write(c->ws);
}

static bool pending(client *c)
{
    return c->ctrl.length || (c->subscribed && (c->cursor < c->l->head || g_hash_table_size(c->pos)));
}

static void frame_add(GString *b, size_t *n, const entry *e)
{
    if (*n)
        g_string_append_c(b, ',');
    g_string_append_len(b, e->text, (gssize)e->len);
    (*n)++;
}

typedef struct db_fill {
    client *c;
    GString *b;
    size_t n;
    int64_t first;       /* the first seq read */
} db_fill;

static int db_change(void *ud, const store_change *ch)
{
    db_fill *d = ud;
    if (ch->seq > d->c->l->head)   /* committed, but not yet on the bus: next time */
        return 1;
    if (!d->first)
        d->first = ch->seq;
    entry *e = entry_from_change(d->c->l, ch);
    if (filter_match(&d->c->f, e))
        frame_add(d->b, &d->n, e);
    d->c->cursor = ch->seq;
    entry_unref(e);
    return d->b->len >= FRAME_MAX || d->n >= FRAME_ITEMS;
}

/* Changes after the cursor that match, as many as fit a frame. */
static void send_resync(client *c, int64_t since);

static void fill_changes(client *c, GString *b, size_t *n)
{
    live *l = c->l;
    if (c->cursor < l->floor) {   /* behind the ring: read the store */
        db_fill d = {c, b, *n, 0};
        gc_err err = {0};
        int64_t before = c->cursor;
        if (store_changes_since(l->s, c->cursor, DB_BATCH, db_change, &d, &err)) {
            log_error("live", "reading the change log: %s", err.msg);
            *n = d.n;
            return;   /* tried again at the next wake-up */
        }
        *n = d.n;
        int64_t first = store_first_seq(l->s);
        if (d.first > before + 1 && first > before + 1) {
            /* pruned while this client was catching up: what it missed is gone */
            c->cursor = l->head;
            send_resync(c, before);
            return;
        }
        if (c->cursor == before)    /* nothing there (rows rolled back): skip the hole */
            c->cursor = l->floor;
        if (c->cursor < l->floor)
            return;
    }
    for (int i = ring_find(l, c->cursor); i < l->count; i++) {
        if (b->len >= FRAME_MAX || *n >= FRAME_ITEMS)
            return;
        entry *e = ring_at(l, i);
        if (filter_match(&c->f, e))
            frame_add(b, n, e);
        c->cursor = e->seq;
    }
    if (c->cursor < l->head)
        c->cursor = l->head;
}

/* One message out: a reply first, then the close of a kicked client, then a
 * frame of changes. Returns whether more waits to go. */
static bool write_one(client *c)
{
    live *l = c->l;
    char *msg = g_queue_pop_head(&c->ctrl);
    if (!msg && c->kicked) {
        if (c->kick_timer)
            g_source_remove(c->kick_timer);
        c->kick_timer = 0;
        http_ws_close(c->ws, c->kick_status, c->kick_reason);
        return false;
    }
    if (msg) {
        int rc = http_ws_send(c->ws, msg, strlen(msg));
        g_free(msg);
        return !rc && (pending(c) || c->kicked);
    }
    if (!c->subscribed)
        return false;
    GString *b = g_string_sized_new(FRAME_MAX + 4096);
    g_string_append(b, "{\"type\":\"changes\",\"changes\":[");
    size_t n = 0;
    if (c->cursor < l->head)
        fill_changes(c, b, &n);
    if (c->cursor >= l->head && g_hash_table_size(c->pos)) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, c->pos);
        while (b->len < FRAME_MAX && n < FRAME_ITEMS && g_hash_table_iter_next(&it, &k, &v)) {
            frame_add(b, &n, v);
            g_hash_table_iter_remove(&it);
        }
    }
    g_string_append(b, "]}");
    int rc = 0;
    if (n) {
        rc = http_ws_send(c->ws, b->str, b->len);
        l->frames++;
        l->items += n;
    }
    c->progress = g_get_monotonic_time();
    g_string_free(b, TRUE);
    if (!pending(c))
        c->waiting_since = 0;
    if (rc)
        return false;
    if (c->catching_up && c->cursor >= l->head) {
        c->catching_up = false;
        send_ctrl(c, json_pack("{s:s,s:I}", "type", "caught_up", "seq", (json_int_t)c->cursor));
        return false;   /* send_ctrl asked for the write */
    }
    return pending(c);
}

static void on_writable(void *conn)
{
    client *c = conn;
    if (write_one(c))
        http_ws_want_write(c->ws);
}

/* From the tick: writes while the socket takes it, and asks the loop to wait
 * for POLLOUT only when it does not. Every POLLOUT change wakes GLib's loop
 * (an eventfd write and one more pass over every connection's source): two
 * a frame cost a sixth of the daemon's CPU at 1,000 clients (bench_fanout:
 * 18.4 s against 15.2 s, p99 40 against 33 ms). */
#define FLUSH_FRAMES 8
static void flush(client *c)
{
    for (int i = 0; i < FLUSH_FRAMES; i++) {
        if (!http_ws_writable_now(c->ws)) {
            http_ws_want_write(c->ws);
            return;
        }
        if (!write_one(c))
            return;
    }
    http_ws_want_write(c->ws);   /* a long catch-up: the others get their turn first */
}

/* Told to resume from where it is, then closed. */
static void too_far_behind(client *c)
{
    char why[64];
    snprintf(why, sizeof why, "resume since=%lld", (long long)c->cursor);
    send_ctrl(c, json_pack("{s:s,s:I,s:s}", "type", "resume", "since", (json_int_t)c->cursor,
                           "message", "too far behind: reconnect and subscribe with this since"));
    kick(c, CLOSE_RESUME, why);
}

/* Changes after since cannot be given (pruned, or since is ahead of the log):
 * the client reloads a snapshot; what comes after seq follows. */
static void send_resync(client *c, int64_t since)
{
    live *l = c->l;
    int64_t first = store_first_seq(l->s);
    const char *why = since > l->head ? "since is ahead of the change log: reload a snapshot, "
                                        "then changes after seq follow"
                                      : "changes after since are no longer kept: reload a "
                                        "snapshot, then changes after seq follow";
    log_info("live", "resync peer=%s since=%lld first=%lld head=%lld", http_ws_peer(c->ws),
             (long long)since, (long long)first, (long long)l->head);
    c->catching_up = false;
    send_ctrl(c, json_pack("{s:s,s:I,s:I,s:I,s:s}", "type", "resync", "seq", (json_int_t)l->head,
                           "since", (json_int_t)since, "first", (json_int_t)first,
                           "message", why));
}

/* ---- news ---- */

typedef struct pull {
    live *l;
    int n;
} pull;

static int pulled(void *ud, const store_change *ch)
{
    pull *p = ud;
    entry *e = entry_from_change(p->l, ch);
    ring_push(p->l, e);
    p->l->head = ch->seq;
    p->n++;
    return 0;
}

void live_pull(live *l)
{
    pull p = {l, 0};
    gc_err err = {0};
    if (store_changes_since(l->s, l->head, 0, pulled, &p, &err)) {
        log_error("live", "reading the change log: %s", err.msg);
        return;
    }
    if (!p.n)
        return;
    for (GList *i = l->clients; i; i = i->next) {
        client *c = i->data;
        if (!c->subscribed || c->kicked)
            continue;
        wake(c);
    }
    arm_tick(l);
}

void live_position(live *l, int64_t user_id, int64_t t, double lon, double lat,
                   const char *const ids[3], json_t *feature)
{
    entry *old = g_hash_table_lookup(l->latest, &user_id);
    if (old && old->t >= t) {
        json_decref(feature);
        return;
    }
    entry *e = g_new0(entry, 1);
    e->refs = 1;
    e->seq = l->head;
    e->topic = T_POSITIONS;
    e->key = user_id;
    e->t = t;
    e->has_loc = true;
    e->box[0] = e->box[2] = lon;
    e->box[1] = e->box[3] = lat;
    for (int i = 0; i < 3; i++)
        e->ids[i] = ids && ids[i] ? g_strdup(ids[i]) : NULL;
    char *data = json_dumps(feature, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(feature);
    e->text = g_strdup_printf("{\"seq\":%lld,\"topic\":\"positions\",\"id\":\"%lld\",\"t\":%lld,"
                              "\"data\":%s}",
                              (long long)l->head, (long long)user_id, (long long)t, data);
    free(data);
    e->len = strlen(e->text);
    g_hash_table_replace(l->latest, &e->key, e);
    for (GList *i = l->clients; i; i = i->next) {
        client *c = i->data;
        if (!c->subscribed || c->kicked || !filter_match(&c->f, e))
            continue;
        g_hash_table_replace(c->pos, &e->key, entry_ref(e));
        wake(c);
    }
    arm_tick(l);
}

/* ---- a client's messages ---- */

static bool authenticate(client *c, const char *token)
{
    gc_err err = {0};
    if (!c->l->auth(c->l->auth_ud, token, &c->user, &err)) {
        log_warn("live", "refused peer=%s: %s", http_ws_peer(c->ws), err.msg);
        send_error(c, "unauthorized", "token", "%s", err.msg);
        kick(c, CLOSE_AUTH, "unauthorized");
        return false;
    }
    c->authed = true;
    log_info("live", "client authenticated peer=%s user=%s role=%s", http_ws_peer(c->ws),
             c->user.name, role_name(c->user.role));
    return true;
}

/* Reads the subscription into f, or says what is wrong (field, message). */
static bool parse_filter(json_t *m, filter *f, const char **field, char *why, size_t wn)
{
    memset(f, 0, sizeof *f);
    json_t *t = json_object_get(m, "topics");
    *field = "topics";
    if (!t) {
        f->topics = T_ALL;
    } else if (!json_is_array(t) || !json_array_size(t)) {
        snprintf(why, wn, "topics must be a non-empty array of topic names");
        return false;
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v)
        {
            unsigned bit = json_is_string(v) ? topic_bit(json_string_value(v)) : 0;
            if (!bit) {
                snprintf(why, wn, "unknown topic %s (known: incidents, positions, alerts, "
                         "cameras, layers, workers, categories, time_limits)",
                         json_is_string(v) ? json_string_value(v) : "(not a string)");
                return false;
            }
            f->topics |= bit;
        }
    }
    json_t *bb = json_object_get(m, "bbox");
    if (bb && !json_is_null(bb)) {
        *field = "bbox";
        if (!json_is_array(bb) || json_array_size(bb) != 4) {
            snprintf(why, wn, "bbox must be [west, south, east, north] in degrees");
            return false;
        }
        for (int i = 0; i < 4; i++) {
            json_t *v = json_array_get(bb, (size_t)i);
            if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                snprintf(why, wn, "bbox must be four numbers [west, south, east, north]");
                return false;
            }
            f->box[i] = json_number_value(v);
        }
        if (f->box[0] > f->box[2] || f->box[1] > f->box[3] || f->box[1] < -90 || f->box[3] > 90) {
            snprintf(why, wn, "bbox: west must not exceed east, nor south north, within ±90°");
            return false;
        }
        f->has_box = true;
    }
    GPtrArray *ids = g_ptr_array_new();
    static const char *keys[] = {"grid", "grids", "chain", "unit"};
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        json_t *g = json_object_get(m, keys[k]);
        if (!g || json_is_null(g))
            continue;
        *field = keys[k];
        if (json_is_string(g) && json_string_length(g)) {
            g_ptr_array_add(ids, g_strdup(json_string_value(g)));
            continue;
        }
        bool ok = json_is_array(g) && json_array_size(g) > 0;
        size_t i;
        json_t *v;
        json_array_foreach(g, i, v)
        {
            if (!json_is_string(v) || !json_string_length(v))
                ok = false;
            else
                g_ptr_array_add(ids, g_strdup(json_string_value(v)));
        }
        if (!ok) {
            snprintf(why, wn, "%s must be a unit id or a non-empty array of unit ids", keys[k]);
            g_ptr_array_set_free_func(ids, g_free);
            g_ptr_array_free(ids, TRUE);
            return false;
        }
    }
    if (ids->len) {
        g_ptr_array_add(ids, NULL);
        f->ids = (char **)g_ptr_array_free(ids, FALSE);
    } else {
        g_ptr_array_free(ids, TRUE);
    }
    return true;
}

int live_filter_check(json_t *m, const char *topic, json_t *data, gc_err *err)
{
    filter f;
    const char *field;
    char why[256];
    if (!parse_filter(m, &f, &field, why, sizeof why)) {
        filter_clear(&f);
        return gc_fail(err, GC_EINVAL, field, "%s", why);
    }
    entry e = {.topic = topic ? topic_bit(topic) : 0};
    if (data)
        entry_index(&e, data);
    bool match = filter_match(&f, &e);
    for (int i = 0; i < NIDS; i++)
        g_free(e.ids[i]);
    g_free(e.department);
    filter_clear(&f);
    return match;
}

static bool parse_since(json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v)) {
        int64_t n;
        if (!gc_parse_int(json_string_value(v), "since", 0, INT64_MAX, &n, NULL)) {
            *out = n;
            return true;
        }
    }
    return false;
}

int live_msg_parse(const char *data, size_t len, live_msg *m, gc_err *err)
{
    memset(m, 0, sizeof *m);
    m->since = -1;
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!j)
        return gc_fail(err, GC_EINVAL, "message", "not JSON: %s (line %d, column %d)", je.text,
                       je.line, je.column);
    int rc = 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) {
        rc = gc_fail(err, GC_EINVAL, "type",
                     "a message is a JSON object with a type: auth, subscribe or ping");
        goto out;
    }
    m->type_name = g_strdup(type);
    if (!strcmp(type, "auth")) {
        m->type = LIVE_MSG_AUTH;
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            rc = gc_fail(err, GC_EINVAL, "token", "auth needs a token (a string)");
        else
            m->token = g_strdup(tok);
    } else if (!strcmp(type, "ping")) {
        m->type = LIVE_MSG_PING;
    } else if (!strcmp(type, "subscribe")) {
        m->type = LIVE_MSG_SUBSCRIBE;
        const char *field;
        char why[256];
        json_t *js = json_object_get(j, "since");
        if (!parse_filter(j, &m->filter, &field, why, sizeof why))
            rc = gc_fail(err, GC_EINVAL, field, "%s", why);
        else if (js && !json_is_null(js) && !parse_since(js, &m->since))
            rc = gc_fail(err, GC_EINVAL, "since",
                         "since must be a change-log sequence number (>= 0)");
    } else {
        m->type = LIVE_MSG_OTHER;
    }
out:
    json_decref(j);
    return rc;
}

void live_msg_clear(live_msg *m)
{
    g_free(m->type_name);
    g_free(m->token);
    filter_clear(&m->filter);
    memset(m, 0, sizeof *m);
    m->since = -1;
}

const char *live_topic_name(unsigned i)
{
    return i < G_N_ELEMENTS(topics) ? topics[i].name : NULL;
}

/* Takes m's filter (m->filter is left empty). */
static void subscribe(client *c, live_msg *m)
{
    live *l = c->l;
    live_pull(l);   /* head as committed now: a since from a fresh snapshot is not "ahead" */
    int64_t since = m->since;
    filter_clear(&c->f);
    c->f = m->filter;
    memset(&m->filter, 0, sizeof m->filter);
    /* what a client sees is not only its own choice: a department's user
     * the cases dispatched to it (as /api/incidents), a grid worker's phone
     * no cameras (the registry is read at the desks: cameras_api) */
    g_free(c->f.department);
    c->f.department = c->user.role == ROLE_DEPARTMENT ? g_strdup(c->user.department) : NULL;
    if (c->user.role == ROLE_WORKER)
        c->f.topics &= ~(unsigned)T_CAMERAS;
    filter f = c->f;
    json_t *reply = json_pack("{s:s,s:I}", "type", "subscribed", "seq", (json_int_t)l->head);
    json_t *tn = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(topics); i++)
        if (f.topics & topics[i].bit)
            json_array_append_new(tn, json_string(topics[i].name));
    json_object_set_new(reply, "topics", tn);
    bool resync = false;
    if (since >= 0) {
        int64_t first = store_first_seq(l->s);
        /* the log holds every change after first - 1 */
        if (since > l->head || (first > 0 && since < first - 1) || (first == 0 && since < l->head)) {
            resync = true;
            c->cursor = l->head;
            c->catching_up = false;
        } else {
            c->cursor = since;
            c->catching_up = true;
        }
        json_object_set_new(reply, "since", json_integer(since));
    } else if (!c->subscribed) {
        c->cursor = l->head;   /* live from now on */
    }
    c->subscribed = true;
    g_hash_table_remove_all(c->pos);
    if (f.topics & T_POSITIONS) {  /* positions are state: start with the newest of each */
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, l->latest);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (filter_match(&c->f, v))
                g_hash_table_replace(c->pos, &((entry *)v)->key, entry_ref(v));
    }
    if (c->auth_timer) {
        g_source_remove(c->auth_timer);
        c->auth_timer = 0;
    }
    send_ctrl(c, reply);
    if (resync) {
        send_resync(c, since);
    } else if (c->catching_up && c->cursor >= l->head) {
        c->catching_up = false;
        send_ctrl(c, json_pack("{s:s,s:I}", "type", "caught_up", "seq", (json_int_t)l->head));
    }
}

static void on_message(void *conn, const char *data, size_t len)
{
    client *c = conn;
    if (c->kicked)
        return;
    live_msg m;
    gc_err err = {0};
    int rc = live_msg_parse(data, len, &m, &err);
    if (rc && m.type != LIVE_MSG_SUBSCRIBE) {
        send_error(c, "invalid", err.field, "%s", err.msg);
    } else if (m.type == LIVE_MSG_AUTH) {
        if (c->authed)
            send_error(c, "invalid", "type", "already authenticated");
        else if (authenticate(c, m.token))
            send_ctrl(c, json_pack("{s:s,s:s,s:s}", "type", "authenticated", "user", c->user.name,
                                   "role", role_name(c->user.role)));
    } else if (m.type == LIVE_MSG_PING) {
        send_ctrl(c, json_pack("{s:s,s:I}", "type", "pong", "seq", (json_int_t)c->l->head));
    } else if (!c->authed) {
        send_error(c, "unauthorized", "token",
                   "authenticate first: {\"type\":\"auth\",\"token\":\"…\"}, an access_token "
                   "query parameter or an Authorization header");
    } else if (rc) {
        send_error(c, "invalid", err.field, "%s", err.msg);
    } else if (m.type == LIVE_MSG_SUBSCRIBE) {
        subscribe(c, &m);
    } else {
        send_error(c, "invalid", "type", "unknown message type %s (auth, subscribe, ping)",
                   m.type_name);
    }
    live_msg_clear(&m);
}

static gboolean on_auth_timeout(gpointer ud)
{
    client *c = ud;
    c->auth_timer = 0;
    if (!c->authed) {
        send_error(c, "unauthorized", "token", "no token within %d s", c->l->o.auth_timeout_s);
        kick(c, CLOSE_AUTH, "authentication timeout");
    } else if (!c->subscribed) {
        send_error(c, "invalid", "type", "no subscription within %d s", c->l->o.auth_timeout_s);
        kick(c, 4008, "no subscription");
    }
    return G_SOURCE_REMOVE;
}

static void *on_open(http_ws *ws, const http_req *r, void *ud)
{
    live *l = ud;
    client *c = g_new0(client, 1);
    c->l = l;
    c->ws = ws;
    c->opened = c->progress = g_get_monotonic_time();
    c->pos = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)entry_unref);
    g_queue_init(&c->ctrl);
    l->clients = g_list_prepend(l->clients, c);
    c->link = l->clients;
    send_ctrl(c, json_pack("{s:s,s:I}", "type", "hello", "seq", (json_int_t)l->head));
    const char *tok = http_query(r, "access_token");
    if (!tok && !g_ascii_strncasecmp(r->authorization, "Bearer ", 7))
        tok = r->authorization + 7;
    if (tok && authenticate(c, tok))
        send_ctrl(c, json_pack("{s:s,s:s,s:s}", "type", "authenticated", "user", c->user.name,
                               "role", role_name(c->user.role)));
    c->auth_timer = g_timeout_add_seconds((guint)l->o.auth_timeout_s, on_auth_timeout, c);
    return c;
}

static void on_close(void *conn)
{
    client *c = conn;
    live *l = c->l;
    if (c->auth_timer)
        g_source_remove(c->auth_timer);
    if (c->kick_timer)
        g_source_remove(c->kick_timer);
    if (c->dirty)
        g_ptr_array_remove_fast(l->dirty, c);
    l->clients = g_list_delete_link(l->clients, c->link);
    g_hash_table_destroy(c->pos);
    g_queue_clear_full(&c->ctrl, g_free);
    filter_clear(&c->f);
    if (c->authed)
        log_info("live", "client closed peer=%s user=%s cursor=%lld", http_ws_peer(c->ws),
                 c->user.name, (long long)c->cursor);
    g_free(c);
}

/* A client with data waiting that took nothing for stall_s is too far behind. */
static gboolean on_sweep(gpointer ud)
{
    live *l = ud;
    gint64 now = g_get_monotonic_time();
    for (GList *i = l->clients; i; i = i->next) {
        client *c = i->data;
        if (c->kicked || !c->subscribed || !pending(c))
            continue;
        /* a burst bigger than max_lag is no fault of a client that reads:
         * a second later it has caught up; one that stays behind (or takes
         * nothing at all) is cut loose */
        /* measured from when data began to wait, or the last frame if later:
         * a client idle for an hour that is sent something now is not stalled */
        int64_t lag = l->head - c->cursor;
        gint64 since = MAX(c->progress, c->waiting_since ? c->waiting_since : now);
        bool stalled = now - since > (gint64)l->o.stall_s * 1000000;
        if (stalled || (!c->catching_up && lag > l->o.max_lag && now - since > 1000000))
            too_far_behind(c);
    }
    return G_SOURCE_CONTINUE;
}

static const http_ws_handler handler = {on_open, on_message, on_writable, on_close};

live *live_new(http_server *srv, store *s, const live_opts *o, live_auth_fn auth, void *ud)
{
    live *l = g_new0(live, 1);
    l->srv = srv;
    l->s = s;
    l->o = o ? *o : (live_opts){0};
    if (l->o.max_lag <= 0)
        l->o.max_lag = 20000;
    if (l->o.stall_s <= 0)
        l->o.stall_s = 30;
    if (l->o.auth_timeout_s <= 0)
        l->o.auth_timeout_s = 10;
    if (l->o.ring <= 0)
        l->o.ring = 65536;
    if (l->o.tick_ms <= 0)
        l->o.tick_ms = 10;
    l->auth = auth;
    l->auth_ud = ud;
    l->cap = l->o.ring;
    l->ring = g_new0(entry *, (gsize)l->cap);
    l->head = l->floor = store_last_seq(s);
    l->latest = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)entry_unref);
    l->dirty = g_ptr_array_new();
    l->sweep = g_timeout_add_seconds(1, on_sweep, l);
    http_route_ws(srv, "/live", ROLE_STAFF, &handler, 16384, l);
    return l;
}

void live_set_decorate(live *l, live_decorate_fn fn, void *ud)
{
    l->decorate = fn;
    l->decorate_ud = ud;
}

void live_free(live *l)
{
    if (!l)
        return;
    if (l->tick)
        g_source_remove(l->tick);
    g_source_remove(l->sweep);
    for (int i = 0; i < l->count; i++)
        entry_unref(ring_at(l, i));
    g_free(l->ring);
    g_hash_table_destroy(l->latest);
    g_ptr_array_free(l->dirty, TRUE);
    g_free(l);
}

void live_get_stats(const live *l, live_stats *st)
{
    memset(st, 0, sizeof *st);
    for (GList *i = l->clients; i; i = i->next) {
        st->clients++;
        st->subscribed += ((client *)i->data)->subscribed;
    }
    st->head = l->head;
    st->ring_first = l->count ? l->ring[l->start]->seq : 0;
    st->frames = l->frames;
    st->items = l->items;
    st->kicked = l->kicked;
}
