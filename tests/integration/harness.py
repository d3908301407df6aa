"""Shared pieces of the integration tests: start the real gridcc daemon on a
temporary SpatiaLite file, talk to it with real HTTP clients, report like a
test runner. Standard library only (Debian's python3)."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BIN = os.environ.get("GRIDCC_BIN", "build/gridcc")
DATA = os.environ.get("GRIDCC_TEST_DATA", "tests/data")
LAYERS = os.environ.get("GRIDCC_LAYERS", "layers")


def run(*args, stdin=None, check=None):
    """Runs the gridcc CLI; returns (exit status, stdout, stderr)."""
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"gridcc {' '.join(args)} exited {p.returncode}, wanted {check}:\n"
                             f"{p.stdout}\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """gridcc serve on a free port; waits until /api/health answers."""

    def __init__(self, db, *extra, log_dir=None):
        self.port = free_port()
        # log_dir: away from a database on a disk a test fills
        base = os.path.join(log_dir, os.path.basename(db)) if log_dir else db
        self.log = open(base + f".{self.port}.log", "w+")
        if "--osmand-port" not in extra:   # any free port, so daemons run side by side
            extra = ("--osmand-port", "0", *extra)
        self.proc = subprocess.Popen([BIN, "serve", "--db", db, "--port", str(self.port), *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited early:\n" + self.logs())
            try:
                if self.request("GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError("daemon did not answer within 60 s:\n" + self.logs())
            time.sleep(0.05)
        health = json.loads(self.request("GET", "/api/health")[2])
        self.osmand_port = health.get("osmand_port", 0)

    def request(self, method, path, body=None, token=None, headers=None, timeout=60):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def json(self, method, path, body=None, token=None, headers=None):
        status, hdrs, data = self.request(method, path, body, token, headers)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            raise AssertionError(f"{method} {path}: not JSON ({status}): {data[:200]!r}")

    def logs(self):
        if self.log.closed:
            return self.final_log
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                # a sanitizer build checks for leaks on the way out
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.final_log = self.logs()
            self.log.close()
        return self.proc.returncode


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def expect_error(resp, status, field=None):
    """Asserts an error answer of the documented shape naming the field."""
    st, body = resp
    assert st == status, f"wanted {status}, got {st}: {body}"
    err = body["error"]
    assert err["status"] == status and err["code"] and err["message"], body
    if field is not None:
        assert err["field"] == field, f"wanted field {field!r}: {body}"
    return err


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="gridcc-it-")
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


def main(tests):
    """Runs test functions in order; prints 'N passed, N failed'."""
    passed = failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.time() - t0:.1f} s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
