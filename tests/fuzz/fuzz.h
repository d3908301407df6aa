/* fuzz: what every libFuzzer target shares. An invariant that fails aborts
 * with the condition and the input's shape, so libFuzzer keeps the input as
 * a crash just like a sanitizer finding. */
#ifndef GRIDCC_FUZZ_H
#define GRIDCC_FUZZ_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input as a C string (caller frees with g_free); a NUL inside ends it,
 * as it would end any C string the parsers are handed. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    return g_strndup((const char *)data, size);
}

/* A string field is NUL-terminated inside its array and valid UTF-8. */
#define CHECK_TEXT(arr)                                                                            \
    do {                                                                                           \
        CHECK(memchr((arr), 0, sizeof(arr)) != NULL, "%s not terminated", #arr);                   \
        CHECK(g_utf8_validate((arr), -1, NULL), "%s not UTF-8: %s", #arr, (arr));                  \
    } while (0)

/* Buildings named as the sample district's and real exports name them: an
 * estate and a number, a number inside the estate's name, 1 beside 11. */
static const struct {
    const char *id, *name;
} fuzz_buildings[] = {
    {"b1", "松清园1号楼"},     {"b2", "松清园11号楼"},        {"b3", "松清园2号楼"},
    {"b4", "学院路小区3号楼"}, {"b5", "清华东路17号院5号楼"}, {"b6", "双清苑12号楼"},
    {"b7", "Maple Court 12"},  {"b8", "南山区科技园1栋"},     {"b9", "松清园1号楼"},
};
#endif
