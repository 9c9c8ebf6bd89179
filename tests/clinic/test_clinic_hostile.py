"""Hostile input to the device API, generated (hypothesis): no line makes the upload
reader raise or call a changed record intact, and no request (body, headers, path,
method) gets a 500 or a traceback: always a 4xx with a message. In-process (the ASGI
app on an SQLite file), so thousands of requests take seconds."""
from __future__ import annotations

import json
import os
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic import ingest
from homeapp import syncproto
from homeapp.bundle import record_hash
from schedules.signing import generate_keypair, key_id

from .kit import clinic_for, set_up_clinic

EXAMPLES = int(os.environ.get("CLINIC_HOSTILE_EXAMPLES", "150"))
HEX = "0123456789abcdef"

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
hash64 = st.text(alphabet=HEX, min_size=64, max_size=64)


@st.composite
def record_lines(draw):
    """A record line: genuine, then perhaps changed (a key, a value, a byte, its layout)."""
    seq = draw(st.one_of(st.integers(min_value=0, max_value=10**6), json_value))
    kind = draw(st.one_of(st.sampled_from(ingest.KINDS), json_value))
    data = draw(st.one_of(st.dictionaries(st.text(max_size=8), json_value, max_size=5), json_value))
    prev = draw(st.one_of(hash64, json_value))
    genuine = (type(seq) is int and isinstance(kind, str) and isinstance(prev, str)
               and draw(st.booleans()))
    h = record_hash(seq, kind, data, prev) if genuine else draw(st.one_of(hash64, json_value))
    obj = {"data": data, "kind": kind, "prev_hash": prev, "seq": seq, "hash": h}
    how = draw(st.sampled_from(["log order", "sorted", "reversed", "extra", "byte"]))
    if how == "sorted":
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    elif how == "reversed":
        text = json.dumps(dict(reversed(list(obj.items()))), ensure_ascii=False)
    elif how == "extra":
        text = json.dumps({**obj, "x": draw(json_value)}, ensure_ascii=False)
    else:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    raw = text.encode("utf-8")
    if how == "byte" and raw:
        i = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(min_value=0, max_value=255))]) + raw[i + 1:]
    return raw


@settings(max_examples=EXAMPLES * 4, deadline=None)
@given(record_lines())
def test_a_record_line_is_intact_exactly_when_its_hash_covers_what_it_holds(raw):
    rec = ingest.parse_record_line(raw, 1)              # never raises
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        assert not rec.well_formed and not rec.intact
        return
    if not rec.well_formed:
        assert not rec.intact
        return
    assert rec.intact == (record_hash(obj["seq"], obj["kind"], obj["data"], obj["prev_hash"]) == obj["hash"])
    assert json.loads(rec.line)["data"] == obj["data"]     # what is stored is what was checked


@pytest.fixture(scope="module")
def app_and_device(tmp_path_factory):
    from clinic.app import create_app
    db_url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'clinic.db'}"
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic, patient="P-HOSTILE")
    key, public = generate_keypair()
    clinic.pair_device(code, public)
    with warnings.catch_warnings():     # starlette's notice about httpx: the client works as it is
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
        client = TestClient(create_app(db_url), raise_server_exceptions=False)
    with client:
        yield client, key, key_id(public)


header_text = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
                        st.sampled_from(["", "0", "-1", "1e309", "９９", " " * 5, "x" * 200]))
paths = st.sampled_from(["/api/device/log", "/api/device/state", "/api/device/pair", "/api/device/prescription",
                         "/api/device/prescription/status", "/api/device/log?x=1", "/api/device/%00",
                         "/api/device/chain", "/api/device/chain?after=x", "/api/device/chain?after=-5&limit=0",
                         "/api/device/chain?after=99999999999999999999999&limit=9", "/api/device/chain?limit=1e3"])
bodies = st.one_of(st.binary(max_size=300), record_lines().map(lambda r: r + b"\n" + r),
                   json_value.map(lambda v: json.dumps(v).encode()),
                   st.sampled_from([b"", b"\n\n", b'{"kind":"end"}', b"[" * 5000, b'{"code":1,"public_key":[]}',
                                    b'{"sha256":"x","status":"installed","reason":5}']))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT"]), path=paths, body=bodies,
       signed=st.sampled_from(["genuine", "garbage headers", "none", "wrong body"]),
       garbage=st.dictionaries(st.sampled_from(syncproto.REQUEST_HEADERS), header_text, max_size=4))
def test_no_hostile_device_request_gets_a_500(app_and_device, method, path, body, signed, garbage):
    client, key, kid = app_and_device
    headers = {}
    if signed in ("genuine", "wrong body"):
        headers = syncproto.sign_request(key, kid, method, path, body if signed == "genuine" else b"other")
    elif signed == "garbage headers":
        headers = {k: v.encode("utf-8") for k, v in garbage.items()}    # any bytes a client may send
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code < 500, (method, path, body[:80], headers, r.text[:300])
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        payload = r.json()
        assert isinstance(payload["error"], str) and payload["error"], payload
