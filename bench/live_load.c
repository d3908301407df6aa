/* Load client for the /live fan-out bench (bench_fanout.sh): N websocket
 * clients with a mix of filters, read by one epoll thread over plain
 * nonblocking sockets, framed by wslay's frame layer (lws's client parses a
 * byte at a time and wslay's event layer checks UTF-8 a byte at a time: either
 * took most of a core, and the load client shares the machine with the
 * daemon). Meanwhile 8 threads send positions through the OsmAnd port's batch
 * endpoint at an open-loop rate (each fix's time is its send time; a late
 * sender sends more at once rather than fewer), and 2 create incidents
 * through the API. Measures delivery latency (receipt - fix time for
 * positions, receipt - commit time for incident changes) and counts incident
 * changes per unfiltered client.
 *   live_load API_PORT OSMAND_PORT TOKEN CLIENTS SECONDS POS_RATE INC_RATE
 *             WORKERS "W S E N" GRID
 * Prints one JSON object. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/epoll.h>
#include <wslay/wslay.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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
        return -1;   /* none measured: the report says n/a */
    return l->v[(size_t)fmin((double)l->n - 1, floor(p / 100.0 * (double)l->n))];
}

/* ---- clients ---- */
typedef struct client {
    int idx, kind;              /* 0 all, 1 bbox, 2 grid, 3 incidents only */
    int fd;
    wslay_frame_context_ptr fr;
    char *mbuf, *cbuf;          /* the message being joined; a control frame */
    size_t mn, mcap, cn, ccap;
    uint64_t fgot;              /* payload bytes of the current frame so far */
    int eof;
    char *rx;                   /* the upgrade answer, then what followed it */
    size_t rxn, rxoff, rxcap;
    char key[32];
    int upgraded, subscribed;
    int64_t sub_seq;
    unsigned char *incs;        /* bitmap of incident seqs received, from base */
    long incs_n;
    int closed;
} client;
static client *clients;
static int64_t base_seq = -1;   /* incident seqs counted from here */
#define INC_SPAN (1 << 22)
static int connected, subscribed_n, closed_n;
static long frames, frame_bytes;

static void on_frame(client *c, char *m, size_t n)
{
    m[n] = 0;
    frames++;
    frame_bytes += (long)n;
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

/* lws's client runs every payload byte through its frame state machine, and
 * wslay's message layer every byte of a text message through a UTF-8 check:
 * at the ~200 MB/s this bench receives either took most of a core, and the
 * latency it reported was its own backlog. wslay's frame layer hands over
 * payloads whole; messages are joined here (the daemon's JSON is checked
 * for UTF-8 by the tests' clients, not by the bench's). */
static ssize_t fr_recv(uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    if (c->rxoff < c->rxn) {    /* bytes that came with the upgrade answer */
        size_t n = c->rxn - c->rxoff < len ? c->rxn - c->rxoff : len;
        memcpy(buf, c->rx + c->rxoff, n);
        c->rxoff += n;
        return (ssize_t)n;
    }
    ssize_t r = recv(c->fd, buf, len, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN))
        c->eof = 1;
    return r;
}

static ssize_t fr_send(const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    return send(c->fd, data, len, MSG_NOSIGNAL);
}

static int fr_mask(uint8_t *buf, size_t len, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)g_random_int();
    return 0;
}

static const struct wslay_frame_callbacks fr_cbs = {fr_send, fr_recv, fr_mask};

/* A whole frame of ours, masked as a client's must be (small ones only:
 * the subscription and pongs). */
static int send_frame(client *c, int opcode, const char *data, size_t len)
{
    struct wslay_frame_iocb io = {.fin = 1, .opcode = (uint8_t)opcode, .mask = 1,
                                  .payload_length = len, .data = (const uint8_t *)data,
                                  .data_length = len};
    return wslay_frame_send(c->fr, &io) == (ssize_t)len ? 0 : -1;
}

static void subscribe(client *c)
{
    char m[512];
    int n;
    switch (c->kind) {
    case 0: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\",\"alerts\"]}"); break;
    case 1: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\"],\"bbox\":[%.6f,%.6f,%.6f,%.6f]}",
                        box[0], box[1], (box[0] + box[2]) / 2, (box[1] + box[3]) / 2); break;
    case 2: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"positions\"],\"grid\":\"%s\"}", grid); break;
    default: n = sprintf(m, "{\"type\":\"subscribe\",\"topics\":[\"incidents\",\"alerts\"]}"); break;
    }
    if (send_frame(c, WSLAY_TEXT_FRAME, m, (size_t)n))
        fprintf(stderr, "live_load: could not send a subscription\n");
}

static void client_closed(client *c)
{
    if (!c->closed) {
        c->closed = 1;
        closed_n++;
    }
}

