/* glyphs: the ranges MapLibre loads for the dashboard's labels, rendered from
 * the font the build uses and read back with protobuf-c's decoder. What is
 * checked is what MapLibre relies on: the fontstack's name and range, each
 * glyph's box and bearings as node-fontnik measures them, a bitmap of
 * (width + 6) * (height + 6) bytes with the edge at 191 and 32 steps a
 * pixel, first row at the top; missing codepoints absent, empty ranges still
 * a message; and the CLI naming a font it cannot read. */
#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "glyphs.h"
#include "glyphs.pb-c.h"

static glyphs_font *font;

static int open_font(void **state)
{
    gc_err err = {0};
    font = glyphs_font_open(GLYPHS_FONT, GLYPHS_FACE, &err);
    if (!font)
        fail_msg("%s", err.msg);
    return 0;
}

static int close_font(void **state)
{
    glyphs_font_close(font);
    return 0;
}

static GlyphsPbf__Glyphs *render(uint32_t start, uint32_t end)
{
    gc_err err = {0};
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;
    glyphs_span span = {start, end};
    if (glyphs_range(font, "Noto Sans Regular", span, &buf, &len, &n, &err))
        fail_msg("%s", err.msg);
    GlyphsPbf__Glyphs *msg = glyphs_pbf__glyphs__unpack(NULL, len, buf);
    g_free(buf);
    assert_non_null(msg);
    assert_int_equal(msg->n_stacks, 1);
    assert_int_equal(msg->stacks[0]->n_glyphs, n);
    return msg;
}

static const GlyphsPbf__Glyph *find(const GlyphsPbf__Fontstack *s, uint32_t id)
{
    for (size_t i = 0; i < s->n_glyphs; i++)
        if (s->glyphs[i]->id == id)
            return s->glyphs[i];
    return NULL;
}

static int px(const GlyphsPbf__Glyph *g, int x, int row)
{
    return g->bitmap.data[(size_t)row * (g->width + 6) + (size_t)x];
}

static void test_latin(void **state)
{
    GlyphsPbf__Glyphs *msg = render(0, 255);
    const GlyphsPbf__Fontstack *s = msg->stacks[0];
    assert_string_equal(s->name, "Noto Sans Regular");
    assert_string_equal(s->range, "0-255");

    /* a space advances the pen and draws nothing; its top is node-fontnik's
     * origin, the ascender above the baseline */
    const GlyphsPbf__Glyph *sp = find(s, ' ');
    assert_non_null(sp);
    assert_true(sp->advance > 0);
    assert_false(sp->has_bitmap);
    assert_int_equal(sp->width, 0);
    assert_int_equal(sp->height, 0);
    int ascender = -sp->top;
    assert_in_range(ascender, 20, 30);

    const GlyphsPbf__Glyph *a = find(s, 'A');
    assert_non_null(a);
    assert_true(a->width > 0 && a->height > 0);
    assert_true(a->has_bitmap);
    assert_int_equal(a->bitmap.len, (a->width + 6) * (a->height + 6));
    assert_in_range(a->advance, 10, 20);
    assert_true(a->left >= -2 && a->left <= 3); /* cmocka ranges are unsigned */
    /* 'A' stands on the baseline: its box top is its height above it */
    assert_int_equal(a->top, (int)a->height - ascender);
    const GlyphsPbf__Glyph *g = find(s, 'g');
    assert_non_null(g);
    /* and 'g' hangs 3 to 8 px below it */
    int g_bottom = g->top - (int)g->height + ascender;
    assert_true(g_bottom >= -8 && g_bottom <= -3);

    /* upright: down the middle column, the apex in the box's top third and
     * the crossbar in its lower half are inside (>= 192), the gap between
     * the legs on the last row is outside */
    int w = (int)a->width + 6, h = (int)a->height + 6, mid = w / 2;
    int top = 3, bottom = h - 4, apex = 0, bar = 0;
    for (int r = top; r < top + (int)a->height / 3; r++)
        apex = MAX(apex, px(a, mid, r));
    for (int r = top + (int)a->height / 2; r <= bottom; r++)
        bar = MAX(bar, px(a, mid, r));
    assert_true(apex >= 192);
    assert_true(bar >= 192);
    assert_true(px(a, mid, bottom) < 128);

    /* the corners lie in the buffer, over 2 px from any stroke */
    assert_true(px(a, 0, 0) < 32 && px(a, w - 1, 0) < 32);
    assert_true(px(a, 0, h - 1) < 128 && px(a, w - 1, h - 1) < 128);

    /* the encoding: under the left leg's flat foot, 0.5 px and 1.5 px
     * outside, MapLibre's 255 - (32 * d + 64) is 175 and 143 */
    int foot = 0;
    for (int x = 0; x < mid; x++)
        if (px(a, x, bottom) > px(a, foot, bottom))
            foot = x;
    assert_true(px(a, foot, bottom) >= 192);
    assert_in_range(px(a, foot, bottom + 1), 175 - 6, 175 + 6);
    assert_in_range(px(a, foot, bottom + 2), 143 - 6, 143 + 6);

    /* codepoints the font lacks are left out, not drawn as a box */
    assert_null(find(s, 0x07));
    assert_null(find(s, 0x80));
    glyphs_pbf__glyphs__free_unpacked(msg, NULL);
}

