/* camsim_control: misbehaviour on request. A line protocol on TCP (--control),
 * one command per line, one line of JSON back per command, so that a test
 * can make a camera drop, stall, refuse, switch codec, vanish or appear:
 *
 *   drop ID | stall ID SECONDS | resume ID | auth ID on|off | password ID NEW
 *   codec ID h264|h265 | down ID | up ID | add ID [h264|h265] | stats
 *
 * Commands run on the main loop, like the RTSP server they change. One that
 * encodes a clip (codec, add) replies when the clip is there, in a thread so
 * that the other cameras keep streaming; the connection reads its next line
 * only after. */
#include "camsim.h"

#include <gio/gio.h>
#include <jansson.h>
#include <string.h>

#include "gridcc/log.h"
#include "gridcc/parse.h"

typedef struct ctl_conn {
    camsim *cs;
    GSocketConnection *conn;
    GDataInputStream *in;
    GCancellable *cancel;
} ctl_conn;

static GList *conns; /* ctl_conn*, to close them at exit */

static void read_next(ctl_conn *c);

static void conn_free(ctl_conn *c)
{
    conns = g_list_remove(conns, c);
    g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    g_object_unref(c->in);
    g_object_unref(c->conn);
    g_object_unref(c->cancel);
    g_free(c);
}

/* takes reply */
static void reply(ctl_conn *c, json_t *reply)
{
    char *s = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(c->conn));
    /* replies are short and the peer is reading: a blocking write is fine */
    gboolean ok = g_output_stream_write_all(out, s, strlen(s), NULL, NULL, NULL) &&
                  g_output_stream_write_all(out, "\n", 1, NULL, NULL, NULL);
    free(s);
    if (!ok) {
        conn_free(c);
        return;
    }
    read_next(c);
}

static void reply_ok(ctl_conn *c)
{
    reply(c, json_pack("{s:b}", "ok", 1));
}

static void reply_err(ctl_conn *c, const char *msg)
{
    reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

static json_t *mount_stats(camsim *cs, camsim_mount *m)
{
    const char *state = !m->up                           ? "down"
                        : g_atomic_int_get(&m->refusing) ? "refusing"
                        : g_atomic_int_get(&m->stalled)  ? "stalled"
                                                         : "up";
    json_t *loops = json_array();
    g_mutex_lock(&m->lock);
    uint64_t n = m->loop_count;
    uint64_t first = n > CAMSIM_LOOPS_KEPT ? n - CAMSIM_LOOPS_KEPT : 0;
    for (uint64_t i = first; i < n; i++)
        json_array_append_new(loops, json_integer(m->loops[i % CAMSIM_LOOPS_KEPT]));
    double fps = m->fps;
    int frames = m->frames;
    g_mutex_unlock(&m->lock);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:i,s:o,s:I,s:f,s:i}", "id", m->id, "url", m->path,
                  "codec", camsim_codec_name(m->codec), "clients", camsim_mount_clients(cs, m),
                  "state", state, "pipelines", g_atomic_int_get(&m->pipelines), "pipelines_created",
                  g_atomic_int_get(&m->pipelines_created), "loops", loops, "loop_count",
                  (json_int_t)n, "fps", fps, "frames", frames);
    if (m->file)
        json_object_set_new(o, "file", json_string(m->file));
    return o;
}

/* codec and add: the clip is encoded in a thread, the mount changed on the
 * main loop */
typedef struct encode_job {
    ctl_conn *c;
    char *id;
    camsim_codec codec;
    bool add;
} encode_job;

static void encode_job_free(encode_job *j)
{
    g_free(j->id);
    g_free(j);
}

static void encode_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    encode_job *j = data;
    camsim_clip_spec spec = j->c->cs->clip;
    spec.codec = j->codec;
    char *path;
    bool encoded;
    gc_err err = {0};
    if (camsim_clip_ensure(j->c->cs->cache, &spec, &path, &encoded, &err) != 0)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else {
        g_free(path);
        g_task_return_boolean(task, TRUE);
    }
}

