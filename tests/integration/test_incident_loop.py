#!/usr/bin/env python3
"""Incidents through the real daemon: a photo report all the way round the
closed loop, illegal and forbidden steps, bad photos that keep the report,
Idempotency-Key retries, escalation by the loop's timer and exactly once
after kill -9, kill -9 during a burst of reports, 12345 hotline import, the
public result list, statistics."""
import json
import os
import shutil
import signal
import threading
import time
import uuid

from harness import DATA, LAYERS, Daemon, TempDir, expect_error, main, q, run

ctx = {}
PHOTOS = os.path.join(DATA, "photos")


def photo(name):
    with open(os.path.join(PHOTOS, name), "rb") as f:
        return f.read()


def multipart(fields, files):
    """fields: {name: value}; files: [(name, filename, bytes)]."""
    b = "----gridcc" + uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    for name, fn, data in files:
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{fn}\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return bytes(out), "multipart/form-data; boundary=" + b


def post_form(d, path, fields, files, token, headers=None):
    body, ctype = multipart(fields, files)
    h = {"Content-Type": ctype, **(headers or {})}
    st, hdrs, data = d.request("POST", path, body, token, h)
    return st, hdrs, json.loads(data)


def act(d, case, token, action, **extra):
    return d.json("POST", f"/api/incidents/{case}/actions", {"action": action, **extra}, token)


def setup():
    ctx["dir"] = TempDir().__enter__()
    db = ctx["db"] = os.path.join(ctx["dir"], "g.db")
    run("seed", "--db", db, "--layers", LAYERS, check=0)
    for name, role, extra in [("wk", "worker", []), ("op", "operator", []), ("root", "admin", []),
                              ("res", "resident", []), ("cg", "department", ["--department", "城管"]),
                              ("hw", "department", ["--department", "环卫"])]:
        ctx[name] = run("user", "add", name, "--role", role, "--db", db, *extra, check=0)[1].strip()
    ctx["d"] = Daemon(db)


def test_photo_report_round_the_loop():
    d = ctx["d"]
    st, hdrs, f = post_form(d, "/api/incidents", {"category": "E01.02", "description": "垃圾 堆放"},
                            [("photo", "gps-north-east.jpg", photo("gps-north-east.jpg"))], ctx["wk"])
    assert st == 201, f
    p = f["properties"]
    # no place given: the photo's EXIF says 40.0032 N 116.3262 E
    assert f["geometry"]["coordinates"] == [116.3262, 40.0032], f["geometry"]
    assert p["chain"]["chain"]["street"]["name"] == "清华园街道", p["chain"]
    assert p["grid_id"] and p["source"] == "worker" and p["status"] == "reported"
    assert p["photos"][0]["exif"]["alt_m"] == 52.0 and len(p["photos"][0]["hash"]) == 64
    assert {"flag": "location_from_photo", "part": "photo:gps-north-east.jpg"} in p["flags"]
    case = f["id"]
    assert hdrs["location"] == "/api/incidents/" + case
    # the photo is served back, byte for byte
    st, h2, data = d.request("GET", "/api/photos/" + p["photos"][0]["hash"], token=ctx["op"])
    assert st == 200 and data == photo("gps-north-east.jpg") and h2["content-type"] == "image/jpeg"

    # illegal: 409 naming what is allowed; forbidden: 403
    st, body = act(d, case, ctx["op"], "close")
    assert st == 409 and body["error"]["allowed"] == ["register", "reject"], body
    expect_error(act(d, case, ctx["wk"], "register"), 403, "action")
    expect_error(act(d, case, ctx["op"], "fly"), 400, "action")
    assert act(d, case, ctx["op"], "register", note="立案")[0] == 200
    expect_error(act(d, case, ctx["op"], "dispatch", department=""), 400, "department")
    st, body = act(d, case, ctx["op"], "dispatch", department="城管")
    assert st == 200 and body["properties"]["department"] == "城管", body
    # 环卫 may not handle a case dispatched to 城管
    expect_error(act(d, case, ctx["hw"], "handle", result="x"), 403, "action")
    expect_error(act(d, case, ctx["cg"], "handle"), 400, "result")
    assert act(d, case, ctx["cg"], "handle", result="已清运")[0] == 200
    # verification fails once: back to the department
    expect_error(act(d, case, ctx["op"], "send_back"), 400, "note")
    assert act(d, case, ctx["op"], "send_back", note="还有残留")[1]["properties"]["status"] == "dispatched"
    assert act(d, case, ctx["cg"], "handle", result="已彻底清运")[0] == 200
    assert act(d, case, ctx["op"], "verify")[0] == 200
    st, body = act(d, case, ctx["op"], "close")
    assert st == 200 and body["properties"]["closed_at"] and body["properties"]["deadline"] is None
    # a worker's report has no resident account: the operator records the callback rating
    expect_error(act(d, case, ctx["res"], "evaluate", rating=5), 403, "action")
    expect_error(act(d, case, ctx["op"], "evaluate", rating=6), 400, "rating")
    st, body = act(d, case, ctx["op"], "evaluate", rating=4, comment="满意")
    assert st == 200 and body["properties"]["status"] == "evaluated"
    st, body = d.json("GET", "/api/incidents/" + case, token=ctx["op"])
    trail = [(h["action"], h["actor"], h.get("to_status")) for h in body["properties"]["history"]]
    assert trail == [("report", "wk", "reported"), ("register", "op", "registered"),
                     ("dispatch", "op", "dispatched"), ("handle", "cg", "handled"),
                     ("send_back", "op", "dispatched"), ("handle", "cg", "handled"),
                     ("verify", "op", "verified"), ("close", "op", "closed"),
                     ("evaluate", "op", "evaluated")], trail
    expect_error(act(d, case, ctx["op"], "evaluate", rating=1), 409, "action")
    ctx["closed_case"] = case


