#!/usr/bin/env python3
"""What gridcc's relay would cost without rtspsrc: for N camsim streams
(as bench_video.py), CPU per stream of

  ffmpeg:  the baseline, N `ffmpeg -c copy` processes (bench_video.py's);
  gridcc:  the daemon with one /video viewer a camera (bench_video.py's);
  probe:   build/bench/rtsp_probe, the same depayloader, parser and mp4mux
           fed by GStreamer's RTSP library on one thread (rtsp_probe.c),
           no rtspsrc, no rtpbin, no viewer: a floor for that design.

  python3 bench/bench_rtsp_probe.py [N ...]      (default 100)
  env as bench_video.py (SECS, WARM, BITRATE)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_video as bv  # noqa: E402

PROBE = os.path.join(bv.ROOT, "build/bench/rtsp_probe")


def probe(n, port, tmp):
    p = subprocess.Popen([PROBE, str(port), str(n)], stdout=subprocess.PIPE,
                         stderr=open(os.path.join(tmp, "probe.log"), "w"), text=True)
    try:
        bv.wait_line(p, "ready", 300)
        last = {}

        def read():   # its latest line, whenever asked
            for line in p.stdout:
                f = line.split()
                last["in"], last["out"] = int(f[3]), int(f[1])
        threading.Thread(target=read, daemon=True).start()
        time.sleep(bv.WARM)
        in0, t0 = last.get("in", 0), time.monotonic()
        saved, bv.WARM = bv.WARM, 0
        try:
            busy = bv.measure([p.pid])
        finally:
            bv.WARM = saved
        mbit = (last.get("in", 0) - in0) * 8 / (time.monotonic() - t0) / 1e6
        threads = len(os.listdir(f"/proc/{p.pid}/task"))
    finally:
        bv.stop([p])
    return busy, threads, last.get("out", 0), mbit


def main():
    ns = [int(a) for a in sys.argv[1:]] or [100]
    if not os.access(PROBE, os.X_OK):
        sys.exit(f"bench_rtsp_probe: {PROBE} is not built")
    print(f"streams: 1080p25 H.264 {bv.BITRATE} kbit/s from camsim; CPU over {bv.SECS:.0f} s after {bv.WARM:.0f} s; "
          "% of one core per stream")
    print(f"{'N':>5} {'ffmpeg':>8} {'gridcc':>8} {'probe':>8} {'probe/ffmpeg':>13} {'probe threads':>14} {'probe read':>12}")
    for n in ns:
        tmp = tempfile.mkdtemp(prefix="bench-probe-")
        cs, port = bv.camsim(n, tmp)
        try:
            f_busy, alive = bv.baseline(n, port, tmp)
            g_busy, _, _ = bv.gridcc(n, port, tmp)
            p_busy, threads, out, mbit = probe(n, port, tmp)
        finally:
            bv.stop([cs])
        if not out:
            sys.exit(f"bench_rtsp_probe: the probe muxed nothing (logs in {tmp})")
        # a probe that fell behind would read low: it must have kept up
        if mbit < 0.9 * n * bv.BITRATE / 1000:
            sys.exit(f"bench_rtsp_probe: the probe read only {mbit:.0f} Mbit/s of {n * bv.BITRATE / 1000:.0f}")
        print(f"{n:>5} {100 * f_busy / n:>7.2f}% {100 * g_busy / n:>7.2f}% {100 * p_busy / n:>7.2f}% "
              f"{p_busy / f_busy:>13.2f} {threads:>14} {mbit:>6.0f} Mbit/s" + ("" if alive == n else f"  ({n - alive} ffmpeg exited)"))
        sys.stdout.flush()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
