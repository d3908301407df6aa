#!/usr/bin/env python3
"""The living demo against the real daemon: scripts/demo_history.py's 12345
export imported the documented way (gridcc hotline import --map) and its
handling recorded through the API with past times (at, steps), then the
figures the wall shows; the rules of at and steps; and scripts/simulate_cases.py
taking a new case round the loop."""
import datetime
import os
import subprocess
import sys
import time

from harness import LAYERS, Daemon, TempDir, expect_error, main, q, run

ctx = {}
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")


def script(name, *args):
    p = subprocess.run([sys.executable, os.path.join(SCRIPTS, name), *args],
                       capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def setup():
    ctx["dir"] = TempDir().__enter__()
    db = ctx["db"] = os.path.join(ctx["dir"], "g.db")
    run("seed", "--db", db, "--layers", LAYERS, check=0)
    users = [("root", "admin", None), ("op", "operator", None), ("res", "resident", None),
             ("cg", "department", "城管"), ("hw", "department", "环卫"), ("ga", "department", "公安")]
    lines = []
    for name, role, dept in users:
        extra = ["--department", dept] if dept else []
        ctx[name] = run("user", "add", name, "--role", role, "--db", db, *extra, check=0)[1].strip()
        lines.append(f"{name} {role} {ctx[name]} {dept or ''}\n")
    ctx["tokens"] = os.path.join(ctx["dir"], "sim.txt")
    with open(ctx["tokens"], "w", encoding="utf-8") as f:
        f.writelines(lines)
    ctx["d"] = Daemon(db)


def all_cases(token):
    st, fc = ctx["d"].json("GET", "/api/incidents?limit=10000", token=token)
    assert st == 200, fc
    return [f["properties"] for f in fc["features"]]


def test_history_imported_and_played():
    d = ctx["d"]
    out = os.path.join(ctx["dir"], "h.csv")
    api = f"http://127.0.0.1:{d.port}"
    rc, so, se = script("demo_history.py", "generate", "--days", "3", "--seed", "5", "--api", api,
                        "--token", ctx["root"], "--layers", LAYERS, "--out", out)
    assert rc == 0, so + se
    # the documented import: nothing rejected (exit 0 says so too)
    rc, so, se = run("hotline", "import", out, "--db", ctx["db"], "--map",
                     out[:-4] + ".map.json", check=0)
    assert " 0 rejected" in se + so, se + so
    rc, so, se = script("demo_history.py", "play", out, "--api", api, "--token", ctx["root"])
    assert rc == 0, so + se
    cases = all_cases(ctx["op"])
    assert len(cases) >= 2 * 20, len(cases)   # two whole days and today so far
    st, cats = d.json("GET", "/api/categories", token=ctx["op"])
    codes = {c["code"] for c in cats["categories"] if c.get("active", 1)}
    assert codes <= {c["category"] for c in cases}, codes - {c["category"] for c in cases}
    statuses = {c["status"] for c in cases}
    assert {"registered", "dispatched", "closed", "evaluated", "rejected"} <= statuses or \
        len(statuses - {"reported"}) >= 4, statuses
    rated = [c for c in cases if c.get("rating")]
    assert rated and all(1 <= c["rating"] <= 5 for c in rated)

    # a rated case's trail: the steps at the times they happened, in order,
    # by the admin who recorded them, the report's time first
    st, one = d.json("GET", "/api/incidents/" + rated[0]["case_no"], token=ctx["op"])
    steps = [h for h in one["properties"]["history"] if h["action"] not in ("report", "escalate")]
    assert [h["action"] for h in steps][-1] == "evaluate", steps
    times = [h["at"] for h in steps]
    assert times == sorted(times) and times[-1] < time.time() - 60, times
    assert one["properties"]["created_at"] <= times[0], (one["properties"]["created_at"], times)

    # the wall's figures: yesterday alone, and the last seven days
    today = datetime.date.today()
    day = lambda n: int(time.mktime((today - datetime.timedelta(days=n)).timetuple()))
    st, s1 = d.json("GET", q("/api/incidents/stats", level="district", **{"from": day(1)}, to=day(0)),
                    token=ctx["op"])
    assert st == 200, s1
    assert sum(u["total"] for u in s1["units"]) >= 20, s1
    st, s7 = d.json("GET", q("/api/incidents/stats", level="district", **{"from": day(7)},
                             to=int(time.time()) + 1), token=ctx["op"])
    unit = max(s7["units"], key=lambda u: u["total"])
    assert unit["finished"] > 0 and unit["rated"] > 0, unit
    assert 0 < unit["on_time_rate"] <= 1 and 1 <= unit["satisfaction"] <= 5, unit
    assert unit["handling_mean_s"] > 600, unit   # report → close took its time
    # yesterday's month: a whole day of cases in it even on the 1st
    month = (today - datetime.timedelta(days=1)).strftime("%Y-%m")
    st, rk = d.json("GET", q("/api/incidents/ranking", month=month), token=ctx["op"])
    assert st == 200 and rk["grids"] and rk["grids"][0]["score"] > rk["grids"][-1]["score"], rk

    # played twice: every case refuses its first step again, nothing doubles
    rc, so, se = script("demo_history.py", "play", out, "--api", api, "--token", ctx["root"])
    assert len(all_cases(ctx["op"])) == len(cases)


def new_case():
    """A 12345 order taken a day ago, as the hotline's export says."""
    t = int(time.time()) - 86400
    st, f = ctx["d"].json("POST", "/api/hotline", {
        "order_no": f"T{t}", "time": t, "content": "垃圾", "category": "暴露垃圾",
        "lon": 116.3262, "lat": 40.0032}, ctx["op"])
    assert st == 201, f
    assert f["properties"]["created_at"] == t, f["properties"]
    return f["id"], f["properties"]


def act(case, token, body):
    return ctx["d"].json("POST", f"/api/incidents/{case}/actions", body, token)


def test_at_and_steps_rules():
    case, p = new_case()
    now = int(time.time())
    # only an admin records the past; not the future, nor before the report
    expect_error(act(case, ctx["op"], {"action": "register", "at": now - 60}), 403, "at")
    expect_error(act(case, ctx["root"], {"action": "register", "at": now + 3600}), 400, "at")
    expect_error(act(case, ctx["root"], {"action": "register", "at": "yesterday"}), 400, "at")
    expect_error(act(case, ctx["root"], {"action": "register", "at": p["created_at"] - 10}),
                 400, "at")
    # steps: each in order; a refused one is named, the ones before it stay
    t = p["created_at"]
    st, body = act(case, ctx["root"], {"steps": [
        {"action": "register", "at": t}, {"action": "close", "at": t}]})
    err = expect_error((st, body), 409, "steps[1].action")
    assert err["allowed"] == ["dispatch"], err
    st, f = ctx["d"].json("GET", "/api/incidents/" + case, token=ctx["op"])
    assert f["properties"]["status"] == "registered"
    # a step before the last one is refused: the trail stays in order
    expect_error(act(case, ctx["root"], {"steps": [{"action": "dispatch", "at": t - 1}]}),
                 400, "steps[0].at")
    expect_error(act(case, ctx["root"], {"steps": []}), 400, "steps")
    expect_error(act(case, ctx["root"], {"steps": ["dispatch"]}), 400, "steps[0]")
    # a late step at a past time counts as overdue, as it would have then
    late = t + 2 * 3600   # dispatch's limit is an hour
    st, f = act(case, ctx["root"], {"steps": [{"action": "dispatch", "at": late},
                                              {"action": "handle", "at": late + 60,
                                               "result": "清运完毕"}]})
    assert st == 200 and f["properties"]["status"] == "handled", f
    assert f["properties"]["overdue_count"] == 1, f["properties"]
    st, f = ctx["d"].json("GET", "/api/incidents/" + case, token=ctx["op"])
    hist = [(h["action"], h["at"]) for h in f["properties"]["history"]]
    assert ("dispatch", late) in hist and ("handle", late + 60) in hist, hist


def test_case_simulator_moves_a_case():
    before = {c["case_no"] for c in all_cases(ctx["op"])}
    rc, so, se = script("simulate_cases.py", "--api", str(ctx["d"].port), "--tokens", ctx["tokens"],
                        "--layers", LAYERS, "--steps", "3", "--pace", "0", "--leave", "0",
                        "--seed", "3")
    assert rc == 0, so + se
    new = [c for c in all_cases(ctx["op"]) if c["case_no"] not in before]
    assert len(new) == 1 and new[0]["external_id"].startswith("SIM-"), new
    st, f = ctx["d"].json("GET", "/api/incidents/" + new[0]["case_no"], token=ctx["op"])
    hist = f["properties"]["history"]
    done = [h["action"] for h in hist if h["action"] != "report"]
    # three rounds: registered by the operator, dispatched, handled by the department
    assert done[:3] == ["register", "dispatch", "handle"], hist
    assert hist[1]["actor"] == "op" and hist[3]["role"] == "department", hist
    assert f["properties"]["status"] == "handled", f["properties"]["status"]


if __name__ == "__main__":
    setup()
    try:
        main([test_history_imported_and_played, test_at_and_steps_rules,
              test_case_simulator_moves_a_case])
    finally:
        ctx["d"].stop()
