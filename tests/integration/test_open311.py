#!/usr/bin/env python3
"""Open311 GeoReport v2 from the client side: a plain Open311 client written
from the published specification (wiki.open311.org/GeoReport_v2, Service
Discovery, JSON and XML Conversion / Spark convention), talking to the real
daemon. Covers service discovery, GET services and service definitions in JSON
and XML, POST service request (form-encoded) in both formats, location by
lat/long and by address_string, the error format, GET a request / requests
with every filter, tokens, and a request closed through gridcc's own incident
loop showing up as status=closed.

Standard library only. No server code was read to write this: where the spec
leaves a choice open the reading taken is named next to the assertion."""
import json
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from harness import LAYERS, Daemon, TempDir, main, run

BASE = "/open311/v2"
# The spec does not say which 2xx a successful POST Service Request answers;
# its examples carry no status line. Reading: 200 (what deployed GeoReport v2
# servers answer and clients expect).
POST_OK = 200
UTC = timezone.utc
CST = timezone(timedelta(hours=8))

REQUEST_FIELDS = ("service_request_id", "status", "status_notes", "service_name", "service_code",
                  "description", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
                  "lat", "long", "media_url")
SERVICE_FIELDS = ("service_code", "service_name", "description", "metadata", "type", "keywords",
                  "group")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")

# points in the sample district (Haidian)
P1 = (40.0032, 116.3262)                 # lat, long
P2 = (40.0178, 116.3460)                 # next to 松清园小区1号楼
BUILDING = "松清园小区1号楼"

ctx = {}


# ---------------------------------------------------------------- helpers

def is_id(v):
    """service_code, service_request_id, token, address_id, zipcode, error
    code: the spec's JSON examples show bare numbers, and the spec community
    clarified ids need not be integers, so a non-empty string or an integer."""
    return (isinstance(v, str) and v.strip() != "") or (isinstance(v, int) and not isinstance(v, bool))


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def opt_str(v):
    return v is None or isinstance(v, str)


W3C = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_w3c(s, what="datetime"):
    """The spec: 'a common subset of ISO 8601 as per the w3 note; timezone
    information (either Z or an HH:MM offset) must be included'. Reading:
    full date, hours, minutes and seconds, optional fraction, then Z or
    +HH:MM/-HH:MM (no offset-less times, no +HHMM)."""
    assert isinstance(s, str), f"{what}: not a string: {s!r}"
    m = W3C.match(s)
    assert m, f"{what}: not a W3C datetime with a timezone: {s!r}"
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    micro = min(int(round(float(m.group(7)) * 1e6)), 999999) if m.group(7) else 0
    tz = m.group(8)
    if tz == "Z":
        off = timedelta(0)
    else:
        sign = 1 if tz[0] == "+" else -1
        off = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return datetime(y, mo, d, h, mi, se, micro, tzinfo=timezone(off))


