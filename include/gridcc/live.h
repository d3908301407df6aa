/* live: the live map bus behind the /live websocket.
 *
 * The change log is the outbox. Every change a client may see is a row of it
 * (seq, topic, id, data); the bus keeps the newest of them in memory, and each
 * client is a cursor into that sequence plus its filter. Writing happens only
 * when the client's socket is writable, as many matching changes as fit one
 * frame, so a slow client costs nothing but its own cursor, and a client
 * resuming with `since` gets exactly the changes after it: none twice, none
 * missing, whatever arrives meanwhile. A cursor older than the log still
 * holds gets "resync". A live client that falls max_lag changes behind (or
 * takes no data for stall_s) is told to resume with since and closed.
 *
 * Positions are the exception: they are state, not history. Each worker's
 * newest fix replaces the one still waiting for a client (they coalesce), and
 * a (re)subscription to positions starts with every worker's newest fix.
 *
 * Protocol (JSON text messages):
 *   client: {"type":"auth","token":"…"}   (or ?access_token= / Authorization)
 *           {"type":"subscribe","topics":[…],"bbox":[w,s,e,n],"grid":"ID"|[…],
 *            "since":SEQ}                   (again at any time: new filter)
 *           {"type":"ping"}
 *   server: {"type":"hello","seq":HEAD}      {"type":"subscribed",…}
 *           {"type":"changes","changes":[{"seq","topic","id","ts","data"}…]}
 *           {"type":"caught_up","seq":N}    {"type":"resync","seq":HEAD,…}
 *           {"type":"error","code","field","message"}   {"type":"pong"}
 *           close 4000 "resume since=N" when too far behind. */
#ifndef GRIDCC_LIVE_H
#define GRIDCC_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "gridcc/err.h"
#include "gridcc/http.h"
#include "gridcc/store.h"

typedef struct live live;

typedef struct live_opts {
    int max_lag;          /* changes a live client may fall behind; default 20000 */
    int stall_s;          /* seconds of undelivered data with no progress; default 30 */
    int auth_timeout_s;   /* to authenticate and subscribe; default 10 */
    int ring;             /* changes kept in memory; default 65536 */
    int tick_ms;          /* wake-ups of clients with news are batched this long; default 10 */
} live_opts;

/* Checks a bearer token for a live connection: true and *u filled, or false
 * with err saying why (expired, role not allowed). */
typedef bool (*live_auth_fn)(void *ud, const char *token, store_user *u, gc_err *err);

/* Serves /live on srv, reading the change log from s (the loop's store). */
live *live_new(http_server *srv, store *s, const live_opts *o, live_auth_fn auth, void *ud);
/* Closes every client. */
void live_free(live *l);
/* What clients should get beside what the change log stores, worked out
 * as the bus reads a change: a camera's grid comes from the index of the
 * moment, since the planner re-draws grids and the log would keep a stale
 * one. fn may add to data (the change's parsed JSON) and returns whether it
 * did; the change then goes out as the data reads after it. On the loop. */
typedef bool (*live_decorate_fn)(void *ud, const char *topic, json_t *data);
void live_set_decorate(live *l, live_decorate_fn fn, void *ud);
/* New rows may be in the change log (a commit here or elsewhere): read them. */
void live_pull(live *l);

/* A worker's position, as the positions topic carries it. feature: a GeoJSON
 * Feature (stolen). ids: grid, community, street (NULL where outside). A fix
 * older than the worker's newest is ignored. */
void live_position(live *l, int64_t user_id, int64_t t, double lon, double lat,
                   const char *const ids[3], json_t *feature);

/* A change as the changes message carries it: {"seq","topic","id","ts","data"}
 * (g_free). Replay reads past windows in the same form. */
char *live_change_text(const store_change *c);

/* A client's filter without a bus (for tests): whether a change of topic
 * passes the filter of the subscribe message m (borrowed). data is the
 * change's data as the change log holds it: a GeoJSON Feature or an object of
 * *_id fields (borrowed, may be NULL). 1 it passes, 0 it does not, GC_EINVAL
 * with err naming the field (what the client is told) when m is no filter. */
int live_filter_check(json_t *m, const char *topic, json_t *data, gc_err *err);

/* A client's message as live_msg_parse reads it. */
typedef enum live_msg_type {
    LIVE_MSG_BAD, /* not JSON, or no type */
    LIVE_MSG_AUTH,
    LIVE_MSG_SUBSCRIBE,
    LIVE_MSG_PING,
    LIVE_MSG_OTHER, /* a type the bus does not know */
} live_msg_type;

typedef struct live_filter {
    unsigned topics; /* bit i: live_topic_name(i) */
    bool has_box;
    double box[4]; /* west, south, east, north: finite, ordered, within ±90° */
    char **ids;    /* grid, grids, chain and unit ids, NULL-terminated; NULL: any place */
    /* Not the client's to choose: set from who it is. A department's user
     * sees the cases dispatched to that department only, as on /api/incidents. */
    char *department;
} live_filter;

typedef struct live_msg {
    live_msg_type type;
    char *type_name;    /* the type as sent (OTHER is answered by name); NULL for BAD */
    char *token;        /* AUTH */
    live_filter filter; /* SUBSCRIBE */
    int64_t since;      /* SUBSCRIBE: -1 when not given */
} live_msg;

/* Reads one text message into m (cleared first; free with live_msg_clear).
 * 0, or GC_EINVAL with err's field and message: not JSON, no type, auth
 * without a token, a subscription's bad topics, bbox, ids or since. m->type
 * is kept on error when the type was readable: a client not yet
 * authenticated is told so before its filter is judged. */
int live_msg_parse(const char *data, size_t len, live_msg *m, gc_err *err);
void live_msg_clear(live_msg *m);
/* The name of topic bit i, NULL past the last. */
const char *live_topic_name(unsigned i);

typedef struct live_stats {
    size_t clients, subscribed;
    int64_t head, ring_first;
    uint64_t frames, items, kicked;
} live_stats;
void live_get_stats(const live *l, live_stats *st);

#endif
