/* video_rtsp: cameras read over RTSP/TCP without rtspsrc. A session is set
 * up on a worker thread with GStreamer's RTSP and SDP libraries (connect,
 * DESCRIBE, SETUP interleaved, PLAY; Basic or Digest auth), then its socket
 * joins the one reading thread, which reads every camera's socket in large
 * reads (epoll), cuts the interleaved packets and pushes each RTP packet of
 * the video channel, timed by its RTP time, into the pad the owner gave.
 * No rtpbin, no jitter buffer (TCP loses and reorders nothing), no thread
 * per camera: rtspsrc's reading and its jitter buffer's thread cost more
 * per stream than the whole of an `ffmpeg -c copy` (bench/bench_video.py). */
#ifndef GRIDCC_VIDEO_RTSP_H
#define GRIDCC_VIDEO_RTSP_H

#include <gst/gst.h>

typedef struct video_rtsp video_rtsp;
typedef struct video_rtsp_session video_rtsp_session;

typedef struct video_rtsp_cb {
    /* A worker: the camera's video stream, as RTP caps from its SDP. The
     * owner links what reads it and returns the pad to push into (a ref the
     * session keeps), or NULL to go no further (it says why itself). */
    GstPad *(*stream)(void *ud, GstCaps *caps);
    /* A worker or the reading thread: the session is over. code is a
     * GstResourceError; text names what happened (no credential in it);
     * debug is "Timeout" when a wait ran out, else "". Once per session. */
    void (*error)(void *ud, GstResourceError code, const char *text, const char *debug);
} video_rtsp_cb;

/* The reading thread and the workers start with the first session. */
video_rtsp *video_rtsp_new(void);
/* Every session must be closed first. */
void video_rtsp_free(video_rtsp *r);

/* Starts a session with rtsp://[user:password@]host[:port]/path; every wait
 * of the set-up is bounded by timeout_ms. cb is copied. */
video_rtsp_session *video_rtsp_open(video_rtsp *r, const char *url, int timeout_ms,
                                    const video_rtsp_cb *cb, void *ud);
/* Ends it: once this returns no callback runs and the pad is let go; a
 * session that was playing is sent TEARDOWN (waiting 100 ms at most). */
void video_rtsp_close(video_rtsp_session *s);

/* The stream's readers, apart for their tests and fuzzing. */
typedef void (*video_rtsp_packet_fn)(void *ud, guint8 channel, const guint8 *data, size_t len);
/* Cuts an RTSP stream over TCP: each whole interleaved packet ('$',
 * channel, 16-bit length, data) goes to fn; each whole RTSP message (its
 * header up to the blank line, then Content-Length bytes) is skipped. The
 * bytes used (the rest is the start of what comes next), or -1 when buf
 * holds something that is neither, or an RTSP message with a header or
 * body over 8 KiB. */
gssize video_rtsp_cut(const guint8 *buf, size_t len, video_rtsp_packet_fn fn, void *ud);
/* A Session header's value ("id;timeout=60"): the id (g_free), NULL when
 * it has none or one over 256 bytes; *timeout_s the timeout, 60 when none
 * or not 1..86400. */
char *video_rtsp_session_header(const char *value, gint64 *timeout_s);

#endif
