/* http_form: forms (multipart/form-data and urlencoded) parsed by
 * libwebsockets' lws_spa. On a route added with http_route_form the body is
 * parsed while it arrives, never held whole; elsewhere http_form_parse reads
 * a body already received. */
#include <stdio.h>
#include <string.h>

#include "http_priv.h"

#define FORM_PRESIZE_MAX ((size_t)16 << 20)
#define FORM_MAX_FILES 32
/* A streamed form's last bytes are held back until the body is complete:
 * lws' parser, on seeing the closing boundary, marks the body as ended on the
 * connection, and bytes after it would be read as the next request. */
#define FORM_TAIL 256

typedef struct form_ctx {
    http_form *f;
    http_form_file *cur;
    size_t size_hint;     /* what is left of the body: no part is larger */
    const char *why;      /* set when a part is refused */
} form_ctx;

/* A form parsed as it arrives. */
struct form_stream {
    struct lws_spa *spa;
    const char *const *names;
    int n;
    form_ctx ctx;
    http_form form;
    size_t length, got;   /* declared, and received so far */
    GByteArray *tail;     /* the held-back end of the body (FORM_TAIL) */
    const char *why;
    bool bad;
};

bool http_is_form(const http_req *r)
{
    return !g_ascii_strncasecmp(r->content_type, "multipart/form-data", 19) ||
           !g_ascii_strncasecmp(r->content_type, "application/x-www-form-urlencoded", 33);
}

static int form_file(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states state)
{
    form_ctx *c = data;
    if (state == LWS_UFS_OPEN) {
        if (c->f->files->len >= FORM_MAX_FILES) {
            c->why = "more than 32 file parts";
            return -1;
        }
        c->cur = g_new0(http_form_file, 1);
        c->cur->name = g_strdup(name ? name : "");
        c->cur->filename = g_strdup(filename ? filename : "");
        /* the first file is usually the photo: one allocation of the most it
         * can be (what is left of the body), not a copy per power of two.
         * Later parts grow as they come, so many small parts cost little. */
        c->cur->data = c->f->files->len
                           ? g_byte_array_new()
                           : g_byte_array_sized_new((guint)MIN(c->size_hint, FORM_PRESIZE_MAX));
        g_ptr_array_add(c->f->files, c->cur);
    } else if ((state == LWS_UFS_CONTENT || state == LWS_UFS_FINAL_CONTENT) && c->cur) {
        if (len > 0)
            g_byte_array_append(c->cur->data, (const guint8 *)buf, (guint)len);
        if (state == LWS_UFS_FINAL_CONTENT)
            c->cur = NULL;
    }
    return 0;
}

static void form_file_free(gpointer p)
{
    http_form_file *f = p;
    g_free(f->name);
    g_free(f->filename);
    g_byte_array_free(f->data, TRUE);
    g_free(f);
}

int http_form_parse(http_req *r, const char *const *names, int n, http_form *out, gc_err *err)
{
    req_priv *p = r->priv;
    out->fields = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    out->files = g_ptr_array_new_with_free_func(form_file_free);
    if (!g_ascii_strncasecmp(r->content_type, "multipart/", 10) &&
        !strstr(r->content_type, "boundary="))
        return gc_fail(err, GC_EINVAL, "Content-Type", "multipart body without a boundary");
    if (p->fs) {   /* parsed on arrival */
        form_stream *fs = p->fs;
        g_hash_table_destroy(out->fields);
        g_ptr_array_free(out->files, TRUE);
        *out = fs->form;
        fs->form = (http_form){0};
        if (fs->bad)
            return gc_fail(err, GC_EINVAL, "body", "%s",
                           fs->why ? fs->why
                           : fs->ctx.why ? fs->ctx.why
                                         : "malformed form body");
        return 0;
    }
    form_ctx c = {out, NULL, r->body->len, NULL};
    lws_spa_create_info_t info = {.param_names = names, .count_params = n,
                                  .max_storage = 65536, .opt_cb = form_file, .opt_data = &c};
    struct lws_spa *spa = lws_spa_create_via_info(p->wsi, &info);
    if (!spa)
        return gc_fail(err, GC_EINVAL, "Content-Type", "cannot parse a %s body", r->content_type);
    int rc = lws_spa_process(spa, (const char *)r->body->data, (int)r->body->len);
    if (rc >= 0)
        rc = lws_spa_finalize(spa);
    if (rc < 0) {
        lws_spa_destroy(spa);
        return gc_fail(err, GC_EINVAL, "body", "%s", c.why ? c.why : "malformed form body");
    }
    for (int i = 0; i < n; i++) {
        const char *v = lws_spa_get_string(spa, i);
        if (v)
            g_hash_table_insert(out->fields, (gpointer)names[i], g_strdup(v));
    }
    lws_spa_destroy(spa);
    return 0;
}

