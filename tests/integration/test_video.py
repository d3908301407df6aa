#!/usr/bin/env python3
"""The video engine end to end: camsim's RTSP cameras, the daemon's registry
and engine, the /video websocket and snapshot.jpg. States are waited for
with a deadline (GET /api/cameras/{id}), never slept for: playing, a camera
that goes down and comes back, one that is down at start and appears, wrong
credentials (unauthorized, and the password in no log line), a stall. The
live view: init then fragments whose first holds a keyframe (read with a
box reader here, and by ffprobe), two viewers on one RTSP connection, a
viewer that reads nothing skipped forward while another is served.
Snapshots decode as JPEG for H.264 and H.265."""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, TempDir, main, run  # noqa: E402

CAMSIM = os.environ.get("CAMSIM_BIN", os.path.join(os.path.dirname(os.environ.get(
    "GRIDCC_BIN", "build/gridcc")), "tools", "camsim"))
USER, PASSWORD = "admin", "Vq3-cam-secret"
ctx = {}


class Camsim:
    def __init__(self, cache, *extra):
        self.log = open(os.path.join(cache, "camsim.log"), "w+")
        self.p = subprocess.Popen(
            [CAMSIM, "--port", "0", "--control", "0", "--cache", cache, "--width", "320",
             "--height", "240", "--fps", "25", "--seconds", "2", "--gop", "25", "--user", USER,
             "--password", PASSWORD, *extra], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()
        m = re.match(r"camsim: ready port=(\d+) control=(\d+)", line)
        assert m, f"no ready line: {line!r}"
        self.port, self.control = int(m[1]), int(m[2])
        self.ctl = socket.create_connection(("127.0.0.1", self.control), timeout=120)
        self.ctl_in = self.ctl.makefile("r")

    def ok(self, line):
        self.ctl.sendall(line.encode() + b"\n")
        r = json.loads(self.ctl_in.readline())
        assert r["ok"], f"{line}: {r}"
        return r

    def clients(self, mount):
        return next(m for m in self.ok("stats")["mounts"] if m["id"] == mount)["clients"]

    def url(self, mount, password=PASSWORD):
        return f"rtsp://{USER}:{password}@127.0.0.1:{self.port}/{mount}"


def wait_for(pred, what, timeout=60):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def camera(id):
    st, body = ctx["d"].json("GET", f"/api/cameras/{id}", token=ctx["admin"])
    assert st == 200, (st, body)
    return body


def wait_state(id, state, reason=None, timeout=60):
    def check():
        c = camera(id)
        ok = c["state"] == state and (reason is None or c["reason"] == reason)
        return c if ok else None
    try:
        return wait_for(check, f"{id} {state} {reason or ''}", timeout)
    except AssertionError:
        raise AssertionError(f"{id}: wanted {state}/{reason}, have {camera(id)}\n"
                             + ctx["d"].logs()[-3000:])


def add_camera(id, url):
    st, body = ctx["d"].json("POST", "/api/cameras", {
        "id": id, "name": id, "url": url, "lon": 116.3262, "lat": 40.0032, "heading": 90,
        "fov": 60, "range_m": 100}, token=ctx["admin"])
    assert st == 201, (st, body)


class Ws:
    """A websocket client (RFC 6455), enough for /video: masked text frames
    out, whole text and binary messages in."""

    def __init__(self, path, token=None, rcvbuf=None, query=""):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(60)
        self.s.connect(("127.0.0.1", ctx["d"].port))
        q = (f"?access_token={token}" if token else "?") + query
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(f"GET {path}{q} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """(opcode, payload) of the next whole message; 8 for a close."""
        data, op0 = b"", None
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0f
            if op == 9:   # ping: pong, or the server hangs up
                self._send(10, payload)
                continue
            if op == 10:
                continue
            if op0 is None:
                op0 = op
            data += payload
            if b0 & 0x80:
                return op0, data

    def _send(self, op, p):
        mask = os.urandom(4)
        hdr = bytes([0x80 | op, 0x80 | len(p)]) + mask   # short messages only
        self.s.sendall(hdr + bytes(c ^ mask[i % 4] for i, c in enumerate(p)))

    def send_text(self, text):
        self._send(1, text.encode())

    def close(self):
        self.s.close()


# ---- fMP4, read independently of the engine's reader ----

def boxes(b, off=0, end=None):
    end = len(b) if end is None else end
    while off < end:
        size, typ = struct.unpack(">I4s", b[off:off + 8])
        assert size >= 8 and off + size <= end, (typ, size)
        yield typ.decode(), off + 8, off + size
        off += size


def first_sample_key(frag):
    """Whether a fragment (moof+mdat) starts with a sync sample."""
    (t, s, e), = [x for x in boxes(frag) if x[0] == "moof"]
    traf = next(x for x in boxes(frag, s, e) if x[0] == "traf")
    flags = None
    for typ, bs, be in boxes(frag, traf[1], traf[2]):
        vf = struct.unpack(">I", frag[bs:bs + 4])[0] & 0xffffff
        if typ == "tfhd":
            o = bs + 8 + (8 if vf & 1 else 0) + (4 if vf & 2 else 0) + (4 if vf & 8 else 0) \
                + (4 if vf & 0x10 else 0)
            if vf & 0x20:
                flags = struct.unpack(">I", frag[o:o + 4])[0]
        if typ == "trun":
            o = bs + 8 + (4 if vf & 1 else 0)
            if vf & 4:
                flags = struct.unpack(">I", frag[o:o + 4])[0]
            elif vf & 0x400:
                o += (4 if vf & 0x100 else 0) + (4 if vf & 0x200 else 0)
                flags = struct.unpack(">I", frag[o:o + 4])[0]
    assert flags is not None, "no sample flags"
    return not flags & 0x10000


def watch(ws, fragments):
    """init text, init segment, then `fragments` media fragments."""
    op, msg = ws.recv()
    while op == 1 and json.loads(msg)["type"] == "state":
        op, msg = ws.recv()
    assert op == 1, (op, msg[:100])
    init = json.loads(msg)
    assert init["type"] == "init", init
    op, seg = ws.recv()
    assert op == 2 and [b[0] for b in boxes(seg)] == ["ftyp", "moov"], seg[:64]
    frags = []
    while len(frags) < fragments:
        op, msg = ws.recv()
        if op == 2:
            frags.append(msg)
    return init, seg, frags


def record(id, fragments, path, query=""):
    """/video/{id} watched for `fragments` fragments by an operator, the
    init segment and the fragments written to path as one MP4: the init
    text and the fragments."""
    ws = Ws(f"/video/{id}", ctx["op"], query=query)
    try:
        init, seg, frags = watch(ws, fragments)
    finally:
        ws.close()
    with open(path, "wb") as f:
        f.write(seg + b"".join(frags))
    return init, frags


# ---- the tests ----

def setup():
    ctx["tmp"] = TempDir()
    d = ctx["dir"] = ctx["tmp"].__enter__()
    db = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["admin"] = run("user", "add", "ad", "--role", "admin", "--db", db, check=0)[1].strip()
    ctx["op"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["worker"] = run("user", "add", "wk", "--role", "worker", "--db", db, check=0)[1].strip()
    ctx["cs"] = Camsim(d, "--streams", "3", "--codec", "mix")
    ctx["d"] = Daemon(db)


def test_h264_and_h265_play_with_health():
    add_camera("c1", ctx["cs"].url("cam1"))
    add_camera("c2", ctx["cs"].url("cam2"))
    c1 = wait_state("c1", "playing")
    wait_for(lambda: camera("c1")["fps"] > 0, "a frame rate")
    c1 = camera("c1")
    assert c1["codec"] == "h264" and c1["width"] == 320 and c1["height"] == 240, c1
    assert c1["mime"].startswith('video/mp4; codecs="avc1.'), c1
    c2 = wait_state("c2", "playing")
    assert c2["codec"] == "h265" and c2["mime"].startswith('video/mp4; codecs="hvc1.'), c2
    # the stored state went through the change log: the list shows it too
    def listed():
        st, body = ctx["d"].json("GET", "/api/cameras", token=ctx["op"])
        return {c["id"]: c["state"] for c in body["cameras"]} == {"c1": "playing", "c2": "playing"}
    wait_for(listed, "both playing in the list")


def test_live_view_starts_on_a_keyframe_and_ffprobe_reads_it():
    path = os.path.join(ctx["dir"], "live.mp4")
    init, frags = record("c1", 12, path)
    assert init["codec"] == "h264" and init["width"] == 320, init
    assert init["mime"] == camera("c1")["mime"], init
    assert first_sample_key(frags[0]), "the first fragment does not start on a keyframe"
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                       capture_output=True, text=True, timeout=60)
    s = json.loads(p.stdout)["streams"][0]
    assert p.returncode == 0 and s["codec_name"] == "h264" and s["width"] == 320, (s, p.stderr)
    assert int(s["nb_read_frames"]) >= 12, s


def test_live_view_goes_on_past_the_announced_range():
    """camsim announces its clip's length (npt=0-2): the segment's stop made
    mp4mux drop everything after it, and the live view froze after two
    seconds while the ring went on filling. Six seconds of fragments, read
    with a short timeout, show it goes on."""
    ws = Ws("/video/c1", ctx["op"])
    ws.s.settimeout(10)
    try:
        _, _, frags = watch(ws, 1)
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < 6:
            op, _ = ws.recv()
            n += op == 2
        # 100 ms fragments: about 60; a frozen view gives none (the timeout)
        assert n >= 30, n
    finally:
        ws.close()


def ffprobe_stream(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["streams"][0]


def test_h265_transcoded_for_a_viewer_that_asks_and_stopped_when_it_leaves():
    """Chromium on Linux cannot decode HEVC: a viewer that says so
    (?codec=h264, or the message after an H.265 init) gets the H.265
    camera's one transcode, H.264 that ffprobe reads, starting on a
    keyframe; two such viewers share it, an H.265-capable viewer beside
    them still gets H.265, and the transcode stops when the last of them
    leaves. The RTSP connection stays one throughout."""
    assert camera("c2")["codec"] == "h265" and not camera("c2")["transcoding"]
    a = Ws("/video/c2", ctx["op"], query="&codec=h264")
    b = Ws("/video/c2", ctx["op"])
    plain = Ws("/video/c2", ctx["op"])
    try:
        init, seg, frags = watch(a, 15)
        assert init["codec"] == "h264" and init["transcoded"] is True, init
        assert init["mime"].startswith('video/mp4; codecs="avc1.'), init
        assert init["width"] == 320 and init["height"] == 240, init
        assert first_sample_key(frags[0]), "the transcode's first fragment is not a keyframe"
        path = os.path.join(ctx["dir"], "transcoded.mp4")
        with open(path, "wb") as f:
            f.write(seg + b"".join(frags))
        s = ffprobe_stream(path)
        assert s["codec_name"] == "h264" and s["width"] == 320, s
        assert int(s["nb_read_frames"]) >= 15, s
        # b sees H.265 first, then asks, as the page does
        first = watch(b, 1)[0]
        assert first["codec"] == "h265" and first["transcoded"] is False, first
        b.send_text(json.dumps({"type": "codec", "want": "h264"}))
        while True:
            op, msg = b.recv()
            if op == 1 and json.loads(msg)["type"] == "init":
                assert json.loads(msg)["codec"] == "h264", msg
                break
        assert watch(plain, 1)[0]["codec"] == "h265"
        c = camera("c2")
        assert c["transcoding"] and c["transcode_viewers"] == 2 and c["viewers"] == 3, c
        assert ctx["cs"].clients("cam2") == 1, "the transcode opened its own RTSP connection"
    finally:
        a.close()
        b.close()
    wait_for(lambda: camera("c2")["transcode_viewers"] == 0, "the transcode's viewers gone")
    wait_for(lambda: not camera("c2")["transcoding"], "the transcode stopped")
    plain.close()
    assert "transcode stopped id=c2" in ctx["d"].logs()


class BFrameCamera:
    """A camsim serving, alone, a clip of `codec` with B-frames (3 between
    references, placed without adapting: the same every GOP), added to the
    daemon as camera `id`; deleted and stopped on leaving."""

    ENC = {"h264": ["x264enc", "bframes=3", "b-adapt=false", "key-int-max=25", "bitrate=1500",
                    "!", "h264parse", "!", "video/x-h264,stream-format=byte-stream"],
           "h265": ["x265enc", "option-string=bframes=3:keyint=25:b-adapt=0", "!", "h265parse",
                    "!", "video/x-h265,stream-format=byte-stream"]}

    def __init__(self, id, codec, size=(320, 240)):
        self.id = self.dir = None
        d = os.path.join(ctx["dir"], f"bframes-{id}")
        os.makedirs(d)
        clip = os.path.join(d, f"bframes.{codec}")
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=100", "pattern=ball", "!",
                        f"video/x-raw,width={size[0]},height={size[1]},framerate=25/1,format=I420",
                        "!", *self.ENC[codec], "!", "filesink", f"location={clip}"],
                       check=True, timeout=120)
        self.cs = Camsim(d, "--streams", "0", "--file", clip)
        try:
            add_camera(id, self.cs.url("file1"))
        except BaseException:
            self.cs.p.kill()
            self.cs.p.wait(30)
            raise
        self.id, self.dir = id, d

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # the cases' tests after these count the cameras that see them
        st, _ = ctx["d"].json("DELETE", f"/api/cameras/{self.id}", token=ctx["admin"])
        assert st == 204, st
        self.cs.p.terminate()
        try:
            self.cs.p.wait(30)
        except subprocess.TimeoutExpired:
            # camsim (the test's camera, not gridcc) did not end on SIGTERM
            # now and then (a race in its shutdown, mended in camsim.c);
            # should another come, it is killed rather than hanging the file
            print(f"     camsim with the B-frame clip of {self.id} did not stop in 30 s: killed")
            self.cs.p.kill()
            self.cs.p.wait(30)


def test_h265_with_b_frames_is_transcoded_on():
    """An H.265 camera that sends B-frames (most do): its decoder gives
    pictures without a time, which the encoder passed on and mp4mux refused
    ("Buffer has no PTS": the transcode failed within 0.1 s and the viewer
    saw nothing more). The transcode's probe drops them: its fragments go
    on past the clip's loop (100 frames) and ffprobe reads them, the
    transcode never failing."""
    with BFrameCamera("cb", "h265") as cam:
        c = wait_state("cb", "playing")
        assert c["codec"] == "h265", c
        path = os.path.join(cam.dir, "transcoded.mp4")
        init, _ = record("cb", 150, path, query="&codec=h264")   # each holds a frame or more
        assert init["codec"] == "h264" and init["transcoded"] is True, init
        s = ffprobe_stream(path)
        assert s["codec_name"] == "h264" and int(s["nb_read_frames"]) > 100, s
        assert "transcode failed id=cb" not in ctx["d"].logs(), ctx["d"].logs()[-2000:]


def test_h264_with_b_frames_loses_no_frame():
    """An H.264 camera with B-frames: their RTP times run backwards, which
    rtpjitterbuffer's drop-on-latency read as a queue longer than the
    latency (the span from its first packet to its last wraps round), so it
    threw packets away; the frames after them referred to pictures never
    received, and Chromium refused the stream ("Failed to send video packet
    for decoding": issue 15's again.mkv, played 0 frames). Every frame now
    arrives: as many samples as 25 fps gives over their span, and ffmpeg
    decodes them all without an error."""
    with BFrameCamera("cb4", "h264", (640, 480)) as cam:
        c = wait_state("cb4", "playing")
        assert c["codec"] == "h264", c
        path = os.path.join(cam.dir, "live.mp4")
        init, _ = record("cb4", 100, path)
        assert init["codec"] == "h264" and init["transcoded"] is False, init
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=dts_time", "-of", "csv=p=0",
                            path], capture_output=True, text=True, timeout=60)
        dts = [float(x) for x in p.stdout.split()]
        span = dts[-1] - dts[0]
        assert span > 2 and len(dts) >= round(span * 25) + 1 - 2, \
            f"{len(dts)} samples over {span:.2f} s: frames lost (25 fps gives {round(span * 25) + 1})"
        # the decoder's own errors (mmco: unref short failure, when frames
        # were lost), and every sample a frame
        p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=nb_read_frames", "-of", "csv=p=0", path],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr[-2000:]
        assert int(p.stdout.strip().rstrip(",")) == len(dts), (p.stdout, len(dts))


def test_udp_transport_plays_and_a_bad_one_is_refused():
    """RTSP over UDP when the registry says so (rtspsrc is then given
    protocols=udp alone: no silent fall back to TCP), back to TCP on a PUT."""
    body = {"id": "cu", "name": "udp", "url": ctx["cs"].url("cam1"), "lon": 116.3262,
            "lat": 40.0032, "heading": 90, "fov": 60, "range_m": 100, "transport": "udp"}
    st, got = ctx["d"].json("POST", "/api/cameras", body, token=ctx["admin"])
    assert st == 201 and got["transport"] == "udp", (st, got)
    wait_state("cu", "playing")
    assert "camera set id=cu url=rtsp://***@" in ctx["d"].logs()
    assert re.search(r"camera set id=cu \S+ transport=udp", ctx["d"].logs())
    st, got = ctx["d"].json("PUT", "/api/cameras/cu", dict(body, transport="tcp"), token=ctx["admin"])
    assert st == 200 and got["transport"] == "tcp", (st, got)
    wait_for(lambda: re.search(r"camera set id=cu \S+ transport=tcp", ctx["d"].logs()), "restarted over TCP")
    wait_state("cu", "playing")
    st, err = ctx["d"].json("PUT", "/api/cameras/cu", dict(body, transport="sctp"), token=ctx["admin"])
    assert st == 400 and err["error"]["field"] == "transport", (st, err)
    assert camera("cu")["transport"] == "tcp"
    st, _ = ctx["d"].json("DELETE", "/api/cameras/cu", token=ctx["admin"])
    assert st == 204
    # its RTSP session on cam1 ends too (the next tests count cam1's clients)
    wait_for(lambda: ctx["cs"].clients("cam1") == 1, "the deleted camera's session closed")


def test_codec_asked_badly_is_refused():
    ws = Ws("/video/c2", ctx["op"], query="&codec=vp9")
    try:
        op, msg = ws.recv()
        err = json.loads(msg)
        assert op == 1 and err["type"] == "error" and err["field"] == "codec", err
        assert ws.recv()[0] == 8
    finally:
        ws.close()
    ws = Ws("/video/c1", ctx["op"])
    try:
        watch(ws, 1)
        ws.send_text(json.dumps({"type": "codec", "want": "vp9"}))
        while True:
            op, msg = ws.recv()
            if op == 1 and json.loads(msg)["type"] == "error":
                assert json.loads(msg)["field"] == "want", msg
                break
    finally:
        ws.close()


def test_two_viewers_share_one_pipeline():
    a, b = Ws("/video/c1", ctx["op"]), Ws("/video/c1", ctx["op"])
    try:
        fa, fb = watch(a, 2)[2], watch(b, 2)[2]
        assert first_sample_key(fa[0]) and first_sample_key(fb[0])
        assert ctx["cs"].clients("cam1") == 1, "a viewer opened its own RTSP connection"
        assert camera("c1")["viewers"] == 2
    finally:
        a.close()
        b.close()


def test_viewers_share_one_pipeline_and_a_stuck_one_skips():
    cs = ctx["cs"]
    assert cs.clients("cam1") == 1
    a = Ws("/video/c1", ctx["op"])
    stuck = Ws("/video/c1", ctx["op"], rcvbuf=4096)
    try:
        watch(a, 2)
        assert cs.clients("cam1") == 1, "a viewer opened its own RTSP connection"
        # the stuck viewer reads nothing: the daemon skips it forward, and
        # the other one keeps getting fragments meanwhile
        got = 0
        end = time.monotonic() + 45
        while "viewer behind, skipping" not in ctx["d"].logs():
            assert time.monotonic() < end, "the stuck viewer was never skipped"
            op, _ = a.recv()
            got += op == 2
        assert got > 10, got
        more = 0
        while more < 5:   # and still does
            op, _ = a.recv()
            more += op == 2
        # when it reads at last: a skip message, then a keyframe fragment
        skip = None
        while True:
            op, msg = stuck.recv()
            if op == 1 and json.loads(msg)["type"] == "skip":
                skip = json.loads(msg)
                break
        assert skip["dropped"] > 0, skip
        op, frag = stuck.recv()
        assert op == 2 and first_sample_key(frag), "no keyframe after the skip"
    finally:
        a.close()
        stuck.close()


def jpeg_size(b):
    """(width, height) from a JPEG's SOF, checking SOI and EOI."""
    assert b[:2] == b"\xff\xd8" and b[-2:] == b"\xff\xd9", (b[:4], b[-4:])
    i = 2
    while i < len(b):
        assert b[i] == 0xff, i
        marker, n = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xc0, 0xc1, 0xc2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return w, h
        i += 2 + n
    raise AssertionError("no SOF")


def test_snapshots_decode_for_h264_and_h265():
    for id in ("c1", "c2"):
        st, hdrs, body = ctx["d"].request("GET", f"/api/cameras/{id}/snapshot.jpg",
                                          token=ctx["op"])
        assert st == 200 and hdrs["content-type"] == "image/jpeg", (st, body[:200])
        assert jpeg_size(body) == (320, 240)
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                            "-of", "csv=p=0", "-"], input=body, capture_output=True, timeout=30)
        assert p.returncode == 0 and p.stdout.strip() == b"mjpeg", p
    at = int(time.time() * 1000) - 1500   # inside a GOP, a second and a half ago
    st, hdrs, body = ctx["d"].request("GET", f"/api/cameras/c1/snapshot.jpg?at={at}",
                                      token=ctx["op"])
    assert st == 200 and jpeg_size(body) == (320, 240), (st, body[:200])
    st, body = ctx["d"].json("GET", "/api/cameras/c1/snapshot.jpg?at=2001-01-01T00:00:00Z",
                             token=ctx["op"])
    assert st == 404 and body["error"]["field"] == "at", body
    st, body = ctx["d"].json("GET", "/api/cameras/c1/snapshot.jpg?at=yesterday",
                             token=ctx["op"])
    assert st == 400 and body["error"]["field"] == "at", body
    st, body = ctx["d"].json("GET", "/api/cameras/nope/snapshot.jpg", token=ctx["op"])
    assert st == 404, body


def test_case_seen_by_two_cameras_gets_their_snapshots_and_clips():
    """c1 (H.264) and c2 (H.265) stand at one spot looking east 100 m: a
    case 50 m east of them is in both sectors, and gets a snapshot at its
    time and a clip around it from each, which ffprobe reads."""
    d = ctx["d"]
    st, f = d.json("POST", "/api/incidents", {"category": "E01.02", "description": "占道堆物",
                                              "lon": 116.3262 + 50 / 85300, "lat": 40.0032},
                   token=ctx["op"])
    assert st == 201, f
    assert sorted(c["id"] for c in f["properties"]["cameras"]) == ["c1", "c2"], f["properties"]
    no = f["properties"]["case_no"]

    def done():
        cams = d.json("GET", f"/api/incidents/{no}", token=ctx["op"])[1]["properties"]["cameras"]
        return cams if all(c["media_state"] != "pending" for c in cams) else None
    cams = wait_for(done, "the footage of both cameras", timeout=90)
    # (the engine's and the media module's lines say why a clip was not made)
    assert all(c["media_state"] == "done" for c in cams), \
        (cams, [ln for ln in d.logs().splitlines() if " media:" in ln or "clip" in ln][-12:])
    for c in cams:
        st, hdrs, body = d.request("GET", c["snapshot"], token=ctx["op"])
        assert st == 200 and hdrs["content-type"] == "image/jpeg", (st, body[:200])
        assert jpeg_size(body) == (320, 240)
        st, hdrs, body = d.request("GET", c["clip"], token=ctx["op"])
        assert st == 200 and hdrs["content-type"] == "video/mp4", (st, body[:200])
        clip = os.path.join(ctx["dir"], f"{c['id']}.mp4")
        with open(clip, "wb") as out:
            out.write(body)
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration",
                            "-of", "json", clip], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        info = json.loads(p.stdout)
        assert info["streams"][0]["codec_name"] == ("h264" if c["id"] == "c1" else "hevc"), info
        # 10 s before (as much as the ring held) to 10 s after
        assert 10 <= float(info["format"]["duration"]) <= 22, info
    # a worker may not see the footage of a case that is not theirs
    st, _, _ = d.request("GET", cams[0]["clip"], token=ctx["worker"])
    assert st == 403, st


