/* address: places a free-text address (a 12345 work order's "海淀区学院路
 * 松清园1号楼", an Open311 address_string) on a building of the stored
 * layers, by name. Tolerant of missing characters (小区, 街道, a district
 * prefix) but never of a different building number: "1号楼" is not "11号楼".
 * Built once from the store, then read-only and safe to share between
 * threads; knows nothing of HTTP. */
#ifndef GRIDCC_ADDRESS_H
#define GRIDCC_ADDRESS_H

#include <stdbool.h>

#include "gridcc/err.h"
#include "gridcc/store.h"

typedef struct address_index address_index;

/* Reads the buildings (level building) of the store. */
address_index *address_index_build(store *s, gc_err *err);
/* One building as address_index_from takes it: id, name (UTF-8) and a point
 * inside it (WGS 84). */
typedef struct address_entry {
    const char *id, *name;
    double lon, lat;
} address_entry;
/* From n buildings given directly (strings copied); entries without id or
 * name, or whose name is not UTF-8, are left out as the store's would be. */
address_index *address_index_from(const address_entry *b, size_t n);
void address_index_free(address_index *ix);
size_t address_index_count(const address_index *ix);

typedef struct address_match {
    bool found;
    double lon, lat;          /* a point inside the building */
    char building_id[128], building_name[256];
    double score;             /* 0..1: share of the building's name found in the text */
    char reason[512];         /* why not found: no estate, no such number, ambiguous … */
} address_match;

void address_lookup(const address_index *ix, const char *text, address_match *out);
/* The building with this feature id, if any (Open311 address_id). */
bool address_by_id(const address_index *ix, const char *id, address_match *out);

#endif
