#define _GNU_SOURCE
/* intake_load: a small closed-loop HTTP load client for report intake.
 * C connections (one thread each, keep-alive) POST the same multipart
 * report with a 2 MB JPEG for D seconds; each request patches a counter into
 * a comment segment of the JPEG, so every photo is new to the content-
 * addressed store. Building the body costs nothing per request, so the
 * client leaves the CPU to the server (wrk's Lua spent a core making the
 * bodies). Prints requests/s, p50/p99 latency and the status counts.
 *   intake_load PORT TOKEN JPEG CONNECTIONS SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXLAT 1000000

static int port;
static char *req_tmpl;
static size_t req_len, slot;     /* where the 16-digit counter goes */
static double deadline;
static atomic_long counter, ok, bad, failed;
static double *lat;
static atomic_long nlat;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Reads one response; returns its status or -1. */
static int read_response(int fd)
{
    char buf[16384];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
        if (!end && have >= sizeof buf - 1)
            return -1;
    }
    int status = atoi(buf + 9);
    char *cl = strcasestr(buf, "content-length:");
    long body = cl ? atol(cl + 15) : 0;
    long got = (long)(have - (size_t)(end + 4 - buf));
    while (got < body) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return -1;
        got += n;
    }
    return status;
}

static void *worker(void *arg)
{
    (void)arg;
    char *req = malloc(req_len);
    memcpy(req, req_tmpl, req_len);
    int fd = dial();
    while (fd >= 0 && now() < deadline) {
        char num[17];
        snprintf(num, sizeof num, "%016lx", atomic_fetch_add(&counter, 1) + 1);
        memcpy(req + slot, num, 16);
        double t0 = now();
        size_t sent = 0;
        while (sent < req_len) {
            ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        int st = sent == req_len ? read_response(fd) : -1;
        double dt = now() - t0;
        if (st < 0) {
            atomic_fetch_add(&failed, 1);
            close(fd);
            fd = dial();
            continue;
        }
        if (st == 201)
            atomic_fetch_add(&ok, 1);
        else
            atomic_fetch_add(&bad, 1);
        long i = atomic_fetch_add(&nlat, 1);
        if (i < MAXLAT)
            lat[i] = dt;
    }
    if (fd >= 0)
        close(fd);
    free(req);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: intake_load PORT TOKEN JPEG CONNECTIONS SECONDS\n");
        return 2;
    }
    port = atoi(argv[1]);
    const char *token = argv[2];
    int conns = atoi(argv[4]);
    double secs = atof(argv[5]);
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long jl = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *jpg = malloc((size_t)jl);
    if (fread(jpg, 1, (size_t)jl, f) != (size_t)jl) {
        perror(argv[3]);
        return 1;
    }
    fclose(f);
    /* SOI, then a COM segment holding the counter, then the rest */
    static const char com_text[] = "gridcc-bench-0000000000000000";
    const char *b = "gridccbench";
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "--%s\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nE01.02\r\n"
                      "--%s\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nbench\r\n"
                      "--%s\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
                      "Content-Type: image/jpeg\r\n\r\n",
                      b, b, b);
    char tail[64];
    int tl = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", b);
    size_t coml = sizeof com_text - 1;
    size_t body_len = (size_t)hl + 2 + 4 + coml + (size_t)(jl - 2) + (size_t)tl;
    char hdr[1024];
    int hdl = snprintf(hdr, sizeof hdr,
                       "POST /api/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Authorization: Bearer %s\r\n"
                       "Content-Type: multipart/form-data; boundary=%s\r\n"
                       "Content-Length: %zu\r\n\r\n",
                       token, b, body_len);
    req_len = (size_t)hdl + body_len;
    req_tmpl = malloc(req_len);
    char *p = req_tmpl;
    memcpy(p, hdr, (size_t)hdl), p += hdl;
    memcpy(p, head, (size_t)hl), p += hl;
    memcpy(p, jpg, 2), p += 2;
    *p++ = (char)0xFF, *p++ = (char)0xFE;
    *p++ = (char)((coml + 2) >> 8), *p++ = (char)((coml + 2) & 0xFF);
    memcpy(p, com_text, coml);
    slot = (size_t)(p - req_tmpl) + coml - 16;
    p += coml;
    memcpy(p, jpg + 2, (size_t)(jl - 2)), p += jl - 2;
    memcpy(p, tail, (size_t)tl), p += tl;
    free(jpg);

    lat = malloc(sizeof(double) * MAXLAT);
    double t0 = now();
    deadline = t0 + secs;
    pthread_t *th = malloc(sizeof(pthread_t) * (size_t)conns);
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double el = now() - t0;
    long n = nlat < MAXLAT ? nlat : MAXLAT;
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("requests: %ld in %.2f s; 201: %ld, other status: %ld, connection failures: %ld\n",
           (long)nlat, el, (long)ok, (long)bad, (long)failed);
    printf("Requests/sec: %.1f\n", (double)ok / el);
    if (n)
        printf("latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", lat[n / 2] * 1e3,
               lat[(long)(n * 0.99)] * 1e3, lat[n - 1] * 1e3);
    free(lat);
    free(th);
    free(req_tmpl);
    return 0;
}
