#!/usr/bin/env python3
"""Simulated residents, operators and departments for the demo: about once a
minute a new case comes in (a resident's report, or a 12345 call an operator
enters, through POST /api/incidents) at a building
of the district, and the operator and department users take each open case
of theirs round the loop at a demo pace (register, dispatch, handle, verify,
close, the rating), through the real API. Now and then one is rejected, sent
back, or left alone to run over its time limit and escalate.

  scripts/simulate_cases.py --api 8080 --tokens data/gridcc.db.sim.txt
        [--every 60] [--pace 1] [--seed N] [--layers layers]
        [--steps N]   (N rounds without waiting, then exit: for tests)

The tokens file has `name role token [department]` lines for the users
scripts/run.sh creates (sim-op, sim-resident, sim-城管 …). Only cases this
simulator filed (external id SIM-…) are touched, so an operator's own cases
on the wall stay theirs. Standard library only.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_history import (ASK, COMMENTS, PLACES, REJECT, RESULTS, SEND_BACK, SINCE,  # noqa: E402
                          TEXTS, WEIGHT, WHEN, Api, load_layers)

# seconds each step waits at pace 1: (least, most)
DELAY = {"reported": (20, 120), "registered": (20, 90), "dispatched": (60, 360),
         "handled": (30, 120), "verified": (20, 60), "closed": (60, 300)}
OPEN = "reported,registered,dispatched,handled,verified,closed"


def read_tokens(path):
    users = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                users[parts[0]] = {"role": parts[1], "token": parts[2],
                                   "department": parts[3] if len(parts) > 3 else None}
    return users


class Sim:
    def __init__(self, a):
        self.a = a
        self.rnd = random.Random(a.seed)
        users = read_tokens(a.tokens)
        role = {}
        self.depts = {}
        for name, u in users.items():
            role.setdefault(u["role"], Api(a.api, u["token"]))
            if u["role"] == "department" and u["department"]:
                self.depts[u["department"]] = Api(a.api, u["token"])
        if "operator" not in role:
            sys.exit(f"simulate_cases: {a.tokens} names no operator")
        self.op = role["operator"]
        self.resident = role.get("resident")
        self.op.wait()
        st, cats = self.op.call("GET", "/api/categories")
        if st != 200:
            sys.exit(f"simulate_cases: GET /api/categories: {st} {cats}")
        cats = [c for c in cats["categories"] if c.get("active", 1)]
        parents = {c.get("parent") for c in cats}
        self.cats = {c["code"]: c for c in cats}
        self.leaves = [c["code"] for c in cats if c["code"] not in parents]
        self.weights = [WEIGHT.get(c.split(".")[0], 1) for c in self.leaves]
        self.buildings = load_layers(a.layers)
        self.due = {}        # case_no → (status, when its next step is due)
        self.left = set()    # cases left to run over their limit
        self.serial = int(time.time())
        self.moved = 0

    def report(self):
        r = self.rnd
        code = r.choices(self.leaves, self.weights)[0]
        b = r.choice(self.buildings)
        text = r.choice(TEXTS.get(code) or TEXTS[code.split(".")[0]])
        desc = text.format(addr=b["name"], place=r.choice(PLACES), since=r.choice(SINCE),
                           when=r.choice(WHEN)) + r.choice(ASK)
        lon = round(b["lon"] + r.uniform(-6e-5, 6e-5), 6)
        lat = round(b["lat"] + r.uniform(-5e-5, 5e-5), 6)
        self.serial += 1
        ext = f"SIM-{self.serial}"
        # a resident's own report, or a 12345 call the operator enters
        by_resident = self.resident and r.random() < 0.6
        st, body = (self.resident if by_resident else self.op).call("POST", "/api/incidents", {
            "category": code, "description": desc, "lon": lon, "lat": lat,
            "address": b["name"], "external_id": ext,
            "source": "resident" if by_resident else "hotline"})
        if st not in (200, 201):
            print(f"simulate_cases: report refused: {st} {body}", file=sys.stderr, flush=True)
            return None
        case = body["properties"]["case_no"]
        print(f"simulate_cases: new case {case} {code} at {b['name']}", flush=True)
        return case

    def step(self, p):
        """The next step of one case, by whom it falls to."""
        r = self.rnd
        case, status = p["case_no"], p["status"]
        api, body = self.op, None
        if status == "reported":
            if r.random() < 0.04:
                body = {"action": "reject", "note": r.choice(REJECT)}
            else:
                body = {"action": "register"}
        elif status == "registered":
            dept = p.get("department")
            if dept not in self.depts and self.depts:
                dept = r.choice(sorted(self.depts))
            body = {"action": "dispatch", "department": dept}
        elif status == "dispatched":
            api = self.depts.get(p.get("department"))
            if not api:
                return False
            body = {"action": "handle",
                    "result": r.choice(RESULTS.get(p.get("department"), RESULTS["城管"]))}
        elif status == "handled":
            body = ({"action": "send_back", "note": r.choice(SEND_BACK)} if r.random() < 0.06
                    else {"action": "verify"})
        elif status == "verified":
            body = {"action": "close"}
        elif status == "closed":
            rating = r.choices([5, 4, 3, 2, 1], [55, 27, 10, 5, 3])[0]
            body = {"action": "evaluate", "rating": rating, "comment": r.choice(COMMENTS[rating])}
            if p.get("source") == "resident":
                api = self.resident
        if not api or not body:
            return False
        st, ans = api.call("POST", f"/api/incidents/{case}/actions", body)
        if st != 200:
            # someone on the wall took the step first: that is their right
            print(f"simulate_cases: {case} {body['action']}: {st} "
                  f"{(ans or {}).get('error', {}).get('message')}", file=sys.stderr, flush=True)
            return False
        self.moved += 1
        print(f"simulate_cases: {case} {status} -> {ans['properties']['status']}", flush=True)
        return True

    def drive(self, now):
        # the cases of the last two days only: the 30 days of imported
        # history are not ours to drive, and listing them every 5 s cost
        # ~465 KB a round (a simulated case is closed within hours)
        since = int(time.time()) - 2 * 86400
        st, fc = self.op.call("GET", f"/api/incidents?status={OPEN}&from={since}&limit=10000")
        if st != 200:
            print(f"simulate_cases: listing cases: {st}", file=sys.stderr, flush=True)
            return
        for f in fc["features"]:
            p = f["properties"]
            if not str(p.get("external_id") or "").startswith("SIM-"):
                continue
            case, status = p["case_no"], p["status"]
            if case in self.left:
                continue
            seen = self.due.get(case)
            if not seen or seen[0] != status:
                if status == "reported" and not seen and self.rnd.random() < self.a.leave:
                    self.left.add(case)   # nobody picks it up: it will escalate
                    continue
                lo, hi = DELAY[status]
                self.due[case] = (status, now + self.rnd.uniform(lo, hi) * self.a.pace)
                seen = self.due[case]
            if seen[1] <= now:
                self.step(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--api", default="8080", help="URL or port")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--layers", default="layers")
    ap.add_argument("--every", type=float, default=60, help="seconds between new cases, about")
    ap.add_argument("--pace", type=float, default=1.0, help="scales the waits between steps")
    ap.add_argument("--leave", type=float, default=0.05, help="share of cases left to go overdue")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--steps", type=int, default=0, help="rounds without waiting, then exit")
    a = ap.parse_args()
    sim = Sim(a)
    if a.steps:
        sim.report()
        for i in range(a.steps):
            sim.drive(float("inf") if a.pace == 0 else time.time())
        print(f"simulate_cases: {sim.moved} steps taken", flush=True)
        sys.exit(0 if sim.moved else 1)
    print(f"simulate_cases: a new case every ~{a.every:.0f} s, operators and departments "
          f"{', '.join(sorted(sim.depts))} at work", flush=True)
    next_report = time.time()
    while True:
        now = time.time()
        if now >= next_report:
            sim.report()
            next_report = now + a.every * sim.rnd.uniform(0.5, 1.5)
        try:
            sim.drive(now)
        except OSError as e:
            print(f"simulate_cases: {e}; retrying", file=sys.stderr, flush=True)
        time.sleep(5)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