def test_roles_and_tokens():
    st, _, _ = ctx["d"].request("GET", "/api/cameras/c1/snapshot.jpg", token=ctx["worker"])
    assert st == 403
    for tok, code in ((None, "unauthorized"), ("gcc_wrong", "unauthorized"),
                      (ctx["worker"], "forbidden")):
        ws = Ws("/video/c1", tok)
        op, msg = ws.recv()
        assert op == 1 and json.loads(msg)["code"] == code, msg
        op, msg = ws.recv()
        assert op == 8, (op, msg)
        ws.close()
    ws = Ws("/video/nope", ctx["op"])
    assert json.loads(ws.recv()[1])["code"] == "not_found"
    ws.close()


def test_down_and_back_is_playing_again():
    cs = ctx["cs"]
    ws = Ws("/video/c1", ctx["op"])
    try:
        watch(ws, 1)
        cs.ok("down cam1")
        wait_state("c1", "retrying")
        states = []
        while True:   # the viewer is told, and gets a new init when it is back
            op, msg = ws.recv()
            if op == 1:
                m = json.loads(msg)
                states.append(m.get("state") or m["type"])
                if m["type"] == "init":
                    break
                if m.get("state") == "retrying":
                    cs.ok("up cam1")
        assert "retrying" in states and states[-1] == "init", states
        wait_state("c1", "playing")
        op, seg = ws.recv()
        assert op == 2 and seg[4:8] == b"ftyp"
    finally:
        ws.close()


