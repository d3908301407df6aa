/* glyphs: FreeType draws each glyph's distance field (its "sdf" renderer works
 * from the outline, so edges are exact), we re-express it in the encoding
 * MapLibre's shader reads, and protobuf-c writes the glyphs.proto message. */
#include "glyphs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_BBOX_H
#include FT_MODULE_H

#include "glyphs.pb-c.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

/* FreeType's spread: how far from the outline its 8-bit field reaches. The
 * same 8 px as MapLibre's radius, so nothing MapLibre can show is cut off. */
#define SPREAD 8

/* A crafted or broken font can ask for a glyph far past any real one at
 * 24 px; node-fontnik draws such a glyph as empty, and so do we (saying so). */
#define MAX_SIDE 256

struct glyphs_font {
    FT_Library lib;
    FT_Face face;
    char *path;
    char *label;
    long ascender; /* px at GLYPHS_SIZE, whole pixels as FreeType rounds them */
    uint8_t to_maplibre[256];
};

/* Debian's FreeType keeps no error strings: the number is what is left */
static const char *ft_error(FT_Error e, char buf[32])
{
    const char *s = FT_Error_String(e);
    if (s)
        return s;
    snprintf(buf, 32, "FreeType error 0x%02x", (unsigned)e);
    return buf;
}

/* FreeType writes 128 + k for a pixel between k and k + 1 steps inside the
 * outline and 128 - k for one as far outside (a step is SPREAD/128 px, 128
 * is the edge itself, within a step either way). MapLibre wants, as
 * node-fontnik and TinySDF write it, 255 - (d * 256/RADIUS + CUTOFF) for a
 * pixel d px outside (negative inside), clamped to 0..255. We take the middle
 * of FreeType's step so its truncation does not pull every edge inwards. */
static void fill_table(uint8_t t[256])
{
    const double step = (double)SPREAD / 128.0;
    for (int v = 0; v < 256; v++) {
        double outside = 0;
        if (v > 128)
            outside = -((v - 128) + 0.5) * step;
        else if (v < 128)
            outside = ((128 - v) + 0.5) * step;
        double n = outside * (256.0 / GLYPHS_RADIUS) + GLYPHS_CUTOFF;
        n = n < 0 ? 0 : n > 255 ? 255 : n;
        t[v] = (uint8_t)(255 - (int)n);
    }
}

glyphs_font *glyphs_font_open(const char *path, int face_index, gc_err *err)
{
    /* FreeType's own message for a missing file is "cannot open resource",
     * which does not say which or why */
    if (access(path, R_OK) != 0) {
        gc_fail(err, GC_EINVAL, "font", "%s: %s", path, g_strerror(errno));
        return NULL;
    }
    char ebuf[32];
    glyphs_font *f = g_new0(glyphs_font, 1);
    FT_Error e = FT_Init_FreeType(&f->lib);
    if (e) {
        gc_fail(err, GC_EIO, "font", "FreeType will not start: %s", ft_error(e, ebuf));
        goto fail_alloc;
    }
    FT_Int spread = SPREAD;
    e = FT_Property_Set(f->lib, "sdf", "spread", &spread);
    if (e) {
        gc_fail(err, GC_EIO, "font", "this FreeType has no SDF renderer (2.11 or later has): %s",
                ft_error(e, ebuf));
        goto fail_lib;
    }
    e = FT_New_Face(f->lib, path, face_index, &f->face);
    if (e) {
        FT_Face first = NULL;
        if (face_index > 0 && !FT_New_Face(f->lib, path, 0, &first)) {
            gc_fail(err, GC_EINVAL, "face-index", "%s: has %ld faces (0 to %ld), not face %d", path,
                    first->num_faces, first->num_faces - 1, face_index);
            FT_Done_Face(first);
        } else {
            gc_fail(err, GC_EINVAL, "font", "%s: not a font FreeType can read (%s)", path,
                    ft_error(e, ebuf));
        }
        goto fail_lib;
    }
    if (!FT_IS_SCALABLE(f->face)) {
        gc_fail(err, GC_EINVAL, "font", "%s: face %d has bitmaps only, no outlines to draw from",
                path, face_index);
        goto fail_face;
    }
    e = FT_Set_Char_Size(f->face, 0, GLYPHS_SIZE * 64, 0, 0);
    if (e) {
        gc_fail(err, GC_EINVAL, "font", "%s: cannot be sized to %d px (%s)", path, GLYPHS_SIZE,
                ft_error(e, ebuf));
        goto fail_face;
    }
    f->ascender = f->face->size->metrics.ascender / 64;
    f->path = g_strdup(path);
    f->label = g_strdup_printf("%s %s", f->face->family_name ? f->face->family_name : "?",
                               f->face->style_name ? f->face->style_name : "");
    fill_table(f->to_maplibre);
    return f;

fail_face:
    FT_Done_Face(f->face);
fail_lib:
    FT_Done_FreeType(f->lib);
fail_alloc:
    g_free(f);
    return NULL;
}

