/* Load client for the /live fan-out bench (bench_fanout.sh): N websocket
 * clients (libwebsockets' client) with a mix of filters, while one thread
 * sends positions through the OsmAnd port's batch endpoint (each fix's time
 * is its send time) and another creates incidents through the API. Measures
 * delivery latency (receipt - fix time for positions, receipt - commit time
 * for incident changes) and counts incident changes per unfiltered client.
 *   live_load API_PORT OSMAND_PORT TOKEN CLIENTS SECONDS POS_RATE INC_RATE
 *             WORKERS "W S E N" GRID
 * Prints one JSON object. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int api_port, osm_port, nclients, seconds, pos_rate, inc_rate, nworkers;
static const char *token, *grid;
static double box[4];
static atomic_int stop_senders;
static atomic_long sent_pos, sent_inc, send_errors;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- latencies ---- */
typedef struct lat {
    float *v;
    size_t n, cap;
} lat;
static lat lat_pos, lat_inc;
static void lat_add(lat *l, double ms)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 20;
        l->v = realloc(l->v, l->cap * sizeof(float));
    }
    l->v[l->n++] = (float)ms;
}
static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
static double pct(lat *l, double p)
{
    if (!l->n)
        return NAN;
    return l->v[(size_t)fmin((double)l->n - 1, floor(p / 100.0 * (double)l->n))];
}

/* ---- clients ---- */
typedef struct client {
    int idx, kind;              /* 0 all, 1 bbox, 2 grid, 3 incidents only */
    struct lws *wsi;
    char *rx;
    size_t rxn, rxcap;
    int subscribed, sent_sub;
    int64_t sub_seq;
    unsigned char *incs;        /* bitmap of incident seqs received, from base */
    long incs_n;
    int closed;
} client;
static client *clients;
static int64_t base_seq = -1;   /* incident seqs counted from here */
#define INC_SPAN (1 << 22)
static int connected, subscribed_n, closed_n;
static long frames;

static void on_frame(client *c, char *m, size_t n)
{
    m[n] = 0;
    frames++;
    if (!strncmp(m, "{\"type\":\"subscribed\"", 20)) {
        char *s = strstr(m, "\"seq\":");
        c->sub_seq = s ? atoll(s + 6) : 0;
        c->subscribed = 1;
        subscribed_n++;
        return;
    }
    if (strncmp(m, "{\"type\":\"changes\"", 17))
        return;
    int64_t now = now_ms();
    for (char *p = m; (p = strstr(p, "{\"seq\":")); p += 7) {
        int64_t seq = atoll(p + 7);
        char *t = strstr(p, "\"topic\":\"");
        if (!t)
            break;
        t += 9;
        if (!strncmp(t, "positions\"", 10)) {
            char *tt = strstr(t, "\"t\":");
            if (tt)
                lat_add(&lat_pos, (double)(now - atoll(tt + 4)));
        } else if (!strncmp(t, "incidents\"", 10)) {
            char *ts = strstr(t, "\"ts\":\"");
            if (ts) {
                struct tm tm = {0};
                int ms = 0;
                char *r = strptime(ts + 6, "%Y-%m-%dT%H:%M:%S", &tm);
                if (r && *r == '.')
                    ms = atoi(r + 1);
                lat_add(&lat_inc, (double)(now - ((int64_t)timegm(&tm) * 1000 + ms)));
            }
            if (base_seq >= 0 && seq > base_seq && seq - base_seq < INC_SPAN) {
                long k = (long)(seq - base_seq);
                if (!(c->incs[k >> 3] & (1 << (k & 7)))) {
                    c->incs[k >> 3] |= (unsigned char)(1 << (k & 7));
                    c->incs_n++;
                }
            }
        }
    }
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    client *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        connected++;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c->sent_sub) {
            char buf[LWS_PRE + 512];
            char *m = buf + LWS_PRE;
            int n;
            switch (c->kind) {
            case 0: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\",\"alerts\"]}"); break;
            case 1: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\"],\"bbox\":[%.6f,%.6f,%.6f,%.6f]}",
                                box[0], box[1], (box[0] + box[2]) / 2, (box[1] + box[3]) / 2); break;
            case 2: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\"],\"grid\":\"%s\"}", grid); break;
            default: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"alerts\"]}"); break;
            }
            lws_write(wsi, (unsigned char *)m, (size_t)n, LWS_WRITE_TEXT);
            c->sent_sub = 1;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->rxn + len + 1 > c->rxcap) {
            c->rxcap = (c->rxn + len + 1) * 2;
            c->rx = realloc(c->rx, c->rxcap);
        }
        memcpy(c->rx + c->rxn, in, len);
        c->rxn += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            on_frame(c, c->rx, c->rxn);
            c->rxn = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c && !c->closed) {
            c->closed = 1;
            closed_n++;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protos[] = {{"live-load", cb, 0, 65536, 0, NULL, 0},
                                              {NULL, NULL, 0, 0, 0, NULL, 0}};

/* ---- senders (plain keep-alive HTTP/1.1) ---- */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Sends a request and reads the answer; returns the status. */
static int roundtrip(int fd, const char *req, size_t n)
{
    if (write(fd, req, n) != (ssize_t)n)
        return -1;
    char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(buf, "content-length:");
        size_t body = cl ? (size_t)atol(cl + 15) : 0;
        if (got >= (size_t)(end + 4 - buf) + body)
            return atoi(buf + 9);
    }
}