def test_down_at_start_comes_up_when_it_appears():
    add_camera("c9", ctx["cs"].url("cam9"))
    wait_state("c9", "retrying", "not_found")
    ctx["cs"].ok("add cam9 h264")
    wait_state("c9", "playing")


def test_wrong_password_is_unauthorized_and_never_logged():
    bad = "Wr0ng-pass-" + "x7q"
    add_camera("c3", ctx["cs"].url("cam3", password=bad))
    wait_state("c3", "retrying", "unauthorized")
    logs = ctx["d"].logs()
    assert "camera state id=c3 state=retrying reason=unauthorized" in logs
    assert bad not in logs and PASSWORD not in logs, "a password in the daemon's log"
    # fixed by the admin: the engine restarts it with the new URL
    st, body = ctx["d"].json("PUT", "/api/cameras/c3", {
        "name": "c3", "url": ctx["cs"].url("cam3"), "lon": 116.3262, "lat": 40.0032,
        "heading": 90, "fov": 60, "range_m": 100}, token=ctx["admin"])
    assert st == 200, body
    wait_state("c3", "playing")


def test_stall_is_stalled_then_playing():
    ctx["cs"].ok("stall cam2 0")
    wait_state("c2", "stalled", "timeout")
    ctx["cs"].ok("resume cam2")
    wait_state("c2", "playing")


