"""Prescriptions travel signed, end to end: what the clinician signed and published is
active on the device after one sync; the clinic refuses what is unsigned, altered, signed
by a key not registered to the patient's clinician or written for someone else; and even
a compromised clinic cannot make the device take an unsigned, tampered or untrusted one.
Never in the middle of a session. Real `homeapp sync` and `homeapp-clinic`, over TLS."""
from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from clinic import cli
from clinic.models import Patient, PublishedPrescription
from clinic.service import CLI, canonical_json_with_signature
from schedules.signing import (TrustStore, generate_keypair, save_private_key, save_public_key,
                               sign_prescription)

from .kit import ClinicServer, DeviceDir, clinic_for, set_up_clinic

DATA = Path(__file__).resolve().parents[1] / "data"


def rx_dict(rx_id, patient_id="P-0042", **changes):
    data = json.loads((DATA / "rx-valid-contract-example.json").read_text())
    today = dt.date.today()
    data.update(id=rx_id, patient_id=patient_id, issued=(today - dt.timedelta(days=1)).isoformat(),
                expires=(today + dt.timedelta(days=60)).isoformat(), **changes)
    return data


@pytest.fixture
def setup(db_url, tls_files, tmp_path, monkeypatch, capsys):
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic)
    private, public = generate_keypair()
    save_private_key(tmp_path / "alice.pem", private)
    save_public_key(tmp_path / "alice.pub", public)
    server = ClinicServer(db_url, tls_files).start()
    device = DeviceDir(tmp_path / "device")
    TrustStore(device.data / "trust").add(public, label="alice")
    assert device.run("clinic", "pair", "--url", server.url, "--code", code, "--ca-cert",
                      str(tls_files[2])).returncode == 0

    def clinic_cli(*argv):
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = cli.main([*argv, "--db", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    assert clinic_cli("clinician", "key", "alice", str(tmp_path / "alice.pub"))[0] == 0
    try:
        yield clinic, device, private, clinic_cli, tmp_path
    finally:
        server.stop()


def write(tmp_path, name, data):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return str(path)


def sync(device):
    r = device.run("sync")
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def active_first_line(device):
    r = device.run("rx", "active")
    return r.stdout.splitlines()[0] if r.returncode == 0 else r.stderr.strip()


def test_a_published_prescription_is_active_after_one_sync(setup):
    clinic, device, private, clinic_cli, tmp = setup
    assert device.run("rx", "active").returncode == 2            # none yet
    signed = sign_prescription(rx_dict("rx-clinic-1"), private)
    code, out, err = clinic_cli("rx", "publish", "P-0042", write(tmp, "rx1", signed))
    assert code == 0, err
    # uploaded: the log's header, the pairing and the install (logged on the device)
    assert sync(device)[:2] == (0, {"uploaded": 3, "prescription": "rx-clinic-1", "status": "ok"})
    r = device.run("rx", "active")
    assert r.returncode == 0 and "rx-clinic-1" in r.stdout.splitlines()[0]
    assert "signature: verified" in r.stdout
    [published] = clinic.prescriptions(CLI, "P-0042")
    assert published["device_status"] == "installed"
    # the install, logged on the device, reached the clinic in the same sync
    events = json.loads(clinic.export(CLI, "P-0042"))["device_events"]
    assert any(e["kind"] == "prescription_installed" and e["detail"]["id"] == "rx-clinic-1" for e in events)
    assert sync(device)[:2] == (0, {"uploaded": 0, "prescription": None, "status": "ok"})


def test_the_clinic_refuses_to_publish_what_a_device_must_not_take(setup):
    clinic, device, private, clinic_cli, tmp = setup
    signed = sign_prescription(rx_dict("rx-x"), private)
    tampered = json.loads(json.dumps(signed))
    tampered["channels"][0]["max_ma"] = 95
    cases = {
        "unsigned": (rx_dict("rx-x"), "signature: unsigned"),
        "tampered": (tampered, "altered after signing"),
        "unregistered key": (sign_prescription(rx_dict("rx-x"), generate_keypair()[0]),
                             "which is not registered to clinician alice"),
        "another patient": (sign_prescription(rx_dict("rx-x", patient_id="P-9"), private),
                            "written for 'P-9', not for 'P-0042'"),
        "invalid": (sign_prescription(rx_dict("rx-x", sessions_per_week=99), private), "sessions_per_week"),
    }
    for name, (data, reason) in cases.items():
        code, out, err = clinic_cli("rx", "publish", "P-0042", write(tmp, name.replace(" ", "-"), data))
        assert code == 2 and reason in err, (name, err)
    assert clinic.prescriptions(CLI, "P-0042") == []
    code, out, err = clinic_cli("rx", "publish", "P-0042", str(tmp / "missing.json"))
    assert code == 2 and "cannot read" in err


def test_even_a_compromised_clinic_cannot_make_the_device_take_a_prescription(setup):
    clinic, device, private, clinic_cli, tmp = setup
    good = sign_prescription(rx_dict("rx-good"), private)
    assert clinic_cli("rx", "publish", "P-0042", write(tmp, "good", good))[0] == 0
    assert sync(device)[1]["prescription"] == "rx-good"
    tampered = json.loads(json.dumps(good))
    tampered["id"], tampered["channels"][0]["max_ma"] = "rx-tampered", 95
    forged = {
        "rx-unsigned": (rx_dict("rx-unsigned"), "unsigned"),
        "rx-tampered": (tampered, "altered after signing"),
        "rx-untrusted": (sign_prescription(rx_dict("rx-untrusted"), generate_keypair()[0]), "unknown key"),
    }
    for rx_id, (data, reason) in forged.items():
        # written straight into the clinic's database, as an attacker holding the server could
        with clinic.Session.begin() as db:
            patient = db.scalar(select(Patient).where(Patient.patient_id == "P-0042"))
            db.add(PublishedPrescription(
                patient_id=patient.id, rx_id=rx_id, sha256=_sha(data), source_json=json.dumps(data),
                signature_key_id="-", published_by=patient.clinician_id,
                published_at=dt.datetime.now(dt.timezone.utc), device_status="pending"))
        code, line, err = sync(device)
        assert code == 2 and line["prescription"] is None and reason in err, (rx_id, err)
        assert "rx-good" in active_first_line(device)
        assert clinic.prescriptions(CLI, "P-0042")[-1]["device_status"] == "refused"
        assert reason in clinic.prescriptions(CLI, "P-0042")[-1]["device_reason"]
        assert sync(device)[:2] == (0, {"uploaded": 0, "prescription": None, "status": "ok"})  # refused once
    with device.store() as store:
        refused = [e["detail"] for e in store.device_events() if e["kind"] == "prescription_refused"]
    assert [r["id"] for r in refused] == list(forged) and all(r["origin"] == "clinic" for r in refused)


def _sha(data):
    import hashlib
    return hashlib.sha256(canonical_json_with_signature(data)).hexdigest()


def test_never_in_the_middle_of_a_session(setup):
    clinic, device, private, clinic_cli, tmp = setup
    assert clinic_cli("rx", "publish", "P-0042", write(tmp, "a", sign_prescription(rx_dict("rx-a"), private)))[0] == 0
    assert sync(device)[1]["prescription"] == "rx-a"
    assert clinic_cli("rx", "publish", "P-0042", write(tmp, "b", sign_prescription(rx_dict("rx-b"), private)))[0] == 0
    with device.store() as store:
        store.start_session(session_id="running", prescription_id="rx-a", started_at=dt.datetime.now(dt.timezone.utc),
                            planned_contractions=4, channels=1)
        code, line, err = sync(device)
        assert (code, line["prescription"]) == (0, None)
        assert "rx-a" in active_first_line(device)
        assert clinic.prescriptions(CLI, "P-0042")[-1]["device_status"] == "deferred"
        store.end_session("running", status="completed", ended_at=dt.datetime.now(dt.timezone.utc))
    code, line, err = sync(device)
    assert (code, line["prescription"]) == (0, "rx-b")
    assert "rx-b" in active_first_line(device)
