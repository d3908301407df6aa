#!/usr/bin/env python3
"""Real video files through camsim and the daemon (issue 15: "try the H.264
and H.265 files in ../shared/realdata/video through camsim and report what
happened"). A trial tool, not a test: it reads the files where they are.

For each .264/.h264/.h265/.265/.mp4/.mkv under DIR (recursively), camsim
serves the file alone at /file1, and:

  file:    ffmpeg decodes the file itself (its own errors: the conformance
           streams with lost frames have some, and camsim cannot mend them);
  ffmpeg:  the baseline, ffmpeg reading camsim's RTSP URL straight, SECS s of
           stream decoded: frames, and its distinct error lines;
  gridcc:  one `gridcc serve` on a seeded temporary database; the camera is
           added with POST /api/cameras and GET /api/cameras/{id} polled
           until it settles (playing with a frame rate, or failed; a
           deadline otherwise): state, reason, codec, size, fps, and the
           states it went through;
  live:    /video/{id} (websocket): the init, then FRAGS media fragments,
           written out and decoded by ffprobe (frames decoded against the
           samples the fragments hold, errors), and whether the first
           fragment starts on a keyframe;
  snap:    GET /api/cameras/{id}/snapshot.jpg: a JPEG of the camera's size?

One row per file is printed as it is done, and a Markdown table at the end.

  python3 bench/try_video_files.py DIR [--only SUBSTR] [--json OUT]
  env: SECS (4), FRAGS (20), SETTLE (30 s), GRIDCC_BIN, CAMSIM_BIN
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GRIDCC_BIN", os.path.join(ROOT, "build/gridcc"))
os.environ.setdefault("CAMSIM_BIN", os.path.join(ROOT, "build/tools/camsim"))
sys.path.insert(0, os.path.join(ROOT, "tests/integration"))
import harness  # noqa: E402
import test_video as tv  # noqa: E402  (its Camsim, Ws and box reader)

SECS = float(os.environ.get("SECS", 4))
FRAGS = int(os.environ.get("FRAGS", 20))
SETTLE = float(os.environ.get("SETTLE", 30))
EXTS = (".264", ".h264", ".h265", ".265", ".mp4", ".mkv")


def errors(stderr):
    """ffmpeg's distinct error lines, decoder addresses taken out, most
    frequent first, with their counts."""
    counts = {}
    for line in stderr.splitlines():
        line = re.sub(r" @ 0x[0-9a-f]+", "", line.strip())
        if line:
            counts[line] = counts.get(line, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def summarise_errors(errs, n=2):
    if not errs:
        return "no errors"
    total = sum(c for _, c in errs)
    shown = "; ".join(f"{msg[:70]}" + (f" x{c}" if c > 1 else "") for msg, c in errs[:n])
    return f"{total} errors ({shown})"


def ffmpeg_frames(args, timeout):
    """Runs ffmpeg decoding to null; (frames, error list, exit status)."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *args, "-map", "0:v:0",
           "-f", "null", "-", "-progress", "pipe:1"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        err = (e.stderr or b"").decode(errors="replace") + "\n(timed out)"
        rc = -1
    frames = [int(m) for m in re.findall(r"^frame=(\d+)", out, re.M)]
    return (frames[-1] if frames else 0), errors(err), rc


def probe_file(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                        "stream=codec_name,width,height,has_b_frames,r_frame_rate", "-select_streams",
                        "v:0", "-of", "json", path], capture_output=True, text=True, timeout=60)
    s = (json.loads(p.stdout or "{}").get("streams") or [{}])[0]
    return s


def samples_in(frag):
    """Samples in a media fragment (the trun sample counts)."""
    n = 0
    for typ, s, e in tv.boxes(frag):
        if typ != "moof":
            continue
        for t2, s2, e2 in tv.boxes(frag, s, e):
            if t2 != "traf":
                continue
            for t3, s3, _ in tv.boxes(frag, s2, e2):
                if t3 == "trun":
                    n += int.from_bytes(frag[s3 + 4:s3 + 8], "big")
    return n


def settle(cid):
    """Polls the camera until it plays with a frame rate, fails, or the
    deadline passes; (last body, states seen in order)."""
    seen, body = [], None
    end = time.monotonic() + SETTLE
    while time.monotonic() < end:
        body = tv.camera(cid)
        st = body.get("state") + (f"({body['reason']})" if body.get("reason") else "")
        if not seen or seen[-1] != st:
            seen.append(st)
        if body.get("state") == "playing" and (body.get("fps") or 0) > 0 and body.get("width"):
            # a moment more: a stream that ends or breaks right after its
            # first frames shows it here
            time.sleep(2)
            body = tv.camera(cid)
            st = body.get("state") + (f"({body['reason']})" if body.get("reason") else "")
            if seen[-1] != st:
                seen.append(st)
            break
        if body.get("state") == "failed":
            break
        time.sleep(0.2)
    return body, seen


