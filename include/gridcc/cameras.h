/* cameras: the camera registry as data. A camera stands at a point (WGS84),
 * looks along a heading (degrees from north, clockwise) with a horizontal
 * field of view (degrees) out to a range (metres on the ground): its view
 * sector. This module validates cameras (their RTSP URLs through GLib's
 * GUri, never logging the credentials), computes sectors on the WGS84
 * ellipsoid (PROJ's geodesic routines, so a sector is as right at 69°N as at
 * the equator), reads import files through GDAL/OGR, and finds the cameras
 * that see a reported case. It knows nothing of HTTP or SQL.
 *
 * The sector rule (cameras_sees): a point is seen when its geodesic distance
 * from the camera is at most range_m and its initial bearing from the camera
 * lies within heading ± fov/2, the edges included: a point exactly on either
 * side edge or on the arc counts as inside (tolerances 1e-9° and 1 µm absorb
 * the rounding of a point computed onto the edge). fov 360 sees all around.
 * The camera's own position is seen (distance 0). Sectors across north
 * (heading 350, fov 40) need nothing special: bearings compare modulo 360.
 * Sectors across the antimeridian are not supported (the polygon would be
 * cut); no command center sits there. */
#ifndef GRIDCC_CAMERAS_H
#define GRIDCC_CAMERAS_H

#include <jansson.h>
#include <ogr_api.h>
#include <stdbool.h>
#include <stddef.h>

#include "gridcc/err.h"
#include "gridcc/index.h"
#include "gridcc/store.h"

/* The sector's arc is drawn with a vertex at least every this many degrees. */
#define CAMERAS_ARC_STEP_DEG 2.0
#define CAMERAS_MAX_RANGE_M 50000.0

/* ---- geometry ---- */

/* The view sector as a polygon in lon/lat (caller destroys it with
 * OGR_G_DestroyGeometry): the apex at the camera, side edges along the
 * geodesics at heading ± fov/2, and the arc drawn through vertices set just
 * beyond the range (circumscribed: chords never cut inside the arc), grown
 * by a centimetre, so the polygon holds every point cameras_sees accepts
 * (edges included) and little more (0.02 % of the range beyond the arc, a
 * centimetre beside the edges). fov 360: a disc around the camera. Exterior
 * ring counterclockwise (RFC 7946). */
OGRGeometryH cameras_sector_polygon(const store_camera *c);
/* The same as a GeoJSON geometry (new reference): c->sector_geojson when
 * the store handed it (what was drawn when the camera was written), drawn
 * anew otherwise. */
json_t *cameras_sector_geojson(const store_camera *c);
/* Whether c sees (lon, lat): see the rule above. distance_m and bearing (may
 * be NULL) get the geodesic distance and initial bearing [0, 360) from the
 * camera, whatever the answer. */
bool cameras_sees(const store_camera *c, double lon, double lat, double *distance_m,
                  double *bearing);

/* ---- URLs ---- */

/* Checks an RTSP URL (rtsp or rtsps, a host, at most 1023 bytes) and writes
 * its public form to pub: userinfo removed, and query parameters that carry
 * credentials (user, username, password, pass, pwd, passwd, token, auth,
 * key) dropped; host, port, path and the rest as given. The error message
 * never repeats the URL (it may hold a password). */
int cameras_url_check(const char *url, char *pub, size_t publen, gc_err *err);

/* ---- records ---- */

/* A camera from a JSON object with the API's fields (id, name, department,
 * url, lon, lat, heading, fov, range_m, height_m, transport, crs): lon/lat are in crs
 * (default EPSG:4326; gcj02, bd09, any EPSG system) and must lie within that
 * system's area of use; heading in [0, 360), fov in (0, 360], range_m in
 * (0, 50000], height_m (optional) in [0, 1000]; transport "tcp" (the
 * default) or "udp"; id [A-Za-z0-9_.-]{1,64};
 * name defaults to the id. path_id (PUT) names the camera when the body
 * does not, and must match it when it does. Errors name the field. */
int cameras_from_json(json_t *in, const char *path_id, store_camera *out, gc_err *err);
/* A camera as the API shows it: the fields above (url with credentials only
 * when with_credentials), state, reason, state_at, created_at, updated_at,
 * and sector (GeoJSON geometry). New reference. */
json_t *cameras_json(const store_camera *c, bool with_credentials);
/* A GeoJSON Feature whose geometry is the view sector; the properties are
 * cameras_json's without the sector, and the mounting point as
 * properties.lon/lat. The url is the public one. New reference. */
json_t *cameras_feature(const store_camera *c);

/* Where a camera stands: sets grid_id, grid_name, community_id,
 * community_name, street_id, street_name on o from the units of ix that hold
 * (lon, lat), null where none does (or ix is NULL). Worked out as a camera is
 * read, never stored: the planner re-draws grids, and a stored grid would go
 * stale. */
void cameras_place(const gc_index *ix, double lon, double lat, json_t *o);

typedef enum { CAMERAS_CREATE, CAMERAS_REPLACE, CAMERAS_UPSERT } cameras_mode;
/* Computes the sector and stores c (CREATE: GC_ECONFLICT if taken; REPLACE:
 * GC_ENOTFOUND if absent). *created (may be NULL) says which happened. */
int cameras_save(store *s, const store_camera *c, cameras_mode mode, bool *created, gc_err *err);

/* ---- import ---- */

typedef struct cameras_import_report {
    int features; /* read from the file */
    int created, replaced;
    json_t *problems; /* ["FILE: feature N (line L): field: reason", …] (owned) */
} cameras_import_report;
/* Reads cameras from a CSV (lon/lat or x/y columns, or a WKT column; the
 * other columns by the API's names) or a GeoJSON file of points (the fields
 * as properties), through GDAL/OGR. As the layer import does, a file with
 * any bad feature is refused whole: every problem is listed, nothing is
 * written (GC_EINVAL). Otherwise every camera is created or replaced, in one
 * transaction. */
int cameras_import(store *s, const char *path, cameras_import_report *rep, gc_err *err);
void cameras_import_report_clear(cameras_import_report *rep);

/* ---- cameras that see a case ---- */

/* Finds the cameras whose sector holds (lon, lat) and lists them on the case
 * (store_incident_cameras_set, inside the caller's transaction if one is
 * open), nearest first. media_state: "pending", or "none" when the case is
 * history being brought in. *n (may be NULL): how many. */
int cameras_match_incident(store *s, int64_t incident_id, double lon, double lat,
                           const char *media_state, size_t *n, gc_err *err);

#endif
