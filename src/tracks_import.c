/* tracks_import: recorded tracks into one worker's fixes. Three readers (GPX,
 * GeoLife .plt, CSV), all through OGR, hand each point to take(), which
 * checks it, converts it, geotags it and queues it; flush() stores a batch in
 * one transaction and counts what the store already had. A point the readers
 * cannot use is counted under its reason with a few examples, never an error:
 * only a file that cannot be read as a track at all fails. */
#define _GNU_SOURCE /* stat64 behind VSIStatBufL */
#include "gridcc/tracks_import.h"

#include <cpl_conv.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <math.h>
#include <ogr_api.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "gridcc/fixes.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"

#define MS_2000 946684800000LL
#define FEET 0.3048
#define GEOLIFE_HEADER_LINES 6

static const char *const SKIP_NAMES[TRACKS_SKIP_N] = {
    [TRACKS_SKIP_NO_TIME] = "no time",
    [TRACKS_SKIP_BAD_TIME] = "unreadable time",
    [TRACKS_SKIP_OLD_TIME] = "time before 2000",
    [TRACKS_SKIP_NO_POSITION] = "no position",
    [TRACKS_SKIP_BAD_POSITION] = "position out of range",
};

const char *tracks_skip_name(tracks_skip why)
{
    return why < TRACKS_SKIP_N ? SKIP_NAMES[why] : "?";
}

typedef struct ictx {
    store *s;
    const gc_index *ix;
    const tracks_import_opts *o;
    tracks_report *rep;
    const char *path, *source;
    store_fix *buf;
    bool *fresh;
    size_t n, cap;
    int64_t now_ms;
    GTimeZone *zone;   /* of zone-less CSV times */
    gc_err *err;
} ictx;

