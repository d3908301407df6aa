"""The route table: every route the daemon registers, who may call it, and
what each kind of caller actually gets.

ROUTES below mirrors README's tables. The test reads the daemon's own table
(GET /api/routes, admin) and fails on a route missing from ROUTES, a route in
ROUTES the daemon does not have, or a declaration that differs. Then it calls
every route with no token, a wrong token, Basic credentials and a token of
each role, and checks the answers: 401 (with WWW-Authenticate naming Bearer
and Basic) where a credential is needed and none or a bad one was sent, 403
for a role the route does not take, and neither for a role it takes. Bodies
are empty JSON objects or forms, so no call changes anything."""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, TempDir, main, run  # noqa: E402

ROLES = ["operator", "worker", "planner", "admin", "department", "resident"]
STAFF = {"operator", "worker", "planner", "admin", "department"}
ANY = STAFF | {"resident"}
PUBLIC = "public"

# (method, path) -> (declared roles, concrete path to call, narrowed)
# declared: a set of role names ("anonymous" among them: no credential is
# needed, but one sent is checked) or PUBLIC. narrowed: roles the route lets
# through whose handler then refuses (403) by a rule of its own, as README
# says (a worker's own track, the loop's steps, Open311's key rules).
ROUTES = {
    ("GET", "/api/health"): (PUBLIC, "/api/health", set()),
    ("GET", "/api/routes"): ({"admin"}, "/api/routes", set()),
    ("POST", "/api/login"): (PUBLIC, "/api/login", set()),
    ("GET", "/api/me"): (ANY, "/api/me", set()),
    # revokes the token that calls it: checked last, by test_logout
    ("POST", "/api/logout"): (ANY, "/api/logout", set()),
    # the dashboard's files and the map's glyphs: the page holds no data
    ("GET", "/*"): (PUBLIC, "/", set()),
    ("GET", "/glyphs/*"): (PUBLIC, "/glyphs/Noto%20Sans%20Regular/0-255.pbf", set()),
    ("POST", "/api/users"): ({"admin"}, "/api/users", set()),
    ("POST", "/api/devices"): ({"admin", "operator"}, "/api/devices", set()),
    ("GET", "/api/devices"): ({"admin", "operator"}, "/api/devices", set()),
    ("GET", "/api/workers"): (STAFF, "/api/workers", set()),
    ("GET", "/api/workers/*"): (STAFF, "/api/workers/sim9/track", {"worker"}),
    ("PUT", "/api/workers/*"): ({"admin", "operator", "planner"}, "/api/workers/sim9/grids", set()),
    ("POST", "/api/positions"): ({"worker", "admin"}, "/api/positions", set()),
    ("GET", "/api/alerts"): (STAFF, "/api/alerts", set()),
    ("GET", "/api/units/*"): (STAFF, "/api/units/110108010001001/profile", set()),
    # replay: past windows (a worker's positions and area: their own only)
    ("GET", "/api/history/changes"): (STAFF, "/api/history/changes", set()),
    ("GET", "/api/history/positions"): (STAFF, "/api/history/positions", set()),
    ("GET", "/api/history/area"): (STAFF, "/api/history/area", set()),
    ("GET", "/api/history/incidents"): (ANY, "/api/history/incidents", set()),
    ("GET", "/api/geotag"): (ANY, "/api/geotag?lon=116.3262&lat=40.0032", set()),
    ("POST", "/api/geotag"): (ANY, "/api/geotag", set()),
    ("POST", "/api/hotline"): ({"operator", "admin"}, "/api/hotline", set()),
    ("GET", "/api/incidents"): (ANY, "/api/incidents", set()),
    ("POST", "/api/incidents"): (ANY - {"planner"}, "/api/incidents", set()),
    ("GET", "/api/incidents/*"): (ANY, "/api/incidents/2026-999999", set()),
    # the loop's own rules decide which step a role may take (409/403 naming the action)
    ("POST", "/api/incidents/*"): (ANY, "/api/incidents/2026-999999/actions", set()),
    ("GET", "/api/incidents/stats"): (STAFF, "/api/incidents/stats", set()),
    ("GET", "/api/incidents/ranking"): (STAFF, "/api/incidents/ranking", set()),
    ("GET", "/api/public/incidents"): (PUBLIC, "/api/public/incidents", set()),
    ("GET", "/api/photos/*"): (ANY, "/api/photos/" + "0" * 64, set()),
    ("GET", "/api/categories"): (ANY, "/api/categories", set()),
    ("PUT", "/api/categories/*"): ({"admin"}, "/api/categories/E99", set()),
    ("GET", "/api/time-limits"): (ANY, "/api/time-limits", set()),
    ("PUT", "/api/time-limits"): ({"admin"}, "/api/time-limits", set()),
    # Open311: anonymous callers get discovery and the public view; services
    # and POST need a key (api_key or a header); planners may not report
    ("GET", "/open311/v2/*"): (ANY | {"anonymous"}, "/open311/v2/requests.json", set()),
    ("POST", "/open311/v2/*"): (ANY | {"anonymous"}, "/open311/v2/requests.json",
                                {"planner", "anonymous"}),
    ("GET", "/open311/discovery.json"): (PUBLIC, "/open311/discovery.json", set()),
    ("GET", "/open311/discovery.xml"): (PUBLIC, "/open311/discovery.xml", set()),
    ("GET", "/ogc"): (PUBLIC, "/ogc", set()),
    ("GET", "/ogc/"): (PUBLIC, "/ogc/", set()),
    ("GET", "/ogc/conformance"): (PUBLIC, "/ogc/conformance", set()),
    ("GET", "/ogc/api"): (ANY, "/ogc/api", set()),
    ("GET", "/ogc/collections"): (ANY, "/ogc/collections", set()),
    ("GET", "/ogc/collections/*"): (ANY, "/ogc/collections/grid/items?limit=1", set()),
    # the camera registry: the desks read, admins write
    ("POST", "/api/cameras"): ({"admin"}, "/api/cameras", set()),
    ("GET", "/api/cameras"): (STAFF - {"worker"}, "/api/cameras", set()),
    ("GET", "/api/cameras/*"): (STAFF - {"worker"}, "/api/cameras/nope", set()),
    ("PUT", "/api/cameras/*"): ({"admin"}, "/api/cameras/nope", set()),
    ("DELETE", "/api/cameras/*"): ({"admin"}, "/api/cameras/nope", set()),
    ("GET", "/tiles"): (ANY, "/tiles", set()),
    ("GET", "/tiles/*"): (ANY, "/tiles/grid/14/13485/6203.pbf", set()),
    # no --basemap here: a 404 naming basemap, after the same roles as /tiles
    ("GET", "/basemap.json"): (ANY, "/basemap.json", set()),
    ("GET", "/basemap/*"): (ANY, "/basemap/14/13485/6203.png", set()),
    ("WS", "/live"): (STAFF, None, set()),
    # the camera registry (its branch left them out of this table)
    ("POST", "/api/cameras"): ({"admin"}, "/api/cameras", set()),
    ("GET", "/api/cameras"): ({"operator", "planner", "admin", "department"}, "/api/cameras",
                              set()),
    ("GET", "/api/cameras/*"): ({"operator", "planner", "admin", "department"},
                                "/api/cameras/none", set()),
    ("PUT", "/api/cameras/*"): ({"admin"}, "/api/cameras/none", set()),
    ("DELETE", "/api/cameras/*"): ({"admin"}, "/api/cameras/none", set()),
    ("WS", "/video/*"): ({"operator", "planner", "admin", "department"}, None, set()),
    ("GET", "/api/cameras/*/snapshot.jpg"): ({"operator", "planner", "admin", "department"},
                                             "/api/cameras/none/snapshot.jpg", set()),
}