def test_operator_entered_case_can_be_evaluated():
    """A case an operator enters for a caller has no resident account behind
    it: the operator records the callback rating."""
    d = ctx["d"]
    st, f = d.json("POST", "/api/incidents", {"category": "E05.02", "description": "来电: 店外经营",
                                              "lon": 116.3460, "lat": 40.0178}, ctx["op"])
    assert st == 201 and f["properties"]["reporter_id"] is None, f["properties"]
    case = f["id"]
    for who, a, extra in [("op", "register", {}), ("op", "dispatch", {"department": "城管"}),
                          ("cg", "handle", {"result": "已劝离"}), ("op", "verify", {}),
                          ("op", "close", {}), ("op", "evaluate", {"rating": 4})]:
        assert act(d, case, ctx[who], a, **extra)[0] == 200, a
    st, b = d.json("GET", "/api/incidents/" + case, token=ctx["op"])
    assert b["properties"]["history"][0]["actor"] == "op"


def test_resident_evaluates_own():
    d = ctx["d"]
    st, f = d.json("POST", "/api/incidents", {"category": "E05.05", "description": "单车乱停 13912345678",
                                              "lon": 116.3460, "lat": 40.0178}, ctx["res"])
    assert st == 201 and f["properties"]["source"] == "resident"
    case = f["id"]
    for who, a, extra in [("op", "register", {}), ("op", "dispatch", {"department": "城管"}),
                          ("cg", "handle", {"result": "已清理"}), ("op", "verify", {}), ("op", "close", {})]:
        assert act(d, case, ctx[who], a, **extra)[0] == 200, a
    expect_error(act(d, case, ctx["op"], "evaluate", rating=3), 403, "action")
    assert act(d, case, ctx["res"], "evaluate", rating=5)[0] == 200
    # the resident sees their own case, not others'
    st, lst = d.json("GET", "/api/incidents", token=ctx["res"])
    assert st == 200 and [x["id"] for x in lst["features"]] == [case], lst["numberMatched"]
    expect_error(d.json("GET", "/api/incidents/" + ctx["closed_case"], token=ctx["res"]), 404)
    # 结果公开: anonymous, no reporter, the phone masked
    st, pub = d.json("GET", "/api/public/incidents")
    assert st == 200
    mine = [x for x in pub["features"] if x["id"] == case][0]["properties"]
    assert "reporter" not in mine and "reporter_id" not in mine
    assert "139****5678" in mine["description"] and "13912345678" not in json.dumps(pub)
    assert all(x["properties"]["status"] in ("closed", "evaluated") for x in pub["features"])