static void skip(ictx *c, tracks_skip why, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void skip(ictx *c, tracks_skip why, const char *where, const char *fmt, ...)
{
    tracks_report *r = c->rep;
    r->skipped++;
    int64_t k = r->skips[why]++;
    if (k >= TRACKS_EXAMPLES)
        return;
    char detail[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(r->examples[why][k], sizeof r->examples[why][k], "%s: %s", where, detail);
}

static int flush(ictx *c)
{
    if (!c->n)
        return 0;
    if (store_fixes_insert(c->s, c->buf, c->n, c->fresh, c->err))
        return GC_EIO;
    for (size_t i = 0; i < c->n; i++) {
        if (c->fresh[i]) {
            c->rep->imported++;
            c->rep->in_grid += c->buf[i].grid_id != NULL;
        } else {
            c->rep->duplicates++;
        }
    }
    c->n = 0;
    if (c->o->progress)
        c->o->progress(c->o->ud, c->path, c->rep->read);
    return 0;
}

/* One point: lon/lat as the file has them (in o->crs), t in ms (UTC). */
static int take(ictx *c, const char *where, double lon, double lat, int64_t t, double altitude,
                double speed, double bearing, double accuracy)
{
    gc_err e = {0};
    if (t < MS_2000) {
        GDateTime *d = g_date_time_new_from_unix_utc(t / 1000 - (t % 1000 < 0));   /* floor */
        char *iso = d ? g_date_time_format(d, "%Y-%m-%dT%H:%M:%SZ") : NULL;
        skip(c, TRACKS_SKIP_OLD_TIME, where, "time %s is before 2000 (a receiver without a clock?)",
             iso ? iso : "far");
        g_free(iso);
        if (d)
            g_date_time_unref(d);
        return 0;
    }
    if (lon == 0 && lat == 0) {
        skip(c, TRACKS_SKIP_BAD_POSITION, where, "0,0 (a receiver's \"no fix\")");
        return 0;
    }
    if (fix_check_position(lon, lat, &e)) {
        bool is_lat = !strcmp(e.field, "lat");
        skip(c, TRACKS_SKIP_BAD_POSITION, where, "%s %.7g out of range",
             is_lat ? "latitude" : "longitude", is_lat ? lat : lon);
        return 0;
    }
    if (fix_to_wgs84(&c->o->crs, &lon, &lat, c->err))
        return GC_EINVAL;
    store_fix *f = &c->buf[c->n++];
    *f = fix_blank();
    f->user_id = c->o->user_id;
    f->t = t;
    f->lon = lon;
    f->lat = lat;
    f->altitude = altitude;
    f->speed = speed;
    f->bearing = bearing;
    f->accuracy = accuracy;
    f->source = c->source;
    f->received_at = c->now_ms;
    fix_geotag(c->ix, f);
    return c->n == c->cap ? flush(c) : 0;
}

/* A number that is the whole of s (spaces around allowed). */
static bool parse_num(const char *s, double *v)
{
    if (!s)
        return false;
    char *t = g_strdup(s);
    g_strdelimit(t, "\r", ' ');
    bool ok = !gc_parse_double(g_strstrip(t), "n", -INFINITY, INFINITY, v, NULL);
    g_free(t);
    return ok;
}

static double opt_num(const char *s)
{
    double v;
    return parse_num(s, &v) && isfinite(v) ? v : NAN;
}

static const char *field(OGRFeatureH f, int idx)
{
    return idx >= 0 && OGR_F_IsFieldSetAndNotNull(f, idx) ? OGR_F_GetFieldAsString(f, idx) : NULL;
}

/* GDAL says why an open failed, or nothing: then we say something. */
static const char *gdal_why(const char *fallback)
{
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : fallback;
}

/* What GDAL says while features are read ("parsed incompletely" of an
 * extension field we do not use) is no user's business: debug log. */
static void CPL_STDCALL gdal_to_log(CPLErr cls, CPLErrorNum no, const char *msg)
{
    log_debug("tracks", "gdal class=%d code=%d: %s", (int)cls, (int)no, msg);
}

static GDALDatasetH open_quiet(const char *path, const char *const *drivers,
                               const char *const *oo)
{
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, oo, NULL);
    CPLPopErrorHandler();
    return ds;
}

/* ---- GPX ---- */

/* An OGR date-time field in ms since the epoch. GPX times are UTC (a zone
 * the file states is honoured; one it omits is UTC, as the schema says). */
static bool ogr_time_ms(OGRFeatureH f, int idx, int64_t *ms)
{
    int y, mo, d, h, mi, tz;
    float sec;
    if (!OGR_F_GetFieldAsDateTimeEx(f, idx, &y, &mo, &d, &h, &mi, &sec, &tz))
        return false;
    GDateTime *dt = g_date_time_new_utc(y, mo, d, h, mi, 0);
    if (!dt)
        return false;
    int64_t v = g_date_time_to_unix(dt) * 1000 + llround((double)sec * 1000.0);
    g_date_time_unref(dt);
    if (tz > 100)
        v -= (int64_t)(tz - 100) * 15 * 60 * 1000;
    else if (tz > 1 && tz < 100)
        v += (int64_t)(100 - tz) * 15 * 60 * 1000;
    *ms = v;
    return true;
}

static int read_gpx(ictx *c, const char *open_path)
{
    const char *drivers[] = {"GPX", NULL};
    GDALDatasetH ds = open_quiet(open_path, drivers, NULL);
    if (!ds)
        return gc_fail(c->err, GC_EINVAL, "file", "%s: cannot read as GPX: %s", c->path,
                       gdal_why("not a GPX file"));
    static const char *const layers[] = {"track_points", "route_points", "waypoints"};
    OGRLayerH L = NULL;
    size_t which = 0;
    for (; which < G_N_ELEMENTS(layers); which++) {   /* the first with a point */
        L = GDALDatasetGetLayerByName(ds, layers[which]);
        OGRFeatureH probe = L ? OGR_L_GetNextFeature(L) : NULL;
        OGR_F_Destroy(probe);
        if (probe)
            break;
    }
    if (which == G_N_ELEMENTS(layers)) {
        GDALClose(ds);
        return gc_fail(c->err, GC_EINVAL, "file",
                       "%s: no track points, route points or waypoints", c->path);
    }
    snprintf(c->rep->layer, sizeof c->rep->layer, "%s", layers[which]);
    if (which > 0)
        snprintf(c->rep->note, sizeof c->rep->note, "no track points: took the %s instead",
                 which == 1 ? "route points" : "waypoints");
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(L);
    int ti = OGR_FD_GetFieldIndex(d, "time"), ei = OGR_FD_GetFieldIndex(d, "ele");
    int si = OGR_FD_GetFieldIndex(d, "speed"), bi = OGR_FD_GetFieldIndex(d, "course");
    int trk = OGR_FD_GetFieldIndex(d, which == 1 ? "route_fid" : "track_fid");
    int seg = OGR_FD_GetFieldIndex(d, "track_seg_id");
    OGR_L_ResetReading(L);
    OGRFeatureH f;
    int rc = 0;
    int64_t k = 0;
    while (!rc && (f = OGR_L_GetNextFeature(L))) {
        c->rep->read++;
        char where[96];
        int n = snprintf(where, sizeof where, "feature %lld", (long long)++k);
        if (which == 0 && trk >= 0 && seg >= 0)
            snprintf(where + n, sizeof where - n, " (track %d, segment %d)",
                     OGR_F_GetFieldAsInteger(f, trk), OGR_F_GetFieldAsInteger(f, seg));
        else if (which == 1 && trk >= 0)
            snprintf(where + n, sizeof where - n, " (route %d)", OGR_F_GetFieldAsInteger(f, trk));
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        int64_t t;
        if (!g || OGR_G_IsEmpty(g))
            skip(c, TRACKS_SKIP_NO_POSITION, where, "no point");
        else if (ti < 0 || !OGR_F_IsFieldSetAndNotNull(f, ti))
            skip(c, TRACKS_SKIP_NO_TIME, where, "no time");
        else if (!ogr_time_ms(f, ti, &t))
            skip(c, TRACKS_SKIP_BAD_TIME, where, "unreadable time '%s'",
                 OGR_F_GetFieldAsString(f, ti));
        else
            rc = take(c, where, OGR_G_GetX(g, 0), OGR_G_GetY(g, 0), t,
                      opt_num(field(f, ei)), opt_num(field(f, si)), opt_num(field(f, bi)), NAN);
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    return rc;
}

/* ---- GeoLife .plt ---- */

/* GeoLife Trajectories 1.3 (the OziExplorer track layout): six header lines,
 * then lat,lon,0,altitude in feet (-777: unknown),days since 1899-12-30,
 * date,time (GMT). The rows are handed to OGR's CSV driver as the part of
 * the file after the header (/vsisubfile/), without a header row. */
static int read_plt(ictx *c, const char *open_path)
{
    VSILFILE *fp = VSIFOpenL(open_path, "rb");
    if (!fp)
        return gc_fail(c->err, GC_EINVAL, "file", "%s: cannot open", c->path);
    const char *first = CPLReadLineL(fp);
    bool known = first && (!g_ascii_strncasecmp(first, "Geolife trajectory", 18) ||
                           !g_ascii_strncasecmp(first, "OziExplorer Track Point File", 28));
    int lines = first ? 1 : 0;
    while (known && lines < GEOLIFE_HEADER_LINES && CPLReadLineL(fp))
        lines++;
    vsi_l_offset off = VSIFTellL(fp);
    VSIFSeekL(fp, 0, SEEK_END);
    vsi_l_offset size = VSIFTellL(fp);
    VSIFCloseL(fp);
    if (!known)
        return gc_fail(c->err, GC_EINVAL, "file",
                       "%s: not a GeoLife .plt (the first line is not \"Geolife trajectory\")",
                       c->path);
    if (lines < GEOLIFE_HEADER_LINES || size <= off)
        return gc_fail(c->err, GC_EINVAL, "file", "%s: no points after the %d header lines",
                       c->path, GEOLIFE_HEADER_LINES);
    char *sub = g_strdup_printf("CSV:/vsisubfile/%llu_%llu,%s", (unsigned long long)off,
                                (unsigned long long)(size - off), open_path);
    const char *drivers[] = {"CSV", NULL};
    const char *oo[] = {"HEADERS=NO", "AUTODETECT_TYPE=NO", "EMPTY_STRING_AS_NULL=YES", NULL};
    GDALDatasetH ds = open_quiet(sub, drivers, oo);
    g_free(sub);
    if (!ds)
        return gc_fail(c->err, GC_EINVAL, "file", "%s: cannot read the points: %s", c->path,
                       gdal_why("not comma-separated"));
    OGRLayerH L = GDALDatasetGetLayer(ds, 0);
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(L))) {
        c->rep->read++;
        char where[32];
        /* the CSV driver numbers rows from 1 */
        snprintf(where, sizeof where, "line %lld",
                 (long long)OGR_F_GetFID(f) + GEOLIFE_HEADER_LINES);
        int nf = OGR_F_GetFieldCount(f);
        const char *v[7] = {0};
        for (int i = 0; i < 7 && i < nf; i++)
            v[i] = field(f, i);
        double lat, lon, days;
        int64_t t = 0;
        bool has_time = false;
        if (v[5] && v[6]) {
            char *iso = g_strdup_printf("%sT%s", v[5], v[6]);
            has_time = gc_time_parse_device(iso, &t);
            g_free(iso);
        }
        if (!has_time && parse_num(v[4], &days) && isfinite(days)) {
            t = llround((days - 25569.0) * 86400000.0);   /* 25569: 1970-01-01 */
            has_time = true;
        }
        if (!parse_num(v[0], &lat) || !parse_num(v[1], &lon))
            skip(c, TRACKS_SKIP_NO_POSITION, where, "latitude/longitude '%s', '%s' are not numbers",
                 v[0] ? v[0] : "", v[1] ? v[1] : "");
        else if (!has_time && !v[4] && !v[5])
            skip(c, TRACKS_SKIP_NO_TIME, where, "no time");
        else if (!has_time)
            skip(c, TRACKS_SKIP_BAD_TIME, where, "unreadable time '%s %s'", v[5] ? v[5] : "",
                 v[6] ? v[6] : "");
        else {
            double alt = opt_num(v[3]);
            rc = take(c, where, lon, lat, t, alt == -777 ? NAN : alt * FEET, NAN, NAN, NAN);
        }
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    return rc;
}

/* ---- CSV ---- */

/* The first column whose name is one of names (any case); -1 if none. */
static int column(OGRFeatureDefnH d, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        for (int k = 0; k < OGR_FD_GetFieldCount(d); k++)
            if (!g_ascii_strcasecmp(OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(d, k)), names[i]))
                return k;
    return -1;
}

