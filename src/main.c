/* main: the command line, nothing else. Exit status 0 ok, 1 input rejected
 * (messages on stderr), 2 usage. */
#include <getopt.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gdal.h>

#include "gridcc/app.h"
#include "gridcc/auth.h"
#include "gridcc/crs.h"
#include "gridcc/geotag.h"
#include "gridcc/layers.h"
#include "gridcc/log.h"
#include "gridcc/store.h"

static const char usage_text[] =
    "usage: gridcc COMMAND [options]\n"
    "  serve --db FILE [--port 8080] [--bind 127.0.0.1] [--public-read] [--idle-timeout 30]\n"
    "  import FILE --level LEVEL --db FILE [--layer NAME] [--srs EPSG:N|gcj02|bd09]\n"
    "         [--encoding GBK] [--id-field F] [--name-field F] [--code-field F]\n"
    "         [--parent-field F] [--repair] [--dry-run] [--topology warn|error]\n"
    "         [--tolerance M2] [--source-layer NAME]\n"
    "         LEVEL: district street community grid building unit dedicated dept:NAME\n"
    "  seed --db FILE [--layers DIR]\n"
    "  user add NAME --role operator|worker|planner|admin|department|resident --db FILE\n"
    "           [--department NAME] [--password-stdin]\n"
    "  geotag LON LAT --db FILE [--srs EPSG:N|gcj02|bd09]\n"
    "  version\n";

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
            kind == LAYERS_MSG_ERROR ? "error" : kind == LAYERS_MSG_WARN ? "warning" : "note",
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
    if (rc) {
        fprintf(stderr, "gridcc import: %s\n", err.msg);
        return 1;
    }
    printf("%s: %s layer '%s': %zu features%s, %zu warnings, %zu repaired%s\n", o->path,
           o->dry_run ? "checked" : "imported", rep.layer, rep.features,
           o->dry_run ? "" : "", rep.warnings, rep.repaired,
           o->dry_run ? " (dry run: nothing stored)" : "");
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
        {"tolerance", 1, 0, 'T'},   {"source-layer", 1, 0, 'S'}, {0, 0, 0, 0}};
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
        case 'D': o.dry_run = true; break;
        case 't':
            if (!strcmp(optarg, "warn"))
                o.topology_warn = true;
            else if (strcmp(optarg, "error"))
                return usage("--topology takes warn or error");
            break;
        case 'T': {
            char *end;
            o.tolerance_m2 = strtod(optarg, &end);
            if (*end || !(o.tolerance_m2 > 0))
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
    if (!auth_role_valid(role)) {
        fprintf(stderr, "gridcc user add: unknown role '%s': use operator, worker, planner, admin, "
                        "department or resident\n",
                role);
        return 1;
    }
    if ((strcmp(role, "department") == 0) != (dept && *dept)) {
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
    if (store_user_add(s, name, role, dept, pwhash[0] ? pwhash : NULL, &uid, &err) ||
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
    char *end;
    *v = strtod(s, &end);
    return *end || end == s ? -1 : 0;
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

static int cmd_serve(int argc, char **argv)
{
    static struct option opts[] = {{"db", 1, 0, 'd'},   {"port", 1, 0, 'p'},
                                   {"bind", 1, 0, 'b'}, {"public-read", 0, 0, 'r'},
                                   {"idle-timeout", 1, 0, 't'}, {0, 0, 0, 0}};
    app_opts o = {.bind = "127.0.0.1", .port = 8080};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': o.db = optarg; break;
        case 'b': o.bind = optarg; break;
        case 'r': o.public_read = true; break;
        case 't': {
            char *end;
            long t = strtol(optarg, &end, 10);
            if (*end || t < 1 || t > 3600)
                return usage("--idle-timeout takes 1..3600 seconds");
            o.idle_timeout_s = (int)t;
            break;
        }
        case 'p': {
            char *end;
            long p = strtol(optarg, &end, 10);
            if (*end || p < 0 || p > 65535)
                return usage("--port takes 0..65535");
            o.port = (int)p;
            break;
        }
        default: return usage(NULL);
        }
    }
    if (optind != argc)
        return usage("serve takes no arguments");
    if (!o.db)
        return usage("--db FILE is required");
    return app_serve(&o);
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
    else if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("gridcc %s\n", GRIDCC_VERSION);
        rc = 0;
    } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        rc = 0;
    } else
        rc = usage("unknown command");
    GDALDestroy();
    return rc;
}
