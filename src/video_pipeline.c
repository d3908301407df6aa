/* video_pipeline: the text side of pipelines. Templates are files of
 * pipelines/ with {key} placeholders; every value put in is quoted for
 * gst_parse_launch, so a camera's URL stays one property value whatever it
 * holds. Also the backoff schedule and the redaction of credentials for logs. */
#include <string.h>

#include "gridcc/video.h"

/* A value as one double-quoted token of gst_parse_launch's grammar: its
 * lexer takes \" and \\ inside quotes and unescapes them. */
static void quote(GString *s, const char *v)
{
    g_string_append_c(s, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            g_string_append_c(s, '\\');
        g_string_append_c(s, *v);
    }
    g_string_append_c(s, '"');
}

int video_template_expand(const char *tmpl, const char *const *keys, const char *const *vals, int n,
                          char **out, gc_err *err)
{
    GString *s = g_string_sized_new(strlen(tmpl) + 256);
    for (const char *p = tmpl; *p;) {
        if (*p == '#' && (p == tmpl || p[-1] == '\n')) { /* a comment line */
            const char *nl = strchr(p, '\n');
            p = nl ? nl + 1 : p + strlen(p);
            continue;
        }
        if (*p != '{') {
            g_string_append_c(s, *p == '\n' ? ' ' : *p);
            p++;
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end) {
            g_string_free(s, TRUE);
            return gc_fail(err, GC_EINVAL, "template", "an unclosed '{' in the template");
        }
        int i;
        for (i = 0; i < n; i++)
            if (strlen(keys[i]) == (size_t)(end - p - 1) && !strncmp(keys[i], p + 1, end - p - 1))
                break;
        if (i == n) {
            gc_fail(err, GC_EINVAL, "template", "unknown placeholder {%.*s}", (int)(end - p - 1),
                    p + 1);
            g_string_free(s, TRUE);
            return GC_EINVAL;
        }
        if (strpbrk(vals[i], "\n\r")) {
            g_string_free(s, TRUE);
            return gc_fail(err, GC_EINVAL, keys[i], "%s holds a line break", keys[i]);
        }
        quote(s, vals[i]);
        p = end + 1;
    }
    *out = g_string_free(s, FALSE);
    return 0;
}

int64_t video_backoff_ms(int attempt, double u, int min_ms, int max_ms)
{
    int64_t d = min_ms;
    for (int i = 0; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return (int64_t)((double)d * (0.8 + 0.4 * u));
}

char *video_url_redact(const char *url)
{
    if (!url)
        return g_strdup("");
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = NULL;
    for (const char *p = host; *p && (!slash || p < slash); p++)
        if (*p == '@')
            at = p; /* the last '@' before the path ends the user info */
    if (!at)
        return g_strdup(url);
    return g_strdup_printf("%.*s***@%s", (int)(host - url), url, at + 1);
}

const char *video_state_name(video_state s)
{
    static const char *names[] = {"connecting", "playing", "stalled", "retrying", "failed"};
    return (unsigned)s < G_N_ELEMENTS(names) ? names[s] : "?";
}
