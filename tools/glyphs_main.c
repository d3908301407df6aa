/* gridcc-glyphs: the build's glyph generator (see glyphs.h). Exit status 0
 * written, 1 input rejected (a message naming the file or option), 2 usage. */
#include <getopt.h>
#include <glib.h>
#include <stdio.h>

#include "glyphs.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

static const char usage_text[] =
    "usage: gridcc-glyphs --font FILE [--face-index N] --name FONTSTACK --out DIR\n"
    "                     [--ranges 0-255,256-511,...] [--empty RANGES]\n"
    "  writes DIR/FONTSTACK/START-END.pbf (MapLibre glyph ranges) for each range;\n"
    "  a span such as 0-8447 stands for each of its 256-codepoint ranges\n"
    "  (default: 0-65535, every range MapLibre may ask for); --empty: a file with\n"
    "  no glyphs for each of these ranges not rendered (MapLibre gives up a tile's\n"
    "  labels when a range it asks for is missing)\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "gridcc-glyphs: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

/* the ranges of stubs that are not among spans (those keep their glyphs) */
static GArray *not_rendered(GArray *stubs, GArray *spans)
{
    GArray *blank = g_array_new(FALSE, FALSE, sizeof(glyphs_span));
    for (guint i = 0; stubs && i < stubs->len; i++) {
        glyphs_span s = g_array_index(stubs, glyphs_span, i);
        gboolean rendered = FALSE;
        for (guint j = 0; j < spans->len && !rendered; j++)
            rendered = g_array_index(spans, glyphs_span, j).start == s.start;
        if (!rendered)
            g_array_append_val(blank, s);
    }
    return blank;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"font", required_argument, NULL, 'f'},   {"face-index", required_argument, NULL, 'i'},
        {"name", required_argument, NULL, 'n'},   {"out", required_argument, NULL, 'o'},
        {"ranges", required_argument, NULL, 'r'}, {"empty", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *font = NULL, *face = "0", *name = NULL, *out = NULL, *ranges = "0-65535",
               *empty = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': font = optarg; break;
        case 'i': face = optarg; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'r': ranges = optarg; break;
        case 'e': empty = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return usage(NULL);
        }
    }
    if (optind < argc)
        return usage("unexpected arguments");
    if (!font || !name || !out)
        return usage("--font, --name and --out are required");

    gc_err err = {0};
    int64_t face_index = 0;
    GArray *spans = NULL, *stubs = NULL;
    if (gc_parse_int(face, "--face-index", 0, 65535, &face_index, &err) ||
        glyphs_parse_ranges(ranges, &spans, &err) ||
        (empty && glyphs_parse_ranges(empty, &stubs, &err))) {
        fprintf(stderr, "gridcc-glyphs: %s\n", err.msg);
        if (spans)
            g_array_unref(spans);
        return 1;
    }
    GArray *blank = not_rendered(stubs, spans);
    if (stubs)
        g_array_unref(stubs);

    gint64 t0 = g_get_monotonic_time();
    int rc = 1;
    glyphs_font *f = glyphs_font_open(font, (int)face_index, &err);
    size_t n_glyphs = 0, bytes = 0, blank_bytes = 0;
    if (f &&
        !glyphs_write(f, name, out, (const glyphs_span *)(void *)spans->data, spans->len, &n_glyphs,
                      &bytes, &err) &&
        !glyphs_write(NULL, name, out, (const glyphs_span *)(void *)blank->data, blank->len, NULL,
                      &blank_bytes, &err)) {
        log_info("glyphs",
                 "written name=\"%s\" face=\"%s\" font=%s ranges=%u glyphs=%zu empty_ranges=%u "
                 "bytes=%zu ms=%lld",
                 name, glyphs_font_label(f), font, spans->len, n_glyphs, blank->len,
                 bytes + blank_bytes, (long long)((g_get_monotonic_time() - t0) / 1000));
        rc = 0;
    } else {
        fprintf(stderr, "gridcc-glyphs: %s\n", err.msg);
    }
    glyphs_font_close(f);
    g_array_unref(spans);
    g_array_unref(blank);
    return rc;
}
