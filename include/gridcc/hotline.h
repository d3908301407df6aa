/* hotline: 12345 citizen-hotline work orders into incidents. A CSV is read
 * with OGR's CSV driver; a small column map (JSON) says which column is the
 * order number, time, content, address, lon/lat, category (and, for
 * historical exports, status and closing time). Orders with coordinates are
 * geotagged; orders with only an address are placed on a building by name;
 * orders that match nothing are kept unplaced with the reason, for an
 * operator to place. Re-importing a file creates nothing twice: the order
 * number is the case's external id. */
#ifndef GRIDCC_HOTLINE_H
#define GRIDCC_HOTLINE_H

#include <jansson.h>
#include <stdio.h>

#include "gridcc/address.h"
#include "gridcc/err.h"
#include "gridcc/incidents.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

/* The column map. Defaults (hotline_map_default) are the usual headers of a
 * Chinese 12345 export: 工单编号, 受理时间, 诉求内容, 地址, 经度, 纬度, 诉求类别. */
typedef struct hotline_map hotline_map;
hotline_map *hotline_map_default(void);
/* A JSON file {"id":…, "time":…, "content":…, "address":…, "lon":…, "lat":…,
 * "category":…, "status":…, "closed_time":…, "crs":…, "categories":{text:
 * code}, "statuses":{text: open|closed}, "default_category":…}. */
hotline_map *hotline_map_load(const char *path, gc_err *err);
void hotline_map_free(hotline_map *m);

typedef struct hotline_report {
    int rows, created, existing, placed_by_coords, placed_by_address, unplaced, rejected;
    json_t *problems;   /* [{line, order, kind: unplaced|rejected, reason}], owned */
} hotline_report;

typedef void (*hotline_progress)(void *ud, int rows_done);

/* Imports FILE in one transaction; rejected rows (no order number, no
 * content) are listed and skipped, everything else is stored. */
int hotline_import(store *s, const gc_index *ix, const address_index *ax, const char *path,
                   const hotline_map *m, hotline_progress progress, void *ud,
                   hotline_report *rep, gc_err *err);
void hotline_report_clear(hotline_report *rep);

/* One row's fields by what the map says they are (NULL: no such column, or
 * empty). */
typedef struct hotline_row {
    const char *id, *time, *content, *address, *lon, *lat, *category, *status, *closed_time;
} hotline_row;

/* Turns one row into the report incident_report takes (new reference):
 * placed by its coordinates (*placed 1), by its address through ax (2), or
 * kept unplaced (0) with reason saying why. NULL with reason when the row
 * cannot be imported at all: no order number, no content, a field not
 * UTF-8. Reads nothing but its arguments. */
json_t *hotline_row_report(const hotline_map *m, const hotline_row *r, const address_index *ax,
                           char *reason, size_t rlen, int *placed);

/* One order as JSON (keys as the default map's fields: order_no, time,
 * content, address, lon, lat, category, crs). *out: the case. */
int hotline_order(store *s, const gc_index *ix, const address_index *ax, const inc_actor *who,
                  json_t *order, json_t **out, bool *existing, gc_err *err);

#endif
