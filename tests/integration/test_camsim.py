#!/usr/bin/env python3
"""camsim, the simulated cameras: real RTSP clients (ffprobe, ffmpeg and a
small RTSP client here) against the built binary. H.264 and H.265 read back
with their size; one pipeline shared by two clients; timestamps that keep
increasing across loops; Basic and Digest auth, 401 without the password in
the log; each misbehaviour of the control protocol; a clip encoded once."""
import base64
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import main  # noqa: E402

CAMSIM = os.environ.get("CAMSIM_BIN", "build/tools/camsim")
USER, PASSWORD = "admin", "Zq7-secret-pw"
W, H, SECONDS, FPS = 320, 240, 2, 25


class Camsim:
    """camsim on free ports (--port 0, --control 0): waits for its ready line."""

    def __init__(self, cache, *extra):
        self.log_path = os.path.join(cache, f"camsim-{time.time_ns()}.log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen(
            [CAMSIM, "--port", "0", "--control", "0", "--cache", cache, "--width", str(W),
             "--height", str(H), "--fps", str(FPS), "--seconds", str(SECONDS), "--bitrate", "400",
             *extra], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()
        m = re.match(r"camsim: ready port=(\d+) control=(\d+) streams=(\d+)", line)
        assert m, f"no ready line: {line!r}\n{self.logs()}"
        self.port, self.control = int(m[1]), int(m[2])
        self.ctl = socket.create_connection(("127.0.0.1", self.control), timeout=120)
        self.ctl_in = self.ctl.makefile("r")

    def cmd(self, line):
        self.ctl.sendall(line.encode() + b"\n")
        return json.loads(self.ctl_in.readline())

    def ok(self, line):
        r = self.cmd(line)
        assert r["ok"], f"{line}: {r}"
        return r

    def mount(self, id):
        return next(m for m in self.ok("stats")["mounts"] if m["id"] == id)

    def url(self, path, user=USER, password=PASSWORD):
        cred = f"{user}:{password}@" if user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/{path}"

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.ctl.close()
        self.p.terminate()
        rc = self.p.wait(timeout=30)
        self.log.close()
        return rc


def wait_for(pred, what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ffprobe(url, transport="tcp"):
    p = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", transport, "-show_entries",
                        "stream=codec_name,width,height", "-of", "json", url],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["streams"][0]


def viewer(url, seconds=60):
    """An ffmpeg client that plays url (copy, no output) for up to seconds."""
    return subprocess.Popen(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
                             "-t", str(seconds), "-c", "copy", "-f", "null", "-"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


class Rtsp:
    """Just enough RTSP over one TCP connection to see statuses and count the
    interleaved RTP packets of a stream."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.cseq = 0
        self.port = port

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def request(self, method, path, headers=None):
        self.cseq += 1
        url = f"rtsp://127.0.0.1:{self.port}/{path}"
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            while self.buf.startswith(b"$"):
                if len(self.buf) < 4:
                    self._fill()
                    continue
                n = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + n:
                    self._fill()
                    continue
                self.buf = self.buf[4 + n:]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0 and not self.buf.startswith(b"$"):
                break
            self._fill()
        head = self.buf[:end].decode()
        self.buf = self.buf[end + 4:]
        hdrs = {}
        for ln in head.split("\r\n")[1:]:
            k, _, v = ln.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        body = b""
        n = int(hdrs.get("content-length", ["0"])[0])
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(head.split(" ")[1]), hdrs, body.decode(errors="replace")

    def play(self, path, auth):
        st, _, sdp = self.request("DESCRIBE", path, {"Accept": "application/sdp", **auth})
        assert st == 200, st
        control = re.search(r"a=control:(\S+)", sdp.split("m=video")[1])[1]
        st, h, _ = self.request("SETUP", f"{path}/{control}",
                                {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1", **auth})
        assert st == 200, st
        session = h["session"][0].split(";")[0]
        st, _, _ = self.request("PLAY", path, {"Session": session, **auth})
        assert st == 200, st

    def rtp_packets(self, seconds):
        """RTP packets on channel 0 within the next seconds (connection kept)."""
        end = time.monotonic() + seconds
        n = 0
        while True:
            while len(self.buf) >= 4 and self.buf[0:1] == b"$":
                ln = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + ln:
                    break
                if self.buf[1] == 0:
                    n += 1
                self.buf = self.buf[4 + ln:]
            left = end - time.monotonic()
            if left <= 0:
                return n
            r, _, _ = select.select([self.s], [], [], left)
            if r:
                self._fill()

    def close(self):
        self.s.close()


def basic(user=USER, password=PASSWORD):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def describe(cs, path, auth=None):
    c = Rtsp(cs.port)
    try:
        return c.request("DESCRIBE", path,
                         {"Accept": "application/sdp", **(basic() if auth is None else auth)})
    finally:
        c.close()


cache = tempfile.mkdtemp(prefix="camsim-it-")
cs = None


def test_start_encodes_clips():
    global cs
    cs = Camsim(cache, "--streams", "3", "--codec", "mix", "--user", USER, "--password", PASSWORD)
    logs = cs.logs()
    assert logs.count("INFO camsim: clip encoded") == 2, logs  # h264 and h265, once each


def test_h264_and_h265_over_tcp_and_udp():
    s = ffprobe(cs.url("cam1"))
    assert (s["codec_name"], s["width"], s["height"]) == ("h264", W, H), s
    s = ffprobe(cs.url("cam2"))
    assert (s["codec_name"], s["width"], s["height"]) == ("hevc", W, H), s
    s = ffprobe(cs.url("cam3"), transport="udp")
    assert (s["codec_name"], s["width"], s["height"]) == ("h264", W, H), s


def test_two_clients_share_one_pipeline():
    before = cs.mount("cam3")["pipelines_created"]
    a, b = viewer(cs.url("cam3")), viewer(cs.url("cam3"))
    try:
        m = wait_for(lambda: (m := cs.mount("cam3"))["clients"] == 2 and m, "two clients")
        assert m["pipelines"] == 1, m
        assert m["pipelines_created"] == before + 1, m
    finally:
        a.kill(), b.kill(), a.wait(), b.wait()


def test_timestamps_increase_across_loops():
    """Two and a half loops of a 2 s clip, copied: packet times never go back,
    every frame has its own time, and the recording lasts what it should."""
    d = tempfile.mkdtemp(dir=cache)
    out = os.path.join(d, "rec.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", cs.url("cam1"),
                        "-t", "5", "-c", "copy", "-y", out], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                        "packet=pts_time,flags", "-of", "csv=p=0", out],
                       capture_output=True, text=True, timeout=30)
    packets = [(float(ln.split(",")[0]), ln.split(",")[1]) for ln in p.stdout.split()]
    pts = [t for t, _ in packets]
    assert all(b >= a for a, b in zip(pts, pts[1:])), "pts went back"
    # ffmpeg hands a keyframe's parameter sets over as a packet of their own
    # at the frame's time; two frames never share one (a loop's first frame
    # took its last one's time before the fix)
    for t in set(pts):
        flags = [f for u, f in packets if u == t]
        assert len(flags) == 1 or all("K" in f for f in flags), (t, flags)
    frames = sorted(set(pts))
    assert len(frames) >= 4.5 * FPS, len(frames)
    steps = [round((b - a) * FPS, 3) for a, b in zip(frames, frames[1:])]
    assert set(steps) == {1.0}, sorted(set(steps))
    assert frames[-1] - frames[0] >= 4.5, frames[-1]
    m = cs.mount("cam1")
    assert m["loop_count"] >= 3 and m["fps"] == FPS and m["frames"] == FPS * SECONDS, m
    now = time.time() * 1000
    assert all(now - 120000 < t < now + 5000 for t in m["loops"]), m["loops"]
    assert all(b > a for a, b in zip(m["loops"], m["loops"][1:])), m["loops"]


def test_frame_index_in_the_pixels():
    """The 16 blocks along the top of frame 37 of the cached clip read 37."""
    clip = next(os.path.join(cache, f) for f in os.listdir(cache) if f.startswith("h264-"))
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", clip, "-vf", r"select=eq(n\,37)",
                        "-frames:v", "1", "-pix_fmt", "gray", "-f", "rawvideo", "-"],
                       capture_output=True, timeout=30)
    assert len(p.stdout) == W * H, p.stderr
    bs = W // 32
    bits = "".join("1" if p.stdout[(bs // 2) * W + i * bs + bs // 2] > 128 else "0"
                   for i in range(16))
    assert int(bits, 2) == 37, bits


def test_wrong_password_is_401_and_never_logged():
    st, h, _ = describe(cs, "cam1", basic(password="wrong-Pw-123"))
    assert st == 401, st
    assert any(v.startswith("Basic") for v in h["www-authenticate"]), h
    st, _, _ = describe(cs, "cam1", {})
    assert st == 401, st
    st, _, sdp = describe(cs, "cam1")
    assert st == 200 and "m=video" in sdp, st
    # Digest, answered to the server's challenge
    c = Rtsp(cs.port)
    st, h, _ = c.request("DESCRIBE", "cam1")
    dig = next(v for v in h["www-authenticate"] if v.startswith("Digest"))
    realm, nonce = re.search(r'realm="([^"]*)"', dig)[1], re.search(r'nonce="([^"]*)"', dig)[1]
    uri = f"rtsp://127.0.0.1:{cs.port}/cam1"
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    resp = md5(f"{md5(f'{USER}:{realm}:{PASSWORD}')}:{nonce}:{md5(f'DESCRIBE:{uri}')}")
    st, _, _ = c.request("DESCRIBE", "cam1", {"Authorization": (
        f'Digest username="{USER}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{resp}"')})
    c.close()
    assert st == 200, st
    logs = cs.logs()
    assert "unauthorized mount=cam1" in logs, logs
    assert PASSWORD not in logs and "wrong-Pw-123" not in logs


def test_a_client_right_after_the_last_left():
    """A camera reconnecting at once, a second probe: the pipeline the last
    client left is still winding down, and handing it out gave 503."""
    statuses = [describe(cs, "cam3")[0] for _ in range(12)]
    assert statuses == [200] * 12, statuses


def test_down_and_up():
    cs.ok("down cam1")
    assert cs.mount("cam1")["state"] == "down"
    assert describe(cs, "cam1")[0] == 404
    cs.ok("up cam1")
    assert describe(cs, "cam1")[0] == 200
    assert "mount down mount=cam1" in cs.logs()


def test_drop_closes_the_connections():
    v = viewer(cs.url("cam3"))
    try:
        wait_for(lambda: cs.mount("cam3")["clients"] == 1, "a client")
        assert cs.ok("drop cam3")["dropped"] == 1
        v.wait(timeout=20)  # it had 60 s to go
        wait_for(lambda: cs.mount("cam3")["clients"] == 0, "no client")
    finally:
        v.kill(), v.wait()


def test_stall_keeps_the_connection_but_sends_nothing():
    c = Rtsp(cs.port)
    try:
        c.play("cam2", basic())
        assert c.rtp_packets(1.5) > 0
        cs.ok("stall cam2 0")
        assert cs.mount("cam2")["state"] == "stalled"
        c.rtp_packets(1.5)  # what the server's queues held when it stalled
        assert c.rtp_packets(2) == 0
        cs.ok("resume cam2")
        assert c.rtp_packets(4) > 0  # the same connection, from the next keyframe
        cs.ok("stall cam2 1")  # ends by itself
        wait_for(lambda: cs.mount("cam2")["state"] == "up", "the stall to end")
    finally:
        c.close()


def test_auth_off_refuses_and_password_changes():
    cs.ok("auth cam2 off")
    assert cs.mount("cam2")["state"] == "refusing"
    assert describe(cs, "cam2")[0] == 401
    assert describe(cs, "cam1")[0] == 200  # the others still take it
    cs.ok("auth cam2 on")
    assert describe(cs, "cam2")[0] == 200
    cs.ok("password cam2 N3w-pass-456")
    assert describe(cs, "cam2")[0] == 401
    assert describe(cs, "cam2", basic(password="N3w-pass-456"))[0] == 200
    assert "N3w-pass-456" not in cs.logs()


def test_codec_switch_drops_and_serves_the_other():
    v = viewer(cs.url("cam1"))
    try:
        wait_for(lambda: cs.mount("cam1")["clients"] == 1, "a client")
        cs.ok("codec cam1 h265")
        v.wait(timeout=20)
    finally:
        v.kill(), v.wait()
    assert cs.mount("cam1")["codec"] == "h265"
    assert ffprobe(cs.url("cam1"))["codec_name"] == "hevc"
    cs.ok("codec cam1 h264")
    assert ffprobe(cs.url("cam1"))["codec_name"] == "h264"


def test_add_and_bad_commands():
    assert describe(cs, "cam9")[0] == 404
    cs.ok("add cam9 h265")
    assert ffprobe(cs.url("cam9"))["codec_name"] == "hevc"
    r = cs.cmd("add cam9")
    assert not r["ok"] and "exists" in r["error"], r
    r = cs.cmd("stall cam1 soon")
    assert not r["ok"] and "SECONDS" in r["error"], r
    r = cs.cmd("drop cam77")
    assert not r["ok"] and "cam77" in r["error"], r
    r = cs.cmd("frobnicate")
    assert not r["ok"] and "stats" in r["error"], r


def test_second_start_encodes_nothing():
    other = Camsim(cache, "--streams", "2", "--codec", "mix")
    try:
        logs = other.logs()
        assert "clip encoded" not in logs and logs.count("clip cached") == 2, logs
        assert ffprobe(other.url("cam2", user=None))["codec_name"] == "hevc"
    finally:
        rc = other.stop()
        assert rc == 0, (rc, other.logs()[-6000:])


def record(url, seconds, out):
    p = subprocess.run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", url, "-t",
                        str(seconds), "-c", "copy", "-y", out], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                        "packet=pts_time", "-of", "csv=p=0", out], capture_output=True, text=True,
                       timeout=30)
    return [float(t) for t in p.stdout.split()]


def test_raw_annexb_file_loops_at_its_frame_rate():
    """--file of a raw .264 (the H.264 clip without its container, 2 s) loops
    at 25 frames a second with increasing times. (This stream says its frame
    rate in its SPS; conformance streams that do not ran at hundreds of
    frames a second before camsim stamped raw frames itself, which this
    stream does not show.)"""
    d = tempfile.mkdtemp(dir=cache)
    clip = next(os.path.join(cache, f) for f in os.listdir(cache) if f.startswith("h264-"))
    raw = os.path.join(d, "clip.264")
    subprocess.run(["ffmpeg", "-v", "error", "-i", clip, "-c", "copy", "-bsf:v",
                    "h264_mp4toannexb", "-f", "h264", "-y", raw], check=True, timeout=30)
    other = Camsim(d, "--streams", "0", "--file", raw)
    try:
        pts = record(other.url("file1", user=None), 5, os.path.join(d, "rec.mkv"))
        assert all(b >= a for a, b in zip(pts, pts[1:])), "pts went back"
        frames = sorted(set(pts))
        # 5 s at 25 fps, two loops and a half: not hundreds of frames
        assert 4.5 * FPS <= len(frames) <= 5.5 * FPS, len(frames)
        steps = {round((b - a) * FPS, 3) for a, b in zip(frames, frames[1:])}
        assert steps == {1.0}, steps
        m = other.mount("file1")
        assert m["loop_count"] >= 2 and m["frames"] == FPS * SECONDS, m
    finally:
        rc = other.stop()
        assert rc == 0, (rc, other.logs()[-6000:])


def test_raw_file_with_b_frames_is_shown_in_order():
    """A raw stream's B-frames come before the pictures they are shown after:
    stamped in decode order, a player's decoded pictures had times going
    back (ffmpeg: "non monotonically increasing dts"), and the PLAY's
    flushing seek passed unseen so the first picture was sent twice. Here an
    x264 stream with B-frames, H.264 and H.265: the packets arrive out of
    presentation order (so the stream does reorder), and the decoded
    pictures over more than one loop are 1/25 s apart, in order, each once."""
    d = tempfile.mkdtemp(dir=cache)
    for codec, enc in (("264", "x264enc speed-preset=ultrafast bframes=2 b-adapt=false "
                               "key-int-max=25 ! video/x-h264,profile=main,stream-format=byte-stream"),
                       ("265", "x265enc speed-preset=ultrafast key-int-max=25 "
                               "option-string=bframes=2:b-adapt=0:open-gop=0")):
        raw = os.path.join(d, f"b.{codec}")
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=50", "pattern=ball",
                        "!", f"video/x-raw,width={W},height={H},framerate={FPS}/1", "!",
                        *enc.split(), "!", "filesink", f"location={raw}"], check=True,
                       timeout=120)
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=has_b_frames",
                            "-of", "csv=p=0", raw], capture_output=True, text=True, timeout=30)
        assert int(p.stdout) > 0, (codec, "no B-frames to try", p.stdout)
        other = Camsim(d, "--streams", "0", "--file", raw)
        try:
            url = other.url("file1", user=None)
            p = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
                                "-read_intervals", "%+3", "-show_entries",
                                "packet=pts:frame=pts", "-of", "json"],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            got = json.loads(p.stdout)
            both = got["packets_and_frames"]
            packets = [x["pts"] for x in both if x["type"] == "packet" and "pts" in x]
            frames = [x["pts"] for x in both if x["type"] == "frame" and "pts" in x]
            assert len(frames) >= 2.5 * FPS, (codec, len(frames))
            steps = {b - a for a, b in zip(frames, frames[1:])}
            assert steps == {90000 // FPS}, (codec, sorted(steps), frames[:20])
            assert any(b < a for a, b in zip(packets, packets[1:])), ("no reordering", packets)
            assert "picture order" in other.logs(), other.logs()[-2000:]
        finally:
            rc = other.stop()
            assert rc == 0, (rc, other.logs()[-6000:])


def test_bad_options_are_named():
    for args, word in ((["--streams", "2", "--codec", "vp9"], "--codec"),
                       (["--streams", "2", "--width", "wide"], "--width"),
                       (["--streams", "x"], "--streams"),
                       (["--file", "/nonexistent.264"], "/nonexistent.264")):
        p = subprocess.run([CAMSIM, "--port", "0", "--cache", cache, *args], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode in (1, 2) and word in p.stderr, (args, p.stderr)


def test_sigterm_exits_cleanly():
    rc = cs.stop()
    assert rc == 0 and "stopping" in cs.logs(), (rc, cs.logs()[-6000:])


if __name__ == "__main__":
    try:
        main([test_start_encodes_clips, test_h264_and_h265_over_tcp_and_udp,
              test_two_clients_share_one_pipeline, test_timestamps_increase_across_loops,
              test_frame_index_in_the_pixels, test_wrong_password_is_401_and_never_logged,
              test_a_client_right_after_the_last_left, test_down_and_up, test_drop_closes_the_connections,
              test_stall_keeps_the_connection_but_sends_nothing,
              test_auth_off_refuses_and_password_changes,
              test_codec_switch_drops_and_serves_the_other, test_add_and_bad_commands,
              test_second_start_encodes_nothing, test_raw_annexb_file_loops_at_its_frame_rate,
              test_raw_file_with_b_frames_is_shown_in_order,
              test_bad_options_are_named,
              test_sigterm_exits_cleanly])
    finally:
        if cs and cs.p.poll() is None:
            cs.p.kill()
        shutil.rmtree(cache, ignore_errors=True)
