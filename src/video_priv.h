/* video_priv: what the engine's files share (video.c runs cameras and the
 * live view; video_snapshot.c decodes and writes clips from the ring). */
#ifndef GRIDCC_VIDEO_PRIV_H
#define GRIDCC_VIDEO_PRIV_H

#include <gst/gst.h>

#include "gridcc/video.h"

/* What a snapshot or clip takes from a camera's ring: refs to the access
 * units, their caps and codec. */
typedef struct video_range {
    GPtrArray *bufs; /* GstBuffer*, owned */
    GstCaps *caps;   /* owned */
    char codec[8];
    int64_t first_ms, last_ms; /* wall clock of the first and last unit */
} video_range;
void video_range_clear(video_range *r);

/* The units from the keyframe at or before from_ms up to to_ms (both wall
 * clock ms; from_ms 0: the latest keyframe alone). GC_ENOTFOUND: no such
 * camera or the time outside the ring; GC_ECONFLICT: no keyframe yet. */
int video_ring_take(video *v, const char *id, int64_t from_ms, int64_t to_ms, video_range *out,
                    gc_err *err);
/* Wall clock of the newest unit, 0 when none; -1 when there is no such camera. */
int64_t video_ring_newest(video *v, const char *id);
/* A template of pipelines/ by file name, without ".pipeline". */
const char *video_template(video *v, const char *name);
GMainContext *video_context(video *v);
/* Work in flight off the loop: video_free waits for it. */
void video_busy(video *v, int delta);

#endif
