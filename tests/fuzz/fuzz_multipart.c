/* fuzz_multipart: a streamed form body (multipart/form-data, or urlencoded
 * when the first byte is odd) sent to a real gridcc HTTP server in this
 * process, over loopback, the way a phone's photo upload arrives: parsed
 * while it comes in by lws_spa, with its last bytes held back
 * (http_form.c). lws_spa needs a live connection, so the harness makes one
 * per input rather than calling the parser alone.
 *
 * A second request is pipelined behind the form. Besides not crashing:
 * the form is answered 200 or 400 (never 5xx, never silence); a 200 counts
 * what arrived; the pipelined request is answered at most once and only as
 * itself, so nothing in a form's body is ever taken for a request. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz.h"
#include "gridcc/http.h"

#define BOUNDARY "gcFuzzB"

static const char *const names[] = {"description", "category", "lon", "lat"};
static GMainLoop *loop;
static http_server *srv;
static int port;

static void on_form(http_req *r, void *ud)
{
    (void)ud;
    http_form form = {0};
    gc_err err = {0};
    if (http_form_parse(r, names, G_N_ELEMENTS(names), &form, &err)) {
        http_form_clear(&form);
        http_reply_err(r, &err);
        return;
    }
    json_t *files = json_array();
    for (guint i = 0; i < form.files->len; i++) {
        http_form_file *f = form.files->pdata[i];
        json_array_append_new(files, json_integer((json_int_t)f->data->len));
    }
    json_t *o =
        json_pack("{s:i,s:o}", "fields", (int)g_hash_table_size(form.fields), "files", files);
    http_form_clear(&form);
    http_reply_json(r, 200, o);
}

static void on_ping(http_req *r, void *ud)
{
    (void)ud;
    http_reply(r, 200, "text/plain", "pong", 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    loop = g_main_loop_new(NULL, FALSE);
    gc_err err = {0};
    http_limits lim = {.max_body = 1 << 20, .idle_timeout_s = 5, .header_timeout_s = 5};
    srv = http_server_new(loop, "127.0.0.1", 0, &lim, &err);
    CHECK(srv, "cannot start the server: %s", err.msg);
    http_server_access_log(srv, LOG_DEBUG);
    http_route_form(srv, "POST", "/f", HTTP_PUBLIC, 1 << 20, names, G_N_ELEMENTS(names), on_form,
                    NULL);
    http_route(srv, "GET", "/ping", HTTP_PUBLIC, 0, on_ping, NULL);
    port = http_server_port(srv);
    return 0;
}

/* Everything the server sends until it closes, the loop turning meanwhile.
 * The request goes in pieces of `chunk` bytes, the server reading each
 * before the next is sent, as a phone's upload arrives over a slow link. */
static GString *exchange(const char *req, size_t len, size_t chunk)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* non-blocking from the start: libFuzzer's timer signal would interrupt
     * a blocking connect; poll says when the socket is ready */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    CHECK(!rc || errno == EINPROGRESS || errno == EINTR, "connect: %s", strerror(errno));
    GString *got = g_string_new(NULL);
    size_t sent = 0;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    for (;;) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        struct pollfd pf = {fd, POLLIN | (sent < len ? POLLOUT : 0), 0};
        if (poll(&pf, 1, 1) <= 0) {
            CHECK(g_get_monotonic_time() < deadline, "no answer in 20 s (%zu bytes sent)", sent);
            continue;
        }
        if (pf.revents & POLLOUT) {
            ssize_t n = send(fd, req + sent, MIN(chunk, len - sent), MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = len; /* the server closed early: what it said is below */
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0)
                g_string_append_len(got, buf, n);
            else if (n == 0 || errno != EAGAIN)
                break;
        }
    }
    close(fd);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte: bit 0 the form's type, the rest the size of the
     * pieces it arrives in (0: all at once) */
    bool urlenc = size && (data[0] & 1);
    size_t chunk = size && (data[0] >> 1) ? (size_t)(data[0] >> 1) * 37 : SIZE_MAX;
    const uint8_t *body = size ? data + 1 : data;
    size_t blen = size ? size - 1 : 0;
    GString *req = g_string_new(NULL);
    g_string_append_printf(req,
                           "POST /f HTTP/1.1\r\nHost: fuzz\r\nContent-Type: %s\r\n"
                           "Content-Length: %zu\r\n\r\n",
                           urlenc ? "application/x-www-form-urlencoded"
                                  : "multipart/form-data; boundary=" BOUNDARY,
                           blen);
    g_string_append_len(req, (const char *)body, (gssize)blen);
    g_string_append(req, "GET /ping HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n");
    GString *got = exchange(req->str, req->len, chunk);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "---\n%s\n", got->str);

    /* the answers, in order: "HTTP/1.1 NNN" at the start of each */
    int statuses[4], n = 0, pongs = 0;
    for (const char *p = got->str; (p = strstr(p, "HTTP/1.1 ")) && n < 4; p += 9)
        statuses[n++] = atoi(p + 9);
    for (const char *p = got->str; (p = strstr(p, "\r\n\r\npong")); p += 8)
        pongs++;
    CHECK(n >= 1, "the form got no answer (%zu bytes back)", got->len);
    CHECK(statuses[0] == 200 || statuses[0] == 400, "the form answered %d", statuses[0]);
    CHECK(n <= 2, "%d answers to two requests: part of the body was read as a request", n);
    if (n == 2)
        CHECK(statuses[1] == 200 && pongs == 1, "second answer %d is not the ping's", statuses[1]);
    if (statuses[0] == 200) {
        const char *b = strstr(got->str, "\r\n\r\n");
        json_t *j = b ? json_loads(b + 4, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
        CHECK(j && json_is_array(json_object_get(j, "files")), "a 200 without its counts");
        size_t total = 0, i;
        json_t *v;
        json_array_foreach(json_object_get(j, "files"), i, v) total +=
            (size_t)json_integer_value(v);
        CHECK(total <= blen, "files hold %zu bytes of a %zu-byte body", total, blen);
        json_decref(j);
    }
    g_string_free(got, TRUE);
    g_string_free(req, TRUE);
    return 0;
}
