/* video: the camera engine. One GStreamer pipeline per camera, built from the
 * templates of pipelines/, ingests its RTSP stream once whether anyone watches
 * or not; the engine keeps each camera's health (state and reason, bitrate,
 * frame rate, last keyframe), reconnects with exponential backoff and jitter,
 * splits mp4mux's output into an init segment and media fragments for the
 * live view, keeps a ring buffer of the last seconds of compressed access
 * units, and decodes snapshots and writes clips from it off the loop.
 *
 * Everything here is called on the loop whose context video_new was given,
 * and every callback arrives on it. GStreamer's streaming threads only hand
 * data over. The engine knows nothing of HTTP, SQL or the store. */
#ifndef GRIDCC_VIDEO_H
#define GRIDCC_VIDEO_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gridcc/err.h"

typedef struct video video;

typedef struct video_opts {
    const char *pipelines_dir; /* the templates; default the source tree's pipelines/ */
    int ring_s;                /* seconds of access units kept per camera; default 30 */
    size_t ring_bytes;         /* and at most this many bytes; default 32 MiB */
    int latency_ms;            /* rtspsrc's jitter buffer; default 200 */
    int fragment_ms;           /* mp4mux fragment-duration; default 100 */
    int stall_s;               /* playing, no data this long: stalled; default 5 */
    int stall_restart_s;       /* stalled (or connecting) this long: reconnect; default 20 */
    int backoff_min_ms;        /* first retry delay; default 1000 */
    int backoff_max_ms;        /* the delay doubles up to this; default 60000 */
    int stable_s;              /* playing this long resets the backoff; default 30 */
    int failed_retry_s;        /* a failed camera (unsupported codec) tries again after; 300 */
    /* "direct" (the default): cameras over TCP are read by one thread for
     * all (src/video_rtsp.c), over UDP by rtspsrc; "rtspsrc": every camera by
     * rtspsrc (pipelines/rtsp.pipeline) */
    const char *ingest;
} video_opts;

typedef struct video_events {
    /* A camera's state changed (video_state_name's names; reason "" when none). */
    void (*state)(void *ud, const char *id, const char *state, const char *reason);
} video_events;

typedef struct video_camera {
    const char *id;
    const char *url;       /* rtsp://[user:password@]host[:port]/path */
    const char *transport; /* "tcp", "udp" or NULL (either) */
} video_camera;

/* o and cb may be NULL (defaults, no events); cb is copied. NULL with err
 * when the templates cannot be read. */
video *video_new(GMainContext *ctx, const video_opts *o, const video_events *cb, void *ud,
                 gc_err *err);
/* Tears every pipeline down, waits for snapshots and clips in flight. */
void video_free(video *v);

/* Adds or replaces a camera: a changed url or transport restarts its
 * pipeline, the same config is a no-op. GC_EINVAL naming the field for a
 * url that is not rtsp:// or a transport other than tcp/udp. */
int video_camera_set(video *v, const video_camera *c, gc_err *err);
/* GC_ENOTFOUND when there is no such camera. Its viewers get state "removed". */
int video_camera_remove(video *v, const char *id);
/* {"state","reason","codec","mime","width","height","bitrate_bps","fps",
 * "last_keyframe_ms","since_ms","retry_in_ms","viewers","ring_ms","ring_bytes",
 * "transcoding","transcode_viewers","transcode_skips"};
 * caller owns it. NULL for an unknown camera. */
json_t *video_camera_health(video *v, const char *id);
/* The url with its user and password replaced by "***" (for logs); caller frees. */
char *video_url_redact(const char *url);

typedef enum {
    VIDEO_CONNECTING,
    VIDEO_PLAYING,
    VIDEO_STALLED,
    VIDEO_RETRYING,
    VIDEO_FAILED,
} video_state;
const char *video_state_name(video_state s);

/* ---- live view ----
 * A viewer is handed the camera's init segment (cached) and then its media
 * fragments, the first of them the one that holds the latest keyframe. A
 * new pipeline (reconnect, codec switch) sends a new init. */
