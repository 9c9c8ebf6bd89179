"""What the clinic refuses, whole and named: altered, incomplete, reordered or foreign
uploads, unpaired devices, expired and used pairing codes, replayed requests; hostile
input gets a clear 4xx; a clinician asking for another clinician's patient gets 404 on
every route, and the audit table says so. Real service over TLS, SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import update

from clinic.models import PairingCode
from clinic.service import CLI
from homeapp import syncproto
from homeapp.device_key import ensure_device_key
from homeapp.store import Store
from homeapp.sync import Outbox, Syncer, record_line
from schedules.signing import TrustStore

from .kit import PASSWORD, ClinicServer, clinic_for, set_up_clinic, write_sessions


class Dev:
    """A device in this process: its log, key, outbox and a Syncer for pairing."""

    def __init__(self, root, server, ca):
        root.mkdir(parents=True)
        self.store = Store.open(root / "homeapp.db")
        self.key, self.kid = ensure_device_key(root)
        self.syncer = Syncer(data_dir=root, store=self.store, device_key=self.key, device_key_id=self.kid,
                             trust=TrustStore(root / "trust"))
        self.server, self.ca = server, ca
        write_sessions(self.store, 2)
        self.outbox = Outbox(root / "chain.db")
        self.outbox.refresh(self.store, device_key_id=self.kid)
        self.lines = [line for _, _, line in self.outbox.lines_after(-1, limit=10_000)]

    def pair(self, code):
        return self.syncer.pair(self.server.url, code, ca_cert=self.ca)

    def end(self, lines, key=None, kid=None):
        last = json.loads(lines[-1])
        key, kid = key or self.key, kid or self.kid
        return json.dumps({"kind": "end", "count": last["seq"], "head": last["hash"], "device_key_id": kid,
                           "signature": _b64(key.sign(syncproto.end_payload(kid, last["seq"], last["hash"])))})

    def request(self, method, path, body=b"", *, key=None, kid=None, headers=None):
        headers = headers or syncproto.sign_request(key or self.key, kid or self.kid, method, path, body)
        with httpx.Client(base_url=self.server.url, verify=_tls(self.ca)) as client:
            return client.request(method, path, content=body, headers=headers), headers

    def upload(self, lines, *, end=None, **signer):
        body = ("\n".join(lines) + "\n" + (end or self.end(lines)) + "\n").encode()
        return self.request("POST", "/api/device/log", body, **signer)[0]


def _tls(ca):
    import ssl
    return ssl.create_default_context(cafile=str(ca))


def _b64(raw):
    import base64
    return base64.b64encode(raw).decode()


@pytest.fixture
def service(db_url, tls_files, tmp_path):
    clinic = clinic_for(db_url)
    server = ClinicServer(db_url, tls_files).start()
    try:
        yield clinic, server, tls_files[2], tmp_path
    finally:
        server.stop()


def _altered(line, old, new):
    assert old in line
    return line.replace(old, new, 1)


def test_each_tampered_upload_is_refused_whole_and_named(service):
    clinic, server, ca, tmp = service
    a = Dev(tmp / "a", server, ca)
    b = Dev(tmp / "b", server, ca)
    a.pair(set_up_clinic(clinic, patient="P-A"))
    b.pair(set_up_clinic(clinic, patient="P-B"))
    lines = a.lines
    contraction = json.loads(lines[5])
    assert contraction["kind"] == "contraction"

    rehashed = record_line(5, "contraction", {**contraction["data"], "peak_ma": 99.0}, contraction["prev_hash"])[0]
    cases = {
        "one changed byte": (lines[:5] + [_altered(lines[5], '"peak_ma":2', '"peak_ma":9')] + lines[6:], {},
                             "record 5 (contraction of session s-00000): content changed"),
        "a changed record re-hashed": (lines[:5] + [rehashed] + lines[6:], {},
                                       "record 6 (contraction of session s-00000) does not continue the chain"),
        "one removed record": (lines[:7] + lines[8:], {}, "record 7 missing (a gap between record 6 and record 8)"),
        "two swapped records": (lines[:7] + [lines[8], lines[7]] + lines[9:], {}, "records 7 and 8 out of order"),
        "another device's key": (b.lines, {"end": b.end(b.lines)}, f"signed for device key {b.kid}, not this "
                                                                   f"device's paired key {a.kid} (a foreign key)"),
        "an end signed by another key": (lines, {"end": a.end(lines, key=b.key, kid=a.kid)},
                                         "signature does not verify with this device's paired key"),
    }
    for name, (body_lines, extra, expected) in cases.items():
        r = a.upload(body_lines, **extra)
        assert r.status_code == 422, (name, r.text)
        assert any(expected in p for p in r.json()["problems"]), (name, r.json())
    state = a.request("GET", "/api/device/state")[0].json()
    assert state["acknowledged"] == -1                          # nothing of any refused upload was kept
    refused = [e for e in clinic.audit_entries(patient_ref="P-A") if e["action"] == "upload"]
    assert len(refused) == len(cases) and all(e["outcome"] == "refused" and e["detail"]["problems"] for e in refused)

    r = a.upload(lines)                                          # the genuine upload goes through
    assert r.status_code == 200 and r.json()["acknowledged"] == len(lines) - 1
    assert a.upload(lines).json() == {**r.json(), "stored": 0}   # and a repeat changes nothing
    assert a.upload(lines[:5] + [_altered(lines[5], '"peak_ma":2', '"peak_ma":9')] + lines[6:]).status_code == 422


def test_unpaired_devices_codes_and_replays_are_refused(service):
    clinic, server, ca, tmp = service
    a = Dev(tmp / "a", server, ca)
    c = Dev(tmp / "c", server, ca)
    code = set_up_clinic(clinic, patient="P-A")

    r = c.upload(c.lines)
    assert r.status_code == 403 and f"device key {c.kid} is not paired" in r.json()["error"]

    a.pair(code)
    with pytest.raises(Exception, match="already used"):
        c.pair(code)
    expired, _ = clinic.new_pairing_code(CLI, "P-A")
    with clinic.Session.begin() as db:
        db.execute(update(PairingCode).where(PairingCode.used_at.is_(None))
                   .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    with pytest.raises(Exception, match="expired"):
        c.pair(expired)
    with pytest.raises(Exception, match="not one the clinic issued"):
        c.pair("0000-0000")

    first, headers = a.request("GET", "/api/device/state")
    assert first.status_code == 200
    replay, _ = a.request("GET", "/api/device/state", headers=headers)
    assert replay.status_code == 401 and "replayed request" in replay.json()["error"]
    old = syncproto.sign_request(a.key, a.kid, "GET", "/api/device/state", now=dt.datetime.now().timestamp() - 900)
    stale, _ = a.request("GET", "/api/device/state", headers=old)
    assert stale.status_code == 401 and "behind the clinic's clock" in stale.json()["error"]
    forged, _ = a.request("GET", "/api/device/state", key=c.key, kid=a.kid)
    assert forged.status_code == 401 and "signature does not verify" in forged.json()["error"]
    denied = {e["detail"]["reason"] for e in clinic.audit_entries() if e["outcome"] == "denied"}
    assert {"unpaired device", "used pairing code", "expired pairing code", "replayed request",
            "bad request signature"} <= denied


def _login(server, ca, username):
    r = httpx.post(f"{server.url}/api/login", json={"username": username, "password": PASSWORD}, verify=_tls(ca))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_another_clinicians_patient_is_404_on_every_route_and_audited(service):
    from clinic.api.clinician import router
    clinic, server, ca, tmp = service
    set_up_clinic(clinic, clinician="alice", patient="P-ALICE")
    set_up_clinic(clinic, clinician="bob", patient="P-BOB")
    bob = _login(server, ca, "bob")
    routes = [(method, r.path) for r in router.routes for method in r.methods if "{patient_id}" in r.path]
    assert len(routes) >= 6
    with httpx.Client(base_url=server.url, verify=_tls(ca), headers=bob) as client:
        for method, path in routes:
            theirs = client.request(method, path.replace("{patient_id}", "P-ALICE"), content=b"{}")
            missing = client.request(method, path.replace("{patient_id}", "P-NOBODY"), content=b"{}")
            assert theirs.status_code == 404, (method, path, theirs.text)
            # exactly as a patient that does not exist, apart from the id
            assert theirs.json()["error"].replace("P-ALICE", "X") == missing.json()["error"].replace("P-NOBODY", "X")
            mine = client.request(method, path.replace("{patient_id}", "P-BOB"), content=b"{}")
            assert mine.status_code != 404 or "no log uploaded yet" in mine.text, (method, path, mine.text)
    denied = [e for e in clinic.audit_entries(patient_ref="P-ALICE") if e["outcome"] == "denied"]
    assert len(denied) == len(routes)
    assert all(e["actor"] == "clinician:bob" and e["detail"]["reason"] == "not this clinician's patient"
               for e in denied)
    reads = [e for e in clinic.audit_entries(patient_ref="P-BOB") if e["read"]]
    assert reads, "bob's reads of his own patient are audited too"


def test_hostile_input_gets_a_clear_4xx_never_a_500(service):
    clinic, server, ca, tmp = service
    set_up_clinic(clinic, clinician="alice", patient="P-1")
    a = Dev(tmp / "a", server, ca)
    a.pair(clinic.new_pairing_code(CLI, "P-1")[0])
    auth = _login(server, ca, "alice")
    deep = b"[" * 100_000 + b"]" * 100_000
    with httpx.Client(base_url=server.url, verify=_tls(ca)) as client:
        cases = [
            (client.post("/api/login", content=b"{not json"), 400, "not JSON"),
            (client.post("/api/login", content=b"[1, 2]"), 400, "must be a JSON object"),
            (client.post("/api/login", content=deep), 400, "not acceptable JSON"),
            (client.post("/api/login", content=b"\xff\xfe"), 400, "not UTF-8"),
            (client.post("/api/login", json={"username": "alice"}), 400, "username and password are required"),
            (client.post("/api/login", json={"username": "alice", "password": "wrong password!"}), 401, "wrong"),
            (client.post("/api/login", content=b"x" * (9 * 1024 * 1024)), 413, "too large"),
            (client.get("/api/patients"), 401, "sign in first"),
            (client.get("/api/patients", headers={"Authorization": "Bearer forged"}), 401, "not signed in"),
            (client.post("/api/patients/P-1/prescriptions", content=b"{]", headers=auth), 400, "not JSON"),
            # read as the device reads a prescription file: which of two values counts is no guess
            (client.post("/api/patients/P-1/prescriptions", content=b'{"id": "a", "id": "b"}',
                         headers=auth), 400, "duplicate key"),
            (client.post("/api/patients/P-1/prescriptions", content=b'{"sessions_per_week": NaN}',
                         headers=auth), 400, "NaN is not valid JSON"),
            (client.get("/api/patients/P-1/export?format=xml", headers=auth), 400, "use json or csv"),
            (client.get("/api/nothing-here"), 404, "no such page"),
            (client.post("/api/device/log", content=b"x"), 401, "not a signed device request"),
            (client.post("/api/device/pair", json={"code": "1"}), 400, "public_key: required"),
            (client.post("/api/device/pair", json={"code": "1", "public_key": "AAAA"}), 400, "32 bytes"),
        ]
        for body in (b"", b"\x00\x01garbage", b'{"kind": "end"}', deep):
            r, _ = a.request("POST", "/api/device/log", body)
            cases.append((r, 400 if body != deep else 400, ""))
        for response, status, words in cases:
            assert response.status_code == status, (response.request.url, response.text[:200])
            payload = response.json()
            assert words in payload["error"] + " ".join(payload["problems"]), payload
            assert "Traceback" not in response.text