def live_view(cid, work):
    """The init and FRAGS fragments from /video/{cid}; a dict of what was seen."""
    r = {"init": None, "frags": 0, "samples": 0, "key_first": None, "states": [],
         "frames": 0, "errors": [], "note": ""}
    try:
        ws = tv.Ws(f"/video/{cid}", tv.ctx["admin"])
    except Exception as e:  # noqa: BLE001  (a trial: report, go on)
        r["note"] = f"no websocket: {e}"
        return r
    ws.s.settimeout(15)
    seg, frags = None, []
    try:
        while len(frags) < FRAGS:
            op, msg = ws.recv()
            if op == 8:
                r["note"] = "closed by the server"
                break
            if op == 1:
                m = json.loads(msg)
                if m["type"] == "init":
                    r["init"] = m
                    seg, frags = None, []   # a new init starts the file over
                elif m["type"] == "state":
                    r["states"].append(f"{m.get('state')}({m.get('reason')})")
                elif m["type"] == "error":
                    r["note"] = f"error {m.get('code')}"
                    break
                continue
            if seg is None:
                seg = msg
            else:
                frags.append(msg)
    except (OSError, EOFError) as e:
        r["note"] = f"after {len(frags)} fragments: {type(e).__name__} {e}"
    finally:
        ws.close()
    r["frags"] = len(frags)
    if not frags:
        return r
    try:
        r["key_first"] = tv.first_sample_key(frags[0])
        r["samples"] = sum(samples_in(f) for f in frags)
    except (AssertionError, ValueError, IndexError) as e:
        r["note"] += f" unreadable fragment: {e}"
    path = os.path.join(work, f"{cid}.mp4")
    with open(path, "wb") as f:
        f.write(seg + b"".join(frags))
    frames, errs, rc = ffmpeg_frames(["-i", path], 60)
    r["frames"], r["errors"] = frames, errs
    return r


def snapshot(cid, work):
    end = time.monotonic() + 10
    while True:
        st, hdrs, body = tv.ctx["d"].request("GET", f"/api/cameras/{cid}/snapshot.jpg",
                                             token=tv.ctx["admin"])
        if st != 503 or time.monotonic() > end:
            break
        time.sleep(0.5)
    if st != 200:
        try:
            code = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = body[:60]
        return f"HTTP {st} {code}"
    if body[:2] != b"\xff\xd8":
        return "200, not a JPEG"
    path = os.path.join(work, f"{cid}.jpg")
    with open(path, "wb") as f:
        f.write(body)
    s = probe_file(path)
    return f"JPEG {s.get('width')}x{s.get('height')}"


def start_daemon(work):
    db = os.path.join(work, "t.db")
    if not os.path.exists(db):
        harness.run("seed", "--db", db, check=0)
        tv.ctx["admin"] = harness.run("user", "add", "ad", "--role", "admin", "--db", db,
                                      check=0)[1].strip()
    tv.ctx["d"] = harness.Daemon(db, log_dir=work)


def camera_log(cid):
    """The daemon's warnings and errors about this camera (ids are unique)."""
    lines = [ln for ln in tv.ctx["d"].logs().splitlines()
             if f"id={cid} " in ln and (ln.startswith("WARN") or ln.startswith("ERROR"))]
    return [re.sub(r"url=\S+", "", ln)[:200] for ln in lines[-3:]]