typedef struct video_stream_info {
    const char *codec; /* "h264" or "h265" */
    const char *mime;  /* video/mp4; codecs="avc1.640028" */
    int width, height;
    bool transcoded; /* the camera's H.265 encoded again to H.264 for this viewer */
} video_stream_info;
typedef struct video_viewer_cb {
    void (*init)(void *ud, const video_stream_info *info, GBytes *init);
    void (*fragment)(void *ud, GBytes *frag, bool key);
    /* state changes; "removed" once when the camera goes (no more calls;
     * the handle stays the watcher's to video_unwatch) */
    void (*state)(void *ud, const char *state, const char *reason);
} video_viewer_cb;
typedef struct video_viewer video_viewer;
/* NULL when there is no such camera. The callbacks may run before this
 * returns (the cached init and fragments). h264: the viewer cannot decode
 * H.265, and an H.265 camera's video reaches it through the camera's one
 * transcode to H.264 (started for the first such viewer, stopped when the
 * last leaves; an H.264 camera is served as it is). */
video_viewer *video_watch(video *v, const char *id, bool h264, const video_viewer_cb *cb,
                          void *ud);
/* The viewer turns out to need H.264 (as video_watch's h264): a new init
 * follows, the transcode's. */
void video_viewer_want_h264(video_viewer *w);
void video_unwatch(video_viewer *w);

/* ---- snapshots and clips (off the loop; the callback on it) ---- */
/* jpeg NULL with err: GC_ENOTFOUND (no camera, or at outside the ring),
 * GC_ECONFLICT (no keyframe yet), GC_EIO (decoding failed). */
typedef void (*video_snapshot_cb)(void *ud, GBytes *jpeg, const gc_err *err);
/* at_ms: wall clock in ms, 0 for the latest keyframe. */
void video_snapshot(video *v, const char *id, int64_t at_ms, video_snapshot_cb cb, void *ud);
typedef void (*video_clip_cb)(void *ud, const gc_err *err);
/* An MP4 of the access units from the keyframe at or before from_ms to
 * to_ms (no transcoding); an end in the future waits for the ring to hold it.
 * A start before what the ring holds begins at its first keyframe. */
void video_clip(video *v, const char *id, int64_t from_ms, int64_t to_ms, const char *path,
                video_clip_cb cb, void *ud);

/* ---- the pure parts, for tests and fuzzing ---- */
/* Replaces each {key} of tmpl with its value quoted for gst_parse_launch
 * (a value cannot end the quoted string or add elements). GC_EINVAL naming
 * an unknown placeholder. Caller frees *out. */
int video_template_expand(const char *tmpl, const char *const *keys, const char *const *vals, int n,
                          char **out, gc_err *err);
/* The delay before retry number attempt (0-based): min doubling up to max,
 * times 1 ± 20% by u in [0,1). */
int64_t video_backoff_ms(int attempt, double u, int min_ms, int max_ms);

/* fMP4: a streaming splitter of mp4mux's output into the init segment
 * (ftyp+moov) and media fragments (moof+mdat), strict about box sizes. */
typedef struct video_fmp4 video_fmp4;
typedef void (*video_fmp4_cb)(void *ud, bool init, bool key, const uint8_t *data, size_t len);
video_fmp4 *video_fmp4_new(video_fmp4_cb cb, void *ud);
void video_fmp4_free(video_fmp4 *f);
/* Feeds bytes; calls cb for each complete init or fragment. GC_EINVAL on a
 * malformed stream (the splitter then refuses everything). */
int video_fmp4_push(video_fmp4 *f, const uint8_t *data, size_t len, gc_err *err);
/* A moof box (header included): 1 when its first sample is a sync sample,
 * 0 when not, GC_EINVAL when malformed or when its flags are only the
 * defaults of the init segment's trex (which the splitter, having read the
 * init, applies). */
int video_fmp4_moof_key(const uint8_t *moof, size_t len);
/* Where a decode may start (see video_nal.c): in one access unit of NAL
 * units each prefixed by its length in nal_len bytes (1, 2 or 4, as the
 * avcC/hvcC says), VIDEO_AU_IDR for an IDR picture (H.264) or an IRAP
 * picture (H.265), VIDEO_AU_RECOVERY for an H.264 recovery point SEI, 0
 * for neither, GC_EINVAL when the framing is broken. */
enum { VIDEO_AU_IDR = 1, VIDEO_AU_RECOVERY = 2 };
int video_au_random_access(bool h265, int nal_len, const uint8_t *data, size_t len);
/* The NAL length size of an avcC or hvcC record (caps' codec_data), or GC_EINVAL. */
int video_nal_length_size(bool h265, const uint8_t *cd, size_t len);
/* The MSE codec from an avcC or hvcC record (caps' codec_data): "avc1.640028",
 * "hvc1.1.6.L93.B0". GC_EINVAL when too short. */
int video_codec_string(const char *codec, const uint8_t *cd, size_t len, char *out, size_t outlen);

#endif
