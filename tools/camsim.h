/* camsim: simulated RTSP cameras for gridcc's video engine, its tests, its
 * benchmarks and the demo. Each mount serves a clip encoded once into a cache
 * (camsim_clip.c) and looped with segment seeks by gst-rtsp-server
 * (camsim.c); a line protocol on TCP makes mounts misbehave on request
 * (camsim_control.c). Private to tools/. */
#ifndef CAMSIM_H
#define CAMSIM_H

#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdbool.h>
#include <stdint.h>

#include "gridcc/err.h"

typedef enum { CAMSIM_H264, CAMSIM_H265 } camsim_codec;

const char *camsim_codec_name(camsim_codec c);
int camsim_codec_parse(const char *s, camsim_codec *out);

/* what a clip is made of; one cached file per distinct value */
typedef struct camsim_clip_spec {
    camsim_codec codec;
    int width, height, fps, kbit, seconds, gop;
} camsim_clip_spec;

/* The cached clip for spec under dir, encoded now if it is not there yet:
 * 0 and *path (caller frees), or a negative code with err set. *encoded says
 * whether this call encoded it. */
int camsim_clip_ensure(const char *dir, const camsim_clip_spec *spec, char **path, bool *encoded,
                       gc_err *err);

/* what --file serves: the codec and the shape of the video in path */
typedef struct camsim_file_info {
    camsim_codec codec;
    int width, height;
    double fps; /* 0 if the file does not say */
    enum { CAMSIM_RAW, CAMSIM_MP4, CAMSIM_MKV } container;
    /* a raw stream: the presentation index of each access unit in decode
     * order (-1: the decoder never showed it), NULL if not known */
    int *order;
    int units; /* entries in order */
    int delay; /* the most frames any unit is presented before its decode */
} camsim_file_info;

int camsim_file_probe(const char *path, camsim_file_info *info, gc_err *err);
/* Fills info->order for a raw stream by decoding it once: a raw elementary
 * stream has no times, and with B-frames its decode order is not the order
 * in which its pictures are shown. */
int camsim_file_order(const char *path, camsim_file_info *info, gc_err *err);

#define CAMSIM_LOOPS_KEPT 8

typedef struct camsim_mount {
    char *id;   /* "cam3", "file1": the mount path without its slash */
    char *path; /* "/cam3" */
    char *file; /* --file mounts: the file served; NULL for clips */
    camsim_codec codec;
    char *clip; /* what the pipeline reads: the cached clip or the file */
    camsim_file_info finfo;
    GstRTSPMediaFactory *factory;
    bool up;
    guint stall_timer; /* main loop source ending a timed stall, 0 if none */
    /* read by streaming threads */
    gint stalled;                     /* atomic: drop media buffers */
    gint refusing;                    /* atomic: 401 for every credential */
    gint pipelines;                   /* atomic: pipelines alive now */
    gint pipelines_created;           /* atomic */
    gint generation;                  /* atomic: bumped when a pipeline starts to wind down */
    GMutex lock;                      /* guards password and the loop record below */
    char *password;                   /* NULL: --password's */
    int64_t loops[CAMSIM_LOOPS_KEPT]; /* ms since the epoch when frame 0 left, ring */
    uint64_t loop_count;
    double fps;
    int frames; /* frames in a loop */
} camsim_mount;

typedef struct camsim {
    /* options */
    const char *bind;
    int port, control_port;
    camsim_clip_spec clip; /* codec is per mount */
    const char *user, *password;
    char *cache;
    /* state, touched on the main loop only unless said otherwise */
    GPtrArray *mounts; /* camsim_mount* */
    GstRTSPServer *server;
    GstRTSPMountPoints *points;
    GstRTSPAuth *auth;
    GMainLoop *loop;
    GSocketService *control;
} camsim;

/* camsim.c: mounts */
camsim_mount *camsim_mount_find(camsim *cs, const char *id);
/* a new mount for a clip of codec (id must be new); NULL and err on failure */
camsim_mount *camsim_mount_add_clip(camsim *cs, const char *id, camsim_codec codec, gc_err *err);
int camsim_mount_set_codec(camsim *cs, camsim_mount *m, camsim_codec codec, gc_err *err);
void camsim_mount_set_up(camsim *cs, camsim_mount *m, bool up);
/* closes every client connection of m and ends its sessions; returns how many */
int camsim_mount_drop(camsim *cs, camsim_mount *m);
void camsim_mount_stall(camsim *cs, camsim_mount *m, int seconds);
void camsim_mount_resume(camsim *cs, camsim_mount *m);
void camsim_mount_set_password(camsim_mount *m, const char *password);
int camsim_mount_clients(camsim *cs, camsim_mount *m);

/* camsim_control.c: the misbehaviour line protocol on --control */
int camsim_control_start(camsim *cs, gc_err *err);
void camsim_control_stop(camsim *cs);

#endif