def test_bad_photo_keeps_the_report():
    d = ctx["d"]
    key = "retry-" + uuid.uuid4().hex
    st, hdrs, body = post_form(
        d, "/api/incidents", {"category": "E02.01", "description": "小广告", "lon": "116.3460",
                              "lat": "40.0178"},
        [("p1", "ok.jpg", photo("gps-north-east.jpg")), ("p2", "bad.jpg", photo("truncated.jpg")),
         ("p3", "x.jpg", photo("not-a-jpeg.png"))], ctx["wk"], {"Idempotency-Key": key})
    assert st == 400, body
    err = body["error"]
    assert err["field"] == "p2:bad.jpg" and "truncated" in err["message"], err
    assert [p["field"] for p in err["photos"]] == ["p2:bad.jpg", "p3:x.jpg"]
    assert "PNG" in err["photos"][1]["message"]
    kept = body["incident"]
    assert len(kept["properties"]["photos"]) == 1, kept
    # the phone retries with the same key: the stored case, nothing new
    st, h2, again = post_form(d, "/api/incidents", {"category": "E02.01", "description": "小广告"},
                              [], ctx["wk"], {"Idempotency-Key": key})
    assert st == 200 and again["id"] == kept["id"] and h2.get("idempotent-replayed") == "true"
    # photo GPS 2 km from the given place: kept and flagged
    st, hdrs, f = post_form(d, "/api/incidents", {"category": "E02.01", "description": "远",
                                                  "lon": "116.3460", "lat": "40.0178"},
                            [("p", "a.jpg", photo("gps-north-east.jpg"))], ctx["wk"])
    assert st == 201
    fl = [x for x in f["properties"]["flags"] if x["flag"] == "location_mismatch"]
    assert fl and fl[0]["distance_m"] > 2000, f["properties"]["flags"]


def test_bad_inputs():
    d = ctx["d"]
    t = ctx["wk"]
    expect_error(d.json("POST", "/api/incidents", {"description": "x", "lon": 116.3, "lat": 40}, t), 400, "category")
    expect_error(d.json("POST", "/api/incidents", {"category": "Z9", "description": "x", "lon": 116.3, "lat": 40}, t), 400, "category")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "lon": 116.3, "lat": 40}, t), 400, "description")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "description": "x"}, t), 400, "lon")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "description": "x", "lon": "a", "lat": 40}, t), 400, "lon")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "description": "x", "lon": 116, "lat": 95}, t), 400, "lat")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "description": "x", "lon": 116.3, "lat": 40, "crs": "EPSG:999999"}, t), 400, "crs")
    expect_error(d.json("POST", "/api/incidents", "{not json", t), 400, "body")
    expect_error(d.json("POST", "/api/incidents", {"category": "E01.02", "description": "x", "lon": 116.3, "lat": 40}), 401)
    expect_error(d.json("GET", q("/api/incidents", status="lost"), token=t), 400, "status")
    expect_error(d.json("GET", q("/api/incidents", bbox="1,2,3"), token=t), 400, "bbox")
    expect_error(d.json("GET", q("/api/incidents", limit="0"), token=t), 400, "limit")
    expect_error(d.json("GET", "/api/incidents/2099-999999", token=t), 404, "id")
    expect_error(d.json("PUT", "/api/time-limits", {"category": "E01", "step": "register", "seconds": 5}, ctx["op"]), 403)
    expect_error(d.json("PUT", "/api/time-limits", {"category": "E01", "step": "nap", "seconds": 5}, ctx["root"]), 400, "step")
    expect_error(d.json("PUT", "/api/time-limits", {"category": "E01", "step": "register", "seconds": -1}, ctx["root"]), 400, "seconds")
    # GCJ-02 coordinates from a phone SDK are converted before geotagging
    st, f = d.json("POST", "/api/incidents", {"category": "E01.02", "description": "gcj",
                                              "lon": 116.332287, "lat": 40.004411, "crs": "gcj02"}, t)
    assert st == 201 and f["properties"]["src_crs"] == "gcj02"
    assert abs(f["geometry"]["coordinates"][0] - 116.3262) < 1e-3, f["geometry"]


def wait_for(pred, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)