/* A CSV time: seconds or ms since 1970, or ISO 8601 with a zone, as devices
 * send them (gc_time_parse_device); a zone-less date-time is in --tz, else local
 * time: ISO-like ones keep their milliseconds, other layouts go through
 * gc_time_parse's formats. Returns the skip reason, or -1 when *ms is set. */
static int csv_time(const ictx *c, const char *s, int64_t *ms)
{
    while (s && *s == ' ')
        s++;
    if (!s || !*s)
        return TRACKS_SKIP_NO_TIME;
    double num;
    if (parse_num(s, &num))
        return gc_time_parse_device(s, ms) ? -1
               : num < MS_2000       ? TRACKS_SKIP_OLD_TIME
                                     : TRACKS_SKIP_BAD_TIME;
    GDateTime *d = g_date_time_new_from_iso8601(s, NULL);
    if (d) {   /* the zone is in the text */
        g_date_time_unref(d);
        return gc_time_parse_device(s, ms) ? -1 : TRACKS_SKIP_OLD_TIME;
    }
    int64_t sec;
    if ((d = g_date_time_new_from_iso8601(s, c->zone))) {
        *ms = g_date_time_to_unix(d) * 1000 + g_date_time_get_microsecond(d) / 1000;
        g_date_time_unref(d);
    } else if (gc_time_parse_in(s, c->zone, &sec)) {
        *ms = sec * 1000;
    } else {
        return TRACKS_SKIP_BAD_TIME;
    }
    return *ms < MS_2000 ? TRACKS_SKIP_OLD_TIME : -1;
}

