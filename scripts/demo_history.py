#!/usr/bin/env python3
"""Thirty days of plausible history for the demo district, brought in the
documented way: a 12345 export (the orders the hotline forwarded to the
district) imported with `gridcc hotline import`, then the district's handling
of each order (register, dispatch, handle, verify, close, the 回访 rating, a
rejection or a send-back now and then) recorded through the API as the steps
of each case at the times they happened (`POST /api/incidents/{id}/actions`
with `steps` and `at`, admin only). Cases whose next step would fall after
now stay open where they are; a few are left stuck on purpose, and the daemon
escalates those as overdue.

  scripts/demo_history.py generate --out data/demo-12345.csv [--days 30] [--seed 1]
        [--api http://127.0.0.1:8080] [--token ADMIN] [--layers layers] [--end UNIX]
      writes FILE.csv, FILE.map.json (the column map for --map) and
      FILE.steps.json (the handling of each order), from the catalogue and
      time limits the API serves and the buildings of layers/
  gridcc hotline import data/demo-12345.csv --db DB --map data/demo-12345.map.json
  scripts/demo_history.py play data/demo-12345.csv --api URL --token ADMIN
  scripts/demo_history.py all --db DB [--gridcc build/gridcc] …   (the three above)

Deterministic for a given --seed and --end. Standard library only.
"""
import argparse
import csv
import datetime
import gzip
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# ---- the API ----


class Api:
    def __init__(self, base, token):
        self.base = base.rstrip("/")
        if self.base.isdigit():
            self.base = f"http://127.0.0.1:{self.base}"
        self.token = token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"error": {"message": raw[:200].decode("utf-8", "replace")}}

    def wait(self, seconds=60):
        end = time.time() + seconds
        while True:
            try:
                if self.call("GET", "/api/health")[0] == 200:
                    return
            except OSError:
                pass
            if time.time() > end:
                sys.exit(f"demo_history: no answer from {self.base} within {seconds} s")
            time.sleep(0.2)


# ---- the district ----

def load_layers(layers):
    def read(name):
        path = os.path.join(layers, name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)["features"]

    names = {}
    parent = {}
    for layer in ("streets.geojson", "communities.geojson", "grids.geojson"):
        for f in read(layer):
            p = f["properties"]
            names[p["id"]] = p["name"]
            parent[p["id"]] = p.get("parent_code")
    buildings = []
    for f in read("buildings.geojson.gz"):
        p = f["properties"]
        ring = f["geometry"]["coordinates"][0]
        if f["geometry"]["type"] == "MultiPolygon":
            ring = ring[0]
        pts = ring[:-1]
        lon = sum(q[0] for q in pts) / len(pts)
        lat = sum(q[1] for q in pts) / len(pts)
        grid = p.get("parent_code")
        comm = parent.get(grid)
        street = parent.get(comm)
        buildings.append({"name": p["name"], "grid": grid, "lon": lon, "lat": lat,
                          "street": names.get(street, "")})
    return buildings


# ---- what people call about ----

PLACES = ["楼下", "门口", "东侧", "西侧", "南门附近", "北门附近", "旁边的路边", "后面的空地", "对面"]
SINCE = ["两三天", "一个星期", "好几天", "半个多月", "这几天", "最近一段时间"]
WHEN = ["每天晚上", "凌晨一两点", "早上六点多", "中午", "周末", "晚上十点以后"]
ASK = ["希望尽快处理。", "请相关部门尽快处理。", "希望有关部门管一管。", "请尽快派人来看看。",
       "居民意见很大，望尽快解决。", "多次反映未解决，请督办。"]

