/* main: the command line, nothing else. Exit status 0 ok, 1 input rejected
 * (messages on stderr), 2 usage. */
#include <getopt.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gdal.h>

#include "gridcc/app.h"
#include "gridcc/auth.h"
#include "gridcc/cameras.h"
#include "gridcc/crs.h"
#include "gridcc/fixes.h"
#include "gridcc/address.h"
#include "gridcc/geotag.h"
#include "gridcc/hotline.h"
#include "gridcc/incidents.h"
#include "gridcc/layers.h"
#include "gridcc/log.h"
#include "gridcc/parse.h"
#include "gridcc/store.h"
#include "gridcc/tracks_import.h"

static const char usage_text[] =
    "usage: gridcc COMMAND [options]\n"
    "  serve --db FILE [--port 8080] [--bind 127.0.0.1] [--public-read] [--idle-timeout 30]\n"
    "        [--osmand-port 5055] [--outside-minutes 10] [--silent-minutes 15]\n"
    "        [--live-max-lag 20000] [--live-stall 30] [--live-tick 10] [--max-conns-per-addr 64]\n"
    "        [--tile-minzoom building=13,unit=15] [--tile-cache-mb 64] [--basemap FILE.mbtiles]\n"
    "        [--video-ingest direct|rtspsrc]\n"
    "  import FILE --level LEVEL --db FILE [--layer NAME] [--srs EPSG:N|gcj02|bd09]\n"
    "         [--encoding GBK] [--id-field F] [--name-field F] [--code-field F]\n"
    "         [--parent-field F] [--repair [--skip-unrepairable]] [--dry-run]\n"
    "         [--topology warn|error] [--tolerance M2] [--source-layer NAME]\n"
    "         LEVEL: district street community grid building unit dedicated dept:NAME\n"
    "  seed --db FILE [--layers DIR]\n"
    "  user add NAME --role operator|worker|planner|admin|department|resident --db FILE\n"
    "           [--department NAME] [--password-stdin]\n"
    "  geotag LON LAT --db FILE [--srs EPSG:N|gcj02|bd09]\n"
    "  incident report --db FILE --category CODE --description TEXT\n"
    "           [--lon X --lat Y [--srs S]] [--address TEXT] [--photo FILE]...\n"
    "           [--source worker|resident|department|hotline|camera] [--idempotency-key K]\n"
    "  incident show ID --db FILE\n"
    "  incident list --db FILE [--status S[,S]] [--category CODE] [--grid ID]\n"
    "           [--overdue] [--unplaced] [--limit N]\n"
    "  hotline import FILE.csv --db FILE [--map MAP.json]\n"
    "  device add DEVICE_ID --worker NAME|ID --db FILE [--crs gcj02|bd09] [--label TEXT]\n"
    "  tracks import FILE... --worker ID|NAME --db FILE [--crs EPSG:4326|gcj02|bd09]\n"
    "           [--tz +08:00]   FILE: .gpx, GeoLife .plt, or CSV with lat, lon and time\n"
    "           columns (also .gz); --tz: zone of CSV times that name none (default local)\n"
    "  cameras import FILE --db FILE   FILE: CSV (lon/lat or WKT columns) or GeoJSON points\n"
    "           with id, name, department, url, heading, fov, range_m, height_m[, crs]\n"
    "  version\n";

/* A full disk or a write lock held elsewhere is no fault of the input file:
 * naming it says what to run again once there is room or the lock is free. */
static void import_fail(const char *cmd, const char *input, const char *left, const gc_err *e)
{
    if (e->code == GC_EFULL || e->code == GC_EBUSY)
        fprintf(stderr, "gridcc %s: %s %s: %s\n", cmd, input, left, e->msg);
    else
        fprintf(stderr, "gridcc %s: %s\n", cmd, e->msg);
}

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "gridcc: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