static int read_csv(ictx *c, const char *open_path)
{
    char *p = g_strconcat("CSV:", open_path, NULL);
    const char *drivers[] = {"CSV", NULL};
    const char *oo[] = {"AUTODETECT_TYPE=NO", "EMPTY_STRING_AS_NULL=YES", NULL};
    GDALDatasetH ds = open_quiet(p, drivers, oo);
    g_free(p);
    if (!ds)
        return gc_fail(c->err, GC_EINVAL, "file", "%s: cannot read as CSV: %s", c->path,
                       gdal_why("not a CSV file"));
    OGRLayerH L = GDALDatasetGetLayer(ds, 0);
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(L);
    static const char *const LAT[] = {"lat", "latitude", "y", "纬度", NULL};
    static const char *const LON[] = {"lon", "lng", "long", "longitude", "x", "经度", NULL};
    static const char *const TIME[] = {"time", "timestamp", "datetime", "date_time",
                                       "timestamp_ms", "时间", NULL};
    static const char *const DATE[] = {"date", "日期", NULL};
    static const char *const SPEED[] = {"speed", "速度", NULL};
    static const char *const ALT[] = {"altitude", "alt", "ele", "elevation", "高程", NULL};
    static const char *const ACC[] = {"accuracy", "acc", "精度", NULL};
    static const char *const BEAR[] = {"bearing", "course", "heading", "方向", NULL};
    int lat = column(d, LAT), lon = column(d, LON), tim = column(d, TIME), date = column(d, DATE);
    int spd = column(d, SPEED), alt = column(d, ALT), acc = column(d, ACC), bear = column(d, BEAR);
    if (lat < 0 || lon < 0 || (tim < 0 && date < 0)) {
        GString *cols = g_string_new(NULL);
        for (int k = 0; k < OGR_FD_GetFieldCount(d) && cols->len < 200; k++)
            g_string_append_printf(cols, "%s%s", k ? ", " : "",
                                   OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(d, k)));
        if (cols->len >= 200)
            g_string_append(cols, " …");
        if (!g_utf8_validate(cols->str, -1, NULL))
            g_string_assign(cols, "(not UTF-8 text)");
        gc_fail(c->err, GC_EINVAL, "file",
                "%s: not a track: no %s column (lat/latitude/y, lon/lng/longitude/x, "
                "time/timestamp/datetime or date and time); the header has: %s",
                c->path, lat < 0 ? "latitude" : lon < 0 ? "longitude" : "time", cols->str);
        g_string_free(cols, TRUE);
        GDALClose(ds);
        return GC_EINVAL;
    }
    if (tim < 0)   /* a date alone: midnight */
        tim = date, date = -1;
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(L))) {
        c->rep->read++;
        char where[32];
        /* the CSV driver numbers data rows from 1; the header is line 1 */
        snprintf(where, sizeof where, "line %lld", (long long)OGR_F_GetFID(f) + 1);
        const char *ts = field(f, tim), *ds = date >= 0 ? field(f, date) : NULL;
        /* a time of day beside a date column: one date-time */
        char *joined = ds && ts && !strpbrk(ts, "-/") && ts[strspn(ts, "0123456789. ")]
                           ? g_strdup_printf("%s %s", ds, ts)
                           : NULL;
        if (joined)
            ts = joined;
        double y, x;
        int64_t t;
        int why = -1;
        if (!parse_num(field(f, lat), &y) || !parse_num(field(f, lon), &x)) {
            const char *a = field(f, lat), *b = field(f, lon);
            skip(c, TRACKS_SKIP_NO_POSITION, where, "latitude/longitude '%s', '%s' are not numbers",
                 a ? a : "", b ? b : "");
        } else if ((why = csv_time(c, ts, &t)) == TRACKS_SKIP_NO_TIME) {
            skip(c, TRACKS_SKIP_NO_TIME, where, "no time");
        } else if (why == TRACKS_SKIP_BAD_TIME) {
            skip(c, TRACKS_SKIP_BAD_TIME, where, "unreadable time '%s'", ts);
        } else if (why == TRACKS_SKIP_OLD_TIME) {
            skip(c, TRACKS_SKIP_OLD_TIME, where, "time '%s' is before 2000", ts);
        } else {
            rc = take(c, where, x, y, t, opt_num(field(f, alt)), opt_num(field(f, spd)),
                      opt_num(field(f, bear)), opt_num(field(f, acc)));
        }
        g_free(joined);
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    return rc;
}

