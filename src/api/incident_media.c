/* incident_media: the footage of the cameras that saw a case.
 *
 * When a case is reported inside cameras' view sectors, the report lists
 * them on the case with media "pending" (cameras_match_incident). From then
 * on this takes, from each camera's ring buffer, a snapshot at the case's
 * time and a clip from before_s before it to after_s after it (MP4, no
 * transcoding), stores them under DB.media/<case id>/ and records them on
 * the case (store_incident_camera_media_set), or why not. It reads what is
 * owed from the store once a second, so every way a case comes in (the API,
 * Open311, a 12345 import, another process) is served, and a restart picks
 * up what was left: footage the ring no longer holds is recorded as lost.
 *
 * It also serves the files:
 *   GET /api/incidents/{id}/cameras/{camera}/snapshot.jpg | clip.mp4
 * to the desks that read the cameras (CAMERAS_READ_ROLES), for the cases
 * they may see. */
#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "gridcc/incidents.h"
#include "gridcc/log.h"
#include "gridcc/video.h"

#define POLL_MS 1000
#define DUE_BATCH 32

struct incident_media {
    api_env *e;
    char *dir;                 /* DB.media */
    int before_s, after_s;
    guint timer;
    GHashTable *busy;          /* "incident/camera/kind" in flight */
    int inflight;
    bool closing;
};

typedef struct media_job {
    incident_media *m;
    int64_t incident_id;
    char *camera_id, *kind, *key, *rel, *path;
} media_job;

static void maybe_free(incident_media *m)
{
    if (!m->closing || m->inflight)
        return;
    g_hash_table_destroy(m->busy);
    g_free(m->dir);
    g_free(m);
}

static void job_done(media_job *j, const char *rel, const char *why)
{
    incident_media *m = j->m;
    if (!m->closing) {
        gc_err err = {0};
        if (store_incident_camera_media_set(m->e->store, j->incident_id, j->camera_id, j->kind, rel,
                                            rel ? NULL : why, &err) &&
            err.code != GC_ENOTFOUND)
            log_error("media", "case=%lld camera=%s %s not recorded: %s", (long long)j->incident_id,
                      j->camera_id, j->kind, err.msg);
        else if (rel)
            log_info("media", "case=%lld camera=%s %s=%s", (long long)j->incident_id, j->camera_id,
                     j->kind, rel);
        else
            log_warn("media", "case=%lld camera=%s no %s: %s", (long long)j->incident_id,
                     j->camera_id, j->kind, why);
        g_hash_table_remove(m->busy, j->key);
    }
    m->inflight--;
    g_free(j->camera_id);
    g_free(j->kind);
    g_free(j->key);
    g_free(j->rel);
    g_free(j->path);
    g_free(j);
    maybe_free(m);
}

static void snapshot_done(void *ud, GBytes *jpeg, const gc_err *err)
{
    media_job *j = ud;
    if (!jpeg) {
        job_done(j, NULL, err && err->msg[0] ? err->msg : "no snapshot");
        return;
    }
    GError *ge = NULL;
    gsize n;
    const char *data = g_bytes_get_data(jpeg, &n);
    if (!g_file_set_contents(j->path, data, (gssize)n, &ge)) {
        char why[256];
        snprintf(why, sizeof why, "storing the snapshot: %s", ge->message);
        g_error_free(ge);
        job_done(j, NULL, why);
        return;
    }
    job_done(j, j->rel, NULL);
}

static void clip_done(void *ud, const gc_err *err)
{
    media_job *j = ud;
    if (err && err->code) {
        g_unlink(j->path);
        job_done(j, NULL, err->msg[0] ? err->msg : "no clip");
        return;
    }
    job_done(j, j->rel, NULL);
}

static media_job *job_new(incident_media *m, const store_media_due *d, const char *kind,
                          const char *file)
{
    char *casedir = g_strdup_printf("%s/%lld", m->dir, (long long)d->incident_id);
    if (g_mkdir_with_parents(casedir, 0700) && errno != EEXIST) {
        log_error("media", "cannot make %s: %s", casedir, g_strerror(errno));
        g_free(casedir);
        return NULL;
    }
    g_free(casedir);
    media_job *j = g_new0(media_job, 1);
    j->m = m;
    j->incident_id = d->incident_id;
    j->camera_id = g_strdup(d->camera_id);
    j->kind = g_strdup(kind);
    j->key = g_strdup_printf("%lld/%s/%s", (long long)d->incident_id, d->camera_id, kind);
    /* the camera's id ends in a suffix of ours: "..", say, is a plain name then */
    j->rel = g_strdup_printf("%lld/%s.%s", (long long)d->incident_id, d->camera_id, file);
    j->path = g_strdup_printf("%s/%s", m->dir, j->rel);
    g_hash_table_add(m->busy, g_strdup(j->key));
    m->inflight++;
    return j;
}

/* One piece of footage owed: started unless it is under way, or the case's
 * moment has not come yet. */