def w3c(dt, tz=UTC):
    """A W3C datetime for a query: Z for UTC, +HH:MM otherwise."""
    dt = dt.astimezone(tz)
    if tz is UTC:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    off = dt.utcoffset()
    sign = "+" if off >= timedelta(0) else "-"
    mins = abs(int(off.total_seconds())) // 60
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{mins // 60:02d}:{mins % 60:02d}"


def encode_form(pairs, raw_brackets=False):
    """application/x-www-form-urlencoded as a browser would send it (brackets
    in attribute[...] names percent-encoded), or with the brackets raw as in
    the spec's example request."""
    safe = "[]" if raw_brackets else ""
    return "&".join(urllib.parse.quote_plus(k, safe=safe) + "=" + urllib.parse.quote_plus(v)
                    for k, v in pairs)


def call(method, path, params=None, form=None, raw_brackets=False, key=True):
    """A GET carries the client's api_key (an operator's token, as a command
    center's own Open311 tools are set up) unless key=False: anonymous
    callers get only the public view, tested on its own below."""
    url = BASE + path
    if method == "GET" and key and "api_key" not in (params or {}):
        params = dict(params or {}, api_key=ctx["op"])
    if params:
        url += "?" + urllib.parse.urlencode(params)
    headers = {}
    body = None
    if form is not None:
        body = encode_form(form, raw_brackets)
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    return ctx["d"].request(method, url, body=body, headers=headers)


def content_type(hdrs):
    parts = [p.strip() for p in hdrs.get("content-type", "").split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params.get("charset")


def as_json(resp, what):
    """The spec: JSON is Content-Type application/json, UTF-8 everywhere.
    Reading: the charset parameter may be left out, but if given is utf-8."""
    st, hdrs, data = resp
    mt, cs = content_type(hdrs)
    assert mt == "application/json", f"{what}: Content-Type {hdrs.get('content-type')!r} ({st}): {data[:200]!r}"
    assert cs in (None, "utf-8"), f"{what}: charset {cs!r}"
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise AssertionError(f"{what}: not UTF-8 JSON ({st}): {data[:300]!r}")


def strip_ns(tag):
    # the spec allows (but discourages) the default namespace
    # http://wiki.open311.org/GeoReport_v2; compare local names
    return tag.split("}", 1)[-1]


def as_xml(resp, what):
    """The spec: XML is Content-Type text/xml, and 'the root element must be
    preceded with the XML declaration including the encoding="UTF-8"
    attribute'. Reading: text/xml exactly (not application/xml); the encoding
    attribute value compared case-insensitively."""
    st, hdrs, data = resp
    mt, cs = content_type(hdrs)
    assert mt == "text/xml", f"{what}: Content-Type {hdrs.get('content-type')!r} ({st}): {data[:200]!r}"
    assert cs in (None, "utf-8"), f"{what}: charset {cs!r}"
    head = data.lstrip(b"\xef\xbb\xbf")
    assert head.startswith(b"<?xml"), f"{what}: no XML declaration: {data[:100]!r}"
    decl = head[:head.index(b"?>") + 2]
    assert re.search(rb"""encoding\s*=\s*["']utf-8["']""", decl, re.I), f"{what}: declaration {decl!r}"
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise AssertionError(f"{what}: XML does not parse ({e}): {data[:300]!r}")


def flat(el):
    """child local name -> text; an empty element (<account_id/>) is None."""
    out = {}
    for c in el:
        t = c.text
        out[strip_ns(c.tag)] = t if t is not None and t.strip() != "" else None
    return out


def xml_list(root, container, item, what):
    assert strip_ns(root.tag) == container, f"{what}: root <{root.tag}>, wanted <{container}>"
    kids = list(root)
    assert all(strip_ns(k.tag) == item for k in kids), f"{what}: children {[k.tag for k in kids]}"
    return kids


def expect_errors_json(resp, status, mention=None, what=""):
    """The spec's error answer: HTTP status (404 missing resource, 403 wrong or
    missing api_key, 400 anything else) and a body that is an array of
    {code, description}. The code 'in most cases should match' the HTTP status
    but need not, so only its presence is checked; the description is meant
    for the user, and where the spec says 'specify in error response' it must
    name the parameter (mention)."""
    st, hdrs, data = resp
    assert st == status, f"{what}: wanted HTTP {status}, got {st}: {data[:300]!r}"
    body = as_json(resp, what)
    assert isinstance(body, list) and body, f"{what}: errors are not a non-empty array: {body!r}"
    for e in body:
        assert isinstance(e, dict) and "code" in e and "description" in e, f"{what}: {e!r}"
        assert is_id(e["code"]), f"{what}: error code {e['code']!r}"
        assert isinstance(e["description"], str) and e["description"].strip(), f"{what}: {e!r}"
    if mention:
        assert any(re.search(mention, e["description"], re.I) for e in body), \
            f"{what}: no error description names {mention!r}: {body!r}"
    return body


def expect_errors_xml(resp, status, mention=None, what=""):
    st, hdrs, data = resp
    assert st == status, f"{what}: wanted HTTP {status}, got {st}: {data[:300]!r}"
    root = as_xml(resp, what)
    errs = xml_list(root, "errors", "error", what)
    assert errs, f"{what}: <errors> is empty"
    descs = []
    for e in errs:
        f = flat(e)
        assert f.get("code"), f"{what}: <error> without <code>: {f}"
        assert f.get("description"), f"{what}: <error> without <description>: {f}"
        descs.append(f["description"])
    if mention:
        assert any(re.search(mention, d, re.I) for d in descs), f"{what}: {descs!r} names no {mention!r}"
    return errs


def get_json_ok(path, params=None, what=None):
    resp = call("GET", path, params)
    what = what or f"GET {path} {params or ''}"
    assert resp[0] == 200, f"{what}: {resp[0]}: {resp[2][:300]!r}"
    return as_json(resp, what)


def get_xml_ok(path, params=None, what=None):
    resp = call("GET", path, params)
    what = what or f"GET {path} {params or ''}"
    assert resp[0] == 200, f"{what}: {resp[0]}: {resp[2][:300]!r}"
    return as_xml(resp, what)


def qid(v):
    return urllib.parse.quote(str(v), safe="")


def check_request_json(r, what):
    """One request of GET Service Request(s). Reading: following the Spark
    convention and the spec's examples, every field the spec lists is present,
    null when the server has nothing for it ('may not be returned' fields
    included)."""
    assert isinstance(r, dict), f"{what}: {r!r}"
    missing = [f for f in REQUEST_FIELDS if f not in r]
    assert not missing, f"{what}: fields missing {missing}: {r!r}"
    assert is_id(r["service_request_id"]), f"{what}: service_request_id {r['service_request_id']!r}"
    assert r["status"] in ("open", "closed"), f"{what}: status {r['status']!r}"
    assert isinstance(r["service_name"], str) and r["service_name"].strip(), f"{what}: {r!r}"
    assert is_id(r["service_code"]), f"{what}: service_code {r['service_code']!r}"
    for f in ("status_notes", "description", "agency_responsible", "service_notice", "address",
              "media_url"):
        assert opt_str(r[f]), f"{what}: {f} is {r[f]!r}"
    for f in ("address_id", "zipcode"):
        assert r[f] is None or is_id(r[f]), f"{what}: {f} is {r[f]!r}"
    req = parse_w3c(r["requested_datetime"], f"{what}: requested_datetime")
    upd = parse_w3c(r["updated_datetime"], f"{what}: updated_datetime")
    assert upd >= req, f"{what}: updated_datetime {r['updated_datetime']} before requested {r['requested_datetime']}"
    if r["expected_datetime"] is not None:
        parse_w3c(r["expected_datetime"], f"{what}: expected_datetime")
    assert (r["lat"] is None) == (r["long"] is None), f"{what}: lat {r['lat']!r} long {r['long']!r}"
    if r["lat"] is not None:
        # Reading: numbers in JSON, as in the spec's examples
        assert is_num(r["lat"]) and is_num(r["long"]), f"{what}: lat/long not numbers: {r['lat']!r} {r['long']!r}"
        assert -90 <= r["lat"] <= 90 and -180 <= r["long"] <= 180, f"{what}: {r['lat']} {r['long']}"
    return req, upd


def same_request(j, x, what):
    """The XML of a request says what its JSON says."""
    xf = flat(x)
    missing = [f for f in REQUEST_FIELDS if f not in xf]
    assert not missing, f"{what}: XML <request> lacks {missing}: {xf}"
    for f in REQUEST_FIELDS:
        jv, xv = j[f], xf[f]
        if f in ("lat", "long"):
            assert (jv is None) == (xv is None), f"{what}: {f} JSON {jv!r} XML {xv!r}"
            if jv is not None:
                assert abs(float(xv) - jv) < 1e-9, f"{what}: {f} JSON {jv!r} XML {xv!r}"
        else:
            jv = None if jv is None or jv == "" else str(jv)
            assert jv == xv, f"{what}: {f} JSON {jv!r} XML {xv!r}"


def attribute_pairs(code):
    """attribute[...] pairs for every variable attribute of a service's
    definition (required or not), with a value its datatype accepts."""
    pairs = []
    for a in ctx["definitions"].get(str(code), []):
        if not a["variable"]:
            continue
        name = f"attribute[{a['code']}]"
        dt = a["datatype"]
        keys = [str(v["key"]) for v in (a.get("values") or [])]
        if dt == "singlevaluelist":
            pairs.append((name, keys[0]))
        elif dt == "multivaluelist":
            pairs += [(name + "[]", k) for k in keys[:2]]
        elif dt == "number":
            pairs.append((name, "3"))
        elif dt == "datetime":
            pairs.append((name, w3c(datetime.now(CST), CST)))
        else:
            pairs.append((name, "夜间更明显"))
    return pairs


def post_request(fmt, pairs, raw_brackets=False, what=None):
    """POST Service Request; returns the one <request>/object of the answer as
    a dict. Per type: realtime returns service_request_id, batch a token, never
    both."""
    what = what or f"POST requests.{fmt}"
    resp = call("POST", f"/requests.{fmt}", form=pairs, raw_brackets=raw_brackets)
    assert resp[0] == POST_OK, f"{what}: wanted {POST_OK}, got {resp[0]}: {resp[2][:400]!r}"
    if fmt == "json":
        body = as_json(resp, what)
        assert isinstance(body, list) and len(body) == 1, f"{what}: wanted a one-element array: {body!r}"
        r = body[0]
        assert isinstance(r, dict), f"{what}: {r!r}"
        # Reading: Spark convention, service_notice and account_id present (null if none)
        for f in ("service_notice", "account_id"):
            assert f in r, f"{what}: no {f}: {r!r}"
        assert opt_str(r["service_notice"]), f"{what}: service_notice {r['service_notice']!r}"
        assert r["account_id"] is None or is_id(r["account_id"]), f"{what}: account_id {r['account_id']!r}"
    else:
        root = as_xml(resp, what)
        kids = xml_list(root, "service_requests", "request", what)
        assert len(kids) == 1, f"{what}: wanted one <request>, got {len(kids)}"
        r = flat(kids[0])
        for f in ("service_notice", "account_id"):
            assert f in r, f"{what}: no <{f}>: {r!r}"
    srid, token = r.get("service_request_id"), r.get("token")
    assert (srid is None) != (token is None), \
        f"{what}: wanted exactly one of service_request_id and token: {r!r}"
    assert is_id(srid if srid is not None else token), f"{what}: {r!r}"
    code = dict(pairs)["service_code"]
    stype = ctx["services"][code]["type"]
    if stype == "realtime":
        assert srid is not None, f"{what}: service {code} is realtime but no service_request_id: {r!r}"
    elif stype == "batch":
        assert token is not None, f"{what}: service {code} is batch but no token: {r!r}"
    if token is not None:
        ctx["tokens"].append(str(token))
        srid = resolve_token(token)
    r["_id"] = str(srid)
    return r


def resolve_token(token):
    body = get_json_ok(f"/tokens/{qid(token)}.json")
    assert isinstance(body, list) and len(body) == 1, f"tokens/{token}.json: {body!r}"
    t = body[0]
    assert str(t.get("token")) == str(token), f"tokens/{token}.json: {t!r}"
    assert is_id(t.get("service_request_id")), \
        f"tokens/{token}.json: no service_request_id (reading: resolved by the time POST answered): {t!r}"
    return t["service_request_id"]


def get_one(srid, what=None):
    what = what or f"requests/{srid}.json"
    body = get_json_ok(f"/requests/{qid(srid)}.json", what=what)
    assert isinstance(body, list) and len(body) == 1, f"{what}: wanted a one-element array: {body!r}"
    check_request_json(body[0], what)
    assert str(body[0]["service_request_id"]) == str(srid), f"{what}: {body[0]!r}"
    return body[0]


def get_one_xml(srid):
    what = f"requests/{srid}.xml"
    root = get_xml_ok(f"/requests/{qid(srid)}.xml", what=what)
    kids = xml_list(root, "service_requests", "request", what)
    assert len(kids) == 1, f"{what}: wanted one <request>, got {len(kids)}"
    return kids[0]


def list_requests(params, what=None):
    what = what or f"requests.json?{urllib.parse.urlencode(params)}"
    body = get_json_ok("/requests.json", params, what=what)
    assert isinstance(body, list), f"{what}: not an array: {body!r}"
    for r in body:
        check_request_json(r, what)
    ids = [str(r["service_request_id"]) for r in body]
    assert len(ids) == len(set(ids)), f"{what}: a request listed twice: {ids}"
    return body


def ids_of(rows):
    return {str(r["service_request_id"]) for r in rows}


def base_form(code=None, lat_long=P1, description="路灯不亮"):
    code = code or ctx["main_code"]
    pairs = [("api_key", ctx["resident"]), ("service_code", str(code)),
             ("lat", repr(lat_long[0])), ("long", repr(lat_long[1])), ("description", description)]
    return pairs


def drop(pairs, *names):
    return [(k, v) for k, v in pairs if k not in names]


def replace(pairs, **vals):
    return [(k, vals[k] if k in vals else v) for k, v in pairs]


# ---------------------------------------------------------------- setup

def setup():
    ctx["tmp"] = TempDir()
    d = ctx["tmp"].__enter__()
    db = ctx["db"] = os.path.join(d, "t.db")
    run("seed", "--db", db, "--layers", LAYERS, check=0)
    ctx["resident"] = run("user", "add", "居民甲", "--role", "resident", "--db", db, check=0)[1].strip()
    ctx["op"] = run("user", "add", "op", "--role", "operator", "--db", db, check=0)[1].strip()
    ctx["dept"] = run("user", "add", "城管一组", "--role", "department", "--department", "城管",
                      "--db", db, check=0)[1].strip()
    assert ctx["resident"] and ctx["op"] and ctx["dept"], "user add printed no token"
    ctx["tokens"] = []
    ctx["created"] = {}           # service_request_id -> what was posted
    ctx["definitions"] = {}       # service_code -> attributes of its definition
    ctx["d"] = Daemon(db)


def teardown():
    logs = ctx["d"].logs()
    assert ctx["d"].stop() == 0, "daemon did not stop cleanly on SIGTERM"
    for secret in (ctx["resident"], ctx["op"], ctx["dept"]):
        assert secret not in logs, "a token (Open311 api_key or bearer) reached the log"
    ctx["tmp"].__exit__(None, None, None)


# ---------------------------------------------------------------- tests

def test_service_discovery():
    """Service Discovery: 'must end in /discovery.<format>', both xml and json.
    The spec puts it at a base URL above the endpoint but does not fix where.
    Reading: /open311/discovery.{json,xml}, or /open311/v2/discovery.{json,xml}."""
    d = ctx["d"]
    for prefix in ("/open311", BASE):
        resp = d.request("GET", prefix + "/discovery.json")
        if resp[0] == 200:
            break
    else:
        raise AssertionError("no discovery.json under /open311 or /open311/v2: " + repr(resp[:1]))
    disc = as_json(resp, prefix + "/discovery.json")
    for f in ("changeset", "contact", "key_service", "endpoints"):
        assert f in disc, f"discovery.json: no {f}: {disc!r}"
    eps = [e for e in disc["endpoints"] if e.get("specification") == "http://wiki.open311.org/GeoReport_v2"]
    assert eps, f"discovery.json: no GeoReport_v2 endpoint: {disc!r}"
    ep = eps[0]
    assert ep["url"].rstrip("/").endswith("/open311/v2"), f"discovery.json: endpoint url {ep['url']!r}"
    assert ep["type"] in ("production", "test"), ep
    assert ep.get("changeset"), ep
    # JSON is optional in the spec; a client may only use it when discovery says so
    assert "text/xml" in ep["formats"] and "application/json" in ep["formats"], ep
    root = as_xml(d.request("GET", prefix + "/discovery.xml"), prefix + "/discovery.xml")
    assert strip_ns(root.tag) == "discovery", root.tag
    top = flat(root)
    assert top.get("changeset") == disc["changeset"], (top, disc)
    xeps = root.find("endpoints")
    assert xeps is not None and len(xeps) >= 1, "discovery.xml: no <endpoints>"
    specs = [flat(e).get("specification") for e in xeps]
    assert "http://wiki.open311.org/GeoReport_v2" in specs, specs
    for e in xeps:
        if flat(e).get("specification") == "http://wiki.open311.org/GeoReport_v2":
            xf = e.find("formats")
            assert xf is not None, "discovery.xml: GeoReport_v2 <endpoint> without <formats>"
            fmts = [f.text for f in xf]
            assert "text/xml" in fmts and "application/json" in fmts, fmts


def test_services_json_and_xml():
    """GET Service List (with the client's api_key); jurisdiction_id is optional for a
    one-jurisdiction endpoint."""
    js = get_json_ok("/services.json")
    assert isinstance(js, list) and js, f"services.json: not a non-empty array: {js!r}"
    services = {}
    for s in js:
        missing = [f for f in SERVICE_FIELDS if f not in s]
        assert not missing, f"services.json: {s!r} lacks {missing}"
        assert is_id(s["service_code"]), s
        code = str(s["service_code"])
        assert code not in services, f"services.json: service_code {code} twice"
        assert isinstance(s["service_name"], str) and s["service_name"].strip(), s
        assert isinstance(s["description"], str), s
        assert isinstance(s["metadata"], bool), f"metadata must be true/false: {s!r}"
        assert s["type"] in ("realtime", "batch", "blackbox"), s
        # the spec: keywords is 'a comma separated list' (a string, not an array)
        assert isinstance(s["keywords"], str), f"keywords must be a comma separated string: {s!r}"
        assert isinstance(s["group"], str), s
        services[code] = s
    ctx["services"] = services

    root = get_xml_ok("/services.xml")
    xs = {}
    for el in xml_list(root, "services", "service", "services.xml"):
        f = flat(el)
        missing = [k for k in SERVICE_FIELDS if k not in f]
        assert not missing, f"services.xml: <service> lacks {missing}: {f}"
        assert f["metadata"] in ("true", "false"), f
        xs[f["service_code"]] = f
    assert set(xs) == set(services), f"services.xml codes {sorted(xs)} != services.json {sorted(services)}"
    for code, s in services.items():
        x = xs[code]
        assert x["metadata"] == ("true" if s["metadata"] else "false"), (s, x)
        for k in ("service_name", "description", "type", "keywords", "group"):
            assert (x[k] or "") == s[k], f"{code}.{k}: XML {x[k]!r} JSON {s[k]!r}"

    # jurisdiction_id is optional: passing nothing and passing an empty one are the same
    assert get_json_ok("/services.json", {"jurisdiction_id": ""}) == js

    trackable = [c for c, s in services.items() if s["type"] in ("realtime", "batch")]
    assert trackable, "no realtime or batch service: no request could ever be tracked"
    with_meta = [c for c in trackable if services[c]["metadata"]]
    ctx["main_code"] = (with_meta or trackable)[0]
    others = [c for c in trackable if c != ctx["main_code"]]
    ctx["other_code"] = others[0] if others else None


def test_service_definitions():
    """GET Service Definition for every service with metadata=true, JSON and
    XML; an unknown service_code is 404 in the error format."""
    ctx["definitions"] = {}
    for code, s in ctx["services"].items():
        if not s["metadata"]:
            continue
        what = f"services/{code}.json"
        dj = get_json_ok(f"/services/{qid(code)}.json", what=what)
        assert isinstance(dj, dict), f"{what}: a service definition is an object: {dj!r}"
        assert str(dj.get("service_code")) == code, f"{what}: {dj!r}"
        attrs = dj.get("attributes")
        # metadata=true: 'this service request type requires additional metadata'
        assert isinstance(attrs, list) and attrs, f"{what}: metadata=true but no attributes: {dj!r}"
        orders, codes = set(), set()
        for a in attrs:
            for f in ("variable", "code", "datatype", "required", "datatype_description", "order",
                      "description"):
                assert f in a, f"{what}: attribute lacks {f}: {a!r}"
            assert isinstance(a["variable"], bool) and isinstance(a["required"], bool), a
            assert is_id(a["code"]) and str(a["code"]) not in codes, a
            codes.add(str(a["code"]))
            assert a["datatype"] in DATATYPES, a
            assert opt_str(a["datatype_description"]), a
            assert isinstance(a["order"], int) and not isinstance(a["order"], bool) and a["order"] >= 1, a
            assert a["order"] not in orders, f"{what}: order {a['order']} used twice"
            orders.add(a["order"])
            assert isinstance(a["description"], str) and a["description"].strip(), a
            if a["datatype"] in ("singlevaluelist", "multivaluelist"):
                vals = a.get("values")
                assert isinstance(vals, list) and vals, f"{what}: a list attribute without values: {a!r}"
                for v in vals:
                    assert is_id(v.get("key")) and isinstance(v.get("name"), str) and v["name"], v
        ctx["definitions"][code] = attrs

        what = f"services/{code}.xml"
        root = get_xml_ok(f"/services/{qid(code)}.xml", what=what)
        assert strip_ns(root.tag) == "service_definition", f"{what}: root <{root.tag}>"
        assert flat(root).get("service_code") == code, f"{what}: {flat(root)}"
        xattrs = [e for e in root if strip_ns(e.tag) == "attributes"]
        assert len(xattrs) == 1, f"{what}: wanted one <attributes>"
        xa = xml_list(xattrs[0], "attributes", "attribute", what)
        assert len(xa) == len(attrs), f"{what}: {len(xa)} attributes, JSON has {len(attrs)}"
        byc = {str(a["code"]): a for a in attrs}
        for el in xa:
            f = flat(el)
            a = byc[f["code"]]
            assert f["datatype"] == a["datatype"] and int(f["order"]) == a["order"], (f, a)
            assert f["variable"] == str(a["variable"]).lower() and f["required"] == str(a["required"]).lower(), (f, a)
            if a["datatype"] in ("singlevaluelist", "multivaluelist"):
                vs = el.find("values")
                assert vs is not None, f"{what}: <attribute> {f['code']} without <values>"
                keys = [flat(v).get("key") for v in vs]
                assert keys == [str(v["key"]) for v in a["values"]], (keys, a["values"])

    unknown = "no-such-service-7f3a"
    assert unknown not in ctx["services"]
    expect_errors_json(call("GET", f"/services/{unknown}.json"), 404, what="unknown service definition .json")
    expect_errors_xml(call("GET", f"/services/{unknown}.xml"), 404, what="unknown service definition .xml")


def test_post_json_full():
    """POST requests.json, form-encoded, with every optional field and the
    attributes of the service definition (percent-encoded brackets)."""
    code = ctx["main_code"]
    desc = "井盖缺失 & 路面塌陷，\"很危险\"\n晚上看不见"
    media = "https://img.example.com/gridcc/manhole-1.jpg?size=large&v=2"
    pairs = base_form(code, P1, desc) + [
        ("email", "zhang.san@example.com"), ("first_name", "三"), ("last_name", "张"),
        ("phone", "+86 138 0013 8000"), ("media_url", media), ("device_id", "it-device-1")]
    attrs = attribute_pairs(code)
    # Reading: attribute codes the service does not define are ignored, not an error
    pairs += attrs or [("attribute[note]", "夜间更明显")]
    t0 = datetime.now(UTC)
    r = post_request("json", pairs)
    t1 = datetime.now(UTC)
    ctx["A"] = r["_id"]
    ctx["created"][r["_id"]] = {"code": code, "desc": desc, "media": media, "latlong": P1}

    g = get_one(r["_id"])
    assert str(g["service_code"]) == code, g
    assert g["service_name"] == ctx["services"][code]["service_name"], g
    assert g["description"] == desc, f"description did not round-trip: {g['description']!r}"
    assert g["media_url"] == media, g
    assert g["status"] == "open", f"a new request is open: {g!r}"
    assert abs(g["lat"] - P1[0]) < 1e-6 and abs(g["long"] - P1[1]) < 1e-6, f"lat/long {g['lat']} {g['long']} != {P1}"
    req = parse_w3c(g["requested_datetime"], "requested_datetime")
    # the daemon runs on this machine: a wrong timezone label shows as hours off
    slack = timedelta(minutes=2)
    assert t0 - slack <= req <= t1 + slack, \
        f"requested_datetime {g['requested_datetime']} is not now ({w3c(t0)}..{w3c(t1)}): timezone wrong?"
    if r.get("service_notice") is not None and g["service_notice"] is not None:
        assert g["service_notice"] == r["service_notice"], (r, g)
    # no personal data of the submitter in the public request (not a field of the spec)
    raw = call("GET", f"/requests/{qid(r['_id'])}.json")[2].decode("utf-8")
    for secret in ("zhang.san@example.com", "138 0013 8000", ctx["resident"]):
        assert secret not in raw, f"{secret!r} is exposed by GET requests/{r['_id']}.json"

    same_request(g, get_one_xml(r["_id"]), f"requests/{r['_id']}.xml")


def test_post_xml():
    """POST requests.xml; brackets of attribute[...] sent raw as in the spec's
    example request."""
    code = ctx["other_code"] or ctx["main_code"]
    desc = "垃圾桶满溢，两天未清运 & 有异味"
    pairs = base_form(code, P2, desc) + [("email", "li.si@example.com"), ("first_name", "四"),
                                         ("last_name", "李")]
    pairs += attribute_pairs(code)
    r = post_request("xml", pairs, raw_brackets=True)
    ctx["B"] = r["_id"]
    ctx["created"][r["_id"]] = {"code": code, "desc": desc, "latlong": P2}
    g = get_one(r["_id"])
    assert str(g["service_code"]) == code and g["description"] == desc and g["status"] == "open", g
    assert abs(g["lat"] - P2[0]) < 1e-6 and abs(g["long"] - P2[1]) < 1e-6, g
    x = get_one_xml(r["_id"])
    same_request(g, x, f"requests/{r['_id']}.xml")
    assert flat(x)["description"] == desc, flat(x)


def test_post_address_string_only():
    """A full location is one of lat & long, address_string, address_id: an
    address_string alone is enough. And an empty lat/long/address_id is the
    same as none ('Optional Arguments')."""
    code = ctx["main_code"]
    pairs = [("api_key", ctx["resident"]), ("service_code", code), ("address_string", BUILDING),
             ("description", "楼道堆放杂物")] + attribute_pairs(code)
    r = post_request("json", pairs, what="POST address_string only")
    ctx["C"] = r["_id"]
    ctx["created"][r["_id"]] = {"code": code, "desc": "楼道堆放杂物", "latlong": None}
    g = get_one(r["_id"])
    assert g["status"] == "open" and g["description"] == "楼道堆放杂物", g
    # Reading: 'address' is the human readable location; for a request located
    # by address_string it carries (at least) what was entered
    assert g["address"] and BUILDING in g["address"], f"address {g['address']!r} lost {BUILDING!r}"
    if g["lat"] is not None:
        # geocoded: it must land on that building, not anywhere
        assert abs(g["lat"] - P2[0]) < 0.005 and abs(g["long"] - P2[1]) < 0.005, \
            f"{BUILDING} geocoded to {g['lat']},{g['long']}, far from {P2}"

    pairs = [("api_key", ctx["resident"]), ("service_code", code), ("lat", ""), ("long", ""),
             ("address_id", ""), ("address_string", BUILDING), ("description", "同上")] + attribute_pairs(code)
    r = post_request("json", pairs, what="POST address_string with empty lat/long/address_id")
    ctx["D"] = r["_id"]
    ctx["created"][r["_id"]] = {"code": code, "desc": "同上", "latlong": None}
    assert BUILDING in (get_one(r["_id"])["address"] or ""), "address_string lost next to empty lat/long"


def _window_ids():
    now = datetime.now(UTC)
    return ids_of(list_requests({"start_date": w3c(now - timedelta(hours=1)),
                                 "end_date": w3c(now + timedelta(hours=1))}))


def test_post_errors():
    """Errors: 403 for a missing or wrong api_key, 404 for a service_code not
    found, 400 for anything else; each body the spec's error array (JSON) or
    <errors> (XML); no request is created by any of them. Leaving out the
    attributes is refused when one is required, else accepted."""
    before = _window_ids()
    ok = base_form() + attribute_pairs(ctx["main_code"])
    post = lambda pairs, fmt="json": call("POST", f"/requests.{fmt}", form=pairs)
    key = r"api[ _-]?key"
    expect_errors_json(post(drop(ok, "api_key")), 403, key, "missing api_key")
    expect_errors_json(post(replace(ok, api_key="")), 403, key, "empty api_key")
    expect_errors_json(post(replace(ok, api_key="gcc_not_a_real_token")), 403, key, "bad api_key")
    expect_errors_xml(post(drop(ok, "api_key"), "xml"), 403, key, "missing api_key (xml)")
    expect_errors_xml(post(replace(ok, api_key="gcc_not_a_real_token"), "xml"), 403, key, "bad api_key (xml)")
    sc = r"service[ _]?code"
    expect_errors_json(post(drop(ok, "service_code")), 400, sc, "missing service_code")
    expect_errors_json(post(replace(ok, service_code="no-such-service-7f3a")), 404, sc, "unknown service_code")
    expect_errors_xml(post(replace(ok, service_code="no-such-service-7f3a"), "xml"), 404, sc,
                      "unknown service_code (xml)")
    loc = r"lat|long|address|location"
    expect_errors_json(post(drop(ok, "lat", "long")), 400, loc, "no location")
    expect_errors_json(post(replace(ok, lat="", long="") + [("address_string", ""), ("address_id", "")]),
                       400, loc, "only empty location parameters")
    expect_errors_xml(post(drop(ok, "lat", "long"), "xml"), 400, loc, "no location (xml)")
    expect_errors_json(post(drop(ok, "long")), 400, r"lat|long", "lat without long")
    expect_errors_json(post(replace(ok, lat="abc")), 400, r"lat", "lat not a number")
    expect_errors_json(post(replace(ok, long="116.3x")), 400, r"long", "long not a number")
    # 'required: true means that the value is required to submit service request';
    # so without its attributes a request is refused if one is required, and
    # accepted if none is: either way the answer is checked
    code = ctx["main_code"]
    assert code in ctx["definitions"] or not ctx["services"][code]["metadata"], \
        f"service {code} has metadata but its definition was not read"
    required = [str(a["code"]) for a in ctx["definitions"].get(code, []) if a["variable"] and a["required"]]
    accepted = set()
    if required:
        expect_errors_json(post(base_form()), 400, "|".join(["attribute"] + [re.escape(c) for c in required]),
                           "required attribute missing")
    else:
        r = post_request("json", base_form(), what="POST without its optional attributes")
        accepted.add(r["_id"])
    after = _window_ids()
    assert after == before | accepted, f"a rejected POST created requests: {sorted(after - before - accepted)}"


def test_tokens():
    """GET service_request_id from a token. Only batch services return tokens;
    a token that does not exist is a resource that does not exist: 404."""
    for t in ctx["tokens"]:
        root = get_xml_ok(f"/tokens/{qid(t)}.xml")
        kids = xml_list(root, "service_requests", "request", f"tokens/{t}.xml")
        assert len(kids) == 1 and flat(kids[0]).get("token") == t, flat(kids[0]) if kids else root
        assert flat(kids[0]).get("service_request_id") == str(resolve_token(t)), flat(kids[0])
    expect_errors_json(call("GET", "/tokens/no-such-token-7f3a.json"), 404, what="unknown token")


def test_get_request_errors():
    expect_errors_json(call("GET", "/requests/999999999.json"), 404, what="unknown service_request_id")
    expect_errors_xml(call("GET", "/requests/999999999.xml"), 404, what="unknown service_request_id (xml)")


def test_get_requests_filters():
    ours = [ctx["A"], ctx["B"], ctx["C"], ctx["D"]]
    a, b = ctx["A"], ctx["B"]

    # service_request_id: a comma list gives exactly those, in JSON and XML
    rows = list_requests({"service_request_id": f"{a},{b}"})
    assert ids_of(rows) == {a, b}, f"service_request_id={a},{b} gave {sorted(ids_of(rows))}"
    root = get_xml_ok("/requests.xml", {"service_request_id": f"{a},{b}"})
    xrows = xml_list(root, "service_requests", "request", "requests.xml?service_request_id")
    assert {flat(x)["service_request_id"] for x in xrows} == {a, b}
    byid = {str(r["service_request_id"]): r for r in rows}
    for x in xrows:
        same_request(byid[flat(x)["service_request_id"]], x, "requests.xml?service_request_id")
    rows = list_requests({"service_request_id": a})
    assert ids_of(rows) == {a}, rows
    # ... and 'overrides all other arguments'
    rows = list_requests({"service_request_id": f"{a},{b}", "status": "closed",
                          "start_date": "2001-01-01T00:00:00Z", "end_date": "2001-01-02T00:00:00Z"})
    assert ids_of(rows) == {a, b}, f"service_request_id did not override status/dates: {sorted(ids_of(rows))}"

    # the default (no arguments): the most recent 90 days, so ours are there
    assert set(ours) <= ids_of(list_requests({})), "requests.json without arguments misses new requests"

    # start_date / end_date in W3C format, Z and +08:00
    times = {i: parse_w3c(get_one(i)["requested_datetime"]) for i in ours}
    lo, hi = min(times.values()), max(times.values())
    win = {"start_date": w3c(lo - timedelta(hours=1)), "end_date": w3c(hi + timedelta(hours=1), CST)}
    ctx["win"] = win
    rows = list_requests(win)
    assert set(ours) <= ids_of(rows), f"window {win} misses some of {ours}: {sorted(ids_of(rows))}"
    for r in rows:
        t = parse_w3c(r["requested_datetime"])
        assert lo - timedelta(hours=1) <= t <= hi + timedelta(hours=1), f"{r['requested_datetime']} outside {win}"
    assert list_requests({"start_date": "2001-01-01T00:00:00Z", "end_date": "2001-01-31T00:00:00Z"}) == [], \
        "a window in 2001 is not empty"
    later = {"start_date": w3c(hi + timedelta(minutes=10), CST), "end_date": w3c(hi + timedelta(days=1))}
    assert not set(ours) & ids_of(list_requests(later)), f"requests made before {later['start_date']} listed"
    earlier = {"start_date": w3c(lo - timedelta(days=2)), "end_date": w3c(lo - timedelta(minutes=10))}
    assert not set(ours) & ids_of(list_requests(earlier)), f"requests made after {earlier['end_date']} listed"
    # 'Optional': an empty parameter is the same as none
    assert ids_of(list_requests(dict(win, status="", service_code=""))) == ids_of(rows)

    # status
    rows = list_requests(dict(win, status="open"))
    assert set(ours) <= ids_of(rows), f"status=open misses open requests {sorted(set(ours) - ids_of(rows))}"
    wrong = {str(r["service_request_id"]): r["status"] for r in rows if r["status"] != "open"}
    assert not wrong, f"status=open lists {wrong}"
    rows = list_requests(dict(win, status="closed"))
    wrong = {str(r["service_request_id"]): r["status"] for r in rows if r["status"] != "closed"}
    assert not wrong, f"status=closed lists {wrong}"
    assert set(ours) <= ids_of(list_requests(dict(win, status="open,closed")))

    # service_code
    code = ctx["created"][a]["code"]
    rows = list_requests(dict(win, service_code=code))
    wrong = {str(r["service_request_id"]): r["service_code"] for r in rows if str(r["service_code"]) != code}
    assert not wrong, f"service_code={code} lists {wrong}"
    want = {i for i in ours if ctx["created"][i]["code"] == code}
    assert want <= ids_of(rows), f"service_code={code} misses {sorted(want - ids_of(rows))}"
    if ctx["other_code"]:
        rows = list_requests(dict(win, service_code=f"{code},{ctx['other_code']}"))
        assert set(ours) <= ids_of(rows), "a comma list of service codes misses requests"


def _act(srid, token, action, **extra):
    body = dict(extra, action=action, note=f"Open311 集成测试: {action}")
    st, resp = ctx["d"].json("POST", f"/api/incidents/{qid(srid)}/actions", body, token=token)
    assert st == 200, f"incident {srid}: {action} answered {st}: {resp}"
    return resp


def test_anonymous_view():
    """Without an api_key Open311 follows the API's public rules: discovery
    answers, services need a key, requests lists only finished cases with the
    place rounded (the public case list's view), and an open case is not
    there at all. A bad key is 403, not the anonymous view."""
    assert call("GET", "/discovery.json", key=False)[0] == 200
    expect_errors_json(call("GET", "/services.json", key=False), 403, "api_key", "services without a key")
    expect_errors_xml(call("GET", "/services.xml", key=False), 403, "api_key", "services.xml without a key")
    expect_errors_json(call("GET", "/services.json", {"api_key": "gcc_not_a_real_token"}), 403,
                       "api_key", "services with a bad key")
    a = ctx["A"]   # open: reported through Open311, not yet closed
    expect_errors_json(call("GET", f"/requests/{qid(a)}.json", key=False), 404, what="open case, anonymous")
    st, _, data = call("GET", "/requests.json", key=False)
    assert st == 200, data
    rows = json.loads(data)
    assert all(r["status"] == "closed" for r in rows), [r["status"] for r in rows]
    assert a not in ids_of(rows), "an open case is listed to anonymous callers"


def test_anonymous_sees_closed_rounded():
    """After the loop closes A, the anonymous view lists it, rounded to
    ~10 m (4 decimals) and without the submitter's address string."""
    a = ctx["A"]
    keyed = get_one(a)
    st, _, data = call("GET", f"/requests/{qid(a)}.json", key=False)
    assert st == 200, data
    anon = json.loads(data)[0]
    assert anon["status"] == "closed", anon
    assert round(anon["lat"], 4) == anon["lat"] and round(anon["long"], 4) == anon["long"], anon
    assert abs(anon["lat"] - keyed["lat"]) < 0.001 and abs(anon["long"] - keyed["long"]) < 0.001
    assert a in ids_of(json.loads(call("GET", "/requests.json", key=False)[2]))


def test_planner_may_not_report():
    """POST follows /api/incidents: a planner's key may not create cases."""
    code = ctx["main_code"]
    planner = run("user", "add", "规划", "--role", "planner", "--db", ctx["db"], check=0)[1].strip()
    pairs = [("api_key", planner), ("service_code", code), ("lat", "40.0032"), ("long", "116.3262"),
             ("description", "规划员不能上报")]
    expect_errors_json(call("POST", "/requests.json", form=pairs), 403, "planner", "planner POST")


def test_closed_through_our_loop():
    a, b = ctx["A"], ctx["B"]
    first = get_one(a)
    prev = parse_w3c(first["updated_datetime"])
    steps = [(ctx["op"], "register", {}), (ctx["op"], "dispatch", {"department": "城管"}),
             (ctx["dept"], "handle", {}), (ctx["op"], "verify", {})]
    for tok, action, extra in steps:
        _act(a, tok, action, **extra)
        g = get_one(a, f"requests/{a}.json after {action}")
        assert g["status"] == "open", f"status is {g['status']!r} after {action}, before close"
        upd = parse_w3c(g["updated_datetime"])
        assert upd >= prev, f"updated_datetime went back after {action}: {g['updated_datetime']}"
        prev = upd
    _act(a, ctx["op"], "close")
    g = get_one(a, f"requests/{a}.json after close")
    assert g["status"] == "closed", f"status is {g['status']!r} after close"
    assert g["requested_datetime"] == first["requested_datetime"], (first, g)
    # 'for requests with status=closed, this will be the date the request was closed'
    closed_at = parse_w3c(g["updated_datetime"])
    assert closed_at >= prev, g
    assert closed_at <= datetime.now(UTC) + timedelta(minutes=2), g
    assert flat(get_one_xml(a))["status"] == "closed"
    assert get_one(b)["status"] == "open"

    win = ctx["win"]
    closed = list_requests(dict(win, status="closed"))
    assert a in ids_of(closed) and b not in ids_of(closed), sorted(ids_of(closed))
    opened = list_requests(dict(win, status="open"))
    assert a not in ids_of(opened) and b in ids_of(opened), sorted(ids_of(opened))
    both = list_requests(dict(win, status="open,closed"))
    assert {a, b} <= ids_of(both)
    root = get_xml_ok("/requests.xml", dict(win, status="closed"))
    xs = {flat(x)["service_request_id"]: flat(x)["status"]
          for x in xml_list(root, "service_requests", "request", "requests.xml?status=closed")}
    assert xs.get(a) == "closed" and b not in xs and set(xs.values()) <= {"closed"}, xs
    rows = list_requests({"service_request_id": f"{a},{b}"})
    assert {str(r["service_request_id"]): r["status"] for r in rows} == {a: "closed", b: "open"}, rows


if __name__ == "__main__":
    setup()
    try:
        main([test_service_discovery, test_services_json_and_xml, test_service_definitions,
              test_post_json_full, test_post_xml, test_post_address_string_only, test_post_errors,
              test_tokens, test_get_request_errors, test_get_requests_filters,
              test_anonymous_view, test_closed_through_our_loop, test_anonymous_sees_closed_rounded,
              test_planner_may_not_report, teardown])
    finally:
        if ctx.get("d"):
            ctx["d"].stop()