/* ---- one file ---- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !g_ascii_strcasecmp(s + a - b, suf);
}

/* By the name first; otherwise by the first bytes: XML is GPX, a GeoLife or
 * OziExplorer first line is .plt, JSON and binary files are no tracks
 * ("json", "binary"), anything else is tried as CSV. */
static const char *sniff_format(const char *path, const char *open_path)
{
    char *name = g_strdup(path);
    if (has_suffix(name, ".gz"))
        name[strlen(name) - 3] = 0;
    const char *fmt = has_suffix(name, ".gpx") ? "gpx"
                      : has_suffix(name, ".plt") ? "plt"
                      : has_suffix(name, ".csv") ? "csv"
                                                 : NULL;
    g_free(name);
    if (fmt)
        return fmt;
    char head[256] = "";
    size_t n = 0;
    VSILFILE *fp = VSIFOpenL(open_path, "rb");
    if (fp) {
        n = VSIFReadL(head, 1, sizeof head - 1, fp);
        head[n] = 0;
        VSIFCloseL(fp);
    }
    if (memchr(head, 0, n))
        return "binary";
    const char *h = head;
    if (!strncmp(h, "\xEF\xBB\xBF", 3))
        h += 3;
    while (*h == ' ' || *h == '\t' || *h == '\r' || *h == '\n')
        h++;
    if (*h == '<')
        return "gpx";
    if (!g_ascii_strncasecmp(h, "Geolife trajectory", 18) ||
        !g_ascii_strncasecmp(h, "OziExplorer Track Point File", 28))
        return "plt";
    if (*h == '{' || *h == '[')
        return "json";
    return "csv";
}