TEXTS = {
    "E01": ["{addr}{place}环境脏乱，{since}没人打扫，"],
    "E01.01": ["{addr}{place}有人私自搭建彩钢房，占用公共空间，", "{addr}顶楼有住户加盖违建，影响楼体安全，"],
    "E01.02": ["{addr}{place}垃圾堆了{since}没人清运，气味很大，", "{addr}{place}有暴露垃圾，招苍蝇，"],
    "E01.03": ["{addr}{place}堆了大量装修渣土，{since}无人清理，"],
    "E01.04": ["{addr}{place}路面很脏，落叶和垃圾{since}没人扫，"],
    "E01.05": ["{addr}附近的水沟水面漂着垃圾，发臭，"],
    "E01.06": ["{addr}{place}绿地里全是垃圾和狗粪，"],
    "E01.07": ["{addr}{place}有辆废弃汽车停了{since}，落满灰，轮胎都瘪了，"],
    "E01.08": ["{addr}{place}{when}有人焚烧垃圾和树叶，烟很大，"],
    "E02": ["{addr}{place}广告乱贴乱挂，"],
    "E02.01": ["{addr}楼道和{place}贴满了开锁、办证小广告，", "{addr}{place}电线杆上小广告很多，"],
    "E02.02": ["{addr}{place}商户违规悬挂大型广告牌匾，存在安全隐患，"],
    "E02.03": ["{addr}{place}有商户把广告牌摆在人行道上，挡路，"],
    "E02.04": ["{addr}{place}{when}有人散发健身卡、装修传单，"],
    "E03": ["{addr}{place}工地管理混乱，"],
    "E03.01": ["{addr}{place}工地{when}还在施工，噪音很大，影响休息，", "{addr}{place}夜间施工扰民，"],
    "E03.02": ["{addr}{place}工地没有覆盖防尘网，扬尘严重，"],
    "E03.03": ["{addr}{place}渣土车沿路遗撒，路面全是泥土，"],
    "E03.04": ["{addr}{place}堆放施工废料{since}，没人清运，"],
    "E03.05": ["{addr}{place}施工围挡占了半条路，行人只能走机动车道，"],
    "E04": ["{addr}{place}发生突发情况，"],
    "E04.01": ["{addr}{place}路面出现塌陷坑，很危险，", "{addr}{place}路面下沉开裂，"],
    "E04.02": ["{addr}{place}自来水管破裂，水一直往外冒，"],
    "E04.03": ["{addr}{place}闻到很重的燃气味，怀疑管道泄漏，"],
    "E04.04": ["{addr}{place}下水道堵塞，污水漫到路面，", "{addr}{place}下水道返味严重，"],
    "E04.05": ["{addr}{place}下雨后积水很深，车辆行人无法通行，"],
    "E04.06": ["{addr}{place}路面结冰，已经有老人滑倒，"],
    "E04.07": ["{addr}{place}有浓烟冒出，疑似着火，"],
    "E05": ["{addr}{place}街面秩序混乱，"],
    "E05.01": ["{addr}{place}{when}有无照游商摆摊，", "{addr}{place}流动摊贩占道卖水果，"],
    "E05.02": ["{addr}{place}饭店把桌椅摆到店外经营，", "{addr}{place}商户出店经营，占用人行道，"],
    "E05.03": ["{addr}{place}有人占道收废品，堆得到处都是，"],
    "E05.04": ["{addr}{place}机动车乱停放，堵住了消防通道，", "{addr}{place}有车长期占道停放，"],
    "E05.05": ["{addr}{place}共享单车堆积，人都过不去，"],
    "E05.06": ["{addr}{place}{when}有露天烧烤，油烟大，", "{addr}{place}烧烤摊油烟扰民，"],
    "E05.07": ["{addr}{place}{when}广场舞音响声音太大，", "{addr}{place}商户{when}用大喇叭叫卖，噪音扰民，"],
    "E05.08": ["{addr}{place}有流浪人员{since}露宿，需要救助，"],
    "C01": ["{addr}{place}公用设施损坏，"],
    "C01.01": ["{addr}{place}上水井盖破损，有人踩空的危险，"],
    "C01.02": ["{addr}{place}污水井盖缺失，很危险，", "{addr}{place}井盖松动，车一过就响，"],
    "C01.03": ["{addr}{place}雨水篦子被垃圾堵死了，"],
    "C01.04": ["{addr}{place}消防栓漏水，"],
    "C01.05": ["{addr}{place}路灯不亮{since}了，晚上走路不安全，", "{addr}{place}路灯白天一直亮着，"],
    "C02": ["{addr}{place}道路交通设施损坏，"],
    "C02.01": ["{addr}{place}路口红绿灯坏了，"],
    "C02.02": ["{addr}{place}交通标志牌被撞歪了，"],
    "C02.03": ["{addr}{place}道路护栏倒了一片，"],
    "C02.04": ["{addr}{place}公交站亭玻璃碎了，"],
    "C03": ["{addr}{place}环卫设施需要维修，"],
    "C03.01": ["{addr}{place}公共厕所没水、很脏，", "{addr}{place}公厕门锁坏了，"],
    "C03.02": ["{addr}{place}垃圾箱破损，垃圾满了溢出来，"],
    "C03.03": ["{addr}{place}垃圾楼味道很大，门也关不上，"],
    "C04": ["{addr}{place}绿化需要养护，"],
    "C04.01": ["{addr}{place}行道树歪倒，压着电线，", "{addr}{place}树枝挡住路灯和窗户，"],
    "C04.02": ["{addr}{place}绿地被人毁了种菜，"],
    "C05": ["{addr}外墙瓷砖脱落，下面有人经过，"],
    "C06": ["{addr}{place}健身器材损坏，"],
    "E99": ["{addr}{place}有情况需要反映，"],
}
RESULTS = {
    "城管": ["已派执法队员到场，责令当事人整改，现场已恢复。", "已联系责任单位当日处理完毕。",
            "执法队员现场核查属实，已依法处理并清理完毕。", "已协调物业和施工单位整改到位。"],
    "环卫": ["已安排保洁人员清运完毕，并增加保洁频次。", "环卫作业车已到场清理，路面恢复整洁。",
            "已清理并对设施进行了维修。"],
    "公安": ["民警已到场处置，当事人已纠正。", "已到场劝离并批评教育，现场秩序恢复。",
            "已联系车主挪车，并对违法停车开具罚单。"],
}
REJECT = ["非本辖区事项，已告知来电人向属地反映。", "重复工单，已并入前一工单办理。",
          "经核实不属实，现场无相关情况。"]