static int open_store(const char *db, store **s)
{
    gc_err err = {0};
    if (!db)
        return usage("--db FILE is required");
    if (store_open(db, s, &err)) {
        fprintf(stderr, "gridcc: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* ---- import ---- */

typedef struct cli_ui {
    bool tty;
    bool progress_shown;
} cli_ui;

static void on_message(void *ud, layers_msg_kind kind, const char *text)
{
    cli_ui *ui = ud;
    if (ui->progress_shown) {
        fputs("\r\033[K", stderr);
        ui->progress_shown = false;
    }
    fprintf(stderr, "%s: %s\n",
            kind == LAYERS_MSG_ERROR  ? "error"
            : kind == LAYERS_MSG_WARN ? "warning"
            : kind == LAYERS_MSG_SKIP ? "skipped"
                                      : "note",
            text);
}

static void on_progress(void *ud, const char *phase, size_t done, size_t total)
{
    cli_ui *ui = ud;
    if (!ui->tty)
        return;
    if (total)
        fprintf(stderr, "\r\033[Kimport: %s %zu/%zu (%zu%%)", phase, done, total,
                done * 100 / total);
    else
        fprintf(stderr, "\r\033[Kimport: %s %zu", phase, done);
    ui->progress_shown = true;
}

/* "skipped: 7 (no area after repair)", or with several reasons
 * "skipped: 9 (7 no area after repair, 2 repair failed)" */
static void print_skipped(FILE *to, const layers_report *rep)
{
    int reasons = 0;
    for (int r = 0; r < LAYERS_SKIP_N; r++)
        reasons += rep->skipped_by[r] > 0;
    fprintf(to, "  skipped: %zu (", rep->skipped);
    for (int r = 0, shown = 0; r < LAYERS_SKIP_N; r++) {
        if (!rep->skipped_by[r])
            continue;
        if (reasons > 1)
            fprintf(to, "%s%zu ", shown++ ? ", " : "", rep->skipped_by[r]);
        fputs(layers_skip_reason_text((layers_skip_reason)r), to);
    }
    fputs(")\n", to);
}

static int run_import(store *s, layers_import_opts *o)
{
    cli_ui ui = {.tty = isatty(2)};
    o->message = on_message;
    o->progress = on_progress;
    o->ud = &ui;
    layers_report rep;
    gc_err err = {0};
    int rc = layers_import(s, o, &rep, &err);
    if (ui.progress_shown)
        fputs("\r\033[K", stderr);
    if (rep.errors > 200)
        fprintf(stderr, "error: … and %zu more problems\n", rep.errors - 200);
    if (rep.skipped > 200)
        fprintf(stderr, "skipped: … and %zu more features\n", rep.skipped - 200);
    if (rc) {
        if (rep.skipped)
            print_skipped(stderr, &rep);
        import_fail("import", o->path, "not imported", &err);
        return 1;
    }
    printf("%s: %s layer '%s': %zu features%s, %zu warnings, %zu repaired%s\n", o->path,
           o->dry_run ? "checked" : "imported", rep.layer, rep.features,
           o->dry_run ? "" : "", rep.warnings, rep.repaired,
           o->dry_run ? " (dry run: nothing stored)" : "");
    if (rep.skipped)
        print_skipped(stdout, &rep);
    if (!o->dry_run)
        printf("  stored as version %d\n", rep.version);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    static struct option opts[] = {
        {"level", 1, 0, 'l'},       {"db", 1, 0, 'd'},          {"layer", 1, 0, 'L'},
        {"srs", 1, 0, 's'},         {"encoding", 1, 0, 'e'},    {"id-field", 1, 0, 'i'},
        {"name-field", 1, 0, 'n'},  {"parent-field", 1, 0, 'p'}, {"repair", 0, 0, 'r'},
        {"dry-run", 0, 0, 'D'},     {"code-field", 1, 0, 'c'},   {"topology", 1, 0, 't'},
        {"tolerance", 1, 0, 'T'},   {"source-layer", 1, 0, 'S'},
        {"skip-unrepairable", 0, 0, 'U'}, {0, 0, 0, 0}};
    layers_import_opts o = {0};
    const char *db = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': o.level = optarg; break;
        case 'd': db = optarg; break;
        case 'L': o.layer_name = optarg; break;
        case 'S': o.source_layer = optarg; break;
        case 's': o.srs = optarg; break;
        case 'e': o.encoding = optarg; break;
        case 'i': o.id_field = optarg; break;
        case 'n': o.name_field = optarg; break;
        case 'c': o.code_field = optarg; break;
        case 'p': o.parent_field = optarg; break;
        case 'r': o.repair = true; break;
        case 'U': o.skip_unrepairable = true; break;
        case 'D': o.dry_run = true; break;
        case 't':
            if (!strcmp(optarg, "warn"))
                o.topology_warn = true;
            else if (strcmp(optarg, "error"))
                return usage("--topology takes warn or error");
            break;
        case 'T': {
            if (gc_parse_double(optarg, "tolerance", 1e-9, 1e15, &o.tolerance_m2, NULL))
                return usage("--tolerance takes a positive area in m²");
            break;
        }
        default: return usage(NULL);
        }
    }
    if (optind + 1 != argc)
        return usage("import takes exactly one FILE");
    if (!o.level)
        return usage("--level is required");
    if (o.skip_unrepairable && !o.repair)
        return usage("--skip-unrepairable needs --repair: it leaves out only the features repair "
                     "cannot make valid");
    o.path = argv[optind];
    if (o.srs) {
        crs_def d;
        gc_err err = {0};
        if (crs_parse(o.srs, &d, &err)) {
            fprintf(stderr, "gridcc import: --srs: %s\n", err.msg);
            return 1;
        }
    }
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    rc = run_import(s, &o);
    store_close(s);
    return rc;
}

/* ---- seed ---- */

static const struct {
    const char *file, *level;
    bool by_code;
} SAMPLE[] = {
    {"district.geojson", "district", false},
    {"streets.geojson", "street", true},
    {"communities.geojson", "community", true},
    {"grids.geojson", "grid", true},
    {"buildings.geojson.gz", "building", true},
    {"units.geojson.gz", "unit", true},
    {"dedicated.geojson", "dedicated", false},
    {"dept_城管.geojson", "dept:城管", false},
    {"dept_环卫.geojson", "dept:环卫", false},
    {"dept_公安.geojson", "dept:公安", false},
};

static int cmd_seed(int argc, char **argv)
{
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"layers", 1, 0, 'L'}, {0, 0, 0, 0}};
    const char *db = NULL, *dir = getenv("GRIDCC_LAYERS");
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            db = optarg;
        else if (ch == 'L')
            dir = optarg;
        else
            return usage(NULL);
    }
    if (optind != argc)
        return usage("seed takes no FILE");
    if (!dir)
        dir = g_file_test("layers/district.geojson", G_FILE_TEST_EXISTS) ? "layers"
                                                                         : GRIDCC_LAYERS_DIR;
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof SAMPLE / sizeof *SAMPLE && !rc; i++) {
        char *path = g_build_filename(dir, SAMPLE[i].file, NULL);
        layers_import_opts o = {.path = path, .level = SAMPLE[i].level,
                                .parent_field = SAMPLE[i].by_code ? "parent_code" : NULL};
        rc = run_import(s, &o);
        g_free(path);
    }
    store_close(s);
    return rc;
}