def raw_exchange(d, request, pieces=None, timeout=20, gap=0):
    """Sends raw bytes (in the given piece sizes, cycling; gap seconds apart,
    so that they arrive as separate reads) and reads until the server closes
    or times out; returns everything read."""
    import socket
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    sizes = pieces or [len(request)]
    i = k = 0
    while i < len(request):
        n = sizes[k % len(sizes)]
        s.sendall(request[i:i + n])
        i += n
        k += 1
        if gap and i < len(request):
            time.sleep(gap)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= cl[0]:
                    # one whole response: wait briefly for anything after it
                    s.settimeout(2)
    except OSError:
        pass
    s.close()
    return out


def form_request(body, ctype, token, length=None):
    head = (f"POST /api/incidents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body) if length is None else length}"
            "\r\n\r\n").encode()
    return head + body


def test_streamed_form_edges():
    d = ctx["d"]
    jpg = photo("gps-north-east.jpg")
    # a photo report arriving in odd-sized pieces (1, 7, 300 … bytes) is
    # parsed the same as one sent whole
    body, ctype = multipart({"category": "E01.02", "description": "分片上传"},
                            [("photo", "p.jpg", jpg)])
    out = raw_exchange(d, form_request(body, ctype, ctx["wk"]), pieces=[1, 7, 300, 4096, 13])
    assert out.startswith(b"HTTP/1.1 201"), out[:300]
    f = json.loads(out.partition(b"\r\n\r\n")[2])
    assert f["geometry"]["coordinates"] == [116.3262, 40.0032]
    # bytes after the closing boundary but inside Content-Length are the
    # form's epilogue (RFC 2046): a short one is ignored, and a request
    # hidden there is never served
    body, ctype = multipart({"category": "E01.02", "description": "epilogue", "lon": "116.32",
                             "lat": "40.0"}, [])
    smuggled = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    out = raw_exchange(d, form_request(body + smuggled, ctype, ctx["wk"]),
                       pieces=[len(body), len(smuggled)])
    assert out.startswith(b"HTTP/1.1 201"), out[:300]
    assert out.count(b"HTTP/1.1") == 1, out
    # a long one arriving in a later read (lws' parser ends the body at the
    # boundary, and would read the rest as a new request): 400 and the
    # connection closed; had both come in one read, the epilogue is simply
    # ignored. Either way the hidden request is never served.
    smuggled = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 600 + b"\r\n\r\n"
    out = raw_exchange(d, form_request(body + smuggled, ctype, ctx["wk"]),
                       pieces=[len(body), len(smuggled)], gap=0.3)
    assert out.count(b"HTTP/1.1") == 1, out
    assert out.startswith(b"HTTP/1.1 201") or (out.startswith(b"HTTP/1.1 400") and
                                               b"closing boundary" in out), out[:400]
    # Expect: 100-continue (curl's habit for bodies over 1 MB): the 100 comes
    # before any byte of the body is sent, then the final answer
    import socket
    body, ctype = multipart({"category": "E01.02", "description": "expect"},
                            [("photo", "p.jpg", jpg)])
    req = form_request(body, ctype, ctx["wk"])
    head, _, _ = req.partition(b"\r\n\r\n")
    c = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    c.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
    first = c.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
    c.sendall(body)
    rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    while b"\r\n\r\n" not in rest:
        rest += c.recv(65536)
    assert rest.startswith(b"HTTP/1.1 201"), rest[:200]
    c.close()
    # many tiny file parts: refused by count, cheaply
    many = [("photo", f"p{i}.jpg", b"x") for i in range(2000)]
    st, _, e = post_form(d, "/api/incidents", {"category": "E01.02", "description": "x"}, many,
                         ctx["wk"])
    assert st == 400 and "32 file parts" in e["error"]["message"], e
    # the daemon is fine afterwards
    assert d.request("GET", "/api/health")[0] == 200