void glyphs_font_close(glyphs_font *f)
{
    if (!f)
        return;
    FT_Done_Face(f->face);
    FT_Done_FreeType(f->lib);
    g_free(f->path);
    g_free(f->label);
    g_free(f);
}

const char *glyphs_font_label(const glyphs_font *f)
{
    return f->label;
}

/* One glyph, as node-fontnik's RenderSDF measures it: unhinted at 24 px, the
 * outline's box rounded to whole pixels (left, top, width, height), the
 * advance truncated to whole pixels, top less the ascender; the bitmap is the
 * box and GLYPHS_BUFFER px around it, first row at the top. A glyph whose box
 * is empty (a space) keeps its advance and has no bitmap. */
static int glyph_render(glyphs_font *f, uint32_t cp, FT_UInt index, GlyphsPbf__Glyph *g,
                        gc_err *err)
{
    char ebuf[32];
    FT_Error e = FT_Load_Glyph(f->face, index, FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP);
    if (e)
        return gc_fail(err, GC_EINVAL, "font", "%s: U+%04X (glyph %u) cannot be loaded (%s)",
                       f->path, cp, index, ft_error(e, ebuf));
    FT_GlyphSlot slot = f->face->glyph;
    g->id = cp;
    g->advance = slot->metrics.horiAdvance > 0 ? (uint32_t)(slot->metrics.horiAdvance / 64) : 0;
    g->top = (int32_t)-f->ascender;
    if (slot->format != FT_GLYPH_FORMAT_OUTLINE || slot->outline.n_points == 0)
        return 0;

    FT_BBox box;
    FT_Outline_Get_BBox(&slot->outline, &box);
    long xmin = lround(box.xMin / 64.0), xmax = lround(box.xMax / 64.0);
    long ymin = lround(box.yMin / 64.0), ymax = lround(box.yMax / 64.0);
    if (xmax == xmin || ymax == ymin)
        return 0;
    if (xmax - xmin > MAX_SIDE || ymax - ymin > MAX_SIDE) {
        log_warn("glyphs",
                 "glyph drawn empty: larger than %d px font=%s codepoint=U+%04X "
                 "width=%ld height=%ld",
                 MAX_SIDE, f->path, cp, xmax - xmin, ymax - ymin);
        return 0;
    }
    g->left = (int32_t)xmin;
    g->top = (int32_t)(ymax - f->ascender);
    g->width = (uint32_t)(xmax - xmin);
    g->height = (uint32_t)(ymax - ymin);

    e = FT_Render_Glyph(slot, FT_RENDER_MODE_SDF);
    if (e)
        return gc_fail(err, GC_EINVAL, "font", "%s: U+%04X (glyph %u): no distance field (%s)",
                       f->path, cp, index, ft_error(e, ebuf));
    const FT_Bitmap *bm = &slot->bitmap;
    if (bm->pixel_mode != FT_PIXEL_MODE_GRAY || bm->pitch < 0)
        return gc_fail(err, GC_EIO, "font",
                       "%s: U+%04X: FreeType's field came back as pixel "
                       "mode %d, pitch %d, not 8-bit rows top first",
                       f->path, cp, bm->pixel_mode, bm->pitch);

    /* Both grids are whole pixels in the same space: our column x is
     * FreeType's column x + (xmin - BUFFER - bitmap_left), our row r its row
     * r + (bitmap_top - ymax - BUFFER). FreeType pads by SPREAD > BUFFER, so
     * every pixel we want is in its bitmap; one that is not would be further
     * than SPREAD from the outline. */
    size_t w = g->width + 2 * GLYPHS_BUFFER, h = g->height + 2 * GLYPHS_BUFFER;
    long dx = xmin - GLYPHS_BUFFER - slot->bitmap_left;
    long dy = slot->bitmap_top - ymax - GLYPHS_BUFFER;
    uint8_t *out = g_malloc(w * h);
    for (size_t r = 0; r < h; r++) {
        long fr = (long)r + dy;
        for (size_t x = 0; x < w; x++) {
            long fc = (long)x + dx;
            uint8_t v = 0;
            if (fr >= 0 && fr < (long)bm->rows && fc >= 0 && fc < (long)bm->width)
                v = bm->buffer[fr * bm->pitch + fc];
            out[r * w + x] = f->to_maplibre[v];
        }
    }
    g->has_bitmap = 1;
    g->bitmap.data = out;
    g->bitmap.len = w * h;
    return 0;
}