static void start(incident_media *m, const store_media_due *d, const char *kind)
{
    char key[160];
    snprintf(key, sizeof key, "%lld/%s/%s", (long long)d->incident_id, d->camera_id, kind);
    int64_t at_ms = d->reported_at * 1000;
    if (g_hash_table_contains(m->busy, key) || g_get_real_time() / 1000 < at_ms)
        return;
    bool snapshot = !strcmp(kind, "snapshot");
    media_job *j = job_new(m, d, kind, snapshot ? "jpg" : "mp4");
    if (!j)
        return;
    video *v = m->e->video;
    json_t *health = v ? video_camera_health(v, d->camera_id) : NULL;
    if (!health)
        job_done(j, NULL, "the camera is not in the video engine");
    else if (snapshot)
        video_snapshot(v, d->camera_id, at_ms, snapshot_done, j);
    else
        video_clip(v, d->camera_id, at_ms - (int64_t)m->before_s * 1000,
                   at_ms + (int64_t)m->after_s * 1000, j->path, clip_done, j);
    json_decref(health);
}

static int due(void *ud, const store_media_due *d)
{
    incident_media *m = ud;
    if (!d->has_snapshot)
        start(m, d, "snapshot");
    if (!d->has_clip)
        start(m, d, "clip");
    return 0;
}

static gboolean poll_due(gpointer ud)
{
    incident_media *m = ud;
    gc_err err = {0};
    if (store_incident_media_due(m->e->store, DUE_BATCH, due, m, &err))
        log_error("media", "reading the footage owed: %s", err.msg);
    return G_SOURCE_CONTINUE;
}

incident_media *incident_media_new(api_env *e, const char *dir, int before_s, int after_s)
{
    incident_media *m = g_new0(incident_media, 1);
    m->e = e;
    m->dir = g_strdup(dir);
    m->before_s = before_s;
    m->after_s = after_s;
    m->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->timer = g_timeout_add(POLL_MS, poll_due, m);
    return m;
}

void incident_media_free(incident_media *m)
{
    if (!m)
        return;
    if (m->timer)
        g_source_remove(m->timer);
    m->timer = 0;
    m->closing = true;   /* jobs still out free it when they come back */
    maybe_free(m);
}

/* ---- the files ---- */

bool incident_media_serve(http_req *r, api_env *e, const char *rest)
{
    /* rest: {id}/cameras/{camera}/{snapshot.jpg|clip.mp4} */
    char **p = g_strsplit(rest, "/", 0);
    bool ours = g_strv_length(p) == 4 && !strcmp(p[1], "cameras");
    if (!ours) {
        g_strfreev(p);
        return false;
    }
    const char *kind = !strcmp(p[3], "snapshot.jpg") ? "snapshot"
                       : !strcmp(p[3], "clip.mp4")   ? "clip"
                                                     : NULL;
    int64_t id = 0;
    json_t *row = NULL, *cams = NULL;
    gc_err err = {0};
    if (!kind) {
        http_reply_error(r, 404, "not_found", "path", "a case's camera has snapshot.jpg and clip.mp4");
        goto out;
    }
    /* footage is for the desks that may read the cameras themselves */
    if (!(r->who.role & CAMERAS_READ_ROLES)) {
        http_reply_error(r, 403, "forbidden", "role", "camera footage is not for role %s",
                         role_name(r->who.role));
        goto out;
    }
    /* the case as its reader may see it: another department's gets 404 */
    if (incident_get(e->store, p[0], true, &row, &err) ||
        !incidents_may_see(&r->who, row)) {
        http_reply_error(r, 404, "not_found", "id", "no incident '%s'", p[0]);
        goto out;
    }
    id = json_integer_value(json_object_get(row, "id"));
    if (store_incident_cameras(e->store, id, &cams, &err)) {
        http_reply_err(r, &err);
        goto out;
    }
    const char *rel = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(cams, i, c) if (!g_strcmp0(json_string_value(json_object_get(c, "camera_id")), p[2]))
        rel = json_string_value(json_object_get(c, kind));
    if (!rel) {
        http_reply_error(r, 404, "not_found", "camera", "no %s of camera '%s' on this case", kind,
                         p[2]);
        goto out;
    }
    char *path = g_strdup_printf("%s/%s", e->media_dir, rel), *data = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, &data, &n, NULL)) {
        log_error("media", "case=%lld camera=%s %s recorded but unreadable", (long long)id, p[2],
                  kind);
        http_reply_error(r, 404, "not_found", "camera", "the %s is no longer stored", kind);
    } else {
        http_add_header(r, "Cache-Control", "private, max-age=86400");
        http_reply(r, 200, !strcmp(kind, "clip") ? "video/mp4" : "image/jpeg", data, n);
    }
    g_free(data);
    g_free(path);
out:
    json_decref(row);
    json_decref(cams);
    g_strfreev(p);
    return true;
}