def test_delete_tells_the_viewer():
    ws = Ws("/video/c9", ctx["op"])
    try:
        watch(ws, 1)
        st, _, _ = ctx["d"].request("DELETE", "/api/cameras/c9", token=ctx["admin"])
        assert st == 204
        while True:
            op, msg = ws.recv()
            if op == 1 and json.loads(msg).get("state") == "removed":
                break
        assert ws.recv()[0] == 8
    finally:
        ws.close()
    wait_for(lambda: ctx["cs"].clients("cam9") == 0, "the RTSP connection closed")


class HostileCamera:
    """An RTSP server that misbehaves as mode says, for the RTSP/TCP reader
    (src/video_rtsp.c), on a thread: garbage after PLAY, an SDP with no
    video, an interleaved channel that cannot be, an RTSP header without
    end on the data stream, silence, a reply trickled a byte at a time,
    valid framing around RTP that is not H.264 sent on and on, or tiny
    packets as fast as the socket takes them."""
    SDP = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n"
           "m={m} 0 RTP/AVP 96\r\na=rtpmap:96 {enc}/90000\r\na=control:stream=0\r\n")

    def __init__(self, mode):
        self.mode, self.stop = mode, threading.Event()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.ls.settimeout(0.2)
        self.url = f"rtsp://127.0.0.1:{self.ls.getsockname()[1]}/x"
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            threading.Thread(target=self.talk, args=(c,), daemon=True).start()

    def reply(self, c, cseq, extra="", body=""):
        c.sendall((f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
                   f"Content-Length: {len(body)}\r\n\r\n{body}").encode())

    def talk(self, c):
        c.settimeout(1)
        buf = b""
        try:
            while not self.stop.is_set():
                try:
                    got = c.recv(4096)
                except socket.timeout:
                    continue
                if not got:
                    return
                buf += got
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    method = head.split(b" ", 1)[0].decode()
                    cseq = re.search(rb"(?i)cseq: *(\d+)", head)[1].decode()
                    if self.mode == "silent":
                        continue
                    if self.mode == "trickle" and method == "DESCRIBE":
                        # a reply begun and never ended: a byte every 2 s
                        c.sendall(b"RTSP/1.0 200 OK\r\nX-Slow: ")
                        while not self.stop.wait(2):
                            c.sendall(b"a")
                        return
                    if method == "DESCRIBE":
                        sdp = self.SDP.format(m="audio" if self.mode == "no_video" else "video",
                                              enc="H264")
                        self.reply(c, cseq, f"Content-Base: {self.url}/\r\n"
                                   "Content-Type: application/sdp\r\n", sdp)
                    elif method == "SETUP":
                        ch = "300-301" if self.mode == "bad_channel" else "0-1"
                        self.reply(c, cseq, f"Transport: RTP/AVP/TCP;unicast;interleaved={ch}\r\n"
                                   "Session: hostile1;timeout=60\r\n")
                    elif method == "PLAY":
                        self.reply(c, cseq, "Session: hostile1\r\n")
                        self.after_play(c)
                    else:
                        self.reply(c, cseq)
        except OSError:
            pass
        finally:
            c.close()

    def after_play(self, c):
        if self.mode == "garbage":
            c.sendall(bytes(range(128, 256)) * 8)
        elif self.mode == "endless_header":
            c.sendall(b"RTSP/1.0 200 OK\r\nX-Pad: " + b"a" * 20000)
        elif self.mode == "flood":
            # 16-byte RTP packets as fast as the socket takes them
            rtp = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 1, 2, 3])
            chunk = (b"$\0\0\x10" + rtp) * 4096
            while not self.stop.is_set():
                c.sendall(chunk)
        elif self.mode == "bad_rtp":
            seq = 0
            while not self.stop.is_set():
                rtp = bytes([0x80, 96, seq >> 8 & 255, seq & 255]) + (seq * 3600).to_bytes(4, "big") + \
                    b"\0\0\0\1" + bytes([0x7f]) + os.urandom(1200)
                c.sendall(b"$\0" + len(rtp).to_bytes(2, "big") + rtp)
                seq = (seq + 1) & 0xffff
                time.sleep(0.005)

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.ls.close()


