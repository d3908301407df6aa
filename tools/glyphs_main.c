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
    "                     [--ranges 0-255,256-511,...]\n"
    "  writes DIR/FONTSTACK/START-END.pbf (MapLibre glyph ranges) for each range;\n"
    "  a span such as 0-8447 stands for each of its 256-codepoint ranges\n"
    "  (default: 0-65535, every range MapLibre may ask for)\n";

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "gridcc-glyphs: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"font", required_argument, NULL, 'f'},
                                         {"face-index", required_argument, NULL, 'i'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"ranges", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *font = NULL, *face = "0", *name = NULL, *out = NULL, *ranges = "0-65535";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': font = optarg; break;
        case 'i': face = optarg; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'r': ranges = optarg; break;
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
    GArray *spans = NULL;
    if (gc_parse_int(face, "--face-index", 0, 65535, &face_index, &err) ||
        glyphs_parse_ranges(ranges, &spans, &err)) {
        fprintf(stderr, "gridcc-glyphs: %s\n", err.msg);
        return 1;
    }
    gint64 t0 = g_get_monotonic_time();
    glyphs_font *f = glyphs_font_open(font, (int)face_index, &err);
    if (!f) {
        fprintf(stderr, "gridcc-glyphs: %s\n", err.msg);
        g_array_unref(spans);
        return 1;
    }
    size_t n_glyphs = 0, bytes = 0;
    int rc = glyphs_write(f, name, out, (const glyphs_span *)(void *)spans->data, spans->len,
                          &n_glyphs, &bytes, &err);
    if (rc)
        fprintf(stderr, "gridcc-glyphs: %s\n", err.msg);
    else
        log_info("glyphs",
                 "written name=\"%s\" face=\"%s\" font=%s ranges=%u glyphs=%zu "
                 "bytes=%zu ms=%lld",
                 name, glyphs_font_label(f), font, spans->len, n_glyphs, bytes,
                 (long long)((g_get_monotonic_time() - t0) / 1000));
    glyphs_font_close(f);
    g_array_unref(spans);
    return rc ? 1 : 0;
}