/* ---- user ---- */

static int cmd_user(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "add"))
        return usage("user: the only subcommand is 'add'");
    static struct option opts[] = {
        {"role", 1, 0, 'r'}, {"db", 1, 0, 'd'}, {"password-stdin", 0, 0, 'p'},
        {"department", 1, 0, 'D'}, {0, 0, 0, 0}};
    const char *role = NULL, *db = NULL, *dept = NULL;
    bool pw_stdin = false;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'r')
            role = optarg;
        else if (ch == 'd')
            db = optarg;
        else if (ch == 'p')
            pw_stdin = true;
        else if (ch == 'D')
            dept = optarg;
        else
            return usage(NULL);
    }
    if (optind + 1 != argc)
        return usage("user add takes exactly one NAME");
    const char *name = argv[optind];
    if (!role)
        return usage("--role is required");
    gc_role rb = role_parse(role);
    if (!rb) {
        fprintf(stderr, "gridcc user add: unknown role '%s': use operator, worker, planner, admin, "
                        "department or resident\n",
                role);
        return 1;
    }
    if ((rb == ROLE_DEPARTMENT) != (dept && *dept)) {
        fprintf(stderr, "gridcc user add: --department NAME goes with --role department, and only "
                        "with it\n");
        return 1;
    }
    if (!*name || strlen(name) > 64 || !g_utf8_validate(name, -1, NULL)) {
        fprintf(stderr, "gridcc user add: a user name has 1 to 64 characters of UTF-8\n");
        return 1;
    }
    char pwhash[256] = "";
    if (pw_stdin) {
        char pw[1024];
        if (!fgets(pw, sizeof pw, stdin)) {
            fprintf(stderr, "gridcc user add: --password-stdin: no password on standard input\n");
            return 1;
        }
        pw[strcspn(pw, "\r\n")] = 0;
        gc_err err = {0};
        if (auth_hash_password(pw, pwhash, &err)) {
            fprintf(stderr, "gridcc user add: %s\n", err.msg);
            return 1;
        }
    }
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    gc_err err = {0};
    int64_t uid;
    char token[AUTH_TOKEN_CHARS];
    if (store_user_add(s, name, rb, dept, pwhash[0] ? pwhash : NULL, &uid, &err) ||
        auth_issue_token(s, uid, 0, "cli", token, &err)) {
        fprintf(stderr, "gridcc user add: %s\n", err.msg);
        store_close(s);
        return 1;
    }
    store_close(s);
    printf("%s\n", token);
    fprintf(stderr, "user '%s' (%s) added; the token above is shown only once\n", name, role);
    return 0;
}

/* ---- geotag ---- */

static int parse_coord(const char *s, double *v)
{
    return gc_parse_double(s, "coordinate", -INFINITY, INFINITY, v, NULL);
}

