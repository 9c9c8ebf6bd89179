"""The upload route's one-transaction path (`Clinic.receive_upload`): the request's
signature, the nonce, the chain and the end line are still checked on every upload,
whether or not the service already knows the device's key, and every refusal is
audited. In-process against SQLite and PostgreSQL (the HTTP path is in the other tests)."""
from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import func, select

from clinic.models import Device, LogRecord

from clinic.service import ClinicError, DeviceRef, DeviceRequest, Refused, Unauthorized
from homeapp import syncproto
from homeapp.sync import GENESIS
from schedules.signing import generate_keypair, key_id

from .kit import clinic_for, set_up_clinic, upload_body

PATH = "/api/device/log"


def _body(key, kid, first_seq, prev, count=3):
    records = [("header", {"format": syncproto.LOG_FORMAT, "device_key_id": kid, "since": None})] if first_seq == 0 else []
    records += [("device_event", {"kind": "boot", "at": f"2026-11-0{n + 1}T08:00:00+00:00"}) for n in range(count)]
    return upload_body(key, kid, records, first_seq, prev)


def _send(clinic, body, key, kid, *, headers=None):
    headers = headers or syncproto.sign_request(key, kid, "POST", PATH, body)
    return clinic.receive_upload(method="POST", path=PATH, headers=headers, body=body), headers


@pytest.fixture
def device(db_url):
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic, patient="P-UP")
    key, public = generate_keypair()
    kid = key_id(public)
    clinic.pair_device(code, public)
    return clinic, key, kid


def _held(clinic, kid):
    """(the device's acknowledged head, the number of its stored records)."""
    with clinic.engine.connect() as conn:
        device_pk, last_seq = conn.execute(select(Device.id, Device.last_seq).where(Device.key_id == kid)).one()
        count = conn.execute(select(func.count()).select_from(LogRecord).where(LogRecord.device_id == device_pk))
        return last_seq, count.scalar()


def _refusals(clinic):
    return [(e["action"], e["outcome"], e["detail"].get("reason")) for e in clinic.audit_entries()
            if e["outcome"] in ("denied", "refused")]


def test_every_upload_is_checked_whether_the_key_is_known_or_not(device):
    clinic, key, kid = device
    other, _ = generate_keypair()
    body, last, head = _body(key, kid, 0, GENESIS)

    # not yet known: a forged request is refused against the row's key
    with pytest.raises(Unauthorized, match="signature does not verify"):
        _send(clinic, body, other, kid)
    answer, headers = _send(clinic, body, key, kid)
    assert answer["acknowledged"] == last and answer["stored"] == last + 1
    assert kid in clinic._device_keys                      # known from now on

    # known: a replay, a forged request and a tampered chain are each refused, nothing kept
    with pytest.raises(Unauthorized, match="replayed request"):
        _send(clinic, body, key, kid, headers=headers)
    more, last2, _ = _body(key, kid, last + 1, head)
    with pytest.raises(Unauthorized, match="signature does not verify"):
        _send(clinic, more, other, kid)
    tampered = more.replace(b'"boot"', b'"halt"', 1)
    with pytest.raises(Refused) as refused:
        _send(clinic, tampered, key, kid)
    assert any("content changed" in p for p in refused.value.problems)
    with pytest.raises(Exception, match="not a signed device request"):
        clinic.receive_upload(method="POST", path=PATH, headers={}, body=more)
    assert _held(clinic, kid) == (last, last + 1)             # nothing of the refused uploads kept
    answer, _ = _send(clinic, more, key, kid)
    assert answer["acknowledged"] == last2 and answer["stored"] == last2 - last
    again, _ = _send(clinic, more, key, kid)                 # a repeat (new nonce) stores nothing
    assert again == {**answer, "stored": 0}

    reasons = _refusals(clinic)
    assert reasons.count(("device_request", "denied", "bad request signature")) == 2
    assert ("device_request", "denied", "replayed request") in reasons
    assert [r for r in reasons if r[0] == "upload" and r[1] == "refused"]


def test_a_remembered_key_that_is_not_the_rows_is_never_trusted(device):
    """The in-memory key is only a shortcut: the row read in the transaction decides."""
    clinic, key, kid = device
    impostor, _ = generate_keypair()
    clinic._device_keys[kid] = impostor.public_key()       # as if memory held another key
    body, last, _ = _body(impostor, kid, 0, GENESIS)
    with pytest.raises((Unauthorized, Refused)):
        _send(clinic, body, impostor, kid)
    assert _held(clinic, kid) == (-1, 0)
    clinic._device_keys[kid] = impostor.public_key()
    good, last, _ = _body(key, kid, 0, GENESIS)
    answer, _ = _send(clinic, good, key, kid)               # the genuine device still gets through
    assert answer["stored"] == last + 1


def test_an_unpaired_device_is_refused_and_audited(db_url):
    clinic = clinic_for(db_url)
    key, public = generate_keypair()
    kid = key_id(public)
    body, _, _ = _body(key, kid, 0, GENESIS)
    with pytest.raises(Unauthorized, match="not paired") as e:
        _send(clinic, body, key, kid)
    assert e.value.status == 403
    assert ("device_request", "denied", "unpaired device") in _refusals(clinic)


def test_an_upload_that_is_no_upload_is_audited_by_ingest_as_by_the_route(device):
    """Clinic.ingest (the demo's way in) audits the refusal of a body that is no upload at
    all, as receive_upload does: every refusal is audited."""
    clinic, key, kid = device
    with clinic.engine.connect() as conn:
        row = conn.execute(select(Device.id, Device.key_id, Device.public_key_b64, Device.patient_id)
                           .where(Device.key_id == kid)).one()
    req = DeviceRequest(device=DeviceRef(*row), key_id=kid, nonce=secrets.token_hex(16),
                        at=dt.datetime.now(dt.timezone.utc), public_key=key.public_key())
    with pytest.raises(ClinicError) as refused:
        clinic.ingest(req, b"")
    assert ("upload", "refused", refused.value.message) in _refusals(clinic)
    assert _held(clinic, kid) == (-1, 0)