static void sleep_until(int64_t t)
{
    int64_t d = t - now_ms();
    if (d > 0)
        usleep((useconds_t)d * 1000);
}

#define POS_SENDERS 4
static void *pos_sender(void *ud)
{
    int fd = dial(osm_port);
    const int tick = 20, per = pos_rate * tick / 1000 / POS_SENDERS;
    long k = (long)(intptr_t)ud * 1000003L;
    char *body = malloc((size_t)per * 160 + 64), *req = malloc((size_t)per * 160 + 512);
    int64_t next = now_ms();
    while (!stop_senders) {
        int64_t t = now_ms();
        size_t n = (size_t)sprintf(body, "[");
        for (int i = 0; i < per; i++, k++) {
            int w = (int)((k % (nworkers / POS_SENDERS)) * POS_SENDERS + ((long)(intptr_t)ud));
            double lon = box[0] + (box[2] - box[0]) * (0.05 + 0.9 * ((k * 7919) % 1000) / 1000.0);
            double lat = box[1] + (box[3] - box[1]) * (0.05 + 0.9 * ((k * 104729) % 997) / 997.0);
            n += (size_t)sprintf(body + n, "%s{\"id\":\"bd%d\",\"lat\":%.6f,\"lon\":%.6f,\"timestamp\":%lld}",
                                 i ? "," : "", w, lat, lon, (long long)t);
        }
        n += (size_t)sprintf(body + n, "]");
        size_t m = (size_t)sprintf(req, "POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        "Content-Length: %zu\r\n\r\n%s", n, body);
        if (roundtrip(fd, req, m) != 200)
            send_errors++;
        else
            sent_pos += per;
        next += tick;
        sleep_until(next);
    }
    free(body);
    free(req);
    close(fd);
    return NULL;
}

static void *inc_sender(void *ud)
{
    int fd = dial(api_port);
    int64_t next = now_ms(), gap = 1000 / (inc_rate ? inc_rate : 1);
    long k = 0;
    while (!stop_senders && inc_rate) {
        char body[256], req[1024];
        double lon = box[0] + (box[2] - box[0]) * (0.1 + 0.8 * (k % 13) / 13.0);
        double lat = box[1] + (box[3] - box[1]) * (0.1 + 0.8 * (k % 17) / 17.0);
        int n = sprintf(body, "{\"category\":\"E05.02\",\"description\":\"fanout %ld\",\"lon\":%.6f,\"lat\":%.6f}", k++, lon, lat);
        int m = sprintf(req, "POST /api/incidents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", token, n, body);
        if (roundtrip(fd, req, (size_t)m) != 201)
            send_errors++;
        else
            sent_inc++;
        next += gap;
        sleep_until(next);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: live_load API_PORT OSMAND_PORT TOKEN CLIENTS SECONDS POS_RATE INC_RATE WORKERS \"W S E N\" GRID\n");
        return 2;
    }
    api_port = atoi(argv[1]);
    osm_port = atoi(argv[2]);
    token = argv[3];
    nclients = atoi(argv[4]);
    seconds = atoi(argv[5]);
    pos_rate = atoi(argv[6]);
    inc_rate = atoi(argv[7]);
    nworkers = atoi(argv[8]);
    sscanf(argv[9], "%lf %lf %lf %lf", &box[0], &box[1], &box[2], &box[3]);
    grid = argv[10];
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protos;
    info.fd_limit_per_thread = (unsigned)nclients + 64;
    struct lws_context *ctx = lws_create_context(&info);
    clients = calloc((size_t)nclients, sizeof(client));
    char path[700];
    snprintf(path, sizeof path, "/live?access_token=%s", token);
    int started = 0;
    while (subscribed_n + closed_n < nclients) {
        for (int i = 0; i < 50 && started < nclients; i++, started++) {
            client *c = &clients[started];
            c->idx = started;
            c->kind = started % 4;
            c->incs = calloc(INC_SPAN / 8, 1);
            struct lws_client_connect_info ci;
            memset(&ci, 0, sizeof ci);
            ci.context = ctx;
            ci.address = "127.0.0.1";
            ci.port = api_port;
            ci.path = path;
            ci.host = "127.0.0.1";
            ci.origin = "127.0.0.1";
            ci.local_protocol_name = "live-load";
            ci.opaque_user_data = c;
            c->wsi = lws_client_connect_via_info(&ci);
        }
        lws_service(ctx, 0);
    }
    int64_t head = 0;
    for (int i = 0; i < nclients; i++)
        if (clients[i].sub_seq > head)
            head = clients[i].sub_seq;
    base_seq = head;
    fprintf(stderr, "live_load: %d clients subscribed (%d failed); sending for %d s\n", subscribed_n, closed_n, seconds);
    pthread_t tp[POS_SENDERS], ti;
    /* the first seconds warm up: latencies from then on count */
    for (intptr_t i = 0; i < POS_SENDERS; i++)
        pthread_create(&tp[i], NULL, pos_sender, (void *)i);
    pthread_create(&ti, NULL, inc_sender, NULL);
    int64_t end = now_ms() + seconds * 1000, warm = now_ms() + 2000;
    int warmed = 0;
    while (now_ms() < end) {
        lws_service(ctx, 0);
        if (!warmed && now_ms() > warm) {
            lat_pos.n = lat_inc.n = 0;
            warmed = 1;
        }
    }
    stop_senders = 1;
    for (int i = 0; i < POS_SENDERS; i++)
        pthread_join(tp[i], NULL);
    pthread_join(ti, NULL);
    int64_t drain = now_ms() + 3000;
    while (now_ms() < drain)
        lws_service(ctx, 0);
    long min_inc = -1, max_inc = 0;
    int unfiltered = 0, closed_early = closed_n;
    int64_t max_seq = 0;
    for (int i = 0; i < nclients; i++) {
        client *c = &clients[i];
        if (c->kind != 0 && c->kind != 3)
            continue;
        unfiltered++;
        if (min_inc < 0 || c->incs_n < min_inc)
            min_inc = c->incs_n;
        if (c->incs_n > max_inc)
            max_inc = c->incs_n;
        for (long k = INC_SPAN - 1; k > 0 && max_seq < base_seq + k; k--)
            if (c->incs[k >> 3] & (1 << (k & 7))) {
                max_seq = base_seq + k;
                break;
            }
    }
    qsort(lat_pos.v, lat_pos.n, sizeof(float), cmpf);
    qsort(lat_inc.v, lat_inc.n, sizeof(float), cmpf);
    printf("{\"clients\":%d,\"closed\":%d,\"seconds\":%d,\"positions_sent\":%ld,\"incidents_sent\":%ld,"
           "\"send_errors\":%ld,\"frames\":%ld,\"position_deliveries\":%zu,\"incident_deliveries\":%zu,"
           "\"pos_p50\":%.1f,\"pos_p99\":%.1f,\"pos_max\":%.1f,\"inc_p50\":%.1f,\"inc_p99\":%.1f,\"inc_max\":%.1f,"
           "\"unfiltered_clients\":%d,\"inc_min\":%ld,\"inc_max_count\":%ld,\"base_seq\":%lld,\"max_seq\":%lld}\n",
           nclients, closed_early, seconds, (long)sent_pos, (long)sent_inc, (long)send_errors, frames,
           lat_pos.n, lat_inc.n, pct(&lat_pos, 50), pct(&lat_pos, 99), pct(&lat_pos, 100),
           pct(&lat_inc, 50), pct(&lat_inc, 99), pct(&lat_inc, 100), unfiltered, min_inc, max_inc,
           (long long)base_seq, (long long)max_seq);
    lws_context_destroy(ctx);
    return 0;
}