static int cmd_geotag(int argc, char **argv)
{
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"srs", 1, 0, 's'}, {"crs", 1, 0, 's'},
                                   {0, 0, 0, 0}};
    const char *db = NULL, *srs = NULL;
    /* negative coordinates look like options to getopt: take numbers out first */
    char *pos[2];
    int npos = 0, n = 0;
    char **args = g_new0(char *, argc + 1);
    for (int i = 0; i < argc; i++) {
        double v;
        bool is_value = i > 0 && !strchr(argv[i - 1], '=') &&
                        (!strcmp(argv[i - 1], "--db") || !strcmp(argv[i - 1], "--srs") ||
                         !strcmp(argv[i - 1], "--crs"));
        if (i > 0 && !is_value && parse_coord(argv[i], &v) == 0 && npos < 2)
            pos[npos++] = argv[i];
        else
            args[n++] = argv[i];
    }
    int ch;
    while ((ch = getopt_long(n, args, "", opts, NULL)) != -1) {
        if (ch == 'd')
            db = optarg;
        else if (ch == 's')
            srs = optarg;
        else {
            g_free(args);
            return usage(NULL);
        }
    }
    bool extra = optind != n;
    g_free(args);
    if (npos != 2 || extra)
        return usage("geotag takes LON LAT (numbers)");
    double x, y;
    parse_coord(pos[0], &x);
    parse_coord(pos[1], &y);
    crs_def d;
    gc_err err = {0};
    crs_transform *t = NULL;
    if (crs_parse(srs, &d, &err) || !(t = crs_transform_new(&d, &err)) ||
        crs_transform_to_wgs84(t, &x, &y, 1, NULL, &err)) {
        fprintf(stderr, "gridcc geotag: %s\n", err.msg);
        crs_transform_free(t);
        return 1;
    }
    crs_transform_free(t);
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    gc_index *ix = geotag_build_index(s, &err);
    store_close(s);
    if (!ix) {
        fprintf(stderr, "gridcc geotag: %s\n", err.msg);
        return 1;
    }
    index_chain c;
    index_geotag(ix, x, y, &c);
    json_t *j = geotag_chain_json(&c, x, y);
    char *out = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    printf("%s\n", out);
    free(out);
    json_decref(j);
    index_free(ix);
    return 0;
}

/* ---- serve ---- */