int tracks_import_file(store *s, const gc_index *ix, const char *path,
                       const tracks_import_opts *o, tracks_report *rep, gc_err *err)
{
    memset(rep, 0, sizeof *rep);
    gint64 t0 = g_get_monotonic_time();
    VSIStatBufL sb;
    if (VSIStatL(path, &sb) != 0)
        return gc_fail(err, GC_EINVAL, "file", "%s: no such file", path);
    if (VSI_ISDIR(sb.st_mode))
        return gc_fail(err, GC_EINVAL, "file", "%s: a directory, not a file", path);
    if (sb.st_size == 0)
        return gc_fail(err, GC_EINVAL, "file", "%s: empty file", path);
    char *open_path = has_suffix(path, ".gz") && strncmp(path, "/vsi", 4)
                          ? g_strconcat("/vsigzip/", path, NULL)
                          : g_strdup(path);
    const char *fmt = sniff_format(path, open_path);
    if (!strcmp(fmt, "json") || !strcmp(fmt, "binary")) {
        g_free(open_path);
        return gc_fail(err, GC_EINVAL, "file",
                       "%s: not a track: a %s file (tracks are GPX, GeoLife .plt or CSV)", path,
                       !strcmp(fmt, "json") ? "JSON" : "binary");
    }
    snprintf(rep->format, sizeof rep->format, "%s", fmt);
    ictx c = {.s = s, .ix = ix, .o = o, .rep = rep, .path = path, .source = fmt,
              .cap = o->batch ? o->batch : 10000, .err = err,
              .now_ms = g_get_real_time() / 1000,
              .zone = o->tz ? g_time_zone_ref(o->tz) : g_time_zone_new_local()};
    c.buf = g_new(store_fix, c.cap);
    c.fresh = g_new(bool, c.cap);
    CPLPushErrorHandler(gdal_to_log);
    int rc = !strcmp(fmt, "gpx") ? read_gpx(&c, open_path)
             : !strcmp(fmt, "plt") ? read_plt(&c, open_path)
                                   : read_csv(&c, open_path);
    CPLPopErrorHandler();
    if (!rc)
        rc = flush(&c);
    else
        c.n = 0;
    g_free(c.buf);
    g_free(c.fresh);
    g_time_zone_unref(c.zone);
    g_free(open_path);
    rep->seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
    if (rc)
        return rc;   /* the caller says why */
    log_info("tracks", "imported file=%s format=%s worker=%lld read=%lld imported=%lld "
                       "duplicates=%lld skipped=%lld in_grid=%lld seconds=%.2f",
             path, fmt, (long long)o->user_id, (long long)rep->read, (long long)rep->imported,
             (long long)rep->duplicates, (long long)rep->skipped, (long long)rep->in_grid,
             rep->seconds);
    return 0;
}