ctx = {}


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["tok"] = {}
    for role in ROLES:
        extra = ["--department", "城管"] if role == "department" else []
        ctx["tok"][role] = run("user", "add", f"u-{role}", "--role", role, *extra,
                               "--db", db, check=0)[1].strip()
    ctx["d"] = Daemon(db)


def declared(entry):
    roles = entry["roles"]
    return PUBLIC if roles == [PUBLIC] else set(roles)


def test_table_matches_the_daemon():
    d = ctx["d"]
    st, body = d.json("GET", "/api/routes", token=ctx["tok"]["admin"])
    assert st == 200, body
    have = {(e["method"], e["path"]): declared(e) for e in body["routes"]}
    missing = sorted(set(have) - set(ROUTES))
    assert not missing, f"routes the daemon has that the table (and README) lack: {missing}"
    gone = sorted(set(ROUTES) - set(have))
    assert not gone, f"routes in the table the daemon does not have: {gone}"
    wrong = {k: (have[k], ROUTES[k][0]) for k in have if have[k] != ROUTES[k][0]}
    assert not wrong, f"declared roles differ from the table: {wrong}"
    ctx["checked"] = 0
    ctx["mismatches"] = []


def body_for(method):
    return {} if method in ("POST", "PUT") else None


def call(method, path, token=None, headers=None):
    return ctx["d"].request(method, path, body_for(method), token=token, headers=headers)


def note(cond, what):
    ctx["checked"] += 1
    if not cond:
        ctx["mismatches"].append(what)


LAST = {("POST", "/api/logout")}