/* An integer option in lo..hi, or -1 after printing usage. */
static int int_opt(const char *name, const char *v, long lo, long hi, int *out)
{
    int64_t n;
    if (gc_parse_int(v, name, lo, hi, &n, NULL)) {
        char m[96];
        snprintf(m, sizeof m, "--%s takes %ld..%ld", name, lo, hi);
        usage(m);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* Minutes, decimals allowed (0.05 is 3 s), up to a day. */
static int minutes_opt(const char *name, const char *v, double *out)
{
    double m;
    if (gc_parse_double(v, name, 0.01, 1440, &m, NULL)) {
        char msg[96];
        snprintf(msg, sizeof msg, "--%s takes minutes, 0.01..1440", name);
        usage(msg);
        return -1;
    }
    *out = m;
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static struct option opts[] = {{"db", 1, 0, 'd'},   {"port", 1, 0, 'p'},
                                   {"bind", 1, 0, 'b'}, {"public-read", 0, 0, 'r'},
                                   {"idle-timeout", 1, 0, 't'}, {"osmand-port", 1, 0, 'o'},
                                   {"outside-minutes", 1, 0, 'O'}, {"silent-minutes", 1, 0, 'S'},
                                   {"live-max-lag", 1, 0, 'L'}, {"live-stall", 1, 0, 's'}, {"live-tick", 1, 0, 'k'},
                                   {"max-conns-per-addr", 1, 0, 'C'}, {"web", 1, 0, 'w'},
                                   {"glyphs", 1, 0, 'g'}, {"tile-minzoom", 1, 0, 'Z'},
                                   {"tile-cache-mb", 1, 0, 'M'}, {"basemap", 1, 0, 'B'},
                                   {"video-ingest", 1, 0, 'V'}, {0, 0, 0, 0}};
    app_opts o = {.bind = "127.0.0.1", .port = 8080};
    int ch, rc = 0;
    while (!rc && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': o.db = optarg; break;
        case 'b': o.bind = optarg; break;
        case 'w': o.web_dir = optarg; break;
        case 'g': o.glyphs_dir = optarg; break;
        case 'r': o.public_read = true; break;
        case 't': rc = int_opt("idle-timeout", optarg, 1, 3600, &o.idle_timeout_s); break;
        case 'p': rc = int_opt("port", optarg, 0, 65535, &o.port); break;
        case 'o':
            rc = int_opt("osmand-port", optarg, -1, 65535, &o.tracker.port);
            if (!rc && o.tracker.port == 0)
                o.tracker.port = -2;   /* 0: any free port (tests); -1: none */
            break;
        case 'O': rc = minutes_opt("outside-minutes", optarg, &o.tracker.outside_min); break;
        case 'S': rc = minutes_opt("silent-minutes", optarg, &o.tracker.silent_min); break;
        case 'L': rc = int_opt("live-max-lag", optarg, 10, 10000000, &o.live.max_lag); break;
        case 's': rc = int_opt("live-stall", optarg, 1, 3600, &o.live.stall_s); break;
        case 'k': rc = int_opt("live-tick", optarg, 1, 1000, &o.live.tick_ms); break;
        case 'Z': o.tile_minzoom = optarg; break;
        case 'B': o.basemap = optarg; break;
        case 'V':
            if (strcmp(optarg, "direct") && strcmp(optarg, "rtspsrc"))
                return usage("--video-ingest takes direct or rtspsrc");
            o.video_ingest = optarg;
            break;
        case 'M': rc = int_opt("tile-cache-mb", optarg, 1, 65536, &o.tile_cache_mb); break;
        case 'C':
            rc = int_opt("max-conns-per-addr", optarg, 0, 1000000, &o.max_conns_per_addr);
            if (!rc && o.max_conns_per_addr == 0)
                o.max_conns_per_addr = -1;   /* 0: no cap */
            o.tracker.max_conns_per_addr = o.max_conns_per_addr;   /* the OsmAnd port too */
            break;
        default: return usage(NULL);
        }
    }
    if (rc)
        return 2;
    if (o.port == 0 && o.tracker.port == 0)
        o.tracker.port = -2;   /* an API on any free port (tests): the OsmAnd port too */
    if (optind != argc)
        return usage("serve takes no arguments");
    if (!o.db)
        return usage("--db FILE is required");
    return app_serve(&o);
}

/* ---- device ---- */

static int cmd_device(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "add"))
        return usage("device: the only subcommand is 'add'");
    argc--;
    argv++;
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"worker", 1, 0, 'w'}, {"crs", 1, 0, 'c'},
                                   {"label", 1, 0, 'l'}, {0, 0, 0, 0}};
    const char *db = NULL, *worker = NULL, *crs = NULL, *label = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'w': worker = optarg; break;
        case 'c': crs = optarg; break;
        case 'l': label = optarg; break;
        default: return usage(NULL);
        }
    }
    if (optind != argc - 1 || !db || !worker)
        return usage("device add DEVICE_ID --worker NAME|ID --db FILE [--crs gcj02] [--label TEXT]");
    const char *dev = argv[optind];
    gc_err err = {0};
    crs_def cd;
    if (crs && (crs_parse(crs, &cd, &err) || cd.kind == CRS_EPSG)) {
        fprintf(stderr, "gridcc device add: --crs: %s\n",
                err.msg[0] ? err.msg : "a tracker's crs is EPSG:4326, gcj02 or bd09");
        return 2;
    }
    store *s;
    if (store_open(db, &s, &err)) {
        fprintf(stderr, "gridcc device add: %s: %s\n", db, err.msg);
        return 1;
    }
    store_user u;
    int rc = store_user_find(s, worker, &u, &err);
    if (rc) {
        fprintf(stderr, "gridcc device add: --worker %s: no such user\n", worker);
    } else if (u.role != ROLE_WORKER) {
        fprintf(stderr, "gridcc device add: --worker %s: user is a %s, not a worker\n", worker,
                role_name(u.role));
        rc = 1;
    } else if ((rc = store_device_put(s, dev, u.id, crs ? cd.name : NULL, label, &err))) {
        fprintf(stderr, "gridcc device add: %s\n", err.msg);
    } else {
        printf("device %s -> worker %s (id %lld)\n", dev, u.name, (long long)u.id);
    }
    store_close(s);
    return rc ? 1 : 0;
}

/* ---- incident ---- */

static void print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
}

static int incident_fail(const char *what, const gc_err *e)
{
    fprintf(stderr, "gridcc incident %s: %s%s%s\n", what, e->field[0] ? e->field : "",
            e->field[0] ? ": " : "", e->msg);
    return 1;
}