def test_hostile_cameras_are_refused_and_the_others_play_on():
    """Each misbehaving camera ends in retrying with the reason named (or,
    sending what is not video, never plays), while a good camera read by
    the same thread keeps playing; the daemon stays up (the ASan run)."""
    def frames():
        return camera("c1")["fps"]
    cams = {m: HostileCamera(m) for m in
            ("garbage", "no_video", "bad_channel", "endless_header", "silent", "bad_rtp",
             "trickle", "flood")}
    try:
        for m, h in cams.items():
            add_camera(f"h_{m}", h.url)
        wait_state("h_garbage", "retrying", "disconnected")
        wait_state("h_endless_header", "retrying", "disconnected")
        wait_state("h_no_video", "retrying", "not_found")
        wait_state("h_bad_channel", "retrying", "refused")
        wait_state("h_silent", "retrying", "timeout")   # every wait of the set-up is bounded
        # and so is the whole set-up, however slowly a reply comes
        wait_state("h_trickle", "retrying", "timeout")
        # 200 packets a second of framed RTP that is no H.264 picture, and
        # a flood of tiny packets: neither plays, and the reader's thread
        # still serves camsim's c1
        assert camera("h_bad_rtp")["state"] == "connecting", camera("h_bad_rtp")
        assert camera("h_flood")["state"] != "playing", camera("h_flood")
        before = camera("c1")
        assert before["state"] == "playing", before
        wait_for(lambda: camera("c1")["last_keyframe_ms"] > before["last_keyframe_ms"] and frames() > 10,
                 "c1 plays on beside the hostile cameras")
        for m in cams:
            st, _, _ = ctx["d"].request("DELETE", f"/api/cameras/h_{m}", token=ctx["admin"])
            assert st == 204
    finally:
        for h in cams.values():
            h.close()