def test_no_token_and_wrong_token():
    for (method, pattern), (roles, path, narrowed) in ROUTES.items():
        if path is None or (method, pattern) in LAST:
            continue
        st, hdrs, data = call(method, path)
        if roles == PUBLIC or "anonymous" in roles:
            bad = st == 401 or (st == 403 and "anonymous" not in narrowed)
            note(not bad, f"{method} {path} with no token: {st} {data[:120]!r}")
        else:
            note(st == 401, f"{method} {path} with no token: {st}, wanted 401")
            www = hdrs.get("www-authenticate", "").lower()
            note("bearer" in www and "basic" in www,
                 f"{method} {path}: 401 without both schemes in WWW-Authenticate: {www!r}")
        st, _, _ = call(method, path, token="gcc_not_a_real_token")
        if roles != PUBLIC:   # a public route looks at no credential
            note(st == 401, f"{method} {path} with a wrong token: {st}, wanted 401")
    assert not ctx["mismatches"], "\n".join(ctx["mismatches"])


def test_each_role():
    for (method, pattern), (roles, path, narrowed) in ROUTES.items():
        if path is None or (method, pattern) in LAST:
            continue
        for role in ROLES:
            st, _, data = call(method, path, token=ctx["tok"][role])
            if roles == PUBLIC or role in roles:
                ok = st not in (401, 403) or (st == 403 and role in narrowed)
                note(ok, f"{method} {path} as {role}: {st} {data[:160]!r}")
            else:
                note(st == 403, f"{method} {path} as {role}: {st}, wanted 403: {data[:120]!r}")
    assert not ctx["mismatches"], "\n".join(ctx["mismatches"])
    print(f"route table: {len(ROUTES)} routes, {ctx['checked']} calls checked, "
          f"{len(ctx['mismatches'])} mismatches", flush=True)


def test_logout():
    """POST /api/logout: 401 without a valid token; with one, 204, and that
    token no longer works anywhere (each role's token is spent here, last)."""
    d = ctx["d"]
    st, hdrs, _ = call("POST", "/api/logout")
    assert st == 401 and "bearer" in hdrs.get("www-authenticate", "").lower(), st
    assert call("POST", "/api/logout", token="gcc_not_a_real_token")[0] == 401
    for role in ROLES:
        tok = ctx["tok"][role]
        assert call("GET", "/api/me", token=tok)[0] == 200, role
        st, _, data = call("POST", "/api/logout", token=tok)
        assert st == 204, (role, st, data[:200])
        st, _, _ = call("GET", "/api/me", token=tok)
        assert st == 401, f"{role}'s token still works after sign-out: {st}"
        assert call("POST", "/api/logout", token=tok)[0] == 401, role


def test_basic_auth():
    """QGIS can send only HTTP Basic: a user name and one of their tokens."""
    d = ctx["d"]

    def basic(user, secret):
        raw = f"{user}:{secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    tok = ctx["tok"]["planner"]
    st, _, data = d.request("GET", "/ogc/collections", headers=basic("u-planner", tok))
    assert st == 200, (st, data[:200])
    st, _, _ = d.request("GET", "/api/users", headers=basic("u-planner", tok))
    assert st in (403, 404, 405), st   # GET of a POST-only path: the page route answers 404
    # another user's name with this token, a wrong token, junk
    for h in (basic("u-admin", tok), basic("u-planner", "gcc_wrong"),
              {"Authorization": "Basic !!!"}, {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}):
        st, hdrs, _ = d.request("GET", "/ogc/collections", headers=h)
        assert st == 401, (h, st)
        assert "basic" in hdrs.get("www-authenticate", "").lower()


def test_basic_guessing_is_limited():
    """Guessing name:token pairs is limited like guessing passwords: after
    20 failures from an address, 429 with Retry-After, even for a right one."""
    d = ctx["d"]
    raw = base64.b64encode(b"u-admin:gcc_guess").decode()
    seen = []
    for _ in range(25):
        st, hdrs, _ = d.request("GET", "/api/me", headers={"Authorization": "Basic " + raw})
        seen.append(st)
    # test_basic_auth already failed 4 times from this address
    first = seen.index(429) if 429 in seen else len(seen)
    assert first == 16 and set(seen[:first]) == {401} and set(seen[first:]) == {429}, seen
    good = base64.b64encode(f"u-admin:{ctx['tok']['admin']}".encode()).decode()
    st, hdrs, _ = d.request("GET", "/api/me", headers={"Authorization": "Basic " + good})
    assert st == 429 and int(hdrs.get("retry-after", "0")) > 0, (st, hdrs)
    # bearer tokens (256 random bits) are not locked out with it
    assert d.request("GET", "/api/me", token=ctx["tok"]["admin"])[0] == 200


def teardown():
    ctx["d"].stop()
    ctx["tmp"].__exit__(None, None, None)


if __name__ == "__main__":
    setup()
    main([test_table_matches_the_daemon, test_no_token_and_wrong_token, test_each_role,
          test_basic_auth, test_basic_guessing_is_limited, test_logout, teardown])