static int cmd_incident_report(int argc, char **argv)
{
    static struct option opts[] = {
        {"db", 1, 0, 'd'},          {"category", 1, 0, 'c'}, {"description", 1, 0, 't'},
        {"lon", 1, 0, 'x'},         {"lat", 1, 0, 'y'},      {"srs", 1, 0, 's'},
        {"address", 1, 0, 'a'},     {"photo", 1, 0, 'p'},    {"source", 1, 0, 'S'},
        {"idempotency-key", 1, 0, 'k'}, {0, 0, 0, 0}};
    const char *db = NULL, *key = NULL;
    json_t *in = json_object(), *photos = json_array();
    GPtrArray *files = g_ptr_array_new();
    int ch, rc = 0;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'c': json_object_set_new(in, "category", json_string(optarg)); break;
        case 't': json_object_set_new(in, "description", json_string(optarg)); break;
        case 's': json_object_set_new(in, "crs", json_string(optarg)); break;
        case 'a': json_object_set_new(in, "address", json_string(optarg)); break;
        case 'S': json_object_set_new(in, "source", json_string(optarg)); break;
        case 'k': key = optarg; break;
        case 'p': g_ptr_array_add(files, optarg); break;
        case 'x':
        case 'y': {
            double v = 0;
            if (gc_parse_double(optarg, ch == 'x' ? "lon" : "lat", -INFINITY, INFINITY, &v, NULL)) {
                fprintf(stderr, "gridcc incident report: --%s: not a number: %s\n",
                        ch == 'x' ? "lon" : "lat", optarg);
                rc = 1;
            }
            json_object_set_new(in, ch == 'x' ? "lon" : "lat", json_real(v));
            break;
        }
        default: rc = 2;
        }
    }
    store *s = NULL;
    if (!rc && !(rc = open_store(db, &s))) {
        char *dir = g_strconcat(db, ".photos", NULL);
        bool has_loc = json_object_get(in, "lon") != NULL;
        for (guint i = 0; i < files->len && !rc; i++) {
            const char *path = files->pdata[i];
            gchar *buf;
            gsize len;
            GError *ge = NULL;
            if (!g_file_get_contents(path, &buf, &len, &ge)) {
                fprintf(stderr, "gridcc incident report: %s\n", ge->message);
                g_error_free(ge);
                rc = 1;
                break;
            }
            json_t *photo;
            bool gps;
            double lon, lat;
            gc_err e = {0};
            if (incident_photo_store(dir, (unsigned char *)buf, len, path, &photo, &gps, &lon,
                                     &lat, &e)) {
                fprintf(stderr, "gridcc incident report: %s: %s\n", path, e.msg);
                rc = 1;
            } else {
                json_array_append_new(photos, photo);
                if (gps && !has_loc) {
                    json_object_set_new(in, "lon", json_real(lon));
                    json_object_set_new(in, "lat", json_real(lat));
                    has_loc = true;
                }
            }
            g_free(buf);
        }
        g_free(dir);
        json_object_set_new(in, "photos", json_incref(photos));
        if (!rc && !has_loc && !json_object_get(in, "address")) {
            fprintf(stderr, "gridcc incident report: a report needs --lon/--lat, --address, or "
                            "a --photo with GPS in its EXIF\n");
            rc = 1;
        }
        if (!rc) {
            gc_err e = {0};
            gc_index *ix = geotag_build_index(s, &e);
            inc_actor who = {0, "cli", ROLE_OPERATOR, NULL};
            json_t *row = NULL;
            bool existing;
            if (!ix || incident_report(s, ix, &who, in, key, (int64_t)time(NULL), &row,
                                       &existing, &e))
                rc = incident_fail("report", &e);
            else {
                print_json(row);
                if (existing)
                    fprintf(stderr, "(an earlier report with this idempotency key)\n");
            }
            json_decref(row);
            index_free(ix);
        }
        store_close(s);
    }
    g_ptr_array_free(files, TRUE);
    json_decref(photos);
    json_decref(in);
    return rc == 2 ? usage(NULL) : rc;
}

static int print_row(void *ud, json_t *row)
{
    json_t *chain = json_object_get(json_object_get(row, "chain"), "chain");
    json_t *grid = json_object_get(chain, "grid");
    printf("%s\t%s\t%s\t%s\t%s\n", json_string_value(json_object_get(row, "case_no")),
           json_string_value(json_object_get(row, "status")),
           json_string_value(json_object_get(row, "category")),
           json_is_object(grid) ? json_string_value(json_object_get(grid, "name")) : "-",
           json_string_value(json_object_get(row, "description")));
    return 0;
}

static int cmd_incident(int argc, char **argv)
{
    if (argc < 2)
        return usage("incident: report, show or list");
    if (!strcmp(argv[1], "report"))
        return cmd_incident_report(argc, argv);
    static struct option opts[] = {
        {"db", 1, 0, 'd'},      {"status", 1, 0, 's'}, {"category", 1, 0, 'c'},
        {"grid", 1, 0, 'g'},    {"overdue", 0, 0, 'o'}, {"unplaced", 0, 0, 'u'},
        {"limit", 1, 0, 'l'},   {0, 0, 0, 0}};
    const char *db = NULL;
    store_incident_filter f = {.limit = 100, .now = (int64_t)time(NULL)};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 's': f.statuses = optarg; break;
        case 'c': f.category = optarg; break;
        case 'g': f.unit_level = "grid"; f.unit_id = optarg; break;
        case 'o': f.overdue = true; break;
        case 'u': f.unplaced = true; break;
        case 'l':
            if (gc_parse_int(optarg, "limit", 1, 1000000, &f.limit, NULL))
                return usage("--limit takes 1..1000000");
            break;
        default: return usage(NULL);
        }
    }
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    gc_err e = {0};
    if (!strcmp(argv[1], "show")) {
        if (optind + 1 != argc) {
            store_close(s);
            return usage("incident show takes one ID (a case number or id)");
        }
        json_t *row;
        if (incident_get(s, argv[optind], true, &row, &e))
            rc = incident_fail("show", &e);
        else
            print_json(row);
        json_decref(row);
    } else if (!strcmp(argv[1], "list")) {
        int64_t matched = 0;
        if (store_incidents_query(s, &f, &matched, print_row, NULL, &e))
            rc = incident_fail("list", &e);
        else
            fprintf(stderr, "%lld matching\n", (long long)matched);
    } else {
        rc = usage("incident: report, show or list");
    }
    store_close(s);
    return rc;
}