static void test_empty_range_is_a_message(void **state)
{
    GlyphsPbf__Glyphs *msg = render(1536, 1791); /* Arabic: not in this font */
    assert_string_equal(msg->stacks[0]->name, "Noto Sans Regular");
    assert_string_equal(msg->stacks[0]->range, "1536-1791");
    assert_int_equal(msg->stacks[0]->n_glyphs, 0);
    glyphs_pbf__glyphs__free_unpacked(msg, NULL);
}

static void test_write_layout(void **state)
{
    char *dir = g_dir_make_tmp("test_glyphs-XXXXXX", NULL);
    assert_non_null(dir);
    glyphs_span spans[] = {{0, 255}, {1536, 1791}};
    gc_err err = {0};
    size_t n = 0, bytes = 0;
    if (glyphs_write(font, "Noto Sans Regular", dir, spans, 2, &n, &bytes, &err))
        fail_msg("%s", err.msg);
    assert_true(n > 150);
    const char *names[] = {"0-255.pbf", "1536-1791.pbf"};
    size_t sum = 0;
    for (size_t i = 0; i < 2; i++) {
        char *path = g_build_filename(dir, "Noto Sans Regular", names[i], NULL);
        char *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &data, &len, NULL))
            fail_msg("%s was not written", path);
        GlyphsPbf__Glyphs *msg = glyphs_pbf__glyphs__unpack(NULL, len, (uint8_t *)data);
        assert_non_null(msg);
        glyphs_pbf__glyphs__free_unpacked(msg, NULL);
        sum += len;
        g_unlink(path);
        g_free(data);
        g_free(path);
    }
    assert_int_equal(sum, bytes);

    /* a name is one directory: MapLibre's request could never reach another */
    char *stack = g_build_filename(dir, "Noto Sans Regular", NULL);
    assert_int_not_equal(glyphs_write(font, "../x", stack, spans, 1, NULL, NULL, &err), 0);
    assert_string_equal(err.field, "name");
    assert_int_equal(g_rmdir(stack), 0); /* nothing else was written */
    assert_int_equal(g_rmdir(dir), 0);
    g_free(stack);
    g_free(dir);
}