SEND_BACK = ["现场核查未处理到位，退回重办。", "居民反映问题仍存在，请重新处置。"]
COMMENTS = {5: ["处理很及时，满意。", "工作人员态度很好。", "问题解决了，谢谢。"],
            4: ["基本满意。", "处理了，就是慢了点。"],
            3: ["一般，问题还会反复。", "处理得不彻底。"],
            2: ["处理太慢了。", "不太满意，拖了很久。"],
            1: ["问题根本没解决。", "不满意。"]}

# each major class's share of the calls
WEIGHT = {"E01": 22, "E05": 24, "E02": 9, "E03": 8, "E04": 6, "C01": 11, "C02": 6, "C03": 6,
          "C04": 4, "C05": 1, "C06": 1, "E99": 2}
# calls by hour of day (local time), day and evening
HOURS = [0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 1.2, 2.2, 2.8, 2.6, 2.0,
         1.5, 1.8, 2.4, 2.5, 2.2, 1.8, 1.4, 1.6, 1.7, 1.3, 0.9, 0.5]
NIGHT = [1.0, 0.8, 0.5, 0.3, 0.2, 0.2, 0.4, 0.6, 0.6, 0.6, 0.6, 0.7,
         0.8, 0.7, 0.7, 0.8, 0.9, 1.2, 1.8, 2.6, 3.0, 3.2, 2.8, 1.8]
NIGHT_CATS = {"E05.06", "E05.07", "E03.01", "E05.01"}
WEEKDAY = [1.15, 1.05, 1.0, 1.0, 0.95, 0.8, 0.75]   # Monday first