static void encode_done(GObject *src, GAsyncResult *res, gpointer ud)
{
    encode_job *j = g_task_get_task_data(G_TASK(res));
    ctl_conn *c = j->c;
    GError *gerr = NULL;
    gc_err err = {0};
    if (!g_task_propagate_boolean(G_TASK(res), &gerr)) {
        reply_err(c, gerr->message);
        g_error_free(gerr);
        return;
    }
    /* the clip is in the cache now: these find it there */
    camsim_mount *m = camsim_mount_find(c->cs, j->id);
    if (j->add) {
        if (!camsim_mount_add_clip(c->cs, j->id, j->codec, &err))
            reply_err(c, err.msg);
        else
            reply_ok(c);
    } else if (!m) {
        reply_err(c, "the mount went away");
    } else if (camsim_mount_set_codec(c->cs, m, j->codec, &err) != 0) {
        reply_err(c, err.msg);
    } else {
        reply_ok(c);
    }
}

static void start_encode(ctl_conn *c, const char *id, camsim_codec codec, bool add)
{
    encode_job *j = g_new0(encode_job, 1);
    j->c = c;
    j->id = g_strdup(id);
    j->codec = codec;
    j->add = add;
    GTask *t = g_task_new(NULL, c->cancel, encode_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)encode_job_free);
    g_task_run_in_thread(t, encode_thread);
    g_object_unref(t);
}

static void run_command(ctl_conn *c, char *line)
{
    camsim *cs = c->cs;
    char **tok = g_strsplit_set(g_strstrip(line), " \t", -1);
    char *a[4] = {NULL};
    int n = 0;
    for (char **t = tok; *t; t++)
        if (**t) {
            if (n < 4)
                a[n] = *t;
            n++;
        }
    char msg[512];
    const char *cmd = a[0] ? a[0] : "";
    camsim_mount *m = NULL;
    static const char *const with_id[] = {"drop",  "stall", "resume", "auth", "password",
                                          "codec", "down",  "up",     NULL};
    bool needs_id = g_strv_contains(with_id, cmd);
    if (needs_id) {
        if (!a[1]) {
            snprintf(msg, sizeof msg, "%s: which mount? (%s ID ...)", cmd, cmd);
            reply_err(c, msg);
            goto out;
        }
        m = camsim_mount_find(cs, a[1]);
        if (!m) {
            snprintf(msg, sizeof msg, "no mount \"%.64s\"", a[1]);
            reply_err(c, msg);
            goto out;
        }
    }
    log_info("camsim", "control command=%s mount=%s", cmd[0] ? cmd : "-", m ? m->id : "-");
    if (strcmp(cmd, "stats") == 0) {
        json_t *arr = json_array();
        for (guint i = 0; i < cs->mounts->len; i++)
            json_array_append_new(arr, mount_stats(cs, g_ptr_array_index(cs->mounts, i)));
        reply(c, json_pack("{s:b,s:o}", "ok", 1, "mounts", arr));
    } else if (strcmp(cmd, "drop") == 0 && n == 2) {
        int k = camsim_mount_drop(cs, m);
        reply(c, json_pack("{s:b,s:i}", "ok", 1, "dropped", k));
    } else if (strcmp(cmd, "stall") == 0 && n == 3) {
        gc_err err = {0};
        int64_t s;
        if (gc_parse_int(a[2], "SECONDS", 0, 86400, &s, &err) != 0) {
            reply_err(c, err.msg);
            goto out;
        }
        camsim_mount_stall(cs, m, (int)s);
        reply_ok(c);
    } else if (strcmp(cmd, "resume") == 0 && n == 2) {
        camsim_mount_resume(cs, m);
        reply_ok(c);
    } else if (strcmp(cmd, "auth") == 0 && n == 3 &&
               (strcmp(a[2], "on") == 0 || strcmp(a[2], "off") == 0)) {
        g_atomic_int_set(&m->refusing, strcmp(a[2], "off") == 0);
        log_info("camsim", "auth %s mount=%s", a[2], m->id);
        reply_ok(c);
    } else if (strcmp(cmd, "password") == 0 && n == 3) {
        camsim_mount_set_password(m, a[2]);
        reply_ok(c);
    } else if (strcmp(cmd, "codec") == 0 && n == 3) {
        camsim_codec codec;
        if (camsim_codec_parse(a[2], &codec) != 0) {
            reply_err(c, "codec must be h264 or h265");
            goto out;
        }
        if (m->file) {
            gc_err err = {0};
            camsim_mount_set_codec(cs, m, codec, &err);
            reply_err(c, err.msg);
            goto out;
        }
        start_encode(c, m->id, codec, false);
    } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && n == 2) {
        camsim_mount_set_up(cs, m, strcmp(cmd, "up") == 0);
        reply_ok(c);
    } else if (strcmp(cmd, "add") == 0 && (n == 2 || n == 3)) {
        camsim_codec codec = CAMSIM_H264;
        if (n == 3 && camsim_codec_parse(a[2], &codec) != 0) {
            reply_err(c, "codec must be h264 or h265");
            goto out;
        }
        if (camsim_mount_find(cs, a[1])) {
            snprintf(msg, sizeof msg, "mount %.64s exists already", a[1]);
            reply_err(c, msg);
            goto out;
        }
        start_encode(c, a[1], codec, true);
    } else {
        snprintf(msg, sizeof msg,
                 "unknown command or arguments \"%.64s\": drop ID, stall ID SECONDS, resume ID, "
                 "auth ID on|off, password ID NEW, codec ID h264|h265, down ID, up ID, "
                 "add ID [h264|h265], stats",
                 cmd);
        reply_err(c, msg);
    }