def test_escalation_by_timer():
    d = ctx["d"]
    st, _ = d.json("PUT", "/api/time-limits", {"category": "E05.06", "step": "register", "seconds": 1}, ctx["root"])
    assert st == 200
    st, f = d.json("POST", "/api/incidents", {"category": "E05.06", "description": "露天烧烤",
                                              "lon": 116.3460, "lat": 40.0178}, ctx["wk"])
    case = f["id"]

    def escalated():
        b = d.json("GET", "/api/incidents/" + case, token=ctx["op"])[1]["properties"]
        return b if b["level"] >= 1 else None
    b = wait_for(escalated, "the deadline timer")
    esc = [h for h in b["history"] if h["action"] == "escalate"]
    assert esc[0]["actor"] == "system" and "community 松清园社区" in esc[0]["note"], esc
    assert b["overdue_count"] == 1
    # escalated again under a day's limit, it has a deadline far ahead, and
    # is still an overdue case (超期) until it is closed: the statistics
    # counted only cases past their current deadline, which escalation moves
    st, _ = d.json("PUT", "/api/time-limits", {"category": "E05.06", "step": "register", "seconds": 86400}, ctx["root"])
    assert st == 200
    wait_for(lambda: d.json("GET", "/api/incidents/" + case, token=ctx["op"])[1]["properties"]["deadline"]
             > time.time() + 3600, "the escalation under the new limit")
    grid = b["grid_id"]
    st, lst = d.json("GET", q("/api/incidents", grid=grid, status="reported,registered,dispatched,handled,verified",
                              limit=1000), token=ctx["op"])
    assert st == 200
    now = time.time()
    assert not [f for f in lst["features"] if (f["properties"].get("deadline") or now + 1) < now], \
        "a case past its deadline in the grid: the check below would pass anyway"
    st, stats = d.json("GET", "/api/incidents/stats?level=grid", token=ctx["op"])
    assert st == 200
    unit = [u for u in stats["units"] if u["id"] == grid]
    assert unit and unit[0]["overdue"] >= 1, unit


def test_deadline_survives_kill9():
    db = ctx["db"]
    d = ctx["d"]
    st, _ = d.json("PUT", "/api/time-limits", {"category": "E05.03", "step": "register", "seconds": 2}, ctx["root"])
    st, f = d.json("POST", "/api/incidents", {"category": "E05.03", "description": "废品收购占道",
                                              "lon": 116.3460, "lat": 40.0178}, ctx["wk"])
    case, deadline = f["id"], f["properties"]["deadline"]
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.log.close()
    while time.time() < deadline + 1:   # the deadline passes while nothing runs
        time.sleep(0.1)
    d = ctx["d"] = Daemon(db)
    b = d.json("GET", "/api/incidents/" + case, token=ctx["op"])[1]["properties"]
    esc = [h for h in b["history"] if h["action"] == "escalate"]
    assert len(esc) == 1 and b["level"] == 1, b["history"]
    # and a second restart does not escalate it again
    d.stop()
    d = ctx["d"] = Daemon(db)
    b = d.json("GET", "/api/incidents/" + case, token=ctx["op"])[1]["properties"]
    assert len([h for h in b["history"] if h["action"] == "escalate"]) <= 2
    assert b["history"][-1]["action"] in ("escalate", "report")