int tracks_worker_find(store *s, const char *who, store_user *out, gc_err *err)
{
    if (!who || !*who)
        return gc_fail(err, GC_EINVAL, "worker", "--worker takes a user id or a user name");
    gc_err e = {0};
    int rc = store_user_find(s, who, out, &e);
    if (rc == GC_ENOTFOUND)
        return gc_fail(err, GC_ENOTFOUND, "worker",
                       "no user with id or name '%s' (add one with gridcc user add NAME "
                       "--role worker)",
                       who);
    if (rc && err)
        *err = e;
    return rc;
}

void tracks_report_print(const tracks_report *rep, const char *path, FILE *out)
{
    fprintf(out, "%s: %s%s%s%s, %lld read, %lld imported, %lld duplicates, %lld skipped, "
                 "%lld in a grid (%.2f s, %.0f fixes/s)\n",
            path, rep->format, rep->layer[0] ? " (" : "", rep->layer, rep->layer[0] ? ")" : "",
            (long long)rep->read, (long long)rep->imported, (long long)rep->duplicates,
            (long long)rep->skipped, (long long)rep->in_grid, rep->seconds,
            rep->seconds > 0 ? (double)rep->read / rep->seconds : 0.0);
    if (rep->note[0])
        fprintf(out, "  note: %s\n", rep->note);
    for (int why = 0; why < TRACKS_SKIP_N; why++) {
        if (!rep->skips[why])
            continue;
        fprintf(out, "  skipped %lld: %s\n", (long long)rep->skips[why], SKIP_NAMES[why]);
        for (int k = 0; k < TRACKS_EXAMPLES && k < rep->skips[why]; k++)
            fprintf(out, "    %s\n", rep->examples[why][k]);
        if (rep->skips[why] > TRACKS_EXAMPLES)
            fprintf(out, "    … and %lld more\n", (long long)(rep->skips[why] - TRACKS_EXAMPLES));
    }
}