/* Reads the 101 answer (checking Sec-WebSocket-Accept), then subscribes. */
static void read_upgrade(client *c)
{
    for (;;) {
        if (c->rxn + 4096 > c->rxcap) {
            c->rxcap = c->rxn + 8192;
            c->rx = realloc(c->rx, c->rxcap);
        }
        ssize_t r = recv(c->fd, c->rx + c->rxn, c->rxcap - c->rxn - 1, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            client_closed(c);
            return;
        }
        c->rxn += (size_t)r;
        c->rx[c->rxn] = 0;
        char *end = strstr(c->rx, "\r\n\r\n");
        if (!end)
            continue;
        char want[64] = "";
        GChecksum *sha = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(sha, (const guchar *)c->key, -1);
        g_checksum_update(sha, (const guchar *)"258EAFA5-E914-47DA-95CA-C5AB0DC85B11", -1);
        guint8 dig[20];
        gsize dn = sizeof dig;
        g_checksum_get_digest(sha, dig, &dn);
        g_checksum_free(sha);
        gchar *acc = g_base64_encode(dig, dn);
        snprintf(want, sizeof want, "%s", acc);
        g_free(acc);
        char *a = strcasestr(c->rx, "sec-websocket-accept:");
        if (strncmp(c->rx, "HTTP/1.1 101", 12) || !a || !strstr(a, want)) {
            fprintf(stderr, "live_load: upgrade refused: %.*s\n", (int)(end - c->rx), c->rx);
            client_closed(c);
            return;
        }
        c->rxoff = (size_t)(end + 4 - c->rx);
        c->upgraded = 1;
        connected++;
        wslay_frame_context_init(&c->fr, &fr_cbs, c);
        subscribe(c);
        return;
    }
}

static void append(char **buf, size_t *n, size_t *cap, const uint8_t *d, size_t len)
{
    if (*n + len + 1 > *cap) {
        *cap = (*n + len + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *n, d, len);
    *n += len;
}

static void service(client *c)
{
    if (c->closed)
        return;
    if (!c->upgraded) {
        read_upgrade(c);
        if (!c->upgraded)
            return;
    }
    for (;;) {
        struct wslay_frame_iocb io;
        ssize_t r = wslay_frame_recv(c->fr, &io);
        if (r == WSLAY_ERR_WANT_READ) {
            if (c->eof)
                client_closed(c);
            return;
        }
        if (r < 0) {
            client_closed(c);
            return;
        }
        bool ctrl = io.opcode & 0x8;
        if (ctrl)
            append(&c->cbuf, &c->cn, &c->ccap, io.data, io.data_length);
        else
            append(&c->mbuf, &c->mn, &c->mcap, io.data, io.data_length);
        c->fgot += io.data_length;
        if (c->fgot < io.payload_length)
            continue;
        c->fgot = 0;   /* a whole frame */
        if (ctrl) {
            if (io.opcode == WSLAY_PING)
                send_frame(c, WSLAY_PONG, c->cbuf, c->cn);
            else if (io.opcode == WSLAY_CONNECTION_CLOSE)
                client_closed(c);
            c->cn = 0;
        } else if (io.fin) {
            on_frame(c, c->mbuf, c->mn);
            c->mn = 0;
        }
    }
}

static int start_client(client *c, int epfd, const char *path)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS)
        return -1;
    guint8 raw[16];
    for (int i = 0; i < 16; i++)
        raw[i] = (guint8)g_random_int();
    gchar *k = g_base64_encode(raw, sizeof raw);
    snprintf(c->key, sizeof c->key, "%s", k);
    g_free(k);
    /* the request waits in the socket until it connects */
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->rx = malloc(8192);
    c->rxcap = 8192;
    snprintf(c->rx, c->rxcap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, c->key);
    return 0;
}

/* One pass of the loop: waits at most ms. */
static void poll_clients(int epfd, int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, ms);
    for (int i = 0; i < n; i++) {
        client *c = evs[i].data.ptr;
        if (!c->upgraded && c->rxn == 0 && c->rx[0] == 'G' && (evs[i].events & EPOLLOUT)) {
            size_t len = strlen(c->rx);
            if (send(c->fd, c->rx, len, MSG_NOSIGNAL) != (ssize_t)len) {
                client_closed(c);
                continue;
            }
            c->rx[0] = 0;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            continue;
        }
        service(c);
    }
}

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

/* Each sender owns a share of the workers and keeps the asked rate: every
 * 20 ms it sends the fixes that fell due since its last request, so when a
 * round trip (durable before its 200) takes longer, the next batch is larger
 * rather than the rate lower, as phones that buffered do. */