def test_kill9_during_burst_loses_nothing_acknowledged():
    db = ctx["db"]
    d = ctx["d"]
    acked, stop = [], threading.Event()

    def sender(n):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                st, f = d.json("POST", "/api/incidents",
                               {"category": "E01.04", "description": f"burst {n}-{i}",
                                "lon": 116.3460, "lat": 40.0178}, ctx["wk"],
                               {"Idempotency-Key": f"burst-{n}-{i}"})
            except (OSError, ValueError, AssertionError):
                return
            if st == 201:
                acked.append(f["id"])
    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 50, "50 acknowledged reports")
    d.proc.send_signal(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    d.proc.wait()
    d.log.close()
    d = ctx["d"] = Daemon(db)
    for case in acked:
        st, b = d.json("GET", "/api/incidents/" + case, token=ctx["op"])
        assert st == 200, f"acknowledged {case} lost"
    rc, out, err = run("incident", "list", "--db", db, "--limit", "100000")
    assert len(acked) <= out.count("burst "), (len(acked), out.count("burst "))


def test_hotline_import():
    db, d = ctx["db"], ctx["d"]
    path = os.path.join(DATA, "hotline", "12345-sample.csv")
    rc, out, err = run("hotline", "import", path, "--db", db)
    assert rc == 1, (out, err)   # two rows rejected: the exit status says so
    assert "9 orders: 7 created (2 by coordinates, 2 by address, 3 unplaced), 0 already imported, 2 rejected" in out, out
    assert "line 6 (order GD20261101005): no content" in err and "line 7 (order ): no work-order number" in err, err
    assert "line 10 (order GD20261101009): ambiguous" in err and "line 5 (order GD20261101004)" in err, err
    rc, out, err = run("hotline", "import", path, "--db", db)
    assert "0 created" in out and "7 already imported" in out, out
    st, lst = d.json("GET", q("/api/incidents", source="hotline", unplaced="true"), token=ctx["op"])
    assert st == 200 and lst["numberMatched"] == 3, lst["numberMatched"]
    st, lst = d.json("GET", q("/api/incidents", source="hotline", limit="100"), token=ctx["op"])
    by_addr = [x for x in lst["features"] if any(fl["flag"] == "placed_by_address" for fl in x["properties"]["flags"])]
    assert sorted(x["properties"]["building_id"] is not None for x in by_addr) == [True, True]
    names = sorted(fl["building"] for x in by_addr for fl in x["properties"]["flags"] if fl["flag"] == "placed_by_address")
    assert names == ["松清园小区3号楼", "松清园小区7号楼"], names
    # one order pushed over HTTP, then again
    order = {"order_no": "GD-HTTP-1", "time": "2026-11-02 09:00:00", "content": "小区垃圾满溢",
             "address": "松清园小区2号楼", "category": "垃圾清运"}
    st, f = d.json("POST", "/api/hotline", order, ctx["op"])
    assert st == 201 and f["properties"]["building_id"] and f["properties"]["category"] == "E01.02", f
    st, f2 = d.json("POST", "/api/hotline", order, ctx["op"])
    assert st == 200 and f2["id"] == f["id"]
    expect_error(d.json("POST", "/api/hotline", {"content": "x"}, ctx["op"]), 400, "order_no")
    expect_error(d.json("POST", "/api/hotline", {"order_no": "A", "content": "x", "lon": "abc", "lat": 1}, ctx["op"]), 400, "lon")
    expect_error(d.json("POST", "/api/hotline", order, ctx["wk"]), 403)


def test_stats_and_ranking():
    d = ctx["d"]
    st, s = d.json("GET", q("/api/incidents/stats", level="grid"), token=ctx["op"])
    assert st == 200 and s["units"]
    total = sum(u["total"] for u in s["units"])
    st, lst = d.json("GET", q("/api/incidents", limit="1"), token=ctx["op"])
    assert total == lst["numberMatched"], (total, lst["numberMatched"])
    g = [u for u in s["units"] if u["finished"]]
    assert g and all(0 <= u["on_time_rate"] <= 1 and u["handling_p90_s"] >= u["handling_mean_s"] * 0 for u in g)
    st, c = d.json("GET", q("/api/incidents/stats", level="community"), token=ctx["op"])
    assert sum(u["total"] for u in c["units"]) == total
    st, r = d.json("GET", "/api/incidents/ranking", token=ctx["op"])
    assert st == 200 and r["grids"][0]["rank"] == 1
    scores = [x["score"] for x in r["grids"]]
    assert scores == sorted(scores, reverse=True)
    expect_error(d.json("GET", q("/api/incidents/stats", level="planet"), token=ctx["op"]), 400, "level")
    expect_error(d.json("GET", q("/api/incidents/ranking", month="2026-13"), token=ctx["op"]), 400, "month")
    expect_error(d.json("GET", "/api/incidents/stats", token=ctx["res"]), 403)


def teardown():
    assert ctx["d"].stop() == 0
    shutil.rmtree(ctx["dir"], ignore_errors=True)


if __name__ == "__main__":
    setup()
    try:
        main([test_photo_report_round_the_loop, test_operator_entered_case_can_be_evaluated,
              test_resident_evaluates_own,
              test_bad_photo_keeps_the_report, test_bad_inputs, test_streamed_form_edges,
              test_escalation_by_timer,
              test_deadline_survives_kill9, test_kill9_during_burst_loses_nothing_acknowledged,
              test_hotline_import, test_stats_and_ranking, teardown])
    finally:
        if ctx["d"].proc.poll() is None:
            ctx["d"].proc.kill()