out:
    g_strfreev(tok);
}

static void line_read(GObject *src, GAsyncResult *res, gpointer ud)
{
    ctl_conn *c = ud;
    GError *gerr = NULL;
    gsize len = 0;
    char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, &len, &gerr);
    if (!line) {
        g_clear_error(&gerr);
        conn_free(c);
        return;
    }
    run_command(c, line);
    g_free(line);
}

static void read_next(ctl_conn *c)
{
    g_data_input_stream_read_line_async(c->in, G_PRIORITY_DEFAULT, c->cancel, line_read, c);
}

static gboolean incoming(GSocketService *svc, GSocketConnection *conn, GObject *src, gpointer ud)
{
    ctl_conn *c = g_new0(ctl_conn, 1);
    c->cs = ud;
    c->conn = g_object_ref(conn);
    c->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    g_data_input_stream_set_newline_type(c->in, G_DATA_STREAM_NEWLINE_TYPE_ANY);
    c->cancel = g_cancellable_new();
    conns = g_list_prepend(conns, c);
    read_next(c);
    return TRUE;
}

int camsim_control_start(camsim *cs, gc_err *err)
{
    GError *gerr = NULL;
    GInetAddress *addr = g_inet_address_new_from_string(cs->bind);
    if (!addr)
        return gc_fail(err, GC_EINVAL, "--bind", "--bind %s is not an IP address", cs->bind);
    GSocketAddress *sa = g_inet_socket_address_new(addr, (guint16)cs->control_port);
    g_object_unref(addr);
    cs->control = g_socket_service_new();
    GSocketAddress *bound = NULL;
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(cs->control), sa, G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, &bound, &gerr)) {
        int rc = gc_fail(err, GC_EIO, "--control", "control port %s:%d: %s", cs->bind,
                         cs->control_port, gerr->message);
        g_error_free(gerr);
        g_object_unref(sa);
        g_clear_object(&cs->control);
        return rc;
    }
    g_object_unref(sa);
    cs->control_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_object_unref(bound);
    g_signal_connect(cs->control, "incoming", G_CALLBACK(incoming), cs);
    g_socket_service_start(cs->control);
    log_info("camsim", "control listening addr=%s port=%d", cs->bind, cs->control_port);
    return 0;
}

void camsim_control_stop(camsim *cs)
{
    if (!cs->control)
        return;
    g_socket_service_stop(cs->control);
    g_socket_listener_close(G_SOCKET_LISTENER(cs->control));
    g_clear_object(&cs->control);
    /* each pending read ends in line_read, which frees its connection */
    for (GList *l = conns; l; l = l->next)
        g_cancellable_cancel(((ctl_conn *)l->data)->cancel);
}