def limit_of(limits, code, step):
    major = code.split(".")[0]
    for key in (code, major, "*"):
        if (key, step) in limits:
            return limits[(key, step)]
    return 3600


def fmt(t):
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def generate(a, api):
    rnd = random.Random(a.seed)
    end = int(a.end or time.time())
    st, cats = api.call("GET", "/api/categories")
    if st != 200:
        sys.exit(f"demo_history: GET /api/categories: {st} {cats}")
    cats = [c for c in cats["categories"] if c.get("active", 1)]
    by_code = {c["code"]: c for c in cats}
    st, lim = api.call("GET", "/api/time-limits")
    if st != 200:
        sys.exit(f"demo_history: GET /api/time-limits: {st} {lim}")
    limits = {(x["category"], x["step"]): x["seconds"] for x in lim["time_limits"]}
    parents = {c.get("parent") for c in cats}
    leaves = [c["code"] for c in cats if c["code"] not in parents]
    codes = sorted(by_code)
    # mostly the sub-classes; a major class now and then, as when a caller's
    # complaint fits no sub-class
    weights = []
    for code in codes:
        major = code.split(".")[0]
        share = WEIGHT.get(major, 1)
        siblings = sum(1 for x in leaves if x.split(".")[0] == major) or 1
        weights.append(share / siblings * (1.0 if code in leaves else 0.1))
    buildings = load_layers(a.layers)
    # some grids call far more than others (old estates, markets), and some
    # grids' units work faster: the ranking has something to rank
    grids = sorted({b["grid"] for b in buildings})
    busy = {g: rnd.lognormvariate(0, 0.7) for g in grids}
    slack = {g: rnd.uniform(0.5, 1.6) for g in grids}
    bweights = [busy[b["grid"]] for b in buildings]

    orders = []
    first_day = datetime.date.fromtimestamp(end) - datetime.timedelta(days=a.days - 1)
    for d in range(a.days):
        day = first_day + datetime.timedelta(days=d)
        midnight = int(time.mktime(day.timetuple()))
        trend = 0.85 + 0.3 * d / max(1, a.days - 1)
        n = int(round(min(60, max(20, 38 * WEEKDAY[day.weekday()] * trend * rnd.uniform(0.8, 1.2)))))
        for _ in range(n):
            code = rnd.choices(codes, weights)[0]
            hour = rnd.choices(range(24), NIGHT if code in NIGHT_CATS else HOURS)[0]
            t = midnight + hour * 3600 + rnd.randrange(3600)
            if t <= end - 300:
                orders.append([t, code])
    # every category at least once, at a random time of the history (a
    # short history gets a few more calls for it)
    start = int(time.mktime(first_day.timetuple()))
    while len(orders) < len(codes):
        orders.append([rnd.randrange(start, end - 300), codes[0]])
    for i, code in zip(rnd.sample(range(len(orders)), len(codes)), codes):
        orders[i][1] = code
    orders.sort()

    rows, steps = [], {}
    seq = {}
    for t, code in orders:
        b = rnd.choices(buildings, bweights)[0]
        key = fmt(t)[:10].replace("-", "")
        seq[key] = seq.get(key, 0) + 1
        order_no = f"{key}{seq[key]:04d}"
        place = rnd.choice(PLACES)
        addr = b["name"]
        text = rnd.choice(TEXTS.get(code) or TEXTS[code.split(".")[0]])
        content = text.format(addr=addr, place=place, since=rnd.choice(SINCE),
                              when=rnd.choice(WHEN)) + rnd.choice(ASK)
        cat_text = category_text(by_code, code)
        # most callers are placed by the phone's position, some only by what
        # they said the place was
        if rnd.random() < 0.75:
            lon = f"{b['lon'] + rnd.uniform(-6e-5, 6e-5):.6f}"
            lat = f"{b['lat'] + rnd.uniform(-5e-5, 5e-5):.6f}"
        else:
            lon = lat = ""
        rows.append({"工单编号": order_no, "受理时间": fmt(t), "诉求内容": content,
                     "地址": (b["street"] if rnd.random() < 0.4 else "") + addr + place,
                     "经度": lon, "纬度": lat, "诉求类别": cat_text})
        steps[order_no] = plan(rnd, t, end, code, by_code, limits, slack[b["grid"]])
    return rows, steps, {category_text(by_code, c): c for c in codes}


