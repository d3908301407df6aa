"""QGIS itself reading gridcc's OGC API with HTTP Basic, headless.

Not in the CI list: QGIS is a large install (apt-get install qgis
python3-qgis), so this runs by hand on a machine that has it:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis/test_qgis_basic.py

It stores a Basic configuration (a planner's name, one of their tokens as the
password) in a QGIS authentication database of its own, as a planner does in
QGIS's settings, opens the sample district's layers through QGIS's OAPIF
provider with that configuration, and checks that every feature arrives;
then the same with a wrong token, which QGIS must fail to open."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Daemon, TempDir, main, run  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (QgsApplication, QgsAuthMethodConfig,  # noqa: E402
                       QgsVectorLayer)

ctx = {}


def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = os.path.join(d, "t.db")
    run("seed", "--db", db, check=0)
    ctx["tok"] = run("user", "add", "planner1", "--role", "planner", "--db", db,
                     check=0)[1].strip()
    ctx["d"] = Daemon(db)
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = tempfile.mkdtemp(prefix="qgis-auth-", dir=d)
    app = QgsApplication([], False)
    app.initQgis()
    ctx["app"] = app
    am = QgsApplication.authManager()
    assert am.setMasterPassword("master-for-this-test", True), "no QGIS master password"


def auth_config(user, password):
    c = QgsAuthMethodConfig("Basic")
    c.setName(f"gridcc {user}")
    c.setConfig("username", user)
    c.setConfig("password", password)
    ok, c = QgsApplication.authManager().storeAuthenticationConfig(c)
    assert ok and c.id(), "QGIS did not store the Basic configuration"
    return c.id()


def layer(name, cfg):
    uri = (f"url='http://127.0.0.1:{ctx['d'].port}/ogc' typename='{name}' "
           f"authcfg={cfg} pagingEnabled='true' preferCoordinatesForWfsT11='false'")
    return QgsVectorLayer(uri, name, "OAPIF")


def expected(name):
    st, body = ctx["d"].json("GET", f"/ogc/collections/{name}/items?limit=1",
                             token=ctx["tok"])
    assert st == 200, (st, body)
    return body["numberMatched"]


def test_layers_with_basic():
    cfg = auth_config("planner1", ctx["tok"])
    for name in ("grid", "building"):
        want = expected(name)
        t0 = time.time()
        lyr = layer(name, cfg)
        assert lyr.isValid(), f"QGIS could not open {name}: {lyr.error().summary()}"
        got = sum(1 for _ in lyr.getFeatures())
        print(f"     QGIS read {got} of {want} {name} in {time.time() - t0:.1f} s")
        assert got == want, (name, got, want)


def test_wrong_token_is_refused():
    cfg = auth_config("planner1", "gcc_not_this_one")
    lyr = layer("grid", cfg)
    got = sum(1 for _ in lyr.getFeatures()) if lyr.isValid() else 0
    assert not lyr.isValid() or got == 0, f"read {got} grids with a wrong token"
    logs = ctx["d"].logs()
    assert " 401 " in logs or "status=401" in logs, logs[-2000:]


if __name__ == "__main__":
    setup()
    try:
        main([test_layers_with_basic, test_wrong_token_is_refused])
    finally:
        ctx["d"].stop()
        ctx["tmp"].__exit__()
