/* layers: imports any OGR source (GeoJSON, Shapefile, GeoPackage, KML, CSV
 * with WKT or lon/lat columns) as one layer of the grid hierarchy, reprojected
 * to EPSG:4326, validated, and stored atomically. Validation names the file,
 * the feature (number, id and name) and where: invalid geometry (GEOS's reason
 * and location), empty or wrong geometry, duplicate ids, missing parents,
 * siblings overlapping, gaps inside a parent, children partly outside. */
#ifndef GRIDCC_LAYERS_H
#define GRIDCC_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"
#include "gridcc/store.h"

/* LAYERS_MSG_SKIP: a feature left out by skip_unrepairable, and why */
typedef enum {
    LAYERS_MSG_INFO,
    LAYERS_MSG_WARN,
    LAYERS_MSG_ERROR,
    LAYERS_MSG_SKIP
} layers_msg_kind;

/* why skip_unrepairable left a feature out */
typedef enum {
    LAYERS_SKIP_NO_AREA,       /* MakeValid left no polygon: a sliver collapsed to a line */
    LAYERS_SKIP_REPAIR_FAILED, /* GEOS could not run MakeValid on it */
    LAYERS_SKIP_N
} layers_skip_reason;

typedef struct layers_import_opts {
    const char *path;
    const char *source_layer;   /* for files with several layers; default: the first polygons */
    const char *level;          /* district … unit, dedicated, dept:NAME */
    const char *layer_name;     /* collection id; default: level, or dept-NAME */
    const char *srs;            /* override the file's CRS: EPSG:N, gcj02, bd09 */
    const char *encoding;       /* attribute encoding, e.g. GBK; default: the file's */
    const char *id_field, *name_field, *code_field, *parent_field;
    bool repair;                /* make invalid geometries valid, report each repair */
    /* with repair (else GC_EINVAL): leave out the features repair cannot
     * make valid, each reported as LAYERS_MSG_SKIP, instead of rejecting */
    bool skip_unrepairable;
    bool dry_run;               /* validate and report only */
    bool topology_warn;         /* overlaps, gaps, outside: warnings, not errors */
    double tolerance_m2;        /* overlaps/gaps/outside parts below this are ignored; 0 → 1 m² */
    /* called for each problem and note; may be NULL */
    void (*message)(void *ud, layers_msg_kind kind, const char *text);
    /* called during long phases; may be NULL */
    void (*progress)(void *ud, const char *phase, size_t done, size_t total);
    void *ud;
} layers_import_opts;

typedef struct layers_report {
    char layer[128];
    int version;                /* stored version, 0 on dry run or rejection */
    size_t features;            /* stored, or on a dry run that would be; skipped ones not */
    size_t errors, warnings, repaired;
    size_t skipped, skipped_by[LAYERS_SKIP_N]; /* left out by skip_unrepairable */
} layers_report;

/* "no area after repair", "repair failed" */
const char *layers_skip_reason_text(layers_skip_reason r);

/* GC_EINVAL if the input was rejected (report->errors says how many problems,
 * each already passed to opts->message); the stored layer is then untouched. */
int layers_import(store *s, const layers_import_opts *o, layers_report *rep, gc_err *err);

#endif