void http_form_clear(http_form *f)
{
    if (f->fields)
        g_hash_table_destroy(f->fields);
    if (f->files)
        g_ptr_array_free(f->files, TRUE);
    f->fields = NULL;
    f->files = NULL;
}

void form_stream_free(form_stream *fs)
{
    if (!fs)
        return;
    if (fs->spa)
        lws_spa_destroy(fs->spa);
    http_form_clear(&fs->form);
    g_byte_array_free(fs->tail, TRUE);
    g_free(fs);
}

form_stream *form_stream_new(struct lws *wsi, const char *const *names, int n, size_t length)
{
    form_stream *fs = g_new0(form_stream, 1);
    fs->names = names;
    fs->n = n;
    fs->length = length;
    fs->tail = g_byte_array_new();
    fs->form.fields = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    fs->form.files = g_ptr_array_new_with_free_func(form_file_free);
    fs->ctx = (form_ctx){&fs->form, NULL, length, NULL};
    lws_spa_create_info_t info = {.param_names = names, .count_params = n,
                                  .max_storage = 65536, .opt_cb = form_file,
                                  .opt_data = &fs->ctx};
    fs->spa = lws_spa_create_via_info(wsi, &info);
    fs->bad = !fs->spa;
    return fs;
}

/* Parses len bytes that start `at` bytes into the body. */
static void form_stream_parse(form_stream *fs, const void *in, size_t len, size_t at)
{
    if (fs->bad || !len)
        return;
    fs->ctx.size_hint = fs->length > at ? fs->length - at : 0;
    if (lws_spa_process(fs->spa, in, (int)len) < 0)
        fs->bad = true;
}

void form_stream_feed(form_stream *fs, const void *in, size_t len)
{
    size_t before = fs->got;
    fs->got += len;
    if (fs->bad)
        return;   /* the rest is drained; the handler answers 400 */
    size_t hold_from = fs->length > FORM_TAIL ? fs->length - FORM_TAIL : 0;
    size_t now = before >= hold_from ? 0 : MIN(len, hold_from - before);
    form_stream_parse(fs, in, now, before);
    g_byte_array_append(fs->tail, (const guint8 *)in + now, (guint)(len - now));
}

void form_stream_end(form_stream *fs)
{
    if (!fs->spa)
        return;
    if (fs->got != fs->length) {
        /* the closing boundary came before the declared end: what follows
         * it must not be taken for another request */
        fs->bad = true;
        fs->why = "the form's closing boundary comes before the end of the body";
    }
    form_stream_parse(fs, fs->tail->data, fs->tail->len, fs->got - fs->tail->len);
    if (!fs->bad && lws_spa_finalize(fs->spa) < 0)
        fs->bad = true;
    for (int i = 0; i < fs->n && !fs->bad; i++) {
        const char *v = lws_spa_get_string(fs->spa, i);
        if (v)
            g_hash_table_insert(fs->form.fields, (gpointer)fs->names[i], g_strdup(v));
    }
    lws_spa_destroy(fs->spa);
    fs->spa = NULL;
}

size_t form_stream_got(const form_stream *fs) { return fs->got; }

bool form_stream_short(const form_stream *fs) { return fs->got != fs->length; }
