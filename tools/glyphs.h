/* glyphs: MapLibre's glyph ranges (signed distance fields in the glyphs.proto
 * format) rendered from a font file with FreeType, so that the dashboard's
 * labels need no font server and nothing fetched: the build writes
 * DIR/<fontstack>/<start>-<end>.pbf and gridcc serves DIR at /glyphs/.
 *
 * Metrics are node-fontnik's, so MapLibre places our glyphs as it places
 * those of every glyph server: 24 px, a 3 px buffer, an 8 px radius with the
 * edge at 191 of 255, boxes rounded to whole pixels, top measured from the
 * face's ascender. Noto Sans CJK's is 28 px, which puts our baseline within
 * half a pixel of where MapLibre sets the ideographs it draws itself (27.5
 * below the same origin), so Latin and Chinese share a line. */
#ifndef GRIDCC_GLYPHS_H
#define GRIDCC_GLYPHS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/err.h"

#define GLYPHS_SIZE 24   /* px: MapLibre's ONE_EM */
#define GLYPHS_BUFFER 3  /* px around each bitmap: MapLibre's GLYPH_PBF_BORDER */
#define GLYPHS_RADIUS 8  /* px of distance the 8 bits span */
#define GLYPHS_CUTOFF 64 /* of 256: where the edge sits, 255 - 64 = 191 */

typedef struct glyphs_font glyphs_font;

/* One range MapLibre asks for: start a multiple of 256, end = start + 255. */
typedef struct glyphs_span {
    uint32_t start, end;
} glyphs_span;

/* Opens face face_index of the font at path (a .ttc holds several).
 * NULL with err naming the file when it cannot be read, is no font, has no
 * such face or no outlines. Close with glyphs_font_close. */
glyphs_font *glyphs_font_open(const char *path, int face_index, gc_err *err);
void glyphs_font_close(glyphs_font *f);
/* "Family Style" of the open face (borrowed, valid until close). */
const char *glyphs_font_label(const glyphs_font *f);

/* The glyphs message for codepoints span.start..span.end, one fontstack
 * called name; codepoints the font lacks are left out (an empty range is
 * still a valid message). *out is the encoded message, caller g_free()s it.
 * *n_glyphs (may be NULL) counts the glyphs in it. With f NULL every range
 * is empty: MapLibre drops a whole tile's labels, or the whole map, when one
 * range it asks for fails, so a range not rendered is better answered so. */
int glyphs_range(glyphs_font *f, const char *name, glyphs_span span, uint8_t **out, size_t *out_len,
                 size_t *n_glyphs, gc_err *err);

/* Writes dir/name/<start>-<end>.pbf for each span (each file replaced
 * atomically; f NULL: empty ranges). *n_glyphs and *bytes (may be NULL) sum
 * what was written. */
int glyphs_write(glyphs_font *f, const char *name, const char *dir, const glyphs_span *spans,
                 size_t n_spans, size_t *n_glyphs, size_t *bytes, gc_err *err);

/* Reads "0-255,256-511,12288-12543"; a longer aligned span such as
 * "0-8447" stands for each of its 256-codepoint ranges. Codepoints stop at
 * 65535, as MapLibre's requests do. *out: a GArray of glyphs_span, caller
 * frees with g_array_unref. */
int glyphs_parse_ranges(const char *s, GArray **out, gc_err *err);

#endif