/* ---- hotline ---- */

static void hotline_progress_line(void *ud, int rows)
{
    if (*(bool *)ud)
        fprintf(stderr, "\r\033[Khotline import: %d orders", rows);
}

static int cmd_hotline(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "import"))
        return usage("hotline: the only subcommand is 'import'");
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"map", 1, 0, 'm'}, {0, 0, 0, 0}};
    const char *db = NULL, *mapfile = NULL;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            db = optarg;
        else if (ch == 'm')
            mapfile = optarg;
        else
            return usage(NULL);
    }
    if (optind + 1 != argc)
        return usage("hotline import takes exactly one FILE");
    const char *path = argv[optind];
    gc_err e = {0};
    hotline_map *m = mapfile ? hotline_map_load(mapfile, &e) : hotline_map_default();
    if (!m) {
        fprintf(stderr, "gridcc hotline import: %s\n", e.msg);
        return 1;
    }
    store *s;
    int rc = open_store(db, &s);
    if (rc) {
        hotline_map_free(m);
        return rc;
    }
    gint64 t0 = g_get_monotonic_time();
    gc_index *ix = geotag_build_index(s, &e);
    address_index *ax = ix ? address_index_build(s, &e) : NULL;
    bool tty = isatty(2);
    hotline_report rep = {0};
    if (!ax || hotline_import(s, ix, ax, path, m, hotline_progress_line, &tty, &rep, &e)) {
        if (tty)
            fputs("\r\033[K", stderr);
        import_fail("hotline import", path, "not imported", &e);
        rc = 1;
    } else {
        if (tty)
            fputs("\r\033[K", stderr);
        size_t i;
        json_t *p;
        json_array_foreach(rep.problems, i, p)
            fprintf(stderr, "%s: %s: line %lld (order %s): %s\n", path,
                    json_string_value(json_object_get(p, "kind")),
                    (long long)json_integer_value(json_object_get(p, "line")),
                    json_string_value(json_object_get(p, "order")),
                    json_string_value(json_object_get(p, "reason")));
        printf("%s: %d orders: %d created (%d by coordinates, %d by address, %d unplaced), "
               "%d already imported, %d rejected in %.1f s\n",
               path, rep.rows, rep.created, rep.placed_by_coords, rep.placed_by_address,
               rep.unplaced, rep.existing, rep.rejected,
               (double)(g_get_monotonic_time() - t0) / 1e6);
        rc = rep.rejected ? 1 : 0;
    }
    hotline_report_clear(&rep);
    address_index_free(ax);
    index_free(ix);
    store_close(s);
    hotline_map_free(m);
    return rc;
}

/* ---- tracks ---- */

static void tracks_progress_line(void *ud, const char *path, int64_t points)
{
    if (*(bool *)ud)
        fprintf(stderr, "\r\033[Ktracks import: %s: %lld points", path, (long long)points);
}