def teardown():
    if os.environ.get("VIDEO_LOG"):
        print("\n".join(l for l in ctx["d"].logs().splitlines() if " video:" in l or " media:" in l))
    rc = ctx["d"].stop()
    assert rc == 0, ctx["d"].logs()[-3000:]
    ctx["cs"].p.terminate()
    ctx["cs"].p.wait(30)


if __name__ == "__main__":
    try:
        setup()
        main([test_h264_and_h265_play_with_health,
              test_live_view_starts_on_a_keyframe_and_ffprobe_reads_it,
              test_live_view_goes_on_past_the_announced_range,
              test_h265_transcoded_for_a_viewer_that_asks_and_stopped_when_it_leaves,
              test_h265_with_b_frames_is_transcoded_on,
              test_h264_with_b_frames_loses_no_frame,
              test_codec_asked_badly_is_refused,
              test_udp_transport_plays_and_a_bad_one_is_refused,
              test_two_viewers_share_one_pipeline, test_viewers_share_one_pipeline_and_a_stuck_one_skips,
              test_snapshots_decode_for_h264_and_h265,
              test_case_seen_by_two_cameras_gets_their_snapshots_and_clips, test_roles_and_tokens,
              test_down_and_back_is_playing_again, test_down_at_start_comes_up_when_it_appears,
              test_wrong_password_is_unauthorized_and_never_logged,
              test_hostile_cameras_are_refused_and_the_others_play_on,
              test_stall_is_stalled_then_playing, test_delete_tells_the_viewer, teardown])
    finally:
        if "cs" in ctx and ctx["cs"].p.poll() is None:
            ctx["cs"].p.kill()
        if "d" in ctx and ctx["d"].proc.poll() is None:
            ctx["d"].proc.kill()
        shutil.rmtree(ctx["dir"], ignore_errors=True)