static void test_ranges(void **state)
{
    gc_err err = {0};
    GArray *spans = NULL;
    assert_int_equal(glyphs_parse_ranges("0-511,65280-65535", &spans, &err), 0);
    assert_int_equal(spans->len, 3);
    glyphs_span last = g_array_index(spans, glyphs_span, 2);
    assert_int_equal(last.start, 65280);
    assert_int_equal(last.end, 65535);
    g_array_unref(spans);
    assert_int_not_equal(glyphs_parse_ranges("0-254", &spans, &err), 0);
    assert_non_null(strstr(err.msg, "0-254"));
    assert_int_not_equal(glyphs_parse_ranges("0-255,x", &spans, &err), 0);
    assert_non_null(strstr(err.msg, "\"x\""));
    assert_int_not_equal(glyphs_parse_ranges("65536-65791", &spans, &err), 0);
    assert_null(spans);
}

static size_t glyphs_in(const char *dir, const char *file)
{
    char *path = g_build_filename(dir, "Noto Sans Regular", file, NULL);
    char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL))
        fail_msg("%s was not written", path);
    GlyphsPbf__Glyphs *msg = glyphs_pbf__glyphs__unpack(NULL, len, (uint8_t *)data);
    assert_non_null(msg);
    assert_string_equal(msg->stacks[0]->name, "Noto Sans Regular");
    size_t n = msg->stacks[0]->n_glyphs;
    glyphs_pbf__glyphs__free_unpacked(msg, NULL);
    g_unlink(path);
    g_free(data);
    g_free(path);
    return n;
}

static int run(char **argv, char **errs)
{
    int status = 0;
    GError *ge = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, errs, &status,
                      &ge))
        fail_msg("%s: %s", argv[0], ge->message);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* as the build runs it: the ranges asked for rendered, every other range of
 * --empty written with no glyphs, so that no request of MapLibre's fails */
static void test_cli_writes(void **state)
{
    char *dir = g_dir_make_tmp("test_glyphs-XXXXXX", NULL);
    char face[16];
    g_snprintf(face, sizeof face, "%d", GLYPHS_FACE);
    char *argv[] = {
        GLYPHS_BIN, "--font", GLYPHS_FONT, "--face-index", face,      "--name", "Noto Sans Regular",
        "--out",    dir,      "--ranges",  "0-255",        "--empty", "0-767",  NULL};
    char *errs = NULL;
    if (run(argv, &errs) != 0)
        fail_msg("exit status not 0: %s", errs);
    assert_true(glyphs_in(dir, "0-255.pbf") > 150);
    assert_int_equal(glyphs_in(dir, "256-511.pbf"), 0);
    assert_int_equal(glyphs_in(dir, "512-767.pbf"), 0);
    char *stack = g_build_filename(dir, "Noto Sans Regular", NULL);
    assert_int_equal(g_rmdir(stack), 0); /* those three and nothing else */
    assert_int_equal(g_rmdir(dir), 0);
    g_free(stack);
    g_free(errs);
    g_free(dir);
}

/* the build runs the CLI: a font that is not there must stop it with the
 * file's name, not with FreeType's "cannot open resource" */
static void test_cli_missing_font(void **state)
{
    char *dir = g_dir_make_tmp("test_glyphs-XXXXXX", NULL);
    const char *missing = "/nonexistent/NotoSansCJK-Regular.ttc";
    char *argv[] = {GLYPHS_BIN, "--font", (char *)missing, "--name", "Noto Sans Regular",
                    "--out",    dir,      "--ranges",      "0-255",  NULL};
    char *errs = NULL;
    assert_int_equal(run(argv, &errs), 1);
    if (!strstr(errs, missing) || !strstr(errs, "No such file"))
        fail_msg("stderr does not name the font: %s", errs);
    assert_int_equal(g_rmdir(dir), 0); /* and wrote nothing */
    g_free(errs);
    g_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latin),        cmocka_unit_test(test_empty_range_is_a_message),
        cmocka_unit_test(test_write_layout), cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_cli_writes),   cmocka_unit_test(test_cli_missing_font),
    };
    return cmocka_run_group_tests(tests, open_font, close_font);
}