static int cmd_tracks(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "import"))
        return usage("tracks: the only subcommand is 'import'");
    static struct option opts[] = {{"db", 1, 0, 'd'}, {"worker", 1, 0, 'w'}, {"crs", 1, 0, 'c'},
                                   {"srs", 1, 0, 'c'}, {"tz", 1, 0, 'z'},   {0, 0, 0, 0}};
    const char *db = NULL, *worker = NULL, *crs = NULL, *tz = NULL;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'w': worker = optarg; break;
        case 'c': crs = optarg; break;
        case 'z': tz = optarg; break;
        default: return usage(NULL);
        }
    }
    if (optind >= argc)
        return usage("tracks import takes one or more FILEs");
    if (!worker)
        return usage("--worker ID (a user id or name) is required");
    tracks_import_opts o = {0};
    gc_err e = {0};
    double x = 116.4, y = 39.9;
    if (crs_parse(crs, &o.crs, &e) || fix_to_wgs84(&o.crs, &x, &y, &e)) {
        fprintf(stderr, "gridcc tracks import: --crs: %s\n", e.msg);
        return usage(NULL);
    }
    if (tz && !(o.tz = g_time_zone_new_identifier(tz))) {
        fprintf(stderr, "gridcc tracks import: --tz: '%s' is not a time zone (+08:00, "
                        "Asia/Shanghai, UTC)\n", tz);
        return usage(NULL);
    }
    store *s;
    int rc = open_store(db, &s);
    if (rc) {
        if (o.tz)
            g_time_zone_unref(o.tz);
        return rc;
    }
    store_user u = {0};
    gc_index *ix = NULL;
    if (tracks_worker_find(s, worker, &u, &e) || !(ix = geotag_build_index(s, &e))) {
        fprintf(stderr, "gridcc tracks import: %s%s\n", u.id ? "" : "--worker: ", e.msg);
        rc = 1;
    }
    bool tty = isatty(2), failed = false;
    o.user_id = u.id;
    o.progress = tracks_progress_line;
    o.ud = &tty;
    int64_t taken = 0;
    for (int i = optind; !rc && i < argc; i++) {
        tracks_report rep;
        gc_err fe = {0};
        int r = tracks_import_file(s, ix, argv[i], &o, &rep, &fe);
        if (tty)
            fputs("\r\033[K", stderr);
        if (r) {
            /* written in chunks: what was stored stays, and is not stored twice */
            import_fail("tracks import", argv[i], "not wholly imported (run it again)", &fe);
            failed = true;
            if (r != GC_EINVAL)
                rc = 1;   /* the store failed: the next file would too */
            continue;
        }
        tracks_report_print(&rep, argv[i], stdout);
        fflush(stdout);
        taken += rep.imported + rep.duplicates;
    }
    if (!rc && !failed && !taken)
        fprintf(stderr, "gridcc tracks import: no fix could be taken from the files\n");
    if (failed || !taken)
        rc = 1;
    index_free(ix);
    store_close(s);
    if (o.tz)
        g_time_zone_unref(o.tz);
    return rc;
}

/* ---- cameras ---- */

static int cmd_cameras(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "import"))
        return usage("cameras: the only subcommand is 'import'");
    static struct option opts[] = {{"db", 1, 0, 'd'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            db = optarg;
        else
            return usage(NULL);
    }
    if (optind + 1 != argc)
        return usage("cameras import takes exactly one FILE");
    const char *path = argv[optind];
    store *s;
    int rc = open_store(db, &s);
    if (rc)
        return rc;
    cameras_import_report rep;
    gc_err e = {0};
    /* like the layer import: one bad feature refuses the whole file */
    if (cameras_import(s, path, &rep, &e)) {
        size_t i;
        json_t *p;
        json_array_foreach(rep.problems, i, p)
            fprintf(stderr, "%s\n", json_string_value(p));
        import_fail("cameras import", path, "not imported", &e);
        rc = 1;
    } else {
        printf("%s: %d cameras: %d created, %d replaced\n", path, rep.features, rep.created,
               rep.replaced);
    }
    cameras_import_report_clear(&rep);
    store_close(s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(NULL);
    if (auth_init()) {
        fprintf(stderr, "gridcc: libsodium failed to initialise\n");
        return 1;
    }
    const char *lvl = getenv("GRIDCC_LOG");
    if (lvl && !strcmp(lvl, "debug"))
        log_set_level(LOG_DEBUG);
    else if (lvl && !strcmp(lvl, "warn"))
        log_set_level(LOG_WARN);
    GDALAllRegister();
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "serve"))
        rc = cmd_serve(argc - 1, argv + 1);
    else if (!strcmp(cmd, "import"))
        rc = cmd_import(argc - 1, argv + 1);
    else if (!strcmp(cmd, "seed"))
        rc = cmd_seed(argc - 1, argv + 1);
    else if (!strcmp(cmd, "user"))
        rc = cmd_user(argc - 1, argv + 1);
    else if (!strcmp(cmd, "geotag"))
        rc = cmd_geotag(argc - 1, argv + 1);
    else if (!strcmp(cmd, "incident"))
        rc = cmd_incident(argc - 1, argv + 1);
    else if (!strcmp(cmd, "device"))
        rc = cmd_device(argc - 1, argv + 1);
    else if (!strcmp(cmd, "hotline"))
        rc = cmd_hotline(argc - 1, argv + 1);
    else if (!strcmp(cmd, "tracks"))
        rc = cmd_tracks(argc - 1, argv + 1);
    else if (!strcmp(cmd, "cameras"))
        rc = cmd_cameras(argc - 1, argv + 1);
    else if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("gridcc %s\n", GRIDCC_VERSION);
        rc = 0;
    } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        rc = 0;
    } else
        rc = usage("unknown command");
    crs_pool_clear();
    GDALDestroy();
    return rc;
}