def category_text(by_code, code):
    """A 12345 class as exports write it: 市容环境-暴露垃圾."""
    major = code.split(".")[0]
    if code == major or major not in by_code:
        return by_code[code]["name"]
    return f"{by_code[major]['name']}-{by_code[code]['name']}"


def plan(rnd, t0, end, code, by_code, limits, slack):
    """The district's handling of one order: steps at the times they
    happened, stopping where the next would lie after now."""
    dept = by_code[code].get("department") or rnd.choice(["城管", "环卫", "公安"])
    late = 0

    def delay(step):
        nonlocal late
        lim = limit_of(limits, code, step)
        r = rnd.random()
        if r < 0.035 * slack * slack:   # over the limit: the step counts as overdue
            f = rnd.uniform(1.05, 2.5)
            late += 1
        elif r < 0.75:
            f = rnd.uniform(0.05, 0.5) * slack
        else:
            f = rnd.uniform(0.5, 0.95)
        return int(lim * f) + 30

    out = []
    t = t0
    stuck = rnd.random() < 0.05   # left where it is: it will run over and escalate
    route = ["register", "dispatch", "handle", "verify", "close"]
    if rnd.random() < 0.05:
        route = ["reject"]
    elif rnd.random() < 0.05:
        route = ["register", "dispatch", "handle", "send_back", "handle", "verify", "close"]
    if stuck:
        route = route[:rnd.randrange(0, len(route))]
    for act in route:
        t += delay({"reject": "register", "send_back": "verify"}.get(act, act))
        if t > end - 60:
            return out
        s = {"action": act, "at": t}
        if act == "dispatch":
            s["department"] = dept
        elif act == "handle":
            s["result"] = rnd.choice(RESULTS.get(dept, RESULTS["城管"]))
        elif act == "reject":
            s["note"] = rnd.choice(REJECT)
        elif act == "send_back":
            s["note"] = rnd.choice(SEND_BACK)
        out.append(s)
    if route and route[-1] == "close" and rnd.random() < 0.8:
        t += rnd.randrange(3600, 36 * 3600)   # the 回访 call
        if t <= end - 60:
            rating = rnd.choices([5, 4, 3, 2, 1], [55, 27, 10, 5, 3] if not late else
                                 [20, 30, 25, 15, 10])[0]
            out.append({"action": "evaluate", "at": t, "rating": rating,
                        "comment": rnd.choice(COMMENTS[rating]), "note": "12345 回访"})
    return out


FIELDS = ["工单编号", "受理时间", "诉求内容", "地址", "经度", "纬度", "诉求类别"]


def paths(out):
    base = out[:-4] if out.endswith(".csv") else out
    return base + ".csv", base + ".map.json", base + ".steps.json"


def cmd_generate(a):
    api = Api(a.api, a.token)
    api.wait()
    t0 = time.time()
    rows, steps, cat_map = generate(a, api)
    csv_path, map_path, steps_path = paths(a.out)
    os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    m = {"id": "工单编号", "time": "受理时间", "content": "诉求内容", "address": "地址",
         "lon": "经度", "lat": "纬度", "category": "诉求类别", "categories": cat_map,
         "default_category": "E99"}
    with open(map_path, "w", encoding="utf-8") as f:
        json.dump(m, f, ensure_ascii=False, indent=1)
    with open(steps_path, "w", encoding="utf-8") as f:
        json.dump(steps, f, ensure_ascii=False)
    n = sum(len(s) for s in steps.values())
    print(f"demo_history: {len(rows)} orders over {a.days} days, {n} steps of handling "
          f"-> {csv_path}, {map_path}, {steps_path} ({time.time() - t0:.1f} s)", flush=True)


