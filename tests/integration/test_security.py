"""Regressions from an attacker's probe of the running daemon: one test per
finding, each failing on the build before its fix. (The HTTP framing, 431
and idle-connection findings are in test_hardening.py; the route table in
test_routes.py; Open311's anonymous view in test_open311.py.)"""
import concurrent.futures
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, TempDir, expect_error, main, run  # noqa: E402

ctx = {}


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    tok = ctx["tok"] = {}
    tok["op"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    tok["cg"] = run("user", "add", "cg", "--role", "department", "--department", "城管",
                    "--db", db, check=0)[1].strip()
    tok["hw"] = run("user", "add", "hw", "--role", "department", "--department", "环卫",
                    "--db", db, check=0)[1].strip()
    run("user", "add", "victim", "--role", "operator", "--password-stdin", "--db", db,
        stdin="correct horse battery\n", check=0)
    ctx["d"] = Daemon(db)


def alive():
    return ctx["d"].proc.poll() is None and ctx["d"].request("GET", "/api/health")[0] == 200


def raw(data, port=None):
    """Sends bytes on a fresh connection; returns what comes back."""
    s = socket.create_connection(("127.0.0.1", port or ctx["d"].port), timeout=10)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_categories_need_a_token():
    """GET /api/categories answered anyone; its twin /api/time-limits did not."""
    d = ctx["d"]
    expect_error(d.json("GET", "/api/categories"), 401, "Authorization")
    assert d.json("GET", "/api/categories", token=ctx["tok"]["op"])[0] == 200


def test_open311_empty_post_does_not_crash():
    """A POST with an empty form body, no token, killed the daemon."""
    out = raw(b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"
              b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403"), out[:200]
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body[0]["code"] == 403 and "api_key" in body[0]["description"], body
    assert alive()


def test_open311_non_utf8_path_does_not_crash():
    """A byte that is not UTF-8 in the path, no token, killed the daemon."""
    for path in (b"/open311/v2/\xff\xfe.json", b"/open311/v2/services/\xc3.xml",
                 b"/open311/v2/requests/2026-\xff.json"):
        out = raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 4"), (path, out[:200])
        body = out.split(b"\r\n\r\n", 1)[1]
        body.decode("utf-8")   # the answer is valid UTF-8 whatever was sent
        assert alive(), path


def test_parallel_wrong_passwords_are_limited():
    """Concurrent wrong passwords each got a full argon2id check and a 401:
    the 5-per-user limit did not hold. Attempts in flight now count."""
    d = ctx["d"]

    def attempt(i):
        return d.json("POST", "/api/login", {"username": "victim", "password": f"guess-{i}"})[0]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        answers = list(ex.map(attempt, range(16)))
    assert answers.count(401) <= 5, answers
    assert answers.count(429) >= 11, answers
    # and the right password is refused too while the limit holds
    st, body = d.json("POST", "/api/login", {"username": "victim", "password": "correct horse battery"})
    assert st == 429, (st, body)


def test_password_typed_as_user_name_is_not_logged():
    """A password typed into the user-name box reached the log."""
    d = ctx["d"]
    secret = "Tr0ub4dor&3-typed-in-the-wrong-box"
    st, _ = d.json("POST", "/api/login", {"username": secret, "password": "x"})
    assert st == 401
    assert secret not in d.logs(), "the typed name reached the log"
    assert "login failed user=(unknown)" in d.logs()


def test_department_reads_only_its_cases():
    """A department user could read any case by its number, the reporter's
    name and phone included. A case read follows the list's rule."""
    d = ctx["d"]
    op, cg, hw = ctx["tok"]["op"], ctx["tok"]["cg"], ctx["tok"]["hw"]
    st, case = d.json("POST", "/api/incidents", {
        "category": "E01", "description": "暴露垃圾", "lon": 116.3262, "lat": 40.0032,
        "reporter_name": "张三", "reporter_phone": "13800138000"}, token=op)
    assert st == 201, case
    no = case["properties"]["case_no"]
    for action, extra in (("register", {}), ("dispatch", {"department": "城管"})):
        st, body = d.json("POST", f"/api/incidents/{no}/actions", dict(extra, action=action), token=op)
        assert st == 200, body
    st, body = d.json("GET", f"/api/incidents/{no}", token=cg)
    assert st == 200 and body["properties"]["case_no"] == no, body
    err = expect_error(d.json("GET", f"/api/incidents/{no}", token=hw), 404, "id")
    assert "13800138000" not in json.dumps(err, ensure_ascii=False)
    case_id = str(case["id"])
    expect_error(d.json("GET", f"/api/incidents/{case_id}", token=hw), 404, "id")
    # acting on it gives nothing away either: a 403, not the case's status in a 409
    err = expect_error(d.json("POST", f"/api/incidents/{no}/actions", {"action": "close"}, token=hw),
                       403, "action")
    assert "allowed" not in err and "dispatched" not in err["message"], err
    # the list agrees
    st, lst = d.json("GET", "/api/incidents", token=hw)
    assert st == 200 and no not in [f["properties"]["case_no"] for f in lst["features"]]


def test_ogc_api_definition_needs_a_token():
    """/ogc/api (which lists every layer) answered anyone."""
    d = ctx["d"]
    expect_error(d.json("GET", "/ogc/api"), 401)
    assert d.request("GET", "/ogc/api", token=ctx["tok"]["op"])[0] == 200
    assert d.request("GET", "/ogc")[0] == 200   # the landing page stays open


def test_log_lines_are_text():
    """A path with bytes that are not UTF-8 (sent above) went into the log as
    they came; a log is one line of text an event."""
    with open(ctx["d"].log.name, "rb") as f:
        data = f.read()
    data.decode("utf-8")
    assert b"\x1b" not in data


def test_health_does_not_show_the_database_path():
    st, _, data = ctx["d"].request("GET", "/api/health")
    assert st == 200
    assert ctx["db"].encode() not in data and b"t.db" not in data, data[:300]


def teardown():
    ctx["d"].stop()
    ctx["tmp"].__exit__(None, None, None)


if __name__ == "__main__":
    setup()
    main([test_categories_need_a_token, test_open311_empty_post_does_not_crash,
          test_open311_non_utf8_path_does_not_crash, test_parallel_wrong_passwords_are_limited,
          test_password_typed_as_user_name_is_not_logged, test_department_reads_only_its_cases,
          test_ogc_api_definition_needs_a_token, test_log_lines_are_text, test_health_does_not_show_the_database_path,
          teardown])