#define POS_SENDERS 8
static void *pos_sender(void *ud)
{
    int fd = dial(osm_port);
    const int tick = 20;
    const double rate = (double)pos_rate / POS_SENDERS / 1000.0;   /* fixes a ms */
    long k = (long)(intptr_t)ud * 1000003L, done = 0;
    size_t cap = 4096;
    char *body = malloc(cap), *req = malloc(cap + 512);
    int64_t start = now_ms(), next = start;
    while (!stop_senders) {
        int64_t t = now_ms();
        int per = (int)(floor((double)(t - start + tick) * rate) - (double)done);
        if ((size_t)per * 160 + 64 > cap) {
            cap = (size_t)per * 160 + 64;
            body = realloc(body, cap);
            req = realloc(req, cap + 512);
        }
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
        done += per;
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

#define INC_SENDERS 2
static void *inc_sender(void *ud)
{
    int fd = dial(api_port);
    int64_t next = now_ms(), gap = 1000 * INC_SENDERS / (inc_rate ? inc_rate : 1);
    long k = (long)(intptr_t)ud;
    while (!stop_senders && inc_rate) {
        char body[256], req[1024];
        double lon = box[0] + (box[2] - box[0]) * (0.1 + 0.8 * (k % 13) / 13.0);
        double lat = box[1] + (box[3] - box[1]) * (0.1 + 0.8 * (k % 17) / 17.0);
        int n = sprintf(body, "{\"category\":\"E05.02\",\"description\":\"fanout %ld\",\"lon\":%.6f,\"lat\":%.6f}", k, lon, lat);
        k += INC_SENDERS;
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
    int epfd = epoll_create1(0);
    clients = calloc((size_t)nclients, sizeof(client));
    char path[700];
    snprintf(path, sizeof path, "/live?access_token=%s", token);
    int started = 0;
    while (subscribed_n + closed_n < nclients) {
        /* a few dozen handshakes in flight at a time */
        for (; started < nclients && started - connected - closed_n < 50; started++) {
            client *c = &clients[started];
            c->idx = started;
            c->kind = started % 4;
            c->incs = calloc(INC_SPAN / 8, 1);
            if (start_client(c, epfd, path))
                client_closed(c);
        }
        poll_clients(epfd, 20);
    }
    int64_t head = 0;
    for (int i = 0; i < nclients; i++)
        if (clients[i].sub_seq > head)
            head = clients[i].sub_seq;
    base_seq = head;
    fprintf(stderr, "live_load: %d clients subscribed (%d failed); sending for %d s\n", subscribed_n, closed_n, seconds);
    pthread_t tp[POS_SENDERS], ti[INC_SENDERS];
    /* the first seconds warm up: latencies from then on count */
    for (intptr_t i = 0; i < POS_SENDERS; i++)
        pthread_create(&tp[i], NULL, pos_sender, (void *)i);
    for (intptr_t i = 0; i < INC_SENDERS; i++)
        pthread_create(&ti[i], NULL, inc_sender, (void *)i);
    int64_t end = now_ms() + seconds * 1000, warm = now_ms() + 2000;
    int warmed = 0;
    while (now_ms() < end) {
        poll_clients(epfd, 20);
        if (!warmed && now_ms() > warm) {
            lat_pos.n = lat_inc.n = 0;
            warmed = 1;
        }
    }
    stop_senders = 1;
    for (int i = 0; i < POS_SENDERS; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < INC_SENDERS; i++)
        pthread_join(ti[i], NULL);
    int64_t drain = now_ms() + 3000;
    while (now_ms() < drain)
        poll_clients(epfd, 20);
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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    qsort(lat_pos.v, lat_pos.n, sizeof(float), cmpf);
    qsort(lat_inc.v, lat_inc.n, sizeof(float), cmpf);
    printf("{\"clients\":%d,\"closed\":%d,\"seconds\":%d,\"positions_sent\":%ld,\"incidents_sent\":%ld,"
           "\"send_errors\":%ld,\"frames\":%ld,\"position_deliveries\":%zu,\"incident_deliveries\":%zu,"
           "\"pos_p50\":%.1f,\"pos_p99\":%.1f,\"pos_max\":%.1f,\"inc_p50\":%.1f,\"inc_p99\":%.1f,\"inc_max\":%.1f,"
           "\"unfiltered_clients\":%d,\"inc_min\":%ld,\"inc_max_count\":%ld,\"base_seq\":%lld,\"max_seq\":%lld,"
           "\"client_cpu_s\":%.1f,\"bytes\":%ld}\n",
           nclients, closed_early, seconds, (long)sent_pos, (long)sent_inc, (long)send_errors, frames,
           lat_pos.n, lat_inc.n, pct(&lat_pos, 50), pct(&lat_pos, 99), pct(&lat_pos, 100),
           pct(&lat_inc, 50), pct(&lat_inc, 99), pct(&lat_inc, 100), unfiltered, min_inc, max_inc,
           (long long)base_seq, (long long)max_seq, cpu, frame_bytes);
    for (int i = 0; i < nclients; i++) {
        if (clients[i].fr)
            wslay_frame_context_free(clients[i].fr);
        close(clients[i].fd);
    }
    close(epfd);
    return 0;
}