def cmd_play(a):
    api = Api(a.api, a.token)
    api.wait()
    _, _, steps_path = paths(a.csv)
    with open(steps_path, encoding="utf-8") as f:
        steps = json.load(f)
    # the imported orders' cases, by order number
    ids, offset = {}, 0
    while True:
        st, fc = api.call("GET", f"/api/incidents?source=hotline&limit=10000&offset={offset}")
        if st != 200:
            sys.exit(f"demo_history: GET /api/incidents: {st} {fc}")
        for f in fc["features"]:
            p = f["properties"]
            if p.get("external_id"):
                ids[p["external_id"]] = p["case_no"]
        if len(fc["features"]) < 10000:
            break
        offset += 10000
    missing = [k for k in steps if k not in ids]
    if missing:
        sys.exit(f"demo_history: {len(missing)} orders of {steps_path} are not cases "
                 f"(first {missing[0]}); import the CSV first")
    tty = sys.stderr.isatty()
    t0 = time.time()
    done = refused = 0
    todo = [(k, v) for k, v in steps.items() if v]
    for i, (order, s) in enumerate(todo, 1):
        st, body = api.call("POST", f"/api/incidents/{urllib.parse.quote(ids[order])}/actions",
                            {"steps": s})
        if st == 200:
            done += len(s)
        else:
            refused += 1
            err = body.get("error", {}) if isinstance(body, dict) else {}
            if not (st == 409 and err.get("field") == "steps[0].action"):   # played before
                print(f"demo_history: order {order}: {st} {err.get('field')}: "
                      f"{err.get('message')}", file=sys.stderr, flush=True)
        if tty and (i % 50 == 0 or i == len(todo)):
            print(f"\rdemo_history: {i}/{len(todo)} cases, {done} steps", end="",
                  file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    print(f"demo_history: {done} steps on {len(todo)} cases recorded in {time.time() - t0:.1f} s"
          f"{f', {refused} cases refused' if refused else ''}", flush=True)
    return refused


def cmd_all(a):
    cmd_generate(a)
    csv_path, map_path, _ = paths(a.out)
    t0 = time.time()
    r = subprocess.run([a.gridcc, "hotline", "import", csv_path, "--db", a.db, "--map", map_path])
    if r.returncode:
        sys.exit(f"demo_history: gridcc hotline import exited {r.returncode}")
    print(f"demo_history: imported in {time.time() - t0:.1f} s", flush=True)
    a.csv = a.out
    return cmd_play(a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--api", default="http://127.0.0.1:8080", help="URL or port")
        p.add_argument("--token", default=os.environ.get("GRIDCC_TOKEN"),
                       help="an admin's token (default $GRIDCC_TOKEN)")

    def gen(p):
        p.add_argument("--out", default="data/demo-12345.csv")
        p.add_argument("--days", type=int, default=30)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--layers", default="layers")
        p.add_argument("--end", type=int, help="Unix time the history ends (default now)")

    g = sub.add_parser("generate", help="write the export, its column map and the steps")
    common(g)
    gen(g)
    p = sub.add_parser("play", help="record the steps of the imported orders' cases")
    common(p)
    p.add_argument("csv")
    al = sub.add_parser("all", help="generate, gridcc hotline import, play")
    common(al)
    gen(al)
    al.add_argument("--db", required=True)
    al.add_argument("--gridcc", default="build/gridcc")
    a = ap.parse_args()
    if not a.token:
        sys.exit("demo_history: --token (an admin's) is needed")
    if a.cmd == "generate":
        cmd_generate(a)
    elif a.cmd == "play":
        sys.exit(1 if cmd_play(a) else 0)
    else:
        sys.exit(1 if cmd_all(a) else 0)


if __name__ == "__main__":
    main()
