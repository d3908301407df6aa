#!/usr/bin/env python3
"""Streams relayed on this machine: for each N, camsim serves N looped
1080p H.264 streams of BITRATE kbit/s, and

  baseline: N `ffmpeg -rtsp_transport tcp -i rtsp://… -c copy` processes,
            each writing fragmented MP4 (what the live view sends) to /dev/null;
  gridcc:   one daemon ingesting the N cameras (registry import), with one
            /video viewer on each, reading everything;
  rtspsrc:  the same daemon with --video-ingest rtspsrc (every camera read by
            GStreamer's rtspsrc, as before src/video_rtsp.c; RTSPSRC=0 skips it).

Each side runs alone, warms up WARM s, then its CPU time (user + system,
from /proc, every thread and process) is read over SECS s. Printed per N:
CPU per stream in % of one core for both, their ratio, gridcc's share of
the machine (target: under 80 % of all cores at 100 streams) and how much
the viewers received (to show the streams were really relayed).

  python3 bench/bench_video.py [N ...]      (default 25 50 100)
  env: SECS (15), WARM (8), BITRATE (2000), RTSPSRC (1), GRIDCC_BIN, CAMSIM_BIN
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GRIDCC_BIN", os.path.join(ROOT, "build/gridcc"))
CAMSIM = os.environ.get("CAMSIM_BIN", os.path.join(ROOT, "build/tools/camsim"))
SECS = float(os.environ.get("SECS", 15))
WARM = float(os.environ.get("WARM", 8))
BITRATE = int(os.environ.get("BITRATE", 2000))
CACHE = os.path.join(ROOT, "build/camsim-cache")
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pids):
    """CPU seconds (user + system) used so far by these processes."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / TICK


def measure(pids):
    time.sleep(WARM)
    c0, t0 = cpu_s(pids), time.monotonic()
    time.sleep(SECS)
    return (cpu_s(pids) - c0) / (time.monotonic() - t0)   # cores busy


def wait_line(proc, prefix, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"exited before '{prefix}'")
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no '{prefix}' in {timeout} s")


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def camsim(n, tmp):
    port, ctl = free_port(), free_port()
    p = subprocess.Popen([CAMSIM, "--port", str(port), "--control", str(ctl), "--streams", str(n),
                          "--codec", "h264", "--width", "1920", "--height", "1080", "--fps", "25",
                          "--bitrate", str(BITRATE), "--seconds", "10", "--gop", "50", "--cache", CACHE],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "camsim.log"), "w"), text=True)
    wait_line(p, "camsim: ready")
    return p, port


def baseline(n, port, tmp):
    procs = [subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
                               "-i", f"rtsp://127.0.0.1:{port}/cam{k}", "-c", "copy", "-f", "mp4",
                               "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-y", "/dev/null"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"ffmpeg{k}.log"), "w"))
             for k in range(1, n + 1)]
    try:
        busy = measure([p.pid for p in procs])
        alive = sum(p.poll() is None for p in procs)
    finally:
        stop(procs)
    return busy, alive


def gridcc(n, port, tmp, ingest="direct"):
    db = os.path.join(tmp, f"g-{ingest}.db")
    csv = os.path.join(tmp, "cams.csv")
    with open(csv, "w") as f:
        f.write("id,name,url,lon,lat,heading,fov,range_m\n")
        for k in range(1, n + 1):
            f.write(f"cam{k},Camera {k},rtsp://127.0.0.1:{port}/cam{k},{116.32 + k * 1e-4:.6f},40.0,90,60,100\n")
    subprocess.run([BIN, "cameras", "import", csv, "--db", db], check=True, capture_output=True)
    token = subprocess.run([BIN, "user", "add", "op", "--role", "operator", "--db", db],
                           check=True, capture_output=True, text=True).stdout.strip()
    hport = free_port()
    d = subprocess.Popen([BIN, "serve", "--db", db, "--port", str(hport), "--osmand-port", str(free_port()),
                          "--video-ingest", ingest],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"gridcc-{ingest}.log"), "w"))
    base = f"http://127.0.0.1:{hport}"
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", hport), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    v = subprocess.Popen(["node", os.path.join(ROOT, "bench/video_viewers.mjs"), base, token] +
                         [f"cam{k}" for k in range(1, n + 1)], stdout=subprocess.PIPE, text=True)
    try:
        # every viewer has its init before the clock starts
        deadline = time.monotonic() + 300
        st = {}
        while time.monotonic() < deadline:
            st = json.loads(v.stdout.readline())
            if st["with_init"] == n:
                break
        if st.get("with_init") != n:
            raise RuntimeError(f"only {st.get('with_init')} of {n} viewers got an init segment")
        b0, t0_wall = st["bytes"], st["at"] / 1000
        busy = measure([d.pid])
        # the viewers' line of now, not one queued in the pipe while measuring
        end = time.time()
        while True:
            st = json.loads(v.stdout.readline())
            if st["at"] / 1000 >= end - 0.5:
                break
        mbit = (st["bytes"] - b0) * 8 / (st["at"] / 1000 - t0_wall) / 1e6
    finally:
        stop([v, d])
    return busy, mbit, st


def main():
    ns = [int(a) for a in sys.argv[1:]] or [25, 50, 100]
    for b in (BIN, CAMSIM):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench_video: {b} is not built")
    if not shutil.which("ffmpeg"):
        sys.exit("bench_video: ffmpeg is missing (scripts/setup.sh installs it)")
    print(f"streams: 1080p25 H.264 {BITRATE} kbit/s from camsim; CPU over {SECS:.0f} s after {WARM:.0f} s; "
          f"{CORES} cores; % of one core per stream")
    with_rtspsrc = os.environ.get("RTSPSRC", "1") != "0"
    print(f"{'N':>5} {'ffmpeg/stream':>14} {'gridcc/stream':>14} {'ratio':>6} {'gridcc total':>13} "
          f"{'relayed':>14} {'skips':>6}" + (f" {'rtspsrc/stream':>15} {'ratio':>6}" if with_rtspsrc else ""))
    for n in ns:
        tmp = tempfile.mkdtemp(prefix="bench-video-")
        cs, port = camsim(n, tmp)
        try:
            f_busy, alive = baseline(n, port, tmp)
            g_busy, mbit, st = gridcc(n, port, tmp)
            r_busy = gridcc(n, port, tmp, "rtspsrc")[0] if with_rtspsrc else None
        finally:
            stop([cs])
        f_ps, g_ps = 100 * f_busy / n, 100 * g_busy / n
        share = 100 * g_busy / CORES
        print(f"{n:>5} {f_ps:>13.2f}% {g_ps:>13.2f}% {g_ps / f_ps if f_ps else float('nan'):>6.2f} "
              f"{share:>12.1f}% {mbit:>9.1f} Mbit/s {st['skips']:>6}" +
              (f" {100 * r_busy / n:>14.2f}% {r_busy / f_busy if f_busy else float('nan'):>6.2f}"
               if r_busy is not None else "") +
              ("" if alive == n else f"  ({n - alive} ffmpeg exited: {tmp})"))
        sys.stdout.flush()
        if alive == n:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