def try_file(path, k, work):
    row = {"file": os.path.relpath(path, ARGS.dir), "bytes": os.path.getsize(path)}
    s = probe_file(path)
    row["probe"] = s
    row["codec"] = s.get("codec_name", "?")
    row["size"] = f"{s.get('width')}x{s.get('height')}"
    row["bframes"] = s.get("has_b_frames", 0)
    fr, errs, _ = ffmpeg_frames(["-i", path], 120)
    row["file_frames"], row["file_errors"] = fr, errs

    cdir = os.path.join(work, f"cs{k}")
    os.makedirs(cdir)
    try:
        cs = tv.Camsim(cdir, "--file", path)
    except AssertionError:
        with open(os.path.join(cdir, "camsim.log")) as f:
            row["camsim"] = "refused: " + f.read().strip().splitlines()[-1][:120]
        return row
    try:
        url = cs.url("file1")
        fr, errs, rc = ffmpeg_frames(["-rtsp_transport", "tcp", "-i", url, "-t", str(SECS)],
                                     SECS + 30)
        row["ffmpeg_frames"], row["ffmpeg_errors"], row["ffmpeg_rc"] = fr, errs, rc

        cid = f"f{k}"
        if tv.ctx["d"].proc.poll() is not None:
            row["daemon_restarted"] = True
            start_daemon(work)
        tv.add_camera(cid, url)
        body, seen = settle(cid)
        row["camera"] = {k2: body.get(k2) for k2 in
                         ("state", "reason", "codec", "width", "height", "fps", "bitrate_bps",
                          "mime")}
        row["states"] = seen
        row["live"] = live_view(cid, work)
        row["snapshot"] = snapshot(cid, work)
        row["daemon_log"] = camera_log(cid)
        st, _, _ = tv.ctx["d"].request("DELETE", f"/api/cameras/{cid}", token=tv.ctx["admin"])
        row["deleted"] = st
    except Exception as e:  # noqa: BLE001
        row["crash"] = f"{type(e).__name__}: {e}"[:300]
        if tv.ctx["d"].proc.poll() is not None:
            row["crash"] += f" (daemon exited {tv.ctx['d'].proc.returncode})"
    finally:
        cs.p.terminate()
        try:
            cs.p.wait(20)
        except subprocess.TimeoutExpired:
            cs.p.kill()
            cs.p.wait()
        row["camsim_rc"] = cs.p.returncode
    return row


def cells(r):
    """file, codec, size, what gridcc showed, live view, snapshot, ffmpeg from
    camsim, ffmpeg on the file."""
    kb = f"{r['bytes'] / 1024:.0f} KiB"
    codec = r["codec"] + (" B" if int(r.get("bframes") or 0) else "")
    file_v = f"{r['file_frames']} fr, {summarise_errors(r['file_errors'], 1)}"
    if "camsim" in r:
        return [r["file"], codec, r["size"], kb, r["camsim"], "-", "-", "-", file_v]
    if "crash" in r and "camera" not in r:
        return [r["file"], codec, r["size"], kb, "trial broke: " + r["crash"], "-", "-", "-",
                file_v]
    c = r["camera"]
    g = f"{c['state']}" + (f"/{c['reason']}" if c.get("reason") else "")
    if c.get("codec"):
        fps = c.get("fps") or 0
        g += f" {c['codec']} {c.get('width')}x{c.get('height')} {fps:.3g} fps"
    if len(r["states"]) > 1:
        g += " (" + " → ".join(r["states"]) + ")"
    lv = r.get("live") or {}
    if lv.get("frags"):
        live = (f"{lv['frags']} frags, {lv['frames']}/{lv['samples']} frames decoded"
                + ("" if lv["key_first"] else ", first not a keyframe")
                + (", " + summarise_errors(lv["errors"], 1) if lv["errors"] else ""))
    else:
        live = "nothing"
    if lv.get("note"):
        live += f" [{lv['note'].strip()}]"
    if lv.get("states"):
        live += " states " + ",".join(lv["states"])
    ff = (f"{r['ffmpeg_frames']} fr in {SECS:g} s, "
          + summarise_errors(r["ffmpeg_errors"], 2))
    return [r["file"], codec, r["size"], kb, g, live, r.get("snapshot", "-"), ff, file_v]


HEAD = ["file", "codec", "size", "bytes", "gridcc camera", f"live view ({FRAGS} fragments)",
        "snapshot", "ffmpeg from camsim", "ffmpeg on the file"]


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--only", help="files whose path contains this")
    ap.add_argument("--json", help="write every detail here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ARGS = ap.parse_args()
    # a stopped trial still stops its camsim and daemon (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(ARGS.dir) for f in fs
                   if f.lower().endswith(EXTS) and (not ARGS.only or ARGS.only in
                                                    os.path.join(d, f)))
    if not files:
        sys.exit(f"no video files under {ARGS.dir}")
    work = tempfile.mkdtemp(prefix="gridcc-realvid-")
    rows = []
    try:
        start_daemon(work)
        for k, path in enumerate(files, 1):
            t0 = time.monotonic()
            r = try_file(path, k, work)
            r["seconds"] = round(time.monotonic() - t0, 1)
            rows.append(r)
            print(" | ".join(cells(r)), flush=True)
            for ln in r.get("daemon_log") or []:
                print("    " + ln, flush=True)
    finally:
        if "d" in tv.ctx:
            tv.ctx["d"].stop()
        if ARGS.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "---|" * len(HEAD))
    for r in rows:
        print("| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()