int glyphs_range(glyphs_font *f, const char *name, glyphs_span span, uint8_t **out, size_t *out_len,
                 size_t *n_glyphs, gc_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (span.end < span.start || span.end - span.start > 65535)
        return gc_fail(err, GC_EINVAL, "ranges", "%u-%u is not a range of codepoints", span.start,
                       span.end);
    size_t cap = (size_t)(span.end - span.start) + 1;
    GlyphsPbf__Glyph *glyphs = g_new(GlyphsPbf__Glyph, cap);
    GlyphsPbf__Glyph **ptrs = g_new(GlyphsPbf__Glyph *, cap);
    size_t n = 0;
    int rc = 0;
    for (uint32_t cp = span.start; f && cp <= span.end; cp++) {
        FT_UInt index = FT_Get_Char_Index(f->face, cp);
        if (index == 0)
            continue;
        GlyphsPbf__Glyph *g = &glyphs[n];
        glyphs_pbf__glyph__init(g);
        ptrs[n++] = g;
        rc = glyph_render(f, cp, index, g, err);
        if (rc)
            break;
    }
    if (!rc) {
        char *range = g_strdup_printf("%u-%u", span.start, span.end);
        GlyphsPbf__Fontstack stack = GLYPHS_PBF__FONTSTACK__INIT;
        stack.name = (char *)name;
        stack.range = range;
        stack.n_glyphs = n;
        stack.glyphs = ptrs;
        GlyphsPbf__Fontstack *stacks[] = {&stack};
        GlyphsPbf__Glyphs msg = GLYPHS_PBF__GLYPHS__INIT;
        msg.n_stacks = 1;
        msg.stacks = stacks;
        size_t len = glyphs_pbf__glyphs__get_packed_size(&msg);
        *out = g_malloc(len ? len : 1);
        *out_len = glyphs_pbf__glyphs__pack(&msg, *out);
        g_free(range);
        if (n_glyphs)
            *n_glyphs = n;
    }
    for (size_t i = 0; i < n; i++)
        g_free(glyphs[i].bitmap.data);
    g_free(ptrs);
    g_free(glyphs);
    return rc;
}

/* The name becomes a directory that MapLibre's request names: one path
 * component, or the file would land somewhere the server never looks. */
static int check_name(const char *name, gc_err *err)
{
    if (!name || !*name)
        return gc_fail(err, GC_EINVAL, "name", "the fontstack name is missing");
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return gc_fail(err, GC_EINVAL, "name",
                       "fontstack name \"%s\" must be one directory name (no '/')", name);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            return gc_fail(err, GC_EINVAL, "name", "fontstack name has a control character");
    if (!g_utf8_validate(name, -1, NULL))
        return gc_fail(err, GC_EINVAL, "name", "fontstack name is not UTF-8");
    return 0;
}

int glyphs_write(glyphs_font *f, const char *name, const char *dir, const glyphs_span *spans,
                 size_t n_spans, size_t *n_glyphs, size_t *bytes, gc_err *err)
{
    int rc = check_name(name, err);
    if (rc)
        return rc;
    char *stack_dir = g_build_filename(dir, name, NULL);
    size_t total_glyphs = 0, total_bytes = 0;
    if (g_mkdir_with_parents(stack_dir, 0755) != 0) {
        rc = gc_fail(err, GC_EIO, "out", "%s: %s", stack_dir, g_strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n_spans && !rc; i++) {
        uint8_t *buf = NULL;
        size_t len = 0, n = 0;
        rc = glyphs_range(f, name, spans[i], &buf, &len, &n, err);
        if (rc)
            break;
        char *base = g_strdup_printf("%u-%u.pbf", spans[i].start, spans[i].end);
        char *path = g_build_filename(stack_dir, base, NULL);
        GError *ge = NULL;
        if (!g_file_set_contents(path, (const char *)buf, (gssize)len, &ge)) {
            rc = gc_fail(err, GC_EIO, "out", "%s", ge->message);
            g_error_free(ge);
        }
        total_glyphs += n;
        total_bytes += len;
        g_free(path);
        g_free(base);
        g_free(buf);
    }
done:
    g_free(stack_dir);
    if (n_glyphs)
        *n_glyphs = total_glyphs;
    if (bytes)
        *bytes = total_bytes;
    return rc;
}

int glyphs_parse_ranges(const char *s, GArray **out, gc_err *err)
{
    *out = NULL;
    if (!s || !*s)
        return gc_fail(err, GC_EINVAL, "ranges", "--ranges is empty");
    GArray *spans = g_array_new(FALSE, FALSE, sizeof(glyphs_span));
    char **parts = g_strsplit(s, ",", -1);
    int rc = 0;
    for (char **p = parts; *p && !rc; p++) {
        char **ends = g_strsplit(*p, "-", 3);
        int64_t a = 0, b = 0;
        if (g_strv_length(ends) != 2) {
            rc = gc_fail(err, GC_EINVAL, "ranges", "--ranges: \"%s\" is not START-END", *p);
        } else if (gc_parse_int(ends[0], "ranges", 0, 65535, &a, err) ||
                   gc_parse_int(ends[1], "ranges", 0, 65535, &b, err)) {
            rc = GC_EINVAL;
        } else if (a % 256 != 0 || (b + 1) % 256 != 0 || b < a) {
            rc = gc_fail(err, GC_EINVAL, "ranges",
                         "--ranges: %s is not made of the 256-codepoint ranges MapLibre asks for "
                         "(0-255, 256-511, …)",
                         *p);
        } else {
            for (int64_t start = a; start < b; start += 256) {
                glyphs_span span = {(uint32_t)start, (uint32_t)start + 255};
                g_array_append_val(spans, span);
            }
        }
        g_strfreev(ends);
    }
    g_strfreev(parts);
    if (rc) {
        g_array_unref(spans);
        return rc;
    }
    *out = spans;
    return 0;
}
